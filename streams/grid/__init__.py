"""The DSO's grid model (issue 16): a network (simbench or pandapower JSON) with the prosumers mapped to its buses,
batch power flows over a forecast horizon (power-grid-model; pandapower as the reference), congestion per
congestion point and slot, and the flexibility requests that relieve it. See ``README.md`` in this package."""
