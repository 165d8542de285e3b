"""VppCapabilityRequest -> real broker -> capability answer -> broker -> chDB, idempotent on redelivery;
VppExportCapacity records through the broker into chDB."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from edream.kafka import producer_config
from edream.serde import Serde
from streams.vpp.assets import SERVICES, Asset, AssetKind, Direction
from streams.vpp.capability import CapabilityRequest
from streams.vpp.events import export_record, request_record
from streams.vpp.export import ExportRequest, ResForecast, evaluate_export
from streams.vpp.service import answer_capability_request
from streams.vpp.storage import sink_for, store

pytestmark = pytest.mark.integration

T0 = 1_717_416_000_000  # 2024-06-03 12:00 UTC


def _portfolio() -> list[Asset]:
    updown = frozenset({Direction.UP, Direction.DOWN})
    bess = [
        Asset(
            f"bess{i}",
            AssetKind.BESS,
            p_max_kw=50,
            energy_kwh=100,
            soc_pct=60,
            soc_min_pct=10,
            response_time_s=0.5,
            directions=updown,
        )
        for i in range(5)
    ]
    loads = [
        Asset(f"load{i}", AssetKind.CURTAILABLE_LOAD, p_max_kw=5, current_kw=5, response_time_s=30)
        for i in range(20)
    ]
    diesel = [Asset("diesel", AssetKind.GENERATOR, p_max_kw=100, is_on=False, start_up_time_s=120)]
    return bess + loads + diesel


def test_capability_request_answered_through_broker_and_stored(
    test_settings, unique_topic, chdb_client, unique_table, read_topic
):
    req_topic, ans_topic = unique_topic("vpp.capability.requests"), unique_topic("vpp.capability")
    serde = Serde()
    p = Producer(producer_config(test_settings))
    reqs = [
        CapabilityRequest(f"req-{name}", SERVICES[name], T0 + 3_600_000, T0 + 3_600_000 + 30 * 60_000)
        for name in ("EFR", "STATIC_FFR")
    ]
    for r in reqs:
        rec = request_record(r, "vpp1", T0)
        payload = serde.encode("VppCapabilityRequest", rec, req_topic)
        p.produce(req_topic, key=b"vpp1", value=payload)
        p.produce(req_topic, key=b"vpp1", value=payload)  # at-least-once: a redelivered request
    assert p.flush(15) == 0

    answers = []
    for m in read_topic(req_topic, 4):
        name, rec = serde.decode(m.value(), req_topic)
        assert name == "VppCapabilityRequest"
        answers.append(answer_capability_request(rec, _portfolio()))
    assert len(answers) == 4
    for a in answers:
        p.produce(ans_topic, key=a["vpp_id"].encode(), value=serde.encode("VppCapability", a, ans_topic))
    assert p.flush(15) == 0

    decoded = [serde.decode(m.value(), ans_topic)[1] for m in read_topic(ans_topic, 4)]
    assert len(decoded) == 4
    sink, schema = sink_for("vpp_capability", unique_table("vpp_capability"))
    store(chdb_client, sink, schema, decoded)
    store(chdb_client, sink, schema, decoded[:1])  # replay of one answer
    rows = chdb_client.query(
        f"SELECT request_id, capacity_kw, feasible FROM {sink.table} FINAL ORDER BY request_id"
    ).result_rows
    # EFR: 5 BESS x 50 kW; static FFR (30 s): BESS 250 + 20 loads x 5 kW (diesel start-up 120 s too slow)
    assert rows == [("req-EFR", 250.0, True), ("req-STATIC_FFR", 350.0, True)]


def test_export_capacity_events_stored_idempotently(
    test_settings, unique_topic, chdb_client, unique_table, read_topic
):
    topic = unique_topic("vpp.export")
    serde = Serde()
    assets = [
        Asset("hydro", AssetKind.GENERATOR, p_max_kw=50, current_kw=40),
        Asset("loads", AssetKind.CURTAILABLE_LOAD, p_max_kw=20, current_kw=20),
    ]
    records = []
    for i, price in enumerate((80_000, 180_000)):
        now = T0 + i * 30 * 60_000
        req = ExportRequest("vpp1", now + 3_600_000, now, price, 100_000)
        records.append(export_record(evaluate_export(req, [ResForecast("pv", 120, 90)], assets, 90.0)))
    p = Producer(producer_config(test_settings))
    for r in records + records:
        p.produce(topic, key=b"vpp1", value=serde.encode("VppExportCapacity", r, topic))
    assert p.flush(15) == 0
    decoded = [serde.decode(m.value(), topic)[1] for m in read_topic(topic, 4)]
    sink, schema = sink_for("vpp_export", unique_table("vpp_export"))
    store(chdb_client, sink, schema, decoded)
    rows = chdb_client.query(
        f"SELECT decision, offered_kw, export_p10_kw FROM {sink.table} FINAL ORDER BY slot_start"
    ).result_rows
    assert rows == [("HANDOVER", 0.0, 70.0), ("OFFER", 70.0, 70.0)]
