"""Delivery settlement with the spec's hand-worked values (HL-UC02 LL-UC04) and its invariants."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.market.clearing import clear
from streams.market.config import MarketConfig
from streams.market.events import clearing_record, trades_of
from streams.market.metering import check_interval, metered_of, slot_interval_starts
from streams.market.orders import BookOrder, Side
from streams.market.settlement import POOL, Metered, money_micro, settle_session
from streams.settlement.canonical import canonical_bytes

SLOT = 1_795_435_200_000  # 2026-11-23T12:00Z
CFG = MarketConfig()  # imbalance price 0.05/kWh = 50_000 micro
SESSION = CFG.session_id(SLOT)
VECTOR_1 = [
    BookOrder("A1", "A1", Side.OFFER, 2000, 80_000),
    BookOrder("A2", "A2", Side.OFFER, 3000, 100_000),
    BookOrder("A3", "A3", Side.OFFER, 5000, 150_000),
    BookOrder("B1", "B1", Side.BID, 4000, 200_000),
    BookOrder("B2", "B2", Side.BID, 3000, 120_000),
    BookOrder("B3", "B3", Side.BID, 4000, 90_000),
]
METERED = {
    "A1": Metered(export_wh=1500),
    "A2": Metered(export_wh=3200),
    "B1": Metered(import_wh=4200),
    "B2": Metered(import_wh=1000),
}


def vector_1_trades():
    return trades_of(clear(VECTOR_1), SESSION, SLOT)


def test_spec_hand_values():
    rows = settle_session(CFG, vector_1_trades(), METERED)
    amounts = {r.party_id: r.amount_micro for r in rows}
    # B1 -0.42 (1.5x0.12 + 2.0x0.12), B2 -0.12, A1 +0.155 (1.5x0.12 - 0.5x0.05), A2 +0.36, POOL +0.025
    assert amounts == {"B1": -420_000, "B2": -120_000, "A1": 155_000, "A2": 360_000, POOL: 25_000}
    assert sum(amounts.values()) == 0
    a1 = json.loads(next(r for r in rows if r.party_id == "A1").details)
    assert (a1["traded_sell_wh"], a1["delivered_wh"], a1["penalty_micro"]) == (2000, 1500, 25_000)
    assert {r.party_id: r.quantity_wh for r in rows} == {
        "A1": 1500,
        "A2": 3000,
        "B1": 3500,
        "B2": 1000,
        POOL: 500,
    }


def test_ids_and_bytes_are_deterministic_and_input_order_free():
    trades = vector_1_trades()
    a = settle_session(CFG, trades, METERED)
    b = settle_session(CFG, list(reversed(trades)), METERED)
    assert [r.leaf_bytes() for r in a] == [r.leaf_bytes() for r in b]
    assert len({r.settlement_id for r in a}) == 5
    rec = a[0].to_avro()
    assert (
        rec["kind"] == "MARKET"
        and rec["window_id"] == "2026-11-23T12:00Z/15m"
        and rec["computed_at"] == SLOT + 900_000
    )
    assert a[0].leaf_bytes() == canonical_bytes(rec)


def test_full_delivery_has_no_pool_row_and_surplus_credit_is_optional():
    full = {"A1": Metered(export_wh=2000), "A2": Metered(export_wh=3000)}
    rows = settle_session(CFG, vector_1_trades(), full)
    assert POOL not in {r.party_id for r in rows}
    credit = CFG.model_copy(update={"surplus_credit_micro_per_kwh": 10_000})
    rows = settle_session(credit, vector_1_trades(), METERED)
    amounts = {r.party_id: r.amount_micro for r in rows}
    assert amounts["A2"] == 360_000 + 2_000  # 0.2 kWh surplus x 0.01
    assert amounts[POOL] == 25_000 - 2_000 and sum(amounts.values()) == 0


def test_no_trades_no_settlement_and_rounding_half_even():
    assert settle_session(CFG, [], METERED) == []
    assert money_micro(1, 500) == 0 and money_micro(3, 500) == 2 and money_micro(1, 1500) == 2


def test_clearing_record_matches_contract_fields():
    rec = clearing_record(clear(VECTOR_1), SESSION, SLOT, SLOT - 900_000)
    assert (rec["price_micro_per_kwh"], rec["cleared_wh"], rec["n_trades"], rec["rule"]) == (
        120_000,
        5000,
        3,
        "UNIFORM",
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BID", "OFFER"]),
            st.integers(1, 4000),
            st.integers(1, 30).map(lambda x: x * 10_000),
        ),
        max_size=16,
    ),
    st.lists(st.integers(0, 6000), min_size=16, max_size=16),
)
def test_amounts_always_sum_to_zero(orders, exports):
    book = [BookOrder(f"o{i}", f"p{i}", Side(s), q, p) for i, (s, q, p) in enumerate(orders)]
    trades = trades_of(clear(book), SESSION, SLOT)
    metered = {f"p{i}": Metered(export_wh=e) for i, e in enumerate(exports)}
    rows = settle_session(CFG, trades, metered)
    assert sum(r.amount_micro for r in rows) == 0
    for r in rows:  # sellers never receive more than their sold energy is worth at the trade prices
        d = json.loads(r.details)
        if r.party_id != POOL:
            assert d["delivered_wh"] <= d["traded_buy_wh"] + d["traded_sell_wh"]


def test_metered_energy_of_a_slot_sums_its_intervals_to_whole_wh():
    now = SLOT + 2 * 3_600_000
    hourly = 3_600_000
    starts = list(slot_interval_starts(SLOT, hourly))
    assert starts == [SLOT + k * 900_000 for k in range(4)] and list(slot_interval_starts(SLOT, 900_000)) == [
        SLOT
    ]
    recs = [{"device_id": "M1", "interval_start": s, "import_wh": 0.0, "export_wh": 100.4} for s in starts]
    recs += [
        {"device_id": "M2", "interval_start": s, "import_wh": 1.25, "export_wh": 50.0, "version": 2}
        for s in starts
    ]
    intervals = [check_interval(r, now, now) for r in recs]
    assert intervals[-1].version == 2 and intervals[0].version == 1
    assert metered_of(intervals) == Metered(import_wh=5, export_wh=round(401.6 + 200.0))
    assert metered_of([]) == Metered()
