"""forecast.profiles.v1 records -> the congestion forecast's per-prosumer kW per quarter hour."""

from __future__ import annotations

import numpy as np
import pytest

from streams.flex.enrolment import Registry
from streams.flex.outlook import OutlookBook
from streams.grid.congestion import forecast_matrix
from streams.grid.forecasts import forecast_kw

DAY = 1_779_235_200_000  # 2026-05-20 00:00 UTC


def record(pid: str, prop: str, wh_per_hour: list[float], issued: int, start: int = DAY) -> dict:
    """A day-ahead profile at 60-min granularity (as the forecasting stage issues it)."""
    return {
        "entity_id": pid,
        "entity_kind": "PROSUMER",
        "property": prop,
        "prediction_granularity": "DAYAHEAD",
        "profile_granularity_minutes": 60,
        "issued_at": issued,
        "model": "linear",
        "points": [
            {"ts": start + h * 3_600_000, "value": v, "lower": None, "upper": None}
            for h, v in enumerate(wh_per_hour)
        ],
    }


def test_hourly_consumption_minus_production_becomes_quarter_hour_kw(demo_model):
    book = OutlookBook(Registry())
    slots = DAY + np.arange(96, dtype=np.int64) * 900_000
    for j, pid in enumerate(demo_model.prosumer_ids):
        book.on_forecast(record(pid, "ENERGY_CONSUMPTION", [500.0 + j] * 24, DAY - 3_600_000))
        book.on_forecast(record(pid, "ENERGY_PRODUCTION", [0.0] * 12 + [2000.0] * 12, DAY - 3_600_000))
    # an intra-day update for prosumer-000 from 18:00 replaces the day-ahead points it covers
    book.on_forecast(
        record("prosumer-000", "ENERGY_CONSUMPTION", [7500.0] * 4, DAY + 17 * 3_600_000, DAY + 18 * 3_600_000)
    )
    kw = forecast_matrix(demo_model, forecast_kw(book, demo_model, slots), 96)
    assert kw.shape == (96, 50)
    assert kw[0, 1] == pytest.approx(0.501)  # 501 Wh in an hour = 0.501 kW in each of its quarter hours
    assert kw[48, 1] == pytest.approx(0.501 - 2.0)  # afternoon: net export
    assert kw[72, 0] == pytest.approx(7.5 - 2.0) and kw[71, 0] == pytest.approx(0.5 - 2.0)


def test_a_prosumer_without_forecast_is_named(demo_model):
    book = OutlookBook(Registry())
    slots = DAY + np.arange(4, dtype=np.int64) * 900_000
    for pid in demo_model.prosumer_ids[1:]:
        book.on_forecast(record(pid, "ENERGY_CONSUMPTION", [500.0], DAY - 1))
    with pytest.raises(ValueError, match="no forecast for prosumer 'prosumer-000'"):
        forecast_matrix(demo_model, forecast_kw(book, demo_model, slots), 4)
