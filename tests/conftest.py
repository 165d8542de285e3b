"""Session-scoped real components: an embedded Tansu broker and one chDB data dir.

chDB allows one data dir per process and one process per data dir, so every test shares ``chdb_client`` and
uses its own table names. Topics are unique per test (``unique_topic``). Consumer-group session timeouts are short
because a consumer killed without leaving its group delays the next join until the session times out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from hypothesis import settings as hypothesis_settings

from edream.embedded.broker import EmbeddedBroker
from edream.settings import Settings

#: no per-example deadline for property tests: hypothesis's default 200 ms is a timed assertion, and beside five busy
#: workers one example of a pure function took 289 ms (ci79)
hypothesis_settings.register_profile("edream", deadline=None)
hypothesis_settings.load_profile("edream")

#: the longest tests (measured 110-320 s each, mostly waiting on wall-clock gates, slots and group joins), in this
#: order, start first: pytest-xdist hands out tests in collection order, so one of them starting last would add
#: its whole length to the suite's wall time
LONGEST_FIRST = (
    "tests/integration/test_demo_day.py",
    "tests/chaos/test_chaos_time_boxed.py",
    "tests/integration/test_workers_equivalence.py",
    "tests/integration/test_flex_lifecycle_broker.py",
    "tests/integration/test_vpp_platform.py",
    "tests/integration/test_flex_prosumers_stage_broker.py",
    "tests/integration/test_anchoring_agent.py",
    "tests/integration/test_vpp_stage_runtime.py",
    "tests/integration/test_market_e2e.py",
    "tests/integration/test_flex_dispatch_connector.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first (:data:`LONGEST_FIRST`), then the other slow-marked tests, then the rest (stable)."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::")[0]
        first = LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)
        return first, 0 if item.get_closest_marker("slow") else 1

    items.sort(key=rank)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edream")


@pytest.fixture(scope="session")
def kafka_bootstrap(session_dir: Path) -> Iterator[str]:
    broker = EmbeddedBroker(session_dir)
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def test_settings(kafka_bootstrap: str, session_dir: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap, edream_data_dir=session_dir, kafka_session_timeout_s=6.0
    )


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Callable[..., str]:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def make(prefix: str = "t", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        for fut in admin.create_topics([NewTopic(name, partitions, 1, config=config or {})]).values():
            fut.result(15)
        return name

    return make


@pytest.fixture(scope="session")
def chdb_client(session_dir: Path):
    import clickhouse_connect

    path = session_dir / "chdb"
    path.mkdir(exist_ok=True)
    return clickhouse_connect.get_client(dsn=f"chdb://{path}")


@pytest.fixture
def unique_table() -> Callable[[str], str]:
    return lambda prefix="t": f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def read_topic(kafka_bootstrap: str):
    """Read ``n`` messages of a topic from the beginning of every partition (no consumer group)."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    def read(topic: str, n: int, timeout: float = 30.0, bootstrap: str | None = None) -> list:
        c = Consumer(
            {
                "bootstrap.servers": bootstrap or kafka_bootstrap,
                "group.id": "reader",
                "enable.auto.commit": False,
            }
        )
        try:
            parts = c.list_topics(topic, timeout=10).topics[topic].partitions
            c.assign([TopicPartition(topic, p, 0) for p in parts])
            got, deadline = [], time.monotonic() + timeout
            while len(got) < n and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m)
            return got
        finally:
            c.close()

    return read


@pytest.fixture
def renamed_topology(tmp_path: Path):
    """Write a copy of topology.yaml whose topic names carry a unique suffix (so tests sharing the session broker
    never see each other's messages); returns (path, {original name: renamed})."""
    import yaml

    from edream.paths import AVRO_DIR, TOPOLOGY_FILE

    def make(suffix: str | None = None) -> tuple[Path, dict[str, str]]:
        suffix = suffix or uuid.uuid4().hex[:8]
        data = yaml.safe_load(TOPOLOGY_FILE.read_text())
        rename = {t["name"]: f"{t['name']}.{suffix}" for t in data["topics"]}
        for t in data["topics"]:
            t["name"] = rename[t["name"]]
        for a in data["agents"]:
            for field in ("inputs", "outputs", "repartition"):
                a[field] = [rename[x] for x in a.get(field, [])]
        for c in data.get("connectors") or []:
            for key in ("output", "commands", "command_results"):
                if c.get(key):
                    c[key] = rename[c[key]]
        for s in data["sinks"]:
            s["topic"] = rename[s["topic"]]
        folder = tmp_path / f"topology-{suffix}"
        folder.mkdir()
        (folder / "avro").symlink_to(AVRO_DIR)
        path = folder / "topology.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path, rename

    return make
