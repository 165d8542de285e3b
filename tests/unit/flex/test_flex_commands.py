"""Dispatch through connectors: EV set-points from orders on time, restore after, deterministic ids, timers."""

from __future__ import annotations

from streams.flex.desk import FlexDesk
from streams.flex.enrolment import ContractTerms, EvCharger, ProsumerRecord, Registry
from tools.sim.flex_scenario import SLOT_MS, T0, flat_outlook, reduce_request, sim_dsos

NOW = T0 - 3_600_000


def ev_prosumer(pid: str, device: str | None, incentive: int) -> ProsumerRecord:
    charger = EvCharger(f"ev-{pid}", device_id=device, target_id=f"CB-{pid}" if device else None)
    return ProsumerRecord(
        pid, "terni-1", ContractTerms("agg-1", incentive_micro_per_kwh=incentive), (charger,)
    )


def desk_with_order(kw: float) -> FlexDesk:
    reg = Registry()
    reg.upsert(ev_prosumer("p-ctl", "ev-api-1", 100_000))  # controllable, cheapest
    reg.upsert(ev_prosumer("p-hem", None, 110_000))  # no connector binding: the order event is its dispatch
    desk = FlexDesk(reg, flat_outlook, dsos=sim_dsos())
    [offer] = desk.submit(reduce_request(kw=kw, n_slots=2), NOW)
    [order] = desk.accept(offer.record["offer_id"], NOW)
    assert order.schema == "FlexOrder"
    return desk


def commands(outs) -> list[dict]:
    assert all(o.topic == "device.commands.v1" for o in outs if o.schema == "DeviceCommand")
    return [o.record for o in outs if o.schema == "DeviceCommand"]


def test_set_points_go_out_at_slot_start_only_for_controllable_chargers_and_nominal_is_restored_after():
    desk = desk_with_order(kw=2.0)  # 16 A x 230 V = 3.68 kW nominal; deliver 2 kW -> charge 1.68 kW -> 7 A
    assert commands(desk.on_timer(T0 - 1_000)) == []  # before the slot: nothing due
    [c1] = commands(desk.on_timer(T0 + 1_000))
    assert (c1["device_id"], c1["target_id"], c1["prosumer_id"], c1["action"], c1["value"]) == (
        "ev-api-1",
        "CB-p-ctl",
        "p-ctl",
        "SET_CURRENT_A",
        7.0,
    )
    assert (c1["valid_from"], c1["valid_until"]) == (T0 + 1_000, T0 + SLOT_MS)
    assert commands(desk.on_timer(T0 + 5_000)) == []  # already sent
    [c2] = commands(desk.on_timer(T0 + SLOT_MS + 1_000))
    assert c2["value"] == 7.0 and c2["command_id"] != c1["command_id"]
    [restore] = commands(desk.on_timer(T0 + 2 * SLOT_MS + 1_000))
    assert (restore["value"], restore["valid_until"]) == (16.0, T0 + 2 * SLOT_MS + 1_000 + 15 * 60_000)
    assert commands(desk.on_timer(T0 + 2 * SLOT_MS + 60_000)) == []


def test_full_reduction_stops_charging_and_readings_drive_commands_on_event_time():
    desk = desk_with_order(kw=3.68)
    outs = desk.on_reading("p-ctl", T0 + 5_000, 0.0)
    [c] = commands(outs)
    assert c["value"] == 0.0  # stop charging
    again = desk_with_order(kw=3.68)  # a replay derives the same command id
    assert commands(again.on_reading("p-ctl", T0 + 5_000, 0.0))[0]["command_id"] == c["command_id"]


def test_timer_closes_slots_without_readings_and_settles_them():
    desk = desk_with_order(kw=2.0)
    assert [o for o in desk.on_timer(T0 + SLOT_MS + 60_000) if o.schema == "Deviation"] == []  # grace 2 min
    outs = desk.on_timer(T0 + SLOT_MS + desk.close_after_ms)
    finals = [o.record for o in outs if o.schema == "Deviation"]
    assert [(f["kind"], f["verdict"], f["delivered_kw"]) for f in finals] == [("FINAL", "SHORTFALL", 0.0)]
    assert [o.schema for o in outs].count("Settlement") == 1


def test_prune_forgets_completed_orders_after_retention():
    desk = desk_with_order(kw=2.0)
    desk.on_timer(T0 + 2 * SLOT_MS + desk.close_after_ms)
    [order] = desk.orders.values()
    assert order.status == "COMPLETED" and desk.settlements
    desk.on_timer(T0 + 2 * SLOT_MS + desk.retention_ms + 1)
    assert desk.orders == {} and desk.settlements == {} and desk.requests == {} and desk.offers == {}
