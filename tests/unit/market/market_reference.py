"""A deliberately naive, pure-Python re-implementation of the clearing rulebook, used as a test oracle.

It walks the curves order by order (no numpy, no binary search) so that a bug in the vectorised engine would
have to be made twice, differently, to go unnoticed.
"""

from __future__ import annotations

from streams.market.orders import BookOrder, Side
from streams.market.rationing import in_priority, pro_rata


def reference_clear(orders: list[BookOrder], pro_rata_rationing: bool = True):
    """Return (uniform price or None, bounds or None, volume, fills dict, [(bid id, offer id, Wh)])."""
    bids = sorted(
        (o for o in orders if o.side is Side.BID), key=lambda o: (-o.price, o.client_ts, o.order_id)
    )
    offers = sorted(
        (o for o in orders if o.side is Side.OFFER), key=lambda o: (o.price, o.client_ts, o.order_id)
    )
    # volume: naive max over every limit price of min(demand, supply)
    prices = {o.price for o in orders}
    volume = 0
    for p in prices:
        demand = sum(b.quantity_wh for b in bids if b.price >= p)
        supply = sum(o.quantity_wh for o in offers if o.price <= p)
        volume = max(volume, min(demand, supply))
    fills = {o.order_id: 0 for o in orders}
    if volume == 0:
        return None, None, 0, fills, []
    ration = pro_rata if pro_rata_rationing else in_priority
    edges = {}
    for side in (bids, offers):
        left = volume
        by_price: dict[int, list[BookOrder]] = {}
        for o in side:
            by_price.setdefault(o.price, []).append(o)
        accepted = rejected = None
        for price, level in by_price.items():  # dicts keep curve order
            total = sum(o.quantity_wh for o in level)
            take = min(total, left)
            for o, share in zip(level, ration(take, [o.quantity_wh for o in level]), strict=True):
                fills[o.order_id] = share
            left -= take
            if take:
                accepted = price
            if take < total:
                rejected = price
                break
        edges[side is bids] = (accepted, rejected)
    (bid_acc, bid_rej), (off_acc, off_rej) = edges[True], edges[False]
    lo = max(p for p in (off_acc, bid_rej) if p is not None)
    hi = min(p for p in (bid_acc, off_rej) if p is not None)
    matches = []
    queue = [[o.order_id, fills[o.order_id]] for o in offers if fills[o.order_id]]
    qi = 0
    for b in bids:
        need = fills[b.order_id]
        while need:
            take = min(need, queue[qi][1])
            matches.append((b.order_id, queue[qi][0], take))
            need -= take
            queue[qi][1] -= take
            if queue[qi][1] == 0:
                qi += 1
    return (lo + hi) // 2, (lo, hi), volume, fills, matches
