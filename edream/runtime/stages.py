"""Which topology agents run on the runtime, and how one of them is started.

An agent module that defines ``stage(settings, topology) -> StageSpec`` runs on the runtime (as its own process:
``edream stage run NAME``, started by ``edream run`` and ``edream worker``); the module is named in
``topology.yaml``, so this kernel module imports no domain package by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from edream.runtime.contract import StageSpec
from edream.runtime.supervisor import StageSupervisor
from edream.settings import Settings
from edream.topology import Topology

HEALTH_SCHEMA = "StageHealth"
DEADLETTER_SCHEMA = "DeadLetter"


class UnknownStage(LookupError):
    pass


def _module(topology: Topology, name: str) -> Any:
    for agent in topology.agents:
        if agent.name == name:
            return importlib.import_module(agent.module)
    known = ", ".join(a.name for a in topology.agents)
    raise UnknownStage(f"no agent {name!r} in the topology (agents: {known})")


def runtime_stages(topology: Topology) -> list[str]:
    """Names of the topology agents whose module defines ``stage()``."""
    return [a.name for a in topology.agents if hasattr(importlib.import_module(a.module), "stage")]


def load_stage(topology: Topology, name: str, settings: Settings) -> StageSpec:
    module = _module(topology, name)
    if not hasattr(module, "stage"):
        raise UnknownStage(f"agent {name!r} ({module.__name__}) does not run on the stage runtime yet")
    return module.stage(settings, topology)


def _one_topic(topology: Topology, schema: str) -> str | None:
    topics = topology.topic_for_schema(schema)
    return topics[0].name if len(topics) == 1 else None


def supervisor_for(
    topology: Topology,
    name: str,
    settings: Settings,
    handle_signals: bool = True,
    on_hang: Callable[[], None] | None = None,
) -> StageSupervisor:
    """The supervisor of stage ``name`` with the topology's dead-letter and health topics; the partition count of
    the stage's clock is that of its first input."""
    spec = load_stage(topology, name, settings)
    deadletter = _one_topic(topology, DEADLETTER_SCHEMA)
    if deadletter is None:
        raise UnknownStage("the topology must declare exactly one DeadLetter topic")
    partitions = topology.topic(spec.inputs[0]).partitions if spec.inputs else 1
    return StageSupervisor(
        spec, settings, deadletter, _one_topic(topology, HEALTH_SCHEMA), partitions, handle_signals, on_hang
    )
