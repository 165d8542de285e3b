"""OpenADR 2.0b towards prosumer sites, on ``openleadr``: the platform is the VTN, each site's energy manager a VEN.

Flex orders (``flex.orders.v1``) become DR events for the ordered prosumer's VEN (one LOAD_DISPATCH signal, ``delta``
in kW per slot); the VEN's opt-in/opt-out comes back as a ``DrEventResponse`` on ``flex.dr.responses.v1``; its
TELEMETRY_USAGE power reports become ``Measurement`` readings on ``meter.readings.raw.v1``, validated like every
connector's.

Modules: :mod:`~connectors.openadr.config` (the VEN registry file), :mod:`~connectors.openadr.events` (orders ->
event specs, pure), :mod:`~connectors.openadr.telemetry` (report values -> readings, pure),
:mod:`~connectors.openadr.responses` (opt -> contract, pure), :mod:`~connectors.openadr.vtn` (the server and its
Kafka side), :mod:`~connectors.openadr.cli` (``edream openadr``).
"""
