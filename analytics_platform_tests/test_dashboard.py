"""Every dashboard view (Streamlit's AppTest) on a small warehouse built from simulated data:
the numbers shown are the marts' numbers."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics_platform.contract import encode_records, format_timestamp, make_raw_record
from analytics_platform.dashboard import queries as Q
from analytics_platform.lake import open_raw_lake
from analytics_platform.query.warehouse import Warehouse
from analytics_platform_tests import chromium
from analytics_platform_tests import oracle as o
from analytics_platform_tests.apidata import build_warehouse

APP = str(Path(__file__).resolve().parent.parent / "analytics_platform" / "dashboard" / "app.py")
DAY1, DAY3 = date(2026, 3, 2), date(2026, 3, 4)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # its own copy: the Realtime test writes raw objects into it
    return build_warehouse(tmp_path_factory.mktemp("dash") / "data")


@pytest.fixture()
def app(data: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def mart(data: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    out = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return out


def spec_values(z: Any) -> list[float]:
    """The numbers of a Plotly array, plain or base64-typed (Plotly ≥ 6)."""
    if isinstance(z, dict) and "bdata" in z:
        return [v for v in np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"])
                if not np.isnan(v)]
    return [v for row in z for v in row if v is not None]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def show(at: AppTest, view: str) -> AppTest:
    at.switch_page(f"views/{view.lower()}.py").run()  # the view's page (st.navigation)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_of_one_day_equals_kpis_daily(app: AppTest, data: Path) -> None:
    app.sidebar.date_input(key="dates").set_value((DAY1 + timedelta(days=1),
                                                   DAY1 + timedelta(days=1))).run()
    k = mart(data, f"SELECT * FROM kpis_daily WHERE date = DATE '{DAY1 + timedelta(days=1)}'")[0]
    m = metrics(app)
    assert m["Visitors"] == f"{k['visitors']:,}"
    assert m["Sessions"] == f"{k['sessions']:,}"
    assert m["Pageviews"] == f"{k['pageviews']:,}"
    assert m["Bounce rate"] == f"{k['bounce_rate']:.1%}"
    assert m["Conversion rate"] == f"{k['conversion_rate']:.1%}"
    mins, secs = divmod(round(k["avg_duration_s"]), 60)
    assert m["Visit duration"] == f"{mins}m {secs:02d}s"
    # the day before is the comparison period
    prev = mart(data, f"SELECT * FROM kpis_daily WHERE date = DATE '{DAY1}'")[0]
    delta = next(x.delta for x in app.metric if x.label == "Sessions")
    assert delta == f"{(k['sessions'] - prev['sessions']) / prev['sessions']:+.1%}"


def test_overview_of_the_range_and_its_filters(app: AppTest, data: Path) -> None:
    kpis = mart(data, "SELECT * FROM kpis_daily")
    m = metrics(app)
    assert m["Sessions"] == f"{sum(k['sessions'] for k in kpis):,}"
    assert m["Pageviews"] == f"{sum(k['pageviews'] for k in kpis):,}"
    pages = mart(data, "SELECT page_path, sum(pageviews) AS pv FROM pages_daily GROUP BY 1 "
                       "ORDER BY pv DESC, page_path LIMIT 15")
    top = app.dataframe[0].value
    assert list(top.page_path) == [p["page_path"] for p in pages]
    assert list(top.pageviews) == [p["pv"] for p in pages]
    # a source filter: the attribution mart of that source
    app.sidebar.multiselect(key="sources").set_value(["google"]).run()
    google = mart(data, "SELECT sum(sessions) AS s, sum(pageviews) AS p FROM attribution_daily "
                        "WHERE source = 'google'")[0]
    assert metrics(app)["Sessions"] == f"{google['s']:,}"
    assert metrics(app)["Pageviews"] == f"{google['p']:,}"
    # a device filter, and a page filter: sessions that viewed the page
    app.sidebar.multiselect(key="sources").set_value([]).run()
    app.sidebar.selectbox(key="page").set_value("/pricing").run()
    n = mart(data, "SELECT count(DISTINCT session_id) AS n FROM session_events "
                   "WHERE page_path = '/pricing' AND event_type = 'page_view'")[0]["n"]
    assert metrics(app)["Sessions"] == f"{n:,}"
    assert len(app.get("plotly_chart")) == 1


def test_sources_view_equals_attribution_marts(app: AppTest, data: Path) -> None:
    show(app, "Sources")
    want = mart(data, "SELECT source, medium, campaign, sum(sessions) AS sessions, "
                      "sum(conversions) AS conversions FROM attribution_daily GROUP BY ALL")
    got = app.dataframe[0].value
    assert {(r.source, r.medium, r.campaign): (r.sessions, r.conversions)
            for r in got.itertuples()} == {(w["source"], w["medium"], w["campaign"]):
                                           (w["sessions"], w["conversions"]) for w in want}
    touch = app.dataframe[1].value
    want_touch = mart(data, "SELECT * FROM attribution_touch")
    assert touch.first_touch_conversions.sum() == sum(w["first_touch_conversions"]
                                                      for w in want_touch)
    assert len(app.get("plotly_chart")) == 2


def test_funnel_view_equals_funnel_daily(app: AppTest, data: Path) -> None:
    show(app, "Funnel")
    want = mart(data, "SELECT step, sum(sessions) AS s FROM funnel_daily "
                      "WHERE funnel = 'book_call' GROUP BY step ORDER BY step")
    got = app.dataframe[0].value
    assert list(got.sessions) == [w["s"] for w in want]
    assert got["of first step"].iloc[-1] == pytest.approx(want[-1]["s"] / want[0]["s"])
    assert len(app.get("plotly_chart")) == 1


def test_cohorts_view_shows_the_retention_mart(app: AppTest, data: Path) -> None:
    show(app, "Cohorts")
    [chart] = app.get("plotly_chart")
    z = spec_values(json.loads(chart.proto.spec)["data"][0]["z"])
    want = [r["retention"] for r in mart(data, "SELECT retention FROM cohort_retention "
                                               "ORDER BY cohort_week, week_offset")]
    assert sorted(z) == pytest.approx(sorted(want))
    # cohorts count consented visitors only: the view says how much of the traffic that is,
    # counted here from the sessions themselves
    [cov] = mart(data, "SELECT count(*) FILTER (visitor_id IS NOT NULL) AS c, count(*) AS n "
                       "FROM sessions")
    assert 0 < cov["c"] < cov["n"]
    captions = " ".join(c.value for c in app.caption)
    assert f"{cov['c'] / cov['n']:.0%} of sessions ({cov['c']:,} of {cov['n']:,}" in captions


def test_experiments_view_and_verdict(app: AppTest, data: Path) -> None:
    show(app, "Experiments")
    want = {r["variant"]: r for r in mart(data, "SELECT * FROM experiments")}
    got = app.dataframe[0].value
    assert {r.variant: r.sessions for r in got.itertuples()} == {
        v: w["sessions"] for v, w in want.items()}
    challenger, control = want["book_now"], want["control"]
    # one p-value format, in the verdict and the table; the baseline's rate in the verdict
    p = ("p < 0.001" if challenger["p_value"] < 0.001 else f"p = {challenger['p_value']:.3f}")
    assert got.set_index("variant").p_value["book_now"] == p.removeprefix("p = ")
    assert got.set_index("variant").p_value["control"] == "baseline"
    assert "None" not in got.astype(str).to_string()
    verdict = (app.success if challenger["p_value"] < 0.05 else app.warning)[0].value
    assert "book_now" in verdict and p in verdict
    assert f"{control['conversion_rate']:.2%} for control" in verdict
    if challenger["p_value"] >= 0.05:
        assert not app.success and "not yet significant" in verdict


def test_realtime_reads_the_newest_raw_objects(app: AppTest, data: Path) -> None:
    lake = open_raw_lake(data / "raw")
    now = datetime.now(UTC)
    sessions = [str(uuid.uuid4()) for _ in range(3)]
    recs = [make_raw_record({"event_type": t, "event_id": str(uuid.uuid4()), "session_id": s,
                             "page_path": "/live", "event_ts": format_timestamp(now)},
                            now - timedelta(minutes=m), "Mozilla/5.0")
            for s in sessions for t, m in (("page_view", 5), ("cta_click", 4))]
    recs.append(make_raw_record({"event_type": "page_view", "event_id": str(uuid.uuid4()),
                                 "session_id": sessions[0], "page_path": "/old",
                                 "event_ts": format_timestamp(now)},
                                now - timedelta(minutes=40), "Mozilla/5.0"))
    # a crawler the pipeline drops as a bot (CONTRACT §3.2) is not counted here either
    recs.append(make_raw_record({"event_type": "page_view", "event_id": str(uuid.uuid4()),
                                 "session_id": str(uuid.uuid4()), "page_path": "/live",
                                 "event_ts": format_timestamp(now)}, now - timedelta(minutes=3),
                                "Mozilla/5.0 (compatible; Googlebot/2.1; "
                                "+http://www.google.com/bot.html)"))
    lake.write_records(now - timedelta(minutes=40), gzip.compress(encode_records(recs)))
    show(app, "Realtime")
    assert metrics(app) == {"Events": "6", "Active sessions": "3", "Pageviews": "3"}
    assert any("as bots" in c.value and ": 1 event." in c.value for c in app.caption)
    # the time axis runs to now, not to the last minute with data
    [chart] = app.get("plotly_chart")
    x_range = json.loads(chart.proto.spec)["layout"]["xaxis"]["range"]
    assert datetime.fromisoformat(x_range[1]).replace(tzinfo=UTC) >= now


def test_sql_playground_runs_examples_and_refuses_writes(app: AppTest) -> None:
    show(app, "SQL")
    app.button(key="run").click().run()
    assert not app.error
    tables = app.dataframe[0].value  # the reference to write a query from
    assert "session_id" in tables.set_index("table")["columns"]["sessions"]
    result = app.dataframe[-1].value
    assert list(result.columns[:3]) == ["source", "medium", "sessions"]
    # the chart shows a measure (not the first numeric column whatever it is), and none when
    # rows repeat the first column (a bar would silently add them up)
    app.selectbox(key="example").set_value("Daily KPIs").run()
    app.button(key="run").click().run()
    assert app.selectbox(key="chart_Daily KPIs").value == "visitors"
    assert len(app.get("plotly_chart")) == 1
    app.selectbox(key="example").set_value("Who comes back (weekly cohorts)").run()
    app.button(key="run").click().run()
    assert not app.get("plotly_chart") and not app.error
    assert len(app.get("download_button")) == 1
    app.text_area(key="sql_Who comes back (weekly cohorts)").set_value(
        "copy (select 1) to '/tmp/x.csv'").run()
    app.button(key="run").click().run()
    assert "Only SELECT queries run here" in app.error[0].value


def test_an_empty_warehouse_says_how_to_fill_it(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "No data yet" in at.info[0].value and "make demo" in at.info[0].value


def test_the_open_warehouse_follows_the_file_the_pipeline_swaps_in(tmp_path: Path) -> None:
    """The dashboard keeps the warehouse open; a new file renamed over it (as publish_warehouse
    does) is what the next query reads, and a query still running on the old one finishes."""
    from analytics_platform.dashboard.queries import Warehouse, _cursor

    def publish(value: int) -> None:
        tmp = tmp_path / "new.duckdb"
        with duckdb.connect(str(tmp)) as con:
            con.execute(f"CREATE VIEW v AS SELECT {value} AS x")
        os.replace(tmp, tmp_path / "warehouse.duckdb")

    publish(1)
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    assert wh.row("SELECT x FROM v") == (1,) and wh.tables == {"v"}
    running = _cursor(wh.path)
    publish(2)
    assert wh.row("SELECT x FROM v") == (2,)
    assert running.execute("SELECT x FROM v").fetchall() == [(1,)]
    fds = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    for i in range(20):
        publish(i)
        assert wh.row("SELECT x FROM v") == (i,)
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) <= fds  # old files are let go


def test_sessions_of_an_older_version_ask_for_a_rebuild(data: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A warehouse whose sessions predate `visitor_key` says how to rebuild, instead of failing
    (or undercounting visitors)."""
    old = tmp_path / "old"
    old.mkdir()
    con = duckdb.connect(str(old / "warehouse.duckdb"))
    for table, drop in (("sessions", "EXCLUDE (visitor_key)"),
                        ("session_events", "EXCLUDE (visitor_key)"), ("pages_daily", "")):
        con.execute(f"CREATE VIEW {table} AS SELECT * {drop} FROM "
                    f"read_parquet('{data}/lake/{table}/*/*.parquet')")
    con.close()
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(old))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "older version" in at.warning[0].value and "backfill" in at.warning[0].value


@contextlib.contextmanager
def running_dashboard(data: Path, **env: str) -> Iterator[str]:
    """The CLI's `dashboard` on ``data`` (and ``env``) on a free port of 127.0.0.1: its URL."""
    from analytics_platform_tests.test_collector import free_port

    port = free_port()
    full = {**os.environ, "ANALYTICS_DATA_DIR": str(data), **env}
    full.pop("ANALYTICS_RAW_URL", None)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("analytics-platform")),
                             "dashboard", "--port", str(port)], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.skipif(not chromium.available(), reason=chromium.MISSING)
def test_the_running_dashboard_in_a_real_browser(data: Path, tmp_path: Path) -> None:
    from analytics_platform_tests.screenshots import capture

    views = ["Overview", "Sources", "Devices", "Locations", "Behaviour", "Web vitals",
             "Goals", "Funnel", "Journeys", "Cohorts", "Experiments", "SQL"]
    with running_dashboard(data) as url:
        # opened from a shared address with a filter: every view keeps it
        shots = capture(url, tmp_path, views, f"?from={DAY1}&to={DAY3}&device=desktop")
    [desktop] = mart(data, "SELECT sum(sessions) AS s FROM devices_daily WHERE dimension = "
                           "'device_type' AND value = 'desktop'")
    for view in views:
        assert shots[view]["errors"] == [], (view, shots[view]["errors"])
        assert shots[view]["screenshot"].stat().st_size > 10_000
        assert "device=desktop" in shots[view]["address"], (view, shots[view]["address"])
    assert shots["Overview"]["metrics"]["Sessions"] == f"{desktop['s']:,}"
    assert set(shots["Overview"]["metrics"]) >= {"Visitors", "Pageviews", "Bounce rate",
                                                  "Visit duration", "Conversion rate"}
    for view in ("Overview", "Sources", "Devices", "Locations", "Behaviour", "Web vitals",
                 "Goals", "Funnel", "Journeys", "Cohorts"):
        assert shots[view]["charts"] >= 1, view
    assert set(shots["Web vitals"]["metrics"]) == {"LCP p75", "INP p75", "CLS p75", "TTFB p75"}


def test_every_run_tells_the_browser_the_filters(data: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run sends each sidebar widget's value to the browser, not only the run that set it
    from the address: a run cut off by a click may have set it without the browser getting the
    widget, and a browser left with the default showed "no device" beside numbers filtered on
    desktop, and sent that back with its next click (the CI failure of the browser test)."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in {"from": str(DAY1 + timedelta(days=1)), "to": str(DAY3),
                 "device": "desktop"}.items():
        at.query_params[k] = v
    at.run()
    for view in ("Overview", "Sources"):
        show(at, view)  # a run of the same view, then one of another
        sb = at.sidebar
        widgets = [sb.date_input(key="dates"), *sb.selectbox, *sb.multiselect]
        assert [w.key for w in widgets if not w.proto.set_value] == [], view
        assert list(sb.multiselect(key="devices").proto.raw_values) == ["desktop"], view
        assert sb.date_input(key="dates").value == (DAY1 + timedelta(days=1), DAY3), view
        assert at.query_params["device"] == "desktop", view


class PipedGoals:
    """goals.yaml read through named pipes, a new one for each of the first ``reads`` reads,
    then the file itself: ``opened[i]`` is set when read ``i`` has begun, and it gets the file
    when ``released[i]`` is set (read 0 waits for it, the others get it at once). The
    dashboard reads the goals (the Goal filter's options) in the sidebar, just before it sets
    the filters from the address: a run can be held there, and seen to get there."""

    def __init__(self, path: Path, text: str, reads: int = 2) -> None:
        self.path, self.text, self.reads = path, text, reads
        self.opened = [threading.Event() for _ in range(reads)]
        self.released = [threading.Event() for _ in range(reads)]
        for e in self.released[1:]:
            e.set()
        self.threads: list[threading.Thread] = []
        os.mkfifo(path)
        self._start(0)

    def _start(self, i: int) -> None:
        self.threads.append(threading.Thread(target=self._serve, args=(i,), daemon=True))
        self.threads[-1].start()

    def _serve(self, i: int) -> None:
        with contextlib.suppress(BrokenPipeError), open(self.path, "w") as pipe:
            # open() returned: read i has opened the pipe; the next read finds the next one
            nxt = self.path.with_suffix(".next")
            if i + 1 < self.reads:
                os.mkfifo(nxt)
            else:
                nxt.write_text(self.text)
            os.replace(nxt, self.path)
            if i + 1 < self.reads:
                self._start(i + 1)
            self.opened[i].set()
            self.released[i].wait()
            pipe.write(self.text)

    def close(self) -> None:
        for e in self.released:
            e.set()
        if self.threads[-1].is_alive():  # a pipe nothing read: be its reader, so open() returns
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self.threads[-1].join(timeout=10)
            os.close(fd)
        for t in self.threads:
            t.join(timeout=10)


@pytest.mark.skipif(not chromium.available(), reason=chromium.MISSING)
def test_a_click_during_the_first_run_keeps_the_shared_filters(data: Path,
                                                               tmp_path: Path) -> None:
    """A shared link's first run, held at the sidebar while the reader clicks Sources (a click
    empties the address of what no widget is bound to, and cuts the run off): Sources, and the
    view after it, keep the link's dates and device, in the address and in the sidebar. Before
    the fix Sources showed the warehouse's default dates and no device."""
    from playwright.sync_api import sync_playwright

    from analytics_platform_tests import screenshots as sh

    goals = PipedGoals(tmp_path / "goals.yaml",
                       (Path(APP).parents[1] / "goals.yaml").read_text())
    start = DAY1 + timedelta(days=1)
    try:
        with running_dashboard(data, ANALYTICS_GOALS_FILE=str(goals.path)) as url, \
                sync_playwright() as p:
            sh.wait_until_up(url)
            browser = chromium.launch(p)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{url}/?from={start}&to={DAY3}&device=desktop")
            assert goals.opened[0].wait(timeout=90)  # the first run is held at the sidebar
            page.get_by_test_id("stSidebarNavLink").filter(has_text="Sources").first.click()
            # Streamlit starts the click's run at once (runner.fastReruns), beside the first
            assert goals.opened[1].wait(timeout=90)  # it has reached the sidebar
            goals.released[0].set()  # the first run goes on, and stops: it was replaced
            shown = {}
            for view in ("Sources", "Devices"):
                if view == "Sources":
                    sh.wait_for_view(page, view)
                else:
                    sh.open_view(page, view)
                # the header can be up before the sidebar's multiselects are (seen once in 4
                # suite runs: no Device box yet): read them once the Device box is there, then
                # assert what it holds
                page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").filter(
                    has_text="Device").first.wait_for(timeout=60_000)
                f = sh.sidebar_filters(page)
                shown[view] = (page.url.split("?")[-1], f["Dates"], f["Device"],
                               page.locator("h2").first.inner_text())
            browser.close()
    finally:
        goals.close()
    for view, got in shown.items():
        assert got[:3] == (f"from={start}&to={DAY3}&device=desktop",
                           f"{start:%Y/%m/%d}–{DAY3:%Y/%m/%d}", "desktop"), (view, got)
        assert got[3].endswith(f"{start:%d %b} – {DAY3:%d %b %Y}"), (view, got)


# --- every filter the sidebar offers, against the oracle ----------------------------------------

# The shipped goals.yaml's goals as the oracle's own predicates (not the pipeline's SQL).
GOALS = {
    "Booked a call": lambda e: e["event_type"] == "form_submit"
    and e["props"].get("form") == "book_call",
    "Clicked \"Book a call\"": lambda e: e["event_type"] == "cta_click"
    and e["props"].get("cta") == "book_call",
    "Sent the contact form": lambda e: e["event_type"] == "form_submit"
    and e["props"].get("form") == "contact",
    "Viewed pricing": lambda e: e["event_type"] == "page_view" and e["page_path"] == "/pricing",
    "Played a video": lambda e: e["event_type"] == "custom"
    and e["props"].get("name") == "video_play",
}


@pytest.fixture(scope="module")
def truth(data: Path) -> dict[str, dict[str, Any]]:
    """The oracle's sessions of the three days (every session, all history), each with what the
    sidebar filters on: its device, browser and country."""
    orc = o.Oracle.for_simulation()
    orc.read_lake(data / "raw", last_hour=datetime(2026, 3, 6, tzinfo=UTC))
    sessions = orc.sessions({DAY1 + timedelta(days=i) for i in range(3)})
    for s in sessions.values():
        first = s["_events"][0]
        s["device"], s["browser"], _ = o.device_of(first["user_agent"])
    return sessions


def kept(s: dict[str, Any], f: Q.Filters) -> bool:
    """Whether the sidebar's filters keep the oracle's session ``s``."""
    evs = s["_events"]
    return (f.start <= s["session_date"] <= f.end
            and (not f.sources or s["source"] in f.sources)
            and (not f.mediums or s["medium"] in f.mediums)
            and (not f.campaigns or s["campaign"] in f.campaigns)
            and (not f.devices or s["device"] in f.devices)
            and (not f.browsers or s["browser"] in f.browsers)
            and (not f.countries or s.get("country") in f.countries)
            and (f.page is None or any(e["event_type"] == "page_view"
                                       and e["page_path"] == f.page for e in evs))
            and (f.goal is None or any(GOALS[f.goal](e) for e in evs)))


def combinations(wh: Warehouse) -> list[Q.Filters]:
    """A sample of what the sidebar allows: each filter alone, and several together, over the
    whole range and over one day; a country only when the warehouse has one."""
    whole = Q.Filters(DAY1, DAY3)
    one_day = Q.Filters(DAY3, DAY3)
    campaign = wh.row("SELECT campaign FROM sessions WHERE campaign <> '(none)' "
                      "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0]
    out = [whole,
           replace(whole, sources=("google",)),
           replace(whole, mediums=("organic", "social")),
           replace(whole, campaigns=(campaign,)),
           replace(whole, page="/pricing"),
           replace(whole, devices=("mobile",)),
           replace(whole, browsers=("Chrome", "Firefox")),
           replace(whole, goal="Booked a call"),
           replace(whole, sources=("google", "(direct)"), devices=("desktop",), page="/"),
           replace(whole, mediums=("organic",), browsers=("Chrome",), goal="Viewed pricing"),
           replace(one_day, devices=("mobile",), goal="Clicked \"Book a call\""),
           replace(one_day, campaigns=(campaign,), page="/pricing")]
    if "country" in set(wh.df("SELECT column_name FROM duckdb_columns() WHERE table_name = "
                              "'sessions'").column_name):
        top = wh.row("SELECT country FROM sessions WHERE country IS NOT NULL GROUP BY 1 "
                     "ORDER BY count(*) DESC LIMIT 1")[0]
        out += [replace(whole, countries=(top,)), replace(whole, countries=(top,),
                                                          devices=("desktop",))]
    return out


def test_every_panel_follows_every_filter(data: Path, truth: dict[str, dict]) -> None:
    """Each panel's numbers, through the dashboard's own queries, equal the oracle's count over
    the sessions the filters keep, for a sample of the combinations the sidebar allows."""
    wh = Warehouse(data / "warehouse.duckdb")
    has_country = all("country" in s for s in truth.values())
    for f in combinations(wh):
        if f.countries and not has_country:
            continue  # the oracle does not know countries yet
        ss = {k: s for k, s in truth.items() if kept(s, f)}
        assert ss, f
        where = f"{f}"
        k = Q.table(wh, Q.kpis(f)).iloc[0]
        assert (k.sessions, k.visitors, k.pageviews, k.conversions) == (
            len(ss), len({s["visitor"] for s in ss.values()}),
            sum(s["pageviews"] for s in ss.values()),
            sum(s["converted"] for s in ss.values())), where
        src = Q.table(wh, Q.sources(f))
        want = defaultdict(int)
        for s in ss.values():
            want[(s["source"], s["medium"], s["campaign"])] += 1
        assert {(r.source, r.medium, r.campaign): r.sessions for r in src.itertuples()} == want
        for dim, key in (("device_type", "device"), ("browser", "browser")):
            got = Q.table(wh, Q.devices(f, dim))
            counts = defaultdict(int)
            for s in ss.values():
                counts[s[key]] += 1
            assert dict(zip(got.value, got.sessions, strict=True)) == counts, (where, dim)
        screens = Q.table(wh, Q.devices(f, "screen_class"))
        counts = defaultdict(int)
        for s in ss.values():
            counts[o.screen_class(s["_events"][0]["screen_width"])] += 1
        assert dict(zip(screens.value, screens.sessions, strict=True)) == counts, where
        # goals: over the filtered sessions, and from goals_daily when it can answer
        goals = wh.df(*Q.goals(f)).groupby("goal")[["sessions", "conversions"]].sum()
        for name, matches in GOALS.items():
            conv = sum(any(matches(e) for e in s["_events"]) for s in ss.values())
            assert (goals.sessions[name], goals.conversions[name]) == (len(ss), conv), (
                where, name)
        if set(f.chosen()) <= Q.GOALS_MART_FILTERS:
            mart = wh.df(*Q.goals_from_mart(f)).groupby("goal").conversions.sum()
            assert mart.to_dict() == goals.conversions.to_dict(), where
        # the funnel, counted over the filtered sessions
        [(_, sql, params, setup)] = Q.funnels(f)
        steps = wh.df(sql, params, setup)
        want_steps = defaultdict(int)
        for (_, step), n in o.funnel(ss).items():
            want_steps[step] += n
        assert dict(zip(steps.step, steps.sessions, strict=True)) == want_steps, where
        # experiments over the same sessions, with the mart's statistics
        exp = Q.compare_variants(wh.df(*Q.experiments(f))).set_index("variant")
        per_variant: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for s in ss.values():
            if s["experiment"] is not None:
                per_variant[s["variant"]][0] += 1
                per_variant[s["variant"]][1] += s["converted"]
        assert {v: [exp.sessions[v], exp.conversions[v]] for v in exp.index} == per_variant
        if all(0 < c < n for n, c in per_variant.values()):  # the oracle's z-test is defined
            for (_, variant), w in o.experiments(ss).items():
                if w["p_value"] is not None:
                    assert exp.p_value[variant] == pytest.approx(w["p_value"]), where
        # cohorts: the consented visitors whose first session the filters keep, all their
        # sessions; first/last touch: those whose first converting session they keep
        by_visitor: dict[str, list[dict]] = defaultdict(list)
        for s in truth.values():
            if s["visitor_id"] is not None:
                by_visitor[s["visitor_id"]].append(s)
        firsts, converters = {}, {}
        for vs in by_visitor.values():
            vs.sort(key=lambda s: (s["session_start"], s["session_id"]))
            if kept(vs[0], f):
                firsts.update({s["session_id"]: s for s in vs})
            conv = [s for s in vs if s["converted"]]
            if conv and kept(conv[0], f):
                converters.update({s["session_id"]: s for s in vs})
        cohorts = wh.df(*Q.cohorts(f))
        assert {(pd.Timestamp(r.cohort_week).date(), r.week_offset): (r.cohort_size, r.visitors)
                for r in cohorts.itertuples()} == o.cohorts(firsts), where
        touch = wh.df(*Q.touch(f))
        assert {(r.source, r.medium, r.campaign): (r.first_touch_conversions,
                                                   r.last_touch_conversions)
                for r in touch.itertuples()} == o.attribution_touch(converters), where


def test_every_view_opens_with_filters_from_the_address(data: Path, truth: dict[str, dict],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared address sets the sidebar; every view opens with it and no error; the numbers
    follow it; a view that cannot honour a filter says so; the address keeps the filters."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    address = {"from": str(DAY1), "to": str(DAY3), "source": "google", "device": "desktop",
               "goal": "Viewed pricing"}
    for k, v in address.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    f = Q.Filters(DAY1, DAY3, ("google",), ("desktop",), goal="Viewed pricing")
    n = sum(kept(s, f) for s in truth.values())
    assert metrics(at)["Sessions"] == f"{n:,}"
    assert "Source: google" in " ".join(c.value for c in at.caption)
    for view in ("Sources", "Devices", "Locations", "Behaviour", "Vitals", "Goals", "Funnel",
                 "Journeys", "Cohorts", "Experiments", "Realtime", "SQL"):
        show(at, view)
        assert not at.error, (view, [e.value for e in at.error])
        off = [w.value for w in at.warning if "Not applied on this view" in w.value]
        assert bool(off) == (view in ("Journeys", "Realtime", "SQL")), (view, off)
        assert {k: at.query_params[k] for k in address} == address
    show(at, "Journeys")
    assert "k = 5" in " ".join(c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1  # the Sankey
    # the new views' numbers, as shown, are the oracle's over the sessions the address keeps
    ss = collapsed({k: s for k, s in truth.items() if kept(s, f)}, f)
    show(at, "Locations")
    assert at.dataframe[0].value.sessions.sum() == n
    show(at, "Behaviour")
    links, files, missing = (d.value for d in at.dataframe)
    assert dict(zip(links.host, links.clicks, strict=True)) == {
        h: r["clicks"] for (_, h), r in o.outbound(ss).items()}
    assert files.downloads.sum() == sum(r["downloads"] for r in o.downloads(ss).values())
    assert missing.hits.sum() == sum(r["hits"] for r in o.not_found(ss).values())
    show(at, "Vitals")
    lcp = o.percentile([e["props"]["lcp"] for s in ss.values() for e in s["_events"]
                        if e["event_type"] == "web_vitals" and "lcp" in e["props"]], 0.75)
    assert metrics(at)["LCP p75"] == (f"{lcp / 1000:.2f} s" if lcp >= 1000 else f"{lcp:.0f} ms")


def collapsed(sessions: dict[str, dict], f: Q.Filters) -> dict[str, dict]:
    """The sessions with the range's first day as their date: the oracle's daily marts then
    count the range as one period, as the dashboard does (``Q.report``)."""
    return {k: {**s, "session_date": f.start} for k, s in sessions.items()}


def test_every_report_follows_every_filter(data: Path, truth: dict[str, dict]) -> None:
    """Locations, Behaviour, Web vitals and the pages' engaged time, through the dashboard's
    queries (the mart without filters, its SQL over the filtered sessions with them), equal the
    oracle's marts over the sessions the filters keep, the range counted as one period."""
    wh = Warehouse(data / "warehouse.duckdb")

    def rows(name: str, f: Q.Filters, keys: list[str], cols: list[str]) -> dict:
        df = wh.df(*Q.report(f, name))
        return {tuple(r[k] for k in keys): {c: None if pd.isna(r[c]) else r[c] for c in cols}
                for r in df.to_dict("records")}

    def additive(want: dict, keys: slice, cols: list[str]) -> dict:
        """The oracle's rows (by date and keys) summed over the dates."""
        out: dict[tuple, dict[str, float]] = {}
        for k, r in want.items():
            acc = out.setdefault(k[keys], dict.fromkeys(cols, 0))
            for c in cols:
                acc[c] += r[c]
        return out

    one_day = Q.Filters(DAY3, DAY3)  # web vitals from the mart itself
    for f in [*combinations(wh), one_day]:
        ss = collapsed({k: s for k, s in truth.items() if kept(s, f)}, f)
        where = f"{f}"
        counts = ["sessions", "pageviews", "bounces", "conversions"]
        assert rows("countries", f, ["country", "country_source"], counts) == additive(
            o.countries(ss), slice(1, 3), counts), where
        assert rows("outbound", f, ["host"], ["clicks", "sessions"]) == additive(
            o.outbound(ss), slice(1, 2), ["clicks", "sessions"]), where
        assert rows("downloads", f, ["ext", "file"], ["downloads", "sessions"]) == additive(
            o.downloads(ss), slice(1, 3), ["downloads", "sessions"]), where
        assert rows("not_found", f, ["page_path", "referrer"], ["hits", "sessions"]) == additive(
            o.not_found(ss), slice(1, 3), ["hits", "sessions"]), where
        engaged = rows("engagement", f, ["page_path"], ["engaged_sessions", "total_engaged_s"])
        want_engaged = o.engagement(ss)
        assert engaged.keys() == {(page,) for _, page in want_engaged}, where
        for (_, page), r in want_engaged.items():
            assert (engaged[(page,)]["engaged_sessions"], engaged[(page,)]["total_engaged_s"]) \
                == (r["sessions"], pytest.approx(r["total_engaged_s"])), (where, page)
        vitals = rows("web_vitals", f, ["page_path"], [
            "samples", *(f"{m}_{c}" for m in o.GOOD for c in ("samples", "p75", "good"))])
        want = {(page,): r for (_, page), r in o.web_vitals(ss).items()}
        assert vitals.keys() == want.keys(), where
        for page, r in want.items():
            assert vitals[page] == pytest.approx(r), (where, page)
        # every page as one: the percentile of all the samples
        [every] = wh.df(*Q.report(f, "web_vitals", all_pages=True)).to_dict("records")
        for m, good in o.GOOD.items():
            xs = [e["props"][m] for s in ss.values() for e in s["_events"]
                  if e["event_type"] == "web_vitals" and m in e["props"]]
            if not xs:  # no browser of these sessions measured it
                assert pd.isna(every[f"{m}_p75"]) and pd.isna(every[f"{m}_good"]), (where, m)
                continue
            assert every[f"{m}_p75"] == pytest.approx(o.percentile(xs, 0.75)), (where, m)
            assert every[f"{m}_good"] == pytest.approx(sum(x <= good for x in xs) / len(xs))
        if f.only_dates():  # the comparisons above compared something
            assert all(len(v) > 3 for v in (o.countries(ss), o.outbound(ss), o.downloads(ss),
                                            o.not_found(ss), want, want_engaged)), where


def test_the_dashboard_never_imports_dagster(data: Path) -> None:
    """The views a goal filter, a filtered funnel and the experiments' statistics run (the
    marts' own SQL and statistics, analytics_platform/mart_logic.py) load no Dagster: importing
    it took about 1.7 s of a reader's first filtered page."""
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=120)
at.query_params["goal"] = "Viewed pricing"
at.query_params["device"] = "desktop"
at.run()
for view in ("goals", "funnel", "experiments"):
    at.switch_page(f"views/{{view}}.py").run()
    assert not at.exception and not at.error, (view, [e.value for e in at.exception])
print(sorted(m for m in sys.modules if m.split(".")[0] == "dagster"))
"""
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data)}
    env.pop("ANALYTICS_RAW_URL", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
