"""Wall-clock ticks of a stage: one message per partition of ``edream.clock.<group>`` every ``tick_ms``.

Quix Streams has no punctuation, so time reaches a stage as data: a tick is processed on its partition like any
record, with that partition's state, and its writes are checkpointed with the rest. Every worker running the
stage sends ticks to every partition (a few messages per second); a processor must treat a tick as "the wall
clock is now at least ``now_ms``", which is idempotent. A tick produced while a partition is lagging is
consumed in timestamp order with the backlog (Quix aligns concatenated topics on record time), so the wall
clock never overtakes input that was already on the broker when the tick was sent.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from typing import Any

from confluent_kafka import Producer

log = logging.getLogger(__name__)

CLOCK_PREFIX = "edream.clock"
_TICK = struct.Struct(">q")


def clock_topic_name(group: str) -> str:
    """The clock topic of the stage whose consumer group is ``group`` (one per platform and stage)."""
    return f"{CLOCK_PREFIX}.{group}"


def encode_tick(now_ms: int) -> bytes:
    return _TICK.pack(now_ms)


def decode_tick(value: bytes) -> int:
    """UTC epoch ms of a tick (raises on anything but 8 bytes, so a foreign record is dead-lettered)."""
    return _TICK.unpack(value)[0]


#: ticks are only "now" for a moment: a stage that lags by more than 2 minutes continues at the oldest tick left,
#: and the latest tick says what time it is. Short, because every tick is a stored batch and the embedded S3
#: broker lists all of a partition's batches on every fetch (see :mod:`edream.embedded.retention`)
CLOCK_TOPIC_CONFIG = {"retention.ms": "120000", "cleanup.policy": "delete"}


def ensure_clock_topic(settings: Any, group: str, partitions: int) -> None:
    """Create the stage's clock topic (with explicit configs, which the runtime reads back) if it is missing,
    before anything produces to it: a broker that auto-creates topics would create it without them."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from edream.kafka import client_config

    admin = AdminClient(client_config(settings.kafka_bootstrap_servers, settings))
    name = clock_topic_name(group)
    if name in admin.list_topics(timeout=10).topics:
        return
    topic = NewTopic(name, partitions, settings.runtime_replication_factor, config=CLOCK_TOPIC_CONFIG)
    for fut in admin.create_topics([topic]).values():
        try:
            fut.result(15)
        except Exception as exc:  # noqa: BLE001 - another worker created it first
            if "exist" not in str(exc).lower():
                raise


class Clock:
    """Sends ticks for one stage on a daemon thread until :meth:`stop`."""

    def __init__(self, producer_conf: dict, group: str, partitions: int, tick_ms: int):
        self.topic, self.partitions, self.tick_s = clock_topic_name(group), partitions, tick_ms / 1000
        self.producer = Producer(producer_conf)
        #: time.monotonic() when the broker last acknowledged a tick (None: never): the broker is reachable
        self.delivered_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"clock-{group}", daemon=True)

    def start(self) -> Clock:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = int(time.time() * 1000)
            try:
                for p in range(self.partitions):
                    self.producer.produce(
                        self.topic,
                        value=encode_tick(now),
                        partition=p,
                        timestamp=now,
                        on_delivery=self._delivered,
                    )
                self.producer.poll(0)
            except Exception as exc:  # noqa: BLE001 - broker away: the next tick tries again
                log.warning("clock %s: %s", self.topic, exc)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered_at = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.producer.flush(2)
