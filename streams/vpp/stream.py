"""Stream adapter of the VPP service for :class:`~streams.stateful_loop.StatefulLoop`.

Inputs (canonical names, mapped to the topology's): ``vpp.assets.v1`` (compacted registry), ``vpp.capability
.requests.v1``, ``forecast.profiles.v1``, ``baseline.15m.v1``, ``vpp.pv.degradation.v1`` (compacted PV
degradation estimates). Outputs: ``vpp.capability.v1`` and
``vpp.export.v1``. The worker's clock drives :meth:`VppStream.tick` once the consumer is caught up, so exports
are evaluated on time even when no event arrives. The whole :class:`~streams.vpp.processor.VppProcessor`
(portfolio, forecasts, baselines, degradation estimates, schedule, answered requests) is the snapshot, so a restart resumes it.

Bad input on the VPP's own topics (undecodable bytes, a record of another contract, a VppAsset that fails
validation, a capability request outside its bounds (:mod:`streams.validation.vpp`), a PvDegradation without its asset id or computed_at, a request that cannot be evaluated) raises :class:`InvalidInput` (a
:class:`~edream.serde.DecodeError`): the loop dead-letters the message with its position, original bytes and
the reason. Undecodable forecasts and baselines are skipped and counted (their sinks dead-letter them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from edream.serde import DecodeError, Serde
from streams import snapshots
from streams.outputs import Emit, Out, encode_outs
from streams.validation.fields import describe
from streams.validation.vpp import check_capability_request
from streams.vpp.events import TOPIC_CAPABILITY_REQUESTS
from streams.vpp.processor import VppConfig, VppProcessor
from streams.vpp.pv_degradation import TOPIC_DEGRADATION
from streams.vpp.registry import TOPIC_ASSETS, RegistryError, registered_from_record

log = logging.getLogger(__name__)
FORECAST_TOPIC = "forecast.profiles.v1"
BASELINE_TOPIC = "baseline.15m.v1"
INPUT_TOPICS = (TOPIC_ASSETS, TOPIC_CAPABILITY_REQUESTS, FORECAST_TOPIC, BASELINE_TOPIC, TOPIC_DEGRADATION)
#: canonical input topic -> the contract it carries
CONTRACTS = {
    TOPIC_ASSETS: "VppAsset",
    TOPIC_CAPABILITY_REQUESTS: "VppCapabilityRequest",
    FORECAST_TOPIC: "Forecast",
    BASELINE_TOPIC: "Baseline",
    TOPIC_DEGRADATION: "PvDegradation",
}


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class InvalidInput(DecodeError):
    """A message of the VPP's inputs that cannot be used; the message says why (dead-lettered by the loop)."""


class VppStream:
    def __init__(
        self, serde: Serde, processor: VppProcessor | None = None, topics: Mapping[str, str] | None = None
    ):
        self.serde = serde
        self.processor = processor or VppProcessor()
        self.topics = dict(topics or {})
        self.canonical = {v: k for k, v in self.topics.items()}
        self.skipped = 0

    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]:
        canonical = self.canonical.get(topic, topic)
        expected = CONTRACTS.get(canonical)
        strict = canonical in (TOPIC_ASSETS, TOPIC_CAPABILITY_REQUESTS, TOPIC_DEGRADATION)
        try:
            name, rec = self.serde.decode(value, topic)
            if name != expected:
                raise DecodeError(f"expected {expected} on {topic}, got {name}")
        except DecodeError as exc:
            if strict:
                raise InvalidInput(f"vpp: {exc}") from exc
            self.skipped += 1
            return []
        proc = self.processor
        if name == "VppAsset":
            try:
                return self._encode(proc.on_asset(registered_from_record(rec)))
            except RegistryError as exc:
                raise InvalidInput(f"vpp: invalid asset: {exc}") from exc
        if name == "VppCapabilityRequest":
            if errors := check_capability_request(rec, wall_clock_ms()):
                raise InvalidInput(
                    f"vpp: capability request {str(rec.get('request_id'))[:64]!r}: {describe(errors)}"
                )
            try:
                return self._encode(proc.on_request(rec))
            except Exception as exc:  # noqa: BLE001 - a request that cannot be evaluated must not stop the loop
                log.warning("vpp: capability request %s not answered: %s", rec.get("request_id"), exc)
                raise InvalidInput(f"vpp: capability request {rec.get('request_id')!r}: {exc}") from exc
        if name == "PvDegradation":
            if not rec.get("asset_id") or rec.get("computed_at") is None:
                raise InvalidInput("vpp: PvDegradation without asset_id or computed_at")
            return self._encode(proc.on_degradation(rec))
        if name == "Forecast":
            return self._encode(proc.on_forecast(rec))
        return self._encode(proc.on_baseline(rec))

    def tick(self, now_ms: int) -> list[Emit]:
        return self._encode(self.processor.on_tick(now_ms))

    def _encode(self, outs: list[Out]) -> list[Emit]:
        return encode_outs(self.serde, self.topics, outs)

    def snapshot(self) -> bytes:
        return snapshots.dump(self.processor)

    @classmethod
    def restore(
        cls,
        serde: Serde,
        blob: bytes,
        topics: Mapping[str, str] | None = None,
        config: VppConfig | None = None,
    ) -> VppStream:
        """Resume from a snapshot; ``config`` (the current vpp.yaml) replaces the snapshot's."""
        proc = snapshots.load(blob, VppProcessor)
        if config is not None:
            proc.config = config
        return cls(serde, proc, topics)
