"""Shared pieces of the flex broker tests: the two flex stages (``flex`` per area, ``flex-prosumers`` per prosumer)
run by StageSupervisor threads on unique topics of the real broker, a reader that follows a topic's partitions, and
a lock-step wait until both stages have consumed everything sent to them and everything they sent each other."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from edream.runtime.clock import clock_topic_name
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from streams.agents import flex, flex_prosumers

PARTITIONS = 4
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
COMPACT = {"retention.ms": "3600000", "cleanup.policy": "compact"}
REGISTRIES = ("flex.enrolments.v1", "flex.dsos.v1")  # read whole as views: compacted
CANONICAL = (
    "meter.readings.raw.v1",
    "flex.requests.v1",
    "flex.acceptances.v1",
    "baseline.15m.v1",
    "forecast.profiles.v1",
    "flex.enrolments.v1",
    "flex.dsos.v1",
    "flex.prosumer.status.v1",
    "flex.allocations.v1",
    "flex.offers.v1",
    "flex.orders.v1",
    "flex.deviations.v1",
    "settlement.flex.v1",
    "platform.rejections.v1",
    "device.commands.v1",
    "platform.deadletter.v1",
    "uftp.messages.v1",
)


def flex_topics(unique_topic, bootstrap: str) -> tuple[dict[str, str], Any]:
    """Canonical -> unique topic names (4 partitions each) and a topology naming them; the stages' clock topics
    exist with explicit configs before the supervisors' clocks produce to them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=10).topics
    for stage in ("flex", "flex-prosumers"):
        if clock_topic_name(stage) not in existing:
            fs = admin.create_topics([NewTopic(clock_topic_name(stage), PARTITIONS, 1, config=CONFIG)])
            for fut in fs.values():
                with contextlib.suppress(Exception):  # created by a concurrent test meanwhile
                    fut.result(15)
    names = {c: unique_topic(c, PARTITIONS, COMPACT if c in REGISTRIES else CONFIG) for c in CANONICAL}
    return names, SimpleNamespace(topics=[SimpleNamespace(name=n) for n in names.values()])


class Stages:
    """``workers`` supervisors of each flex stage in threads, one consumer group per stage (``group`` prefix).
    ``auto_accept``: the area desk orders every feasible offer at once (the demo setting ``FLEX_AUTO_ACCEPT``);
    off, it waits for the DSO's acceptances on ``flex.acceptances.v1``."""

    def __init__(
        self,
        settings,
        topology,
        names: dict[str, str],
        group: str,
        data_dir,
        workers: int = 1,
        area_options: dict | None = None,
        prosumer_options: dict | None = None,
        auto_accept: bool = True,
    ):
        self.settings = settings.model_copy(
            update={"edream_data_dir": data_dir, "edream_app_id": group, "flex_auto_accept": auto_accept}
        )
        self.runs: dict[str, list[tuple[StageSupervisor, threading.Thread]]] = {
            "flex": [],
            "flex-prosumers": [],
        }
        for w in range(workers):
            worker_settings = self.settings.model_copy(update={"edream_data_dir": data_dir / f"w{w}"})
            for name, module, options in (
                ("flex", flex, area_options or {}),
                ("flex-prosumers", flex_prosumers, prosumer_options or {}),
            ):
                spec = module.stage(worker_settings, topology, **options)
                sup = StageSupervisor(
                    spec,
                    worker_settings,
                    names["platform.deadletter.v1"],
                    None,
                    PARTITIONS,
                    handle_signals=False,
                )
                t = threading.Thread(target=sup.run, daemon=True, name=f"{name}-{w}")
                t.start()
                self.runs[name].append((sup, t))

    def events_in(self, stage: str) -> int:
        return sum(sup.health.events_in for sup, _ in self.runs[stage])

    def state_dirs(self) -> list:
        return [sup.state_dir for runs in self.runs.values() for sup, _ in runs]

    def stop(self) -> None:
        for runs in self.runs.values():
            for sup, _ in runs:
                sup.stop()
        for runs in self.runs.values():
            for _, t in runs:
                t.join(60)
                assert not t.is_alive()


class Follower:
    """Reads every partition of a topic from the beginning (no group) and keeps the decoded records."""

    def __init__(self, bootstrap: str, topic: str, serde: Serde):
        self.c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "follower",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        parts = self.c.list_topics(topic, timeout=10).topics[topic].partitions
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.topic, self.serde = topic, serde
        self.records: list[dict] = []
        self.values: list[bytes] = []
        self.messages: list = []

    def poll(self) -> int:
        """Everything available now; the number of records so far."""
        while True:
            msgs = self.c.consume(1000, 0.02)
            if not msgs:
                return len(self.records)
            for m in msgs:
                if m.error():
                    continue
                self.messages.append(m)
                self.values.append(m.value())
                self.records.append(self.serde.decode(m.value(), self.topic)[1])

    def wait(self, n: int, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while self.poll() < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.topic}: {len(self.records)} of {n} records")
            time.sleep(0.05)
        return self.records

    def close(self) -> None:
        self.c.close()


def wait_until(cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition", every: float = 0.02):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def settle(
    expected: Callable[[], dict[str, int]],
    got: Callable[[], dict[str, int]],
    timeout: float = 120.0,
    quiet_s: float = 0.25,
) -> None:
    """Wait until ``got() == expected()`` (per stage: records consumed vs records sent to it, read from the
    topics) holds, unchanged, for ``quiet_s``: the stages emitted nothing more for each other in the meantime."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while True:
        pair, now = (expected(), got()), time.monotonic()
        if pair != last:
            last, since = pair, now
        elif pair[0] == pair[1] and now - since >= quiet_s:
            return
        if now > deadline:
            raise AssertionError(f"stages did not settle: sent {pair[0]}, consumed {pair[1]}")
        time.sleep(0.02)
