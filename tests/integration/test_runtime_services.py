"""`edream run --no-demo` hosts the stream services: raw readings become intervals, forecasts and baselines.

40 minutes of event-time P_ACTIVE readings (every 5 s, 3 meters, ending now) go into the raw topic of a renamed
topology on the shared test broker; the interval service closes the complete 15-min windows, the generic sink
lands them in chDB, and the forecasting service issues forecasts from the first interval on.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer
from test_run_platform import _start, _stop, _wait_status

from edream.embedded.process import free_port
from edream.kafka import producer_config
from edream.paths import AVRO_DIR, TOPOLOGY_FILE
from edream.serde import Serde
from edream.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

METERS = 3
PERIOD_MS = 5_000
SPAN_MS = 40 * 60_000
WINDOW_MS = 900_000


def renamed_topology(tmp_path: Path, suffix: str) -> dict[str, str]:
    """Write tmp_path/topology.yaml with every topic suffixed; return canonical -> renamed topic names."""
    data = yaml.safe_load(TOPOLOGY_FILE.read_text())
    rename = {t["name"]: f"{t['name']}.{suffix}" for t in data["topics"]}
    for t in data["topics"]:
        t["name"] = rename[t["name"]]
    for a in data["agents"]:
        a["inputs"], a["outputs"] = [rename[x] for x in a["inputs"]], [rename[x] for x in a["outputs"]]
    for s in data["sinks"]:
        s["topic"] = rename[s["topic"]]
    (tmp_path / "avro").symlink_to(AVRO_DIR)
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return rename


def reading(meter: int, ts: int, seq: int) -> dict:
    return {
        "event_id": f"m{meter}/{ts}",
        "device_id": f"meter-{meter}",
        "prosumer_id": f"prosumer-{meter}",
        "site_id": "site-1",
        "quantity": "P_ACTIVE",
        "phase": "TOTAL",
        "value": 1000.0 * (meter + 1),  # W, import
        "unit": "W",
        "obis_code": None,
        "quality": "GOOD",
        "source_protocol": "SIMULATOR",
        "connector_id": "test",
        "ts": ts,
        "ts_source": "DEVICE",
        "seq": seq,
        "ingest_ts": ts,
    }


def test_run_hosts_interval_forecast_and_baseline_services(tmp_path, kafka_bootstrap):
    suffix = uuid.uuid4().hex[:8]
    topics = renamed_topology(tmp_path, suffix)
    port = free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        EDREAM_DATA_DIR=str(tmp_path / "data"),
        EDREAM_WEB_PORT=str(port),
        EDREAM_TOPOLOGY=str(tmp_path / "topology.yaml"),
        EDREAM_APP_ID=f"edream-test-{suffix}",
    )
    proc = _start(env, "--no-demo")
    try:
        st = _wait_status(port, lambda s: "tables" in s["clickhouse"])
        for agent in ("intervals", "forecasts", "baselines", "flex", "market"):
            assert agent in st["agents"]
        for table in ("intervals", "forecasts", "forecast_accuracy", "baselines"):
            assert table in st["clickhouse"]["tables"]

        serde = Serde()
        p = Producer(producer_config(Settings(kafka_bootstrap_servers=kafka_bootstrap)))
        now = int(time.time() * 1000) // PERIOD_MS * PERIOD_MS
        first = now - SPAN_MS
        for seq, ts in enumerate(range(first, now + 1, PERIOD_MS)):
            for m in range(METERS):
                rec = reading(m, ts, seq)
                p.produce(
                    topics["meter.readings.raw.v1"],
                    key=rec["device_id"].encode(),
                    value=serde.encode("Measurement", rec),
                )
        assert p.flush(15) == 0

        # every window that ends at least the allowed lateness (30 s) before now is closed: event time passed it
        closed_windows = (now - 30_000) // WINDOW_MS - first // WINDOW_MS
        assert closed_windows >= 2
        st = _wait_status(
            port,
            lambda s: (
                s["clickhouse"].get("tables", {}).get("intervals", 0) >= METERS * closed_windows
                and s["clickhouse"]["tables"].get("forecasts", 0) > 0
            ),
            timeout=60,
        )
        tables = st["clickhouse"]["tables"]
        # one row per meter and window (versions collapse), the first (partial) window included
        assert tables["intervals"] <= METERS * (closed_windows + 1)
        # forecasts are issued for every prosumer and property as soon as its first interval is observed
        assert tables["forecasts"] >= METERS * 2
        assert (tmp_path / "data" / "state").is_dir()
    finally:
        out = _stop(proc)
    assert "Traceback" not in out, out[-3000:]
    state = sorted(f.name for f in (tmp_path / "data" / "state").iterdir())
    assert any(n.startswith("intervals-") for n in state), state
    assert any("forecasts" in n for n in state), state
