"""`make run` as a newcomer sees it (with DEMO_TIMELAPSE=true, so the flex lifecycle completes within the test's
minutes): `edream run` (demo on) with its embedded broker and chain as children,
`edream status`, a refused second start, the field site's devices arriving through the connector, every
dashboard panel filled within minutes, the console in Chromium (portfolio kW against ClickHouse, the defector's
order page with its shortfall, re-dispatch revision and penalty, first paints within 3 s (median of 10)), and Ctrl-C stopping
everything quietly.

Real embedded stack (Tansu, chDB, anvil), real services; the demo's community and signed market orders go through
the same topics as production traffic, and its DSO (shapeshifter-uftp's DSO role, a process of its own) requests,
orders and settles flexibility over USEF/UFTP with the platform's gateway: the FlexSettlement of an order matches
its settlement records, which verify against the chain. Bounded waits only (no timing assertions). This is the
suite's only run with the demo: its field simulators listen on fixed ports.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from browser import (
    OUT,
    chromium,
    chromium_missing_reason,
    first_paint_ms,
    portfolio_kw_of_stopped_platform,
    portfolio_tooltip,
)
from platform_process import noisy_lines_after_stopping, start_platform, stop_platform, wait_status

from edream.embedded.process import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(chromium_missing_reason() is not None, reason=str(chromium_missing_reason())),
]
#: Panels of the console (all must paint on the first load).
PANELS = 8

#: ClickHouse tables behind the panels that the demo must fill (see docker/README.md)
PANEL_TABLES = (
    "measurements",  # pipeline + load
    "intervals",
    "forecasts",  # load
    "flex_orders",  # flex
    "flex_deviations",
    "settlement_flex",
    "market_orders",
    "market_clearing",  # market
    "market_trades",
    "vpp_assets",  # vpp
    "vpp_export",
    "vpp_capability",
    "grid_congestion",  # grid: the demo community on its simbench grid
)


def _panel(port: int, pid: str) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/api/panels/{pid}", timeout=10).json()


def _tansu_children(pid: int) -> list[psutil.Process]:
    try:
        return [c for c in psutil.Process(pid).children(recursive=True) if "tansu" in c.name()]
    except psutil.NoSuchProcess:
        return []


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edream.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


def _devices_reporting(port: int, more_than: int, timeout: float) -> int:
    deadline, reporting = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and reporting <= more_than:
        stats = httpx.get(f"http://127.0.0.1:{port}/api/panels/pipeline", timeout=10).json()["blocks"][0]
        reporting = next(x["value"] for x in stats["stats"] if x["label"] == "devices reporting")
        time.sleep(2)
    return reporting


def _stats(panel: dict) -> dict:
    return {s["label"]: s["value"] for b in panel["blocks"] if b["kind"] == "stats" for s in b["stats"]}


def _defector_order(port: int, timeout: float) -> tuple[str, dict]:
    """The demo's defector order once it has a FINAL shortfall, a re-dispatch revision and a penalty settled."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        (orders,) = [b for b in _panel(port, "flex")["blocks"] if b["kind"] == "table"]
        for row in orders["rows"]:
            if row["shortfall"] > 0:
                oid = row["order_id"]["text"]
                page = httpx.get(f"http://127.0.0.1:{port}/api/page/order/{oid}", timeout=30).json()
                last = (oid, _stats(page))
                if last[1]["revisions"] >= 2 and last[1]["penalties"] > 0:
                    return last
        time.sleep(3)
    raise AssertionError(f"no order with a shortfall, a re-dispatch and a penalty; last: {last}")


def _console_in_chromium(port: int) -> tuple[int, float, str]:
    """First paint x10, the defector's order page; returns the portfolio tooltip (UTC ms, kW, text)."""
    oid, stats = _defector_order(port, timeout=240)
    url = f"http://127.0.0.1:{port}/"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        paints = [first_paint_ms(page, url, PANELS, timeout_ms=10_000) for _ in range(10)]
        print(f"demo: first paint of all {PANELS} panels (ms): {[round(p) for p in paints]}")
        # the 3-s first paint is the typical one: one paint of ten may stall while this 2-core machine also runs
        # five other platform tests (seen: 3.4 s)
        assert statistics.median(paints) < 3000, paints
        page.screenshot(path=OUT / "demo-dashboard.png", full_page=True)
        tooltip = portfolio_tooltip(page, before_newest=True)  # the newest point may still be filling
        page.locator("#panel-flex a", has_text=oid).first.click()
        page.wait_for_function("() => Number(document.getElementById('page').dataset.loaded) >= 1")
        text = page.locator("#page").inner_text()
        page.screenshot(path=OUT / "demo-order.png", full_page=True)
        assert "SHORTFALL" in text and "PENALTY" in text, text[:2000]
        shown = re.search(
            r"(\d+)\nrevisions", text
        )  # re-dispatch may add revisions after the stats were read
        assert shown and int(shown.group(1)) >= stats["revisions"] and "penalties" in text, text[:300]
    return tooltip


def _record_proof(port: int, settlement_id: str, timeout: float) -> dict:
    """The record's proof against the chain, once its window's manifest is in ClickHouse: the DSO settles when the
    window's root verifies (records vs chain), and the manifest (``chain.anchor.leaves.v1``) reaches its table
    through the sink, which on a loaded machine can be minutes behind."""
    deadline = time.monotonic() + timeout
    while True:
        proof = httpx.get(
            f"http://127.0.0.1:{port}/api/verify/record", params={"id": settlement_id}, timeout=60
        ).json()
        if proof["status"] == "VALID" or proof["window_id"] is not None or time.monotonic() > deadline:
            return proof
        time.sleep(5)


def _dso_settled_over_uftp(port: int, rest_port: str, timeout: float) -> None:
    """The demo DSO's conversation with the platform's UFTP gateway, from its audit trail (REST API): a FlexRequest
    answered by a FlexOffer, a FlexOrder of it accepted, and, once the order's records are anchored, a
    FlexSettlement the gateway finds matching them; one of those records then verifies against the chain. The demo's
    OpenADR site (a VEN of openleadr) opted in to a DR event of an order."""
    rest, deadline, said = f"http://127.0.0.1:{rest_port}/api/v1", time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        items = httpx.get(f"{rest}/uftp/messages", params={"limit": 1000}, timeout=30).json()["items"]
        said = sorted({(m["direction"], m["message_type"]) for m in items})
        answers = [m for m in items if m["message_type"] == "FlexSettlementResponse"]
        if answers:
            break
        time.sleep(5)
    else:
        raise AssertionError(f"no FlexSettlementResponse within {timeout} s; said: {said}")
    assert {
        ("IN", "FlexRequest"),
        ("OUT", "FlexRequestResponse"),
        ("OUT", "FlexOffer"),
        ("IN", "FlexOrder"),
        ("OUT", "FlexOrderResponse"),
        ("IN", "FlexSettlement"),
    } <= set(said), said
    xml = answers[0]["xml"]
    assert 'Result="Accepted"' in xml and 'Disposition="Accepted"' in xml and "Disputed" not in xml, xml
    order_ref = re.search(r'OrderReference="([^"]+)"', xml).group(1)
    [acc] = httpx.get(f"{rest}/flex/acceptances", params={"acceptance_id": order_ref}, timeout=30).json()[
        "items"
    ]
    revisions = httpx.get(f"{rest}/flex/orders", params={"offer_id": acc["offer_id"]}, timeout=30).json()
    [order_id] = {o["order_id"] for o in revisions["items"]}  # every revision of the one order
    records = httpx.get(f"{rest}/flex/settlements", params={"reference_id": order_id}, timeout=30).json()[
        "items"
    ]
    assert records and acc["dso_id"] == "dso-demo"
    proof = _record_proof(port, records[0]["settlement_id"], timeout=180)
    assert proof["status"] == "VALID", proof
    # the order reached the charger owner's EV charger as a set-point the connector executed (field site evse-24)
    done = httpx.get(f"{rest}/devices/command-results", params={"device_id": "evse-24"}, timeout=30).json()
    assert any(r["status"] == "EXECUTED" for r in done["items"]), done
    # the same order reached the OpenADR site (prosumer-002's VEN, the charger owner's) as a DR event it opted in to
    answers = httpx.get(f"{rest}/flex/dr-responses", params={"party_id": "ven-demo-site"}, timeout=30).json()
    assert any(a["opt"] == "OPT_IN" and a["prosumer_id"] == "prosumer-002" for a in answers["items"]), answers


def _only_late_requests_refused(rest_port: str) -> None:
    """Every scripted request and order is valid: the only refusals allowed are the demo DSO's FlexRequests the desk
    took too late (on a loaded machine it can be behind by more than the request's 90-s lead; the DSO asks again a
    minute later)."""
    got = httpx.get(f"http://127.0.0.1:{rest_port}/api/v1/rejections", timeout=30).json()["items"]
    late = {"SLOT_IN_PAST", "DEADLINE_PASSED"}
    assert all(r["subject_kind"] == "FlexRequest" and r["code"] in late for r in got), got


@pytest.mark.timeout(840)
def test_make_run_demo_day_fills_the_dashboard_and_ctrl_c_stops_everything(tmp_path, monkeypatch):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN")}
    env.update(EDREAM_DATA_DIR=str(tmp_path), EDREAM_WEB_PORT=str(port), EDREAM_REST_PORT=str(free_port()))
    # the grid's requests are for hours ahead: the timed 1-minute ones show the lifecycle within this test's minutes
    env.update(DEMO_TIMELAPSE="true")
    # the broker keeps its log in memory here: durability across kill -9 is the chaos suite's and the stack test's
    # subject; SeaweedFS under the durable log takes ~40 % of a core, and make test runs the chaos suite beside this
    env.update(EDREAM_BROKER_STORAGE="memory")
    proc = start_platform(env)
    out, reporting, t_ms, page_kw, tip = "", 0, 0, 0.0, ""
    try:
        st = wait_status(
            port, lambda s: s["clickhouse"].get("tables", {}).get("measurements", 0) >= 5, timeout=300
        )
        tansu = _tansu_children(proc.pid)
        assert len(tansu) == 1, "the embedded broker runs as a child of the platform"
        assert st["ethereum"].startswith("http://127.0.0.1:") and st["broker"].startswith("127.0.0.1:")
        cli = _cli(env, "status")
        assert "platform    running" in cli.stdout and "kafka       ok" in cli.stdout, cli.stdout
        assert "table measurements:" in cli.stdout
        assert "ethereum    ok " in cli.stdout and "\nlag         " in cli.stdout, cli.stdout
        second = _cli(env, "run")
        assert second.returncode == 2 and "already running" in second.stderr, second.stderr

        st = wait_status(
            port,
            lambda s: all(s["clickhouse"].get("tables", {}).get(t, 0) > 0 for t in PANEL_TABLES),
            # ~150 s on an idle machine; make test runs five other heavy tests beside it, and a flex request the desk
            # could not offer on yet (no outlook of the prosumers) is asked again once it expired
            timeout=480,
        )
        tables = st["clickhouse"]["tables"]
        assert tables["measurements"] >= 50 * 120, "an hour of history for 50 meters is uploaded on start"
        assert tables["intervals"] >= 50 * 96, "and a day of intervals before it, on a fresh data dir"
        assert st["counters"]["demo.FlexEnrolment"] == 50 and st["counters"]["demo.MarketParticipant"] == 50
        _only_late_requests_refused(env["EDREAM_REST_PORT"])
        assert (tmp_path / "market.yaml").read_text().startswith("# written by the edream demo")

        flex = _panel(port, "flex")
        (orders,) = [b for b in flex["blocks"] if b["kind"] == "table"]
        # some order has delivered slots (a timed one; the grid's congestion orders are for hours ahead)
        assert any(row["within"] > 0 for row in orders["rows"]), orders["rows"]
        market = _stats(_panel(port, "market"))
        assert market["slots cleared"] >= 1 and market["volume"] > 0
        load = _panel(port, "load")
        names = {
            s["name"] for b in load["blocks"] if b["kind"] == "series" for s in b["series"] if s["points"]
        }
        assert {"measured", "forecast"} <= names
        # Anchors need a closed 15-min anchoring window (+15 min grace) of settlements: not within this bound.
        assert "windows anchored" in _stats(_panel(port, "anchoring"))
        vpp = _stats(_panel(port, "vpp"))
        assert (
            vpp["windows evaluated"] >= 1
            and vpp["next window offered"] > 0
            and vpp["capability answers"] >= 1
        )
        t_ms, page_kw, tip = _console_in_chromium(port)
        _dso_settled_over_uftp(port, env["EDREAM_REST_PORT"], timeout=300)
        # the field site: protocol simulators -> connector process -> broker -> sink (devices beyond the demo's)
        reporting = _devices_reporting(port, more_than=50, timeout=150)
        if reporting > 50:
            assert "device up" in (tmp_path / "logs" / "connector.log").read_text()
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert 'edream_counter{name="sink.measurements.rows"}' in metrics
    finally:
        out = stop_platform(proc)
        print(out[-8000:])  # shown by pytest only when the test fails
    # the portfolio on the page equals an independent query over the enrolled prosumers' meters (chDB is free now)
    ch_kw, meters = portfolio_kw_of_stopped_platform(tmp_path, t_ms)
    assert meters == 50, tip
    assert page_kw == pytest.approx(ch_kw, rel=0.01), f"page {page_kw} kW vs ClickHouse {ch_kw} kW: {tip}"
    noisy = noisy_lines_after_stopping(out)
    assert not noisy, noisy[:20]
    field = [line for line in out.splitlines() if "field" in line]
    assert reporting > 50, f"only {reporting} devices reporting: the field site never arrived: {field}"
    assert "edream: stopped (embedded broker and chain shut down)" in out
    psutil.wait_procs(tansu, timeout=10)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tansu)
    assert not (tmp_path / "run.json").exists()
