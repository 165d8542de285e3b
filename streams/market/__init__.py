"""P2P local energy market (HL-UC02): registration, signed orders, gate-closure clearing, delivery settlement.

Units used throughout the package: energy in integer Wh, prices in integer currency micro-units per kWh,
money in integer currency micro-units, times in UTC epoch milliseconds. The domain modules are engine-independent
and pure; Kafka/Faust wiring lives in ``agents.py`` and the CLI in ``cli.py``.
"""
