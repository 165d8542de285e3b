"""Network-aware clearing of one delivery slot: the double auction under congestion-point limits (issue 16 item 5).

The model is a *zonal transport model of a radial grid*: a congestion point (a transformer or a feeder line) carries
the net position of the zone it supplies, i.e. what the market's accepted offers of the zone's participants inject
minus what its accepted bids take out (Wh per slot; positive = export out of the zone). A participant sits in the
zones of every congestion point upstream of its connection (nested zones: a feeder under its transformer); one
outside every zone is unconstrained. Each congestion point has an import and an export capacity for the market's
flow in the slot (Wh, >= 0; the headroom the DSO leaves the P2P market). Zones must be nested or disjoint, as a
radial grid's are (:class:`Network` refuses others).

Rules (deterministic for a given book, whatever the input order):

1. **Reference.** The book is first cleared without the grid (:func:`streams.market.clearing.clear`). If that result
   keeps every congestion point within its limits it *is* the result (status ``UNCONSTRAINED``): same fills, trades,
   price and welfare, bit for bit.
2. **Welfare LP.** Otherwise one linear programme is solved with HiGHS: a variable per order, ``0 <= x <= quantity``
   (Wh); maximise ``sum(bid price * x) - sum(offer price * x)`` (the welfare); accepted bids = accepted offers; per
   congestion point ``-import <= zone net position <= export``. The constraint matrix of a laminar zone family is
   totally unimodular, so the simplex vertex is integral (whole Wh) and so are its duals (whole micro-units per kWh);
   anything else is refused as a solver failure.
3. **Canonical fills.** Per *group* (the participants with the same set of congestion points, hence the same
   constraints and the same price) only the LP's accepted Wh per side are kept; they are re-filled in curve order
   (price, then ``client_ts``, then ``order_id``), the marginal price level rationed by the market's rule, exactly as
   :mod:`streams.market.clearing` does for the whole book. The welfare and every zone's net position are unchanged,
   so the result stays optimal and feasible. Ties *between* groups at one price are broken by the simplex vertex
   (the model is built in curve order, so this too is independent of the input order).
4. **Zonal prices.** A group's price is the dual of one more Wh consumed in it: the system price (the balance row's
   dual, the price of a participant outside every zone) plus the shadow prices of its congestion points. A binding
   export limit lowers the zone's price, a binding import limit raises it. Every accepted bid's limit is >= its
   zone's price and every accepted offer's <= its zone's price (dual feasibility). Where no partly filled order
   pins a price down, the dual is not unique (like the uniform price's interval in :mod:`streams.market.clearing`)
   and the simplex vertex's value, one end of that interval, is taken.
5. **Trades.** Accepted bids and offers are paired by two pointers, both sides ordered by zone price (ascending),
   then group, then curve order: every seller meets a buyer whose zone price is at least its own (on a radial grid
   the market's flow runs from cheaper zones to dearer ones), and same-group orders meet first. The zones' net
   positions depend only on the fills, so every pairing respects the limits. Under ``UNIFORM`` a trade is priced at
   the midpoint of the buyer's and the seller's zonal prices, rounded down (their zone's price when they share one;
   across a binding limit the congestion rent is shared equally and the platform collects none), which lies within
   both orders' limits; under ``PAY_AS_BID`` at the midpoint of the two limits as today. Settlement is unchanged:
   a trade's buyer pays and its seller receives the trade's price. ``Clearing.price`` is the system price.
6. **Failure.** A solver that does not reach an integral optimum (or a pairing outside a limit) gives status
   ``FAILED``, no trades and the reason: nothing trades that could break a limit; never an exception for a valid
   :class:`Network`.

Welfare is in currency micro-units: ``sum(price * Wh) / 1000``, rounded half-to-even.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import Literal

import highspy
import numpy as np

from streams.highs import new_highs
from streams.market.clearing import (
    Clearing,
    ClearingRule,
    Curve,
    OrderColumns,
    Rationing,
    clear,
    curve,
    fill_curve,
    id_rank,
    pair_curves,
)
from streams.market.orders import BookOrder

#: the group of participants outside every congestion point's zone
UNZONED = "-"


class NetworkStatus(StrEnum):
    UNCONSTRAINED = "UNCONSTRAINED"  # the reference result keeps every limit: it is the result
    CONSTRAINED = "CONSTRAINED"  # the welfare LP's result
    FAILED = "FAILED"  # the solver failed: nothing trades


class NetworkClearingError(ValueError):
    """An invalid network (capacities, zones); the message names the congestion point or participant."""


@dataclass(frozen=True, slots=True)
class CongestionLimit:
    """A congestion point's capacity for the market's net flow in one slot, Wh (>= 0). ``import_wh``: at most
    this much more consumed than produced in its zone; ``export_wh``: at most this much more produced."""

    point_id: str
    import_wh: int
    export_wh: int


@dataclass(frozen=True)
class Network:
    """The congestion points of one slot and the zones: participant id -> ids of the congestion points whose
    zone it is in (all upstream of its connection). Participants not listed are unconstrained."""

    limits: tuple[CongestionLimit, ...]
    zones: Mapping[str, frozenset[str]]

    def __post_init__(self) -> None:
        ids = [c.point_id for c in self.limits]
        for c in self.limits:
            if not c.point_id or "+" in c.point_id or c.point_id == UNZONED:
                raise NetworkClearingError(
                    f"congestion point {c.point_id!r}: an id must be non-empty, not '-', without '+'"
                )
            if ids.count(c.point_id) > 1:
                raise NetworkClearingError(f"congestion point {c.point_id!r}: defined twice")
            if c.import_wh < 0 or c.export_wh < 0:
                raise NetworkClearingError(f"congestion point {c.point_id!r}: capacities must be >= 0 Wh")
        known = set(ids)
        for pid, points in sorted(self.zones.items()):
            if unknown := sorted(set(points) - known):
                raise NetworkClearingError(f"participant {pid!r}: unknown congestion point {unknown[0]!r}")
        members = {c: {p for p, pts in self.zones.items() if c in pts} for c in ids}
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                sa, sb = members[a], members[b]
                if sa & sb and not (sa <= sb or sb <= sa):
                    raise NetworkClearingError(
                        f"congestion points {a!r} and {b!r}: zones overlap without nesting (not a radial grid)"
                    )

    def group_of(self, participant_id: str) -> str:
        """The participant's group key: its congestion points sorted and joined by ``+``, or :data:`UNZONED`."""
        points = self.zones.get(participant_id)
        return "+".join(sorted(points)) if points else UNZONED


@dataclass(frozen=True, slots=True)
class LimitUse:
    """A congestion point's net flow (Wh, + = export out of its zone) in a result and its shadow price: what the
    limit adds to its zone's price, micro-units per kWh (negative at a binding export limit, positive at a binding
    import limit, 0 when it does not bind). ``binding``: ``IMPORT``/``EXPORT`` when the flow is at that limit and
    the limit has a price, else None."""

    point_id: str
    flow_wh: int
    import_wh: int
    export_wh: int
    shadow_price: int = 0
    binding: Literal["IMPORT", "EXPORT"] | None = None


@dataclass(frozen=True, eq=False)
class NetworkClearing:
    """The network-aware result next to its unconstrained reference. ``clearing`` has the same shape as
    :func:`~streams.market.clearing.clear`'s (trades, fills), ``zone_prices`` maps group key -> micro-units per kWh
    (groups with orders, and :data:`UNZONED`), welfare figures are currency micro-units."""

    status: NetworkStatus
    clearing: Clearing
    reference: Clearing
    welfare_micro: int
    reference_welfare_micro: int
    zone_prices: dict[str, int]
    limits: tuple[LimitUse, ...]
    reason: str | None = None
    lp_seconds: float = 0.0
    groups: tuple[str, ...] = field(default=(), repr=False)

    @property
    def welfare_loss_micro(self) -> int:
        """What the limits cost the community, micro-units (>= 0)."""
        return self.reference_welfare_micro - self.welfare_micro

    @property
    def binding(self) -> tuple[LimitUse, ...]:
        return tuple(u for u in self.limits if u.binding is not None)


def welfare_micro(book: OrderColumns, fill_wh: np.ndarray) -> int:
    """Accepted bids' value minus accepted offers' cost, micro-units (limit prices x filled Wh / 1000)."""
    signed = np.where(book.is_bid, book.price, -book.price)
    total = sum(int(v) for v in (signed * fill_wh).tolist())  # exact Python ints
    return round(Fraction(total, 1000))


def zone_flows(book: OrderColumns, fill_wh: np.ndarray, network: Network) -> dict[str, int]:
    """Congestion point id -> the zone's net position in Wh (accepted offers minus accepted bids of its members)."""
    signed = np.where(book.is_bid, -fill_wh, fill_wh)
    flows = {c.point_id: 0 for c in network.limits}
    for pid, wh in zip(book.participant_ids, signed.tolist(), strict=True):
        for point in network.zones.get(pid, ()):
            flows[point] += wh
    return flows


def _within(flows: Mapping[str, int], network: Network) -> bool:
    return all(-c.import_wh <= flows[c.point_id] <= c.export_wh for c in network.limits)


def clear_with_network(
    book: Iterable[BookOrder] | OrderColumns,
    network: Network,
    rule: ClearingRule = ClearingRule.UNIFORM,
    rationing: Rationing = Rationing.PRO_RATA,
) -> NetworkClearing:
    """Clear one slot's closed book under the network's limits by the rules in the module docstring.

    Raises ValueError only for what :func:`~streams.market.clearing.clear` refuses (non-positive quantity,
    duplicate order id)."""
    cols = book if isinstance(book, OrderColumns) else OrderColumns.from_orders(book)
    reference = clear(cols, rule, rationing)
    ref_welfare = welfare_micro(cols, reference.fill_wh)
    flows = zone_flows(cols, reference.fill_wh, network)
    groups = np.array([network.group_of(p) for p in cols.participant_ids], dtype=object)
    if _within(flows, network):
        price = reference.price_bounds and (sum(reference.price_bounds) // 2)
        return NetworkClearing(
            NetworkStatus.UNCONSTRAINED,
            reference,
            reference,
            ref_welfare,
            ref_welfare,
            {g: price for g in sorted(set(groups.tolist()) | {UNZONED})} if price is not None else {},
            tuple(LimitUse(c.point_id, flows[c.point_id], c.import_wh, c.export_wh) for c in network.limits),
        )
    try:
        return _constrained(cols, network, groups, reference, ref_welfare, rule, rationing)
    except _SolverFailure as exc:
        empty = np.zeros(0, dtype=np.int64)
        nothing = replace(
            reference,
            price=None,
            price_bounds=None,
            cleared_wh=0,
            fill_wh=np.zeros(len(cols), dtype=np.int64),
            match_bid=empty,
            match_offer=empty,
            match_wh=empty,
            match_price=empty,
        )
        return NetworkClearing(
            NetworkStatus.FAILED,
            nothing,
            reference,
            0,
            ref_welfare,
            {},
            tuple(LimitUse(c.point_id, 0, c.import_wh, c.export_wh) for c in network.limits),
            reason=str(exc),
        )


class _SolverFailure(RuntimeError):
    pass


@dataclass(frozen=True)
class _Lp:
    fill_wh: np.ndarray  # per book row, integral
    system_price: int
    shadow: dict[str, int]  # congestion point -> its row's dual, micro-units per kWh
    seconds: float


def _solve(cols: OrderColumns, order: np.ndarray, network: Network) -> _Lp:
    """The welfare LP over the book rows ``order`` (curve order); fills per book row and integral duals."""
    n = len(order)
    sign = np.where(cols.is_bid[order], -1.0, 1.0)  # +1: an accepted offer adds to the zone's net export
    qty = cols.quantity_wh[order].astype(float)
    cost = sign * cols.price[order].astype(float) / 1000.0  # minimise cost - value, micro-units per Wh
    participants = [cols.participant_ids[i] for i in order.tolist()]
    starts, index, value = [0], [np.arange(n)], [sign]  # row 0: accepted offers - accepted bids = 0
    lower, upper = [0.0], [0.0]
    for c in network.limits:
        members = np.array([c.point_id in network.zones.get(p, ()) for p in participants], dtype=bool)
        rows = np.flatnonzero(members)
        starts.append(starts[-1] + len(index[-1]))
        index.append(rows)
        value.append(sign[rows])
        lower.append(-float(c.import_wh))
        upper.append(float(c.export_wh))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, len(lower)
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = qty
    lp.row_lower_ = np.array(lower)
    lp.row_upper_ = np.array(upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.array([*starts, starts[-1] + len(index[-1])], dtype=np.int32)
    lp.a_matrix_.index_ = np.concatenate(index).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate(value)
    h = new_highs(time_limit_s=10.0)
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise _SolverFailure(f"HiGHS status {h.modelStatusToString(status)}")
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    xi = np.rint(x)
    if np.abs(x - xi).max(initial=0.0) > 1e-6 * max(1.0, float(qty.max(initial=1.0))):
        raise _SolverFailure("the LP optimum is not in whole Wh")
    # reduced cost = cost - A'y: at an accepted, partly filled order its limit (micro-units per Wh) equals the sum
    # of the duals of the rows it enters (the balance row and its congestion points); per kWh x 1000
    duals = np.asarray(sol.row_dual) * 1000.0
    rounded = np.rint(duals)
    if np.abs(duals - rounded).max(initial=0.0) > 1e-3:
        raise _SolverFailure("the LP's duals are not whole micro-units per kWh")
    fill = np.zeros(len(cols), dtype=np.int64)
    fill[order] = np.clip(xi.astype(np.int64), 0, cols.quantity_wh[order])
    shadow = {c.point_id: int(rounded[i + 1]) for i, c in enumerate(network.limits)}
    return _Lp(fill, int(rounded[0]), shadow, h.getRunTime())


def _by_zone_price(side: Curve, groups: np.ndarray, zone_prices: Mapping[str, int]) -> Curve:
    """The side re-ordered for pairing: by zone price ascending, then group, then curve order. Matching both sides
    in this order pairs every seller with a buyer whose zone price is at least its own whenever any pairing can,
    and on a radial grid one can: the market's flow runs from cheaper zones to dearer ones (a binding export limit
    lowers its zone's price, a binding import limit raises it), so every trade's midpoint lies within its limits."""
    g = groups[side.rows]
    prices = np.array([zone_prices[x] for x in g.tolist()], dtype=np.int64)
    names = np.unique(g.astype(str), return_inverse=True)[1] if len(g) else np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(len(side.rows)), names, prices))
    qty = side.qty[order]
    return Curve(side.rows[order], side.price[order], qty, np.cumsum(qty))


def _constrained(
    cols: OrderColumns,
    network: Network,
    groups: np.ndarray,
    reference: Clearing,
    ref_welfare: int,
    rule: ClearingRule,
    rationing: Rationing,
) -> NetworkClearing:
    rank = id_rank(cols.order_ids)
    bids = curve(cols, cols.is_bid, rank, descending=True)
    offers = curve(cols, ~cols.is_bid, rank, descending=False)
    lp = _solve(cols, np.concatenate([bids.rows, offers.rows]), network)

    fill = np.zeros(len(cols), dtype=np.int64)
    for g in sorted(set(groups.tolist())):
        in_group = groups == g
        for is_bid in (True, False):
            side = curve(cols, in_group & (cols.is_bid == is_bid), rank, descending=is_bid)
            volume = int(lp.fill_wh[side.rows].sum())
            if volume:
                fill[side.rows] = fill_curve(side, volume, rationing, descending=is_bid)[0]
    flows = zone_flows(cols, fill, network)
    cleared = int(fill[cols.is_bid].sum())
    if cleared != int(fill[~cols.is_bid].sum()) or not _within(flows, network):
        raise _SolverFailure("the LP's rounded fills break the balance or a limit")

    points_of = {network.group_of(p): points for p, points in network.zones.items()}
    zone_prices = {
        g: lp.system_price + sum(lp.shadow[p] for p in points_of.get(g, ()))
        for g in sorted(set(groups.tolist()) | {UNZONED})
    }
    buyers, sellers = _by_zone_price(bids, groups, zone_prices), _by_zone_price(offers, groups, zone_prices)
    b_idx, o_idx, m_wh, m_price = pair_curves(
        buyers, fill[buyers.rows], sellers, fill[sellers.rows], rule, lp.system_price
    )
    if rule is ClearingRule.UNIFORM and len(m_wh):
        pb = np.array([zone_prices[g] for g in groups[b_idx].tolist()], dtype=np.int64)
        ps = np.array([zone_prices[g] for g in groups[o_idx].tolist()], dtype=np.int64)
        m_price = (pb + ps) // 2
    if len(m_wh) and ((m_price < cols.price[o_idx]) | (m_price > cols.price[b_idx])).any():
        raise _SolverFailure("no pairing keeps every trade within its orders' limits")
    limits = []
    for c in network.limits:
        f, y = flows[c.point_id], lp.shadow[c.point_id]
        at = "EXPORT" if f == c.export_wh else "IMPORT" if f == -c.import_wh else None
        limits.append(LimitUse(c.point_id, f, c.import_wh, c.export_wh, y, at if y else None))
    clearing = replace(
        reference,
        price=lp.system_price if rule is ClearingRule.UNIFORM and cleared else None,
        price_bounds=(min(zone_prices.values()), max(zone_prices.values())) if cleared else None,
        cleared_wh=cleared,
        fill_wh=fill,
        match_bid=b_idx,
        match_offer=o_idx,
        match_wh=m_wh,
        match_price=m_price,
    )
    return NetworkClearing(
        NetworkStatus.CONSTRAINED,
        clearing,
        reference,
        welfare_micro(cols, fill),
        ref_welfare,
        zone_prices,
        tuple(limits),
        lp_seconds=lp.seconds,
    )
