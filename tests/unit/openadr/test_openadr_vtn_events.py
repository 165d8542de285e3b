"""The VTN's event book on openleadr's real server object (no HTTP, no broker): a plan's events are queued for the
prosumer's VEN, a later revision cancels the earlier event, re-reads and older revisions change nothing, and a
cancelled order cancels its event."""

from __future__ import annotations

import pytest

from connectors.openadr.config import parse_config
from connectors.openadr.events import plan_order
from connectors.openadr.vtn import OpenAdrVtn
from edream.embedded.process import free_port

Q = 900_000
T0 = 1_900_000_000_000 - (1_900_000_000_000 % Q)


def order(revision: int, kw: float, status: str = "ACTIVE") -> dict:
    return {
        "order_id": "o1",
        "revision": revision,
        "direction": "REDUCE",
        "status": status,
        "slot_minutes": 15,
        "allocations": [{"prosumer_id": "p1", "slot_start": T0, "kw": kw, "baseline_kw": 5.0}],
    }


@pytest.fixture
def vtn():
    cfg = parse_config(
        {"vtn": {"port": free_port()}, "vens": [{"ven_id": "ven-1", "ven_name": "s1", "prosumer_id": "p1"}]}
    )
    yield OpenAdrVtn(cfg, {"bootstrap.servers": "127.0.0.1:1"}, None, {}, lambda: T0 - Q)
    OpenAdrVtn.release_library_state()


def book(vtn: OpenAdrVtn) -> list[tuple[str, str, int, float]]:
    return [
        (
            e.event_descriptor.event_id,
            e.event_descriptor.event_status,
            e.event_descriptor.modification_number,
            e.event_signals[0].intervals[0].signal_payload,
        )
        for e in vtn.server.events.get("ven-1", [])
    ]


def test_revisions_replace_cancel_and_rereads_are_ignored(vtn):
    def apply(rec):
        vtn.apply(plan_order(rec, ["p1"], T0 - Q))

    apply(order(1, 2.0))
    assert book(vtn) == [("o1~r1~p1", "far", 0, -2.0)]
    apply(order(2, 1.0, "AMENDED"))
    apply(order(1, 2.0))  # re-read of the older revision
    apply(order(2, 1.0, "AMENDED"))  # and of the current one
    assert book(vtn) == [("o1~r1~p1", "cancelled", 1, -2.0), ("o1~r2~p1", "far", 0, -1.0)]
    apply(order(3, 1.0, "CANCELLED"))
    assert book(vtn)[1][:3] == ("o1~r2~p1", "cancelled", 1)


def test_an_older_revision_after_a_newer_one_is_not_served(vtn):
    vtn.apply(plan_order(order(2, 1.0, "AMENDED"), ["p1"], T0 - Q))
    vtn.apply(plan_order(order(1, 2.0), ["p1"], T0 - Q))
    assert book(vtn) == [("o1~r2~p1", "far", 0, -1.0)]
