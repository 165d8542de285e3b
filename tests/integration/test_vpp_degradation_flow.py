"""PV degradation end to end on the real embedded broker: three years of synthetic production with an injected
-0.8 %/year (pvlib clear sky, clouds, clipping, outages) -> `edream vpp degradation --csv` (the operator command,
in process) -> one PvDegradation record on the renamed compacted topic with Rd within +-0.2 %/year -> the VPP
stage (streams/vpp/stage.py) consumes the message bytes and evaluates the export with the derated PV. A history shorter than a year
publishes nothing (exit code 1)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.vpp.cli import app
from streams.vpp.export import derate_from_rd
from streams.vpp.processor import VppConfig
from streams.vpp.pv_model import PvSystem
from streams.vpp.registry import asset_record, load_portfolio_file
from streams.vpp.stage import VppStage
from streams.vpp.stage_state import StageState
from tools.sim.pv_synthetic import simulate_pv

pytestmark = pytest.mark.integration

START = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp() * 1000)
COMMISSIONED = int(datetime(2018, 1, 1, tzinfo=UTC).timestamp() * 1000)
YEAR_MS = 365.25 * 86_400_000
MIN = 60_000


def _csv(path, years: float, seed: int) -> None:
    pv = simulate_pv(PvSystem(48.14, 11.58, 10_000, ac_limit_w=8_500), START, years, -0.008, seed)
    pd.DataFrame({"ts": pv.times_ms, "power_w": pv.power_w}).to_csv(path, index=False)


def _high_watermark(bootstrap: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def test_degradation_published_by_the_cli_derates_the_vpp_export(
    tmp_path, monkeypatch, kafka_bootstrap, renamed_topology, read_topic
):
    suffix = uuid.uuid4().hex[:8]
    topology, topics = renamed_topology(suffix)
    topic = topics["vpp.pv.degradation.v1"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})]).values():
        fut.result(15)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("EDREAM_TOPOLOGY", str(topology))
    monkeypatch.setenv("EDREAM_DATA_DIR", str(tmp_path / "data"))
    vpp = f"vpp-{suffix}"
    pf = tmp_path / "portfolio.yaml"
    pf.write_text(
        f"vpp_id: {vpp}\nassets:\n"
        f"  - {{asset_id: pv-roof, kind: PV, p_max_kw: 8.5, current_kw: 6, dc_capacity_kw: 10,\n"
        f"     latitude_deg: 48.14, longitude_deg: 11.58, commissioned_at: {COMMISSIONED}}}\n"
    )
    short, full = tmp_path / "short.csv", tmp_path / "full.csv"
    _csv(short, 0.5, seed=2)
    _csv(full, 3.0, seed=0)
    runner = CliRunner()

    # half a year: said clearly, exit 1, nothing published
    r = runner.invoke(app, ["degradation", "--asset", "pv-roof", "--csv", str(short), "--portfolio", str(pf)])
    assert r.exit_code == 1, r.output
    assert "not enough history, nothing published" in r.output and "covers 182 days (2021-01-01" in r.output
    assert _high_watermark(kafka_bootstrap, topic) == 0

    # three years: estimated (clear-sky reference, production only) and published
    r = runner.invoke(app, ["degradation", "--asset", "pv-roof", "--csv", str(full), "--portfolio", str(pf)])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout.strip().splitlines()[-1])
    [msg] = read_topic(topic, 1, timeout=30)
    assert _high_watermark(kafka_bootstrap, topic) == 1
    serde = Serde()
    name, rec = serde.decode(msg.value(), topic)
    assert (name, msg.key()) == ("PvDegradation", b"pv-roof")
    assert rec == printed
    assert rec["method"] == "YOY_CLEARSKY" and rec["vpp_id"] == vpp
    assert rec["rd_pct_per_year"] == pytest.approx(-0.8, abs=0.2)
    assert rec["ci_low"] <= rec["rd_pct_per_year"] <= rec["ci_high"]
    assert rec["data_from"] == START

    # the vpp stage (one partition, its links fed back) reads the registry entry and the published bytes, then
    # evaluates its export on a tick
    [spec] = load_portfolio_file(pf)
    stage = VppStage(serde, VppConfig(), topics)
    state = MemoryState()
    t_assets, t_links = topics["vpp.assets.v1"], topics["vpp.links.v1"]

    def feed(topic: str, value: bytes) -> list:
        queue, out = [(topic, value)], []
        while queue:
            t, v = queue.pop(0)
            for e in stage.on_record(Record(t, 0, 0, None, v, now), state):
                (queue.append((e.topic, e.value)) if e.topic == t_links else out.append(e))
        return out

    now = int(datetime(2024, 6, 3, 12, 7, tzinfo=UTC).timestamp() * 1000)
    asset = asset_record(spec, now - MIN)
    assert feed(t_assets, serde.encode("VppAsset", asset, t_assets)) == []
    undegraded = stage.portfolio(vpp, StageState(state)).evaluate_export(vpp, now)["export_p50_kw"]
    assert undegraded == pytest.approx(6.0)
    assert feed(topic, msg.value()) == []
    [(out_topic, out_key, out_value)] = stage.on_tick(now, 0, state)
    assert (out_topic, out_key) == (topics["vpp.export.v1"], vpp.encode())
    exported = serde.decode(out_value, out_topic)[1]
    slot_start = exported["slot_start"]
    expected = 6.0 * derate_from_rd(rec["rd_pct_per_year"], (slot_start - COMMISSIONED) / YEAR_MS)
    assert exported["export_p50_kw"] == pytest.approx(expected, abs=1e-6)
    assert 6.0 * 0.93 < exported["export_p50_kw"] < 6.0 * 0.97  # 6.4 years at -0.8 +- 0.2 %/year


def test_registry_table_of_an_older_contract_gains_the_pv_columns(chdb_client, unique_table):
    """A vpp_assets table created before the PV fields existed gets them on the next start (ensure_table), so
    the sink can insert the new records; old rows read NULL."""
    from dataclasses import replace

    from edream.avro_schemas import all_contracts
    from edream.clickhouse import RowEncoder, ensure_table, insert_rows
    from edream.topology import Sink
    from streams.vpp.registry import validate_spec

    new = all_contracts()["VppAsset"]
    pv_fields = {"latitude_deg", "longitude_deg", "tilt_deg", "azimuth_deg", "dc_capacity_kw"}
    pv_fields |= {"commissioned_at", "meter_device_id"}
    old_raw = {**new.raw, "fields": [f for f in new.raw["fields"] if f["name"] not in pv_fields]}
    old = replace(new, raw=old_raw)
    table = unique_table("vpp_assets")
    sink = Sink(name=table, topic="vpp.assets.v1", table=table, order_by=["asset_id"], version="updated_at")
    ensure_table(chdb_client, sink, old)
    spec = validate_spec({"asset_id": "a", "vpp_id": "v", "kind": "PV", "p_max_kw": 5}, "t")
    enc_old = RowEncoder(old)
    insert_rows(chdb_client, table, enc_old.columns, [enc_old.row(asset_record(spec, 1))])
    ensure_table(chdb_client, sink, new)
    pv = validate_spec(
        {
            "asset_id": "b",
            "vpp_id": "v",
            "kind": "PV",
            "p_max_kw": 5,
            "latitude_deg": 48.1,
            "longitude_deg": 11.6,
        },
        "t",
    )
    enc = RowEncoder(new)
    insert_rows(chdb_client, table, enc.columns, [enc.row(asset_record(pv, 2))])
    rows = chdb_client.query(
        f"SELECT asset_id, latitude_deg FROM {table} FINAL ORDER BY asset_id"
    ).result_rows
    assert [tuple(r) for r in rows] == [("a", None), ("b", 48.1)]


def test_history_query_reads_a_meters_latest_intervals_as_watts(chdb_client, unique_table):
    """The query `edream vpp degradation` runs (directly or through the platform's /api/vpp/pv-history)."""
    from edream.avro_schemas import all_contracts
    from edream.clickhouse import RowEncoder, ensure_table, insert_rows
    from edream.topology import Sink
    from streams.vpp.pv_degradation import history_from_interval_rows, history_sql

    c = all_contracts()["IntervalEnergy"]
    table = unique_table("intervals")
    sink = Sink(
        name=table, topic="t", table=table, order_by=["device_id", "interval_start"], version="version"
    )
    ensure_table(chdb_client, sink, c)
    q = 15 * MIN

    def interval(device: str, i: int, export_wh: float, version: int = 1) -> dict:
        s = START + i * q
        return {
            "event_id": f"{device}/{s}/{version}",
            "prosumer_id": "p",
            "device_id": device,
            "interval_start": s,
            "interval_end": s + q,
            "import_wh": 0.0,
            "export_wh": export_wh,
            "avg_kw": -export_wh * 4 / 1000,
            "max_kw": 0.0,
            "samples": 180,
            "expected_samples": 180,
            "completeness": 1.0,
            "method": "POWER_INTEGRATION",
            "estimated": False,
            "version": version,
            "computed_at": s + q,
        }

    recs = [interval("pv-meter", 1, 500.0), interval("pv-meter", 0, 250.0), interval("other", 0, 9.0)]
    recs.append(interval("pv-meter", 1, 750.0, version=2))  # late-data correction wins
    enc = RowEncoder(c)
    insert_rows(chdb_client, table, enc.columns, [enc.row(r) for r in recs])
    rows = chdb_client.query(history_sql(table), parameters={"device": "pv-meter"}).result_rows
    h = history_from_interval_rows(rows)
    assert h.times_ms.tolist() == [START, START + q]
    assert h.power_w.tolist() == [1000.0, 3000.0]
