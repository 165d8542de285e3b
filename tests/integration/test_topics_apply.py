"""`edream topics apply` against the real broker: creates the first time, reports no change the second."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import yaml

from edream.kafka import apply_topics
from edream.paths import AVRO_DIR, TOPOLOGY_FILE
from edream.topology import load_topology

pytestmark = pytest.mark.integration


def _renamed_topology(tmp_path, suffix: str):
    data = yaml.safe_load(TOPOLOGY_FILE.read_text())
    names = {t["name"]: f"{t['name']}.{suffix}" for t in data["topics"]}
    for t in data["topics"]:
        t["name"] = names[t["name"]]
    for a in data["agents"]:
        a["inputs"] = [names[x] for x in a["inputs"]]
        a["outputs"] = [names[x] for x in a["outputs"]]
    for s in data["sinks"]:
        s["topic"] = names[s["topic"]]
    (tmp_path / "avro").symlink_to(AVRO_DIR)
    p = tmp_path / "topology.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_cli_topics_apply_is_idempotent(kafka_bootstrap, tmp_path):
    path = _renamed_topology(tmp_path, uuid.uuid4().hex[:8])
    n = len(load_topology(path).topics)
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, EDREAM_TOPOLOGY=str(path))
    cmd = [sys.executable, "-m", "edream.cli", "topics", "apply"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("(created)") == n
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"= no change ({n} topics up to date)"


def test_apply_reports_differences(kafka_bootstrap, tmp_path):
    topo = load_topology(_renamed_topology(tmp_path, uuid.uuid4().hex[:8]))
    first = topo.topics[0]
    apply_topics(kafka_bootstrap, [first])
    changed = first.model_copy(update={"partitions": first.partitions + 2})
    diff = apply_topics(kafka_bootstrap, [changed])
    assert not diff.created
    assert diff.differs == {
        first.name: [f"partitions {first.partitions} on broker, {first.partitions + 2} in topology"]
    }


def test_apply_without_any_broker_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["EDREAM_DATA_DIR"] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "edream.cli", "topics", "apply"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "no broker" in r.stderr
