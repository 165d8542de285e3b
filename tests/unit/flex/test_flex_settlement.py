from __future__ import annotations

import json

import pytest

from streams.flex.enrolment import ContractTerms
from streams.flex.settlement import energy_wh, money_micro, settle
from streams.flex.verification import DeviationEvent

T = 1_795_428_000_000  # 2026-11-23T10:00Z
TERMS = ContractTerms(
    aggregator_id="a",
    tolerance_range=0.1,
    multiplier=1.5,
    incentive_micro_per_kwh=200_000,
    penalty_micro_per_kwh=300_000,
)


def final(delivered: float, verdict: str, target: float = 2.0) -> DeviationEvent:
    return DeviationEvent("ord-1", "p7", T, T + 900_000, "FINAL", target, delivered, 0.1, verdict)


@pytest.mark.parametrize(
    ("delivered", "verdict", "wh", "amount"),
    [
        (2.0, "WITHIN", 500, 150_000),  # 500 Wh x 0.2 EUR/kWh x 1.5 = 0.15 EUR
        (1.85, "WITHIN", 462, 138_600),  # 462.5 Wh rounds half-even to 462
        (1.0, "SHORTFALL", 250, -112_500),  # 250 Wh short x 0.3 x 1.5
        (3.0, "OVERDELIVERY", 750, -112_500),  # 250 Wh over x 0.3 x 1.5
        (-1.0, "SHORTFALL", -250, -337_500),  # went the wrong way: 750 Wh short
    ],
)
def test_hand_computed(delivered, verdict, wh, amount):
    s = settle(final(delivered, verdict), TERMS, 15, computed_at=T + 900_000)
    assert (s.quantity_wh, s.amount_micro) == (wh, amount)
    rec = s.to_avro()
    assert rec["kind"] == "FLEX" and rec["window_id"] == "2026-11-23T10:00Z/15m"
    assert rec["window_end"] - rec["window_start"] == 900_000 and rec["party_id"] == "p7"
    assert json.loads(rec["details"])["multiplier_ppm"] == 1_500_000


def test_ids_are_deterministic():
    a = settle(final(2.0, "WITHIN"), TERMS, 15, computed_at=1)
    b = settle(final(2.0, "WITHIN"), TERMS, 15, computed_at=1)
    other = settle(DeviationEvent("ord-2", "p7", T, T, "FINAL", 2.0, 2.0, 0.1, "WITHIN"), TERMS, 15, 1)
    assert a == b and a.settlement_id != other.settlement_id
    assert a.event_id == b.event_id


def test_money_rounding_exact():
    assert money_micro(1, 1, 0.5) == 0  # 0.0005 -> 0
    assert money_micro(3, 500, 1.0) == 2  # 1.5 -> 2 (half-even)
    assert money_micro(1000, 333_333, 0.1) == 33_333  # no float drift: 33333.3
    assert energy_wh(0.1, 15) == 25


def test_projected_not_settled():
    with pytest.raises(ValueError):
        settle(DeviationEvent("o", "p", T, T, "PROJECTED", 1, 1, 0.1, "WITHIN"), TERMS, 15, 1)
