"""The demo's VPP through the real pure VPP service: the scripted registry and requests yield an export offer
and capability answers without a broker."""

from __future__ import annotations

from collections import Counter

from edream.demo.community import Community
from edream.demo.script import DemoConfig, DemoScript, demo_market_config
from edream.serde import Serde
from streams.vpp.processor import VppProcessor
from streams.vpp.registry import registered_from_record

START = 1_795_435_237_123  # 2026-11-23T12:00:37.123Z
CFG = DemoConfig(prosumers=20, day_minutes=40)


def test_demo_vpp_is_enrolled_at_start_and_answers_and_exports():
    script = DemoScript(Community(CFG.prosumers, CFG.seed), CFG, demo_market_config(START, CFG), START)
    events = list(script.events())
    counts = Counter(e.schema for e in events)
    assert counts["VppAsset"] == 11  # 6 site assets + 3 prosumer PV + 2 prosumer loads
    assert counts["VppCapabilityRequest"] == 4  # every 10 min in 40 min
    serde = Serde()
    proc = VppProcessor()
    answers = []
    for e in events:
        rec = serde.decode(serde.encode(e.schema, e.record, e.topic), e.topic)[1]
        if e.schema == "VppAsset":
            assert e.at_ms == START
            proc.on_asset(registered_from_record(rec))
        elif e.schema == "VppCapabilityRequest":
            answers += [o.record for o in proc.on_request(rec)]
    [export] = [o.record for o in proc.on_tick(START + 1000)]
    # without forecasts (export counts generators and loads): CHP 35 -> 60 kW reachable, diesel too dear,
    # loads shed 15 + 18 + 22 kW and 2 prosumer loads x 30 %; PV at its registry value (0 kW now)
    assert export["decision"] == "OFFER" and export["offered_kw"] > 100
    assert {x["asset_id"]: x["reason"] for x in export["excluded"]} == {"diesel-backup": "COST_ABOVE_PRICE"}
    assert [a["service"] for a in answers] == ["STATIC_FFR", "DYNAMIC_FFR", "EFR", "STATIC_FFR"]
    assert all(a["feasible"] and a["capacity_kw"] > 0 for a in answers)
