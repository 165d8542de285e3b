"""Flex settlement per prosumer and slot (T40 ``incentive/penalty``), integer currency micro-units.

Formula (the seed leaves it open; decided here):

* energies: ``target_wh = round(target_kw * h * 1000)``, ``delivered_wh = round(delivered_kw * h * 1000)``, where
  ``delivered_kw`` is the FINAL verdict's slot average, i.e. the delivered energy measured by the platform's one
  integration rule (:mod:`streams.energy_integration`, the one interval energy uses) divided by the slot length;
  nothing is integrated here;
* FINAL verdict WITHIN the band: incentive ``+ delivered_wh * incentive_rate * multiplier / 1000``;
* outside the band (SHORTFALL or OVERDELIVERY): penalty ``- |delivered_wh - target_wh| * penalty_rate *
  multiplier / 1000``, no incentive;
* rates are micro-units per kWh from the contract; exact rational arithmetic, rounded half-to-even once.

Ids are deterministic (order, prosumer, slot) so replays produce identical records.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from streams.flex.enrolment import ContractTerms, ppm
from streams.flex.ids import stable_id, window_id
from streams.flex.verification import DeviationEvent
from streams.settlement.canonical import canonical_bytes
from streams.settlement.record import SettlementRecord


def energy_wh(kw: float, slot_minutes: int) -> int:
    """Slot-average kW -> Wh over the slot (rounded half-to-even)."""
    return round(Fraction(repr(float(kw))) * slot_minutes * 1000 / 60)


def money_micro(wh: int, rate_micro_per_kwh: int, multiplier: float) -> int:
    """``wh * rate * multiplier / 1000`` rounded half-to-even (multiplier taken as its decimal literal)."""
    return round(Fraction(wh) * rate_micro_per_kwh * Fraction(repr(float(multiplier))) / 1000)


@dataclass(frozen=True)
class FlexSettlement(SettlementRecord):
    """Incentive or penalty of one prosumer for one order slot (kind FLEX; ``reference_id`` = order id)."""

    KIND: ClassVar[str] = "FLEX"


def settle(
    final: DeviationEvent, terms: ContractTerms, slot_minutes: int, computed_at: int
) -> FlexSettlement:
    """Settlement of one FINAL verdict under the prosumer's contract terms."""
    if final.kind != "FINAL":
        raise ValueError("only FINAL verdicts are settled")
    target_wh = energy_wh(final.target_kw, slot_minutes)
    delivered_wh = energy_wh(final.delivered_kw, slot_minutes)
    if final.verdict == "WITHIN":
        amount = money_micro(max(delivered_wh, 0), terms.incentive_micro_per_kwh, terms.multiplier)
    else:
        amount = -money_micro(abs(delivered_wh - target_wh), terms.penalty_micro_per_kwh, terms.multiplier)
    details = canonical_bytes(
        {
            "target_wh": target_wh,
            "delivered_wh": delivered_wh,
            "verdict": final.verdict,
            "tolerance_ppm": ppm(final.tolerance),
            "multiplier_ppm": ppm(terms.multiplier),
            "incentive_micro_per_kwh": terms.incentive_micro_per_kwh,
            "penalty_micro_per_kwh": terms.penalty_micro_per_kwh,
        }
    ).decode("utf-8")
    return FlexSettlement(
        settlement_id=stable_id("stl", "FLEX", final.order_id, final.prosumer_id, final.slot_start),
        window_id=window_id(final.slot_start, slot_minutes),
        window_start=final.slot_start,
        window_end=final.slot_start + slot_minutes * 60_000,
        party_id=final.prosumer_id,
        reference_id=final.order_id,
        quantity_wh=delivered_wh,
        amount_micro=amount,
        currency=terms.currency,
        details=details,
        computed_at=computed_at,
    )
