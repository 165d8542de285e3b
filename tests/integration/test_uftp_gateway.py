"""USEF/UFTP between two independent implementations over HTTP: the library's DSO role (tools/sim/uftp_dso.py) and
the platform's gateway (connectors/uftp), with the flex stages on the real broker (auto-accept off).

The DSO sends a sealed FlexRequest for its congestion point; the gateway verifies it against the DSO registry, the
desk offers, and the DSO receives a FlexRequestResponse and a FlexOffer sealed with the aggregator's key (verified
by the library). The DSO orders half of it (ActivationFactor 0.50): a FlexAcceptance of the half is on Kafka, the
desk orders the prosumers for the half, the DSO gets FlexOrderResponse Accepted. The same FlexOrder sent again is
refused (REPLAYED_MESSAGE), so are a FlexOrder of an offer never made (UNKNOWN_OFFER) and one of more than
offered (ORDER_EXCEEDS_OFFER), each with a Rejection event and no order; a FlexRequest sealed with another key and
one from an unregistered domain get HTTP 401 and a Rejection event each, a sealed body that is no UFTP message HTTP
400 and a dead letter; nothing is offered for them.

The DSO side of the grid: two overloaded slots of the grid stage's congestion forecast on Kafka are read by the DSO's
congestion feed (connectors/uftp/congestion_feed.py), handed out once as the one FlexRequest sized to relieve
them, and the gateway turns it into the platform's FlexRequest for the congestion point's area with those kW.

Then the DSO settles (FlexSettlement): the gateway checks its figures against the platform's settlement records of
the order, read through the platform's REST API (served here over chDB): the true figures are Accepted, an unknown
order and an over-stated delivery are Disputed, naming the order and the ISP.

D-Prognosis: with the area's prosumers' forecasts in the platform, one prognosis round sends the DSO D-Prognoses of
its congestion point (sealed with the aggregator's key, verified by the library) holding the area's net forecast
power per ISP; the DSO's DPrognosisResponses are audited; an unchanged prognosis is not sent again; a changed one the
DSO rejects is logged with the DSO's reason and sent again next round; with the platform's API down a round sends
nothing and says so."""

from __future__ import annotations

import json
import time
from base64 import b64decode
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from confluent_kafka import Producer
from eth_account import Account
from eth_utils import keccak
from flex_stages import Follower, Stages, flex_topics, wait_until
from nacl.bindings import crypto_sign
from rest_over_chdb import RestOverChdb
from shapeshifter_uftp import (
    DPrognosis,
    FlexOffer,
    FlexOrderResponse,
    FlexRequestResponse,
    FlexSettlementResponse,
    transport,
)
from shapeshifter_uftp import FlexRequest as UftpRequest
from shapeshifter_uftp.exceptions import ClientTransportException
from shapeshifter_uftp.uftp import AcceptedDisputed, AcceptedRejected, SignedMessage

from connectors.uftp.congestion_feed import CongestionFeed
from connectors.uftp.gateway import UFTP_PATH, GatewayConfig, UftpGateway, open_gateway
from connectors.uftp.isp import IspFrame, frame_of
from connectors.uftp.keys import UftpKeyPair
from connectors.uftp.ledger import RestLedger
from edream.embedded.process import free_port
from edream.paths import TOPOLOGY_FILE
from edream.serde import Serde
from edream.topology import load_topology
from streams.flex.dsos import Dso
from streams.flex.enrolment import enrolment_event
from streams.flex.requests import to_ms
from streams.grid.congestion import SlotCongestion
from streams.grid.events import congestion_record
from tools.sim.flex_scenario import AREA, portfolio
from tools.sim.grid_feed import forecast
from tools.sim.uftp_dso import (
    SIM_CONGESTION_POINT,
    SIM_DSO_DOMAIN,
    TIME_ZONE,
    SimDso,
    flex_order,
    flex_request,
    flex_settlement,
)

pytestmark = [pytest.mark.integration]

AGR_DOMAIN = "agr.edream.test"
ATTEST_KEY = "0x" + keccak(text="edream-test/uftp-gateway").hex()


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.timeout(240)
def test_dso_requests_orders_part_of_the_offer_and_forgeries_are_refused(
    kafka_bootstrap, unique_topic, test_settings, session_dir, caplog
):
    names, topology = flex_topics(unique_topic, kafka_bootstrap)
    serde = Serde(test_settings)
    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})

    def send(canonical: str, schema: str, key: str, rec: dict) -> None:
        prod.produce(names[canonical], serde.encode(schema, rec, names[canonical]), key=key.encode())
        prod.flush()

    dso_keys, agr_keys = UftpKeyPair.generate(b"d" * 32), UftpKeyPair.generate(b"a" * 32)
    agr_port, dso_port = free_port(), free_port()
    dso = Dso(
        dso_id="dso-uftp",
        eth_address=Account.from_key(ATTEST_KEY).address,  # the gateway attests what it verified
        uftp_domain=SIM_DSO_DOMAIN,
        uftp_public_key=dso_keys.public,
        uftp_endpoint=f"http://127.0.0.1:{dso_port}{UFTP_PATH}",
        congestion_points={SIM_CONGESTION_POINT: AREA},
        updated_at=now_ms(),
    )
    send("flex.dsos.v1", "FlexDso", dso.dso_id, dso.to_avro())
    for rec in portfolio(5).records.values():
        send(
            "flex.enrolments.v1",
            "FlexEnrolment",
            rec.prosumer_id,
            enrolment_event(rec, now_ms() - 86_400_000),
        )
        status = {
            "prosumer_id": rec.prosumer_id,
            "area_id": AREA,
            "ts": now_ms(),
            "metered_kw": 5.0,
            "delivered": [],
        }
        send("flex.prosumer.status.v1", "FlexProsumerStatus", rec.prosumer_id, status)

    group = f"uftp-{time.time_ns()}"
    stages = Stages(
        test_settings, topology, names, group, test_settings.edream_data_dir / group, auto_accept=False
    )
    config = GatewayConfig(AGR_DOMAIN, agr_keys.secret, ATTEST_KEY, port=agr_port, time_zone=TIME_ZONE)
    platform = RestOverChdb(session_dir / "chdb", load_topology(TOPOLOGY_FILE))
    serving = platform.serving()
    ledger = RestLedger(serving.__enter__())
    gateway, close = open_gateway(
        config, {"bootstrap.servers": kafka_bootstrap}, names, serde, now_ms, ledger
    )
    agr_endpoint = f"http://127.0.0.1:{agr_port}{UFTP_PATH}"
    sim = SimDso(dso_keys, dso_port, AGR_DOMAIN, agr_endpoint, agr_keys.public)
    follow = {
        c: Follower(kafka_bootstrap, names[c], serde)
        for c in (
            "flex.requests.v1",
            "flex.acceptances.v1",
            "flex.offers.v1",
            "flex.orders.v1",
            "platform.rejections.v1",
            "platform.deadletter.v1",
            "uftp.messages.v1",
        )
    }
    gateway.run_in_thread()
    sim.run_in_thread()
    try:
        tomorrow = (datetime.now(ZoneInfo(TIME_ZONE)) + timedelta(days=1)).date()
        request = flex_request(tomorrow, {41: -10_000, 42: -10_000}, now_ms() + 3_600_000)
        sim.client().send_flex_request(request)
        answer = sim.wait_for(FlexRequestResponse, 120, flex_request_message_id=request.message_id)
        assert answer.result == AcceptedRejected.ACCEPTED, answer.rejection_reason
        offer = sim.wait_for(FlexOffer, 30, flex_request_message_id=request.message_id)
        [option] = offer.offer_options
        assert [(i.start, i.power) for i in option.isps] == [(41, -10_000), (42, -10_000)]
        ten_local = datetime.combine(tomorrow, datetime.min.time(), ZoneInfo(TIME_ZONE)) + timedelta(hours=10)
        assert offer.expiration_date_time == ten_local.astimezone(UTC).isoformat().replace("+00:00", "Z")

        order = flex_order(offer, factor="0.50")
        sim.client().send_flex_order(order)
        ordered = sim.wait_for(FlexOrderResponse, 60, flex_order_message_id=order.message_id)
        assert ordered.result == AcceptedRejected.ACCEPTED, ordered.rejection_reason
        [acc] = follow["flex.acceptances.v1"].wait(1)
        assert (acc["acceptance_id"], acc["offer_id"], acc["dso_id"]) == (
            order.message_id,
            option.option_reference,
            "dso-uftp",
        )
        assert [s["kw"] for s in acc["slots"]] == [5.0, 5.0] and acc["price_micro"] > 0
        [flex_order_rec] = follow["flex.orders.v1"].wait(1)
        totals: dict[int, float] = {}
        for a in flex_order_rec["allocations"]:
            totals[to_ms(a["slot_start"])] = totals.get(to_ms(a["slot_start"]), 0.0) + a["kw"]
        assert sorted(round(v, 3) for v in totals.values()) == [5.0, 5.0]
        _settle(sim, platform, tomorrow, order.message_id, acc, flex_order_rec)
        _prognose(sim, platform, gateway, sorted(portfolio(5).records), follow["uftp.messages.v1"], caplog)

        sim.client().send_flex_order(order)  # the same message again
        replayed = sim.wait_for(FlexOrderResponse, 60, flex_order_message_id=order.message_id)
        assert (
            replayed.result == AcceptedRejected.REJECTED and "REPLAYED_MESSAGE" in replayed.rejection_reason
        )

        # an order of an offer never made; an order of more than offered (a second request's offer, ISPs doubled)
        unknown = flex_order(offer, factor="0.50")
        unknown.option_reference = "no-such-offer"
        sim.client().send_flex_order(unknown)
        refused = sim.wait_for(FlexOrderResponse, 60, flex_order_message_id=unknown.message_id)
        assert refused.result == AcceptedRejected.REJECTED and "UNKNOWN_OFFER" in refused.rejection_reason
        second = flex_request(tomorrow, {45: -4_000}, now_ms() + 3_600_000)
        sim.client().send_flex_request(second)
        greedy = flex_order(sim.wait_for(FlexOffer, 60, flex_request_message_id=second.message_id))
        for isp in greedy.isps:
            isp.power *= 2
        sim.client().send_flex_order(greedy)
        refused = sim.wait_for(FlexOrderResponse, 60, flex_order_message_id=greedy.message_id)
        assert (
            refused.result == AcceptedRejected.REJECTED and "ORDER_EXCEEDS_OFFER" in refused.rejection_reason
        )

        grid_request = _asked_for_by_the_congestion_forecast(kafka_bootstrap, unique_topic, serde, tomorrow)
        sim.client().send_flex_request(grid_request)
        answer = sim.wait_for(FlexRequestResponse, 60, flex_request_message_id=grid_request.message_id)
        assert answer.result == AcceptedRejected.ACCEPTED, answer.rejection_reason
        sim.wait_for(FlexOffer, 60, flex_request_message_id=grid_request.message_id)

        forged = flex_request(tomorrow, {50: -5_000}, now_ms() + 3_600_000)
        with pytest.raises(ClientTransportException, match="401"):
            sim.client(keys=UftpKeyPair.generate(b"m" * 32)).send_flex_request(forged)
        stranger = flex_request(tomorrow, {51: -5_000}, now_ms() + 3_600_000)
        with pytest.raises(ClientTransportException, match="401"):
            sim.client(domain="mallory.edream.test").send_flex_request(stranger)
        junk = SignedMessage(
            sender_domain=SIM_DSO_DOMAIN,
            sender_role="DSO",
            body=crypto_sign(b"<Nonsense/>", b64decode(dso_keys.secret)),
        )
        assert (
            httpx.post(
                agr_endpoint,
                content=transport.to_xml(junk),
                headers={"Content-Type": "text/xml; charset=utf-8"},
            ).status_code
            == 400
        )
        rejections = follow["platform.rejections.v1"]
        wait_until(lambda: rejections.poll() >= 5, 60, "five rejections")
        time.sleep(1)  # time for anything wrongly offered or ordered
        for f in follow.values():
            f.poll()
    finally:
        sim.stop()
        gateway.stop()
        close()
        serving.__exit__(None, None, None)
        stages.stop()
        for f in follow.values():
            f.close()
    assert sorted(
        (r["code"], r["subject_kind"], r["subject_id"], r["party_id"]) for r in rejections.records
    ) == [
        ("BAD_SIGNATURE", "UftpMessage", forged.message_id, SIM_DSO_DOMAIN),
        ("ORDER_EXCEEDS_OFFER", "FlexAcceptance", greedy.message_id, "dso-uftp"),
        ("REPLAYED_MESSAGE", "FlexAcceptance", order.message_id, "dso-uftp"),
        ("UNKNOWN_DSO", "UftpMessage", stranger.message_id, "mallory.edream.test"),
        ("UNKNOWN_OFFER", "FlexAcceptance", unknown.message_id, "dso-uftp"),
    ]
    assert [r["request_id"] for r in follow["flex.requests.v1"].records] == [
        request.message_id,
        second.message_id,
        grid_request.message_id,
    ]
    grid_asked = follow["flex.requests.v1"].records[2]
    assert (grid_asked["area_id"], grid_asked["direction"], [s["kw"] for s in grid_asked["slots"]]) == (
        AREA,
        "REDUCE",
        [30.0, 18.0],
    )
    [letter] = follow["platform.deadletter.v1"].records
    assert (letter["source_topic"], letter["stage"], letter["key"]) == (
        "uftp",
        "uftp-gateway",
        SIM_DSO_DOMAIN.encode(),
    )
    assert (
        len(follow["flex.offers.v1"].records) == 3 and len(follow["flex.orders.v1"].records) == 1
    )  # nothing
    # dispatched for the refused orders
    # the audit trail: what the DSO said (seal verified) and what we answered, with the XML; nothing of the forged,
    # unregistered or junk messages
    said = [(r["direction"], r["message_type"], r["delivered"]) for r in follow["uftp.messages.v1"].records]
    assert sorted(set(said)) == [
        ("IN", "DPrognosisResponse", None),
        ("IN", "FlexOrder", None),
        ("IN", "FlexRequest", None),
        ("IN", "FlexSettlement", None),
        ("OUT", "DPrognosis", True),
        ("OUT", "FlexOffer", True),
        ("OUT", "FlexOrderResponse", True),
        ("OUT", "FlexRequestResponse", True),
        ("OUT", "FlexSettlementResponse", True),
    ], said
    ids = {r["message_id"] for r in follow["uftp.messages.v1"].records}
    assert {request.message_id, order.message_id} <= ids and not {
        forged.message_id,
        stranger.message_id,
    } & ids
    [incoming] = [r for r in follow["uftp.messages.v1"].records if r["message_id"] == request.message_id]
    assert (
        incoming["dso_id"] == "dso-uftp" and "<FlexRequest" in incoming["xml"] and incoming["time_stamp"] > 0
    )


def _asked_for_by_the_congestion_forecast(bootstrap: str, unique_topic, serde: Serde, day) -> UftpRequest:
    """The DSO side of the grid: two overloaded slots of the grid stage's forecast on Kafka (ISPs 49-50 of ``day``,
    110 % and 104 % on a 100 % limit, least sensitivity 0.5 %/kW) -> the one FlexRequest they need, handed out once:
    (110 - 95) / 0.5 = 30 kW and (104 - 95) / 0.5 = 18 kW less."""
    topic = unique_topic("uftp-congestion", 4)
    frame, issued = IspFrame(day, TIME_ZONE, 15), now_ms()
    prod = Producer({"bootstrap.servers": bootstrap})
    for isp, loading in ((49, 110.0), (50, 104.0)):
        slot = SlotCongestion(
            "demo/T1",
            AREA,
            frame.start_ms(isp),
            True,
            loading,
            100.0,
            0.0,
            0.97,
            1.0,
            0,
            0,
            {"a": 0.62, "b": 0.5},
        )
        rec = congestion_record(slot, "demo", 5, 0, issued, issued)
        prod.produce(topic, serde.encode("GridCongestion", rec, topic), key=b"demo")
    assert prod.flush(10) == 0
    feed = CongestionFeed(
        {"bootstrap.servers": bootstrap},
        topic,
        {"demo/T1": SIM_CONGESTION_POINT},
        serde,
        f"f{issued}",
        quiet_ms=500,
    )
    try:
        asked, deadline = [], time.monotonic() + 60
        while not asked and time.monotonic() < deadline:
            asked = feed.poll(now_ms(), timeout_s=1.0)
        feed.commit()
        assert feed.poll(now_ms() + 5_000, timeout_s=1.0) == []  # not handed out twice
    finally:
        feed.close()
    [request] = asked
    assert request.congestion_point == SIM_CONGESTION_POINT
    assert [(i.start, i.max_power) for i in request.isps] == [(49, -30_000), (50, -18_000)]
    return request


def _settle(sim: SimDso, platform: RestOverChdb, period, order_ref: str, acc: dict, order: dict) -> None:
    """The platform's records of the order (acceptance, order, one settlement per prosumer and slot: ISP 41
    delivered in full, ISP 42 at 80 %) as the sinks write them; the DSO's FlexSettlements checked against them."""
    platform.insert("flex_acceptances", [acc])
    platform.insert("flex_orders", [order])
    settlements = []
    for a in order["allocations"]:
        start = to_ms(a["slot_start"])
        target = round(a["kw"] * 1000 / 4)  # Wh over the 15-min slot
        delivered = (
            target if start == min(to_ms(x["slot_start"]) for x in order["allocations"]) else target * 4 // 5
        )
        settlements.append(
            {
                "event_id": f"ev-{a['prosumer_id']}-{start}",
                "settlement_id": f"stl-{order['order_id']}-{a['prosumer_id']}-{start}",
                "kind": "FLEX",
                "window_id": f"w-{start}",
                "window_start": start,
                "window_end": start + 900_000,
                "party_id": a["prosumer_id"],
                "reference_id": order["order_id"],
                "quantity_wh": delivered,
                "amount_micro": 0,
                "details": json.dumps({"target_wh": target, "delivered_wh": delivered}),
                "computed_at": now_ms(),
            }
        )
    platform.insert("settlement_flex", settlements)

    # the DSO's figures (USEF sign: a reduction is negative): 5 kW ordered per ISP, 5 kW and 4 kW delivered
    true = flex_settlement(
        period, {order_ref: {41: (-5_000, -5_000), 42: (-5_000, -4_000)}, "no-such-order": {41: (-1, -1)}}
    )
    sim.client().send_flex_settlement(true)
    answer = sim.wait_for(FlexSettlementResponse, 60, flex_settlement_message_id=true.message_id)
    assert answer.result == AcceptedRejected.ACCEPTED, answer.rejection_reason
    statuses = {s.order_reference: s for s in answer.flex_order_settlement_statuses}
    assert statuses[order_ref].disposition == AcceptedDisputed.ACCEPTED, statuses[order_ref].dispute_reason
    assert statuses["no-such-order"].disposition == AcceptedDisputed.DISPUTED
    assert "unknown FlexOrder no-such-order" in statuses["no-such-order"].dispute_reason

    overstated = flex_settlement(period, {order_ref: {41: (-5_000, -5_000), 42: (-5_000, -5_000)}})
    sim.client().send_flex_settlement(overstated)
    answer = sim.wait_for(FlexSettlementResponse, 60, flex_settlement_message_id=overstated.message_id)
    [status] = answer.flex_order_settlement_statuses
    assert status.disposition == AcceptedDisputed.DISPUTED
    assert status.dispute_reason == "ISP 42: delivered 5000 W, measured 4000 W", status.dispute_reason


def _prognose(
    sim: SimDso, platform: RestOverChdb, gateway: UftpGateway, prosumers: list[str], audit: Follower, caplog
) -> None:
    """Day-ahead forecasts of the area's five prosumers from this hour (1.2 kWh imported, 0.2 kWh exported per hour:
    1 kW net each) and a later intra-day one of the first (0.9 kWh per 30 min imported in the first hour: 1.8 kW);
    the DSO's D-Prognoses must hold 5,000 W per ISP, 5,600 W in the first hour's four."""
    hour_ms = 3_600_000
    hour = now_ms() - now_ms() % hour_ms
    rows = [
        forecast(p, hour, [kw] * 24, hour, prop, "DAYAHEAD", minutes=60)
        for p in prosumers
        for prop, kw in (("ENERGY_CONSUMPTION", 1.2), ("ENERGY_PRODUCTION", 0.2))
    ]
    rows.append(
        forecast(prosumers[0], hour, [1.8, 1.8], hour + 1, "ENERGY_CONSUMPTION", "INTRA_DAY", minutes=30)
    )
    platform.insert("forecasts", rows)
    expected: dict[tuple[str, int], int] = {}
    for k in range(96):
        start = hour + k * 900_000
        frame = frame_of(start, TIME_ZONE, 15)
        expected[(str(frame.period), frame.isp_of(start))] = 5_600 if k < 4 else 5_000

    periods = len({period for period, _isp in expected})
    assert gateway.send_prognoses() == periods
    got = {}
    for _ in range(periods):
        msg = sim.wait_for(DPrognosis, 30)  # unsealed by the library with our registered public key
        assert (msg.sender_domain, msg.congestion_point, str(msg.isp_duration)) == (
            AGR_DOMAIN,
            SIM_CONGESTION_POINT,
            "PT15M",
        )
        got.update({(str(msg.period), isp.start): isp.power for isp in msg.isps})
    assert got == expected
    wait_until(
        lambda: (
            audit.poll() and sum(r["message_type"] == "DPrognosisResponse" for r in audit.records) == periods
        ),
        30,
        "the DSO's DPrognosisResponses audited",
    )
    assert gateway.send_prognoses() == 0  # unchanged: not sent again

    # an hour-ahead forecast changes the first prosumer's next hour (3 kWh: 3 kW imported); the DSO refuses it
    platform.insert(
        "forecasts",
        [
            forecast(
                prosumers[0],
                hour + hour_ms,
                [3.0],
                now_ms(),
                "ENERGY_CONSUMPTION",
                "ONE_HOUR_AHEAD",
                minutes=60,
            )
        ],
    )
    sim.prognosis_rejection = "congestion point under maintenance"
    assert gateway.send_prognoses() == 1  # the period holding that hour only
    changed = sim.wait_for(DPrognosis, 30)
    now_expected = {key: w for key, w in expected.items() if key[0] == str(changed.period)}
    for k in range(4, 8):  # the next hour's ISPs: 4 x 1000 + (3000 - 200) W
        frame = frame_of(hour + k * 900_000, TIME_ZONE, 15)
        now_expected[(str(frame.period), frame.isp_of(hour + k * 900_000))] = 6_800
    assert {(str(changed.period), isp.start): isp.power for isp in changed.isps} == now_expected
    wait_until(
        lambda: any("congestion point under maintenance" in r.getMessage() for r in caplog.records),
        30,
        "the rejection logged",
    )
    sim.prognosis_rejection = None
    assert gateway.send_prognoses() == 1  # refused: sent again
    again = sim.wait_for(DPrognosis, 30)
    assert again.revision > changed.revision and [(i.start, i.power) for i in again.isps] == [
        (i.start, i.power) for i in changed.isps
    ]

    ledger, gateway.ledger = gateway.ledger, RestLedger(f"http://127.0.0.1:{free_port()}/api/v1")  # API down
    try:
        assert gateway.send_prognoses() == 0
    finally:
        gateway.ledger.close()
        gateway.ledger = ledger
    assert any("no D-Prognosis this round" in r.getMessage() for r in caplog.records)
