"""Shared by the OpenADR VTN tests: the topics the VTN uses, a flex order for given prosumers, the VTN's asyncio
loop in a thread."""

from __future__ import annotations

import asyncio
import threading
import time

from confluent_kafka import Producer

from edream.serde import Serde

#: the VTN's input first, then what it publishes
TOPICS = (
    "flex.orders.v1",
    "flex.dr.responses.v1",
    "meter.readings.raw.v1",
    "platform.rejections.v1",
    "platform.deadletter.v1",
)
SLOT_MS = 900_000


def now_ms() -> int:
    return int(time.time() * 1000)


def next_day_slot() -> int:
    """A quarter-hour boundary about a day ahead (UTC epoch ms): orders for it are not over during a test."""
    return (now_ms() // SLOT_MS + 96) * SLOT_MS


def flex_order(order_id: str, allocations: list[tuple[str, int, float]], revision: int = 1) -> dict:
    """An ACTIVE REDUCE FlexOrder of 15-minute slots; ``allocations``: (prosumer_id, slot_start ms, kW)."""
    return {
        "event_id": f"evt-{order_id}-r{revision}",
        "order_id": order_id,
        "offer_id": f"offer-{order_id}",
        "request_id": f"req-{order_id}",
        "revision": revision,
        "direction": "REDUCE",
        "status": "ACTIVE",
        "allocations": [
            {"prosumer_id": p, "slot_start": slot, "kw": kw, "baseline_kw": 6.0}
            for p, slot, kw in allocations
        ],
        "slot_minutes": 15,
        "created_at": now_ms(),
    }


def publish_order(bootstrap: str, serde: Serde, topic: str, order: dict) -> None:
    prod = Producer({"bootstrap.servers": bootstrap})
    prod.produce(topic, serde.encode("FlexOrder", order, topic), key=order["order_id"].encode())
    assert prod.flush(10) == 0, "the order was not delivered"


class LoopThread:
    """An asyncio loop in a daemon thread (the VTN and openleadr's VEN are asyncio programs)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def vpp_capability(request_id: str, first_slot: int, setpoints: dict[str, list[float]]) -> dict:
    """A feasible VppCapability (avro/VppCapability.avsc) of 15-minute slots from ``first_slot`` (UTC epoch ms):
    ``setpoints``: asset -> generator set point per slot, kW (an empty list: a reserve-only asset)."""
    n = max(len(v) for v in setpoints.values())
    return {
        "event_id": f"{request_id}/capability",
        "request_id": request_id,
        "vpp_id": "vpp-test",
        "service": "STATIC_FFR",
        "feasible": True,
        "shortfall_reason": None,
        "capacity_kw": 10.0,
        "slots": [
            {
                "start": first_slot + k * SLOT_MS,
                "end": first_slot + (k + 1) * SLOT_MS,
                "capacity_kw": 10.0,
                "capacity_low_kw": 8.0,
                "capacity_high_kw": 12.0,
            }
            for k in range(n)
        ],
        "assignments": [
            {
                "asset_id": a,
                "kind": "GENERATOR" if kw else "BESS",
                "reserve_kw": [5.0] * n,
                "setpoint_kw": kw,
                "response_s": 30.0,
            }
            for a, kw in setpoints.items()
        ],
        "excluded": [],
        "generation_cost_micro": 1000,
        "solve_ms": 5,
        "computed_at": now_ms(),
        "version": 1,
    }
