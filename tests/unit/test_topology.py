"""topology.yaml validation: the committed file passes; each kind of mistake names file, line, entry, field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edream.paths import AVRO_DIR, TOPOLOGY_FILE
from edream.topology import AgentTopics, TopologyError, canonical_name, load_topology, topic_names


def test_committed_topology_is_valid():
    topo = load_topology(TOPOLOGY_FILE)
    assert "meter.readings.raw.v1" in topo.topic_names
    assert all(s.topic in topo.topic_names for s in topo.sinks)


def _variant(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(TOPOLOGY_FILE.read_text())
    mutate(data)
    (tmp_path / "avro").symlink_to(AVRO_DIR)
    p = tmp_path / "topology.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_agent_reading_undeclared_topic(tmp_path):
    p = _variant(tmp_path, lambda d: d["agents"][0]["inputs"].append("no.such.topic"))
    with pytest.raises(TopologyError) as e:
        load_topology(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{_line_of(p, 'no.such.topic')}: agents[clickhouse_sink].inputs:")
    assert "'no.such.topic' is not declared" in msg
    assert "\n" not in msg


def test_missing_schema_file(tmp_path):
    def mutate(d):
        d["topics"][1]["value_schema"] = "Nope.avsc"

    p = _variant(tmp_path, mutate)
    with pytest.raises(TopologyError) as e:
        load_topology(p)
    assert e.value.where == "topics[meter.intervals.15m.v1].value_schema"
    assert e.value.line == _line_of(p, "Nope.avsc")
    assert "'Nope.avsc' not found" in str(e.value)


def test_negative_partitions(tmp_path):
    def mutate(d):
        d["topics"][2]["partitions"] = -3

    p = _variant(tmp_path, mutate)
    with pytest.raises(TopologyError) as e:
        load_topology(p)
    assert e.value.where == "topics[forecast.profiles.v1].partitions"
    assert e.value.line == _line_of(p, "partitions: -3")
    assert "greater than or equal to 1" in e.value.problem


def test_unknown_field_and_sink_column(tmp_path):
    p = _variant(tmp_path, lambda d: d["topics"][0].update(partitons=3))
    with pytest.raises(TopologyError, match=r"topics\[meter.readings.raw.v1\].partitons: Extra inputs"):
        load_topology(p)
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    p = _variant(tmp_path, lambda d: d["sinks"][0]["order_by"].append("nonexistent"))
    with pytest.raises(TopologyError, match=r"sinks\[measurements\].order_by: column 'nonexistent'"):
        load_topology(p)


def test_duplicate_topic_and_bad_yaml(tmp_path):
    p = _variant(tmp_path, lambda d: d["topics"].append(dict(d["topics"][0])))
    with pytest.raises(TopologyError, match="declared twice"):
        load_topology(p)
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics: [\n  - name: x\n")
    with pytest.raises(TopologyError) as e:
        load_topology(bad)
    assert e.value.where == "yaml" and e.value.line is not None


@pytest.mark.parametrize("mutate, code", [(None, 0), ("neg", 1)])
def test_cli_topology_check_exit_codes(tmp_path, mutate, code):
    path = (
        TOPOLOGY_FILE
        if mutate is None
        else _variant(tmp_path, lambda d: d["topics"][0].update(partitions=-1))
    )
    r = subprocess.run(
        [sys.executable, "-m", "edream.cli", "topology", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == code, r.stderr
    if code:
        assert len(r.stderr.strip().splitlines()) == 1
        assert "topics[meter.readings.raw.v1].partitions" in r.stderr
    else:
        assert "ok (" in r.stdout


def test_sink_string_limit_on_an_unknown_column(tmp_path):
    p = _variant(tmp_path, lambda d: d["sinks"][0].update(string_limits={"no_such_column": 10}))
    with pytest.raises(TopologyError) as e:
        load_topology(p)
    assert f"sinks[{yaml.safe_load(p.read_text())['sinks'][0]['name']}].string_limits:" in str(e.value)
    assert "'no_such_column' is not a field of Measurement" in str(e.value)


def test_topic_names_map_suffixed_topology_names_to_canonical():
    names = topic_names(load_topology(TOPOLOGY_FILE))
    assert names["meter.intervals.15m.v1"] == "meter.intervals.15m.v1"
    assert names["forecast.accuracy.v1"] == "forecast.accuracy.v1"

    class T:
        def __init__(self, name: str):
            self.name = name

    class Topo:
        topics = [T("meter.intervals.15m.v1.ab12"), T("flex.orders.v1")]

    assert topic_names(Topo()) == {
        "meter.intervals.15m.v1": "meter.intervals.15m.v1.ab12",
        "flex.orders.v1": "flex.orders.v1",
    }
    assert canonical_name("edream.clock.vpp") == "edream.clock.vpp"


def test_agent_topics_come_from_the_agents_declaration_by_contract(renamed_topology):
    path, rename = renamed_topology()
    topo = load_topology(path)
    intervals = AgentTopics(topo, "intervals")
    assert intervals.input("Measurement") == rename["meter.readings.raw.v1"]
    assert intervals.output("IntervalEnergy") == rename["meter.intervals.15m.v1"]
    anchoring = AgentTopics(topo, "anchoring")
    assert anchoring.inputs("Settlement") == (rename["settlement.flex.v1"], rename["settlement.market.v1"])
    with pytest.raises(
        LookupError,
        match=r"agents\[anchoring\]\.inputs: expected exactly one topic carrying Settlement, found 2",
    ):
        anchoring.input("Settlement")
    with pytest.raises(LookupError, match=r"agents\[intervals\]\.outputs: .* carrying Forecast, found 0"):
        intervals.output("Forecast")
    with pytest.raises(KeyError, match="no agent 'nope'"):
        AgentTopics(topo, "nope")


def test_repartition_inputs_and_internal_topic_placeholders_are_checked(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    p = _variant(tmp_path / "a", lambda d: d["agents"][0].__setitem__("repartition", ["vpp.links.v1"]))
    with pytest.raises(
        TopologyError, match=r"repartition: topic 'vpp.links.v1' is not one of the agent's inputs"
    ):
        load_topology(p)
    p = _variant(
        tmp_path / "b", lambda d: d["internal_topics"][0].__setitem__("name", "edream.clock.{app}-{input}")
    )
    with pytest.raises(
        TopologyError, match=r"internal_topics\[.*\]\.name: unknown placeholder\(s\) \['input'\]"
    ):
        load_topology(p)
