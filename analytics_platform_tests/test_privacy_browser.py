"""The tracker's two modes in a real browser (Debian's Chromium, via Playwright) against the
real collector: without consent nothing is stored on the device and the raw records carry the
server's visitor_hash; with consent the ids are stored, and withdrawing it deletes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analytics_platform_tests import chromium
from analytics_platform_tests.test_browser import DESKTOP_UA, raw_records, wait_accepted
from analytics_platform_tests.test_collector import collector_factory  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not chromium.available(), reason=chromium.MISSING)

# A small multi-page site (real page loads, not an SPA), served on the collector's origin by the
# browser's router: each page links to the next.
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<script src="/analytics.js" data-endpoint="/v1/events" {attrs} defer></script></head>
<body><h1>{title}</h1><a id="next" href="{next}">next</a></body></html>"""
PAGES = {"/site/": "/site/pricing", "/site/pricing": "/site/contact", "/site/contact": "/site/"}

DEVICE_STATE = """async () => ({
  local: Object.keys(localStorage).length, session: Object.keys(sessionStorage).length,
  cookie: document.cookie, idb: (await indexedDB.databases()).length,
  caches: (await caches.keys()).length,
  keys: Object.keys(localStorage)})"""


def browse(url: str, attrs: str, script: Any) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # The user agent on the command line: Playwright's per-context one is not applied to the
        # beacons a page sends as it unloads (they said "HeadlessChrome" with Chromium's version).
        browser = p.chromium.launch(executable_path=chromium.PATH, headless=True,
                                    args=[*chromium.ARGS, f"--user-agent={DESKTOP_UA}"])
        ctx = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 720})

        def serve(route: Any) -> None:
            path = route.request.url.removeprefix(url).split("?")[0]
            route.fulfill(status=200, content_type="text/html", body=PAGE.format(
                title=path, next=PAGES.get(path, "/site/"), attrs=attrs))

        ctx.route(f"{url}/site/**", serve)
        page = ctx.new_page()
        script(page, ctx)
        ctx.close()
        browser.close()


def three_pages_and_a_reload(page: Any, url: str) -> None:
    page.goto(f"{url}/site/?utm_source=newsletter&token=secret")
    page.wait_for_function("window.analytics !== undefined")
    for _ in range(2):
        page.click("#next")  # a page load: pagehide sends what is left with sendBeacon
        page.wait_for_load_state("load")
        page.wait_for_function("window.analytics !== undefined")
    page.reload()
    page.wait_for_function("window.analytics !== undefined")
    page.evaluate("analytics.flush()")
    page.wait_for_timeout(300)


def test_default_mode_stores_nothing_and_the_server_hashes(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.3)
    state: dict[str, Any] = {}

    def script(page: Any, ctx: Any) -> None:
        three_pages_and_a_reload(page, c.url)
        state.update(page.evaluate(DEVICE_STATE))
        state["context_cookies"] = ctx.cookies()

    browse(c.url, "", script)
    assert state == {"local": 0, "session": 0, "cookie": "", "idb": 0, "caches": 0, "keys": [],
                     "context_cookies": []}
    assert wait_accepted(c.url, 4) >= 4
    c.stop()
    records = raw_records(c.data)
    views = [r for r in records if r["event_type"] == "page_view"]
    assert [r["page_path"] for r in views] == ["/site/", "/site/pricing", "/site/contact",
                                               "/site/contact"]
    assert views[0]["utm_source"] == "newsletter"
    assert all(r["session_id"] is None and "visitor_id" not in r and r["consent"] is False
               for r in records)
    # one browser, one address, one day: one visitor_hash across pages and the reload
    assert len({r["visitor_hash"] for r in records}) == 1
    assert "secret" not in json.dumps(records)
    # and the pipeline makes it one visit (CONTRACT §4): one session of its four page views,
    # no visitor_id, one visitor of the day
    con = pipeline(c.data)
    sessions = con.execute("SELECT pageviews, entry_page, exit_page, visitor_id, visitor_hash, "
                           "source FROM sessions").fetchall()
    kpis = con.execute("SELECT visitors, sessions, consented_sessions FROM kpis_daily").fetchall()
    con.close()
    assert sessions == [(4, "/site/", "/site/contact", None, records[0]["visitor_hash"],
                         "newsletter")]
    assert kpis == [(1, 1, 0)]


def pipeline(data: Any) -> Any:
    """Today's backfill over the collector's raw lake; the warehouse, read-only."""
    import duckdb

    from analytics_platform_tests.topology import backfill_today

    backfill_today(data)
    return duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)


def test_consent_mode_stores_ids_and_withdrawing_deletes_them(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.3)
    state: dict[str, Any] = {}

    def script(page: Any, ctx: Any) -> None:
        three_pages_and_a_reload(page, c.url)
        state["with_consent"] = page.evaluate(DEVICE_STATE)
        page.evaluate("analytics.consent(false)")
        state["withdrawn"] = page.evaluate(DEVICE_STATE)
        page.evaluate("analytics.track('after'); analytics.flush()")
        page.wait_for_timeout(300)
        state["after"] = page.evaluate(DEVICE_STATE)
        state["context_cookies"] = ctx.cookies()
        # (the next page must no longer say data-consent="granted": the site's part)

    browse(c.url, 'data-consent="granted"', script)
    assert {"_an_s", "_an_v"} <= set(state["with_consent"]["keys"]) <= {"_an_s", "_an_v", "_an_q"}
    assert state["withdrawn"] == {"local": 0, "session": 0, "cookie": "", "idb": 0, "caches": 0,
                                  "keys": []}
    assert state["after"] == state["withdrawn"] and state["context_cookies"] == []
    assert wait_accepted(c.url, 5) >= 5
    c.stop()
    records = raw_records(c.data)
    consented = [r for r in records if r.get("visitor_id")]
    after = [r for r in records if r.get("props", {}).get("name") == "after"]
    assert {r["page_path"] for r in consented if r["event_type"] == "page_view"} == {
        "/site/", "/site/pricing", "/site/contact"}
    assert len({r["session_id"] for r in consented}) == 1
    assert len({r["visitor_id"] for r in consented}) == 1
    assert all(r["consent"] is True and "visitor_hash" not in r for r in consented)
    assert after and all(r["session_id"] is None and "visitor_id" not in r
                         and r["consent"] is False and r["visitor_hash"] for r in after)
