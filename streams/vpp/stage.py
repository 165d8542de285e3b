"""The vpp stage on the stream runtime: per-key state for assets, forecast entities and VPPs, joined by links.

Inputs (canonical names) and the key each is re-keyed to before it reaches the stage (every input goes through
the runtime's repartition, so every key is placed by the same partitioner as the links):

* ``vpp.assets.v1`` (VppAsset) and ``vpp.pv.degradation.v1`` (PvDegradation) -> ``asset_id``;
* ``forecast.profiles.v1`` (Forecast) -> ``entity_id``; ``baseline.15m.v1`` (Baseline) -> ``prosumer_id``, both
  by their message key, and only for entities some asset of the registry view names
  (:mod:`streams.vpp.asset_entities`: the others are dropped before the repartition topic);
* ``vpp.capability.requests.v1`` (VppCapabilityRequest) -> ``vpp_id``;
* ``vpp.links.v1`` (:mod:`streams.vpp.links`, written by this stage) is keyed by its target already.

How the pieces meet (state keys in :mod:`streams.vpp.stage_state`):

1. an asset's partition keeps its latest registry record and degradation estimate; a newer one is sent to the
   asset's VPP as a MEMBER link (and a LEAVE link to the previous VPP when the asset moved);
2. a VPP's partition keeps its members; when a member names a forecast entity no other member named, the VPP
   SUBSCRIBEs to it (and to its own id, for the community PORTFOLIO forecasts, while it has members);
3. an entity's partition keeps its latest forecasts and baseline slots and its subscribers: on SUBSCRIBE it sends
   what it has, afterwards every newer forecast/baseline, as FORECAST/BASELINE links;
4. requests are answered and exports evaluated on the VPP's partition from its members and its copies of their
   entities' outlook, by the same domain code as before (:class:`~streams.vpp.processor.VppProcessor`), so
   answers and exports keep their ids (``<request_id>/capability``; ``<vpp>/<market>/<slot_start>/
   <evaluated_at>``).

Timers: a partition's ``due`` index maps each of its VPPs to the wall-clock time (UTC epoch ms) its next export
is due: 0 after a registry change of a member (evaluated at the next tick), else the start of the next
``export_every_minutes`` period after the last evaluation. A tick reads that one key.

Every link is idempotent (set membership, newest-wins merges), so the duplicates at-least-once delivery may
produce change nothing. Bad input on the VPP's own topics (undecodable, wrong contract, a VppAsset or request or
estimate that fails validation, a request that cannot be evaluated) raises :class:`InvalidInput`: the runtime
dead-letters it with the reason. Undecodable forecasts and baselines are skipped and counted (their sinks
dead-letter them); decodable ones outside the bounds of :mod:`streams.vpp.input_checks` are dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import DecodeError, Serde
from streams.validation.fields import describe
from streams.validation.vpp import check_capability_request
from streams.vpp.events import TOPIC_CAPABILITY, TOPIC_CAPABILITY_REQUESTS, TOPIC_EXPORT
from streams.vpp.input_checks import check_baseline, check_degradation, check_forecast
from streams.vpp.links import TOPIC_LINKS, Link, LinkKind, decode_link, encode_link
from streams.vpp.processor import VppConfig, VppProcessor
from streams.vpp.pv_degradation import TOPIC_DEGRADATION
from streams.vpp.registry import TOPIC_ASSETS, RegistryError, asset_record, registered_from_record
from streams.vpp.stage_state import COMMUNITY, AssetFacts, StageState, merge_forecast, merge_slots

log = logging.getLogger(__name__)

FORECAST_TOPIC = "forecast.profiles.v1"
BASELINE_TOPIC = "baseline.15m.v1"
HOUR_MS = 3_600_000
#: canonical input topic -> (contract, field holding the state key)
INPUTS: dict[str, tuple[str, str]] = {
    TOPIC_ASSETS: ("VppAsset", "asset_id"),
    TOPIC_DEGRADATION: ("PvDegradation", "asset_id"),
    FORECAST_TOPIC: ("Forecast", "entity_id"),
    BASELINE_TOPIC: ("Baseline", "prosumer_id"),
    TOPIC_CAPABILITY_REQUESTS: ("VppCapabilityRequest", "vpp_id"),
}
#: inputs whose bad records are the stage's business (dead-lettered); the others are skipped when undecodable
STRICT = (TOPIC_ASSETS, TOPIC_DEGRADATION, TOPIC_CAPABILITY_REQUESTS, TOPIC_LINKS)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class InvalidInput(DecodeError):
    """A message of the VPP's inputs that cannot be used; the message says why (dead-lettered)."""


#: inputs the analytics stages key by their state key field: routed by the message key without being decoded (the
#: stage dead-letters a record whose field is not that key)
BY_MESSAGE_KEY = (FORECAST_TOPIC, BASELINE_TOPIC)


def state_key_of(
    serde: Serde, topic: str, canonical: str, wanted: Callable[[str], bool] | None = None
) -> Callable[[bytes | None, bytes], Iterable[bytes]]:
    """Re-key function of one input: the record's key field (no key: the record is dropped before the stage;
    undecodable: the runtime hands it to the stage, which says why); the message key for :data:`BY_MESSAGE_KEY`,
    dropping the records of entities ``wanted`` says no VPP asset names
    (:class:`~streams.vpp.asset_entities.AssetEntities`; None: every entity)."""
    contract, field = INPUTS[canonical]
    if canonical in BY_MESSAGE_KEY:
        if wanted is None:
            return _message_key

        def entity_key(key: bytes | None, value: bytes) -> list[bytes]:
            return [key] if key and wanted(key.decode("utf-8", "replace")) else []

        return entity_key

    def rekey(_key: bytes | None, value: bytes) -> list[bytes]:
        name, rec = serde.decode(value, topic)
        if name != contract:
            raise DecodeError(f"expected {contract} on {topic}, got {name}")
        key = rec.get(field)
        return [str(key).encode()] if key else []

    return rekey


def _message_key(key: bytes | None, value: bytes) -> list[bytes]:
    return [key] if key else []


class VppStage:
    """StageProcessor of the vpp stage (see module doc). ``topics``: canonical -> loaded topic names;
    ``clock``: the wall clock (UTC epoch ms) the validation bounds are checked against."""

    def __init__(
        self,
        serde: Serde,
        config: VppConfig | None = None,
        topics: Mapping[str, str] | None = None,
        clock: Callable[[], int] = wall_clock_ms,
    ):
        self.serde, self.config, self.clock = serde, config or VppConfig(), clock
        names = dict(topics or {})
        self.topic = {t: names.get(t, t) for t in (*INPUTS, TOPIC_LINKS, TOPIC_CAPABILITY, TOPIC_EXPORT)}
        self.canonical = {v: k for k, v in self.topic.items()}
        self.skipped = 0

    # -- records --------------------------------------------------------------------------------------------
    def on_record(self, record: Record, state: KeyValueState) -> list[Emit]:
        canonical = self.canonical.get(record.topic, record.topic)
        st = StageState(state)
        if canonical == TOPIC_LINKS:
            try:
                link = decode_link(self.serde, record.value, record.topic)
            except (DecodeError, ValueError, KeyError) as exc:
                raise InvalidInput(f"vpp: {exc}") from exc
            return self._links(self._on_link(link, st))
        rec = self._decode(record, canonical)
        if rec is None:
            return []
        if canonical == TOPIC_ASSETS:
            return self._links(self._on_asset(rec, st))
        if canonical == TOPIC_DEGRADATION:
            return self._links(self._on_degradation(rec, st))
        if canonical == FORECAST_TOPIC:
            return self._links(self._on_forecast(rec, st))
        if canonical == BASELINE_TOPIC:
            return self._links(self._on_baseline(rec, st))
        if canonical == TOPIC_CAPABILITY_REQUESTS:
            return self._on_request(rec, record.timestamp_ms, st)
        raise InvalidInput(f"vpp: not an input of this stage: {record.topic}")

    def _decode(self, record: Record, canonical: str) -> dict[str, Any] | None:
        contract, _ = INPUTS[canonical]
        try:
            name, rec = self.serde.decode(record.value, record.topic)
            if name != contract:
                raise DecodeError(f"expected {contract} on {record.topic}, got {name}")
        except DecodeError as exc:
            if canonical in STRICT:
                raise InvalidInput(f"vpp: {exc}") from exc
            self.skipped += 1
            return None
        field = INPUTS[canonical][1]
        if canonical in BY_MESSAGE_KEY and str(rec.get(field)).encode() != record.key:
            raise InvalidInput(
                f"vpp: {contract} of {field} {str(rec.get(field))[:64]!r} came under the message key "
                f"{record.key[:64]!r}; {record.topic} must be keyed by {field}"
            )
        return rec

    def _links(self, links: Iterable[Link]) -> list[Emit]:
        t = self.topic[TOPIC_LINKS]
        return [Emit(t, link.target.encode(), encode_link(self.serde, link, t)) for link in links]

    # -- asset partition ------------------------------------------------------------------------------------
    def _on_asset(self, rec: dict[str, Any], st: StageState) -> list[Link]:
        try:
            reg = registered_from_record(rec)
        except RegistryError as exc:
            raise InvalidInput(f"vpp: invalid asset: {exc}") from exc
        facts = st.asset(reg.asset_id)
        old = facts.record
        if old is not None and int(old["updated_at"]) > reg.updated_at:
            return []  # an older version (the registry keeps the latest)
        facts.record = asset_record(reg.spec, reg.updated_at)
        st.put_asset(reg.asset_id, facts)
        links = [
            Link(LinkKind.MEMBER, reg.vpp_id, reg.vpp_id, reg.asset_id, reg.updated_at, facts.model_dump())
        ]
        if old is not None and old["vpp_id"] != reg.vpp_id:
            links.append(Link(LinkKind.LEAVE, old["vpp_id"], old["vpp_id"], reg.asset_id, reg.updated_at))
        return links

    def _on_degradation(self, rec: dict[str, Any], st: StageState) -> list[Link]:
        if errors := check_degradation(rec, self.clock()):
            raise InvalidInput(f"vpp: PvDegradation {str(rec.get('event_id'))[:64]!r}: {describe(errors)}")
        aid = str(rec["asset_id"])
        facts = st.asset(aid)
        if facts.degradation is not None and int(facts.degradation["computed_at"]) > int(rec["computed_at"]):
            return []
        facts.degradation = dict(rec)
        st.put_asset(aid, facts)
        if facts.record is None:
            return []  # kept until the asset is registered
        vpp = facts.record["vpp_id"]
        return [Link(LinkKind.MEMBER, vpp, vpp, aid, int(facts.record["updated_at"]), facts.model_dump())]

    # -- entity partition -----------------------------------------------------------------------------------
    def _on_forecast(self, rec: dict[str, Any], st: StageState) -> list[Link]:
        if errors := check_forecast(rec, self.clock()):
            raise InvalidInput(f"vpp: Forecast {str(rec.get('event_id'))[:64]!r}: {describe(errors)}")
        entity = str(rec["entity_id"])
        book = st.entity_forecasts(entity)
        if not merge_forecast(book, rec):
            return []
        st.put_entity_forecasts(entity, book)
        return [Link(LinkKind.FORECAST, v, v, entity, body=rec) for v in st.subscribers(entity)]

    def _on_baseline(self, rec: dict[str, Any], st: StageState) -> list[Link]:
        if errors := check_baseline(rec, self.clock()):
            raise InvalidInput(f"vpp: Baseline {str(rec.get('event_id'))[:64]!r}: {describe(errors)}")
        entity = str(rec["prosumer_id"])
        slot = {
            str(rec["isp_start"]): [
                int(rec.get("version", 1)),
                int(rec["isp_end"]),
                float(rec["baseline_kw"]),
            ]
        }
        slots = st.entity_baselines(entity)
        if not merge_slots(slots, slot):
            return []
        st.put_entity_baselines(entity, slots)
        return [Link(LinkKind.BASELINE, v, v, entity, body=slot) for v in st.subscribers(entity)]

    # -- links ----------------------------------------------------------------------------------------------
    def _on_link(self, link: Link, st: StageState) -> list[Link]:
        kind, vpp, subject = link.kind, link.vpp_id, link.subject
        if kind == LinkKind.MEMBER:
            return self._member(vpp, subject, AssetFacts.model_validate(link.body), st)
        if kind == LinkKind.LEAVE:
            return self._leave(vpp, subject, link.version, st)
        if kind == LinkKind.SUBSCRIBE:
            st.put_subscribers(subject, [*st.subscribers(subject), vpp])
            out = [
                Link(LinkKind.FORECAST, vpp, vpp, subject, body=f)
                for f in st.entity_forecasts(subject).values()
            ]
            if slots := st.entity_baselines(subject):
                out.append(Link(LinkKind.BASELINE, vpp, vpp, subject, body=slots))
            return out
        if kind == LinkKind.UNSUBSCRIBE:
            st.put_subscribers(subject, [v for v in st.subscribers(subject) if v != vpp])
            return []
        if not st.refs(vpp, subject):
            return []  # the VPP no longer needs this entity (a link sent before it unsubscribed)
        if kind == LinkKind.FORECAST:
            book = st.vpp_forecasts(vpp, subject)
            if merge_forecast(book, link.body):
                st.put_vpp_forecasts(vpp, subject, book)
        else:
            slots = st.vpp_baselines(vpp, subject)
            if merge_slots(slots, link.body):
                st.put_vpp_baselines(vpp, subject, slots)
        return []

    def _member(self, vpp: str, asset_id: str, facts: AssetFacts, st: StageState) -> list[Link]:
        reg = registered_from_record(facts.record or {})
        old = st.member(vpp, asset_id)
        if old is not None and old.version() > facts.version():
            return []
        new = facts if reg.spec.active else None
        registry_changed = old is None or old.version()[0] != reg.updated_at or new is None
        st.put_member(vpp, asset_id, new)
        return self._membership(vpp, asset_id, old, new, reg.updated_at, registry_changed, st)

    def _leave(self, vpp: str, asset_id: str, version: int, st: StageState) -> list[Link]:
        old = st.member(vpp, asset_id)
        if old is None or old.version()[0] > version:
            return []
        st.put_member(vpp, asset_id, None)
        return self._membership(vpp, asset_id, old, None, version, True, st)

    def _membership(
        self,
        vpp: str,
        asset_id: str,
        old: AssetFacts | None,
        new: AssetFacts | None,
        version: int,
        registry_changed: bool,
        st: StageState,
    ) -> list[Link]:
        """Update the VPP's head, its entity references and its due time after a member changed."""
        head = st.head(vpp)
        had_members = bool(head.members)
        members = set(head.members)
        (members.add if new is not None else members.discard)(asset_id)
        head.members = sorted(members)
        head.portfolio_updated_at = max(head.portfolio_updated_at, version)
        st.put_head(vpp, head)
        links: list[Link] = []
        old_entity, new_entity = _entity(old), _entity(new)
        if old_entity != new_entity:
            links += self._unref(vpp, old_entity, asset_id, st)
            links += self._ref(vpp, new_entity, asset_id, st)
        if had_members != bool(head.members):
            change = self._ref if head.members else self._unref
            links += change(vpp, vpp, COMMUNITY, st)
        if registry_changed:
            due = st.due()
            if head.members:
                due[vpp] = 0
            else:
                due.pop(vpp, None)
            st.put_due(due)
        return links

    def _ref(self, vpp: str, entity: str | None, ref: str, st: StageState) -> list[Link]:
        if entity is None:
            return []
        refs = st.refs(vpp, entity)
        if ref in refs:
            return []
        st.put_refs(vpp, entity, [*refs, ref])
        return [] if refs else [Link(LinkKind.SUBSCRIBE, entity, vpp, entity)]

    def _unref(self, vpp: str, entity: str | None, ref: str, st: StageState) -> list[Link]:
        if entity is None:
            return []
        refs = st.refs(vpp, entity)
        if ref not in refs:
            return []
        left = [r for r in refs if r != ref]
        st.put_refs(vpp, entity, left)
        if left:
            return []
        st.put_vpp_forecasts(vpp, entity, {})
        st.put_vpp_baselines(vpp, entity, {})
        return [Link(LinkKind.UNSUBSCRIBE, entity, vpp, entity)]

    # -- VPP partition: capability and export ---------------------------------------------------------------
    def portfolio(self, vpp: str, st: StageState) -> VppProcessor:
        """The domain processor loaded with one VPP's members, estimates, forecasts and baselines."""
        proc = VppProcessor(self.config)
        entities = {vpp}
        for asset_id in st.head(vpp).members:
            facts = st.member(vpp, asset_id)
            if facts is None or facts.record is None:
                continue
            reg = registered_from_record(facts.record)
            proc.portfolio.upsert(reg)
            if facts.degradation is not None:
                proc.degradation.observe(facts.degradation)
            if reg.spec.forecast_entity_id:
                entities.add(reg.spec.forecast_entity_id)
        for entity in sorted(entities):
            for rec in st.vpp_forecasts(vpp, entity).values():
                proc.forecasts.observe(rec)
            if slots := st.vpp_baselines(vpp, entity):
                proc.baselines.slots[entity] = {
                    int(s): (int(v[0]), int(v[1]), float(v[2])) for s, v in slots.items()
                }
        return proc

    def _on_request(self, rec: dict[str, Any], timestamp_ms: int, st: StageState) -> list[Emit]:
        rid = str(rec.get("request_id"))[:64]
        if errors := check_capability_request(rec, self.clock()):
            raise InvalidInput(f"vpp: capability request {rid!r}: {describe(errors)}")
        vpp, request_id = str(rec["vpp_id"]), str(rec["request_id"])
        if st.answered(vpp, request_id):
            return []
        try:
            [out] = self.portfolio(vpp, st).on_request(rec)
        except Exception as exc:  # noqa: BLE001 - a request that cannot be evaluated is dead-lettered with why
            log.warning("vpp: capability request %s not answered: %s", rid, exc)
            raise InvalidInput(f"vpp: capability request {rid!r}: {exc}") from exc
        st.mark_answered(vpp, request_id, timestamp_ms // HOUR_MS)
        t = self.topic[TOPIC_CAPABILITY]
        return [Emit(t, vpp.encode(), self.serde.encode(out.schema, out.record, t))]

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> list[Emit]:
        """Evaluate the export of every VPP of this partition that is due at ``now_ms`` (wall clock, UTC epoch
        ms); forget answered requests older than ``remember_requests_hours``."""
        st = StageState(state)
        due = st.due()
        every = self.config.every_ms
        t = self.topic[TOPIC_EXPORT]
        out = []
        for vpp in sorted(v for v, at in due.items() if at <= now_ms):
            rec = self.portfolio(vpp, st).evaluate_export(vpp, now_ms)
            out.append(Emit(t, vpp.encode(), self.serde.encode("VppExportCapacity", rec, t)))
            head = st.head(vpp)
            head.last_evaluated_at = now_ms
            st.put_head(vpp, head)
            due[vpp] = (now_ms // every + 1) * every
        if out:
            st.put_due(due)
        st.forget_answered_before(int(now_ms - self.config.remember_requests_hours * HOUR_MS) // HOUR_MS)
        return out


def _entity(facts: AssetFacts | None) -> str | None:
    if facts is None or facts.record is None:
        return None
    return facts.record.get("forecast_entity_id") or None
