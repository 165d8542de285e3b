"""DSO acceptance on the real runtime (embedded broker, the flex stages by StageSupervisor threads, auto-accept off):
two signed requests are offered and nothing is ordered; the DSO accepts part of the first offer with a signed
FlexAcceptance on ``flex.acceptances.v1`` and only then are its prosumers ordered (the accepted kW, not the
offered); the second offer is never accepted and expires with a Rejection OFFER_EXPIRED once the stage's wall clock
passes its validity and the grace for acceptances sent in time; a late acceptance of it is refused and dispatches nothing."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from flex_stages import Follower, Stages, flex_topics, wait_until

from edream.serde import Serde
from streams.flex.area_stage import AreaParams
from streams.flex.enrolment import enrolment_event
from streams.flex.requests import to_ms
from tools.sim.flex_scenario import SIM_DSO_ID, SLOT_MS, T0, acceptance, portfolio, reduce_request, sim_dso

pytestmark = [pytest.mark.integration]

NOW = T0 - 3_600_000
LATER = T0 + 2 * SLOT_MS  # the second request's first slot: its offer is valid until then


@pytest.mark.timeout(180)
def test_orders_only_after_the_dso_accepts_and_an_unaccepted_offer_expires(
    kafka_bootstrap, unique_topic, test_settings
):
    names, topology = flex_topics(unique_topic, kafka_bootstrap)
    serde = Serde(test_settings)
    wall = {"now": NOW}
    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})

    def send(canonical: str, schema: str, key: str, rec: dict) -> None:
        prod.produce(names[canonical], serde.encode(schema, rec, names[canonical]), key=key.encode())
        prod.flush()

    registry = portfolio(5)
    for rec in registry.records.values():
        send("flex.enrolments.v1", "FlexEnrolment", rec.prosumer_id, enrolment_event(rec, T0 - 86_400_000))
        status = {
            "prosumer_id": rec.prosumer_id,
            "area_id": rec.area_id,
            "ts": NOW,
            "metered_kw": 5.0,
            "delivered": [],
        }
        send("flex.prosumer.status.v1", "FlexProsumerStatus", rec.prosumer_id, status)
    send("flex.dsos.v1", "FlexDso", SIM_DSO_ID, sim_dso().to_avro())
    group = f"flex-acc-{time.time_ns()}"
    stages = Stages(
        test_settings,
        topology,
        names,
        group,
        test_settings.edream_data_dir / group,
        area_options={"clock": lambda: wall["now"]},
        prosumer_options={"clock": lambda: wall["now"]},
        auto_accept=False,
    )
    follow = {
        c: Follower(kafka_bootstrap, names[c], serde)
        for c in ("flex.offers.v1", "flex.orders.v1", "flex.allocations.v1", "platform.rejections.v1")
    }
    try:
        for req in (
            reduce_request(kw=10.0, n_slots=2),
            reduce_request(kw=8.0, n_slots=2, request_id="req-2", start=LATER),
        ):
            send("flex.requests.v1", "FlexRequest", req.request_id, req.to_avro())
        offers = {o["request_id"]: o for o in follow["flex.offers.v1"].wait(2, timeout=90)}
        assert to_ms(offers["req-2"]["valid_until"]) == LATER
        time.sleep(2)  # two ticks: nothing is ordered before the DSO answers
        assert follow["flex.orders.v1"].poll() == 0 and follow["flex.allocations.v1"].poll() == 0

        first = offers["req-1"]
        acc = acceptance(first, {T0: 4.0, T0 + SLOT_MS: 10.0})
        send("flex.acceptances.v1", "FlexAcceptance", first["offer_id"], acc.to_avro())
        [order] = follow["flex.orders.v1"].wait(1, timeout=60)
        assert order["offer_id"] == first["offer_id"] and order["request_id"] == "req-1"
        per_slot: dict[int, float] = {}
        for a in order["allocations"]:
            per_slot[to_ms(a["slot_start"])] = per_slot.get(to_ms(a["slot_start"]), 0.0) + a["kw"]
        assert per_slot[T0] == pytest.approx(4.0, abs=0.005) and per_slot[T0] <= 4.0
        assert per_slot[T0 + SLOT_MS] == pytest.approx(10.0)

        # the second offer's validity and the grace for an acceptance sent in time end: the next tick expires it
        wall["now"] = LATER + 1 + AreaParams().acceptance_grace_ms
        rejections = follow["platform.rejections.v1"]
        wait_until(lambda: rejections.poll() >= 1, 60, "the expiry")
        late = acceptance(offers["req-2"], acceptance_id="acc-late", at=LATER)
        send("flex.acceptances.v1", "FlexAcceptance", offers["req-2"]["offer_id"], late.to_avro())
        wait_until(lambda: rejections.poll() >= 2, 60, "the late acceptance's rejection")
        allocations = follow["flex.allocations.v1"].poll()
        time.sleep(1)
        assert follow["flex.orders.v1"].poll() == 1, "the expired offer ordered nothing"
        assert follow["flex.allocations.v1"].poll() == allocations
    finally:
        stages.stop()
        for f in follow.values():
            f.close()
    assert [(r["code"], r["subject_kind"], r["subject_id"], r["party_id"]) for r in rejections.records] == [
        ("OFFER_EXPIRED", "FlexOffer", offers["req-2"]["offer_id"], SIM_DSO_ID),
        ("OFFER_EXPIRED", "FlexAcceptance", "acc-late", SIM_DSO_ID),
    ]
    assert {a["order_id"] for a in follow["flex.allocations.v1"].records} == {order["order_id"]}
