"""End to end in a real browser: headless Chromium (Debian's package, driven by Playwright's
Python package) visits the collector's demo page; the raw lake and then the pipeline must show
that one visit exactly, down to the issue-19 marts (an outbound link, a download, a 404 page,
the country from the browser's time zone, web vitals and engaged time)."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Callable
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


# The visit's time zone (Playwright's timezone_id sets what Intl reports): one country in the
# tz database's zone.tab, so the handler's country is JP (CONTRACT §2).
TIME_ZONE, COUNTRY = "Asia/Tokyo", "JP"


def visit(url: str, user_agent: str | None = None, gpc: bool = False,
          links_and_404: bool = False, landed: Callable[[], object] | None = None) -> None:
    """The demo's funnel: scroll the home page, click the CTA, send the form. With
    ``links_and_404`` also its outbound link and PDF download on the home page, then the 404
    route. The visitor then leaves the site (the unload hides the page: engaged time and what
    is left go with sendBeacon); ``landed`` waits for that last beacon to reach the collector
    before the browser context is closed (closing it can cancel a beacon still in flight: it
    lost the last batch about once in three runs on a loaded machine)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # The user agent on the command line too: Playwright's per-context one is not applied
        # to the beacons a page sends as it unloads (they said "HeadlessChrome").
        browser = p.chromium.launch(executable_path=chromium.PATH, headless=True, args=[
            *chromium.ARGS, *([f"--user-agent={user_agent}"] if user_agent else [])])
        ctx = browser.new_context(user_agent=user_agent, viewport={"width": 1280, "height": 720},
                                  timezone_id=TIME_ZONE)
        # The outbound link opens another site in a new tab: answered here (the network is
        # closed), so the tab loads and is closed. The tracker's own requests are not routed.
        ctx.route("https://duckdb.org/**", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<title>elsewhere</title>"))
        if gpc:
            ctx.add_init_script("Object.defineProperty(Navigator.prototype, "
                                "'globalPrivacyControl', {get: () => true})")
        page = ctx.new_page()
        page.goto(f"{url}/demo")
        page.wait_for_function("window.analytics !== undefined")
        page.wait_for_timeout(300)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(600)
        if links_and_404:
            with page.expect_popup() as popup:
                page.click("#out")
            popup.value.close()
            with page.expect_download():  # the link's download attribute: no navigation
                page.click("#download")
        page.click("#cta")
        page.wait_for_url("**/demo/book-a-call")
        page.wait_for_timeout(200)
        page.fill("#name", "Ada")
        page.fill("#topic", "Our funnel")
        page.click("#send")
        page.wait_for_url("**/demo/thanks")
        page.wait_for_timeout(300)
        if links_and_404:
            page.click("#broken")  # the SPA's route it does not know: its 404 view
            page.wait_for_url("**/demo/old-post")
            page.wait_for_timeout(1100)  # a visible second on it: its engagement is certain
        # Leaving the site: the unload hides the page (visibilitychange, pagehide) and the
        # tracker sends what is left with sendBeacon.
        page.goto("about:blank")
        if landed:
            landed()
        ctx.close()
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


# …and with the outbound link, the download and the 404 route (the 404 view fits the window).
VISIT = [
    *EXPECTED[:5], ("outbound", "/demo"), ("download", "/demo"), *EXPECTED[5:],
    ("page_view", "/demo/old-post"), ("not_found", "/demo/old-post"),
    *[("scroll_depth", "/demo/old-post")] * 4,
]


# Sent when a page is left, so their number depends on timing (engaged seconds only once a
# second of visibility has passed): checked on their own.
LEAVING = ("engagement", "web_vitals")


def test_a_visit_lands_as_one_session_with_its_conversion(collector_factory) -> None:  # noqa: F811
    from analytics_platform_tests.topology import backfill_today, wait_for

    c = collector_factory(flush_seconds=0.5)
    t0 = time.monotonic()
    # the beacon sent on leaving carries the last event: the 404 page's engaged second
    visit(c.url, user_agent=DESKTOP_UA, links_and_404=True, landed=lambda: wait_for(
        "the last page's engagement in the raw lake", lambda: any(
            r["event_type"] == "engagement" and r["page_path"] == "/demo/old-post"
            for r in raw_records(c.data)), timeout=15, every=0.2))
    visit_s = time.monotonic() - t0
    c.stop()

    every = raw_records(c.data)
    records = [r for r in every if r["event_type"] not in LEAVING]
    assert [(r["event_type"], r["page_path"]) for r in records] == VISIT
    props = {r["event_type"]: r.get("props") for r in records}
    # the link's host only (its path, query and fragment never leave the page); the file's path
    # without its query; the 404 with the SPA's previous route
    assert props["outbound"] == {"host": "duckdb.org"}
    assert props["download"] == {"ext": "pdf", "file": "/demo/files/checklist.pdf"}
    assert props["not_found"] == {"from": "/demo/thanks"}
    # the web vitals of the page load, once, under the path it was loaded at, sent when the page
    # was first hidden (the visitor left the site), not when the SPA left its first route
    [vitals] = [r for r in every if r["event_type"] == "web_vitals"]
    assert vitals["page_path"] == "/demo" and vitals["props"]["ttfb"] >= 0
    assert vitals["event_ts"] >= max(r["event_ts"] for r in records)
    engaged = Counter()
    for r in every:
        if r["event_type"] == "engagement":
            engaged[r["page_path"]] += r["props"]["seconds"]
    assert set(engaged) <= {p for _, p in VISIT} and engaged["/demo/old-post"] >= 1
    assert all("time_zone" not in r for r in every)  # mapped to a country, never stored
    assert {(r.get("country"), r.get("country_source")) for r in every
            if r["event_type"] == "page_view"} == {(COUNTRY, "time_zone")}
    assert len({r["session_id"] for r in records}) == 1
    assert len({r.get("visitor_id") for r in records}) == 1 and "visitor_id" in records[0]
    assert [r["props"]["depth"] for r in records if r["event_type"] == "scroll_depth"] == [
        25, 50, 75, 100] * 4
    assert props["cta_click"] == {"cta": "book_call", "experiment": "cta_copy",
                                  "variant": "book_now"}
    assert props["form_start"] == {"form": "book_call"}
    assert all(r["user_agent"] == DESKTOP_UA and "sent_ts" in r for r in every)

    # …and through the pipeline: one session, read to the end, converted…
    backfill_today(c.data)
    con = duckdb.connect(str(c.data / "warehouse.duckdb"), read_only=True)

    def rows(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    [s] = con.execute("SELECT * FROM sessions").fetchall()
    s = dict(zip([d[0] for d in con.description], s, strict=True))
    assert (s["pageviews"], s["events"], s["max_scroll_depth"], s["converted"]) == (
        4, len(every), 100, True)
    assert (s["entry_page"], s["exit_page"]) == ("/demo", "/demo/old-post")
    assert (s["experiment"], s["variant"], s["device_type"]) == ("cta_copy", "book_now",
                                                                  "desktop")
    assert s["source"] == "(direct)"
    # …and in the issue-19 marts, row for row.
    day = s["session_date"]
    assert rows("SELECT * FROM outbound_daily") == [(day, "duckdb.org", 1, 1, 1)]
    assert rows("SELECT * FROM downloads_daily") == [
        (day, "pdf", "/demo/files/checklist.pdf", 1, 1, 1)]
    assert rows("SELECT * FROM not_found_daily") == [
        (day, "/demo/old-post", "/demo/thanks", 1, 1, 1)]
    # visitors, sessions, pageviews, bounces, conversions
    assert rows("SELECT * FROM countries_daily") == [(day, COUNTRY, "time_zone", 1, 1, 4, 0, 1)]
    assert rows("SELECT date, page_path, sessions, visitors, total_engaged_s FROM "
                "engagement_daily ORDER BY page_path") == [
        (day, p, 1, 1, float(n)) for p, n in sorted(engaged.items())]
    # engaged time is visible time: no more than the visit lasted
    assert sum(engaged.values()) <= visit_s
    [v] = con.execute("SELECT * FROM web_vitals_daily").fetchall()
    v = dict(zip([d[0] for d in con.description], v, strict=True))
    con.close()
    assert (v["date"], v["page_path"], v["samples"], v["lcp_samples"], v["ttfb_samples"]) == (
        day, "/demo", 1, 1, 1)
    # one sample: its p75 is the value sent. A page from 127.0.0.1 starts in milliseconds and
    # paints its largest text after its first byte, well inside web.dev's "good".
    assert v["ttfb_p75"] == pytest.approx(vitals["props"]["ttfb"])
    assert v["lcp_p75"] == pytest.approx(vitals["props"]["lcp"])
    assert 0 <= v["ttfb_p75"] <= v["lcp_p75"] < 2500
    assert (v["ttfb_good"], v["lcp_good"]) == (1.0, 1.0)


def test_global_privacy_control_means_no_visitor_id(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    # the last beacon holds the thank-you page's five events: before it, fewer than EXPECTED
    visit(c.url, user_agent=DESKTOP_UA, gpc=True,
          landed=lambda: wait_accepted(c.url, len(EXPECTED)))
    assert wait_accepted(c.url, len(EXPECTED)) >= len(EXPECTED)
    c.stop()
    records = raw_records(c.data)
    assert len([r for r in records if r["event_type"] not in LEAVING]) == len(EXPECTED)
    assert all("visitor_id" not in r for r in records)
    assert len({r["session_id"] for r in records}) == 1


def test_a_headless_user_agent_is_filtered_as_a_bot(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    visit(c.url, landed=lambda: wait_accepted(c.url, len(EXPECTED)))  # Chromium's own UA
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


def browse_pages(url: str, pages: dict[str, str], script: Callable[[Any], None],
                 landed: Callable[[], object], bfcache: bool = False) -> None:
    """``pages`` (path: body, each with the tracker's tag) served on the collector's origin by
    the browser's router; ``script`` drives the page, then the visitor leaves and ``landed``
    waits for the last events before the context is closed (as in ``visit``). With ``bfcache``
    Chromium keeps the back-forward cache that Playwright turns off by default
    (--disable-back-forward-cache)."""
    from playwright.sync_api import sync_playwright

    def serve(route: Any) -> None:
        path = route.request.url.removeprefix(url).split("?")[0]
        route.fulfill(status=200, content_type="text/html", body=pages[path])

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium.PATH, headless=True,
            args=[*chromium.ARGS, f"--user-agent={DESKTOP_UA}"],
            ignore_default_args=["--disable-back-forward-cache"] if bfcache else None)
        ctx = browser.new_context(user_agent=DESKTOP_UA)
        ctx.route(f"{url}/t/**", serve)
        page = ctx.new_page()
        script(page)
        page.goto("about:blank")  # hidden: what is left goes with sendBeacon
        landed()
        ctx.close()
        browser.close()


def tagged(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<script src='/analytics.js' data-endpoint='/v1/events'></script></head>"
            f"<body>{body}<script>addEventListener('pageshow', e => {{ window.restored = "
            "e.persisted; })</script></body></html>")


def test_back_forward_cache_restores_are_page_views(collector_factory) -> None:  # noqa: F811
    from analytics_platform_tests.topology import wait_for

    c = collector_factory(flush_seconds=0.3)
    restored = []

    def script(page: Any) -> None:
        page.goto(f"{c.url}/t/a")
        page.wait_for_function("window.analytics !== undefined")
        page.click("#next")
        page.wait_for_url("**/t/b")
        page.wait_for_function("window.analytics !== undefined")
        for step, path in (("back", "/t/a"), ("forward", "/t/b")):
            page.wait_for_timeout(300)
            page.evaluate(f"setTimeout(() => history.{step}(), 0)")
            page.wait_for_function(f"location.pathname == '{path}'")
            page.wait_for_function("window.restored !== undefined")
            restored.append(page.evaluate("window.restored"))
        # a last event, in the batch after the restores: once it is in the lake, so is the rest
        page.evaluate("analytics.track('done'); analytics.flush()")

    browse_pages(c.url, {"/t/a": tagged("a", "<a id='next' href='/t/b'>next</a>"),
                         "/t/b": tagged("b", "<p>b</p>")}, script, bfcache=True,
                 landed=lambda: wait_for("the last event in the raw lake", lambda: any(
                     r.get("props", {}).get("name") == "done" for r in raw_records(c.data)),
                     timeout=15, every=0.2))
    c.stop()
    # (else the test would not be about the cache: Chromium shows the pages from it)
    assert restored == [True, True]
    views = [r["page_path"] for r in raw_records(c.data) if r["event_type"] == "page_view"]
    assert views == ["/t/a", "/t/b", "/t/a", "/t/b"]


def test_form_controls_named_id_and_a_title_cut_in_an_emoji(collector_factory) -> None:  # noqa: F811
    from analytics_platform_tests.topology import wait_for

    # form.id and form.name are the controls so named (not the attributes), and the title cut
    # at 512 UTF-16 units falls in the middle of the emoji: the edge refused both
    c = collector_factory(flush_seconds=0.3)
    title = "a" * 511 + "\N{GRINNING FACE} and more"
    form = ("<form id='signup' action='/t/thanks'><input id='email' name='id'>"
            "<input name='name'><button id='send'>send</button></form>")

    def script(page: Any) -> None:
        page.goto(f"{c.url}/t/form")
        page.wait_for_function("window.analytics !== undefined")
        page.fill("#email", "ada@example.com")
        page.click("#send")
        page.wait_for_url("**/t/thanks*")
        page.wait_for_function("window.analytics !== undefined")

    browse_pages(c.url, {"/t/form": tagged(title, form), "/t/thanks": tagged("thanks", "")},
                 script, landed=lambda: wait_for("the thank-you page in the raw lake", lambda: any(
                     r["page_path"] == "/t/thanks" for r in raw_records(c.data)),
                     timeout=15, every=0.2))
    metrics = httpx.get(f"{c.url}/metrics").json()
    c.stop()
    assert metrics["rejected"] == {}
    records = [r for r in raw_records(c.data) if r["event_type"] not in LEAVING]
    got = [(r["event_type"], r["page_path"], r.get("props", {}).get("form")) for r in records
           if r["event_type"] != "scroll_depth"]
    assert got == [("page_view", "/t/form", None), ("form_start", "/t/form", "signup"),
                   ("form_submit", "/t/form", "signup"), ("page_view", "/t/thanks", None)]
    assert {r["page_title"] for r in records if r["page_path"] == "/t/form"} == {"a" * 511}
