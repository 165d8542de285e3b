"""The congestion stage's partition state: each mapped prosumer's latest forecast profile, one state key each.

Key ``fc|<grid>|<prosumer>|<property>|<granularity>`` holds the latest-issued ``forecast.profiles.v1`` profile of
that prosumer, property (consumption/production) and prediction granularity (day-ahead, intra-day, hour-ahead) as
JSON; an older-issued profile never replaces a newer one (replays and reordering are harmless). Key
``dirty|<grid>`` marks a grid whose inputs changed since its last congestion forecast. Reads and writes touch one
prosumer's key at a time (no whole-state blob), so the changelog carries only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from edream.runtime.contract import KeyValueState

PROPERTIES = ("ENERGY_CONSUMPTION", "ENERGY_PRODUCTION")
GRANULARITIES = ("DAYAHEAD", "INTRA_DAY", "ONE_HOUR_AHEAD")


def _key(grid: str, prosumer: str, prop: str, granularity: str) -> str:
    return f"fc|{grid}|{prosumer}|{prop}|{granularity}"


def _dirty(grid: str) -> str:
    return f"dirty|{grid}"


def store_profile(state: KeyValueState, grid: str, rec: Mapping[str, Any]) -> bool:
    """Keep ``rec`` (a validated Forecast record of a mapped prosumer) unless a profile issued later is stored
    already; mark the grid dirty when it was kept. True when kept."""
    key = _key(grid, rec["entity_id"], rec["property"], rec["prediction_granularity"])
    old = state.get(key)
    if old is not None and json.loads(old)["issued_at"] > int(rec["issued_at"]):
        return False
    profile = {
        "entity_id": rec["entity_id"],
        "entity_kind": rec["entity_kind"],
        "property": rec["property"],
        "profile_granularity_minutes": int(rec["profile_granularity_minutes"]),
        "issued_at": int(rec["issued_at"]),
        "points": [
            {"ts": int(p["ts"]), "value": float(p["value"]), "lower": p.get("lower"), "upper": p.get("upper")}
            for p in rec["points"]
        ],
    }
    state.set(key, json.dumps(profile, separators=(",", ":")).encode())
    state.set(_dirty(grid), b"1")
    return True


def profiles(state: KeyValueState, grid: str, prosumer_ids: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every stored profile of the grid's prosumers (Forecast-shaped dicts, as :class:`OutlookBook` reads them)."""
    for pid in prosumer_ids:
        for prop in PROPERTIES:
            for gran in GRANULARITIES:
                raw = state.get(_key(grid, pid, prop, gran))
                if raw is not None:
                    yield json.loads(raw)


def is_dirty(state: KeyValueState, grid: str) -> bool:
    return state.get(_dirty(grid)) is not None


def mark_clean(state: KeyValueState, grid: str) -> None:
    state.delete(_dirty(grid))
