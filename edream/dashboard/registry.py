"""Panel registry: a panel is a title plus a function turning a :class:`PanelSource` into a JSON-able dict.

Adding a panel = one module in ``edream/dashboard/panels/`` with::

    @panel("my_panel", "My panel", order=60)
    def my_panel(src: PanelSource) -> dict: ...

and, in ``static/dashboard.js``, a renderer for its ``kind`` (or reuse ``table``/``series``/``bars``).
Query functions run on the ClickHouse thread (blocking calls are fine there) and must never raise for a missing
table: :mod:`edream.dashboard.query` returns an empty result with a ``note`` instead.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edream.dashboard.tables import DEFAULT_TABLES


@dataclass(frozen=True)
class PanelSource:
    """What a panel may read: a clickhouse-connect client, a counters snapshot, the time and table names.

    ``now_ms`` is UTC epoch ms; ``window_ms`` the look-back of time-series panels.
    """

    client: Any
    now_ms: int
    counters: Mapping[str, int] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    lag: Mapping[str, Any] = field(default_factory=dict)
    tables: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TABLES))
    window_ms: int = 2 * 3_600_000
    #: per stage and worker, as ``/api/status`` ``stages`` (status, last_error, in/out per s, lag, ...)
    stages: Sequence[Mapping[str, Any]] = ()
    #: ``<stage>@<worker>`` keys whose consumer lag has been growing (:class:`~edream.dashboard.alerts.LagTrend`)
    lag_growing: frozenset[str] = frozenset()
    #: ``{"chain": {"up": bool, "detail": str}, "clickhouse": {...}}``; empty = not probed
    deps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: settlements may wait this long (ms) after their window ends before "anchoring behind" fires
    anchor_allowed_ms: int = 35 * 60_000


PanelFn = Callable[[PanelSource], dict[str, Any]]


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    order: int
    fn: PanelFn
    description: str = ""
    #: rendered (with ``src.client`` None) while the ClickHouse thread does not answer, instead of shown stale
    live_without_clickhouse: bool = False

    def render(self, src: PanelSource) -> dict[str, Any]:
        """The panel's data, or an ``error`` note if its query failed (one broken panel never hides the rest)."""
        try:
            data = self.fn(src)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, not raised
            data = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        return {"id": self.id, "title": self.title, "description": self.description, **data}


PANELS: dict[str, Panel] = {}


def panel(
    panel_id: str, title: str, order: int = 100, live_without_clickhouse: bool = False
) -> Callable[[PanelFn], PanelFn]:
    """Register a panel function under ``panel_id`` (its docstring becomes the panel's description);
    ``live_without_clickhouse``: the function copes with ``src.client`` None (see :class:`Panel`)."""

    def deco(fn: PanelFn) -> PanelFn:
        PANELS[panel_id] = Panel(
            panel_id,
            title,
            order,
            fn,
            " ".join(inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0].split()),
            live_without_clickhouse,
        )
        return fn

    return deco


def discover() -> list[Panel]:
    """Import every module of :mod:`edream.dashboard.panels` and return the panels in display order."""
    import edream.dashboard.panels as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{m.name}")
    return sorted(PANELS.values(), key=lambda p: (p.order, p.id))


def snapshot(panels: list[Panel], src: PanelSource) -> dict[str, Any]:
    """All panels rendered against one source: what ``/api/stream`` pushes."""
    return {"time_ms": src.now_ms, "panels": {p.id: p.render(src) for p in panels}}


def snapshot_without_clickhouse(
    panels: list[Panel], src: PanelSource, last: Mapping[str, Any] | None, silent_s: float
) -> dict[str, Any]:
    """The snapshot while the ClickHouse thread does not answer (a query hangs, or the thread is backed up): the
    panels that are ``live_without_clickhouse`` rendered against ``src`` (whose client is None), every other one as
    the ``last`` snapshot showed it, with an error saying since when its figures are."""
    shown = (last or {}).get("panels", {})
    as_of = utc_text(last["time_ms"]) if last else "never"
    note = f"ClickHouse has not answered for {silent_s:.0f} s: figures as of {as_of}"
    out = {}
    for p in panels:
        if p.live_without_clickhouse:
            out[p.id] = p.render(src)
        else:
            before = shown.get(p.id) or {"id": p.id, "title": p.title, "description": p.description}
            out[p.id] = {**before, "error": note}
    return {"time_ms": src.now_ms, "panels": out}


def utc_text(ms: int) -> str:
    """``2026-12-06 09:12:03 UTC`` for UTC epoch ms."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
