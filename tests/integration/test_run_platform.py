"""`edream run` as a user runs it: real broker, Faust worker, chDB sink, status API, DLQ, clean Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx
import psutil
import pytest
from confluent_kafka import Producer
from platform_process import platform_env, start_platform, stop_platform, wait_status

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.embedded.process import free_port
from edream.kafka import producer_config
from edream.serde import Serde
from streams.anchoring.synthetic import synthetic_settlement

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tansu_children(pid: int) -> list[psutil.Process]:
    try:
        return [c for c in psutil.Process(pid).children(recursive=True) if "tansu" in c.name()]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.xdist_group("field_site")  # the demo's field simulators use fixed ports: one demo at a time
def test_make_run_path_embedded_broker_demo_feed_and_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN")}
    env.update(EDREAM_DATA_DIR=str(tmp_path), EDREAM_WEB_PORT=str(port))
    proc = start_platform(env)
    try:
        st = wait_status(port, lambda s: s["clickhouse"].get("tables", {}).get("measurements", 0) >= 5)
        tansu = _tansu_children(proc.pid)
        assert len(tansu) == 1, "the embedded broker runs as a child of the platform"
        assert st["ethereum"].startswith("http://127.0.0.1:")
        assert st["broker"].startswith("127.0.0.1:")
        cli = subprocess.run(
            [sys.executable, "-m", "edream.cli", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "platform    running" in cli.stdout and "kafka       ok" in cli.stdout, cli.stdout
        assert "table measurements:" in cli.stdout
        assert "ethereum    ok " in cli.stdout and "\nlag         " in cli.stdout, cli.stdout
        second = subprocess.run(
            [sys.executable, "-m", "edream.cli", "run"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2 and "already running" in second.stderr, second.stderr
        # the field site: protocol simulators -> connector process -> broker -> sink (devices beyond the demo's)
        deadline, reporting = time.monotonic() + 150, 0
        while time.monotonic() < deadline and reporting <= 50:
            stats = httpx.get(f"http://127.0.0.1:{port}/api/panels/pipeline", timeout=10).json()["blocks"][0]
            reporting = next(x["value"] for x in stats["stats"] if x["label"] == "devices reporting")
            time.sleep(2)
        if reporting > 50:
            assert "device up" in (tmp_path / "logs" / "connector.log").read_text()
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert 'edream_counter{name="sink.measurements.rows"}' in metrics
    finally:
        out = stop_platform(proc)
    field = [line for line in out.splitlines() if "field" in line]
    assert reporting > 50, f"only {reporting} devices reporting: the field site never arrived: {field}"
    assert "stopped (embedded broker and chain shut down)" in out
    psutil.wait_procs(tansu, timeout=10)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tansu)
    assert not (tmp_path / "run.json").exists()


def test_external_broker_sink_and_dead_letters(tmp_path, kafka_bootstrap, read_topic, renamed_topology):
    suffix = uuid.uuid4().hex[:8]
    topology, rename = renamed_topology(suffix)
    readings, dlq = rename["meter.readings.raw.v1"], rename["platform.deadletter.v1"]

    env, port = platform_env(tmp_path / "data", kafka_bootstrap, topology, f"edream-test-{suffix}")
    proc = start_platform(env, "--no-demo")
    try:
        wait_status(port, lambda s: "tables" in s["clickhouse"])
        from edream.settings import Settings

        settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
        p = Producer(producer_config(settings))
        serde, base = Serde(), sample_value(contract("Measurement").raw)
        now = int(time.time() * 1000)  # inside the measurements table's 90-day TTL
        for i in range(30):
            m = dict(base, event_id=f"e{i}", device_id=f"d{i % 3}", ts=now - i * 5000, seq=i)
            p.produce(readings, key=m["device_id"].encode(), value=serde.encode("Measurement", m))
        p.produce(readings, key=b"d0", value=b"\x00garbage that is not avro")
        p.produce(
            readings,
            key=b"d0",
            value=serde.encode("Measurement", dict(base, event_id="dup", device_id="d0", ts=now, seq=999)),
        )
        p.produce(readings, key=b"d0", value=serde.encode("Trade", sample_value(contract("Trade").raw)))
        assert p.flush(15) == 0
        st = wait_status(
            port,
            lambda s: (
                s["counters"].get("sink.measurements.rows", 0) >= 31
                and s["counters"].get("dlq.measurements", 0) >= 2
            ),
        )
        # a replayed reading with the same (device, quantity, phase, ts) key collapses into one row
        assert st["clickhouse"]["tables"]["measurements"] == 30

        letters = [serde.decode(msg.value())[1] for msg in read_topic(dlq, 2)]
        reasons = sorted(letter["error"] for letter in letters)
        assert any("unknown Avro" in r or "Confluent" in r for r in reasons), reasons
        assert any("expected Measurement, got Trade" in r for r in reasons), reasons
        assert {letter["source_topic"] for letter in letters} == {readings}
        assert b"garbage" in b"".join(letter["original"] for letter in letters)

        # settlements -> anchoring agent -> chain: no later settlement arrives, so the window (in the past)
        # closes on the wall-clock timer once the agent is caught up; then an outsider verifies from another
        # process while the platform owns the embedded chDB
        settlements = [synthetic_settlement(i, "FLEX", slot=0) for i in range(5)]
        for rec in settlements:
            p.produce(
                rename["settlement.flex.v1"],
                key=rec["window_id"].encode(),
                value=serde.encode("Settlement", rec),
            )
        assert p.flush(15) == 0
        st = wait_status(port, lambda s: (s["clickhouse"].get("last_anchor") or {}).get("record_count") == 5)
        window = st["clickhouse"]["last_anchor"]["window_id"]
        assert window == "2026-11-18T00:00Z/15m"
        cli_env = dict(env)
        for args in (["window", "FLEX", window], ["record", "st-FLEX-0-3"]):
            r = subprocess.run(
                [sys.executable, "-m", "edream.cli", "verify", *args],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert r.returncode == 0 and "\nVALID: " in "\n" + r.stdout, r.stdout + r.stderr
    finally:
        stop_platform(proc)
