"""Playwright on Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``; Playwright downloads no
browser): one headless browser per test module, screenshots under ``test-output/``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

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
