"""Forecast service: prosumer and portfolio entities, online scoring, published accuracy, restart."""

from __future__ import annotations

from fastavro.validation import validate

from edream.avro_schemas import load_schema
from streams.analytics.forecast_service import CONSUMPTION, PRODUCTION, ForecastService
from streams.analytics.forecasting import EntityForecaster

HOUR = 3_600_000
MONDAY = 1_700_438_400_000


def interval(prosumer: str, device: str, ts: int, imp: float, exp: float = 0.0, version: int = 1) -> dict:
    return {
        "prosumer_id": prosumer,
        "device_id": device,
        "interval_start": ts,
        "interval_end": ts + HOUR,
        "import_wh": imp,
        "export_wh": exp,
        "version": version,
    }


def load(ts: int, scale: float) -> float:
    return scale * (1 + (ts // HOUR) % 24)  # 1..24 Wh ramp over the day


def test_portfolio_sums_latest_versions_and_scores_forecasts():
    svc = ForecastService(
        {"a": "pf", "b": "pf"}, step_ms=HOUR, model="seasonal-naive", properties=(CONSUMPTION,)
    )
    for k in range(24 * 3):
        ts = MONDAY + k * HOUR
        if k == 24 * 2:  # issue a day-ahead profile at the start of day 3 for both entities
            recs = svc.issue(ts, "day-ahead")
            assert {r["entity_id"] for r in recs} == {"a", "b", "pf"}
            pf = next(r for r in recs if r["entity_id"] == "pf")
            # seasonal naive: yesterday's portfolio sum, 3x the ramp (a has 1x, b 2x)
            assert [p["value"] for p in pf["points"]] == [3 * (1 + h) for h in range(24)]
            for r in recs:
                assert validate(r, load_schema("Forecast"))
        svc.observe_interval(interval("a", "da", ts, load(ts, 1.0)))
        svc.observe_interval(interval("b", "db", ts, load(ts, 5.0)))
        svc.observe_interval(
            interval("b", "db", ts, load(ts, 2.0), version=2)
        )  # correction wins in the portfolio
        svc.close_until(ts + HOUR)
    acc = {r["entity_id"]: r for r in svc.accuracy_records()}
    assert set(acc) == {"a", "b", "pf"}
    assert acc["pf"]["points"] == 24 and acc["pf"]["mae_wh"] == 0.0  # same ramp every day
    assert acc["pf"]["as_of"] == MONDAY + 3 * 24 * HOUR
    assert acc["pf"]["mase"] is None  # naive MAE is 0: undefined, published as null
    assert all(validate(r, load_schema("ForecastAccuracy")) for r in acc.values())


def test_online_accuracy_against_naive():
    svc = ForecastService(step_ms=HOUR, model="linear")
    for k in range(24 * 15):
        ts = MONDAY + k * HOUR
        if k >= 24 * 12:  # Saturday, Sunday, Monday of the second week
            svc.issue(ts, "hour-ahead")
        weekend = ((ts // 86_400_000) + 3) % 7 >= 5
        svc.observe_interval(interval("a", "da", ts, load(ts, 0.5 if weekend else 1.0), exp=2.0))
    recs = {r["property"]: r for r in svc.accuracy_records()}
    assert recs[CONSUMPTION]["points"] == 72  # each hour-ahead point is scored when its interval arrives
    assert recs[CONSUMPTION]["mase"] < 1.0  # Monday is not Sunday: the model knows, seasonal naive does not
    assert recs[PRODUCTION]["mae_wh"] < 0.01  # a constant 2 Wh export is learned (prior shrinkage only)


def test_accuracy_scores_the_issued_band_pinball_and_coverage():
    svc = ForecastService(step_ms=HOUR, model="linear", properties=(CONSUMPTION,))
    issued = []
    for k in range(24 * 10):
        ts = MONDAY + k * HOUR
        if k >= 24 * 9:
            issued += svc.issue(ts, "hour-ahead")
        noise = ((k * 7919) % 11 - 5) * 1.5  # deterministic wobble: some actuals leave the band
        svc.observe_interval(interval("a", "da", ts, load(ts, 1.0) + noise))
    (rec,) = svc.accuracy_records()
    actual = {
        MONDAY + k * HOUR: load(MONDAY + k * HOUR, 1.0) + ((k * 7919) % 11 - 5) * 1.5 for k in range(240)
    }
    pts = [p for f in issued for p in f["points"] if p["ts"] in actual]
    assert len(pts) == rec["points"] == 24 and all(p["lower"] is not None for p in pts)
    inside = [p["lower"] <= actual[p["ts"]] <= p["upper"] for p in pts]
    loss = [
        0.5
        * (
            max(0.1 * (a - p["lower"]), -0.9 * (a - p["lower"]))
            + max(0.9 * (a - p["upper"]), -0.1 * (a - p["upper"]))
        )
        for p in pts
        for a in [actual[p["ts"]]]
    ]
    assert 0 < sum(inside) < len(pts)
    assert rec["coverage"] == sum(inside) / len(pts)
    assert abs(rec["pinball_wh"] - sum(loss) / len(loss)) < 1e-9


def test_a_series_of_zeros_is_not_forecast_until_it_turns_non_zero():
    """A consumer's production stays unmodelled; a PV site's first sunny hour starts its production model,
    which first learns the zeros of the nights the consumption series saw: the same model as one fed the
    whole series."""

    def pv(ts: int) -> float:
        hour = (ts // HOUR) % 24
        return 100.0 * max(0, 6 - abs(hour - 12)) if ts >= MONDAY + 30 * HOUR else 0.0  # sun from day 2

    svc = ForecastService(step_ms=HOUR, model="linear")
    eager = EntityForecaster(HOUR, model="linear")
    for k in range(24 * 4):
        ts = MONDAY + k * HOUR
        if k % 5 != 3:  # some hours never arrive
            svc.observe_interval(interval("consumer", "m1", ts, load(ts, 1.0)))
            svc.observe_interval(interval("site", "m2", ts, load(ts, 2.0), pv(ts)))
            eager.observe(ts, pv(ts))
        if k == 24 + 10:  # after the site's first sunny hour, before the consumer ever produced
            recs = svc.issue(ts, "day-ahead")
            assert {(r["entity_id"], r["property"]) for r in recs} == {
                ("consumer", CONSUMPTION),
                ("site", CONSUMPTION),
                ("site", PRODUCTION),
            }
    assert ("PROSUMER", "consumer", PRODUCTION) not in svc.models
    lazy = svc.models[("PROSUMER", "site", PRODUCTION)]
    issued = MONDAY + 24 * 4 * HOUR
    assert lazy.predict_steps(issued, 24) == eager.predict_steps(issued, 24)
    assert lazy.predict_steps(issued, 24)[0] < 1.0  # the night before the sun rises: no production
    produced = [r for r in svc.accuracy_records() if r["property"] == PRODUCTION]
    assert {r["entity_id"] for r in produced} == {"site"}
