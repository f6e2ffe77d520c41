"""Drive the running dashboard in headless Chromium (Debian's package, through Playwright's
Python package): open each view, wait for its charts, check that no error is shown, save a
screenshot. Used by the dashboard's browser test and to make the screenshots in docs/.

    python -m analytics_platform_tests.screenshots http://127.0.0.1:8501 docs/ [VIEW ...] [?QUERY]
"""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from analytics_platform_tests import chromium

CHARTED = {"Overview", "Sources", "Devices", "Locations", "Behaviour", "Web vitals", "Goals",
           "Funnel", "Journeys", "Cohorts"}


def wait_until_up(url: str, timeout: float = 90.0) -> None:
    """Wait for Streamlit's health endpoint to answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dashboard at {url} did not start in {timeout:g} s")
        time.sleep(0.3)


def open_view(page: Any, view: str) -> None:
    """Click the navigation's link to ``view`` (st.navigation, in the sidebar) and wait until
    its run is over."""
    page.get_by_test_id("stSidebarNavLink").filter(has_text=view).first.click()
    wait_for_view(page, view)


def wait_for_view(page: Any, view: str) -> None:
    """Wait until the run that draws ``view`` is over."""
    page.wait_for_selector(f'h2:has-text("{view}")', timeout=60_000)
    # the previous view's elements stay, greyed, until this run is over
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')",
                           timeout=60_000)


def sidebar_filters(page: Any) -> dict[str, str]:
    """What the sidebar shows: the date range (``2026/03/03–2026/03/04``) and each filter's
    chosen values (``Device: desktop``), as the reader sees them."""
    def text(box: Any) -> tuple[str, str]:
        label = box.get_by_test_id("stWidgetLabel").inner_text().strip()
        return label, box.inner_text().strip()[len(label):]

    sidebar = page.get_by_test_id("stSidebar")
    label, dates = text(sidebar.get_by_test_id("stDateInput"))
    shown = {"Dates": "".join(dates.split())}
    for box in sidebar.get_by_test_id("stMultiSelect").all():
        label, chosen = text(box)
        shown[label] = ", ".join(chosen.split())
    return shown


def capture(url: str, out_dir: Path, views: list[str], address: str = "") -> dict[str, dict]:
    """For each view: its screenshot path, the metrics shown, the number of charts and the
    page's address. ``address``: a query string (``?source=google``) the first page opens
    with, as a shared link would."""
    from playwright.sync_api import sync_playwright

    wait_until_up(url)
    out_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = chromium.launch(p)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url + address, wait_until="networkidle")
        page.wait_for_selector('[data-testid="stSidebar"]', timeout=90_000)
        for view in views:
            open_view(page, view)
            if view in CHARTED:
                page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            page.wait_for_timeout(800)  # let the charts draw
            errors = page.locator('[data-testid="stException"]').all_inner_texts()
            path = out_dir / f"dashboard-{view.lower().replace(' ', '-')}.png"
            page.screenshot(path=str(path), full_page=True)
            found[view] = {
                "screenshot": path,
                "address": page.url,
                "errors": errors,
                "charts": page.locator(".js-plotly-plot").count(),
                "metrics": dict(zip(
                    page.locator('[data-testid="stMetricLabel"]').all_inner_texts(),
                    page.locator('[data-testid="stMetricValue"]').all_inner_texts(),
                    strict=False)),
            }
        browser.close()
    return found


if __name__ == "__main__":
    views = [v for v in sys.argv[3:] if not v.startswith("?")] or ["Overview", "Funnel"]
    query = next((v for v in sys.argv[3:] if v.startswith("?")), "")
    result = capture(sys.argv[1], Path(sys.argv[2]), views, query)
    for view, r in result.items():
        print(view, r["screenshot"], "errors:", r["errors"] or "none", "charts:", r["charts"])
