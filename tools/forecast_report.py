"""Forecast evaluation report (issue 17): every model on every shipped evaluation set and horizon.

Usage: ``.venv/bin/python -m tools.forecast_report [--sets fleet pv] [--eval-days 28] [--horizons ...]
[--stage-ensemble] [--weather]``.
Prints a markdown summary table (per set and horizon: the best peer, the River linear default and the ensemble)
and the per-model tables, then one JSON object on the last line with every figure and the protocol. Sets:
:mod:`tools.forecast_sets`; protocol: :data:`streams.analytics.evaluation.run.PROTOCOL`.
"""

from __future__ import annotations

import argparse
import json
import time

from streams.analytics.ensemble_stream import STAGE_OPTIONS
from streams.analytics.evaluation.online_models import Ensemble, online_models, weather_models
from streams.analytics.evaluation.protocol import HORIZONS, EvalHorizon
from streams.analytics.evaluation.run import PROTOCOL, evaluate_series
from streams.analytics.evaluation.table import SUMMARY_HEADER, models_table, summary_row
from tools.forecast_sets import STEP_MS, load_sets


def _stage_ensemble(h: EvalHorizon) -> list[Ensemble]:
    return [Ensemble(h, name="ensemble-stage", options=STAGE_OPTIONS)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="*", help="set name prefixes (default: all)")
    ap.add_argument("--eval-days", type=int, default=14, help="days at the end of each set that are scored")
    ap.add_argument("--horizons", nargs="*", default=list(HORIZONS), choices=list(HORIZONS))
    ap.add_argument(
        "--stage-ensemble",
        action="store_true",
        help="also score the forecasts stage's ensemble (FORECAST_MODEL=ensemble: online members only)",
    )
    ap.add_argument(
        "--weather",
        action="store_true",
        help="also score the weather-aware models on sets that ship with their site's weather (the measured "
        "weather of the targets stands for a perfect weather forecast)",
    )
    a = ap.parse_args()
    factories = [online_models] + ([_stage_ensemble] if a.stage_ensemble else [])
    t0 = time.perf_counter()
    out: dict = {"protocol": PROTOCOL, "eval_days": a.eval_days, "sets": {}}
    summary = [SUMMARY_HEADER]
    details = []
    for s in load_sets(a.sets):
        extra = [weather_models(s.weather)] if a.weather and s.weather is not None else []
        res = evaluate_series(s.ts, s.wh, STEP_MS, a.eval_days, a.horizons, factories + extra)
        out["sets"][s.name] = {"kind": s.kind, "horizons": res}
        summary += [summary_row(s.name, h, r) for h, r in res.items()]
        details.append(f"### {s.name}\n\n{models_table(res)}\n")
        print(f"{s.name}: done after {time.perf_counter() - t0:.0f} s", flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print("\n".join(summary) + "\n")
    print("\n".join(details))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
