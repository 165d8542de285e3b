"""VPP dispatch -> OpenADR 2.0b DR events for the sites that host VPP assets (pure).

A ``VppCapability`` answer (``vpp.capability.v1``) carries the unit commitment and economic dispatch of the VPP's
generators for the requested window: a set point per slot (kW generated). For each assigned asset that a VEN's
site hosts (``vpp_assets`` in the VTN's config), the set points become one event with one ``LOAD_DISPATCH`` signal of
type ``setpoint``: the site's asked net load per slot, in kW, so a generation set point is negative (50 kW generated
= -50 kW of load). Only feasible answers dispatch; slots that have ended are left out; assets without set points
(reserve only: batteries, curtailable loads) get no event, since a reserve is held, not dispatched.

Ids: the event ``vpp~<request_id>~v<version>~<asset_id>``; its "order" (what a later version replaces, and the
``order_id`` of the site's ``DrEventResponse``) ``vpp:<request_id>:<asset_id>``. A later version of the answer
replaces the event; an infeasible later version cancels it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.openadr.events import DispatchEvent, OrderPlan, intervals_of
from streams.flex.requests import to_ms

SETPOINT = "setpoint"


def dispatch_key(request_id: str, asset_id: str) -> str:
    return f"vpp:{request_id}:{asset_id}"


def plan_dispatch(answer: Mapping[str, Any], asset_sites: Mapping[str, str], now_ms: int) -> OrderPlan:
    """The events of a decoded VppCapability for the assets a VEN hosts (``asset_sites``: asset id -> the VEN's
    prosumer); ``now_ms``: UTC epoch ms."""
    request_id, version = answer["request_id"], int(answer.get("version") or 1)
    slots = answer["slots"]
    mine = [a for a in answer["assignments"] if a["asset_id"] in asset_sites and a.get("setpoint_kw")]
    keys = [(dispatch_key(request_id, a["asset_id"]), asset_sites[a["asset_id"]]) for a in mine]
    if not answer["feasible"]:
        return OrderPlan(cancel=tuple(sorted(keys)))
    if not slots:
        return OrderPlan()
    minutes = (to_ms(slots[0]["end"]) - to_ms(slots[0]["start"])) // 60_000
    events = []
    for a, (key, prosumer_id) in zip(mine, keys, strict=True):
        if len(a["setpoint_kw"]) != len(slots):
            raise ValueError(
                f"asset {a['asset_id']}: {len(a['setpoint_kw'])} set points for {len(slots)} slots"
            )
        load = {
            to_ms(s["start"]): -float(kw)
            for s, kw in zip(slots, a["setpoint_kw"], strict=True)
            if to_ms(s["end"]) > now_ms
        }
        if load:
            events.append(
                DispatchEvent(
                    f"vpp~{request_id}~v{version}~{a['asset_id']}",
                    key,
                    version,
                    prosumer_id,
                    intervals_of(load, minutes),
                    SETPOINT,
                )
            )
    return OrderPlan(add=tuple(events))
