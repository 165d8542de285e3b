"""VPP dispatch -> DR events for the sites hosting VPP assets (connectors/openadr/vpp_events.py, pure)."""

from __future__ import annotations

import pytest

from connectors.openadr.vpp_events import plan_dispatch

T0 = 1_795_428_000_000  # 2026-11-23T10:00Z
SLOT = 900_000
SITES = {"chp-1": "p-site", "bess-1": "p-site"}


def answer(setpoints: dict[str, list[float]], feasible: bool = True, version: int = 1) -> dict:
    n = max(len(v) for v in setpoints.values())
    return {
        "request_id": "cap-1",
        "version": version,
        "feasible": feasible,
        "slots": [{"start": T0 + k * SLOT, "end": T0 + (k + 1) * SLOT} for k in range(n)],
        "assignments": [{"asset_id": a, "setpoint_kw": kw} for a, kw in setpoints.items()],
    }


def test_a_hosted_generators_set_points_are_one_setpoint_event_of_negative_load():
    plan = plan_dispatch(answer({"chp-1": [40.0, 55.0], "bess-1": [], "chp-9": [5.0, 5.0]}), SITES, T0)
    [event] = plan.add
    assert (event.event_id, event.order_id, event.prosumer_id, event.signal_type) == (
        "vpp~cap-1~v1~chp-1",
        "vpp:cap-1:chp-1",
        "p-site",
        "setpoint",
    )
    assert [(i.start_ms, i.minutes, i.kw) for i in event.intervals] == [
        (T0, 15, -40.0),
        (T0 + SLOT, 15, -55.0),
    ]


def test_ended_slots_are_left_out_and_an_infeasible_version_cancels():
    [event] = plan_dispatch(answer({"chp-1": [40.0, 55.0]}), SITES, T0 + SLOT + 1).add
    assert [i.kw for i in event.intervals] == [-55.0]
    assert plan_dispatch(answer({"chp-1": [40.0, 55.0]}), SITES, T0 + 2 * SLOT).add == ()
    cancelled = plan_dispatch(answer({"chp-1": [40.0, 55.0]}, feasible=False, version=2), SITES, T0)
    assert cancelled.add == () and cancelled.cancel == (("vpp:cap-1:chp-1", "p-site"),)


def test_set_points_that_do_not_match_the_slots_are_an_error():
    bad = answer({"chp-1": [40.0, 55.0]})
    bad["slots"] = bad["slots"][:1]
    with pytest.raises(ValueError, match="2 set points for 1 slots"):
        plan_dispatch(bad, SITES, T0)
