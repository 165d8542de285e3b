"""Clearing one delivery slot: a double auction over a closed order book (HL-UC02 LL-UC03).

The rulebook (deterministic for a given book, whatever the input order; integer arithmetic only):

1. **Curves.** Bids are sorted by price descending (demand curve), offers by price ascending (supply curve); within
   one price, earlier ``client_ts`` first, then ``order_id`` (time priority). Orders of one side at one price form a
   *price level*.
2. **Volume.** The cleared volume is the largest volume at which demand and supply cross: walk the two curves level
   by level, matching while the bid level's price >= the offer level's price. Every level passed completely is
   filled completely; at most one *marginal* level per side is filled partly.
3. **Rationing of a marginal level.** The marginal level's fill is shared pro-rata to the orders' quantities in
   whole Wh (floor), the Wh left over going one each to the largest fractional remainders, ties by time priority
   (:func:`streams.market.rationing.pro_rata`). ``Rationing.TIME_PRIORITY`` fills the level in time order instead.
4. **Uniform price.** With ``lo`` = max(highest accepted offer price, highest rejected-or-partly-rejected bid price)
   and ``hi`` = min(lowest accepted bid price, lowest rejected-or-partly-rejected offer price), every price in
   ``[lo, hi]`` clears the same volume. The price is ``(lo + hi) // 2`` (the midpoint, rounded down to a whole
   micro-unit). If a marginal order is only partly filled its limit is both an accepted and a rejected price, so
   ``lo == hi`` and the price is that order's limit. No crossing (or an empty side) = no price, no trades.
5. **Trades.** Accepted bids (curve order) are paired with accepted offers (curve order) by two pointers, so every
   (bid, offer) pair appears at most once. Under ``UNIFORM`` every trade is at the uniform price. Under
   ``PAY_AS_BID`` (discriminatory) volumes and fills are identical but each pair trades at the midpoint of its two
   limits, rounded down: nobody trades outside its limit, buyer and seller amounts still net to zero, and there is
   no single clearing price.

Complexity: O(n log n) (sorts and binary searches), vectorised with numpy over a columnar book
(:class:`OrderColumns`); ``matches``/``fills`` are materialised as Python objects only when read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np

from streams.market.orders import BookOrder, Side
from streams.market.rationing import pro_rata_array


class ClearingRule(StrEnum):
    UNIFORM = "UNIFORM"
    PAY_AS_BID = "PAY_AS_BID"


class Rationing(StrEnum):
    PRO_RATA = "PRO_RATA"
    TIME_PRIORITY = "TIME_PRIORITY"


@dataclass(frozen=True, slots=True)
class Match:
    """Energy (Wh) traded between one bid and one offer at ``price`` (micro-units per kWh)."""

    buy_order_id: str
    sell_order_id: str
    buyer_id: str
    seller_id: str
    quantity_wh: int
    price: int


@dataclass(frozen=True, eq=False)
class OrderColumns:
    """A book in columns: ids as lists, numbers as int64 arrays (Wh, micro-units per kWh, UTC epoch ms)."""

    order_ids: list[str]
    participant_ids: list[str]
    is_bid: np.ndarray
    quantity_wh: np.ndarray
    price: np.ndarray
    client_ts: np.ndarray

    @classmethod
    def from_orders(cls, orders: Iterable[BookOrder]) -> OrderColumns:
        orders = list(orders)
        return cls(
            order_ids=[o.order_id for o in orders],
            participant_ids=[o.participant_id for o in orders],
            is_bid=np.fromiter((o.side is Side.BID for o in orders), dtype=bool, count=len(orders)),
            quantity_wh=np.fromiter((o.quantity_wh for o in orders), dtype=np.int64, count=len(orders)),
            price=np.fromiter((o.price for o in orders), dtype=np.int64, count=len(orders)),
            client_ts=np.fromiter((o.client_ts for o in orders), dtype=np.int64, count=len(orders)),
        )

    def __len__(self) -> int:
        return len(self.order_ids)


@dataclass(frozen=True, eq=False)
class Clearing:
    """Outcome of clearing one book. ``price`` is None when nothing cleared or under pay-as-bid.

    ``price_bounds`` is the ``(lo, hi)`` interval of uniform prices that clear the same volume (None if nothing
    cleared). The matches are held as index arrays into ``book`` (``match_bid``, ``match_offer``) with their Wh and
    price; :attr:`matches` and :attr:`fills` build Python objects from them on first access.
    """

    rule: ClearingRule
    rationing: Rationing
    price: int | None
    price_bounds: tuple[int, int] | None
    cleared_wh: int
    bid_wh: int
    offer_wh: int
    n_bids: int
    n_offers: int
    book: OrderColumns
    fill_wh: np.ndarray  # per book row
    match_bid: np.ndarray
    match_offer: np.ndarray
    match_wh: np.ndarray
    match_price: np.ndarray
    demand_levels: tuple[np.ndarray, np.ndarray]  # (price, cumulative Wh), price descending
    supply_levels: tuple[np.ndarray, np.ndarray]  # (price, cumulative Wh), price ascending

    @property
    def n_trades(self) -> int:
        return len(self.match_wh)

    @cached_property
    def fills(self) -> dict[str, int]:
        """Order id -> filled Wh (0 when unmatched), for every order of the book."""
        return dict(zip(self.book.order_ids, self.fill_wh.tolist(), strict=True))

    @cached_property
    def matches(self) -> list[Match]:
        ids, parts = self.book.order_ids, self.book.participant_ids
        return [
            Match(ids[b], ids[o], parts[b], parts[o], q, p)
            for b, o, q, p in zip(
                self.match_bid.tolist(),
                self.match_offer.tolist(),
                self.match_wh.tolist(),
                self.match_price.tolist(),
                strict=True,
            )
        ]

    @staticmethod
    def _curve(levels: tuple[np.ndarray, np.ndarray]) -> list[list[int]]:
        return [[p, q] for p, q in zip(levels[0].tolist(), levels[1].tolist(), strict=True)]

    def summary(self, curves: bool = True) -> dict:
        """JSON-ready summary without the per-order fills and matches (curves as ``[price, cum Wh]`` steps)."""
        out = {
            "rule": self.rule.value,
            "rationing": self.rationing.value,
            "price_micro_per_kwh": self.price,
            "price_bounds": list(self.price_bounds) if self.price_bounds else None,
            "cleared_wh": self.cleared_wh,
            "bid_wh": self.bid_wh,
            "offer_wh": self.offer_wh,
            "n_bids": self.n_bids,
            "n_offers": self.n_offers,
            "n_trades": self.n_trades,
        }
        if curves:
            out["demand_curve"] = self._curve(self.demand_levels)
            out["supply_curve"] = self._curve(self.supply_levels)
        return out


@dataclass(frozen=True, eq=False)
class Curve:
    """One curve: book rows in curve order with their prices, quantities and cumulative quantities."""

    rows: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    cum: np.ndarray  # cumulative Wh, inclusive

    @property
    def total(self) -> int:
        return int(self.cum[-1]) if len(self.cum) else 0

    def levels(self) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.price):
            return self.price, self.cum
        ends = np.append(np.flatnonzero(self.price[1:] != self.price[:-1]), len(self.price) - 1)
        return self.price[ends], self.cum[ends]


def id_rank(order_ids: list[str]) -> np.ndarray:
    """Rank of each id in sorted order (the last tie-breaker); raises on duplicates."""
    ids = np.array(order_ids, dtype=str)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if len(dup):
        raise ValueError(f"duplicate order id {sorted_ids[dup[0]]}")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids), dtype=np.int64)
    return rank


def curve(book: OrderColumns, mask: np.ndarray, rank: np.ndarray, descending: bool) -> Curve:
    """The rows of ``mask`` in curve order: price (descending for bids), then ``client_ts``, then ``rank``."""
    rows = np.flatnonzero(mask)
    price = book.price[rows]
    rows = rows[np.lexsort((rank[rows], book.client_ts[rows], -price if descending else price))]
    qty = book.quantity_wh[rows]
    return Curve(rows, book.price[rows], qty, np.cumsum(qty))


def _volume(bids: Curve, offers: Curve) -> int:
    """max over candidate prices p of min(demand at >= p, supply at <= p)."""
    if not len(bids.rows) or not len(offers.rows):
        return 0
    candidates = np.union1d(bids.price, offers.price)
    demand = np.concatenate(([0], bids.cum))[np.searchsorted(-bids.price, -candidates, side="right")]
    supply = np.concatenate(([0], offers.cum))[np.searchsorted(offers.price, candidates, side="right")]
    return int(np.minimum(demand, supply).max())


def fill_curve(
    side: Curve, volume: int, rationing: Rationing, descending: bool
) -> tuple[np.ndarray, int, int | None]:
    """Per-row fills in curve order, the marginal level's price and the first (partly) rejected price."""
    fill = np.clip(volume - (side.cum - side.qty), 0, side.qty)
    k = int(np.searchsorted(side.cum, volume, side="left"))  # the order that reaches the volume
    marginal = int(side.price[k])
    key = -side.price if descending else side.price
    start = int(np.searchsorted(key, key[k], side="left"))
    end = int(np.searchsorted(key, key[k], side="right"))
    before = int(side.cum[start - 1]) if start else 0
    level_fill, level_total = volume - before, int(side.cum[end - 1]) - before
    if level_fill < level_total:
        if rationing is Rationing.PRO_RATA:
            fill[start:end] = pro_rata_array(level_fill, side.qty[start:end])
        return fill, marginal, marginal
    return fill, marginal, (int(side.price[end]) if end < len(side.price) else None)


def pair_curves(
    bids: Curve, b_fill: np.ndarray, offers: Curve, o_fill: np.ndarray, rule: ClearingRule, price: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two-pointer pairing, vectorised: cut [0, volume] at every cumulative fill of either curve."""
    cb, co = np.cumsum(b_fill), np.cumsum(o_fill)
    cuts = np.union1d(cb, co)
    cuts = cuts[cuts > 0]
    bi = np.searchsorted(cb, cuts, side="left")
    oi = np.searchsorted(co, cuts, side="left")
    qty = np.diff(cuts, prepend=0)
    if rule is ClearingRule.UNIFORM:
        prices = np.full(len(cuts), price, dtype=np.int64)
    else:
        prices = (bids.price[bi] + offers.price[oi]) // 2
    return bids.rows[bi], offers.rows[oi], qty, prices


def clear(
    book: Iterable[BookOrder] | OrderColumns,
    rule: ClearingRule = ClearingRule.UNIFORM,
    rationing: Rationing = Rationing.PRO_RATA,
) -> Clearing:
    """Clear one slot's closed book by the rules in the module docstring.

    Raises ValueError on a non-positive quantity or a duplicate order id (validation happens before the book).
    """
    cols = book if isinstance(book, OrderColumns) else OrderColumns.from_orders(book)
    bad = np.flatnonzero(cols.quantity_wh <= 0)
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"order {cols.order_ids[i]}: quantity_wh must be > 0, got {cols.quantity_wh[i]}")
    rank = id_rank(cols.order_ids)
    bids = curve(cols, cols.is_bid, rank, descending=True)
    offers = curve(cols, ~cols.is_bid, rank, descending=False)
    volume = _volume(bids, offers)

    fill = np.zeros(len(cols), dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    pairs = (empty, empty, empty, empty)
    price: int | None = None
    bounds: tuple[int, int] | None = None
    if volume:
        b_fill, bid_acc, bid_rej = fill_curve(bids, volume, rationing, descending=True)
        o_fill, off_acc, off_rej = fill_curve(offers, volume, rationing, descending=False)
        fill[bids.rows] = b_fill
        fill[offers.rows] = o_fill
        lo = off_acc if bid_rej is None else max(off_acc, bid_rej)
        hi = bid_acc if off_rej is None else min(bid_acc, off_rej)
        assert lo <= hi, (lo, hi)
        bounds = (lo, hi)
        uniform = (lo + hi) // 2
        price = uniform if rule is ClearingRule.UNIFORM else None
        pairs = pair_curves(bids, b_fill, offers, o_fill, rule, uniform)
    return Clearing(
        rule=rule,
        rationing=rationing,
        price=price,
        price_bounds=bounds,
        cleared_wh=volume,
        bid_wh=bids.total,
        offer_wh=offers.total,
        n_bids=len(bids.rows),
        n_offers=len(offers.rows),
        book=cols,
        fill_wh=fill,
        match_bid=pairs[0],
        match_offer=pairs[1],
        match_wh=pairs[2],
        match_price=pairs[3],
        demand_levels=bids.levels(),
        supply_levels=offers.levels(),
    )
