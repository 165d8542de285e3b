"""The ``make run`` demo: a simulated energy community and a scripted day on the real platform services.

Time model: the demo runs on **real wall-clock time** (UTC epoch ms). The flexibility desk validates requests
against the wall clock (``SLOT_IN_PAST``, ``DEADLINE_PASSED``), the market closes gates on broker arrival time and
worker clock ticks, and the interval service closes 15-min windows on event time, so an accelerated simulated
clock would be rejected by the real services. To make things happen within minutes instead of hours:

* with ``DEMO_TIMELAPSE=true`` the demo DSO also asks for flexibility over USEF/UFTP in 1-minute ISPs
  (``DemoDsoConfig.isp_minutes``; a ``FlexRequest`` carries ``slot_minutes``), so offers, orders, deviations and
  settlements follow within ~3 minutes (off by default: its requests are then only those of the grid's congestion);
* the market keeps its 15-min slots, but the demo writes ``<EDREAM_DATA_DIR>/market.yaml`` (only if absent) with
  a gate-closure lead chosen so that the first gate closes ~2 minutes after start (:func:`demo_market_config`);
* the community uploads the last hour of meter readings on start (like a connector flushing its buffer), and on a
  fresh data dir the day before it as 15-min intervals (:mod:`~edream.demo.meter_history`), so intervals and
  forecasts exist at once and the forecasts have seen yesterday's evening peak;
* the community sits on its simbench grid (:mod:`~edream.demo.grid`, ``GRID_CONFIGS`` unless set): the grid stage
  forecasts the transformer's congestion and the demo DSO asks for it over UFTP (15-min ISPs, hours ahead).

Modules: :mod:`~edream.demo.community` (prosumers and their meters), :mod:`~edream.demo.meter_history` (their past
day as intervals), :mod:`~edream.demo.responder` (devices
following flexibility orders), :mod:`~edream.demo.keys` (deterministic market and UFTP keys),
:mod:`~edream.demo.script` (the scripted day as timed events), :mod:`~edream.demo.wiring` (Faust timers for
``edream run``), :mod:`~edream.demo.dso` and :mod:`~edream.demo.dso_process` (the DSO, over USEF/UFTP, a process
of its own: ``edream uftp sim-dso``).
"""
