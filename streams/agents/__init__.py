"""Faust agents: thin wiring between topics and the engine-independent logic in ``streams/``."""
