"""`edream topics apply` against the real broker: creates the first time, reports no change the second."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edream.kafka import apply_topics
from edream.topology import load_topology

pytestmark = pytest.mark.integration


def test_cli_topics_apply_is_idempotent(kafka_bootstrap, renamed_topology):
    path, _ = renamed_topology()
    n = len(load_topology(path).topics)
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, EDREAM_TOPOLOGY=str(path))
    cmd = [sys.executable, "-m", "edream.cli", "topics", "apply"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("(created)") == n
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"= no change ({n} topics up to date)"


def test_apply_reports_differences(kafka_bootstrap, renamed_topology):
    topo = load_topology(renamed_topology()[0])
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
