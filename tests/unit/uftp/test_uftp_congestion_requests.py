"""The DSO side of UFTP: congestion forecast records -> the UFTP FlexRequests that relieve them, checked by mapping
them back with the gateway's own reading (connectors/uftp/mapping.py), so both sides agree on ISPs, direction and kW."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from eth_account import Account

from connectors.uftp.congestion_requests import DsoRequestPolicy, congestion_requests, latest_issue
from connectors.uftp.isp import ms_iso
from connectors.uftp.mapping import request_from_uftp
from streams.flex.dsos import Dso
from streams.flex.model import Direction

SLOT = 900_000
#: 10:00 local (Amsterdam, winter: 09:00 UTC) on 2026-12-07
DAY = int(datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp() * 1000)
NOW = DAY - 3_600_000
EANS = {"feeder/T1": "ean.871685900000000001", "feeder/L2": "ean.871685900000000002"}
DSO = Dso(
    dso_id="dso-grid",
    eth_address=Account.create().address,
    congestion_points={EANS["feeder/T1"]: "feeder", EANS["feeder/L2"]: "feeder-l2"},
)
SENS = {"p0": 0.5, "p1": 0.4}


def _rec(point: str, start: int, loading: float, issued: int, sens=SENS, limit: float = 100.0) -> dict:
    over = loading > limit
    return {
        "congestion_point_id": point,
        "area_id": "feeder",
        "slot_start": start,
        "converged": True,
        "loading_percent": loading,
        "max_loading_percent": limit,
        "overload_kw": max(0.0, loading - limit) * 2.5,
        "overloaded": over,
        "sensitivities": [{"prosumer_id": p, "percent_per_kw": v} for p, v in sens.items()] if over else [],
        "forecast_issued_at": issued,
    }


def _back(msg) -> tuple[Direction, dict[int, float]]:
    msg.time_stamp = ms_iso(NOW)
    req = request_from_uftp(msg, DSO)
    return req.direction, {s.slot_start: s.kw for s in req.slots}


def test_the_latest_issue_of_each_point_is_asked_for_sized_by_its_least_effective_prosumer():
    old = [_rec("feeder/T1", DAY + k * SLOT, 130.0, NOW - 120_000) for k in range(4)]
    new = [_rec("feeder/T1", DAY + k * SLOT, [90.0, 111.0, 103.0, 99.0][k], NOW - 60_000) for k in range(4)]
    (msg,) = congestion_requests([*old, *new], EANS, NOW)
    assert msg.congestion_point == EANS["feeder/T1"] and msg.time_zone == "Europe/Amsterdam"
    assert [i.start for i in msg.isps] == [42, 43]  # 10:15 and 10:30 local
    direction, kw = _back(msg)
    # (loading - (100 - 5)) / 0.4 %/kW: the smallest sensitivity, as the desk may pick any prosumer of the area
    assert direction is Direction.REDUCE
    assert kw == {
        DAY + SLOT: pytest.approx(16 / 0.4, abs=1e-3),
        DAY + 2 * SLOT: pytest.approx(8 / 0.4, abs=1e-3),
    }
    assert int(datetime.fromisoformat(msg.expiration_date_time).timestamp() * 1000) == DAY + SLOT - 5 * 60_000
    assert (
        congestion_requests([*new, *old], EANS, NOW)[0].message_id == msg.message_id
    )  # order does not matter
    later = [{**r, "forecast_issued_at": NOW - 1} for r in new]
    assert (
        congestion_requests(later, EANS, NOW)[0].message_id != msg.message_id
    )  # a new forecast, a new request


def test_reverse_flow_asks_for_more_consumption_and_each_local_day_is_one_message():
    midnight = int(datetime(2026, 12, 8, tzinfo=ZoneInfo("Europe/Amsterdam")).timestamp() * 1000)
    recs = [
        _rec("feeder/L2", midnight - SLOT, 120.0, NOW, sens={"p0": -0.6, "p1": -0.5}),
        _rec("feeder/L2", midnight, 120.0, NOW, sens={"p0": -0.6, "p1": -0.5}),
    ]
    msgs = congestion_requests(recs, EANS, NOW)
    assert [(m.period.to_date().isoformat(), [i.start for i in m.isps]) for m in msgs] == [
        ("2026-12-07", [96]),
        ("2026-12-08", [1]),
    ]
    for m in msgs:
        direction, kw = _back(m)
        assert direction is Direction.INCREASE and list(kw.values()) == [pytest.approx(25 / 0.5, abs=1e-3)]


def test_what_is_not_asked_for():
    recs = [
        _rec("feeder/T1", NOW + 60_000, 140.0, NOW),  # starts within the 5-min lead: too late to offer
        _rec("feeder/T1", NOW - SLOT, 140.0, NOW),  # over
        _rec("feeder/T1", DAY, 140.0, NOW, sens={}),  # nobody of the zone can relieve it
        _rec("elsewhere/T9", DAY, 140.0, NOW),  # no UFTP congestion point for it
        _rec("feeder/L2", DAY, 94.0, NOW, limit=95.0),  # within its limit
        {**_rec("feeder/L2", DAY + SLOT, 0.0, NOW), "converged": False, "loading_percent": None},
    ]
    assert congestion_requests(recs, EANS, NOW, DsoRequestPolicy()) == []


def test_latest_issue_keeps_one_record_per_slot():
    a = _rec("feeder/T1", DAY, 120.0, NOW)
    b = {**a, "loading_percent": 125.0}  # the same slot and issue re-sent (two ticks): the last one wins
    assert latest_issue([a, _rec("feeder/T1", DAY, 150.0, NOW - 1), b]) == {"feeder/T1": [b]}
