"""Retention and compaction for the embedded durable broker: deletes the stored batches a topic no longer keeps.

Tansu 0.6's S3 engine stores every produced batch as one object
(``clusters/<cluster>/topics/<topic>/partitions/<p:010>/records/<base offset:020>.batch``) and never deletes one:
``retention.ms`` and ``cleanup.policy`` are stored with the topic but not applied, and ``DeleteRecords`` is not
implemented. Every fetch of a partition with new data lists all of that partition's objects, so without this
janitor the broker grows slower (and its disk fuller) with every minute it runs: an idle platform's object store
used 15 CPU-s per minute after start and 25 CPU-s per minute 7 minutes later.

The janitor does what a Kafka broker's log cleaner does, through the object store's filer:

* ``cleanup.policy`` ``delete`` (and ``compact,delete``): every ``period_s`` it deletes the batches appended more
  than ``retention.ms`` ago (their object's modification time is the append time). As Kafka never deletes the
  active segment, it keeps the newest batch of every partition: Tansu answers ListOffsets from the objects it
  finds, and a partition without any would report offset 0. A consumer positioned on a deleted batch continues at
  the oldest one left (Tansu's fetch returns the batches from the requested offset on), as a Kafka consumer
  continues at the log start offset. Batches are listed in offset order, a page at a time, and a partition is
  listed again only once its oldest batch can have expired, so this costs what it deletes, not what topics hold.
* ``cleanup.policy`` ``compact``: every ``compact_every_s`` it deletes the batches whose every key has a record in
  a later batch (:mod:`edream.embedded.compaction`); each batch is read once for its keys.

Topics and their configs come from Tansu's own metadata (``clusters/<cluster>/meta.json``), so topics created at
run time (stage clocks, changelogs, repartition topics) are covered with the configs they were created with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from prometheus_client import Counter, Gauge

from edream.embedded.compaction import Keys, batch_keys, superseded

log = logging.getLogger(__name__)

EXPIRED = Counter("edream_broker_batches_expired", "Record batches the embedded broker's retention deleted")
COMPACTED = Counter(
    "edream_broker_batches_compacted",
    "Record batches of compacted topics deleted as superseded by later ones",
)
ROUND_FAILED = Gauge(
    "edream_broker_retention_failing",
    "1 while the embedded broker's retention rounds fail (store unreachable)",
)

#: Kafka's default ``retention.ms`` (7 days) for a topic created without one
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
#: batches listed per filer request
PAGE = 200


@dataclass(frozen=True)
class Batch:
    """One stored record batch: its object's name (``<base offset:020>.batch``) and append time (UTC epoch ms)."""

    name: str
    appended_ms: int


@dataclass(frozen=True)
class TopicMeta:
    """A topic as Tansu stores it: ``id`` (new when a topic of the same name is created again), partition count
    and configs."""

    id: str
    partitions: int
    configs: dict[str, str]


def _policy(configs: Mapping[str, str]) -> set[str]:
    return {p.strip() for p in configs.get("cleanup.policy", "delete").split(",")}


def retention_ms(configs: Mapping[str, str]) -> int | None:
    """How long a topic keeps its batches (ms), or None when nothing expires: ``cleanup.policy`` without
    ``delete`` (compaction only) or ``retention.ms`` -1."""
    if "delete" not in _policy(configs):
        return None
    ms = int(configs.get("retention.ms", DEFAULT_RETENTION_MS))
    return None if ms < 0 else ms


def compacted(configs: Mapping[str, str]) -> bool:
    """Whether the topic's ``cleanup.policy`` includes ``compact``."""
    return "compact" in _policy(configs)


def split_expired(batches: Iterable[Batch], cutoff_ms: int) -> tuple[list[Batch], Batch | None]:
    """The leading batches of a partition (``batches`` in offset order) appended before ``cutoff_ms``, never its
    newest batch; and the first batch kept (None when the partition has none). Reads ``batches`` only one past
    the last expired one."""
    gone: list[Batch] = []
    it = iter(batches)
    current = next(it, None)
    for following in it:
        if current is None or current.appended_ms >= cutoff_ms:
            break
        gone.append(current)
        current = following
    return gone, current


def _epoch_ms(stamp: str) -> int:
    """UTC epoch ms of a filer ``Mtime`` (RFC 3339, up to nanoseconds)."""
    head, _, rest = stamp.rstrip("Z").partition(".")
    frac = rest[:6].ljust(6, "0") if rest else "000000"
    return int(datetime.fromisoformat(f"{head}.{frac}+00:00").timestamp() * 1000)


class FilerBatches:
    """The batch objects of Tansu's S3 engine, read and deleted through a SeaweedFS filer's HTTP API."""

    def __init__(self, filer_url: Callable[[], str], bucket: str, client: httpx.Client | None = None):
        self.filer_url, self.bucket = filer_url, bucket
        self.client = client or httpx.Client(timeout=30.0)

    def _url(self, path: str) -> str:
        return f"{self.filer_url()}/buckets/{self.bucket}/{path}"

    def clusters(self) -> list[str]:
        return [e["FullPath"].rsplit("/", 1)[-1] for e in self._entries("clusters/", limit=100)]

    def topics(self, cluster: str) -> dict[str, TopicMeta]:
        """Topic name -> its id, partitions and configs, from Tansu's ``meta.json`` of ``cluster``."""
        r = self.client.get(self._url(f"clusters/{cluster}/meta.json"))
        if r.status_code == 404:
            return {}
        r.raise_for_status()
        out = {}
        for name, meta in (r.json().get("topics") or {}).items():
            topic = meta["topic"]
            configs = {
                c["name"]: c["value"] for c in topic.get("configs") or [] if c.get("value") is not None
            }
            out[name] = TopicMeta(str(meta.get("id", "")), int(topic["num_partitions"]), configs)
        return out

    def batches(self, cluster: str, topic: str, partition: int) -> Iterator[Batch]:
        """The partition's batches in offset order, listed ``PAGE`` at a time as they are read."""
        path = f"clusters/{cluster}/topics/{topic}/partitions/{partition:0>10}/records/"
        after = ""
        while True:
            entries = self._entries(path, limit=PAGE, after=after)
            for e in entries:
                name = e["FullPath"].rsplit("/", 1)[-1]
                if name.endswith(".batch"):
                    yield Batch(name, _epoch_ms(e["Mtime"]))
            if len(entries) < PAGE:
                return
            after = entries[-1]["FullPath"].rsplit("/", 1)[-1]

    def read(self, cluster: str, topic: str, partition: int, batch: Batch) -> bytes | None:
        """The stored batch's bytes (None when it is gone)."""
        r = self.client.get(self._url(self._path(cluster, topic, partition, batch)))
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.content

    def delete(self, cluster: str, topic: str, partition: int, batch: Batch) -> None:
        r = self.client.delete(self._url(self._path(cluster, topic, partition, batch)))
        if r.status_code not in (200, 202, 204, 404):
            r.raise_for_status()

    @staticmethod
    def _path(cluster: str, topic: str, partition: int, batch: Batch) -> str:
        return f"clusters/{cluster}/topics/{topic}/partitions/{partition:0>10}/records/{batch.name}"

    def _entries(self, path: str, limit: int, after: str = "") -> list[dict[str, Any]]:
        params = {"limit": str(limit), **({"lastFileName": after} if after else {})}
        r = self.client.get(self._url(path), params=params, headers={"Accept": "application/json"})
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return r.json().get("Entries") or []


class RetentionJanitor:
    """Applies every topic's retention to the embedded S3 store every ``period_s`` seconds, on its own thread,
    for as long as the platform runs. A failed round (store restarting, filer busy) is logged and retried the next
    round; the janitor never stops the platform."""

    def __init__(
        self,
        store: FilerBatches,
        period_s: float = 10.0,
        compact_every_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.store, self.period_s, self.clock = store, period_s, clock
        self.compact_every_ms = int(compact_every_s * 1000)
        #: (cluster, topic id, partition) -> UTC epoch ms before which it need not be listed again for expiry,
        #: and for compaction (a topic created again under an old name has new batches under the old names)
        self._next_look: dict[tuple[str, str, int], int] = {}
        self._next_compaction: dict[tuple[str, str, int], int] = {}
        #: (cluster, topic id, partition) -> batch name -> its keys (read once per batch)
        self._keys: dict[tuple[str, str, int], dict[str, Keys | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention-janitor", daemon=True)

    def start(self) -> RetentionJanitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.period_s + 30)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.run_once()
                ROUND_FAILED.set(0)
            except Exception as exc:  # noqa: BLE001 - retried next round; the store may be restarting
                ROUND_FAILED.set(1)
                log.warning("retention round failed (retried in %.0f s): %s", self.period_s, exc)

    def run_once(self) -> int:
        """One round over every topic with a retention or compaction; returns how many batches it deleted."""
        deleted = 0
        for cluster in self.store.clusters():
            for topic, meta in self.store.topics(cluster).items():
                keep_ms, compact = retention_ms(meta.configs), compacted(meta.configs)
                for p in range(meta.partitions):
                    if self._stop.is_set():
                        return deleted
                    if keep_ms is not None:
                        deleted += self._expire(cluster, topic, meta.id, p, keep_ms)
                    if compact:
                        deleted += self._compact(cluster, topic, meta.id, p)
        if deleted:
            log.debug("retention: deleted %d batches", deleted)
        return deleted

    def _compact(self, cluster: str, topic: str, topic_id: str, partition: int) -> int:
        """Delete the partition's batches whose every key a later batch has (every ``compact_every_s``)."""
        now = int(self.clock() * 1000)
        key = (cluster, topic_id, partition)
        if now < self._next_compaction.get(key, 0):
            return 0
        self._next_compaction[key] = now + self.compact_every_ms
        known = self._keys.setdefault(key, {})
        listed = list(self.store.batches(cluster, topic, partition))
        for batch in listed:
            if batch.name not in known:
                stored = self.store.read(cluster, topic, partition, batch)
                known[batch.name] = None if stored is None else batch_keys(stored)
        for name in set(known) - {b.name for b in listed}:  # expired or deleted meanwhile
            del known[name]
        gone = superseded([(b, known[b.name]) for b in listed])
        for batch in gone:
            self.store.delete(cluster, topic, partition, batch)
            del known[batch.name]
            COMPACTED.inc()
        return len(gone)

    def _expire(self, cluster: str, topic: str, topic_id: str, partition: int, keep_ms: int) -> int:
        now = int(self.clock() * 1000)
        key = (cluster, topic_id, partition)
        if now < self._next_look.get(key, 0):
            return 0
        gone, first_kept = split_expired(self.store.batches(cluster, topic, partition), now - keep_ms)
        for batch in gone:
            self.store.delete(cluster, topic, partition, batch)
            EXPIRED.inc()
        # the oldest batch left cannot expire sooner (nor can one appended from now on); a partition whose only
        # batch is old is looked at again after a quarter of its retention (at most a minute), not every round
        oldest = first_kept.appended_ms if first_kept else now
        self._next_look[key] = max(oldest + keep_ms, now + min(keep_ms // 4, 60_000))
        return len(gone)
