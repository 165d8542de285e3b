"""End to end on a real (embedded Tansu) broker: 20 registered prosumers place forecast-built, EIP-712-signed
orders for 4 slots; unsigned, forged and late orders are rejected; slots clear at gate closure by event time;
settlements after delivery match hand-worked values.

A small consume loop drives :class:`MarketProcessor` (the same logic the Faust agent wires), reading the input
topics and publishing its outputs through the platform serde; the assertions read the output topics back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, Producer
from eth_account import Account

from edream.kafka import consumer_config, producer_config
from edream.serde import Serde
from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder
from streams.market.participants import Participant
from streams.market.processor import MarketProcessor
from streams.market.profile import net_profile_wh, orders_from_profile
from streams.market.signing import sign_order

pytestmark = pytest.mark.integration

DAY = 1_795_392_000_000  # 2026-11-23T00:00Z
SLOT0 = DAY + 12 * 3_600_000  # 12:00Z
Q = 900_000  # 15 min
CFG = MarketConfig(gate_closure_lead_ms=Q, imbalance_price_micro_per_kwh=50_000)
N = 10  # sellers S0..S9 and buyers B0..B9


def key(i: int) -> Account:
    return Account.from_key((i + 1).to_bytes(32, "big"))


def participants() -> list[Participant]:
    return [
        Participant(
            participant_id=f"{role}{i}",
            prosumer_id=f"pro-{role}{i}",
            eth_address=key(k).address,
            meters=(f"M-{role}{i}",),
            updated_at=DAY,
        )
        for k, (role, i) in enumerate((r, i) for r in "SB" for i in range(N))
    ]


def forecast(role: str) -> tuple[list[float], list[float]]:
    """(consumption, production) Wh for the 4 slots: sellers have 1 kWh surplus, buyers 1 kWh deficit."""
    return ([200.0] * 4, [1200.0] * 4) if role == "S" else ([1300.0] * 4, [300.0] * 4)


def build_orders() -> list[MarketOrder]:
    orders = []
    for k, p in enumerate(participants()):
        role, i = p.participant_id[0], int(p.participant_id[1:])
        price = 50_000 + 10_000 * i if role == "S" else 200_000 - 10_000 * i
        energy = net_profile_wh(*forecast(role))
        orders += orders_from_profile(
            CFG,
            p.participant_id,
            p.eth_address,
            key(k).key,
            SLOT0,
            energy,
            [price] * 4,
            client_ts=SLOT0 - 2 * 3_600_000 + k * 1000,
            first_nonce=0,
        )
    return orders


def bad_orders(good: list[MarketOrder]) -> dict[str, MarketOrder]:
    b0 = next(o for o in good if o.participant_id == "B0" and o.slot_start == SLOT0)
    late_terms = replace(b0.terms, nonce=99, client_ts=SLOT0 - Q + 1)  # after the 11:45 gate
    return {
        "unsigned": replace(b0, nonce=50, signature=""),
        "forged": sign_order(replace(b0.terms, nonce=51, quantity_wh=5000), key(19).key, CFG.chain_id),
        "late": sign_order(late_terms, key(10).key, CFG.chain_id),
    }


def interval(p: Participant, start: int, export_wh: float, import_wh: float) -> dict:
    return {
        "event_id": f"{p.meters[0]}/{start}/1",
        "prosumer_id": p.prosumer_id,
        "device_id": p.meters[0],
        "interval_start": start,
        "interval_end": start + Q,
        "import_wh": import_wh,
        "export_wh": export_wh,
        "avg_kw": 0.0,
        "max_kw": 0.0,
        "samples": 15,
        "expected_samples": 15,
        "completeness": 1.0,
        "method": "POWER_INTEGRATION",
        "estimated": False,
        "version": 1,
        "computed_at": start + Q,
    }


def drain(consumer: Consumer, serde: Serde, expect: int) -> list[tuple[str, dict, int]]:
    """(schema, record, message timestamp ms) of up to ``expect`` messages."""
    out: list[tuple[str, dict, int]] = []
    empty = 0
    while len(out) < expect and empty < 40:
        m = consumer.poll(0.5)
        if m is None or m.error():
            empty += 1
            continue
        out.append((*serde.decode(m.value()), m.timestamp()[1]))
    return out


def test_market_end_to_end(test_settings, unique_topic):
    serde = Serde()
    t_in = {name: unique_topic(f"market.{name}") for name in ("participants", "orders", "intervals")}
    t_out = unique_topic("market.out")
    producer = Producer(producer_config(test_settings))
    people = participants()
    for p in people:
        producer.produce(
            t_in["participants"],
            serde.encode("MarketParticipant", p.to_avro()),
            p.participant_id,
            timestamp=DAY,
        )
    good = build_orders()
    bad = bad_orders(good)
    # message timestamps stand for the broker's arrival time (LogAppendTime in production): the late order
    # arrives after the 11:45 gate of slot 0, which by then has closed on event time
    for o in [*good, *bad.values()]:
        arrival = SLOT0 - Q + 2 if o is bad["late"] else o.client_ts + 500
        producer.produce(
            t_in["orders"], serde.encode("MarketOrder", o.to_avro()), o.session_id, timestamp=arrival
        )
    # delivery: S0 exports only 600 Wh in slot 0; everyone else exactly what they traded
    for p in people:
        for s in range(4):
            start = SLOT0 + s * Q
            exp = (
                (600.0 if (p.participant_id, s) == ("S0", 0) else 1000.0)
                if p.participant_id[0] == "S"
                else 0.0
            )
            rec = interval(p, start, exp, 1000.0 if p.participant_id[0] == "B" else 0.0)
            producer.produce(
                t_in["intervals"],
                serde.encode("IntervalEnergy", rec),
                p.prosumer_id,
                timestamp=start + Q + 60_000,
            )
    assert producer.flush(30) == 0

    # --- the driver: registry first, then orders, then delivery data, each with its event time ---
    proc = MarketProcessor(CFG)
    consumer = Consumer(consumer_config(test_settings, f"market-e2e-{uuid.uuid4().hex[:6]}"))
    consumer.subscribe(list(t_in.values()))
    inputs = drain(consumer, serde, len(people) + len(good) + len(bad) + len(people) * 4)
    consumer.close()
    kinds = [name for name, _, _ in inputs]
    assert kinds.count("MarketOrder") == len(good) + 3 and kinds.count("IntervalEnergy") == 80
    outputs = []
    rank = ["MarketParticipant", "MarketOrder", "IntervalEnergy"]
    for name, rec, ts in sorted(inputs, key=lambda x: (rank.index(x[0]), x[2])):
        if name == "MarketParticipant":
            proc.on_participant(Participant.from_avro(rec))
        elif name == "MarketOrder":
            outputs += proc.on_order(MarketOrder.from_avro(rec), ts, now_ms=ts)
        else:
            outputs += proc.on_interval(rec, ts, now_ms=ts)
    assert proc.clock.open_slots == []  # every slot's gate closed by event time
    for o in outputs:
        producer.produce(t_out, serde.encode(o.schema, o.record), o.key)
    assert producer.flush(30) == 0

    reader = Consumer(consumer_config(test_settings, f"market-e2e-out-{uuid.uuid4().hex[:6]}"))
    reader.subscribe([t_out])
    published = drain(reader, serde, len(outputs))
    reader.close()
    by_kind: dict[str, list[dict]] = {}
    for name, rec, _ in published:
        by_kind.setdefault(name, []).append(rec)

    # rejections: unsigned and forged -> BAD_SIGNATURE, late -> GATE_CLOSED
    codes = {r["subject_id"]: r["code"] for r in by_kind["Rejection"]}
    assert codes == {
        bad["unsigned"].order_id: "BAD_SIGNATURE",
        bad["forged"].order_id: "BAD_SIGNATURE",
        bad["late"].order_id: "GATE_CLOSED",
    }
    assert len(by_kind["MarketOrder"]) == 80  # 20 prosumers x 4 slots accepted

    # clearing per slot: bids 0.20..0.11, offers 0.05..0.14 (1 kWh each) cross 8 times; bounds [0.12, 0.13]
    results = sorted(by_kind["ClearingResult"], key=lambda r: r["slot_start"])
    assert [r["slot_start"] for r in results] == [SLOT0 + s * Q for s in range(4)]
    for r in results:
        assert (r["price_micro_per_kwh"], r["cleared_wh"], r["n_trades"]) == (125_000, 8000, 8)
        assert r["gate_closed_at"] == r["slot_start"] - Q
    assert len(by_kind["Trade"]) == 32
    assert all(t["price_micro_per_kwh"] == 125_000 and t["quantity_wh"] == 1000 for t in by_kind["Trade"])

    # settlement: 8 trades x 1 kWh x 0.125 = 125_000 micro each; S0 short 400 Wh in slot 0
    stl = {(s["window_start"], s["party_id"]): s["amount_micro"] for s in by_kind["Settlement"]}
    assert stl[(SLOT0, "S0")] == 75_000 - 20_000  # 600 Wh x 0.125 - 400 Wh x 0.05
    assert stl[(SLOT0, "B0")] == -75_000
    assert stl[(SLOT0, "POOL")] == 20_000
    assert stl[(SLOT0 + Q, "S0")] == 125_000 and stl[(SLOT0 + Q, "B0")] == -125_000
    for s in range(4):
        window = {k[1]: v for k, v in stl.items() if k[0] == SLOT0 + s * Q}
        assert sum(window.values()) == 0
        assert {p: v for p, v in window.items() if p not in ("S0", "B0", "POOL")} == {
            **{f"S{i}": 125_000 for i in range(1, 8)},
            **{f"B{i}": -125_000 for i in range(1, 8)},
        }
        assert len(window) == (17 if s == 0 else 16)
    assert all(json.loads(s["details"])["trades"] for s in by_kind["Settlement"] if s["party_id"] != "POOL")
