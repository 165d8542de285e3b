"""The scripted day against the real pure services: the flex desk and the market processor, no broker."""

from __future__ import annotations

from collections import Counter

import pytest

from connectors.uftp.isp import ms_iso
from connectors.uftp.mapping import request_from_uftp
from edream.demo.community import AREA, Community
from edream.demo.dso import DSO_DOMAIN, GATEWAY_ID, request_at, requested_kw
from edream.demo.keys import demo_key
from edream.demo.responder import FlexResponder
from edream.demo.script import DemoConfig, DemoScript, controllable_prosumer, demo_market_config
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.flex.desk import FlexDesk
from streams.flex.dsos import dso_from_record
from streams.flex.enrolment import Registry, record_from_event
from streams.flex.model import SlotOutlook
from streams.flex.offers import build_offer
from streams.flex.orders import FlexOrder
from streams.flex.signing import sign_request
from streams.market.market_order import MarketOrder
from streams.market.participants import Participant, ParticipantRegistry
from streams.market.processor import MarketProcessor
from tools.sim.flex_scenario import flat_outlook

START = 1_795_435_237_123  # 2026-11-23T12:00:37.123Z
CFG = DemoConfig(prosumers=20, day_minutes=40)


@pytest.fixture(scope="module")
def script() -> DemoScript:
    return DemoScript(Community(CFG.prosumers, CFG.seed), CFG, demo_market_config(START, CFG), START)


@pytest.fixture(scope="module")
def events(script):
    return list(script.events())


def test_events_are_ordered_encodable_and_registrations_come_first(events):
    assert [e.at_ms for e in events] == sorted(e.at_ms for e in events)
    counts = Counter(e.schema for e in events)
    assert counts["FlexEnrolment"] == counts["MarketParticipant"] == CFG.prosumers
    assert counts["FlexDso"] == 1
    assert counts["FlexRequest"] == 0  # the DSO asks over UFTP, a process of its own (edream.demo.dso)
    registrations = ("FlexDso", "FlexEnrolment", "MarketParticipant")
    first_other = next(i for i, e in enumerate(events) if e.schema not in registrations)
    assert first_other == 2 * CFG.prosumers + 1
    serde = Serde()
    for e in events:
        assert serde.decode(serde.encode(e.schema, e.record, e.topic), e.topic)[0] == e.schema


def test_first_gate_closes_first_gate_after_ms_after_start(script):
    market = script.market
    gate = next(script.gates())
    assert gate - START == pytest.approx(CFG.first_gate_after_ms, abs=1000)
    assert market.is_slot_start(gate + market.gate_closure_lead_ms)
    assert 0 <= market.gate_closure_lead_ms < market.slot_ms


def test_same_start_same_events_deterministic_ids(events):
    again = list(
        DemoScript(Community(CFG.prosumers, CFG.seed), CFG, demo_market_config(START, CFG), START).events()
    )
    assert [e.record.get("event_id") for e in again] == [e.record.get("event_id") for e in events]


def test_market_orders_are_accepted_and_the_first_gate_clears_with_trades(script, events):
    registry, state = ParticipantRegistry(), MemoryState()
    proc = MarketProcessor(script.market, registry)
    first_gate = next(script.gates())
    outs = []
    for e in (e for e in events if e.at_ms < first_gate):
        if e.schema == "MarketParticipant":
            registry.upsert(Participant.from_avro(e.record))
        elif e.schema == "MarketOrder":
            outs += proc.on_order(MarketOrder.from_avro(e.record), e.at_ms, state, now_ms=e.at_ms)
    assert [o.schema for o in outs] == ["MarketOrder"] * len(outs) and outs, "every order accepted"
    outs = proc.on_tick(first_gate, state)
    clearing = [o.record for o in outs if o.schema == "ClearingResult"]
    trades = [o for o in outs if o.schema == "Trade"]
    assert len(clearing) == 1 and trades, "bids and offers cross at the first gate"
    assert clearing[0]["cleared_wh"] > 0 and clearing[0]["n_trades"] == len(trades)


def test_devices_following_orders_deliver_and_one_defector_triggers_shortfall_and_settlement(events):
    """Script -> real FlexDesk (flat 5 kW outlook; edream run uses the OutlookBook) -> orders -> responder readings."""
    desk = FlexDesk(Registry(), flat_outlook)
    for e in events:
        if e.schema == "FlexEnrolment":
            desk.registry.upsert(record_from_event(e.record))
        elif e.schema == "FlexDso":
            desk.dsos.upsert(dso_from_record(e.record))
    # the demo DSO's first UFTP FlexRequest, as the gateway forwards it (mapped, signed with its attesting key)
    at = START + CFG.dso.first_after_ms
    msg = request_at(at, requested_kw(Community(CFG.prosumers, CFG.seed), CFG.dso), CFG.dso)
    msg.time_stamp, msg.sender_domain = ms_iso(at), DSO_DOMAIN
    dso = dso_from_record(next(e for e in events if e.schema == "FlexDso").record)
    req = sign_request(request_from_uftp(msg, dso), demo_key(CFG.seed, GATEWAY_ID))
    (offer,) = desk.submit(req, at)
    assert offer.schema == "FlexOffer" and offer.record["status"] != "INFEASIBLE"
    (order,) = desk.accept(offer.record["offer_id"], at)
    assert order.schema == "FlexOrder"

    com = Community(CFG.prosumers, CFG.seed)
    responder = FlexResponder(com.step_ms)
    responder.on_order(FlexOrder.from_avro(order.record))
    end = max(req.slot_starts()) + req.slot_ms + 10_000
    outs = []
    for r in com.readings(at, end, responder.metered_kw):
        for o in desk.on_reading(r["prosumer_id"], r["ts"], r["value"] / 1000):
            outs.append(o)
            if o.schema == "FlexOrder":  # re-dispatch: devices follow the amended revision
                responder.on_order(FlexOrder.from_avro(o.record))
    finals = [o.record for o in outs if o.schema == "Deviation" and o.record["kind"] == "FINAL"]
    defector = responder.defectors[order.record["order_id"]][0]
    assert any(f["verdict"] == "SHORTFALL" and f["prosumer_id"] == defector for f in finals)
    # outside the slot the defector left half-way (re-dispatched with 30 s to go), every device delivers
    defect_slot = req.slot_starts()[1]
    others = [f for f in finals if f["prosumer_id"] != defector and f["slot_start"] != defect_slot]
    assert len({f["slot_start"] for f in others}) == 2
    assert all(f["verdict"] == "WITHIN" for f in others)
    assert any(o.schema == "FlexOrder" and o.record["revision"] == 2 for o in outs), "re-dispatched"
    settlements = [o.record for o in outs if o.schema == "Settlement"]
    assert len(settlements) == len(finals)
    assert any(s["amount_micro"] < 0 for s in settlements) and any(s["amount_micro"] > 0 for s in settlements)


def test_a_worker_up_late_still_orders_for_the_next_gate():
    # market.yaml chose its lead at START; the worker's demo starts 215 s later (a loaded machine): its first gate
    # is the one 25 s ahead, not the next slot's 15 minutes later (no orders for 15 min otherwise)
    late = START + CFG.first_gate_after_ms - 25_000
    market = demo_market_config(START, CFG)
    s = DemoScript(Community(CFG.prosumers, CFG.seed), CFG, market, late)
    gate = next(s.gates())
    assert 20_000 <= gate - late < 30_000
    first = next(e for e in s.events() if e.schema == "MarketOrder")
    assert late < first.at_ms < gate


def test_the_charger_owner_is_ordered_first_even_when_its_forecast_is_most_uncertain():
    """The demo DSO's request reaches the EV charger bound to the field site only if the desk allocates its owner:
    it must be the cheapest at any hour, also when its forecast band is as wide as its net power (risk u = 1, as
    around its EV's plug-in at 20:51 UTC) while every other prosumer's forecast is exact (u = 0)."""
    cfg = DemoConfig()  # the demo's 50 prosumers
    com = Community(cfg.prosumers, cfg.seed)
    day = DemoScript(com, cfg, demo_market_config(START, cfg), START)
    registry = Registry()
    for e in day.registrations():
        if e.schema == "FlexEnrolment":
            registry.upsert(record_from_event(e.record))
    owner = controllable_prosumer(com)

    def outlook(prosumer_id: str, slot_start: int) -> SlotOutlook:
        if prosumer_id == owner:
            return SlotOutlook(baseline_kw=-0.3, sigma_kw=1.0, source="FORECAST")
        return SlotOutlook(baseline_kw=5.0, sigma_kw=0.0, source="FORECAST")

    at = START + cfg.dso.first_after_ms
    msg = request_at(at, requested_kw(com, cfg.dso), cfg.dso)
    msg.time_stamp, msg.sender_domain = ms_iso(at), DSO_DOMAIN
    dso = dso_from_record(day.dso().to_avro())
    offer = build_offer(request_from_uftp(msg, dso), registry.in_area(AREA), outlook, at)
    ordered = {a.slot_start for a in offer.allocations if a.prosumer_id == owner}
    assert ordered == {s.slot_start for s in offer.slots}, offer.allocations
