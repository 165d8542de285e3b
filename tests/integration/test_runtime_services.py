"""`edream run --no-demo` hosts the stream services: raw readings become intervals, forecasts and baselines.

40 minutes of event-time P_ACTIVE readings (every 5 s, 3 meters, ending now) go into the raw topic of a renamed
topology on the shared test broker; the interval service closes the complete 15-min windows, the generic sink
lands them in chDB, and the forecasting service issues forecasts from the first interval on.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from confluent_kafka import Producer
from platform_process import platform_env, start_platform, stop_platform, wait_status

from edream.kafka import producer_config
from edream.measurements import power_reading
from edream.serde import Serde
from edream.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

METERS = 3
PERIOD_MS = 5_000
SPAN_MS = 40 * 60_000
WINDOW_MS = 900_000


def test_run_hosts_interval_forecast_and_baseline_services(tmp_path, kafka_bootstrap, renamed_topology):
    suffix = uuid.uuid4().hex[:8]
    topology, topics = renamed_topology(suffix)
    env, port = platform_env(tmp_path / "data", kafka_bootstrap, topology, f"edream-test-{suffix}")
    proc = start_platform(env, "--no-demo")
    try:
        st = wait_status(port, lambda s: "tables" in s["clickhouse"])
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
                rec = power_reading(f"meter-{m}", ts, 1000.0 * (m + 1), prosumer_id=f"prosumer-{m}", seq=seq)
                p.produce(
                    topics["meter.readings.raw.v1"],
                    key=rec["device_id"].encode(),
                    value=serde.encode("Measurement", rec),
                )
        assert p.flush(15) == 0

        # every window that ends at least the allowed lateness (30 s) before now is closed: event time passed it
        closed_windows = (now - 30_000) // WINDOW_MS - first // WINDOW_MS
        assert closed_windows >= 2
        st = wait_status(
            port,
            lambda s: (
                s["clickhouse"].get("tables", {}).get("intervals", 0) >= METERS * closed_windows
                # forecasts are issued for every prosumer and property as soon as its first interval is observed
                and s["clickhouse"]["tables"].get("forecasts", 0) >= METERS * 2
            ),
            timeout=90,
        )
        tables = st["clickhouse"]["tables"]
        # one row per meter and window (versions collapse), the first (partial) window included
        assert tables["intervals"] <= METERS * (closed_windows + 1)
        assert (tmp_path / "data" / "state").is_dir()
        # `edream vpp degradation` asks the platform that owns chDB for a meter's intervals
        hist = httpx.get(
            f"http://127.0.0.1:{port}/api/vpp/pv-history", params={"device_id": "meter-1"}, timeout=30
        )
        rows = hist.json()["rows"]
        assert len(rows) >= closed_windows and all(r[1] - r[0] == WINDOW_MS for r in rows)
        assert httpx.get(f"http://127.0.0.1:{port}/api/vpp/pv-history", timeout=30).status_code == 400
    finally:
        out = stop_platform(proc)
    assert "Traceback" not in out, out[-3000:]
    state = sorted(f.name for f in (tmp_path / "data" / "state").iterdir())
    assert "intervals" in state and "baselines" in state, state  # the stages' RocksDB state (runtime)
    assert any("forecasts" in n for n in state), state
