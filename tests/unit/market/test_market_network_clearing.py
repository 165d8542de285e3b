"""Network-aware clearing (streams/market/network_clearing.py) on hand-made books whose answer is worked out by hand,
degenerate and invalid inputs, and a differential check against an independently built LP (scipy) on random books.

Prices are micro-units per kWh (k = 1000), quantities Wh, welfare micro-units = price x Wh / 1000."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.optimize import linprog

import streams.market.network_clearing as nc
from streams.market.clearing import ClearingRule, Rationing, clear
from streams.market.network_clearing import (
    UNZONED,
    CongestionLimit,
    Network,
    NetworkClearingError,
    NetworkStatus,
    clear_with_network,
    zone_flows,
)
from streams.market.orders import BookOrder, Side

k = 1000


def offer(oid: str, who: str, wh: int, price: int, ts: int = 0) -> BookOrder:
    return BookOrder(oid, who, Side.OFFER, wh, price, ts)


def bid(oid: str, who: str, wh: int, price: int, ts: int = 0) -> BookOrder:
    return BookOrder(oid, who, Side.BID, wh, price, ts)


def export_book() -> list[BookOrder]:
    """A cheap seller A behind congestion point Z, an expensive seller C and a buyer B outside."""
    return [offer("s1", "A", 1000, 50 * k), bid("b1", "B", 1000, 200 * k), offer("s2", "C", 300, 150 * k)]


def zone_z(import_wh: int, export_wh: int, members=("A",)) -> Network:
    return Network((CongestionLimit("Z", import_wh, export_wh),), {m: frozenset({"Z"}) for m in members})


def trades(r) -> list[tuple[str, str, int, int]]:
    return [(m.buy_order_id, m.sell_order_id, m.quantity_wh, m.price) for m in r.clearing.matches]


def test_binding_export_limit_lowers_volume_and_splits_prices():
    # unconstrained: A sells all 1000 Wh to B at (50k + 150k) / 2 = 100k; welfare (200k - 50k) x 1 kWh = 150,000
    # with 400 Wh export at Z: A 400 (marginal: zone price 50k), C 300, B 700 of 1000 (marginal: system price 200k)
    r = clear_with_network(export_book(), zone_z(import_wh=1000, export_wh=400))
    assert r.status is NetworkStatus.CONSTRAINED
    assert r.reference.cleared_wh == 1000 and r.reference.price == 100 * k
    assert r.clearing.cleared_wh == 700
    assert r.clearing.fills == {"s1": 400, "b1": 700, "s2": 300}
    assert r.zone_prices == {UNZONED: 200 * k, "Z": 50 * k}
    assert r.clearing.price == 200 * k  # the system price: outside every zone
    assert r.reference_welfare_micro == 150_000
    assert r.welfare_micro == 200 * 700 - 50 * 400 - 150 * 300 == 75_000
    assert r.welfare_loss_micro == 75_000
    (use,) = r.limits
    assert (use.flow_wh, use.binding, use.shadow_price) == (400, "EXPORT", -150 * k)
    # cross-zone trade at the midpoint of the zones' prices, the local one at the system price
    assert trades(r) == [("b1", "s1", 400, 125 * k), ("b1", "s2", 300, 200 * k)]


def test_binding_import_limit_raises_the_zone_price():
    book = [bid("b1", "A", 1000, 200 * k), offer("s1", "C", 1000, 50 * k)]
    r = clear_with_network(book, zone_z(import_wh=600, export_wh=0))
    assert r.clearing.cleared_wh == 600
    assert r.zone_prices == {UNZONED: 50 * k, "Z": 200 * k}
    assert [(u.binding, u.shadow_price, u.flow_wh) for u in r.limits] == [("IMPORT", 150 * k, -600)]
    assert trades(r) == [("b1", "s1", 600, 125 * k)]
    assert r.welfare_micro == 200 * 600 - 50 * 600 == 90_000


def test_nested_feeder_under_a_transformer():
    # a (feeder F under transformer T) offers at 10k, b (T only) at 60k, c (outside) bids 1500 Wh at 100k.
    # F exports at most 500, T at most 1200: a 500, b 700, c 1200; prices 10k / 60k / 100k by the marginal orders
    net = Network(
        (CongestionLimit("T", 5000, 1200), CongestionLimit("F", 5000, 500)),
        {"a": frozenset({"T", "F"}), "b": frozenset({"T"})},
    )
    book = [offer("oa", "a", 1000, 10 * k), offer("ob", "b", 1000, 60 * k), bid("bc", "c", 1500, 100 * k)]
    r = clear_with_network(book, net)
    assert r.clearing.fills == {"oa": 500, "ob": 700, "bc": 1200}
    assert r.zone_prices == {UNZONED: 100 * k, "T": 60 * k, "F+T": 10 * k}
    assert {u.point_id: (u.flow_wh, u.binding, u.shadow_price) for u in r.limits} == {
        "T": (1200, "EXPORT", -40 * k),
        "F": (500, "EXPORT", -50 * k),
    }
    assert r.welfare_micro == 100 * 1200 - 10 * 500 - 60 * 700 == 73_000
    assert r.reference_welfare_micro == 100 * 1500 - 10 * 1000 - 60 * 500 == 110_000


@pytest.mark.parametrize("rule", list(ClearingRule))
@pytest.mark.parametrize("rationing", list(Rationing))
def test_non_binding_limits_give_exactly_the_unconstrained_result(rule, rationing):
    book = export_book() + [bid("b2", "D", 500, 100 * k, ts=1), bid("b3", "E", 500, 100 * k, ts=2)]
    ref = clear(book, rule, rationing)
    r = clear_with_network(book, zone_z(import_wh=0, export_wh=1000), rule, rationing)
    assert r.status is NetworkStatus.UNCONSTRAINED and r.binding == ()
    assert r.clearing.fills == ref.fills and r.clearing.matches == ref.matches
    assert r.clearing.price == ref.price and r.welfare_micro == r.reference_welfare_micro


def test_trades_inside_one_zone_need_no_capacity():
    book = export_book()
    r = clear_with_network(book, zone_z(0, 0, members=("A", "B", "C")))
    assert r.status is NetworkStatus.UNCONSTRAINED
    assert r.clearing.fills == clear(book).fills


def test_a_zone_with_no_capacity_trades_only_inside():
    book = export_book() + [bid("b2", "A", 200, 60 * k)]
    r = clear_with_network(book, zone_z(0, 0))
    assert r.status is NetworkStatus.CONSTRAINED
    assert r.clearing.fills == {"s1": 200, "b1": 300, "s2": 300, "b2": 200}
    assert zone_flows(r.clearing.book, r.clearing.fill_wh, zone_z(0, 0)) == {"Z": 0}
    assert {m.seller_id for m in r.clearing.matches if m.buyer_id == "B"} == {"C"}


def test_result_does_not_depend_on_input_order():
    book = export_book() + [offer("s3", "A", 700, 50 * k, ts=5), bid("b2", "B", 300, 200 * k, ts=1)]
    net = zone_z(1000, 600)
    first = clear_with_network(book, net)
    for seed in range(3):
        shuffled = book[:]
        random.Random(seed).shuffle(shuffled)
        again = clear_with_network(shuffled, net)
        assert again.clearing.fills == first.clearing.fills
        assert sorted(trades(again)) == sorted(trades(first))
    # the marginal level of zone Z (s1 1000 Wh, s3 700 Wh, same price) shares its 600 Wh pro rata
    assert (first.clearing.fills["s1"], first.clearing.fills["s3"]) == (353, 247)


@pytest.mark.parametrize(
    "book",
    [
        [],
        [bid("b1", "A", 100, 5 * k)],
        [offer("s1", "A", 100, 5 * k)],
        [bid("b", "A", 1, 1), offer("s", "B", 1, 2)],
    ],
)
def test_degenerate_books_clear_to_nothing(book):
    r = clear_with_network(book, zone_z(0, 0))
    assert r.clearing.cleared_wh == 0 and r.clearing.matches == [] and r.welfare_micro == 0


def test_solver_failure_is_flagged_with_no_trades(monkeypatch):
    def fail(*_):
        raise nc._SolverFailure("HiGHS status Time limit reached")

    monkeypatch.setattr(nc, "_solve", fail)
    r = clear_with_network(export_book(), zone_z(1000, 400))
    assert r.status is NetworkStatus.FAILED and "Time limit" in r.reason
    assert r.clearing.cleared_wh == 0 and r.clearing.matches == [] and r.clearing.price is None
    assert r.reference_welfare_micro == 150_000


@pytest.mark.parametrize(
    ("limits", "zones", "message"),
    [
        ((CongestionLimit("Z", -1, 0),), {}, "'Z': capacities must be >= 0"),
        ((CongestionLimit("a+b", 0, 0),), {}, "'a\\+b': an id must be non-empty, not '-', without"),
        ((CongestionLimit("Z", 0, 0), CongestionLimit("Z", 1, 1)), {}, "'Z': defined twice"),
        (
            (CongestionLimit("Z", 0, 0),),
            {"A": frozenset({"Y"})},
            "participant 'A': unknown congestion point 'Y'",
        ),
        (
            (CongestionLimit("X", 0, 0), CongestionLimit("Y", 0, 0)),
            {"A": frozenset({"X"}), "B": frozenset({"X", "Y"}), "C": frozenset({"Y"})},
            "'X' and 'Y': zones overlap without nesting",
        ),
    ],
)
def test_invalid_networks_are_refused(limits, zones, message):
    with pytest.raises(NetworkClearingError, match=message):
        Network(limits, zones)


def _lp_optimum(book: list[BookOrder], net: Network) -> float:
    """Welfare optimum (micro-units) of the same model built independently, dense, with scipy."""
    sign = np.array([-1.0 if o.side is Side.BID else 1.0 for o in book])
    cost = sign * np.array([o.price for o in book]) / 1000
    a_eq = sign[None, :]
    rows, lo, hi = [], [], []
    for c in net.limits:
        member = np.array([c.point_id in net.zones.get(o.participant_id, ()) for o in book])
        rows.append(sign * member)
        lo.append(-c.import_wh)
        hi.append(c.export_wh)
    a_ub = np.vstack([np.array(rows), -np.array(rows)])
    b_ub = np.concatenate([hi, [-x for x in lo]])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[0], bounds=[(0, o.quantity_wh) for o in book])
    assert res.status == 0
    return -res.fun


def test_random_books_keep_limits_and_reach_the_lp_optimum():
    rng = random.Random(16)
    net = Network(
        (CongestionLimit("T", 3000, 2500), CongestionLimit("F1", 800, 600), CongestionLimit("F2", 0, 900)),
        {
            "p0": frozenset({"T", "F1"}),
            "p1": frozenset({"T", "F1"}),
            "p2": frozenset({"T", "F2"}),
            "p3": frozenset({"T"}),
        },
    )
    constrained = 0
    for n in range(40):
        book = [
            BookOrder(
                f"o{i}",
                f"p{rng.randrange(6)}",
                rng.choice([Side.BID, Side.OFFER]),
                rng.randint(1, 2000),
                rng.randint(1, 8) * 10 * k,
                rng.randrange(3),
            )
            for i in range(rng.randint(2, 25))
        ]
        r = clear_with_network(book, net, rationing=rng.choice(list(Rationing)))
        assert r.status is not NetworkStatus.FAILED, (n, r.reason)
        constrained += r.status is NetworkStatus.CONSTRAINED
        flows = zone_flows(r.clearing.book, r.clearing.fill_wh, net)
        assert all(-c.import_wh <= flows[c.point_id] <= c.export_wh for c in net.limits)
        assert abs(r.welfare_micro - _lp_optimum(book, net)) <= 1, n
        assert r.welfare_micro <= r.reference_welfare_micro
        orders = {o.order_id: o for o in book}
        for m in r.clearing.matches:  # nobody trades outside its limit
            assert orders[m.sell_order_id].price <= m.price <= orders[m.buy_order_id].price
        sold = sum(m.quantity_wh for m in r.clearing.matches)
        assert (
            sold
            == r.clearing.cleared_wh
            == sum(r.clearing.fills[o.order_id] for o in book if o.side is Side.BID)
        )
        for o in book:  # accepted bids pay at most, accepted offers get at least their zone's price
            if r.clearing.fills[o.order_id] and r.status is NetworkStatus.CONSTRAINED:
                zp = r.zone_prices[net.group_of(o.participant_id)]
                assert (o.price >= zp) if o.side is Side.BID else (o.price <= zp)
    assert constrained >= 10  # the limits really bind in a good share of the books
