"""The operator console in headless Chromium (Playwright on Debian's Chromium) during a real `edream run`.

Real broker (session Tansu), real Faust worker with the generic ClickHouse sink and one stage process (intervals),
real chDB, real browser. Events of every kind are produced in two rounds; every panel must show them and change
between the rounds. The numbers on the page are checked against ClickHouse: the portfolio kW in the chart's
tooltip at a time equals an independent query over the meters; the prosumer, market session and anchor window
pages show the penalty, the trades and price, and the manifest's records that independent queries find. The order page shows the shortfall, the
re-dispatch revision and the penalty; each of 10 consecutive loads paints every panel within 3 s; a stage process
stopped (SIGSTOP) or killed (SIGKILL) turns red with an alert within 10 s; Ctrl-C prints no warning or error after
"stopping".
Screenshots: ``test-output/dashboard-*.png``.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml
from browser import (
    OUT,
    PORTFOLIO_SQL,
    chromium,
    chromium_missing_reason,
    first_paint_ms,
    open_page,
    page_stats,
    page_table,
    portfolio_tooltip,
    query_stopped_platform,
)
from confluent_kafka import Producer
from platform_process import noisy_lines_after_stopping, platform_env, start_platform, stop_platform
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.dashboard.panels.load import STALE_AFTER_MS as LOAD_STALE_AFTER_MS
from edream.kafka import producer_config
from edream.paths import AVRO_DIR, TOPOLOGY_FILE
from edream.serde import Serde
from edream.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(chromium_missing_reason() is not None, reason=str(chromium_missing_reason())),
]

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
PANEL_STATE_JS = """() => Object.fromEntries([...document.querySelectorAll('section.panel')].map(s =>
  [s.dataset.panel, {empty: s.dataset.empty, digest: s.dataset.digest, updates: Number(s.dataset.updates),
   text: s.innerText, charts: s.querySelectorAll('.uplot').length}]))"""
PANELS = {"health", "pipeline", "load", "flex", "grid", "market", "anchoring", "vpp"}
#: panels a round of input does not change: stage health, and the grid (no grid is configured here)
UNCHANGED = ("health", "grid")
#: The stage process the test stalls (a topology agent that runs on the stage runtime).
STAGE = "intervals"


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
    (stage,) = [dict(a) for a in data["agents"] if a["name"] == STAGE]
    stage["inputs"] = [rename[t] for t in stage["inputs"]]
    stage["outputs"] = [rename[t] for t in stage["outputs"]]
    stage["repartition"] = [rename[t] for t in stage.get("repartition", [])]
    data["agents"] = [
        stage,
        {
            "name": "clickhouse_sink",
            "module": "streams.agents.clickhouse_sink",
            "inputs": sink_topics,
            "outputs": [rename["platform.deadletter.v1"]],
            "description": "generic sink",
        },
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

    def round(self, n: int, after_ms: int | None = None) -> None:
        """Round ``n``'s events; its meter readings are stamped after ``after_ms`` (UTC epoch ms) when given: a
        reading stamped at or before a time the page already showed is a late reading that changes that time's
        value afterwards (the page could not have shown it)."""
        now, slot = int(time.time() * 1000), self.now + (n - 1) * 15 * MIN
        for i in range(3):
            self.send(
                "flex.enrolments.v1",
                "FlexEnrolment",
                f"prosumer-{i}",
                event_id=f"e{i}/{n}",
                prosumer_id=f"prosumer-{i}",
                active=True,
                updated_at=now,
            )
            for k in range(4):  # 4 readings per prosumer, 5 s apart (less after after_ms), this round's level
                ts = now - k * 5000 if after_ms is None else max(now - k * 5000, after_ms + 4 - k)
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
        if n == 1:  # the shortfall's penalty: 0.5 kWh short at 0.30 EUR/kWh
            self.send(
                "settlement.flex.v1",
                "Settlement",
                "w1",
                event_id="s1",
                settlement_id="stl-1",
                kind="FLEX",
                window_id="window-1",
                window_start=slot,
                window_end=slot + 15 * MIN,
                party_id="prosumer-0",
                reference_id="order-1",
                quantity_wh=150,
                amount_micro=-150_000,
                currency="EUR",
                details='{"verdict":"SHORTFALL"}',
                version=1,
                computed_at=now,
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
        for k, (side, who) in enumerate(
            (("BID", "prosumer-0"), ("BID", "prosumer-1"), ("OFFER", "prosumer-2"))
        ):
            self.send(
                "market.orders.accepted.v1",
                "MarketOrder",
                f"s{n}",
                event_id=f"mo{n}/{k}",
                order_id=f"mo{n}-{k}",
                participant_id=who,
                session_id=f"session-{n}",
                side=side,
                slot_start=slot,
                quantity_wh=1000 * (k + 1),
                limit_price_micro_per_kwh=100_000 + 50_000 * k if side == "BID" else 90_000,
            )
        for k in range(n):  # round n's session has n trades
            self.send(
                "market.trades.v1",
                "Trade",
                f"s{n}",
                event_id=f"t{n}/{k}",
                trade_id=f"t{n}-{k}",
                session_id=f"session-{n}",
                slot_start=slot,
                buyer_id=f"prosumer-{k}",
                seller_id="prosumer-2",
                quantity_wh=500,
                price_micro_per_kwh=120_000 + 10_000 * n,
            )
        for k in range(3 * n):  # the anchored window's manifest (record_count = 3 n)
            self.send(
                "chain.anchor.leaves.v1",
                "AnchorLeaf",
                f"FLEX:window-{n}",
                kind="FLEX",
                window_id=f"window-{n}",
                settlement_id=f"stl-{n}-{k}",
                leaf=f"0x{k:064x}",
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


def _states(page) -> dict[str, dict[str, Any]]:
    return page.evaluate(PANEL_STATE_JS)


def _wait_panels(page, check, timeout: float = 90.0) -> dict[str, dict[str, Any]]:
    deadline, last = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        last = _states(page)
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
            set(s) == PANELS
            and all(v["empty"] == "false" for v in s.values())
            and "browser-test" in s["pipeline"]["text"]  # the connector table
            and s["load"]["charts"] >= 4  # the portfolio and each of the 3 prosumers
            and "3\nprosumers enrolled" in s["load"]["text"]
            and "3 of 3\nmeters reporting" in s["load"]["text"]
            and ("ACTIVE" if n == 1 else "AMENDED") in s["flex"]["text"]  # latest revision of order-1
            and f"{n}\nslots cleared" in s["market"]["text"]
            and f"{n}\nwindows anchored" in s["anchoring"]["text"]
            and f"{n}\nwindows evaluated" in s["vpp"]["text"]
            and f"req-{n}" in s["vpp"]["text"]
            and f"{STAGE}\t" in s["health"]["text"]
        )

    return check


def _stage_process(platform_pid: int) -> psutil.Process:
    for child in psutil.Process(platform_pid).children(recursive=True):
        if child.cmdline()[-3:] == ["stage", "run", STAGE]:
            return child
    raise AssertionError(f"no stage process {STAGE} under the platform")


def _drill_downs(page, url: str) -> dict[str, Any]:
    """From the order page, the SHORTFALL prosumer's page; from the dashboard, the newest market session's page and
    the newest anchor window's page; what each shows, for the comparison with ClickHouse after the run."""
    open_page(page, page.locator("#page tr.bad a[href^='/page/prosumer/']").first)
    assert page.locator("#page h2").inner_text() == "Prosumer prosumer-0"
    (penalty,) = [r for r in page_table(page, "Settlements") if r["amount"].startswith("-")]
    assert (
        page_stats(page)["meters reporting"] == "1 of 1" and page.locator("#page .chart .uplot").count() == 1
    )
    page.screenshot(path=OUT / "dashboard-prosumer.png", full_page=True)

    page.goto(url)
    _wait_panels(page, _round_shown(2))
    open_page(page, page.locator("#panel-market a[href^='/page/slot/']").first)
    slot = page_stats(page)
    assert (slot["bids"], slot["offers"]) == ("2", "1") and page.locator("#page .chart .uplot").count() == 1
    page.screenshot(path=OUT / "dashboard-slot.png", full_page=True)
    session = page.locator("#page h2").inner_text().removeprefix("Market session ")

    page.goto(url)
    _wait_panels(page, _round_shown(2))
    open_page(page, page.locator("#panel-anchoring a[href^='/page/anchor/']").first)
    window = page.locator("#page h2").inner_text().removeprefix("Anchor FLEX ")
    records = int(page_stats(page)["records in manifest"])
    page.screenshot(path=OUT / "dashboard-anchor.png", full_page=True)
    return {
        "penalty": float(penalty["amount"]),
        "session": session,
        "trades": int(slot["trades"]),
        "price": float(slot["clearing price"].split()[0]),
        "window": window,
        "records": records,
    }


def _red_with_alert(page, reason: str, within_ms: int = 10_000) -> float:
    """Seconds until the health panel shows the stage's row red and an EdreamStageDown alert with ``reason``."""
    t0 = time.monotonic()
    page.wait_for_function(
        f"""() => {{ const h = document.getElementById('panel-health');
                  return h && h.classList.contains('alerting')
                      && [...h.querySelectorAll('tr.bad')].some(r => r.innerText.startsWith('{STAGE}\\t'))
                      && [...h.querySelectorAll('.alert')].some(a => a.innerText.startsWith('EdreamStageDown')
                                                                   && a.innerText.includes({json.dumps(reason)})); }}""",
        timeout=within_ms,
    )
    return time.monotonic() - t0


@pytest.mark.timeout(
    480
)  # ~60 s alone; a loaded CI machine slows the stage's restart (waited for up to 180 s)
def test_console_in_chromium_matches_clickhouse_drills_down_and_shows_stage_failures(
    tmp_path, kafka_bootstrap, monkeypatch
):
    suffix = uuid.uuid4().hex[:8]
    topo, rename = _topology(tmp_path, suffix)
    env, port = platform_env(tmp_path / "data", kafka_bootstrap, topo, f"edream-dash-{suffix}")
    env.pop("EDREAM_DASHBOARD_TABLES", None)
    url = f"http://127.0.0.1:{port}/"
    proc = start_platform(env, "--no-demo")
    out, stopped = "", False
    try:
        _wait_http(port)
        feed = Feed(kafka_bootstrap, rename)
        feed.round(1)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            first = _wait_panels(page, _round_shown(1))
            assert page.locator("#conn").inner_text() == "live"
            page.screenshot(path=OUT / "dashboard-round1.png", full_page=True)

            t_ms, page_kw, tip = portfolio_tooltip(page)
            page.screenshot(path=OUT / "dashboard-tooltip.png")

            # round 2's readings come after the time the tooltip showed: stamped at or before it they would be
            # late readings that change that time's value after the page showed it (6 vs 12 kW when the rounds
            # were more than 15 s apart)
            feed.round(2, after_ms=t_ms)
            second = _wait_panels(
                page,
                lambda s: (
                    _round_shown(2)(s)
                    and all(s[p]["digest"] != first[p]["digest"] for p in first if p not in UNCHANGED)
                ),
            )
            page.screenshot(path=OUT / "dashboard-round2.png", full_page=True)
            assert all(second[p]["updates"] > first[p]["updates"] for p in first if p not in UNCHANGED), (
                "panels are pushed over SSE"
            )

            # drill-down: the order link opens the order page with the shortfall, the revision and the penalty
            page.locator("#panel-flex a", has_text="order-1").first.click()
            page.wait_for_url("**/page/order/order-1")
            page.wait_for_function("() => Number(document.getElementById('page').dataset.loaded) >= 1")
            order = page.locator("#page").inner_text()
            page.screenshot(path=OUT / "dashboard-order.png", full_page=True)
            assert "SHORTFALL" in order and "AMENDED" in order and "ACTIVE" in order
            assert "0.15 EUR\npenalties" in order and "2\nrevisions" in order

            # drill-downs from the order page and the dashboard: prosumer, market session, anchor window
            shown = _drill_downs(page, url)

            # first paint from /api/dashboard: every panel within 3 s, 10 loads in a row
            paints = [first_paint_ms(page, url, len(PANELS)) for _ in range(10)]
            print(f"first paint of all {len(PANELS)} panels (ms): {[round(p) for p in paints]}")
            assert max(paints) < 3000

            # a stage process stopped (SIGSTOP), then killed (SIGKILL): red on the page with an alert within 10 s
            # each (the acceptance bound), the reason shown; the killed one is restarted and replaces its red row
            stage = _stage_process(proc.pid)
            stage.suspend()
            try:
                stopped_s = _red_with_alert(page, f"process {stage.pid} stopped by a signal")
                page.screenshot(path=OUT / "dashboard-stage-stopped.png", full_page=True)
            finally:
                stage.resume()
            stage.kill()
            killed_s = _red_with_alert(page, f"process {stage.pid} killed by SIGKILL")
            page.screenshot(path=OUT / "dashboard-stage-killed.png", full_page=True)
            print(f"stage red with an alert: {stopped_s:.1f} s after SIGSTOP, {killed_s:.1f} s after SIGKILL")
            try:
                page.wait_for_function(  # restarted: one row for the stage, UP, no alert
                    f"""() => {{ const rows = [...document.querySelectorAll('#panel-health tr')]
                                    .filter(r => r.innerText.startsWith('{STAGE}\\t'));
                              return rows.length === 1 && !rows[0].classList.contains('bad')
                                  && !document.getElementById('panel-health').innerText.includes('EdreamStageDown'); }}""",
                    timeout=180_000,  # a restart rejoins the group and restores its state; slow on a loaded CI machine
                )
            except PlaywrightTimeout:
                stages = httpx.get(f"{url}api/status", timeout=30).json()["stages"]
                raise AssertionError(
                    f"restarted stage not shown UP alone in 180 s; /api/status stages: {stages}; "
                    f"panel: {page.locator('#panel-health').inner_text()[:1500]}"
                ) from None
            assert not errors, errors
            # Ctrl-C with the dashboard still open: its stream ends with the server (aiohttp waited 60 s per open
            # stream before, and the platform took 131 s to stop)
            out = stop_platform(proc)
            stopped = True
    finally:
        if not stopped:
            out = stop_platform(proc)
        (OUT / "dashboard-run.log").parent.mkdir(parents=True, exist_ok=True)
        (OUT / "dashboard-run.log").write_text(out or "")

    got = query_stopped_platform(
        env["EDREAM_DATA_DIR"],
        {
            "portfolio": (PORTFOLIO_SQL, {"t": t_ms, "stale": LOAD_STALE_AFTER_MS}),
            "penalty": (
                "SELECT amount_micro / 1e6 FROM settlement_flex FINAL WHERE party_id = 'prosumer-0' AND amount_micro < 0",
                {},
            ),
            "trades": (
                "SELECT count() FROM market_trades FINAL WHERE session_id = {s:String}",
                {"s": shown["session"]},
            ),
            "price": (
                "SELECT price_micro_per_kwh / 1e6 FROM market_clearing FINAL WHERE session_id = {s:String}",
                {"s": shown["session"]},
            ),
            "leaves": (
                "SELECT count() FROM chain_anchor_leaves FINAL WHERE window_id = {w:String}",
                {"w": shown["window"]},
            ),
        },
    )
    ((ch_kw, meters),) = got["portfolio"]
    assert meters == 3, tip
    assert page_kw == pytest.approx(ch_kw, rel=0.01), (
        f"page {page_kw} kW vs ClickHouse {ch_kw} kW at {t_ms}: {tip}"
    )
    assert got["penalty"] == [[shown["penalty"]]] and got["trades"] == [[shown["trades"]]], (got, shown)
    assert got["price"] == [[pytest.approx(shown["price"])]] and got["leaves"] == [[shown["records"]]], (
        got,
        shown,
    )
    assert not noisy_lines_after_stopping(out), noisy_lines_after_stopping(out)
    assert "edream: stopped" in out
