"""D-Prognosis from forecasts, pure: per ISP the latest issued forecast point holding it (finer step on a tie), net
power = consumption - production in W, an area's sum only where all its forecast prosumers are covered, one message
per local period with ISP numbers of that day (DST included), deterministic and increasing revisions; and the
periodic job survives a failing round."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from shapeshifter_uftp import DPrognosis, transport

from connectors.uftp.keys import UftpKeyPair
from connectors.uftp.periodic import Periodic
from connectors.uftp.prognosis import (
    HORIZON_SPAN_MS,
    area_power,
    d_prognoses,
    isp_powers,
    prosumer_power,
    revision_at,
)

H = 3_600_000
Q = 900_000
T0 = int(datetime(2026, 12, 7, 9, tzinfo=UTC).timestamp() * 1000)  # 10:00 in Amsterdam (UTC+1)


def forecast(entity, prop, minutes, issued_at, values, start=T0, kind="PROSUMER", granularity="DAYAHEAD"):
    """A Forecast record as ``GET /api/v1/forecasts`` lists it: ``values`` Wh per step from ``start``."""
    return {
        "event_id": f"{entity}/{prop}/{granularity}/{issued_at}",
        "entity_id": entity,
        "entity_kind": kind,
        "property": prop,
        "prediction_granularity": granularity,
        "profile_granularity_minutes": minutes,
        "issued_at": issued_at,
        "model": "linear",
        "points": [
            {"ts": start + i * minutes * 60_000, "value": v, "lower": None, "upper": None}
            for i, v in enumerate(values)
        ],
    }


CONS, PROD = "ENERGY_CONSUMPTION", "ENERGY_PRODUCTION"


def test_latest_issue_holding_the_whole_isp_wins_and_wh_become_watts():
    rows = [
        forecast("p1", CONS, 60, T0 - H, [2000, 1000]),  # day-ahead: 2 kW, then 1 kW
        forecast("p1", CONS, 30, T0 - Q, [600], granularity="INTRA_DAY"),  # later: 1.2 kW for 09:00-09:30
        forecast("p1", CONS, 60, T0 - 2 * H, [9999, 9999]),  # older: replaced
        forecast("p1", CONS, 60, T0 - Q, [500]),  # same issue time as the 30-min one: the finer step wins
    ]
    power = prosumer_power(rows, 15)
    assert power["p1"][CONS] == {
        T0: 1200.0,
        T0 + Q: 1200.0,
        T0 + 2 * Q: 500.0,  # the 60-min point issued T0 - Q beats the older 2 kW
        T0 + 3 * Q: 500.0,
        T0 + H: 1000.0,
        T0 + H + Q: 1000.0,
        T0 + H + 2 * Q: 1000.0,
        T0 + H + 3 * Q: 1000.0,
    }


def test_points_not_holding_whole_isps_and_bad_rows_are_skipped():
    rows = [
        forecast(
            "p1", CONS, 10, T0, [100, 100]
        ),  # 10-min steps hold no whole 15-min ISP start at T0 + 15 min...
        forecast("p2", CONS, 60, T0, [float("nan")]),
        forecast("p3", CONS, 60, T0, [None]),
        forecast("vpp-1", CONS, 60, T0, [1000], kind="PORTFOLIO"),
        forecast("p4", "ENERGY_FLEXIBILITY", 60, T0, [1000]),
        forecast("p5", CONS, 0, T0, [1000]),
    ]
    power = prosumer_power(rows, 15)
    assert power == {}  # ...and the one at T0 (T0..T0+10 min) is not a whole ISP


def test_area_power_is_net_sum_where_every_forecast_prosumer_is_covered():
    rows = [
        forecast("p1", CONS, 60, T0 - H, [2000, 2000]),
        forecast("p1", PROD, 60, T0 - H, [500, 800]),
        forecast("p2", CONS, 60, T0 - H, [1000]),  # one hour only: the second hour is left out
        forecast("p3", PROD, 60, T0 - H, [4000, 4000]),  # production only: no consumption forecast, left out
        forecast("elsewhere", CONS, 60, T0 - H, [7000, 7000]),
    ]
    power = prosumer_power(rows, 15)
    got = area_power(power, ["p2", "p1", "p3", "no-forecast"])
    assert got == {T0 + k * Q: 2500 for k in range(4)}
    assert area_power(power, ["p1"])[T0 + H] == 1200
    assert area_power(power, ["no-forecast"]) == {} and area_power(power, []) == {}


def test_one_message_per_local_period_with_that_days_isp_numbers():
    midnight = int(datetime(2026, 12, 7, 23, tzinfo=UTC).timestamp() * 1000)  # 00:00 on 8 Dec in Amsterdam
    power = {midnight - Q: 1500, midnight: -200, midnight + Q: 300}
    first, second = d_prognoses(power, "ean.871685900000000001", "Europe/Amsterdam", 15, T0)
    assert (str(first.period), isp_powers(first)) == ("2026-12-07", ((96, 1500),))
    assert (str(second.period), isp_powers(second)) == ("2026-12-08", ((1, -200), (2, 300)))
    assert first.revision == second.revision == revision_at(T0) and str(first.isp_duration) == "PT15M"
    assert first.congestion_point == "ean.871685900000000001" and first.message_id != second.message_id
    again = d_prognoses(power, "ean.871685900000000001", "Europe/Amsterdam", 15, T0)
    assert [m.message_id for m in again] == [first.message_id, second.message_id]  # same round: same message
    later = d_prognoses(power, "ean.871685900000000001", "Europe/Amsterdam", 15, T0 + 1000)
    assert later[0].revision == first.revision + 1 and later[0].message_id != first.message_id


def test_dst_day_numbers_and_a_sealed_round_trip():
    fallback = int(
        datetime(2026, 10, 25, 2, tzinfo=UTC).timestamp() * 1000
    )  # 03:00 CET, after 02:00-03:00 twice
    [msg] = d_prognoses({fallback: 100}, "ean.871685900000000001", "Europe/Amsterdam", 15, fallback)
    assert isp_powers(msg) == ((17, 100),)  # midnight CEST = 22:00Z: 4 h of elapsed time before 02:00Z
    keys = UftpKeyPair.generate(b"p" * 32)
    msg.sender_domain, msg.recipient_domain, msg.time_stamp = (
        "agr.edream.test",
        "dso.edream.test",
        "2026-10-25T02:00:00Z",
    )
    msg.conversation_id = msg.message_id
    back = transport.unseal_message(transport.seal_message(msg, keys.secret), keys.public)
    assert isinstance(back, DPrognosis) and isp_powers(back) == ((17, 100),) and back.revision == msg.revision


def test_revisions_fit_32_bits_for_decades_and_spans_match_the_forecast_horizons():
    from streams.analytics.forecasting import HORIZONS

    assert 0 < revision_at(T0) < revision_at(int(datetime(2093, 1, 1, tzinfo=UTC).timestamp() * 1000)) < 2**31
    assert {h.granularity: h.span_ms for h in HORIZONS.values()} == HORIZON_SPAN_MS


def test_periodic_job_survives_a_failing_round():
    calls, done = [], threading.Event()

    def job():
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("platform API down")
        if len(calls) == 3:
            done.set()

    rounds = Periodic(job, 0.01, 0.0, "test-rounds").start()
    try:
        assert done.wait(5)
    finally:
        rounds.stop()
    assert calls[:3] == [0, 1, 2]
    with pytest.raises(ValueError, match="interval must be positive"):
        Periodic(job, 0, 0, "off")
