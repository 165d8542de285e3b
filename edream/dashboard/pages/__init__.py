"""Drill-down pages: one object (an order, ...) in depth, at ``/page/<kind>/<key>``, data at ``/api/page/<kind>/<key>``.

A page is a function ``(PanelSource, key) -> {"title": str, "blocks": [...]}`` registered with :func:`page`; the
blocks use the same kinds as the panels (``stats``, ``table``, ``series``, ``verify``) and the same renderer.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from edream.dashboard.registry import PanelSource

PageFn = Callable[[PanelSource, str], dict[str, Any]]
PAGES: dict[str, PageFn] = {}


class NotFound(LookupError):
    """No such object (the page answers 404 with this message)."""


def page(kind: str) -> Callable[[PageFn], PageFn]:
    def deco(fn: PageFn) -> PageFn:
        PAGES[kind] = fn
        return fn

    return deco


def discover_pages() -> dict[str, PageFn]:
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
    return dict(PAGES)


def money(amount: float) -> float:
    """A sum of settlement amounts (currency units) for display: exact to the micro-unit the records carry.

    Never rounded to cents: a 1-minute slot's penalty is a fraction of a cent (13 Wh short x 0.30 EUR/kWh =
    0.0039 EUR), and a page showing 0.00 would hide it."""
    return round(amount, 6)


def page_href(kind: str, key: str) -> dict[str, str]:
    """A table cell linking to a drill-down page."""
    from urllib.parse import quote

    return {"href": f"/page/{kind}/{quote(key, safe='')}", "text": key}
