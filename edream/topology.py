"""``topology.yaml``: the one declarative map of the system (topics, agents, connectors, sinks).

:func:`load_topology` validates the file with pydantic models plus cross-references (schema files exist, agents and
sinks only use declared topics) and raises :class:`TopologyError` whose one-line message names the file, the line,
the entry and the field, e.g. ``topology.yaml:42: agents[interval_aggregator].inputs: topic 'x' is not declared``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edream.avro_schemas import SchemaNotFound, parse_contract


class TopologyError(ValueError):
    """Invalid topology: ``file:line: section[entry].field: problem``."""

    def __init__(self, file: Path | str, line: int | None, where: str, problem: str):
        self.file, self.line, self.where, self.problem = str(file), line, where, problem
        loc = f"{file}:{line}" if line else f"{file}"
        super().__init__(f"{loc}: {where}: {problem}")


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"
    COMPACT_DELETE = "compact,delete"


class KeyType(StrEnum):
    STRING = "string"
    NONE = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topic(_Strict):
    """A Kafka topic. ``retention_ms`` -1 = forever; ``value_schema`` is a file in ``avro/``."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(ge=1, le=10_000)
    replication: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    cleanup_policy: CleanupPolicy = CleanupPolicy.DELETE
    key: str = Field("string", description="what the key holds, e.g. device_id (a UTF-8 string)")
    key_type: KeyType = KeyType.STRING
    value_schema: str = Field(description="Avro contract file, relative to avro/, e.g. Measurement.avsc")
    description: str = ""

    def kafka_config(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup_policy.value, "retention.ms": str(self.retention_ms)}


class Agent(_Strict):
    """A stream agent: what it reads and what it writes; ``repartition``: the inputs a runtime stage re-keys
    through a repartition topic of its own (see :class:`InternalTopic`)."""

    name: str
    module: str = Field(description="Python module that defines it")
    inputs: list[str] = Field(min_length=1)
    outputs: list[str] = []
    repartition: list[str] = []
    description: str = ""


class InternalTopic(_Strict):
    """A topic the stage runtime (:mod:`edream.runtime`) creates for itself, declared as a name template:
    ``{app}`` is ``EDREAM_APP_ID``, ``{stage}`` the agent's name, ``{input}`` one of its ``repartition`` inputs.
    ``per: stage`` topics exist once per runtime stage, ``per: repartition`` ones once per re-keyed input."""

    name: str
    per: Literal["stage", "repartition"]
    cleanup_policy: CleanupPolicy
    retention_ms: int | None = Field(None, ge=-1, description="None: as the runtime derives it")
    description: str = ""

    def names(self, app_id: str, agent: Agent) -> list[str]:
        """The concrete topic names of this template for one agent."""
        if self.per == "stage":
            return [self.name.format(app=app_id, stage=agent.name)]
        return [self.name.format(app=app_id, stage=agent.name, input=t) for t in agent.repartition]


class Connector(_Strict):
    """A field connector process: device configs -> output topic; optionally it executes the device commands of
    ``commands`` (DeviceCommand) for its devices and writes what happened to ``command_results``
    (DeviceCommandResult)."""

    name: str
    protocols: list[str] = Field(min_length=1)
    config_dir: str
    output: str
    commands: str | None = None
    command_results: str | None = None
    description: str = ""

    @field_validator("protocols")
    @classmethod
    def _known_protocols(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if p not in {"modbus", "opcua", "mqtt", "http"}]
        if bad:
            raise ValueError(f"unknown protocol(s) {bad}; known: modbus, opcua, mqtt, http")
        return v


class Sink(_Strict):
    """Topic -> ClickHouse table. The DDL is derived from the topic's Avro schema."""

    name: str
    topic: str
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    order_by: list[str] = Field(min_length=1, description="ReplacingMergeTree sorting key = dedup key")
    version: str | None = Field(None, description="column that decides which duplicate wins")
    partition_by: str | None = None
    ttl: str | None = Field(None, description="ClickHouse TTL expression, e.g. 'ts + INTERVAL 90 DAY'")
    batch_rows: int = Field(5000, ge=1)
    batch_seconds: float = Field(1.0, gt=0)
    max_string_chars: int = Field(
        4096, ge=1, description="longest string value written; longer rows dead-letter"
    )
    string_limits: dict[str, int] = Field({}, description="per-column override of max_string_chars")


class Topology(_Strict):
    topics: list[Topic]
    agents: list[Agent] = []
    connectors: list[Connector] = []
    sinks: list[Sink] = []
    internal_topics: list[InternalTopic] = []

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def topic_names(self) -> set[str]:
        return {t.name for t in self.topics}

    def topic_for_schema(self, schema_stem: str) -> list[Topic]:
        return [t for t in self.topics if Path(t.value_schema).stem == schema_stem]

    def agent(self, name: str) -> Agent:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(
            f"no agent {name!r} in the topology (agents: {', '.join(a.name for a in self.agents)})"
        )


class AgentTopics:
    """The topics one agent reads and writes, as ``topology.yaml`` declares them: a stage names the Avro contract
    of each of its topics, never the topic itself, so renaming a topic is a change of ``topology.yaml`` only.

    ``input("Measurement")`` is the one declared input carrying ``Measurement.avsc`` (:class:`LookupError` naming
    the agent and the contract when there is none or more than one); ``inputs(...)`` all of them."""

    def __init__(self, topology: Topology, agent: str):
        self.topology, self.agent = topology, topology.agent(agent)

    def _carrying(self, names: list[str], schema: str) -> tuple[str, ...]:
        return tuple(n for n in names if Path(self.topology.topic(n).value_schema).stem == schema)

    def _one(self, names: list[str], schema: str, field: str) -> str:
        found = self._carrying(names, schema)
        if len(found) != 1:
            raise LookupError(
                f"topology agents[{self.agent.name}].{field}: expected exactly one topic carrying {schema}, "
                f"found {len(found)} ({', '.join(found) or 'none'})"
            )
        return found[0]

    def input(self, schema: str) -> str:
        return self._one(self.agent.inputs, schema, "inputs")

    def inputs(self, schema: str) -> tuple[str, ...]:
        return self._carrying(self.agent.inputs, schema)

    def output(self, schema: str) -> str:
        return self._one(self.agent.outputs, schema, "outputs")


_CANONICAL = re.compile(r"^(.+?\.v\d+)(?:\..*)?$")


def canonical_name(name: str) -> str:
    """The canonical name of a topic (``meter.readings.raw.v1``) without the suffix a renamed topology may add
    after the version (``meter.readings.raw.v1.ab12`` in tests)."""
    m = _CANONICAL.match(name)
    return m.group(1) if m else name


def topic_names(topology: Any) -> dict[str, str]:
    """Canonical topic name -> the loaded topology's name for it (identity unless the topology adds a suffix).

    Code names topics canonically; every name it reads or writes goes through this map, so a renamed
    topology (tests, several platforms on one broker) needs no code change."""
    return {canonical_name(t.name): t.name for t in topology.topics}


@dataclass
class _Lines:
    """Line numbers of each section entry and of each field inside it (1-based)."""

    entries: dict[tuple[str, int], int]
    fields: dict[tuple[str, int, str], int]
    items: dict[tuple[str, int, str, int], int]

    @classmethod
    def of(cls, text: str) -> _Lines:
        entries: dict[tuple[str, int], int] = {}
        fields: dict[tuple[str, int, str], int] = {}
        items: dict[tuple[str, int, str, int], int] = {}
        try:
            root = yaml.compose(text)
        except yaml.YAMLError:
            return cls(entries, fields, items)
        if not isinstance(root, yaml.MappingNode):
            return cls(entries, fields, items)
        for key_node, section in root.value:
            if not isinstance(section, yaml.SequenceNode):
                continue
            for i, item in enumerate(section.value):
                entries[(key_node.value, i)] = item.start_mark.line + 1
                if isinstance(item, yaml.MappingNode):
                    for fk, fv in item.value:
                        fields[(key_node.value, i, fk.value)] = fv.start_mark.line + 1
                        if isinstance(fv, yaml.SequenceNode):
                            for j, sub in enumerate(fv.value):
                                items[(key_node.value, i, fk.value, j)] = sub.start_mark.line + 1
        return cls(entries, fields, items)

    def line(self, section: str, index: int, field: str | None = None, item: int | None = None) -> int | None:
        if field is not None and item is not None and (section, index, field, item) in self.items:
            return self.items[(section, index, field, item)]
        if field is not None and (section, index, field) in self.fields:
            return self.fields[(section, index, field)]
        return self.entries.get((section, index))


def _entry_label(data: dict[str, Any], section: str, index: int) -> str:
    try:
        item = data[section][index]
        name = item.get("name") if isinstance(item, dict) else None
    except (KeyError, IndexError, TypeError):
        name = None
    return f"{section}[{name}]" if name else f"{section}[{index}]"


def load_topology(path: Path | str, avro_dir: Path | None = None) -> Topology:
    """Load and fully validate a topology file; raise :class:`TopologyError` on the first problem."""
    path = Path(path)
    if not path.is_file():
        raise TopologyError(path, None, "file", "does not exist")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TopologyError(path, mark.line + 1 if mark else None, "yaml", str(exc).splitlines()[0]) from None
    if not isinstance(data, dict):
        raise TopologyError(
            path, 1, "file", "must be a mapping with 'topics', 'agents', 'connectors', 'sinks'"
        )
    lines = _Lines.of(text)
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        if len(loc) >= 2 and isinstance(loc[1], int):
            section, index = str(loc[0]), loc[1]
            field = str(loc[2]) if len(loc) > 2 else None
            where = _entry_label(data, section, index) + (f".{field}" if field else "")
            raise TopologyError(path, lines.line(section, index, field), where, err["msg"]) from None
        raise TopologyError(path, None, ".".join(map(str, loc)) or "file", err["msg"]) from None
    _check_references(topo, path, lines, avro_dir or path.parent / "avro")
    return topo


def _check_references(topo: Topology, path: Path, lines: _Lines, avro_dir: Path) -> None:
    def fail(section: str, i: int, name: str, field: str, problem: str, item: int | None = None) -> None:
        raise TopologyError(path, lines.line(section, i, field, item), f"{section}[{name}].{field}", problem)

    seen: set[str] = set()
    for i, t in enumerate(topo.topics):
        if t.name in seen:
            fail("topics", i, t.name, "name", f"topic '{t.name}' is declared twice")
        seen.add(t.name)
        schema_path = avro_dir / t.value_schema
        if not schema_path.is_file():
            fail(
                "topics", i, t.name, "value_schema", f"schema file '{t.value_schema}' not found in {avro_dir}"
            )
        try:
            c = parse_contract(schema_path)
        except (SchemaNotFound, ValueError, Exception) as exc:  # noqa: BLE001 - any parse failure is reported
            fail("topics", i, t.name, "value_schema", f"schema file '{t.value_schema}' is invalid: {exc}")
        else:
            if c.raw.get("name") != schema_path.stem:
                fail(
                    "topics",
                    i,
                    t.name,
                    "value_schema",
                    f"record name '{c.raw.get('name')}' must match the file name '{schema_path.stem}'",
                )
    declared = topo.topic_names
    for section, items in (("agents", topo.agents),):
        for i, a in enumerate(items):
            for field in ("inputs", "outputs"):
                for j, tname in enumerate(getattr(a, field)):
                    if tname not in declared:
                        fail(section, i, a.name, field, f"topic '{tname}' is not declared under topics", j)
    connector_schemas = {"commands": "DeviceCommand", "command_results": "DeviceCommandResult"}
    for i, c in enumerate(topo.connectors):
        if c.output not in declared:
            fail("connectors", i, c.name, "output", f"topic '{c.output}' is not declared under topics")
        for field, schema_name in connector_schemas.items():
            tname = getattr(c, field)
            if tname is None:
                continue
            if tname not in declared:
                fail("connectors", i, c.name, field, f"topic '{tname}' is not declared under topics")
            carried = Path(topo.topic(tname).value_schema).stem
            if carried != schema_name:
                fail("connectors", i, c.name, field, f"topic '{tname}' carries {carried}, not {schema_name}")
        if (c.commands is None) != (c.command_results is None):
            missing = "command_results" if c.command_results is None else "commands"
            fail("connectors", i, c.name, missing, "commands and command_results go together")
    for i, s in enumerate(topo.sinks):
        if s.topic not in declared:
            fail("sinks", i, s.name, "topic", f"topic '{s.topic}' is not declared under topics")
        schema = parse_contract(avro_dir / topo.topic(s.topic).value_schema).raw
        columns = {f["name"] for f in schema["fields"]}
        for field in ("order_by",):
            for j, col in enumerate(getattr(s, field)):
                if col not in columns:
                    fail("sinks", i, s.name, field, f"column '{col}' is not a field of {schema['name']}", j)
        if s.version and s.version not in columns:
            fail("sinks", i, s.name, "version", f"column '{s.version}' is not a field of {schema['name']}")
        for col in s.string_limits:
            if col not in columns:
                fail(
                    "sinks", i, s.name, "string_limits", f"column '{col}' is not a field of {schema['name']}"
                )
    for i, a in enumerate(topo.agents):
        for j, tname in enumerate(a.repartition):
            if tname not in a.inputs:
                fail(
                    "agents", i, a.name, "repartition", f"topic '{tname}' is not one of the agent's inputs", j
                )
    for i, it in enumerate(topo.internal_topics):
        allowed = {"app", "stage"} | ({"input"} if it.per == "repartition" else set())
        used = {f for _, f, _, _ in string.Formatter().parse(it.name) if f is not None}
        if used - allowed:
            fail(
                "internal_topics",
                i,
                it.name,
                "name",
                f"unknown placeholder(s) {sorted(used - allowed)}; allowed: {sorted(allowed)}",
            )
    names = [a.name for a in topo.agents]
    for i, a in enumerate(topo.agents):
        if names.count(a.name) > 1:
            fail("agents", i, a.name, "name", f"agent '{a.name}' is declared twice")
