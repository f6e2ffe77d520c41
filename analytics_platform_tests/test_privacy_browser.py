"""The tracker's two modes in a real browser (Debian's Chromium, via Playwright) against the
real collector: without consent nothing is stored on the device and the raw records carry the
server's visitor_hash; with consent the ids are stored, and withdrawing it deletes them."""

from __future__ import annotations

import glob
import json
import time
from datetime import UTC, date, datetime, timedelta
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


def site(url: str, attrs: str) -> Any:
    """The route handler that serves PAGES on ``url``, the tracker's tag with ``attrs``."""
    def serve(route: Any) -> None:
        path = route.request.url.removeprefix(url).split("?")[0]
        route.fulfill(status=200, content_type="text/html", body=PAGE.format(
            title=path, next=PAGES.get(path, "/site/"), attrs=attrs))

    return serve


def browse(url: str, attrs: str, script: Any) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # The user agent on the command line: Playwright's per-context one is not applied to the
        # beacons a page sends as it unloads (they said "HeadlessChrome" with Chromium's version).
        browser = p.chromium.launch(executable_path=chromium.PATH, headless=True,
                                    args=[*chromium.ARGS, f"--user-agent={DESKTOP_UA}"])
        ctx = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 720})
        ctx.route(f"{url}/site/**", site(url, attrs))
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


def pipeline(data: Any, first_day: date | None = None) -> Any:
    """The backfill of ``first_day`` (default: today) to today over the collector's raw lake;
    the warehouse, read-only."""
    import duckdb

    from analytics_platform_tests.topology import backfill_today

    backfill_today(data, first_day)
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


# --- a return visit a week later ---------------------------------------------------------------

# libfaketime (Debian's `faketime`, installed by scripts/ensure-chromium.sh beside Chromium) runs
# the real collector with its clock a week behind: it stamps ingest_ts, picks the day's salt and
# files the raw objects under that day's hour as it would have a week ago. The browser's clock is
# Playwright's (context.clock), moved by the same week, so the tracker's own timestamps and its
# 30-minute session rule agree with the collector's.
FAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), "")
# monotonic time stays real: a week before boot it would be negative
WEEK_AGO = {"LD_PRELOAD": FAKETIME, "FAKETIME": "-7d", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def settled(url: str, pages: int) -> None:
    """Wait until the collector has every page's events: at least ``pages`` page views (a page
    also sends scroll depths, engagement, web vitals: how many depends on the tracker), and no
    more arriving for a second (the last ones leave with the page's pagehide beacon)."""
    from analytics_platform_tests.topology import wait_for

    seen = {"n": -1, "since": 0.0}

    def still() -> bool:
        n = wait_accepted(url, pages)
        if n != seen["n"]:
            seen.update(n=n, since=time.monotonic())
        return n >= pages and time.monotonic() - seen["since"] >= 1.0

    wait_for("the page's events", still, timeout=30, every=0.2)


@pytest.mark.skipif(not FAKETIME,
                    reason="libfaketime is not installed (scripts/ensure-chromium.sh installs "
                           "Debian's faketime)")
def test_a_return_visit_a_week_later_is_the_same_visitor_only_with_consent(
        collector_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Two browsers (own storage each) visit a site on the same day, one with consent and one
    without, and come back seven days later: the consented one is one visitor in
    cohort_retention (week 0 and week 1); the other is two unrelated daily visitors."""
    from playwright.sync_api import sync_playwright

    from analytics_platform_tests import test_collector

    now = datetime.now(UTC)
    first_day, today = (now - timedelta(days=7)).date(), now.date()
    # the site is served on the collector's origin (a loopback page may load the tracker from
    # loopback: Chromium's Private Network Access), and localStorage is per origin: the
    # collector of today listens on the port of the collector of a week ago
    c = collector_factory(flush_seconds=0.3, env=WEEK_AGO)
    url = c.url

    def visit(ctx: Any, pages: int) -> None:
        page = ctx.new_page()
        page.goto(f"{url}/site/")
        page.wait_for_function("window.analytics !== undefined")
        for _ in range(pages - 1):
            page.click("#next")  # pagehide sends what is left with sendBeacon
            page.wait_for_load_state("load")
            page.wait_for_function("window.analytics !== undefined")
        page.evaluate("analytics.flush()")
        page.close()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium.PATH, headless=True,
                                    args=[*chromium.ARGS, f"--user-agent={DESKTOP_UA}"])
        contexts = {}
        for who, attrs in (("consented", 'data-consent="granted"'), ("anonymous", "")):
            ctx = browser.new_context(user_agent=DESKTOP_UA)
            ctx.clock.install(time=now - timedelta(days=7))

            ctx.route(f"{url}/site/**", site(url, attrs))
            contexts[who] = ctx
        # a week ago: two pages each
        for ctx in contexts.values():
            visit(ctx, 2)
        settled(url, 4)
        c.stop()
        # today: the same browsers come back for one page
        monkeypatch.setattr(test_collector, "free_port", lambda: c.port)
        c = collector_factory(flush_seconds=0.3)
        assert c.url == url
        for ctx in contexts.values():
            ctx.clock.set_system_time(datetime.now(UTC))
            visit(ctx, 1)
        settled(url, 2)
        stored = contexts["consented"].storage_state()["origins"]
        c.stop()
        browser.close()

    records = [r for r in raw_records(c.data) if r["event_type"] == "page_view"]
    day = {r["event_id"]: datetime.fromisoformat(r["ingest_ts"]).date() for r in records}
    consented = [r for r in records if r["consent"]]
    anonymous = [r for r in records if not r["consent"]]
    assert sorted(day[r["event_id"]] for r in consented) == [first_day, first_day, today]
    assert sorted(day[r["event_id"]] for r in anonymous) == [first_day, first_day, today]
    # the raw objects are filed under the day they arrived
    assert {p.relative_to(c.data / "raw").parts[:3] for p in (c.data / "raw").rglob("*.gz")} == {
        (f"year={d:%Y}", f"month={d:%m}", f"day={d:%d}") for d in (first_day, today)}
    # with consent: one visitor_id kept in localStorage, a new session after the week
    assert len({r["visitor_id"] for r in consented}) == 1
    assert len({r["session_id"] for r in consented}) == 2
    assert [o["origin"] for o in stored] == [url]
    assert {i["name"] for i in stored[0]["localStorage"]} >= {"_an_v", "_an_s"}
    # without: a hash per day, never the same, and the first day's salt is destroyed by now
    assert all(r["session_id"] is None and "visitor_id" not in r for r in anonymous)
    hashes = {day[r["event_id"]]: r["visitor_hash"] for r in anonymous}
    assert len(set(hashes.values())) == 2 and len({r["visitor_hash"] for r in anonymous}) == 2
    assert [s.name for s in (c.data / "salts").iterdir()] == [today.isoformat()]

    con = pipeline(c.data, first_day)
    sessions = con.execute(
        "SELECT session_date, visitor_id, visitor_hash, pageviews FROM sessions "
        "ORDER BY session_date, visitor_id NULLS LAST").fetchall()
    visitors = con.execute("SELECT count(DISTINCT visitor_key) FROM sessions").fetchone()[0]
    kpis = con.execute("SELECT date, visitors, sessions, consented_sessions FROM kpis_daily "
                       "ORDER BY date").fetchall()
    retention = con.execute("SELECT cohort_week, week_offset, cohort_size, visitors, retention "
                            "FROM cohort_retention ORDER BY week_offset").fetchall()
    con.close()
    vid = consented[0]["visitor_id"]
    assert sessions == [(first_day, vid, None, 2), (first_day, None, hashes[first_day], 2),
                        (today, vid, None, 1), (today, None, hashes[today], 1)]
    assert visitors == 3  # the consented visitor once, the other one per day
    assert kpis == [(first_day, 2, 2, 1), (today, 2, 2, 1)]
    week = first_day - timedelta(days=first_day.weekday())
    assert retention == [(week, 0, 1, 1, 1.0), (week, 1, 1, 1, 1.0)]
