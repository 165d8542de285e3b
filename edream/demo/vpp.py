"""The demo's virtual power plant: a small plausible portfolio enrolled at start, and periodic capability
requests, as registry records and requests for the real ``vpp`` agent (pure: no broker, no clock).

Portfolio ``vpp-demo``: a 100 kW / 200 kWh community battery, a district CHP (on, 35 of 60 kW, cheap), a
150 kW diesel backup (off, 5-minute start-up, dearer than the demo price forecast: kept out of the export), a
cold store, a water pump and an EV depot as curtailable loads, and the PV and curtailable load of a few
community prosumers (linked to their forecasts through ``forecast_entity_id``). Powers kW, energy kWh, money
currency micro-units per kWh.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edream.demo.community import Community
from streams.vpp.assets import SERVICES
from streams.vpp.capability import CapabilityRequest
from streams.vpp.events import request_record
from streams.vpp.registry import AssetSpec, asset_record

VPP_ID = "vpp-demo"
QUARTER_MS = 15 * 60_000
#: services the demo asks for, in turn
DEMO_SERVICES = ("STATIC_FFR", "DYNAMIC_FFR", "EFR")


def demo_portfolio(community: Community, pv_sites: int = 3, load_sites: int = 2) -> list[AssetSpec]:
    """The demo VPP's assets (see module doc); prosumer assets follow the community's first PV owners."""
    ud = ["UP", "DOWN"]
    entries: list[dict[str, Any]] = [
        dict(
            asset_id="bess-community",
            kind="BESS",
            p_max_kw=100,
            energy_kwh=200,
            soc_pct=60,
            soc_min_pct=10,
            soc_max_pct=95,
            response_time_s=0.5,
            directions=ud,
        ),
        dict(
            asset_id="chp-district",
            kind="GENERATOR",
            p_max_kw=60,
            p_min_kw=20,
            current_kw=35,
            response_time_s=5,
            ramp_kw_per_s=1.0,
            marginal_cost_micro_per_kwh=90_000,
            directions=ud,
        ),
        dict(
            asset_id="diesel-backup",
            kind="GENERATOR",
            p_max_kw=150,
            p_min_kw=40,
            is_on=False,
            start_up_time_s=300,
            response_time_s=10,
            ramp_kw_per_s=2.0,
            marginal_cost_micro_per_kwh=220_000,
        ),
        dict(
            asset_id="cold-store",
            kind="CURTAILABLE_LOAD",
            p_max_kw=40,
            current_kw=30,
            curtailable_share=0.5,
            response_time_s=20,
        ),
        dict(asset_id="water-pump", kind="CURTAILABLE_LOAD", p_max_kw=25, current_kw=18, response_time_s=60),
        dict(asset_id="ev-depot", kind="EVSE", p_max_kw=44, current_kw=22, response_time_s=5, directions=ud),
    ]
    with_pv = [p for p in community.prosumers if p.pv_kwp][:pv_sites]
    for p in with_pv:
        entries.append(
            dict(
                asset_id=f"pv-{p.prosumer_id}",
                kind="PV",
                p_max_kw=p.pv_kwp,
                response_time_s=1,
                directions=["DOWN"],
                uncertainty_min=0.8,
                uncertainty_max=1.2,
                forecast_entity_id=p.prosumer_id,
            )
        )
    for p in [p for p in community.prosumers if p not in with_pv][:load_sites]:
        entries.append(
            dict(
                asset_id=f"load-{p.prosumer_id}",
                kind="CURTAILABLE_LOAD",
                p_max_kw=10,
                current_kw=p.curtailable_kw,
                curtailable_share=0.3,
                response_time_s=30,
                forecast_entity_id=p.prosumer_id,
            )
        )
    return [AssetSpec.model_validate({"vpp_id": VPP_ID, **e}) for e in entries]


def asset_records(community: Community, at_ms: int) -> list[dict[str, Any]]:
    """VppAsset records of the demo portfolio, all updated at ``at_ms`` (UTC epoch ms)."""
    return [asset_record(s, at_ms) for s in demo_portfolio(community)]


def capability_request(at_ms: int, k: int) -> dict[str, Any]:
    """The ``k``-th demo request, sent at ``at_ms``: the next two quarter hours, services in turn; the id
    derives from the service and window, so a restarted demo asks the same question again (answered once)."""
    service = DEMO_SERVICES[k % len(DEMO_SERVICES)]
    start = (at_ms // QUARTER_MS + 1) * QUARTER_MS
    req = CapabilityRequest(f"demo-cap-{service}-{start}", SERVICES[service], start, start + 2 * QUARTER_MS)
    return request_record(req, VPP_ID, at_ms)


def capability_requests(first_ms: int, every_ms: int, end_ms: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(send time, request record) from ``first_ms`` every ``every_ms`` until ``end_ms``."""
    at, k = first_ms, 0
    while at < end_ms:
        yield at, capability_request(at, k)
        at, k = at + every_ms, k + 1
