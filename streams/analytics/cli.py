"""CLI of the analytics area: ``edream forecast ...`` (``forecast_app``) and ``edream baseline ...`` (``baseline_app``).

Both ``evaluate`` commands work on a CSV file without Kafka and print their figures as one JSON object on the
last line.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from streams.analytics.baselines import ADJUSTMENTS, METHODS

forecast_app = typer.Typer(
    help="Online energy forecasting (River): day-ahead 24 h / intra-day 4 h / hour-ahead, per prosumer or portfolio.",
    no_args_is_help=True,
)
baseline_app = typer.Typer(
    help="Customer baseline load per 15-minute slot: X of Y, averaging, comparative day, same-day adjustment.",
    no_args_is_help=True,
)

Input = Annotated[
    Path,
    typer.Option(
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        help="CSV with columns timestamp,value[,event]; timestamp ISO-8601 or epoch s/ms (UTC); any regular "
        "resolution; header optional.",
    ),
]
Warmup = Annotated[int, typer.Option(help="days replayed before scoring starts")]


class HorizonChoice(StrEnum):
    day_ahead = "day-ahead"
    intra_day = "intra-day"
    hour_ahead = "hour-ahead"
    all = "all"


MethodChoice = StrEnum("MethodChoice", {m: m for m in METHODS})
AdjustChoice = StrEnum("AdjustChoice", {a: a for a in ADJUSTMENTS})


@forecast_app.command("evaluate")
def forecast_evaluate(
    input: Input,
    horizon: Annotated[HorizonChoice, typer.Option(help="forecast horizon to score")] = HorizonChoice.all,
    eval_days: Annotated[
        int, typer.Option(min=1, help="days at the end of the series that are scored (the rest is history)")
    ] = 28,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="run only these models (repeatable): seasonal-naive-day, seasonal-naive-week, persistence, "
            "mstl-arima, lightgbm, river-linear, river-profile, ensemble, and with --weather lightgbm-clearsky, "
            "lightgbm-weather, ensemble-weather; the naive that scales MASE always runs"
        ),
    ] = None,
    weather: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="the site's weather, CSV timestamp,temp_c[,ghi_w_m2][,ghi_clear_w_m2] (degC, W/m2; header "
            "required): also scores the weather-aware models, reading the weather of the points they forecast "
            "as the weather forecast (measured weather there makes a perfect forecast, an upper bound)",
        ),
    ] = None,
):
    """Score forecasters with the rolling-origin harness: peers and online models on the same points.

    Values are energy per step (e.g. Wh per 15 min). At each origin every model sees only the data before it.
    Peers: seasonal naive (day, week), persistence, MSTL + ARIMA, LightGBM (L1). Figures: MAE, MASE (scaled by
    persistence for hour-ahead, seasonal naive for day-ahead, the better of both for intra-day), MAPE away from
    zero, pinball loss and P10-P90 coverage (ensemble). Prints a markdown table, then one JSON object.
    """
    from streams.analytics.evaluate import load_csv, load_weather_csv
    from streams.analytics.evaluation.online_models import online_models, weather_models
    from streams.analytics.evaluation.run import PROTOCOL, evaluate_series
    from streams.analytics.evaluation.table import models_table

    names = ["hour-ahead", "intra-day", "day-ahead"] if horizon == "all" else [horizon.value]
    try:
        series = load_csv(input)
        factories = [online_models] + ([weather_models(load_weather_csv(weather))] if weather else [])
        results = evaluate_series(
            series.ts, series.values, series.step_ms, eval_days, names, factories, model
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(models_table(results))
    typer.echo(json.dumps({"protocol": PROTOCOL, "eval_days": eval_days, "horizons": results}))


@baseline_app.command("evaluate")
def baseline_evaluate(
    input: Input,
    method: Annotated[MethodChoice, typer.Option(help="baseline method")] = MethodChoice["AVERAGE_Y"],
    x: Annotated[int, typer.Option(help="X: days kept of the Y look-back days")] = 10,
    y: Annotated[int, typer.Option(help="Y: similar non-event days looked back")] = 10,
    adjust: Annotated[AdjustChoice, typer.Option(help="same-day adjustment")] = AdjustChoice["additive"],
    cap: Annotated[
        float, typer.Option(help="adjustment cap as a fraction of the baseline (inf: uncapped)")
    ] = math.inf,
    window_slots: Annotated[
        int, typer.Option(min=1, help="adjustment window, 15-min slots, ending --lead-slots before the slot")
    ] = 48,
    lead_slots: Annotated[int, typer.Option(min=0, help="adjustment lead, 15-min slots")] = 4,
    weight: Annotated[float, typer.Option(help="share of the adjustment applied, (0, 1]")] = 0.5,
    warmup_days: Warmup = 14,
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="settlement-style evaluation instead: every preset (PJM/NYISO/CAISO-style X of Y with "
            "event-day adjustment) scored on a pseudo event in each non-event working day",
        ),
    ] = False,
    event_start_hour: Annotated[
        int, typer.Option(min=0, max=23, help="--events: event start (UTC hour)")
    ] = 17,
    event_hours: Annotated[int, typer.Option(min=1, max=24, help="--events: event length in hours")] = 3,
    weather: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="--events: the site's weather, CSV timestamp,temp_c[,...] (degC; header required): also scores "
            "the weather regression baseline (level from heating/cooling degrees of the day's mean temperature)",
        ),
    ] = None,
):
    """Back-test a baseline on a load series (kW or energy per step); print hourly CV(RMSE) and NMBE.

    The defaults are the baselines stage's (10 of 10, half of the uncapped additive deviation over the 12 h
    ending an hour before each slot).

    Scored on non-event days (third CSV column true marks an event in that day); event days never enter a
    look-back. The plain 10-of-10 average is scored alongside as the reference. NMBE > 0: baseline too low.
    With --events: the event-style table of every preset (adjustment window ending a lead before the event,
    only meter intervals that ended count), a markdown table and then one JSON object.
    """
    from streams.analytics.baselines import BaselineConfig
    from streams.analytics.evaluate import evaluate_baseline, load_csv, load_weather_csv, to_day_grid

    try:
        cfg = BaselineConfig(
            method.value,
            x=x,
            y=y,
            adjust=adjust.value,
            cap=cap,
            adjust_width_slots=window_slots,
            adjust_lead_slots=lead_slots,
            weight=weight,
        )
        series = load_csv(input)
        load, day_ms, event_days = to_day_grid(series)
        window, temp = None, None
        if events:
            from streams.analytics.baseline_events import EventWindow

            window = EventWindow(event_start_hour * 4, event_hours * 4)
        if weather is not None:
            if "temp_c" not in (wx := load_weather_csv(weather)).fields:
                raise ValueError(f"{weather}: the weather regression baseline needs a temp_c column")
            temp = wx.on_points(day_ms, 86_400_000)["temp_c"]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if window is not None:
        native = max(1, series.step_ms // 900_000)
        _baseline_events(load, day_ms, event_days, window, native, warmup_days, temp)
        return
    result = evaluate_baseline(load, day_ms, event_days, cfg, warmup_days)
    ref = evaluate_baseline(load, day_ms, event_days, BaselineConfig("AVERAGE_Y", x=10, y=10), warmup_days)
    result["reference_10of10"] = {k: ref[k] for k in ("cv_rmse", "nmbe")}
    typer.echo(json.dumps(result))


def _baseline_events(
    load, day_ms, event_days, window, native_slots: int, warmup_days: int, temp=None
) -> None:
    """Print the event-style figures of every preset, and of the weather regression baseline when the days' mean
    temperatures ``temp`` are given (markdown table, then JSON)."""
    import numpy as np

    from streams.analytics.baseline_events import PRESETS, evaluate_cbl, evaluate_events
    from streams.analytics.baseline_weather import WEATHER_ROW, event_cbl
    from streams.analytics.baselines import day_kinds

    kind = day_kinds(day_ms)
    excluded = event_days if event_days is not None else np.zeros(load.shape[0], dtype=bool)
    res = {
        p.name: evaluate_events(load, kind, excluded, p, window, native_slots, warmup_days) for p in PRESETS
    }
    if temp is not None:
        ev = slice(window.start_slot, window.start_slot + window.slots)
        cbl = event_cbl(load, temp, kind, excluded, ev)
        res[WEATHER_ROW] = evaluate_cbl(load, kind, excluded, cbl, window, warmup_days)
    typer.echo("| preset | events | NMBE | CV(RMSE) |\n|---|---|---|---|")
    for name, r in res.items():
        typer.echo(f"| {name} | {r['events']} | {r['nmbe'] * 100:+.1f} % | {r['cv_rmse'] * 100:.1f} % |")
    typer.echo(
        json.dumps({"event_start_slot": window.start_slot, "event_slots": window.slots, "presets": res})
    )
