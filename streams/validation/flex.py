"""The flex contracts: a DSO's ``FlexRequest`` (avro/FlexRequest.avsc) and a prosumer's ``FlexEnrolment``
(its :class:`~streams.flex.enrolment.ProsumerRecord`).

Bounds only (ids, lengths, finite numbers, kW and horizon limits, event time relative to the wall clock); the
business rules that need state (known area, overlapping orders, duplicates, slots already started) stay in
:mod:`streams.flex.validation`, which runs these checks first.
"""

from __future__ import annotations

from dataclasses import asdict

from streams.flex.enrolment import ProsumerRecord
from streams.flex.requests import FlexRequest
from streams.validation.fields import Checker, FieldError
from streams.validation.limits import Limits, current_limits

#: Largest money rate, currency micro-units per kWh (a million currency units per kWh): far above any real
#: tariff, far below int64 overflow in settlement.
MAX_RATE_MICRO_PER_KWH = 10**12
#: Largest incentive/penalty multiplier of a contract.
MAX_MULTIPLIER = 1000.0
CURRENCY_LENGTH = 3


def check_flex_request(req: FlexRequest, now: int, limits: Limits | None = None) -> list[FieldError]:
    """Bounds of one request against the wall clock ``now`` (UTC epoch ms): ``created_at`` not ahead of now by
    more than the clock skew nor older than ``max_past_ms``; every slot and the deadline within ``horizon_ms``
    of now; at most a horizon's worth of slots; each slot's kW at most ``max_flex_kw`` (kW > 0 and finiteness
    are business codes of :func:`streams.flex.validation.validate_request`)."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("request_id", req.request_id)
    c.identifier("dso_id", req.dso_id)
    c.identifier("area_id", req.area_id)
    c.text("currency", req.currency, max_len=CURRENCY_LENGTH)
    c.event_time("created_at", req.created_at, now, lim.max_past_ms, lim.max_future_ms)
    c.number(
        "reward_micro_per_kwh",
        req.reward_micro_per_kwh,
        -MAX_RATE_MICRO_PER_KWH,
        MAX_RATE_MICRO_PER_KWH,
        integer=True,
    )
    horizon_end = now + lim.horizon_ms
    if req.deadline > horizon_end:
        c.fail("deadline", "beyond_horizon", f"{req.deadline} is after now + horizon ({horizon_end})")
    if req.slot_minutes > 0:
        max_slots = max(1, lim.horizon_ms // req.slot_ms)
        if len(req.slots) > max_slots:
            c.fail("slots", "too_many", f"{len(req.slots)} slots, at most {max_slots} within the horizon")
            return c.errors
    for i, s in enumerate(req.slots):
        if s.slot_start > horizon_end:
            c.fail(
                f"slots[{i}].slot_start",
                "beyond_horizon",
                f"{s.slot_start} is after now + horizon ({horizon_end})",
            )
        if s.kw > lim.max_flex_kw:  # NaN compares False: NEGATIVE_KW of validate_request
            c.fail(
                f"slots[{i}].kw", "value_out_of_range", f"{s.kw} kW above the limit of {lim.max_flex_kw} kW"
            )
    return c.errors


def check_enrolment(record: ProsumerRecord, limits: Limits | None = None) -> list[FieldError]:
    """Bounds of one enrolment: ids, finite and bounded contract numbers, asset sizes at most the reading power
    limit (``max_reading_kw``), connection limit too."""
    lim = limits or current_limits()
    kw_max = lim.max_reading_kw
    c = Checker()
    c.identifier("prosumer_id", record.prosumer_id)
    c.identifier("area_id", record.area_id)
    t = record.terms
    c.identifier("terms.aggregator_id", t.aggregator_id)
    c.text("terms.currency", t.currency, max_len=CURRENCY_LENGTH)
    c.number("terms.tolerance_range", t.tolerance_range, 0.0, 1.0)
    c.number("terms.multiplier", t.multiplier, 0.0, MAX_MULTIPLIER)
    for name in ("incentive_micro_per_kwh", "penalty_micro_per_kwh"):
        c.number(f"terms.{name}", getattr(t, name), 0, MAX_RATE_MICRO_PER_KWH, integer=True)
    for name in ("valid_from", "valid_until"):
        c.number(f"terms.{name}", getattr(t, name), 0, 2**53, integer=True)
    c.number("connection_kw", record.connection_kw, 0.0, kw_max, unit="kW")
    for i, asset in enumerate(record.assets):
        where = f"assets[{i}]"
        for name, value in asdict(asset).items():
            if name.endswith("_id"):
                c.identifier(f"{where}.{name}", value, required=name == "asset_id")
            elif name in ("kw", "kwp", "max_kw", "capacity_kwh"):
                c.number(f"{where}.{name}", value, 0.0, kw_max, unit="kW or kWh")
            elif name == "voltage_v":
                c.number(f"{where}.{name}", value, 1.0, 1000.0, unit="V")
            elif isinstance(value, float):
                c.number(f"{where}.{name}", value, -1e6, 1e6)
    return c.errors
