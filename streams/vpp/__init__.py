"""Virtual power plant (eDREAM HL-UC03): prosumer profiling and clustering, PV degradation,
reserve/frequency capability and 30-minute export capacity.

The domain modules here are plain Python (numpy, River, pvlib, Pyomo); stream wiring stays thin.
"""
