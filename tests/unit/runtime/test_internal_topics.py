"""The runtime's internal topics are declared in topology.yaml: every re-keyed input of a runtime stage is listed
under its agent's ``repartition`` (and nothing else is), and the ``internal_topics`` templates give the names the
runtime's clock and Quix Streams' topic manager use (engine: group ``<app>-<stage>``, store stream
``stage-<stage>``, group_by ``<stage>-<input>``)."""

from __future__ import annotations

import pytest
from quixstreams.models.topics.manager import TopicManager

from edream.demo.grid import DEMO_GRID_CONFIG
from edream.paths import TOPOLOGY_FILE
from edream.runtime.clock import clock_topic_name
from edream.runtime.engine import group_id
from edream.runtime.stages import load_stage, runtime_stages
from edream.settings import Settings
from edream.topology import load_topology

TOPOLOGY = load_topology(TOPOLOGY_FILE)


@pytest.fixture
def settings(tmp_path) -> Settings:
    # with a grid configured, as the grid stage reads orders and intervals (for its proof of relief) only then
    return Settings(edream_data_dir=tmp_path, edream_app_id="plant-7", grid_configs=str(DEMO_GRID_CONFIG))


@pytest.mark.parametrize("stage", runtime_stages(TOPOLOGY))
def test_declared_internal_topics_are_the_runtimes(stage, settings):
    spec = load_stage(TOPOLOGY, stage, settings)
    agent = TOPOLOGY.agent(stage)
    assert sorted(spec.rekey) == sorted(agent.repartition), "declare the re-keyed inputs under `repartition`"
    group = group_id(settings, spec.name)
    quix = TopicManager(topic_admin=None, consumer_group=group)
    expected = {
        "stage": [
            clock_topic_name(group),
            quix._internal_name("changelog", f"stage-{spec.name}", "default"),
        ],
        "repartition": [quix._internal_name("repartition", t, f"{spec.name}-{t}") for t in agent.repartition],
    }
    declared = {"stage": [], "repartition": []}
    for template in TOPOLOGY.internal_topics:
        declared[template.per] += template.names(settings.edream_app_id, agent)
    assert declared == expected


def test_declared_clock_retention_is_the_runtimes():
    from edream.runtime.clock import CLOCK_TOPIC_CONFIG

    (clock,) = [it for it in TOPOLOGY.internal_topics if it.name.startswith("edream.clock.")]
    assert str(clock.retention_ms) == CLOCK_TOPIC_CONFIG["retention.ms"]
    assert clock.cleanup_policy.value == CLOCK_TOPIC_CONFIG["cleanup.policy"]
