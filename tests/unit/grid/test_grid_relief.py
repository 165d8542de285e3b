"""The loop on pure parts: demo forecast -> congestion -> signed request -> the aggregator's flex desk (offer,
order) -> the power flow re-run with the ordered flexibility shows the transformer relieved."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edream.demo.community import Community
from edream.demo.keys import demo_address, demo_key
from edream.demo.script import flex_record
from streams.flex.desk import FlexDesk
from streams.flex.dsos import Dso, DsoRegistry
from streams.flex.enrolment import Registry
from streams.flex.model import Direction, SlotOutlook
from streams.flex.orders import FlexOrder
from streams.grid.congestion import forecast_congestion
from streams.grid.pgm_engine import PgmEngine
from streams.grid.relief import expected_relief, latest_revisions
from streams.grid.requests import congestion_requests

DSO = "dso-demo"


@pytest.fixture(scope="module")
def ordered(demo_model, demo_day):
    """Congestion of the demo day, its requests, and the orders the desk places for them."""
    slots, inj = demo_day
    now = int(slots[0]) - 3_600_000  # day-ahead: the evening before
    congestion = forecast_congestion(demo_model, PgmEngine(demo_model), inj, slots)
    requests = congestion_requests(demo_model, congestion, DSO, demo_key(1, DSO), now, issued_at=now)
    community = Community(50)
    forecast = {p.prosumer_id: inj.prosumer_kw[:, j] for j, p in enumerate(community.prosumers)}
    kwp = {p.prosumer_id: p for p in community.prosumers}

    def outlook(pid: str, slot_start: int) -> SlotOutlook:
        k = int(np.searchsorted(slots, slot_start))
        p = kwp[pid]
        hour = (slot_start % 86_400_000) / 3_600_000 + 0.125
        pv = p.pv_kw(hour) / p.pv_kwp if p.pv_kwp else 0.0
        return SlotOutlook(forecast[pid][k], sigma_kw=0.05, pv_kw_per_kwp=pv, source="FORECAST")

    desk = FlexDesk(
        Registry({p.prosumer_id: flex_record(p, 1) for p in community.prosumers}),
        outlook,
        dsos=DsoRegistry([Dso(dso_id=DSO, eth_address=demo_address(1, DSO))]),
    )
    orders, offers = [], []
    for r in requests:
        (offer_out,) = desk.submit(r, now)
        offers.append(offer_out.record)
        accepted = desk.accept(offer_out.record["offer_id"], now)
        orders += [o.record for o in accepted if o.topic == "flex.orders.v1"]
    return slots, inj, congestion, requests, offers, [FlexOrder.from_avro(o) for o in orders]


def test_the_desk_orders_what_the_grid_asked(ordered):
    _, _, _, requests, offers, orders = ordered
    assert [o["status"] for o in offers] == ["FULL"] * len(requests), offers
    assert len(orders) == len(requests) == 2
    for r, o in zip(requests, orders, strict=True):
        assert o.request_id == r.request_id and o.direction == r.direction
        for s in r.slots:
            assert o.slot_total_kw(s.slot_start) == pytest.approx(s.kw, abs=0.01)


def test_orders_bring_the_expected_loading_under_the_limit(demo_model, ordered):
    slots, inj, congestion, requests, _, orders = ordered
    relief = expected_relief(demo_model, PgmEngine(demo_model), inj, slots, congestion, orders)
    requested = {s.slot_start for r in requests for s in r.slots}
    assert {x.slot_start for x in relief} == requested
    assert all(x.loading_before > 100.0 and x.relieved for x in relief)
    assert max(x.loading_after for x in relief) < 97.0
    evening = [x for x in relief if x.ordered_kw < 0]  # REDUCE: less consumption
    assert evening and all((x.slot_start // 3_600_000) % 24 == 18 for x in evening)
    assert all(x.unmapped_kw == 0.0 for x in relief)


def test_a_cancelled_or_superseded_revision_does_not_count(ordered):
    *_, orders = ordered
    o = orders[0]
    amended = o.amended(o.allocations[:1], o.created_at + 1)
    assert latest_revisions([o, amended]) == [amended]
    assert latest_revisions([replace(o, status="CANCELLED")]) == []
    assert Direction(o.direction) in (Direction.REDUCE, Direction.INCREASE)
