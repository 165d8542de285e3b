"""The ``MarketOrder`` contract (avro/MarketOrder.avsc) and its arrival time, against the wall clock.

Bounds only: ids and hex fields of the right shape, quantity at most ``max_order_wh`` (so clearing sums stay
far from int64), nonce within int64, the arrival time (broker timestamp) and ``client_ts`` not ahead of the
wall clock by more than the clock skew nor older than ``max_past_ms``, the slot within the horizon. The rules
that need state (registered participant, signature, session grid, price bounds, gate, nonce replay) stay in
:class:`streams.market.validation.OrderValidator`.
"""

from __future__ import annotations

import re

from streams.market.market_order import MarketOrder
from streams.validation.fields import Checker, FieldError
from streams.validation.limits import Limits, current_limits

INT64_MAX = 2**63 - 1
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
HEX = re.compile(r"(0x)?[0-9a-fA-F]*")
MAX_SIGNATURE_LENGTH = 2 + 2 * 65  # 0x + r, s, v


def check_market_order(
    order: MarketOrder, arrival_ms: int, now_ms: int, limits: Limits | None = None
) -> list[FieldError]:
    """Bounds of one order that arrived at ``arrival_ms`` (UTC epoch ms, broker time), ``now_ms`` = wall clock.
    ``quantity_wh`` <= 0 is left to the validator's NON_POSITIVE_QUANTITY."""
    lim = limits or current_limits()
    c = Checker()
    c.event_time("arrival_time", arrival_ms, now_ms, lim.max_past_ms, lim.max_future_ms)
    c.event_time("client_ts", order.client_ts, now_ms, lim.max_past_ms, lim.max_future_ms)
    c.identifier("participant_id", order.participant_id)
    c.identifier("session_id", order.session_id)
    if not isinstance(order.address, str) or not ADDRESS.fullmatch(order.address):
        c.fail("address", "bad_identifier", "must be a 0x-prefixed 20-byte hex address")
    c.identifier("order_id", order.order_id, max_len=66)
    if not isinstance(order.signature, str) or len(order.signature) > MAX_SIGNATURE_LENGTH:
        c.fail("signature", "too_long", f"at most {MAX_SIGNATURE_LENGTH} characters")
    elif not HEX.fullmatch(order.signature):
        c.fail("signature", "bad_identifier", "must be hex")
    c.number("slot_minutes", order.slot_minutes, 1, 1440, integer=True)
    if c.number("slot_start", order.slot_start, 0, INT64_MAX, integer=True):
        horizon_end = now_ms + lim.horizon_ms
        if order.slot_start > horizon_end:
            c.fail(
                "slot_start", "beyond_horizon", f"{order.slot_start} is after now + horizon ({horizon_end})"
            )
    quantity_ok = c.number("quantity_wh", order.quantity_wh, -INT64_MAX, INT64_MAX, integer=True, unit="Wh")
    if quantity_ok and order.quantity_wh > lim.max_order_wh:
        c.fail("quantity_wh", "value_out_of_range", f"{order.quantity_wh} Wh above {lim.max_order_wh} Wh")
    c.number(
        "limit_price_micro_per_kwh", order.limit_price_micro_per_kwh, -INT64_MAX, INT64_MAX, integer=True
    )
    c.number("nonce", order.nonce, 0, INT64_MAX, integer=True)
    return c.errors
