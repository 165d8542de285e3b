"""Hostile VPP inputs (issue 14): out-of-bounds capability requests and assets with non-finite or absurd values
are dead-lettered with the field and the reason (``DecodeError`` for the runtime), never evaluated or registered."""

from __future__ import annotations

import math
import time

import pytest

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.vpp.processor import VppConfig
from streams.vpp.registry import RegistryError, validate_spec
from streams.vpp.stage import VppStage

SERDE = Serde()
NOW = int(time.time() * 1000)
START = NOW - NOW % 900_000 + 3_600_000
Y2100 = 4_102_444_800_000


def request(**over) -> dict:
    rec = {
        "event_id": "r1",
        "request_id": "r1",
        "vpp_id": "vpp-demo",
        "service": "FCR",
        "direction": "UP",
        "max_response_s": 30.0,
        "min_duration_min": 15.0,
        "min_size_kw": 1.0,
        "window_start": START,
        "window_end": START + 3_600_000,
        "slot_minutes": 15,
        "demand_kw": [],
        "price_micro_per_kw_h": None,
        "requested_at": NOW,
    }
    rec.update(over)
    return rec


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"requested_at": NOW + 10 * 365 * 86_400_000}, "requested_at"),
        ({"window_start": Y2100, "window_end": Y2100 + 900_000}, "window_start"),
        ({"window_end": START + 100 * 365 * 86_400_000}, "window_end"),
        ({"demand_kw": [math.nan, 5.0, 1e12, 1.0]}, "demand_kw[0]"),
        ({"min_size_kw": math.inf}, "min_size_kw"),
        ({"request_id": "r" * 2000}, "request_id"),
    ],
)
def test_out_of_bounds_capability_request_is_dead_lettered(over, field):
    stage, state = VppStage(SERDE, VppConfig(), clock=lambda: NOW), MemoryState()
    msg = SERDE.encode("VppCapabilityRequest", request(**over))
    record = Record("vpp.capability.requests.v1", 0, 0, b"vpp-demo", msg, NOW)
    with pytest.raises(DecodeError, match=field.replace("[", r"\[").replace("]", r"\]")):
        stage.on_record(record, state)
    assert state.data == {}  # nothing answered, nothing remembered


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"p_max_kw": math.inf}, "p_max_kw"),
        ({"p_max_kw": math.nan}, "p_max_kw"),
        ({"asset_id": "a" * 2000}, "asset_id"),
    ],
)
def test_asset_with_non_finite_or_absurd_values_is_refused(over, field):
    with pytest.raises(RegistryError, match=field):
        validate_spec({"asset_id": "b1", "vpp_id": "v", "kind": "BESS", "p_max_kw": 10.0, **over}, "rec")
