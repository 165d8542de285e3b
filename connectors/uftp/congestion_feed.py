"""The DSO side of UFTP, reading: ``grid.congestion.v1`` (the grid stage's forecast) -> the UFTP FlexRequests due
(:mod:`connectors.uftp.congestion_requests`), for a DSO process to send to its aggregator.

A point's records of one forecast issue arrive over a few polls, so a point is asked for once no record of it came
for ``quiet_ms`` (the whole issue is in); a request already handed out (same MessageID) is not handed out again
while it is unexpired. Offsets are committed by :meth:`CongestionFeed.commit` once the caller has taken the requests
(at-least-once: after a crash the records since are read again and give the same MessageIDs, which the gateway
refuses as replays). Only each point's latest issue is kept, so memory is bounded by points x slots.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer
from shapeshifter_uftp import FlexRequest as UftpRequest

from connectors.uftp.congestion_requests import DsoRequestPolicy, congestion_requests, latest_issue
from connectors.uftp.isp import iso_ms
from edream.serde import Serde

log = logging.getLogger("edream.uftp.congestion_feed")


class CongestionFeed:
    """``consumer_conf``: librdkafka settings (bootstrap, security); ``group``: the consumer group; ``eans``: grid
    congestion point id -> UFTP CongestionPoint (EAN)."""

    def __init__(
        self,
        consumer_conf: Mapping[str, Any],
        topic: str,
        eans: Mapping[str, str],
        serde: Serde,
        group: str,
        policy: DsoRequestPolicy | None = None,
        quiet_ms: int = 2_000,
    ):
        self.topic, self.eans, self.serde, self.policy, self.quiet_ms = (
            topic,
            dict(eans),
            serde,
            policy,
            quiet_ms,
        )
        self._consumer = Consumer(
            {
                **consumer_conf,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self._consumer.subscribe([topic])
        self._records: dict[str, list[Mapping[str, Any]]] = {}  # point -> its latest issue's records
        self._heard: dict[str, int] = {}  # point -> UTC epoch ms of its last record, until asked for
        self._handed: dict[str, int] = {}  # MessageID -> expiry (UTC epoch ms)

    def poll(self, now_ms: int, timeout_s: float = 0.0) -> list[UftpRequest]:
        """Read what has arrived; the requests of the points that went quiet and were not handed out yet."""
        for msg in self._consumer.consume(1000, timeout_s):
            if msg.error():
                log.warning("congestion feed: %s", msg.error())
                continue
            try:
                _, rec = self.serde.decode(msg.value(), self.topic)
                point = rec["congestion_point_id"]
            except Exception as exc:  # noqa: BLE001 - the grid stage's output; a bad record is skipped and said
                log.warning("congestion feed: undecodable record at offset %s skipped: %s", msg.offset(), exc)
                continue
            if point not in self.eans:
                continue
            self._records[point] = latest_issue([*self._records.get(point, []), rec]).get(point, [])
            self._heard[point] = now_ms
        due = [p for p, t in self._heard.items() if now_ms - t >= self.quiet_ms]
        out: list[UftpRequest] = []
        for point in due:
            del self._heard[point]
            for req in congestion_requests(self._records[point], self.eans, now_ms, self.policy):
                if req.message_id not in self._handed:
                    self._handed[req.message_id] = iso_ms(req.expiration_date_time)
                    out.append(req)
        self._handed = {m: exp for m, exp in self._handed.items() if exp > now_ms}
        return out

    def commit(self) -> None:
        """Commit the offsets read so far (call once the requests :meth:`poll` returned are taken)."""
        try:
            self._consumer.commit(asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - nothing to commit yet, or the broker away: read again later
            log.debug("congestion feed: commit skipped (%s)", exc)

    def close(self) -> None:
        self._consumer.close()


def congestion_points(spec: str, where: str = "UFTP_DSO_CONGESTION_POINTS") -> dict[str, str]:
    """``"feeder/T1=ean.8716...,feeder/L2=ean.8716..."`` -> {grid congestion point id: EAN}; a malformed entry is a
    ValueError naming ``where``, the entry and what is wrong."""
    out: dict[str, str] = {}
    for n, entry in enumerate(e.strip() for e in spec.split(",")):
        if not entry:
            continue
        point, sep, ean = (x.strip() for x in entry.partition("="))
        if not sep or not point or not ean:
            raise ValueError(f"{where}: entry {n} {entry!r}: expected <congestion point id>=<EAN>")
        if point in out:
            raise ValueError(f"{where}: entry {n}: congestion point {point!r} given twice")
        out[point] = ean
    return out
