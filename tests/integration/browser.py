"""Playwright on Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``; Playwright downloads no
browser): one headless browser per test module, screenshots under ``test-output/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from edream.dashboard.panels.load import STALE_AFTER_MS
from edream.paths import REPO_ROOT

CHROMIUM = Path(os.environ.get("EDREAM_CHROMIUM", "/usr/bin/chromium"))
OUT = REPO_ROOT / "test-output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
]


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here (None: they can). In CI a missing browser is a failure."""
    if CHROMIUM.is_file() or os.environ.get("CI"):
        return None
    return f"needs Debian chromium at {CHROMIUM}: apt-get install -y chromium (make test does it)"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def portfolio_tooltip(page, before_newest: bool = False) -> tuple[int, float, str]:
    """Hover the portfolio chart at its newest measured point (``before_newest``: the measured point before it);
    (UTC ms, kW, tooltip text) as the operator sees it. On a live platform the newest point is provisional: readings
    of its 15-s step may still be on their way to ClickHouse (the sink's batch), and a query after the platform
    stopped would see them."""
    chart = page.locator("#panel-load .chart").first
    x, y = chart.evaluate(
        """(c, back) => { const u = c._uplot, ys = u.data[1], gap = i => ys[i] === null || ys[i] === undefined;
                 let i = ys.length - 1; while (i > 0 && gap(i)) i--;
                 if (back) { i = Math.max(0, i - 1); while (i > 0 && gap(i)) i--; }
                 const r = u.over.getBoundingClientRect();
                 return [r.left + u.valToPos(u.data[0][i], 'x'), r.top + r.height / 2]; }""",
        before_newest,
    )
    page.mouse.move(x, y)
    tip = chart.locator(".u-tooltip")
    tip.wait_for(state="visible", timeout=5000)
    text = tip.inner_text()
    when = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", text).group(1)
    kw = float(re.search(r"measured: (-?[\d.]+) kW", text).group(1))
    t_ms = int(datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)
    return t_ms, kw, text


#: Independent of the dashboard's code: per meter of an enrolled prosumer, its newest active-power reading at or
#: before ``t`` (UTC ms) no older than the staleness limit ``stale`` (ms); their sum (kW) and how many meters.
PORTFOLIO_SQL = """SELECT sum(kw), count() FROM (
    SELECT device_id, argMax(if(unit = 'W', value / 1000, value), ts) AS kw FROM measurements FINAL
    WHERE quantity = 'P_ACTIVE' AND phase = 'TOTAL' AND value IS NOT NULL
      AND ts <= fromUnixTimestamp64Milli({t:Int64}) AND ts >= fromUnixTimestamp64Milli({t:Int64} - {stale:Int64})
      AND prosumer_id IN (SELECT prosumer_id FROM flex_enrolments FINAL WHERE active)
    GROUP BY device_id)"""


def first_paint_ms(page, url: str, panels: int, timeout_ms: int = 3000) -> float:
    """Load the dashboard; ms from navigation until all ``panels`` are painted with data, every chart drawn (or
    saying it has no data), from ``/api/dashboard`` (fails after ``timeout_ms``)."""
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        f"""() => document.body.dataset.firstPaint
              && document.querySelectorAll('section.panel[data-empty="false"]').length === {panels}
              && [...document.querySelectorAll('section.panel .chart')].every(c => c.querySelector('.uplot, .note'))""",
        timeout=timeout_ms,
    )
    return page.evaluate("() => performance.now()")


def open_page(page, link) -> None:
    """Click a drill-down link (a Playwright locator) and wait until the page has loaded its data."""
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")
    page.wait_for_function("() => Number(document.getElementById('page').dataset.loaded) >= 1")


def page_stats(page) -> dict[str, str]:
    """The drill-down page's stats as shown: label -> value text (with its unit)."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#page .stat')]
                 .map(s => [s.querySelector('.l').innerText, s.querySelector('.v').innerText]))"""
    )


def page_table(page, title: str) -> list[dict[str, str]]:
    """Rows (header -> cell text) of the drill-down page's table whose heading starts with ``title``."""
    return page.evaluate(
        """title => { const h = [...document.querySelectorAll('#page h3')].find(e => e.innerText.startsWith(title));
                      const t = h && h.parentElement.querySelector('table');
                      if (!t) return [];
                      const [head, ...rows] = [...t.querySelectorAll('tr')];
                      const cols = [...head.children].map(c => c.innerText);
                      return rows.map(r => Object.fromEntries([...r.children].map((c, i) => [cols[i], c.innerText]))); }""",
        title,
    )


def query_stopped_platform(data_dir: Any, queries: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, list]:
    """Run ``{name: (sql, parameters)}`` on a stopped platform's chDB, opened in a child process (a process can
    open only one chDB path, and pytest workers may already hold the session's); ``{name: result rows}``."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, clickhouse_connect\n"
        f"c = clickhouse_connect.get_client(dsn='chdb://{Path(data_dir) / 'chdb'}')\n"
        "qs = json.loads(sys.stdin.read())\n"
        "print(json.dumps({k: [list(r) for r in c.query(q, parameters=p).result_rows] for k, (q, p) in qs.items()},"
        " default=str))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def portfolio_kw_of_stopped_platform(data_dir: Any, t_ms: int) -> tuple[float, int]:
    """:data:`PORTFOLIO_SQL` at ``t_ms`` on a stopped platform's chDB: (kW, meters)."""
    (row,) = query_stopped_platform(data_dir, {"kw": (PORTFOLIO_SQL, {"t": t_ms, "stale": STALE_AFTER_MS})})[
        "kw"
    ]
    return float(row[0]), int(row[1])
