"""Prometheus gauges of the console's alert inputs, so ``docker/prometheus/alerts.yml`` fires on the same
conditions as the dashboard's alert list (stage gauges ``edream_stage_*`` come from the health board)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Gauge

SHORTFALL = Gauge(
    "edream_flex_shortfall_kw",
    "Worst slot's summed shortfall (target - delivered) of an order, kW",
    ["order_id"],
)
ANCHOR_BEHIND = Gauge(
    "edream_anchoring_behind_seconds",
    "Seconds the oldest unanchored settlement has waited since its window ended",
)
ANCHOR_ALLOWED = Gauge(
    "edream_anchoring_allowed_seconds",
    "Anchoring window + grace + slack: waiting longer is 'anchoring behind'",
)
DEPENDENCY_UP = Gauge("edream_dependency_up", "1 when the dependency answers its probe", ["dependency"])
ALERTS = Gauge("edream_console_alerts", "Alerts the console shows, by alert name", ["alert"])

METRIC_NAMES = (
    "edream_flex_shortfall_kw",
    "edream_anchoring_behind_seconds",
    "edream_anchoring_allowed_seconds",
    "edream_dependency_up",
    "edream_console_alerts",
)


def export(health: Mapping[str, Any], deps: Mapping[str, Mapping[str, Any]]) -> None:
    """Set the gauges from the health panel's ``metrics`` and the dependency probes."""
    m = health.get("metrics") or {}
    SHORTFALL.clear()
    for order_id, kw in (m.get("shortfall_kw") or {}).items():
        SHORTFALL.labels(order_id).set(kw)
    ANCHOR_BEHIND.set(m.get("anchoring_behind_s") or 0)
    ANCHOR_ALLOWED.set(m.get("anchoring_allowed_s") or 0)
    for name, d in deps.items():
        DEPENDENCY_UP.labels(name).set(1 if d.get("up") else 0)
    ALERTS.clear()
    for name in m.get("alerts") or []:
        ALERTS.labels(name).inc()
