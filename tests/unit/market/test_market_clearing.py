"""Hand-worked order books for the clearing rulebook (prices in micro-units per kWh, quantities in Wh)."""

from __future__ import annotations

import pytest
from market_reference import reference_clear

from streams.market.clearing import ClearingRule, Rationing, clear
from streams.market.orders import BookOrder, Side


def bid(oid: str, wh: int, price: int, ts: int = 0) -> BookOrder:
    return BookOrder(oid, f"P-{oid}", Side.BID, wh, price, ts)


def offer(oid: str, wh: int, price: int, ts: int = 0) -> BookOrder:
    return BookOrder(oid, f"P-{oid}", Side.OFFER, wh, price, ts)


def trades(result) -> list[tuple[str, str, int, int]]:
    return [(m.buy_order_id, m.sell_order_id, m.quantity_wh, m.price) for m in result.matches]


# Spec HL-UC02 LL-UC03 test vector 1: asks A1 2@0.08, A2 3@0.10, A3 5@0.15; bids B1 4@0.20, B2 3@0.12, B3 4@0.09
VECTOR_1 = [
    offer("A1", 2000, 80_000),
    offer("A2", 3000, 100_000),
    offer("A3", 5000, 150_000),
    bid("B1", 4000, 200_000),
    bid("B2", 3000, 120_000),
    bid("B3", 4000, 90_000),
]


def test_vector_1_crossing_book_with_partial_marginal_bid():
    r = clear(VECTOR_1)
    # supply 5 kWh at <= 0.10 meets demand 7 kWh at >= 0.12: B2 is the partly filled marginal order -> its limit
    assert r.price == 120_000
    assert r.price_bounds == (120_000, 120_000)
    assert r.cleared_wh == 5000
    assert trades(r) == [
        ("B1", "A1", 2000, 120_000),
        ("B1", "A2", 2000, 120_000),
        ("B2", "A2", 1000, 120_000),
    ]
    assert r.fills == {"A1": 2000, "A2": 3000, "A3": 0, "B1": 4000, "B2": 1000, "B3": 0}
    assert sum(m.quantity_wh * m.price for m in r.matches) // 1000 == 600_000  # 0.60 tokens
    assert (r.bid_wh, r.offer_wh, r.n_bids, r.n_offers, r.n_trades) == (11000, 10000, 3, 3, 3)
    assert r.summary()["demand_curve"] == [[200_000, 4000], [120_000, 7000], [90_000, 11000]]
    assert r.summary()["supply_curve"] == [[80_000, 2000], [100_000, 5000], [150_000, 10000]]


def test_vector_2_vertical_overlap_clears_at_midpoint():
    r = clear([offer("A1", 2000, 80_000), offer("A2", 3000, 100_000), bid("B1", 5000, 140_000)])
    assert r.price_bounds == (100_000, 140_000)
    assert r.price == 120_000
    assert r.cleared_wh == 5000
    assert trades(r) == [("B1", "A1", 2000, 120_000), ("B1", "A2", 3000, 120_000)]


def test_midpoint_rounds_down_to_whole_micro_unit():
    r = clear([offer("A", 1000, 100_000), bid("B", 1000, 100_003)])
    assert r.price == 100_001


def test_vector_3_non_crossing_book_has_no_price_and_no_trades():
    r = clear([bid("B", 3000, 50_000), offer("A", 3000, 80_000)])
    assert r.price is None and r.price_bounds is None
    assert r.cleared_wh == 0 and r.matches == []
    assert r.fills == {"A": 0, "B": 0}
    assert (r.bid_wh, r.offer_wh) == (3000, 3000)


def test_equal_limit_prices_trade_at_that_price():
    r = clear([bid("B", 3000, 100_000), offer("A", 3000, 100_000)])
    assert (r.price, r.cleared_wh, trades(r)) == (100_000, 3000, [("B", "A", 3000, 100_000)])


def test_partial_fill_on_the_offer_side_sets_price_to_its_limit():
    r = clear([offer("A", 5000, 100_000), bid("B1", 2000, 200_000), bid("B2", 1000, 150_000)])
    assert r.cleared_wh == 3000
    assert r.price == 100_000  # A is rationed: its limit is both accepted and rejected
    assert r.fills["A"] == 3000
    assert trades(r) == [("B1", "A", 2000, 100_000), ("B2", "A", 1000, 100_000)]


def test_marginal_level_is_rationed_pro_rata():
    book = [bid("B1", 2000, 150_000), bid("B2", 1000, 150_000), offer("A", 1500, 100_000)]
    r = clear(book)
    assert r.price == 150_000
    assert (r.fills["B1"], r.fills["B2"]) == (1000, 500)  # 1500 * 2/3, 1500 * 1/3


def test_pro_rata_remainder_goes_to_largest_remainder_then_time_priority():
    # 1000 Wh over three equal bids: 333 each, 1 Wh left; remainders tie, so the earliest (ts) gets it
    book = [bid("B3", 1000, 200_000, ts=3), bid("B1", 1000, 200_000, ts=1), bid("B2", 1000, 200_000, ts=2)]
    r = clear([*book, offer("A", 1000, 100_000)])
    assert [r.fills[i] for i in ("B1", "B2", "B3")] == [334, 333, 333]
    # 1000 Wh over 1000, 700, 300: exact shares 500, 350, 150 (no remainder)
    r = clear([bid("X", 1000, 9), bid("Y", 700, 9), bid("Z", 300, 9), offer("A", 1000, 1)])
    assert [r.fills[i] for i in "XYZ"] == [500, 350, 150]
    # 10 Wh over 3, 3, 4 (sum 10 is fine) -> use 7 Wh: 2.1, 2.1, 2.8 -> floors 2, 2, 2 + 1 to the 0.8 remainder
    r = clear([bid("X", 3, 9, ts=0), bid("Y", 3, 9, ts=1), bid("Z", 4, 9, ts=2), offer("A", 7, 1)])
    assert [r.fills[i] for i in "XYZ"] == [2, 2, 3]


def test_time_priority_rationing_fills_the_earliest_first():
    book = [bid("B3", 1000, 200_000, ts=3), bid("B1", 1000, 200_000, ts=1), bid("B2", 1000, 200_000, ts=2)]
    r = clear([*book, offer("A", 1500, 100_000)], rationing=Rationing.TIME_PRIORITY)
    assert [r.fills[i] for i in ("B1", "B2", "B3")] == [1000, 500, 0]


def test_ties_in_price_and_time_are_broken_by_order_id():
    r = clear(
        [offer("A2", 1000, 100), offer("A1", 1000, 100), bid("B", 1000, 200)],
        rationing=Rationing.TIME_PRIORITY,
    )
    assert trades(r) == [("B", "A1", 1000, 100)]


def test_time_priority_orders_the_pairing_within_a_price():
    r = clear([offer("late", 1000, 100, ts=9), offer("early", 1000, 100, ts=1), bid("B", 2000, 300)])
    assert [m.sell_order_id for m in r.matches] == ["early", "late"]


@pytest.mark.parametrize(
    "book",
    [[bid("B1", 1000, 10), bid("B2", 500, 20)], [offer("A1", 1000, 10), offer("A2", 500, 20)], []],
    ids=["only-bids", "only-offers", "empty"],
)
def test_one_sided_or_empty_books_clear_nothing(book):
    r = clear(book)
    assert (r.price, r.price_bounds, r.cleared_wh, r.matches) == (None, None, 0, [])
    assert r.bid_wh == sum(o.quantity_wh for o in book if o.side is Side.BID)
    assert r.offer_wh == sum(o.quantity_wh for o in book if o.side is Side.OFFER)
    assert all(f == 0 for f in r.fills.values())


def test_pay_as_bid_pairs_trade_at_their_own_midpoint():
    r = clear(VECTOR_1, rule=ClearingRule.PAY_AS_BID)
    assert r.price is None and r.price_bounds == (120_000, 120_000)
    assert r.cleared_wh == 5000
    assert trades(r) == [
        ("B1", "A1", 2000, 140_000),
        ("B1", "A2", 2000, 150_000),
        ("B2", "A2", 1000, 110_000),
    ]


def test_rejects_bad_books():
    with pytest.raises(ValueError, match="quantity_wh must be > 0"):
        clear([bid("B", 0, 10)])
    with pytest.raises(ValueError, match="duplicate order id X"):
        clear([bid("X", 1, 10), offer("X", 1, 5)])


def test_reference_oracle_agrees_on_vector_1():
    price, bounds, volume, fills, matches = reference_clear(VECTOR_1)
    assert (price, bounds, volume) == (120_000, (120_000, 120_000), 5000)
    assert matches == [("B1", "A1", 2000), ("B1", "A2", 2000), ("B2", "A2", 1000)]
