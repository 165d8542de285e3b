"""The DSO's acceptance of an offer: the pure checks (each refused case has its code, nothing else is looked at),
the pro-rata part of a partly accepted offer, and the area desk with auto-accept off: prosumers are ordered only
after a signed acceptance, an offer nobody accepts expires with a Rejection, refused acceptances dispatch nothing."""

from __future__ import annotations

import dataclasses

import pytest
from eth_utils import keccak

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.flex.acceptance import AcceptedSlot, FlexAcceptance
from streams.flex.area_stage import AreaParams, FlexAreaProcessor
from streams.flex.dso_acceptance import accepted_part, decide
from streams.flex.dso_view import DsoView
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.offers import FlexOffer
from streams.flex.requests import to_ms
from streams.flex.signing import sign_acceptance
from tools.sim.flex_scenario import (
    SIM_DSO_KEY,
    SLOT_MS,
    T0,
    acceptance,
    dso_view,
    enrolment_view,
    portfolio,
    reduce_request,
    sim_dsos,
)

SERDE = Serde()
NOW = T0 - 3_600_000
MALLORY = "0x" + keccak(text="mallory").hex()
GRACE = AreaParams().acceptance_grace_ms


class Desk:
    """The area desk (auto-accept off) on MemoryState with 5 prosumers metering 5 kW; decoded outputs kept."""

    def __init__(self, auto_accept: bool = False):
        self.now = NOW
        enrolled = EnrolledRegistry(enrolment_view(portfolio(5), SERDE), SERDE)
        self.proc = FlexAreaProcessor(
            SERDE,
            enrolled,
            DsoView(dso_view(SERDE), SERDE),
            {},
            AreaParams(auto_accept=auto_accept),
            self.clock,
        )
        self.state = MemoryState()
        for r in enrolled.refresh().records.values():
            st = {
                "prosumer_id": r.prosumer_id,
                "area_id": r.area_id,
                "ts": NOW,
                "metered_kw": 5.0,
                "delivered": [],
            }
            self.send("flex.prosumer.status.v1", SERDE.encode("FlexProsumerStatus", st))

    def clock(self) -> int:
        return self.now

    def send(self, topic: str, value: bytes, received_at: int | None = None) -> list[tuple[str, dict]]:
        """``received_at``: the record time (default: the desk's wall clock, i.e. processed as it arrives)."""
        at = self.now if received_at is None else received_at
        emits = self.proc.on_record(Record(topic, 0, 0, None, value, at), self.state)
        return [SERDE.decode(e.value) for e in emits]

    def tick(self) -> list[tuple[str, dict]]:
        return [SERDE.decode(e.value) for e in self.proc.on_tick(self.now, 0, self.state)]

    def offer(self, kw: float = 10.0) -> dict:
        """A signed 2-slot request of ``kw`` per slot, offered on the tick: the FlexOffer record."""
        req = reduce_request(kw=kw, n_slots=2)
        assert self.send("flex.requests.v1", SERDE.encode("FlexRequest", req.to_avro())) == []
        out = self.tick()
        assert [n for n, _ in out] == ["FlexOffer"], (
            "an offer only: nothing is ordered before the DSO accepts"
        )
        return out[0][1]

    def answer(self, acc: FlexAcceptance, received_at: int | None = None) -> list[tuple[str, dict]]:
        return self.send("flex.acceptances.v1", SERDE.encode("FlexAcceptance", acc.to_avro()), received_at)


def names(out: list[tuple[str, dict]]) -> list[str]:
    return [n for n, _ in out]


def test_the_offer_is_valid_until_its_first_slot_and_partial_acceptance_orders_that_part_pro_rata():
    desk = Desk()
    offer = desk.offer(kw=10.0)
    assert offer["status"] == "FULL" and to_ms(offer["valid_until"]) == T0
    out = desk.answer(acceptance(offer, {T0: 6.0, T0 + SLOT_MS: 10.0}))
    assert names(out)[0] == "FlexOrder" and set(names(out)[1:]) == {"FlexAllocation"}
    order = out[0][1]
    by_slot = {}
    for a in order["allocations"]:
        by_slot.setdefault(to_ms(a["slot_start"]), []).append(a["kw"])
    assert sum(by_slot[T0]) == pytest.approx(6.0, abs=0.005) and sum(by_slot[T0]) <= 6.0
    assert sum(by_slot[T0 + SLOT_MS]) == pytest.approx(10.0)
    assert desk.tick() == []  # accepted: no expiry later either
    desk.now = T0 + 1
    assert desk.tick() == []


def test_an_offer_nobody_accepts_expires_once_and_a_late_acceptance_is_refused():
    desk = Desk()
    offer = desk.offer()
    desk.now = T0 + GRACE  # open for the grace after valid_until: an acceptance sent in time may come late
    assert desk.tick() == []
    desk.now = T0 + GRACE + 1
    [(name, rej)] = desk.tick()
    assert (name, rej["code"], rej["subject_id"], rej["party_id"]) == (
        "Rejection",
        "OFFER_EXPIRED",
        offer["offer_id"],
        "dso-1",
    )
    assert desk.tick() == []  # once
    [(name, rej)] = desk.answer(acceptance(offer, at=T0))
    assert (name, rej["code"], rej["subject_kind"]) == ("Rejection", "OFFER_EXPIRED", "FlexAcceptance")


def test_an_acceptance_that_reached_the_platform_in_time_is_honoured_when_processed_late():
    """Judged as of its record time (when it reached the platform), within the grace; after the grace it counts
    as received at the start of the grace, and a record time from the future counts as now."""
    desk = Desk()
    offer = desk.offer()
    desk.now = T0 + GRACE // 2  # processed after valid_until (a loaded platform), sent 10 s before it
    out = desk.answer(acceptance(offer, at=T0 - 10_000), received_at=T0 - 10_000)
    assert names(out)[0] == "FlexOrder", str(out[0][1])
    desk.now = T0 + GRACE + 1
    assert desk.tick() == []  # accepted: no expiry
    late = Desk()
    offer = late.offer()
    late.now = T0 + GRACE + 1  # the record time claims T0 - 10 s, but it is older than the grace: refused
    [(_, rej)] = late.answer(acceptance(offer, at=T0 - 10_000), received_at=T0 - 10_000)
    assert rej["code"] == "OFFER_EXPIRED"
    future = Desk()
    offer = future.offer()
    future.now = T0 + 1  # a record time after the wall clock counts as now: past valid_until, refused
    [(_, rej)] = future.answer(acceptance(offer, at=T0 - 10_000), received_at=T0 + 3_600_000)
    assert rej["code"] == "OFFER_EXPIRED"


def test_a_dso_rejection_closes_the_offer_without_an_order_or_an_expiry():
    desk = Desk()
    offer = desk.offer()
    assert desk.answer(acceptance(offer, decision="REJECTED")) == []
    desk.now = T0 + 1
    assert desk.tick() == []
    [(_, rej)] = desk.answer(acceptance(offer, acceptance_id="acc-2", at=NOW))
    assert rej["code"] == "OFFER_EXPIRED"  # past validity: expired wins over closed
    desk2 = Desk()
    offer2 = desk2.offer()
    desk2.answer(acceptance(offer2, decision="REJECTED"))
    [(_, rej)] = desk2.answer(acceptance(offer2, acceptance_id="acc-2"))
    assert rej["code"] == "OFFER_CLOSED"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda o: acceptance({**o, "offer_id": "off-nope"}), "UNKNOWN_OFFER"),
        (lambda o: acceptance(o, {T0: 10.5}), "ORDER_EXCEEDS_OFFER"),
        (lambda o: acceptance(o, {T0 + 7 * SLOT_MS: 1.0}), "ORDER_EXCEEDS_OFFER"),  # a slot not offered
        (lambda o: acceptance(o, key=MALLORY), "BAD_SIGNATURE"),
        (lambda o: dataclasses.replace(acceptance(o), signature=None), "UNSIGNED_REQUEST"),
        (
            lambda o: sign_acceptance(dataclasses.replace(acceptance(o), dso_id="dso-x"), MALLORY),
            "UNKNOWN_DSO",
        ),
        (
            lambda o: dataclasses.replace(acceptance(o), price_micro=1),
            "BAD_SIGNATURE",
        ),  # altered after signing
        (lambda o: acceptance(o, at=NOW - 700_000), "ACCEPTANCE_EXPIRED"),  # valid 10 min from 11.7 min ago
        (
            lambda o: sign_acceptance(
                dataclasses.replace(acceptance(o), slots=(AcceptedSlot(T0, float("nan")),)), SIM_DSO_KEY
            ),
            "NEGATIVE_KW",
        ),
        (lambda o: acceptance(o, area="other-area"), "UNKNOWN_OFFER"),
    ],
)
def test_refused_acceptances_are_rejections_and_dispatch_nothing(change, code):
    desk = Desk()
    offer = desk.offer()
    [(name, rej)] = desk.answer(change(offer))
    assert (name, rej["code"], rej["subject_kind"]) == ("Rejection", code, "FlexAcceptance")
    assert not [k for k in desk.state.data if k.startswith(("o:", "a:"))], "no order kept"
    # the offer stays open: a valid acceptance still orders it
    assert names(desk.answer(acceptance(offer, acceptance_id="acc-ok")))[0] == "FlexOrder"


def test_a_replayed_acceptance_is_refused_and_orders_nothing_more():
    desk = Desk()
    offer = desk.offer()
    acc = acceptance(offer)
    assert names(desk.answer(acc))[0] == "FlexOrder"
    [(name, rej)] = desk.answer(acc)
    assert (name, rej["code"]) == ("Rejection", "REPLAYED_MESSAGE")
    [(_, rej)] = desk.answer(acceptance(offer, acceptance_id="acc-2"))
    assert rej["code"] == "OFFER_CLOSED"


def test_auto_accept_orders_at_once_and_nothing_expires():
    desk = Desk(auto_accept=True)
    req = reduce_request(kw=10.0, n_slots=2)
    desk.send("flex.requests.v1", SERDE.encode("FlexRequest", req.to_avro()))
    assert names(desk.tick())[:2] == ["FlexOffer", "FlexOrder"]
    desk.now = T0 + 1
    assert desk.tick() == []


def _offer(kw_by_prosumer: dict[str, float]) -> FlexOffer:
    from streams.flex.offers import Allocation, OfferSlot

    total = sum(kw_by_prosumer.values())
    return FlexOffer(
        "off-1",
        "req-1",
        "agg",
        "FULL",
        (OfferSlot(T0, total, total, 0.0), OfferSlot(T0 + SLOT_MS, total, total, 0.0)),
        tuple(Allocation(p, t, kw) for t in (T0, T0 + SLOT_MS) for p, kw in kw_by_prosumer.items()),
        0,
        NOW,
        T0,
    )


def test_accepted_part_scales_each_allocation_and_drops_slots_not_accepted():
    part = accepted_part(_offer({"p00": 3.0, "p01": 1.0}), {T0: 2.0})
    assert [(a.prosumer_id, a.slot_start, a.kw) for a in part.allocations] == [
        ("p00", T0, 1.5),
        ("p01", T0, 0.5),
    ]
    whole = accepted_part(_offer({"p00": 2.3, "p01": 0.7}), {T0: 3.0, T0 + SLOT_MS: 3.0})
    assert [a.kw for a in whole.allocations] == [2.3, 0.7, 2.3, 0.7]  # all of it: no watt lost to float noise
    odd = accepted_part(_offer({"p00": 3.0, "p01": 3.0, "p02": 3.0}), {T0: 1.0})
    assert sum(a.kw for a in odd.allocations) <= 1.0 and [a.kw for a in odd.allocations] == [0.333] * 3


def test_decide_authenticates_before_it_looks_at_the_offer():
    """A forged acceptance of an unknown offer is BAD_SIGNATURE (not UNKNOWN_OFFER: a forger learns nothing), and a
    replay is recognised before the bounds."""
    acc = sign_acceptance(
        FlexAcceptance("acc-1", "off-x", "dso-1", "terni-1", "ACCEPTED", (AcceptedSlot(T0, 1.0),), T0, NOW),
        MALLORY,
    )
    assert decide(acc, None, None, None, (), sim_dsos(), NOW).code == "BAD_SIGNATURE"
    good = sign_acceptance(acc, SIM_DSO_KEY)
    assert decide(good, None, None, None, {"acc-1"}, sim_dsos(), NOW).code == "REPLAYED_MESSAGE"
    assert decide(good, None, None, None, (), sim_dsos(), NOW).code == "UNKNOWN_OFFER"


def test_cli_accept_signs_the_part_accepted_with_the_dsos_key(tmp_path):
    import json

    from eth_account import Account
    from typer.testing import CliRunner

    from streams.flex.cli import app
    from streams.flex.signing import signer_of

    key = tmp_path / "dso.key"
    key.write_text(SIM_DSO_KEY)
    args = ["accept", "off-1", "--key-file", str(key), "--area", "terni-1", "--dry-run"]
    out = CliRunner().invoke(app, [*args, "--kw", f"{T0}=5,{T0 + SLOT_MS}=4.5"])
    assert out.exit_code == 0, out.output
    acc = FlexAcceptance.from_avro(json.loads(out.output.splitlines()[-1]))
    assert acc.accepted_kw() == {T0: 5.0, T0 + SLOT_MS: 4.5} and acc.decision == "ACCEPTED"
    assert signer_of(acc) == Account.from_key(SIM_DSO_KEY).address
    assert CliRunner().invoke(app, args).exit_code == 2  # neither --kw nor --reject
