"""Retention for the embedded durable broker: deletes the record batches that a topic's ``retention.ms`` expired.

Tansu 0.6's S3 engine stores every produced batch as one object
(``clusters/<cluster>/topics/<topic>/partitions/<p:010>/records/<base offset:020>.batch``) and never deletes one:
``retention.ms`` is stored with the topic but not applied, and ``DeleteRecords`` is not implemented. Every fetch
of a partition with new data lists all of that partition's objects, so without this janitor the broker grows
slower (and its disk fuller) with every minute it runs: an idle platform's object store used 15 CPU-s per minute
after start and 25 CPU-s per minute 7 minutes later.

The janitor does what a Kafka broker's log cleaner does for ``cleanup.policy`` ``delete`` and ``compact,delete``:
every ``period_s`` it deletes the batches appended more than ``retention.ms`` ago (their object's modification
time is the append time), through the object store's filer. As Kafka never deletes the active segment, it keeps
the newest batch of every partition: Tansu answers ListOffsets from the objects it finds, and a partition without
any would report offset 0. A consumer positioned on a deleted batch continues at the oldest one left (Tansu's
fetch returns the batches from the requested offset on), as a Kafka consumer continues at the log start offset.

Topics and their configs come from Tansu's own metadata (``clusters/<cluster>/meta.json``), so topics created at
run time (stage clocks, repartition topics) are covered with the configs they were created with. Batches are
listed in offset order, a page at a time, and a partition is listed again only once its oldest batch can have
expired, so the janitor's own cost follows what it deletes, not what the topics hold.
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

log = logging.getLogger(__name__)

EXPIRED = Counter("edream_broker_batches_expired", "Record batches the embedded broker's retention deleted")
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


def retention_ms(configs: Mapping[str, str]) -> int | None:
    """How long a topic keeps its batches (ms), or None when nothing expires: ``cleanup.policy`` without
    ``delete`` (compaction only, which the janitor does not do) or ``retention.ms`` -1."""
    policy = {p.strip() for p in configs.get("cleanup.policy", "delete").split(",")}
    if "delete" not in policy:
        return None
    ms = int(configs.get("retention.ms", DEFAULT_RETENTION_MS))
    return None if ms < 0 else ms


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

    def topics(self, cluster: str) -> dict[str, tuple[int, dict[str, str]]]:
        """Topic name -> (partitions, configs) from Tansu's ``meta.json`` of ``cluster``."""
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
            out[name] = (int(topic["num_partitions"]), configs)
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

    def delete(self, cluster: str, topic: str, partition: int, batch: Batch) -> None:
        path = f"clusters/{cluster}/topics/{topic}/partitions/{partition:0>10}/records/{batch.name}"
        r = self.client.delete(self._url(path))
        if r.status_code not in (200, 202, 204, 404):
            r.raise_for_status()

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

    def __init__(self, store: FilerBatches, period_s: float = 10.0, clock: Callable[[], float] = time.time):
        self.store, self.period_s, self.clock = store, period_s, clock
        #: (cluster, topic, partition) -> UTC epoch ms before which it need not be listed again
        self._next_look: dict[tuple[str, str, int], int] = {}
        self.deleted = 0
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
        """One round over every topic with a retention; returns how many batches it deleted."""
        deleted = 0
        for cluster in self.store.clusters():
            for topic, (partitions, configs) in self.store.topics(cluster).items():
                keep_ms = retention_ms(configs)
                if keep_ms is None:
                    continue
                for p in range(partitions):
                    if self._stop.is_set():
                        return deleted
                    deleted += self._clean(cluster, topic, p, keep_ms)
        self.deleted += deleted
        if deleted:
            log.debug("retention: deleted %d expired batches", deleted)
        return deleted

    def _clean(self, cluster: str, topic: str, partition: int, keep_ms: int) -> int:
        now = int(self.clock() * 1000)
        key = (cluster, topic, partition)
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
