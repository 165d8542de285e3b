"""The ``FlexOrder`` contract (avro/FlexOrder.avsc) as the stages that consume orders check it.

Bounds only: ids, status, and each allocation's prosumer id, finite kW and ``slot_start`` (UTC epoch ms)
within the wall-clock window (not older than ``max_past_ms``, not beyond the horizon). The re-key of an order to
its prosumers runs the same checks without the clock (``now_ms=None``), so no malformed id becomes a state key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.validation.fields import Checker, FieldError
from streams.validation.limits import Limits, current_limits

ORDER_STATUSES = ("ACTIVE", "AMENDED", "COMPLETED", "CANCELLED")


def _order_part(rec: Mapping[str, Any], items: str) -> tuple[Checker, list[Any]]:
    """A checker with the problems of ``rec``'s order id and status, and its list field ``items`` (empty, with a
    problem, when it is no list)."""
    c = Checker()
    c.identifier("order_id", rec.get("order_id"))
    c.one_of("status", rec.get("status"), ORDER_STATUSES)
    value = rec.get(items)
    if not isinstance(value, list):
        c.fail(items, "bad_type", f"must be a list, got {type(value).__name__}")
        return c, []
    return c, value


def check_flex_order(
    order: Mapping[str, Any], now_ms: int | None, limits: Limits | None = None
) -> list[FieldError]:
    """Every problem of one decoded FlexOrder (empty = valid). ``now_ms`` (UTC epoch ms, the wall clock)
    enables the bounds of each ``allocations[i].slot_start``: at least ``now - max_past_ms`` and at most
    ``now + horizon_ms``; allocation ``kw`` must be finite and at most ``max_flex_kw``."""
    lim = limits or current_limits()
    c, allocations = _order_part(order, "allocations")
    for i, a in enumerate(allocations):
        c.identifier(f"allocations[{i}].prosumer_id", a.get("prosumer_id"))
        c.number(f"allocations[{i}].kw", a.get("kw"), -lim.max_flex_kw, lim.max_flex_kw, unit="kW")
        ts = a.get("slot_start")
        if now_ms is not None:
            c.event_time(f"allocations[{i}].slot_start", ts, now_ms, lim.max_past_ms, lim.horizon_ms)
        elif not isinstance(ts, int) or isinstance(ts, bool):
            c.fail(f"allocations[{i}].slot_start", "bad_type", f"must be an int, got {type(ts).__name__}")
    return c.errors


def check_flex_allocation(
    allocation: Mapping[str, Any], now_ms: int, limits: Limits | None = None
) -> list[FieldError]:
    """Every problem of one decoded FlexAllocation (one prosumer's share of an order revision; empty = valid):
    ids, status, and each slot's finite ``kw`` (at most ``max_flex_kw``) and ``slot_start`` (UTC epoch ms) within
    ``now_ms - max_past_ms`` .. ``now_ms + horizon_ms`` of the wall clock."""
    lim = limits or current_limits()
    c, slots = _order_part(allocation, "slots")
    c.identifier("prosumer_id", allocation.get("prosumer_id"))
    for i, s in enumerate(slots):
        c.number(f"slots[{i}].kw", s.get("kw"), -lim.max_flex_kw, lim.max_flex_kw, unit="kW")
        c.event_time(f"slots[{i}].slot_start", s.get("slot_start"), now_ms, lim.max_past_ms, lim.horizon_ms)
    return c.errors
