"""Topology agents: the ``stage()`` of each stream stage on the one runtime (:mod:`edream.runtime`), and the
ClickHouse sink the worker that owns ClickHouse hosts (``register``)."""
