"""The vpp stage's partition state: which keys exist, what they hold, JSON (orjson) values - nothing that
executes code on load.

Three kinds of key live side by side in a partition's store, each on the partition of its own id:

==============================  ==========================================================================
key                             value
==============================  ==========================================================================
``a:<asset_id>``                :class:`AssetFacts`: the asset's latest registry record and PV estimate
``es:<entity_id>``              VPP ids subscribed to the entity's outlook (sorted list)
``ef:<entity_id>``              latest Forecast record per ``property/granularity`` of the entity
``eb:<entity_id>``              baseline slots of the entity: ``isp_start -> [version, isp_end, kW]``
``v:<vpp_id>``                  :class:`VppHead`: active member ids, portfolio version, last evaluation
``m:<vpp_id>|<asset_id>``       :class:`AssetFacts` of a member, as the VPP last heard from the asset
``r:<vpp_id>|<entity_id>``      member asset ids whose forecast entity it is (``""``: the VPP itself)
``vf:`` / ``vb:<vpp>|<entity>`` the VPP's copy of the entity's forecasts / baseline slots
``q:<vpp_id>|<request_id>``     the request was answered (see :data:`ANSWERED_BUCKETS`)
``due``                         per partition: vpp_id -> UTC epoch ms its next export is due (0 = now)
``qhours`` / ``qx:<hour>``       per partition: hours (record time) with answered-request keys
==============================  ==========================================================================

``|`` above is the unit separator ``\\x1f``. Every record reads and writes only the keys of the ids it concerns.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from edream.runtime.contract import KeyValueState
from streams.vpp.outlook import BASELINE_KEEP_MS

SEP = "\x1f"
DUE = "due"
ANSWERED_BUCKETS = "qhours"
#: the reference a VPP holds on its own id: community (PORTFOLIO) forecasts
COMMUNITY = ""

#: baseline slots: str(isp_start) -> [version, isp_end, baseline_kw]
Slots = dict[str, list[Any]]
#: forecasts: "property|granularity" -> Forecast record
Forecasts = dict[str, dict[str, Any]]


class AssetFacts(BaseModel):
    """What is known of one asset: its latest VppAsset record (validated, ``updated_at`` UTC epoch ms) and its
    latest PvDegradation record (highest ``computed_at``)."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any] | None = None
    degradation: dict[str, Any] | None = None

    def version(self) -> tuple[int, int]:
        """Order of two views of the same asset: registry version, then estimate time."""
        rec_v = int(self.record["updated_at"]) if self.record else -1
        deg_v = int(self.degradation["computed_at"]) if self.degradation else -1
        return rec_v, deg_v


class VppHead(BaseModel):
    """One VPP: its active members (sorted asset ids), the latest registry change of any of its assets
    (``portfolio_updated_at``, UTC epoch ms, removals included) and its last export evaluation."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = []
    portfolio_updated_at: int = 0
    last_evaluated_at: int | None = None


def _pair(vpp_id: str, other: str) -> str:
    return f"{vpp_id}{SEP}{other}"


def forecast_slot(rec: dict[str, Any]) -> str:
    return f"{rec['property']}|{rec['prediction_granularity']}"


def merge_forecast(book: Forecasts, rec: dict[str, Any]) -> bool:
    """Keep ``rec`` if it was issued after the stored forecast of its property and granularity."""
    slot = forecast_slot(rec)
    old = book.get(slot)
    if old is not None and int(old["issued_at"]) >= int(rec["issued_at"]):
        return False
    book[slot] = rec
    return True


def merge_slots(book: Slots, new: Slots) -> bool:
    """Merge baseline slots (a version not lower than the stored one wins, as in
    :class:`~streams.vpp.outlook.BaselineBook`); forget slots that ended more than ``BASELINE_KEEP_MS`` before
    the latest slot end known. True when anything changed."""
    changed = False
    for start, value in new.items():
        old = book.get(start)
        if old is not None and (old[0] > value[0] or old == value):
            continue
        book[start] = list(value)
        changed = True
    if changed and book:
        horizon = max(int(v[1]) for v in book.values()) - BASELINE_KEEP_MS
        for start in [s for s, v in book.items() if int(v[1]) < horizon]:
            del book[start]
    return changed


class StageState:
    """Typed access to one partition's :class:`~edream.runtime.contract.KeyValueState`."""

    def __init__(self, kv: KeyValueState):
        self.kv = kv

    # -- plumbing -------------------------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        raw = self.kv.get(key)
        return None if raw is None else orjson.loads(raw)

    def _set(self, key: str, value: Any) -> None:
        self.kv.set(key, orjson.dumps(value))

    def _set_or_delete(self, key: str, value: Any) -> None:
        if value:
            self._set(key, value)
        else:
            self.kv.delete(key)

    # -- assets ---------------------------------------------------------------------------------------------
    def asset(self, asset_id: str) -> AssetFacts:
        raw = self._get(f"a:{asset_id}")
        return AssetFacts() if raw is None else AssetFacts.model_validate(raw)

    def put_asset(self, asset_id: str, facts: AssetFacts) -> None:
        self._set(f"a:{asset_id}", facts.model_dump())

    # -- entities -------------------------------------------------------------------------------------------
    def subscribers(self, entity_id: str) -> list[str]:
        return self._get(f"es:{entity_id}") or []

    def put_subscribers(self, entity_id: str, vpp_ids: list[str]) -> None:
        self._set_or_delete(f"es:{entity_id}", sorted(set(vpp_ids)))

    def entity_forecasts(self, entity_id: str) -> Forecasts:
        return self._get(f"ef:{entity_id}") or {}

    def put_entity_forecasts(self, entity_id: str, book: Forecasts) -> None:
        self._set(f"ef:{entity_id}", book)

    def entity_baselines(self, entity_id: str) -> Slots:
        return self._get(f"eb:{entity_id}") or {}

    def put_entity_baselines(self, entity_id: str, slots: Slots) -> None:
        self._set_or_delete(f"eb:{entity_id}", slots)

    # -- VPPs -----------------------------------------------------------------------------------------------
    def head(self, vpp_id: str) -> VppHead:
        raw = self._get(f"v:{vpp_id}")
        return VppHead() if raw is None else VppHead.model_validate(raw)

    def put_head(self, vpp_id: str, head: VppHead) -> None:
        self._set(f"v:{vpp_id}", head.model_dump())

    def member(self, vpp_id: str, asset_id: str) -> AssetFacts | None:
        raw = self._get("m:" + _pair(vpp_id, asset_id))
        return None if raw is None else AssetFacts.model_validate(raw)

    def put_member(self, vpp_id: str, asset_id: str, facts: AssetFacts | None) -> None:
        key = "m:" + _pair(vpp_id, asset_id)
        if facts is None:
            self.kv.delete(key)
        else:
            self._set(key, facts.model_dump())

    def refs(self, vpp_id: str, entity_id: str) -> list[str]:
        return self._get("r:" + _pair(vpp_id, entity_id)) or []

    def put_refs(self, vpp_id: str, entity_id: str, asset_ids: list[str]) -> None:
        self._set_or_delete("r:" + _pair(vpp_id, entity_id), sorted(set(asset_ids)))

    def vpp_forecasts(self, vpp_id: str, entity_id: str) -> Forecasts:
        return self._get("vf:" + _pair(vpp_id, entity_id)) or {}

    def put_vpp_forecasts(self, vpp_id: str, entity_id: str, book: Forecasts) -> None:
        self._set_or_delete("vf:" + _pair(vpp_id, entity_id), book)

    def vpp_baselines(self, vpp_id: str, entity_id: str) -> Slots:
        return self._get("vb:" + _pair(vpp_id, entity_id)) or {}

    def put_vpp_baselines(self, vpp_id: str, entity_id: str, slots: Slots) -> None:
        self._set_or_delete("vb:" + _pair(vpp_id, entity_id), slots)

    # -- answered requests ----------------------------------------------------------------------------------
    def answered(self, vpp_id: str, request_id: str) -> bool:
        return self.kv.get("q:" + _pair(vpp_id, request_id)) is not None

    def mark_answered(self, vpp_id: str, request_id: str, hour: int) -> None:
        key = "q:" + _pair(vpp_id, request_id)
        self.kv.set(key, b"1")
        bucket = self._get(f"qx:{hour}") or []
        bucket.append(key)
        self._set(f"qx:{hour}", bucket)
        hours = self._get(ANSWERED_BUCKETS) or []
        if hour not in hours:
            self._set(ANSWERED_BUCKETS, sorted([*hours, hour]))

    def forget_answered_before(self, hour: int) -> int:
        """Drop the answered-request keys of hours (UTC epoch ms // 3,600,000) before ``hour``; returns how
        many."""
        hours = self._get(ANSWERED_BUCKETS) or []
        old = [h for h in hours if h < hour]
        n = 0
        for d in old:
            for key in self._get(f"qx:{d}") or []:
                self.kv.delete(key)
                n += 1
            self.kv.delete(f"qx:{d}")
        if old:
            self._set_or_delete(ANSWERED_BUCKETS, [h for h in hours if h >= hour])
        return n

    # -- timers ---------------------------------------------------------------------------------------------
    def due(self) -> dict[str, int]:
        return self._get(DUE) or {}

    def put_due(self, due: dict[str, int]) -> None:
        self._set_or_delete(DUE, due)
