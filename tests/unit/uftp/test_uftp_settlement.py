"""A DSO's FlexSettlement against the platform's settlement records (pure: connectors/uftp/settlement.py)."""

from __future__ import annotations

import json
from datetime import date

from shapeshifter_uftp.uftp import AcceptedDisputed

from connectors.uftp.isp import IspFrame
from connectors.uftp.settlement import dispute_of, settled_slots, settlement_statuses
from tools.sim.uftp_dso import TIME_ZONE, flex_settlement

DAY = date(2027, 3, 10)
FRAME = IspFrame(DAY, TIME_ZONE, 15)


def _record(prosumer: str, isp: int, target_wh: int, delivered_wh: int) -> dict:
    start = FRAME.start_ms(isp)
    return {
        "window_start": start,
        "window_end": start + 900_000,
        "party_id": prosumer,
        "details": json.dumps({"target_wh": target_wh, "delivered_wh": delivered_wh}),
    }


# two prosumers share the order: ISP 41 ordered 2 x 1,250 Wh (10 kW), delivered 2,500 Wh; ISP 42 delivered 2,000 Wh
OURS = settled_slots(
    [_record("p1", 41, 1250, 1250), _record("p2", 41, 1250, 1250), _record("p1", 42, 1250, 1000)]
    + [_record("p2", 42, 1250, 1000)]
)


def _order(isps: dict[int, tuple[int, int]]):
    return flex_settlement(DAY, {"ord-1": isps}).flex_order_settlements[0]


def test_slots_sum_the_prosumers_of_the_order():
    slot = OURS[FRAME.start_ms(42)]
    assert (slot.ordered_wh, slot.delivered_wh, slot.prosumers, slot.minutes) == (2500, 2000, 2, 15)
    assert slot.watts(slot.delivered_wh) == 8000


def test_true_figures_are_accepted_within_the_rounding_tolerance():
    assert dispute_of(_order({41: (-10_000, -10_000), 42: (-10_000, -8_000)}), TIME_ZONE, OURS) is None
    # 1 % of 10 kW = 100 W: 8,099 W is still the same delivery, 8,101 W is not
    assert dispute_of(_order({42: (-10_000, -8_099)}), TIME_ZONE, OURS) is None
    assert (
        dispute_of(_order({42: (-10_000, -8_101)}), TIME_ZONE, OURS)
        == "ISP 42: delivered 8101 W, measured 8000 W"
    )


def test_every_differing_isp_is_named():
    reason = dispute_of(
        _order({41: (-12_000, -10_000), 42: (-10_000, -10_000), 43: (-1_000, -1_000)}), TIME_ZONE, OURS
    )
    assert reason == (
        "ISP 41: ordered 12000 W, ours 10000 W; ISP 42: delivered 10000 W, measured 8000 W; "
        "ISP 43: no delivery on record"
    )


def test_an_isp_run_is_checked_isp_by_isp():
    order = _order({41: (-10_000, -10_000)})
    order.isps[0].duration = 2  # ISPs 41 and 42 with one figure: 42 delivered less
    assert dispute_of(order, TIME_ZONE, OURS) == "ISP 42: delivered 10000 W, measured 8000 W"


def test_unknown_and_unsettled_orders_are_disputed():
    assert dispute_of(_order({41: (-1, -1)}), TIME_ZONE, None) == "unknown FlexOrder ord-1"
    assert dispute_of(_order({41: (-1, -1)}), TIME_ZONE, {}) == "FlexOrder ord-1: no settlement on record yet"


def test_one_status_per_order():
    message = flex_settlement(DAY, {"ord-1": {41: (-10_000, -10_000)}, "ord-2": {41: (-5, -5)}})
    statuses = settlement_statuses(message, TIME_ZONE, lambda ref: OURS if ref == "ord-1" else None)
    assert [(s.order_reference, s.disposition) for s in statuses] == [
        ("ord-1", AcceptedDisputed.ACCEPTED),
        ("ord-2", AcceptedDisputed.DISPUTED),
    ]


def test_ordered_is_what_we_accepted_not_the_targets_of_a_re_dispatched_slot():
    # ISP 41: 10 kW accepted; p1 defected half-way and kept its 1,250 Wh target, p3 took over 625 Wh more
    records = [_record("p1", 41, 1250, 625), _record("p2", 41, 1250, 1250), _record("p3", 41, 625, 625)]
    claimed = _order({41: (-10_000, -10_000)})
    assert dispute_of(claimed, TIME_ZONE, settled_slots(records, {FRAME.start_ms(41): 10.0})) is None
    assert dispute_of(claimed, TIME_ZONE, settled_slots(records)) == "ISP 41: ordered 10000 W, ours 12500 W"
