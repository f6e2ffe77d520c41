"""End to end in a real browser: headless Chromium (Debian's package, driven by Playwright's
Python package) visits the collector's demo page; the raw lake and then the pipeline must show
that one visit exactly."""

from __future__ import annotations

import gzip
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from analytics_platform_tests import chromium
from analytics_platform_tests.test_collector import collector_factory  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not chromium.available(), reason=chromium.MISSING)
# Headless Chromium says "HeadlessChrome" and the bot filter rightly drops it: the visit uses an
# ordinary desktop user agent.
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


def raw_records(data: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((data / "raw").rglob("*.gz")):
        out += [json.loads(x) for x in gzip.decompress(p.read_bytes()).splitlines()]
    return sorted(out, key=lambda r: r["event_ts"])


def visit(url: str, user_agent: str | None = None, gpc: bool = False) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = chromium.launch(p)
        ctx = browser.new_context(user_agent=user_agent, viewport={"width": 1280, "height": 720})
        if gpc:
            ctx.add_init_script("Object.defineProperty(Navigator.prototype, "
                                "'globalPrivacyControl', {get: () => true})")
        page = ctx.new_page()
        page.goto(f"{url}/demo")
        page.wait_for_function("window.analytics !== undefined")
        page.wait_for_timeout(300)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(600)
        page.click("#cta")
        page.wait_for_url("**/demo/book-a-call")
        page.wait_for_timeout(200)
        page.fill("#name", "Ada")
        page.fill("#topic", "Our funnel")
        page.click("#send")
        page.wait_for_url("**/demo/thanks")
        page.wait_for_timeout(300)
        ctx.close()  # pagehide: the tracker sends what is left with sendBeacon
        browser.close()


def wait_accepted(url: str, n: int, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = httpx.get(f"{url}/metrics").json()["accepted"]
        if got >= n:
            break
        time.sleep(0.2)
    return got


# The long home page is scrolled to the bottom; the booking and thank-you pages fit in the
# window, so they are seen to 100 % as soon as they show.
SCROLLED = [("scroll_depth", "/demo")] * 4
EXPECTED = [
    ("page_view", "/demo"), *SCROLLED, ("cta_click", "/demo"),
    ("page_view", "/demo/book-a-call"), *[("scroll_depth", "/demo/book-a-call")] * 4,
    ("form_start", "/demo/book-a-call"), ("form_submit", "/demo/book-a-call"),
    ("page_view", "/demo/thanks"), *[("scroll_depth", "/demo/thanks")] * 4,
]


# Sent when a page is left, so their number depends on timing (engaged seconds only once a
# second of visibility has passed): checked on their own.
LEAVING = ("engagement", "web_vitals")


def test_a_visit_lands_as_one_session_with_its_conversion(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    visit(c.url, user_agent=DESKTOP_UA)
    assert wait_accepted(c.url, len(EXPECTED) + 1) >= len(EXPECTED) + 1
    c.stop()

    every = raw_records(c.data)
    records = [r for r in every if r["event_type"] not in LEAVING]
    assert [(r["event_type"], r["page_path"]) for r in records] == EXPECTED
    # the web vitals of the page load, once, sent when the SPA left its first page
    [vitals] = [r for r in every if r["event_type"] == "web_vitals"]
    assert vitals["page_path"] == "/demo" and vitals["props"]["ttfb"] >= 0
    assert all(r["page_path"] in ("/demo", "/demo/book-a-call", "/demo/thanks")
               for r in every if r["event_type"] == "engagement")
    assert all("time_zone" not in r for r in every)  # mapped to a country, never stored
    assert len({r["session_id"] for r in records}) == 1
    assert len({r.get("visitor_id") for r in records}) == 1 and "visitor_id" in records[0]
    assert [r["props"]["depth"] for r in records if r["event_type"] == "scroll_depth"] == [
        25, 50, 75, 100] * 3
    assert records[5]["props"] == {"cta": "book_call", "experiment": "cta_copy",
                                   "variant": "book_now"}
    assert records[11]["props"] == {"form": "book_call"}
    assert all(r["user_agent"] == DESKTOP_UA and "sent_ts" in r for r in records)

    # …and through the pipeline: one session, read to the end, converted.
    from analytics_platform_tests.topology import backfill_today

    backfill_today(c.data)
    con = duckdb.connect(str(c.data / "warehouse.duckdb"), read_only=True)
    [s] = con.execute("SELECT * FROM sessions").fetchall()
    cols = [d[0] for d in con.description]
    s = dict(zip(cols, s, strict=True))
    con.close()
    assert (s["pageviews"], s["events"], s["max_scroll_depth"], s["converted"]) == (
        3, len(every), 100, True)
    assert (s["entry_page"], s["exit_page"]) == ("/demo", "/demo/thanks")
    assert (s["experiment"], s["variant"], s["device_type"]) == ("cta_copy", "book_now",
                                                                  "desktop")
    assert s["source"] == "(direct)"


def test_global_privacy_control_means_no_visitor_id(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    visit(c.url, user_agent=DESKTOP_UA, gpc=True)
    assert wait_accepted(c.url, len(EXPECTED)) >= len(EXPECTED)
    c.stop()
    records = raw_records(c.data)
    assert len([r for r in records if r["event_type"] not in LEAVING]) == len(EXPECTED)
    assert all("visitor_id" not in r for r in records)
    assert len({r["session_id"] for r in records}) == 1


def test_a_headless_user_agent_is_filtered_as_a_bot(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    visit(c.url)  # Chromium's own headless user agent
    assert wait_accepted(c.url, len(EXPECTED)) >= len(EXPECTED)
    c.stop()
    records = raw_records(c.data)
    assert records and all("HeadlessChrome" in r["user_agent"] for r in records)

    from analytics_platform.defs.events.assets import process_hours
    from analytics_platform.duck import connect
    from analytics_platform.lake import floor_hour, open_raw_lake
    from analytics_platform.storage import Lake

    hour = floor_hour(datetime.fromisoformat(records[0]["ingest_ts"].replace("Z", "+00:00")))
    con = connect()
    stats = process_hours(con, open_raw_lake(c.data / "raw"), Lake(c.data), [hour], 24)
    con.close()
    assert sum(s.bots for s in stats) == len(records)
    assert sum(s.events for s in stats) == 0
