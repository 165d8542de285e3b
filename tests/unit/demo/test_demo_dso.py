"""The demo DSO's script (edream.demo.dso), pure: its UFTP requests, and its settlements checked by the gateway's own
settlement check (connectors.uftp.settlement) against the records they come from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from eth_account import Account

from connectors.uftp.isp import IspFrame, iso_ms
from connectors.uftp.settlement import settled_slots, settlement_statuses
from edream.demo.community import AREA
from edream.demo.dso import (
    CONGESTION_POINT,
    DemoDsoConfig,
    gateway_env,
    isps_end_ms,
    ordered_watts,
    registry_entry,
    request_at,
    settlement_of,
)
from edream.demo.dso_memory import DsoMemory
from edream.demo.keys import demo_uftp_keys
from tools.sim.uftp_dso import TIME_ZONE, flex_order
from tools.sim.uftp_dso import FlexOffer as UftpOffer

CFG = DemoDsoConfig()


def utc_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_a_request_asks_for_the_next_isps_after_the_lead_and_expires_before_the_first():
    at = utc_ms(2026, 12, 6, 9, 0, 17)  # 10:00:17 in Amsterdam
    msg = request_at(at, 30.4, CFG)
    frame = IspFrame(msg.period.to_date(), TIME_ZONE, 1)
    starts = [frame.start_ms(i.start) for i in msg.isps]
    assert starts == [utc_ms(2026, 12, 6, 9, 2) + k * 60_000 for k in range(3)]  # first >= 90 s after sending
    assert {(i.max_power, i.min_power, i.duration) for i in msg.isps} == {(-30_400, -30_400, 1)}
    assert str(msg.isp_duration) == "PT1M" and msg.congestion_point == CONGESTION_POINT
    assert iso_ms(msg.expiration_date_time) == starts[0] - 5_000
    assert request_at(at + 10_000, 30.4, CFG).message_id == msg.message_id  # same first ISP: same message
    assert request_at(at + 60_000, 30.4, CFG).message_id != msg.message_id


def test_a_request_never_spans_local_midnight():
    at = utc_ms(2026, 12, 6, 22, 56, 0)  # 23:56 in Amsterdam: 23:58 + 3 minutes would cross midnight
    msg = request_at(at, 10.0, CFG)
    assert str(msg.period) == "2026-12-07" and [i.start for i in msg.isps] == [1, 2, 3]


def _offer(msg) -> UftpOffer:
    from shapeshifter_uftp import FlexOfferOption, FlexOfferOptionISP

    return UftpOffer(
        message_id="offer-msg",
        isp_duration=msg.isp_duration,
        time_zone=msg.time_zone,
        period=msg.period,
        congestion_point=msg.congestion_point,
        expiration_date_time=msg.expiration_date_time,
        flex_request_message_id=msg.message_id,
        currency="EUR",
        offer_options=[
            FlexOfferOption(
                isps=[FlexOfferOptionISP(power=-10_000, start=i.start, duration=1) for i in msg.isps],
                option_reference="offer-1",
                price=Decimal("3.20"),
                min_activation_factor=Decimal("0.01"),
            )
        ],
    )


def _records(order, delivered_share: float, prosumers: int = 3) -> list[dict]:
    """The platform's settlement records of ``order``: its ordered power split over ``prosumers``, whole Wh."""
    frame = IspFrame(order.period.to_date(), order.time_zone, 1)
    out = []
    for number, watts in ordered_watts(order).items():
        start = frame.start_ms(number)
        for p in range(prosumers):
            target = round(abs(watts) / prosumers / 60)  # Wh over one minute
            delivered = round(target * delivered_share)
            out.append(
                {
                    "window_id": f"w-{start}",
                    "window_start": start,
                    "window_end": start + 60_000,
                    "details": json.dumps({"target_wh": target, "delivered_wh": delivered}),
                    "settlement_id": f"s-{p}-{start}",
                }
            )
    return out


def test_the_settlement_states_what_was_ordered_and_delivered_and_the_gateway_accepts_it():
    msg = request_at(utc_ms(2026, 12, 6, 9, 0, 17), 30.4, CFG)
    order = flex_order(_offer(msg), factor=str(CFG.order_factor))
    assert set(ordered_watts(order).values()) == {-8_000}  # 80 % of the offered 10 kW reduction
    records = _records(order, delivered_share=0.9)
    settlement = settlement_of(order, records)
    [orders] = settlement.flex_order_settlements
    assert orders.order_reference == order.message_id
    assert [(i.ordered_flex_power, i.delivered_flex_power) for i in orders.isps] == [(-8_000, -7_200)] * 3
    ours = settled_slots(records)
    [status] = settlement_statuses(settlement, TIME_ZONE, lambda ref: ours)
    assert status.disposition == "Accepted" and status.dispute_reason is None
    # the aggregator's records ordered less than the DSO did: the gateway disputes, naming the ISPs
    short = settled_slots(_records(flex_order(_offer(msg), factor="0.50"), delivered_share=0.9))
    [disputed] = settlement_statuses(settlement, TIME_ZONE, lambda ref: short)
    assert (
        disputed.disposition == "Disputed"
        and "ISP 603: ordered 8000 W, ours 5040 W" in disputed.dispute_reason
    )


def test_no_settlement_while_an_ordered_isp_has_no_record():
    msg = request_at(utc_ms(2026, 12, 6, 9, 0, 17), 30.4, CFG)
    order = flex_order(_offer(msg), factor="0.80")
    records = _records(order, 1.0)
    last = max(r["window_start"] for r in records)
    assert settlement_of(order, [r for r in records if r["window_start"] != last]) is None
    assert settlement_of(order, []) is None


def test_registry_entry_names_the_gateway_that_signs_and_the_dso_key_that_seals():
    dso = registry_entry(1, 1_000, CFG)
    env = gateway_env(1, 8092)
    assert dso.eth_address == Account.from_key(env["UFTP_ATTEST_KEY"]).address
    assert dso.uftp_public_key == demo_uftp_keys(1, dso.dso_id).public
    assert dso.congestion_points == {CONGESTION_POINT: AREA}
    assert dso.uftp_endpoint == f"http://127.0.0.1:{CFG.port}/shapeshifter/api/v3/message"
    assert (
        env["UFTP_SIGNING_KEY"] != demo_uftp_keys(1, dso.dso_id).secret
    )  # the two sides have their own keys


def test_a_request_after_a_restart_starts_after_the_isps_already_asked_for():
    at = utc_ms(2026, 12, 6, 9, 0, 17)
    before = request_at(at, 30.4, CFG)
    again = request_at(at + 30_000, 30.4, CFG, not_before_ms=isps_end_ms(before))
    frame = IspFrame(again.period.to_date(), TIME_ZONE, 1)
    assert frame.start_ms(again.isps[0].start) == isps_end_ms(before) == utc_ms(2026, 12, 6, 9, 5)


def test_memory_survives_a_restart_and_a_broken_file_starts_afresh(tmp_path):
    path = tmp_path / "demo-dso.json"
    mem = DsoMemory.load(path)
    assert (mem.orders, mem.busy_until) == ({}, 0)
    mem.orders["o-1"], mem.busy_until = "<FlexOrder/>", 123
    mem.save()
    again = DsoMemory.load(path)
    assert (again.orders, again.busy_until) == ({"o-1": "<FlexOrder/>"}, 123)
    path.write_text("{not json")
    assert DsoMemory.load(path).orders == {}


class _Feed:
    """Stands in for the congestion feed (connectors/uftp/congestion_feed.py, tested on the broker)."""

    def __init__(self, batches):
        self.batches, self.commits = list(batches), 0

    def poll(self, now_ms):
        return self.batches.pop(0) if self.batches else []

    def commit(self):
        self.commits += 1


def _demo_dso(at: int, feed=None, cfg=CFG, memory=None):
    """A DemoDso at ``at`` (UTC epoch ms) with no gateway or platform behind it (nothing is sent)."""
    from connectors.uftp.ledger import RestLedger
    from edream.demo.dso_process import DemoDso

    return DemoDso(
        cfg,
        1,
        30.0,
        "http://127.0.0.1:9/x",
        RestLedger("http://127.0.0.1:9"),
        "",
        feed=feed,
        now=lambda: at,
        memory=memory,
    )


def test_with_a_congestion_feed_the_dso_asks_what_the_feed_hands_out_and_no_timed_request(tmp_path):
    from connectors.uftp.ledger import RestLedger
    from edream.demo.dso_process import DemoDso

    at = utc_ms(2026, 12, 6, 9, 0, 17)
    asked = request_at(at, 12.0, CFG)
    feed = _Feed([[], [asked]])
    dso = DemoDso(
        CFG, 1, 30.0, "http://127.0.0.1:9/x", RestLedger("http://127.0.0.1:9"), "", feed=feed, now=lambda: at
    )
    dso._next_request = 0  # the timed script would be due
    assert dso._due_requests(at + 60 * 60_000) == []
    assert dso._due_requests(at + 60 * 60_000) == [asked] and feed.commits == 2
    timed = DemoDso(
        CFG, 1, 30.0, "http://127.0.0.1:9/x", RestLedger("http://127.0.0.1:9"), "", now=lambda: at
    )
    [script] = timed._due_requests(at)
    assert script.message_id == request_at(at, 30.0, CFG).message_id and timed._due_requests(at + 1_000) == []


def test_beside_a_congestion_feed_the_demo_dso_also_sends_its_timed_requests_when_asked(tmp_path):
    from dataclasses import replace

    at = utc_ms(2026, 12, 6, 9, 0, 17)
    asked = request_at(at + 3_600_000, 12.0, CFG)
    both = _demo_dso(at, _Feed([[asked], []]), replace(CFG, timed_beside_feed=True))
    first = both._due_requests(at)
    assert [r.message_id for r in first] == [asked.message_id, request_at(at, 30.0, CFG).message_id]
    assert both._due_requests(at + 1_000) == []  # the next timed one is every_minutes later


def test_the_demo_dso_asks_for_the_grid_only_when_the_demo_grid_is_configured():
    from edream.demo.grid import DEMO_GRID_CONFIG, DEMO_TRANSFORMER, dso_congestion_points

    ean = "ean.871685900000000001"
    assert dso_congestion_points("", ean) == ""
    assert dso_congestion_points("streams/grid/config/other.yaml", ean) == ""
    assert dso_congestion_points(f"x.yaml, {DEMO_GRID_CONFIG}", ean) == f"{DEMO_TRANSFORMER}={ean}"


def test_an_order_for_forecast_congestion_does_not_hold_the_timed_requests_back(tmp_path):
    """Orders of timed requests move ``busy_until`` (no later timed request overlaps them); an order for the
    evening's congestion, hours ahead, did too, and pushed the next timed request past it (seen in the demo)."""
    from dataclasses import replace

    at = utc_ms(2026, 12, 6, 9, 0, 17)
    evening = request_at(utc_ms(2026, 12, 6, 17, 0), 12.0, CFG)
    dso = _demo_dso(
        at, _Feed([[evening], []]), replace(CFG, timed_beside_feed=True), DsoMemory(tmp_path / "dso.json")
    )
    sent = []

    class _Client:
        def send_flex_order(self, order):
            sent.append(order)

    dso.sim.client = lambda: _Client()
    congestion, timed = dso._due_requests(at)
    dso._offers_asked |= {congestion.message_id, timed.message_id}
    dso._order(_offer(congestion))
    assert len(sent) == 1 and dso.memory.busy_until == 0
    dso._order(_offer(timed))
    assert len(sent) == 2 and dso.memory.busy_until == isps_end_ms(timed)


def test_a_new_forecast_issue_asks_only_for_isps_not_asked_for_yet(tmp_path):
    """Each forecast issue of the same evening gave a request for the same ISPs; the second one's offer named
    prosumer-slots already ordered and the desk refused it (OVERLAPPING_ORDER, seen in the demo)."""

    at = utc_ms(2026, 12, 6, 9, 0, 17)
    first = request_at(at, 12.0, CFG)  # ISPs 09:02, 09:03, 09:04 UTC
    same = request_at(at, 13.0, CFG)
    same.message_id = "another-issue"
    later = request_at(at + 120_000, 12.0, CFG)  # ISPs 09:04, 09:05, 09:06 UTC
    dso = _demo_dso(at, _Feed([[first], [same], [later]]), memory=DsoMemory(tmp_path / "dso.json"))
    assert dso._due_requests(at) == [first]
    assert dso._due_requests(at) == []
    [rest] = dso._due_requests(at)
    frame = IspFrame(rest.period.to_date(), TIME_ZONE, 1)
    assert [frame.start_ms(i.start) for i in rest.isps] == [
        utc_ms(2026, 12, 6, 9, 5),
        utc_ms(2026, 12, 6, 9, 6),
    ]


def test_the_dso_settles_once_every_record_verifies_whatever_the_anchoring_windows_length():
    """A record's window_id names its settlement slot (``.../15m``), not the anchoring window (the demo anchors
    1-minute windows): the DSO checks each record's proof (``/api/verify/record``), once it verified."""
    import httpx

    asked: list[str] = []
    valid = {"s-1"}

    def platform(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/verify/record"
        asked.append(request.url.params["id"])
        status = "VALID" if request.url.params["id"] in valid else "NOT_ANCHORED"
        return httpx.Response(200, json={"status": status, "window_id": None})

    dso = _demo_dso(utc_ms(2026, 12, 6, 14, 40, 0))
    dso.verify_url = "http://platform/api/verify"
    dso._verify = httpx.Client(transport=httpx.MockTransport(platform))
    assert not dso._anchored(["s-1", "s-2"])
    valid.add("s-2")
    assert dso._anchored(["s-1", "s-2"])
    assert asked == ["s-1", "s-2", "s-2"]  # s-1 verified once, not asked again


def test_a_timed_request_no_offer_answered_before_it_expired_is_asked_again_at_once(tmp_path):
    """The gateway took the first timed request, but the desk had no outlook of the prosumers yet (a loaded
    machine): its offer was INFEASIBLE, which UFTP sends nothing for. The DSO waited the regular 10 minutes (seen in
    make test: the demo's flex lifecycle never happened within the test), then a minute more after it expired. Now
    it asks again once the request expired unoffered; an offered one keeps the regular cadence."""
    at = utc_ms(2026, 12, 6, 9, 0, 17)
    sent = []

    class _Client:
        def send_flex_request(self, request):
            sent.append(request)

        def send_flex_order(self, order):
            sent.append(order)

    unoffered = _demo_dso(at, memory=DsoMemory(tmp_path / "a.json"))
    unoffered.sim.client = lambda: _Client()
    [first] = unoffered._due_requests(at)
    assert unoffered._send_request(first, at) is None and sent == [first]
    expires = iso_ms(first.expiration_date_time)
    assert unoffered._due_requests(expires - 1) == []  # still open
    [again] = unoffered._due_requests(expires)  # expired unoffered: the next one at once
    assert again.message_id != first.message_id
    # the ISPs from the lead on: not the lapsed request again (its first ISP is about to start)
    frame = IspFrame(again.period.to_date(), TIME_ZONE, 1)
    assert frame.start_ms(again.isps[0].start) >= expires + CFG.lead_ms > frame.start_ms(first.isps[0].start)

    offered = _demo_dso(at, memory=DsoMemory(tmp_path / "b.json"))
    offered.sim.client = lambda: _Client()
    [request] = offered._due_requests(at)
    offered._send_request(request, at)
    offered._read_inbox()
    offered._order(_offer(request))
    assert offered._due_requests(expires) == []
    assert offered._due_requests(expires + CFG.ask_again_ms) == []  # the regular cadence
    assert len(offered._due_requests(at + CFG.every_minutes * 60_000)) == 1


def test_beside_the_feed_the_timed_script_keeps_the_next_half_hour_and_never_overlaps_a_feed_isp(tmp_path):
    """On an evening the feed ordered 18:30-20:00 UTC (15-min ISPs) minutes ahead, and the platform refused every
    timed request until 20:00 (one order per area and time). Beside the feed, the feed asks from 30 minutes ahead,
    and a timed request that would overlap a feed ISP starts after it."""
    from dataclasses import replace

    at = utc_ms(2026, 12, 7, 18, 23, 13)
    quarter = replace(CFG, isp_minutes=15, isps=6)
    evening = request_at(at, 11.6, quarter)  # ISPs 18:30 ... 19:45 UTC
    cfg = replace(CFG, timed_beside_feed=True)
    dso = _demo_dso(at, _Feed([[evening], []]), cfg, DsoMemory(tmp_path / "dso.json"))
    congestion, timed = dso._due_requests(at)
    frame = IspFrame(congestion.period.to_date(), TIME_ZONE, 15)
    assert [frame.start_ms(i.start) for i in congestion.isps] == [
        utc_ms(2026, 12, 7, 19, 0),
        utc_ms(2026, 12, 7, 19, 15),
        utc_ms(2026, 12, 7, 19, 30),
        utc_ms(2026, 12, 7, 19, 45),
    ]
    assert timed.message_id == request_at(at, 30.0, cfg).message_id  # 18:25-18:28: before the feed's ISPs
    # 35 minutes later (18:58:13) the next timed request would start at 19:00: it starts once 19:00-20:00 ends
    later = at + 35 * 60_000
    [after] = dso._due_requests(later)
    one = IspFrame(after.period.to_date(), TIME_ZONE, 1)
    assert one.start_ms(after.isps[0].start) == utc_ms(2026, 12, 7, 20, 0)
