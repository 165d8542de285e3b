"""Run the interval stage (``streams.agents.intervals.stage``) on the runtime in this process, for tests that kill
it with SIGKILL. Usage: ``python interval_stage_child.py <bootstrap> <data dir> <topology.yaml> <app id>``; the
readings of the tests are one per minute (``expected_period_ms`` 60 s)."""

from __future__ import annotations

import sys
from pathlib import Path

from edream.runtime.supervisor import StageSupervisor
from edream.settings import Settings
from edream.topology import load_topology
from streams.agents.intervals import stage
from streams.analytics.interval_rules import IntervalConfig

CFG = IntervalConfig(expected_period_ms=60_000)


def main(bootstrap: str, data_dir: str, topology_path: str, app_id: str) -> None:
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        edream_data_dir=Path(data_dir),
        edream_app_id=app_id,
        kafka_session_timeout_s=6.0,
    )
    topology = load_topology(topology_path)
    dlq = topology.topic_for_schema("DeadLetter")[0].name
    StageSupervisor(stage(settings, topology, CFG), settings, dlq, None, 4).run()


if __name__ == "__main__":
    main(*sys.argv[1:5])
