"""The weather feed's pure parts: the config's errors, the Open-Meteo answer as WeatherHour records, the simulated
service's answer, and the forecasts stage's view of the weather topic."""

from __future__ import annotations

import math

import pytest

from connectors.weather.config import Site, WeatherConfigError, load_weather_config
from connectors.weather.openmeteo import AnswerError, weather_hours
from edream.serde import Serde
from streams.analytics.weather_view import WeatherView
from tools.sim.flex_scenario import StaticView
from tools.sim.weather_service import answer

SITE = Site(location_id="golden", latitude=39.742, longitude=-105.18)
H = 3_600_000
NOW = 1_796_601_600_000 + 10 * H + 1_234  # 2026-12-07 10:00:01.234 UTC
T0 = (NOW // H - 3) * H  # three whole hours before now


def _doc(temps, ghis, first_ms=T0, **extra):
    times = [first_ms // 1000 + 3600 * i for i in range(len(temps))]
    return {
        "utc_offset_seconds": 0,
        "hourly": {"time": times, "temperature_2m": temps, "shortwave_radiation": ghis},
    }


def test_radiation_belongs_to_the_hour_before_its_stamp_and_temperature_is_the_mean_of_both_ends():
    p = weather_hours(_doc([2.0, 4.0, 8.0, 10.0, 11.0], [0.0, 100.0, 300.0, None, 50.0]), SITE, NOW, "svc")
    by = {r["hour_start"]: r for r in p.records}
    assert p.problems == []
    assert by[T0 - H]["ghi_w_m2"] == 0.0 and by[T0 - H]["temp_c"] == 2.0  # only the stamp at its end is known
    assert (by[T0]["ghi_w_m2"], by[T0]["temp_c"]) == (100.0, 3.0)
    assert (by[T0 + H]["ghi_w_m2"], by[T0 + H]["temp_c"]) == (300.0, 6.0)
    assert by[T0 + 2 * H]["ghi_w_m2"] is None and by[T0 + 2 * H]["temp_c"] == 9.0
    assert [by[h]["kind"] for h in sorted(by)] == ["OBSERVED"] * 4 + [
        "FORECAST"
    ] * 2  # now is in hour T0 + 3 h
    assert by[T0]["event_id"] == f"golden/{T0}/{NOW}" and by[T0]["issued_at"] == NOW
    assert all(r["ghi_clear_w_m2"] >= 0 for r in p.records)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("12", "hourly.temperature_2m[1] = '12' is not a number in [-80.0, 70.0]"),
        (math.nan, "hourly.temperature_2m[1] = nan is not a number in [-80.0, 70.0]"),
        (95.0, "hourly.temperature_2m[1] = 95.0 is not a number in [-80.0, 70.0]"),
        (True, "hourly.temperature_2m[1] = True is not a number in [-80.0, 70.0]"),
    ],
)
def test_a_bad_value_is_left_out_with_its_reason_and_the_rest_is_kept(bad, reason):
    p = weather_hours(_doc([2.0, bad, 8.0], [0.0, 10.0, 20.0]), SITE, NOW, "svc")
    assert p.problems == [reason]
    assert {r["hour_start"]: r["temp_c"] for r in p.records}[T0] == 2.0  # the other end only
    assert len(p.records) == 4


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"hourly": {}}, "hourly.time is missing"),
        ([], "no 'hourly' object"),
        ({"utc_offset_seconds": 3600, "hourly": {"time": [0]}}, "asked for GMT"),
        (_doc([1.0, 2.0], [0.0, 0.0], first_ms=T0 + 60_000), "whole hours"),
        ({"hourly": {"time": [7200, 3600]}}, "strictly increasing"),
        ({"hourly": {"time": [3600, 7200], "temperature_2m": [1.0]}}, "list of 2 values"),
    ],
)
def test_an_unreadable_answer_is_refused_whole(doc, match):
    with pytest.raises(AnswerError, match=match):
        weather_hours(doc, SITE, NOW, "svc")


def test_hours_far_from_the_time_of_asking_are_dropped():
    p = weather_hours(_doc([1.0, 2.0], [0.0, 0.0], first_ms=T0 - 200 * 86_400_000), SITE, NOW, "svc")
    assert p.records == [] and p.problems == ["2 hours outside [issued_at - 93 d, issued_at + 17 d] dropped"]


def test_the_simulated_service_answers_measured_weather_under_the_sun_of_the_asked_date():
    doc = answer(SITE.latitude, SITE.longitude, 1, 2, NOW / 1000)
    p = weather_hours(doc, SITE, NOW, "sim")
    assert p.problems == [] and len(doc["hourly"]["time"]) == 72
    day = [r for r in p.records if r["ghi_w_m2"] is not None]
    assert max(r["ghi_w_m2"] for r in day) > 100  # a December day in Golden, CO
    assert all(r["ghi_w_m2"] <= r["ghi_clear_w_m2"] * 1.25 + 5 for r in day)  # never far above clear sky
    night = [r for r in day if (r["hour_start"] // H) % 24 in (5, 6, 7, 8)]  # 22:00-02:00 local (UTC-7)
    assert night and all(r["ghi_w_m2"] == 0 for r in night)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "weather:\n  base_url: http://w/v1\n  sites:\n    - {location_id: a, latitude: 1, longitude: 2}\n"
            "    - {location_id: roof, latitude: 91, longitude: 2}\n",
            r"weather.yaml: sites\[1\] 'roof': field 'latitude': Input should",
        ),
        (
            "weather:\n  base_url: ftp://w\n  sites: [{location_id: a, latitude: 1, longitude: 2}]\n",
            "weather.yaml: field 'base_url': must start with http",
        ),
        ("sites: []\n", "weather.yaml: top level must be a mapping with the one key 'weather'"),
    ],
)
def test_config_errors_name_file_entry_and_field(tmp_path, text, match):
    p = tmp_path / "weather.yaml"
    p.write_text(text)
    with pytest.raises(WeatherConfigError, match=match):
        load_weather_config(p)


def test_the_stage_view_keeps_the_latest_hour_of_its_site_and_skips_what_it_cannot_trust():
    serde, topic = Serde(), "weather.hourly.v1"
    recs = weather_hours(_doc([2.0, 4.0, 8.0], [0.0, 100.0, 300.0]), SITE, NOW, "svc").records
    view = StaticView({})
    for r in recs:
        view.put(f"golden/{r['hour_start']}".encode(), serde.encode("WeatherHour", r, topic))
    other = {**recs[1], "location_id": "elsewhere", "temp_c": 30.0}
    view.put(f"elsewhere/{T0}".encode(), serde.encode("WeatherHour", other, topic))
    view.put(b"golden/123", b"\x00garbage")
    wv = WeatherView(view, "golden", serde, topic)
    wv.refresh()
    assert wv.value("temp_c", T0, 900_000) == 3.0  # a quarter hour takes its hour
    assert wv.value("ghi_w_m2", T0 + 900_000, 900_000) == 100.0
    assert wv.value("ghi_w_m2", T0, 2 * H) == 200.0  # two hours: their mean
    assert math.isnan(wv.value("temp_c", T0 + 5 * H, H))
    newer = {**recs[1], "temp_c": 5.0, "kind": "OBSERVED"}
    view.put(f"golden/{T0}".encode(), serde.encode("WeatherHour", newer, topic))
    wv.refresh()
    assert wv.value("temp_c", T0, H) == 5.0
