"""Markdown tables of harness figures (:func:`~.run.evaluate_series` results)."""

from __future__ import annotations

import math
from typing import Any

PEERS = ("seasonal-naive-day", "seasonal-naive-week", "persistence", "mstl-arima", "lightgbm")


def _f(x: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def best_peer(models: dict[str, dict[str, float]]) -> str:
    """The peer with the lowest MAE."""
    return min((p for p in PEERS if p in models), key=lambda p: models[p]["mae"])


def models_table(results: dict[str, Any]) -> str:
    """One row per (horizon, model): MAE, MASE, MAPE, pinball, coverage."""
    rows = [
        "| horizon | model | MAE (Wh) | MASE | MAPE | pinball (Wh) | P10-P90 coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for h, r in results.items():
        for m, f in r["models"].items():
            rows.append(
                f"| {h} | {m} | {_f(f['mae'], '{:.1f}')} | {_f(f['mase'])} | {_f(f['mape'] * 100, '{:.1f} %')} | "
                f"{_f(f.get('pinball'), '{:.1f}')} | {_f(f.get('coverage'), '{:.2f}')} |"
            )
    return "\n".join(rows)


def summary_row(set_name: str, horizon: str, r: dict[str, Any], model: str = "ensemble") -> str:
    """``| set | horizon | points | best peer (MASE) | river-linear MASE | model MASE | vs best peer | coverage |``"""
    m = r["models"]
    bp = best_peer(m)
    f = m.get(model, {})
    gain = (1.0 - f["mae"] / m[bp]["mae"]) * 100 if f else math.nan
    lin = m.get("river-linear", {}).get("mase")
    return (
        f"| {set_name} | {horizon} | {r['points']} | {bp} {_f(m[bp]['mase'])} | {_f(lin)} | "
        f"{_f(f.get('mase'))} | {_f(gain, '{:+.1f} %')} | {_f(f.get('coverage'), '{:.2f}')} |"
    )


SUMMARY_HEADER = (
    "| set | horizon | points | best peer (MASE) | River linear MASE | ensemble MASE | ensemble MAE vs best peer | "
    "ensemble P10-P90 coverage |\n|---|---|---|---|---|---|---|---|"
)
