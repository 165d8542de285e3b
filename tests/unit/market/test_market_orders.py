"""EIP-712 signing, order validation with rejection codes, gate closure by event time, batch orders, registry."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from market_fixtures import MemoryState, processor
from market_fixtures import order as fixture_order

from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder, OrderTerms
from streams.market.orders import EnergyType, Side
from streams.market.participants import Participant, ParticipantRegistry, ParticipantStatus
from streams.market.profile import net_profile_wh, orders_from_profile
from streams.market.signing import order_id, recover_signer, sign_order, verify_order
from streams.market.validation import OrderValidator, RejectCode, Verdict

SLOT = 1_795_435_200_000  # 2026-11-23T12:00Z, on the 15-min grid
MIN = 60_000
CFG = MarketConfig(price_floor_micro_per_kwh=0, price_cap_micro_per_kwh=500_000)
ALICE = Account.from_key("0x" + "11" * 32)
MALLORY = Account.from_key("0x" + "22" * 32)


def terms(**kw) -> OrderTerms:
    base = dict(
        participant_id="P-1",
        address=ALICE.address,
        session_id=CFG.session_id(SLOT),
        side=Side.BID,
        slot_start=SLOT,
        slot_minutes=15,
        quantity_wh=2000,
        limit_price_micro_per_kwh=120_000,
        energy_type=EnergyType.GREEN,
        client_ts=SLOT - 40 * MIN,
        nonce=1,
    )
    base.update(kw)
    return OrderTerms(**base)


def signed(key=ALICE, **kw) -> MarketOrder:
    return sign_order(terms(**kw), key.key, CFG.chain_id)


@pytest.fixture
def validator() -> OrderValidator:
    reg = ParticipantRegistry(
        [
            Participant(
                participant_id="P-1", prosumer_id="pro-1", eth_address=ALICE.address, meters=("M-1",)
            ),
            Participant(
                participant_id="P-2",
                prosumer_id="pro-2",
                eth_address=MALLORY.address,
                status=ParticipantStatus.SUSPENDED,
            ),
        ]
    )
    return OrderValidator(CFG, reg)


def validate(validator: OrderValidator, order: MarketOrder, closed: bool = False, nonces=None) -> Verdict:
    """Terms, then admission into a session whose gate is ``closed`` and whose used nonces are ``nonces``
    ((address, nonce) -> order id; an accepted order's nonce is recorded there)."""
    nonces = {} if nonces is None else nonces
    verdict = validator.check_terms(order)
    if not verdict.accepted:
        return verdict
    key = (order.address.lower(), order.nonce)
    verdict = validator.admit(order, closed, nonces.get(key))
    if verdict.accepted:
        nonces[key] = order.order_id
    return verdict


def test_session_ids_and_gate_closure():
    assert CFG.session_id(SLOT) == "p2p-local/2026-11-23T12:00Z/15m"
    assert CFG.gate_closure(SLOT) == SLOT - 15 * MIN
    assert CFG.slot_of(SLOT + 14 * MIN) == SLOT and CFG.slot_of(SLOT + 15 * MIN) == SLOT + 15 * MIN
    with pytest.raises(ValueError, match="floor"):
        MarketConfig(price_floor_micro_per_kwh=10, price_cap_micro_per_kwh=5)


def test_signature_round_trip_and_deterministic_id():
    o = signed()
    assert (
        o.order_id == order_id(o.terms, CFG.chain_id)
        and o.order_id.startswith("0x")
        and len(o.order_id) == 66
    )
    assert signed().order_id == o.order_id  # same terms -> same id
    assert signed(nonce=2).order_id != o.order_id
    assert recover_signer(o, CFG.chain_id) == ALICE.address
    assert verify_order(o, CFG.chain_id)
    assert not verify_order(o, CFG.chain_id + 1)  # signed for another chain
    assert MarketOrder.from_avro(o.to_avro()) == o


def test_tampered_or_forged_orders_fail_verification():
    o = signed()
    assert not verify_order(replace(o, quantity_wh=9000), CFG.chain_id)  # terms changed after signing
    tampered = replace(o, quantity_wh=9000)
    assert not verify_order(replace(tampered, order_id=order_id(tampered.terms, CFG.chain_id)), CFG.chain_id)
    forged = sign_order(terms(), MALLORY.key, CFG.chain_id)  # claims Alice's address, signed by Mallory
    assert not verify_order(forged, CFG.chain_id)
    assert not verify_order(replace(o, signature=""), CFG.chain_id)
    assert not verify_order(replace(o, signature="0xdeadbeef"), CFG.chain_id)


def test_valid_order_is_accepted_once_and_redelivery_is_a_duplicate(validator):
    o, nonces = signed(), {}
    v = validate(validator, o, nonces=nonces)
    assert v.accepted and not v.duplicate and v.code is None
    again = validate(validator, o, nonces=nonces)
    assert again.accepted and again.duplicate


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (lambda: signed(participant_id="P-404"), RejectCode.UNKNOWN_PARTICIPANT),
        (lambda: replace(signed(), signature=""), RejectCode.BAD_SIGNATURE),
        (lambda: sign_order(terms(), MALLORY.key, CFG.chain_id), RejectCode.BAD_SIGNATURE),
        (lambda: replace(signed(), limit_price_micro_per_kwh=1), RejectCode.BAD_SIGNATURE),
        (lambda: signed(MALLORY, participant_id="P-1", address=MALLORY.address), RejectCode.BAD_SIGNATURE),
        (
            lambda: signed(MALLORY, participant_id="P-2", address=MALLORY.address),
            RejectCode.INACTIVE_PARTICIPANT,
        ),
        (lambda: signed(session_id="p2p-local/other"), RejectCode.UNKNOWN_SESSION),
        (lambda: signed(slot_start=SLOT + 1), RejectCode.UNKNOWN_SESSION),
        (lambda: signed(slot_minutes=60), RejectCode.UNKNOWN_SESSION),
        (lambda: signed(quantity_wh=0), RejectCode.NON_POSITIVE_QUANTITY),
        (lambda: signed(quantity_wh=-5), RejectCode.NON_POSITIVE_QUANTITY),
        (lambda: signed(limit_price_micro_per_kwh=500_001), RejectCode.PRICE_OUT_OF_BOUNDS),
        (lambda: signed(limit_price_micro_per_kwh=-1), RejectCode.PRICE_OUT_OF_BOUNDS),
        (lambda: signed(client_ts=SLOT - 15 * MIN), RejectCode.GATE_CLOSED),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_rejection_codes(validator, order, code):
    v = validate(validator, order())
    assert not v.accepted and v.code is code and v.reason


def test_price_bounds_are_inclusive(validator):
    assert validate(validator, signed(limit_price_micro_per_kwh=500_000, nonce=7)).accepted
    assert validate(validator, signed(limit_price_micro_per_kwh=0, nonce=8)).accepted


def test_replayed_nonce_with_other_terms_is_rejected(validator):
    nonces = {}
    assert validate(validator, signed(nonce=5), nonces=nonces).accepted
    v = validate(validator, signed(nonce=5, quantity_wh=1), nonces=nonces)
    assert (v.accepted, v.code) == (False, RejectCode.REPLAYED_NONCE)
    assert validate(validator, signed(nonce=6, quantity_wh=1), nonces=nonces).accepted


def test_backdated_order_arriving_after_gate_closure_is_rejected(validator):
    """The session's clock passed the gate (e.g. a timer tick at the gate): a client_ts before it does not help."""
    v = validate(validator, signed(client_ts=SLOT - 40 * MIN), closed=True)
    assert v.code is RejectCode.GATE_CLOSED


def test_gate_closes_at_the_clock_of_the_session_once_and_in_order():
    """Gate closure of two sessions by ticks (a tick never goes back), with allowed lateness delaying it."""
    for lateness in (0, 5 * MIN):
        cfg = CFG.model_copy(update={"allowed_lateness_ms": lateness, "price_cap_micro_per_kwh": 1_000_000})
        p, state = processor(cfg), MemoryState()
        for slot in (SLOT + 15 * MIN, SLOT):
            p.on_order(
                fixture_order(cfg, 0, Side.BID, slot, SLOT - 60 * MIN),
                SLOT - 59 * MIN,
                state,
                SLOT - 59 * MIN,
            )

        def cleared(now, p=p, state=state):
            return [o.record["slot_start"] for o in p.on_tick(now, state) if o.schema == "ClearingResult"]

        assert cleared(SLOT - 16 * MIN + lateness) == []
        assert cleared(SLOT - 15 * MIN + lateness - 1) == []
        assert cleared(SLOT - 15 * MIN + lateness) == [SLOT]  # gate closure of SLOT reached
        assert cleared(SLOT - 20 * MIN) == [] and cleared(SLOT - 15 * MIN + lateness) == []
        assert cleared(SLOT + 60 * MIN) == [SLOT + 15 * MIN]
        assert cleared(SLOT + 90 * MIN) == []


def test_orders_from_a_24_value_profile():
    cfg = MarketConfig(slot_minutes=60, gate_closure_lead_ms=60 * MIN)
    energy = [
        20,
        40,
        -30,
        0,
        50,
        70,
        30,
        45,
        45,
        -23,
        -56,
        34,
        76,
        34,
        34,
        65,
        34,
        23,
        76,
        34,
        54,
        45,
        23,
        34,
    ]
    prices = [20, 40, 30, 40, 50, 70, 30, 45, 45, 23, 56, 34, 76, 34, 34, 65, 34, 23, 76, 34, 54, 45, 23, 34]
    day = SLOT - 12 * 60 * MIN
    orders = orders_from_profile(cfg, "P-1", ALICE.address, ALICE.key, day, energy, prices, day - 1, 100)
    assert len(orders) == 23  # the zero hour gets no order
    by_slot = {(o.slot_start - day) // (60 * MIN): o for o in orders}
    assert 3 not in by_slot
    assert (by_slot[2].side, by_slot[2].quantity_wh, by_slot[2].limit_price_micro_per_kwh) == (
        Side.OFFER,
        30,
        30,
    )
    assert (by_slot[0].side, by_slot[0].quantity_wh, by_slot[0].nonce) == (Side.BID, 20, 100)
    assert by_slot[23].session_id == cfg.session_id(day + 23 * 60 * MIN) and by_slot[23].nonce == 123
    assert all(verify_order(o, cfg.chain_id) for o in orders)
    with pytest.raises(ValueError):
        orders_from_profile(cfg, "P-1", ALICE.address, ALICE.key, day, energy, prices[:-1], day, 0)
    assert net_profile_wh([1000.4, 200.0], [300.0, 900.6]) == [700, -701]


def test_registry_latest_version_wins_and_lookups():
    reg = ParticipantRegistry()
    p1 = Participant(participant_id="P-1", prosumer_id="x", eth_address=ALICE.address.lower(), updated_at=10)
    assert p1.eth_address == ALICE.address  # normalised to EIP-55
    assert reg.upsert(p1)
    assert not reg.upsert(p1.model_copy(update={"status": ParticipantStatus.SUSPENDED, "updated_at": 5}))
    assert reg.get("P-1").active
    assert reg.upsert(p1.model_copy(update={"status": ParticipantStatus.SUSPENDED, "updated_at": 11}))
    assert not reg.get("P-1").active
    assert reg.by_address(ALICE.address.upper().replace("0X", "0x")).participant_id == "P-1"
    with pytest.raises(ValueError, match="Ethereum address"):
        Participant(participant_id="P", prosumer_id="x", eth_address="0x1234")
    assert Participant.from_avro(p1.to_avro()) == p1
