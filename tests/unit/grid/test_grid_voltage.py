"""Voltage-band violations become requests: 1 km cables (T1 -> LV0 -> L1 -> LV1 -> L2 -> LV2), the transformer's zone
holds LV0-LV2 and the far line's LV2 only. 60 kW at the far end pulls LV2 to ~0.80 pu; 60 kW of PV export there
pushes it over 1.1 pu. The far line (the smallest violating zone holding LV2) asks, the transformer does not; the
kW it asks for, re-run through the power flow, bring LV2 back inside the band."""

from __future__ import annotations

import numpy as np
import pytest

from streams.flex.model import Direction
from streams.grid.background import with_background
from streams.grid.congestion import forecast_congestion, forecast_matrix
from streams.grid.events import congestion_record
from streams.grid.requests import congestion_requests, slot_need
from streams.grid.voltage import V_MAX_PU, V_MIN_PU, worst_vm

SLOTS = np.array([0, 900_000, 1_800_000])
FAR_KW = [5.0, 60.0, -60.0]  # fine, undervoltage, overvoltage (export)


def _forecast(model, engine, far_kw):
    kw = forecast_matrix(model, {"near": [0.0] * len(far_kw), "far": list(far_kw)}, len(far_kw))
    slots = SLOTS[: len(far_kw)]
    return forecast_congestion(model, engine, with_background(model, kw, slots), slots.tolist())


def _far_vm(model, engine, far_kw: float) -> float:
    kw = forecast_matrix(model, {"near": [0.0], "far": [far_kw]}, 1)
    (_, line) = forecast_congestion(model, engine, with_background(model, kw, SLOTS[:1]), [0])
    return worst_vm(line.vm_min_pu, line.vm_max_pu)


def test_the_smallest_violating_zone_answers_and_its_request_brings_the_voltage_back(long_feeder):
    model, engine = long_feeder
    out = _forecast(model, engine, FAR_KW)
    trafo, line = out[:3], out[3:]
    assert [s.voltage is not None for s in line] == [False, True, True]
    assert all(s.voltage is None for s in trafo)  # LV2 is in its zone too, but the far line is closer to it
    assert trafo[1].undervoltage_buses >= 1  # still reported on the transformer's record
    under, over = line[1].voltage, line[2].voltage
    assert under.vm_pu < V_MIN_PU and over.vm_pu > V_MAX_PU
    assert (
        set(under.sensitivity) == {"far"} and under.sensitivity["far"] < 0
    )  # consumption lowers the voltage

    direction, kw = slot_need(line[1], ["far"], 5.0)
    assert direction is Direction.REDUCE and 0 < kw < 60
    assert _far_vm(model, engine, 60.0 - kw) > V_MIN_PU  # the linear estimate is enough
    direction, kw = slot_need(line[2], ["far"], 5.0)
    assert direction is Direction.INCREASE and 0 < kw < 60
    assert _far_vm(model, engine, -60.0 + kw) < V_MAX_PU

    requests = congestion_requests(model, out, "dso-v", "0x" + "11" * 32, 0, issued_at=0)
    assert sorted((r.area_id, r.direction.value, len(r.slots)) for r in requests) == [
        ("far-street", "INCREASE", 1),
        ("far-street", "REDUCE", 1),
    ]


def test_the_record_carries_the_voltage_sensitivities_and_the_uftp_side_reads_them_back(long_feeder):
    from connectors.uftp.congestion_requests import _slot

    model, engine = long_feeder
    line = _forecast(model, engine, FAR_KW)[3:]
    rec = congestion_record(line[1], "long", 2, 0, 1, 1)
    assert [x["prosumer_id"] for x in rec["voltage_sensitivities"]] == ["far"]
    assert congestion_record(line[0], "long", 2, 0, 1, 1)["voltage_sensitivities"] == []
    back = _slot(rec)
    assert back.voltage is not None and back.voltage.vm_pu == pytest.approx(line[1].voltage.vm_pu)
    assert slot_need(back, [], 5.0) == pytest.approx(slot_need(line[1], ["far"], 5.0))


def test_on_the_zone_cut_out_the_same_point_asks_in_the_same_direction(long_feeder):
    """``sensitivity="zone"`` (large grids) reads the worst bus on the zone alone, its slack held at the supplying
    bus's voltage: the feeder upstream no longer moves with the load, so the slope is smaller and the ask larger
    (exact behind a transformer fed from the slack, as for loading)."""
    model, engine = long_feeder
    kw = forecast_matrix(model, {"near": [0.0] * 3, "far": FAR_KW}, 3)
    inj = with_background(model, kw, SLOTS)
    whole = forecast_congestion(model, engine, inj, SLOTS.tolist())[3:]
    zone = forecast_congestion(model, engine, inj, SLOTS.tolist(), sensitivity="zone")[3:]
    for w, z in zip(whole[1:], zone[1:], strict=True):
        assert set(z.voltage.sensitivity) == {"far"} and z.voltage.vm_pu == pytest.approx(w.voltage.vm_pu)
        assert 0 < z.voltage.sensitivity["far"] / w.voltage.sensitivity["far"] < 1
        assert slot_need(z, [], 5.0)[0] is slot_need(w, [], 5.0)[0]
