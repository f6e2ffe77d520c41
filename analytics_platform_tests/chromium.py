"""Debian's Chromium, driven headless by Playwright's Python package (never `playwright
install`): where it is and how it is started, for the browser tests, the dashboard screenshots
(``screenshots.py``) and the collector benchmark. Test-only tooling: not in the shipped
package."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

PATH = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home, which this closed
# network refuses.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
MISSING = ("Chromium is not installed: `make test` installs it on Debian (apt-get install -y "
           "chromium); elsewhere install it and put it on PATH")


def available() -> bool:
    return Path(PATH).exists()


def launch(playwright: Any) -> Any:
    """A headless browser from a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=PATH, headless=True, args=ARGS)
