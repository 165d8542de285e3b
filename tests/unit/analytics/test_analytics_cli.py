"""The evaluate commands print their figures as a JSON object on the last line."""

from __future__ import annotations

import json

import numpy as np
import typer
from typer.testing import CliRunner

from streams.analytics.cli import baseline_app, forecast_app

MONDAY = 1_700_438_400_000


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(forecast_app, name="forecast")
    app.add_typer(baseline_app, name="baseline")
    return app


def _csv(tmp_path, days: int, events: bool) -> str:
    rng = np.random.default_rng(3)
    ts = MONDAY + np.arange(days * 96, dtype=np.int64) * 900_000
    slot = (ts % 86_400_000) // 900_000
    y = (1.0 + np.sin(2 * np.pi * slot / 96) ** 2) * rng.lognormal(0, 0.1, ts.size)
    ev = (ts // 86_400_000) % 9 == 0
    rows = ["timestamp,value" + (",event" if events else "")]
    rows += [f"{t},{v:.4f}" + (f",{int(e)}" if events else "") for t, v, e in zip(ts, y, ev, strict=True)]
    p = tmp_path / "series.csv"
    p.write_text("\n".join(rows))
    return str(p)


def test_forecast_evaluate_prints_json(tmp_path):
    res = CliRunner().invoke(
        _app(),
        [
            "forecast",
            "evaluate",
            "--input",
            _csv(tmp_path, 20, False),
            "--horizon",
            "day-ahead",
            "--eval-days",
            "3",
            "--model",
            "seasonal-naive-week",
            "--model",
            "river-linear",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "| day-ahead | river-linear |" in res.output  # the markdown table comes before the JSON
    out = json.loads(res.output.strip().splitlines()[-1])
    r = out["horizons"]["day-ahead"]
    assert r["points"] == 3 * 24 and r["mase_scale"] == "seasonal-naive-day"
    assert set(r["models"]) == {"seasonal-naive-day", "seasonal-naive-week", "river-linear"}
    assert r["models"]["seasonal-naive-day"]["mase"] == 1.0 and r["models"]["river-linear"]["mase"] < 1.0
    assert "rolling origin" in out["protocol"]


def test_baseline_evaluate_prints_json_and_reference(tmp_path):
    path = _csv(tmp_path, 30, True)
    res = CliRunner().invoke(
        _app(),
        [
            "baseline",
            "evaluate",
            "-i",
            path,
            "--method",
            "HIGH_X_OF_Y",
            "--x",
            "4",
            "--y",
            "5",
            "--adjust",
            "additive",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["method"] == "HIGH_X_OF_Y" and out["params"].startswith("x=4,y=5,adjust=additive")
    assert out["days"] < 16  # event days are not scored
    assert abs(out["nmbe"]) < 0.1 and out["cv_rmse"] < 0.3
    assert set(out["reference_10of10"]) == {"cv_rmse", "nmbe"}


def test_baseline_evaluate_events_prints_every_preset(tmp_path):
    res = CliRunner().invoke(
        _app(),
        ["baseline", "evaluate", "-i", _csv(tmp_path, 30, True), "--events", "--event-start-hour", "18"],
    )
    assert res.exit_code == 0, res.output
    assert "| PJM-style high 4 of 5, additive |" in res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["event_start_slot"] == 72 and out["event_slots"] == 12
    plain = out["presets"]["10of10 (no adjustment)"]
    assert plain["events"] > 0 and abs(plain["nmbe"]) < 0.1


def test_bad_input_exits_2(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("timestamp,value\n0,1\n7,2\n14,3\n")
    res = CliRunner().invoke(_app(), ["forecast", "evaluate", "--input", str(p)])
    assert res.exit_code == 2


def _pv_and_weather(tmp_path, days: int) -> tuple[str, str]:
    """Hourly PV energy under a random cloudiness per day, and the site's weather that explains it."""
    rng = np.random.default_rng(5)
    ts = MONDAY + np.arange(days * 24, dtype=np.int64) * 3_600_000
    hour = (ts % 86_400_000) // 3_600_000
    clear = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None) * 900.0
    ghi = clear * np.repeat(rng.uniform(0.1, 1.0, days), 24)
    (tmp_path / "pv.csv").write_text(
        "timestamp,value\n" + "\n".join(f"{t},{5 * g:.2f}" for t, g in zip(ts, ghi, strict=True))
    )
    (tmp_path / "wx.csv").write_text(
        "timestamp,temp_c,ghi_w_m2,ghi_clear_w_m2\n"
        + "\n".join(f"{t},{12 + g / 100:.1f},{g:.1f},{c:.1f}" for t, g, c in zip(ts, ghi, clear, strict=True))
    )
    return str(tmp_path / "pv.csv"), str(tmp_path / "wx.csv")


def test_forecast_evaluate_with_the_sites_weather_scores_the_weather_aware_models(tmp_path):
    pv, wx = _pv_and_weather(tmp_path, 30)
    args = ["forecast", "evaluate", "-i", pv, "--horizon", "day-ahead", "--eval-days", "4"]
    res = CliRunner().invoke(
        _app(), [*args, "--model", "lightgbm", "--model", "lightgbm-weather", "--weather", wx]
    )
    assert res.exit_code == 0, res.output
    m = json.loads(res.output.strip().splitlines()[-1])["horizons"]["day-ahead"]["models"]
    assert m["lightgbm-weather"]["mae"] < 0.5 * m["lightgbm"]["mae"]

    (tmp_path / "bad.csv").write_text("timestamp,wind_m_s\n1700438400000,3.0\n1700442000000,4.0\n")
    res = CliRunner().invoke(_app(), [*args, "--weather", str(tmp_path / "bad.csv")])
    assert res.exit_code == 2
    assert "bad.csv: weather columns must be timestamp followed by any of temp_c" in res.output


def test_baseline_events_with_the_sites_temperature_scores_the_weather_regression(tmp_path):
    rng = np.random.default_rng(9)
    days = 60
    temp_day = rng.uniform(-8, 14, days)
    ts = MONDAY + np.arange(days * 96, dtype=np.int64) * 900_000
    slot = (ts % 86_400_000) // 900_000
    kw = (1 + 0.4 * np.sin(2 * np.pi * slot / 96)) * (1.0 + 0.25 * np.repeat(15 - temp_day, 96))
    kw *= rng.lognormal(0, 0.05, ts.size)
    (tmp_path / "load.csv").write_text(
        "timestamp,value\n" + "\n".join(f"{t},{v:.4f}" for t, v in zip(ts, kw, strict=True))
    )
    hours = MONDAY + np.arange(days * 24, dtype=np.int64) * 3_600_000
    (tmp_path / "wx.csv").write_text(
        "timestamp,temp_c\n" + "\n".join(f"{t},{temp_day[i // 24]:.2f}" for i, t in enumerate(hours))
    )
    res = CliRunner().invoke(
        _app(),
        ["baseline", "evaluate", "-i", str(tmp_path / "load.csv"), "--events"]
        + ["--weather", str(tmp_path / "wx.csv")],
    )
    assert res.exit_code == 0, res.output
    p = json.loads(res.output.strip().splitlines()[-1])["presets"]
    weather = p["weather regression (HDD/CDD of the day, 20 days)"]
    assert weather["events"] > 20
    assert weather["cv_rmse"] < 0.5 * p["10of10 (no adjustment)"]["cv_rmse"], p
