"""Operator alerts from stage health, deviations, anchoring progress and the dependencies (pure rules).

The same conditions are Prometheus alert rules in ``docker/prometheus/alerts.yml`` (on the ``edream_stage_*`` and
``edream_console_*`` gauges), so the console and Alertmanager agree. Times are UTC epoch ms, power in kW.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: A stage's lag must have grown over at least this long (ms) and be above LAG_ALERT_MIN messages to alert.
LAG_GROWING_FOR_MS = 30_000
LAG_ALERT_MIN = 100
#: An order whose summed shortfall (target - delivered, kW) in one slot exceeds this raises an alert.
SHORTFALL_ALERT_KW = 0.5
#: Slack (ms) beyond the anchoring window + grace before unanchored settlements count as "anchoring behind".
ANCHOR_SLACK_MS = 5 * 60_000


@dataclass(frozen=True)
class Alert:
    """One firing condition: ``name`` as in the Prometheus rules, ``subject`` what it is about (stage, order, ...)."""

    name: str
    severity: str  # "critical" | "warning"
    subject: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LagTrend:
    """Remembers each stage's recent lag samples and says whether the lag has been growing."""

    def __init__(
        self, growing_for_ms: int = LAG_GROWING_FOR_MS, min_lag: int = LAG_ALERT_MIN, keep: int = 64
    ):
        self.growing_for_ms, self.min_lag = growing_for_ms, min_lag
        self._samples: dict[str, deque[tuple[int, int]]] = {}
        self._keep = keep

    def observe(self, key: str, t_ms: int, lag: int | None) -> None:
        if lag is None:
            return
        samples = self._samples.setdefault(key, deque(maxlen=self._keep))
        if not samples or t_ms > samples[-1][0]:
            samples.append((t_ms, int(lag)))

    def growing(self, key: str) -> bool:
        """Lag above ``min_lag`` that never went down over the last ``growing_for_ms`` and rose overall."""
        samples = list(self._samples.get(key, ()))
        if len(samples) < 2 or samples[-1][1] < self.min_lag:
            return False
        start = samples[-1][0] - self.growing_for_ms
        if samples[0][0] > start:
            return False  # not watched long enough yet
        first = max(i for i, (t, _) in enumerate(samples) if t <= start)
        lags = [lag for _, lag in samples[first:]]
        return all(b >= a for a, b in zip(lags, lags[1:], strict=False)) and lags[-1] > lags[0]


def stage_key(stage: Mapping[str, Any]) -> str:
    """``<stage>@<worker>``: how alerts and the lag trend name one stage of one worker."""
    return f"{stage['stage']}@{stage['worker_id']}"


def stage_alerts(stages: Iterable[Mapping[str, Any]], lag_growing: Collection[str]) -> list[Alert]:
    """DOWN or RETRYING stages, and stages (keys in ``lag_growing``) whose lag keeps growing; ``stages`` as in
    ``/api/status``."""
    out = []
    for s in stages:
        subject = stage_key(s)
        if s["status"] == "DOWN":
            out.append(
                Alert("EdreamStageDown", "critical", subject, s.get("last_error") or "no health report")
            )
        elif s["status"] == "RETRYING":
            out.append(Alert("EdreamStageRetrying", "warning", subject, s.get("last_error") or "retrying"))
        if subject in lag_growing:
            out.append(
                Alert("EdreamStageLagGrowing", "warning", subject, f"lag {s.get('lag')} messages and growing")
            )
    return out


def shortfall_alerts(
    shortfalls: Iterable[Mapping[str, Any]], threshold_kw: float = SHORTFALL_ALERT_KW
) -> list[Alert]:
    """Orders whose worst slot falls short by more than ``threshold_kw`` (rows: order_id, slot_ms, shortfall_kw)."""
    return [
        Alert(
            "EdreamFlexShortfall",
            "warning",
            str(r["order_id"]),
            f"{float(r['shortfall_kw']):.2f} kW short in the slot starting {r['slot_ms']} (UTC ms)",
        )
        for r in shortfalls
        if float(r["shortfall_kw"]) > threshold_kw
    ]


def anchoring_alert(behind_ms: int | None, allowed_ms: int) -> list[Alert]:
    """Settlements whose window ended more than ``allowed_ms`` ago and are not covered by any anchor."""
    if behind_ms is None or behind_ms <= allowed_ms:
        return []
    return [
        Alert(
            "EdreamAnchoringBehind",
            "warning",
            "anchoring",
            f"settlements unanchored for {behind_ms / 60_000:.1f} min (allowed {allowed_ms / 60_000:.1f} min)",
        )
    ]


def dependency_alerts(deps: Mapping[str, Mapping[str, Any]]) -> list[Alert]:
    """``{"chain": {"up": bool, "detail": str}, "clickhouse": {...}}`` -> an alert per dependency that is down."""
    return [
        Alert("EdreamDependencyDown", "critical", name, str(d.get("detail") or "unreachable"))
        for name, d in sorted(deps.items())
        if not d.get("up")
    ]
