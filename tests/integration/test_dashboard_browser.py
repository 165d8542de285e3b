"""The dashboard in headless Chromium during a real `edream run`: every panel shows live, changing data.

Real broker (session Tansu), real Faust worker with the generic ClickHouse sink, real chDB, real browser (Debian
``chromium`` driven over the DevTools protocol by :mod:`tools.headless`). Events of every kind are produced in two
rounds; after each round the page must show them, and every panel's content must change between the rounds.
Screenshots: ``test-output/dashboard-round1.png`` and ``-round2.png``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from confluent_kafka import Producer
from platform_process import platform_env

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.kafka import producer_config
from edream.paths import AVRO_DIR, REPO_ROOT, TOPOLOGY_FILE
from edream.serde import Serde
from edream.settings import Settings
from tools.headless import HeadlessChromium, find_chromium

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # `make test` installs Chromium; in CI a missing browser is a failure, not a skip.
    pytest.mark.skipif(
        find_chromium() is None and not os.environ.get("CI"),
        reason="needs Debian chromium: apt-get install -y chromium (make test does it)",
    ),
]

OUT = REPO_ROOT / "test-output"
MIN = 60_000
#: Sinks the browser test needs besides the ones topology.yaml declares (same table names as the dashboard).
EXTRA_SINKS = [
    {
        "name": "forecasts",
        "topic": "forecast.profiles.v1",
        "table": "forecasts",
        "order_by": ["entity_id", "issued_at"],
    },
    {
        "name": "baselines",
        "topic": "baseline.15m.v1",
        "table": "baselines",
        "order_by": ["prosumer_id", "isp_start", "version"],
    },
    {
        "name": "chain_anchors",
        "topic": "chain.anchor.receipts.v1",
        "table": "chain_anchors",
        "order_by": ["kind", "window_id"],
    },
    {
        "name": "flex_orders",
        "topic": "flex.orders.v1",
        "table": "flex_orders",
        "order_by": ["order_id", "revision"],
    },
    {
        "name": "flex_deviations",
        "topic": "flex.deviations.v1",
        "table": "flex_deviations",
        "order_by": ["order_id", "prosumer_id", "slot_start", "kind", "ts"],
    },
    {
        "name": "market_clearing",
        "topic": "market.clearing.v1",
        "table": "market_clearing",
        "order_by": ["session_id"],
    },
]

# Per panel: JS returning the panel's state (empty flag, digest of its data, text) for assertions.
PANEL_STATE_JS = """JSON.stringify(Object.fromEntries([...document.querySelectorAll('section.panel')].map(s =>
  [s.dataset.panel, {empty: s.dataset.empty, digest: s.dataset.digest, updates: Number(s.dataset.updates),
   text: s.innerText, paths: s.querySelectorAll('path[data-series="measured"]').length}])))"""


def _topology(tmp: Path, suffix: str) -> tuple[Path, dict[str, str]]:
    """The repo topology with unique topic names, only the generic sink agent, plus the sinks the panels read."""
    data = yaml.safe_load(TOPOLOGY_FILE.read_text())
    rename = {t["name"]: f"{t['name']}.{suffix}" for t in data["topics"]}
    for t in data["topics"]:
        t["name"] = rename[t["name"]]
    have = {s["table"] for s in data["sinks"]}
    data["sinks"] += [dict(s) for s in EXTRA_SINKS if s["table"] not in have and s["topic"] in rename]
    for s in data["sinks"]:
        s["topic"] = rename[s["topic"]]
    for c in data.get("connectors") or []:
        for key in ("output", "commands", "command_results"):
            if c.get(key):
                c[key] = rename[c[key]]
    sink_topics = sorted({s["topic"] for s in data["sinks"]})
    data["agents"] = [
        {
            "name": "clickhouse_sink",
            "module": "streams.agents.clickhouse_sink",
            "inputs": sink_topics,
            "outputs": [rename["platform.deadletter.v1"]],
            "description": "generic sink",
        }
    ]
    (tmp / "avro").symlink_to(AVRO_DIR)
    path = tmp / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, rename


class Feed:
    """Produces valid events of every kind the panels show, with event times around ``now``."""

    def __init__(self, bootstrap: str, rename: dict[str, str]):
        self.p = Producer(producer_config(Settings(kafka_bootstrap_servers=bootstrap)))
        self.serde = Serde()
        self.rename = rename
        self.now = int(time.time() * 1000) // (15 * MIN) * (15 * MIN)

    def send(self, topic: str, schema: str, key: str, **fields: Any) -> None:
        rec = {**sample_value(contract(schema).raw), **fields}
        name = self.rename[topic]
        self.p.produce(name, key=key.encode(), value=self.serde.encode(schema, rec, name))

    def round(self, n: int) -> None:
        now, slot = int(time.time() * 1000), self.now + (n - 1) * 15 * MIN
        for i in range(3):
            for k in range(4):  # 4 readings per prosumer, 5 s apart, this round's load level
                ts = now - k * 5000
                self.send(
                    "meter.readings.raw.v1",
                    "Measurement",
                    f"m{i}",
                    event_id=f"m{i}/{ts}",
                    device_id=f"m{i}",
                    prosumer_id=f"prosumer-{i}",
                    quantity="P_ACTIVE",
                    phase="TOTAL",
                    unit="W",
                    value=1000.0 * (i + 1) * n,
                    ts=ts,
                    seq=n * 10 + k,
                    connector_id="browser-test",
                )
            self.send(
                "baseline.15m.v1",
                "Baseline",
                f"prosumer-{i}",
                event_id=f"b{i}/{slot}",
                prosumer_id=f"prosumer-{i}",
                isp_start=slot,
                isp_end=slot + 15 * MIN,
                baseline_kw=1.5 * (i + 1),
                adjustment_kw=0.0,
                version=1,
            )
        pts = [
            {"ts": slot + j * 15 * MIN, "value": 400.0 + 50 * j, "lower": None, "upper": None}
            for j in range(-2, 3)
        ]
        self.send(
            "forecast.profiles.v1",
            "Forecast",
            "portfolio",
            event_id=f"f{n}",
            entity_id="portfolio",
            entity_kind="PORTFOLIO",
            property="ENERGY_CONSUMPTION",
            profile_granularity_minutes=15,
            issued_at=now,
            points=pts,
        )
        allocs = [
            {
                "prosumer_id": "prosumer-0",
                "slot_start": self.now + j * 15 * MIN,
                "kw": 1.0,
                "baseline_kw": 2.0,
            }
            for j in range(3)
        ]
        self.send(
            "flex.orders.v1",
            "FlexOrder",
            "order-1",
            event_id=f"o1/{n}",
            order_id="order-1",
            revision=n - 1,
            status="ACTIVE" if n == 1 else "AMENDED",
            allocations=allocs,
            created_at=self.now,
        )
        self.send(
            "flex.deviations.v1",
            "Deviation",
            "order-1",
            event_id=f"d{n}",
            order_id="order-1",
            prosumer_id="prosumer-0",
            slot_start=slot,
            ts=slot + 15 * MIN,
            kind="FINAL",
            target_kw=1.0,
            delivered_kw=0.6 + 0.3 * n,
            tolerance=0.1,
            verdict="SHORTFALL" if n == 1 else "WITHIN",
        )
        self.send(
            "market.clearing.v1",
            "ClearingResult",
            f"s{n}",
            event_id=f"c{n}",
            session_id=f"session-{n}",
            slot_start=slot,
            rule="UNIFORM",
            price_micro_per_kwh=120_000 + 10_000 * n,
            cleared_wh=2000 * n,
            bid_wh=3000,
            offer_wh=2500,
            n_trades=2 * n,
        )
        self.send(
            "chain.anchor.receipts.v1",
            "AnchorReceipt",
            f"w{n}",
            event_id=f"a{n}",
            kind="FLEX",
            window_id=f"window-{n}",
            record_count=3 * n,
            block_number=100 + n,
            confirmations=n,
            anchored_at=now,
        )
        vslot = self.now // (30 * MIN) * (30 * MIN) + n * 30 * MIN
        self.send(
            "vpp.export.v1",
            "VppExportCapacity",
            "vpp-1",
            event_id=f"x{n}",
            vpp_id="vpp-1",
            market="INTRADAY",
            slot_start=vslot,
            slot_end=vslot + 30 * MIN,
            evaluated_at=now,
            export_p50_kw=100.0 + 10 * n,
            export_p10_kw=80.0 + 10 * n,
            offered_kw=80.0 + 10 * n,
            price_forecast_micro=150_000,
            threshold_micro=100_000,
            decision="OFFER",
        )
        self.send(
            "vpp.capability.v1",
            "VppCapability",
            "vpp-1",
            event_id=f"r{n}/capability",
            request_id=f"req-{n}",
            vpp_id="vpp-1",
            service="STATIC_FFR",
            feasible=True,
            capacity_kw=200.0 + n,
            computed_at=now,
        )
        assert self.p.flush(15) == 0


def _wait_http(port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "tables" in httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).json()["clickhouse"]:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError("edream run did not come up")


def _states(browser: HeadlessChromium) -> dict[str, dict[str, Any]]:
    return json.loads(browser.eval(PANEL_STATE_JS))


def _wait_panels(browser: HeadlessChromium, check, timeout: float = 90.0) -> dict[str, dict[str, Any]]:
    deadline, last = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        last = _states(browser)
        if last and check(last):
            return last
        time.sleep(0.5)
    raise AssertionError(
        "panels never reached the expected state:\n"
        + json.dumps({k: {**v, "text": v["text"][:600]} for k, v in last.items()}, indent=1)
    )


def _round_shown(n: int):
    """Round ``n``'s events are visible in every panel."""

    def check(s: dict[str, dict[str, Any]]) -> bool:
        return (
            all(v["empty"] == "false" for v in s.values())
            and "browser-test" in s["pipeline"]["text"]  # the connector table
            and s["load"]["paths"] >= 4  # a measured line for the portfolio and each of the 3 prosumers
            and ("ACTIVE" if n == 1 else "AMENDED") in s["flex"]["text"]  # latest revision of order-1
            and f"{n}\nslots cleared" in s["market"]["text"]
            and f"{n}\nwindows anchored" in s["anchoring"]["text"]
            and f"{n}\nwindows evaluated" in s["vpp"]["text"]
            and f"req-{n}" in s["vpp"]["text"]
        )

    return check


def test_dashboard_panels_show_live_changing_data_in_chromium(tmp_path, kafka_bootstrap):
    suffix = uuid.uuid4().hex[:8]
    topo, rename = _topology(tmp_path, suffix)
    env, port = platform_env(tmp_path / "data", kafka_bootstrap, topo, f"edream-dash-{suffix}")
    env.pop("EDREAM_DASHBOARD_TABLES", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edream.cli", "run", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_http(port)
        feed = Feed(kafka_bootstrap, rename)
        feed.round(1)
        with HeadlessChromium() as browser:
            browser.goto(f"http://127.0.0.1:{port}/")
            first = _wait_panels(browser, _round_shown(1))
            assert browser.eval("document.getElementById('conn').textContent") == "live"
            browser.screenshot(OUT / "dashboard-round1.png")

            feed.round(2)
            second = _wait_panels(
                browser,
                lambda s: _round_shown(2)(s) and all(s[p]["digest"] != first[p]["digest"] for p in first),
            )
            browser.screenshot(OUT / "dashboard-round2.png")
            assert set(second) == {"pipeline", "load", "flex", "market", "anchoring", "vpp"}
            assert all(second[p]["updates"] > first[p]["updates"] for p in first), (
                "panels are pushed over SSE"
            )
            assert not [c for c in browser.console if c.startswith("exception")], browser.console
        # the verification link of an anchor answers (ERROR here: the window was not really anchored on a chain)
        link = f"http://127.0.0.1:{port}/api/verify?kind=FLEX&window=window-1"
        assert httpx.get(link, timeout=30).json()["status"] in {"VALID", "INVALID", "ERROR"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        (OUT / "dashboard-run.log").parent.mkdir(parents=True, exist_ok=True)
        (OUT / "dashboard-run.log").write_text(out or "")
