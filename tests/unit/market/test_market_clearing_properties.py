"""Property-based tests of the clearing rulebook (hypothesis), including a differential test against a naive oracle."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from market_reference import reference_clear

from streams.market.clearing import Clearing, ClearingRule, Rationing, clear
from streams.market.orders import BookOrder, Side
from streams.market.rationing import pro_rata, pro_rata_array

# few distinct prices and timestamps so that ties, equal prices and marginal levels are frequent
order_st = st.builds(
    lambda i, side, wh, price, ts: BookOrder(f"o{i}", f"p{i % 5}", side, wh, price, ts),
    st.integers(0, 10_000),
    st.sampled_from([Side.BID, Side.OFFER]),
    st.integers(1, 5000),
    st.integers(1, 12).map(lambda x: x * 10_000),
    st.integers(0, 3),
)
book_st = st.lists(order_st, max_size=30, unique_by=lambda o: o.order_id)
rule_st = st.sampled_from(list(ClearingRule))
rationing_st = st.sampled_from(list(Rationing))
PROFILE = settings(max_examples=150, deadline=None)


def by_id(book: list[BookOrder]) -> dict[str, BookOrder]:
    return {o.order_id: o for o in book}


@PROFILE
@given(book_st, rule_st, rationing_st)
def test_volume_is_conserved(book, rule, rationing):
    r = clear(book, rule, rationing)
    orders = by_id(book)
    bought = sum(f for oid, f in r.fills.items() if orders[oid].side is Side.BID)
    sold = sum(f for oid, f in r.fills.items() if orders[oid].side is Side.OFFER)
    assert bought == sold == r.cleared_wh == sum(m.quantity_wh for m in r.matches)
    per_order: dict[str, int] = defaultdict(int)
    for m in r.matches:
        assert m.quantity_wh > 0
        per_order[m.buy_order_id] += m.quantity_wh
        per_order[m.sell_order_id] += m.quantity_wh
    assert {k: v for k, v in r.fills.items() if v} == dict(per_order)
    assert all(0 <= r.fills[o.order_id] <= o.quantity_wh for o in book)


@PROFILE
@given(book_st, rule_st, rationing_st)
def test_nobody_trades_outside_its_limit(book, rule, rationing):
    r = clear(book, rule, rationing)
    orders = by_id(book)
    for m in r.matches:
        assert orders[m.buy_order_id].side is Side.BID and orders[m.sell_order_id].side is Side.OFFER
        assert orders[m.sell_order_id].price <= m.price <= orders[m.buy_order_id].price
        assert (m.buyer_id, m.seller_id) == (
            orders[m.buy_order_id].participant_id,
            orders[m.sell_order_id].participant_id,
        )


@PROFILE
@given(book_st)
def test_uniform_price_lies_within_accepted_and_rejected_bounds(book):
    r = clear(book)
    if r.cleared_wh == 0:
        assert r.price is None
        return
    lo, hi = r.price_bounds
    assert lo <= r.price <= hi
    for o in book:
        filled = r.fills[o.order_id]
        if o.side is Side.BID:
            if filled:  # accepted bids were willing to pay the price
                assert o.price >= r.price and o.price >= hi
            if filled < o.quantity_wh:  # (partly) rejected bids were not willing to pay more
                assert o.price <= r.price and o.price <= lo
        else:
            if filled:
                assert o.price <= r.price and o.price <= lo
            if filled < o.quantity_wh:
                assert o.price >= r.price and o.price >= hi


@PROFILE
@given(book_st, rule_st, rationing_st, st.randoms(use_true_random=False))
def test_result_is_independent_of_input_order(book, rule, rationing, rnd: random.Random):
    shuffled = list(book)
    rnd.shuffle(shuffled)
    a, b = clear(book, rule, rationing), clear(shuffled, rule, rationing)
    assert a.summary() == b.summary()
    assert a.fills == b.fills
    assert a.matches == b.matches


@PROFILE
@given(book_st, rationing_st)
def test_agrees_with_the_naive_reference(book, rationing):
    r = clear(book, rationing=rationing)
    price, bounds, volume, fills, matches = reference_clear(book, rationing is Rationing.PRO_RATA)
    assert (r.price, r.price_bounds, r.cleared_wh) == (price, bounds, volume)
    assert r.fills == fills
    assert [(m.buy_order_id, m.sell_order_id, m.quantity_wh) for m in r.matches] == matches


@PROFILE
@given(book_st)
def test_pay_as_bid_has_the_same_volume_and_fills_as_uniform(book):
    u, p = clear(book), clear(book, ClearingRule.PAY_AS_BID)
    assert isinstance(p, Clearing) and p.price is None
    assert (u.cleared_wh, u.fills, u.price_bounds) == (p.cleared_wh, p.fills, p.price_bounds)


@PROFILE
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20), st.data())
def test_pro_rata_sums_exactly_and_respects_weights(weights, data):
    total = data.draw(st.integers(0, sum(weights)))
    shares = pro_rata(total, weights)
    assert sum(shares) == total
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))
    # each share is within one unit of the exact proportional share
    denom = sum(weights) or 1
    assert all(abs(s * denom - total * w) < denom for s, w in zip(shares, weights, strict=True))
    assert pro_rata_array(total, np.array(weights, dtype=np.int64)).tolist() == shares
