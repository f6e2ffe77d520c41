"""Every dashboard view (Streamlit's AppTest) on a small warehouse built from simulated data:
the numbers shown are the marts' numbers."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analytics_platform.backfill import run_backfill
from analytics_platform.contract import encode_records, format_timestamp, make_raw_record
from analytics_platform.lake import open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform_tests import chromium

APP = str(Path(__file__).resolve().parent.parent / "analytics_platform" / "dashboard" / "app.py")
DAY1, DAY3 = date(2026, 3, 2), date(2026, 3, 4)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("dash") / "data"
    write_traffic(generate(SimConfig(days=3, visitors_per_day=300, start=DAY1, seed=3)),
                  open_raw_lake(data / "raw"), progress=False)
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        assert run_backfill(DAY1, DAY3, instance=instance, log=lambda _: None).success
    return data


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
    challenger = want["book_now"]
    if challenger["p_value"] < 0.05:
        assert not app.warning and "book_now" in app.success[0].value
        assert f"p = {challenger['p_value']:.3g}" in app.success[0].value
    else:
        assert not app.success and "book_now" in app.warning[0].value
        assert "not yet significant" in app.warning[0].value
        assert f"p = {challenger['p_value']:.2f}" in app.warning[0].value


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
    lake.write_records(now - timedelta(minutes=40), gzip.compress(encode_records(recs)))
    show(app, "Realtime")
    assert metrics(app) == {"Events": "6", "Active sessions": "3", "Pageviews": "3"}


def test_sql_playground_runs_examples_and_refuses_writes(app: AppTest) -> None:
    show(app, "SQL")
    app.button(key="run").click().run()
    assert not app.error
    result = app.dataframe[0].value
    assert list(result.columns[:3]) == ["source", "medium", "sessions"]
    assert len(app.get("download_button")) == 1
    app.text_area(key="sql_Which sources convert best").set_value(
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


@pytest.mark.skipif(not chromium.available(), reason=chromium.MISSING)
def test_the_running_dashboard_in_a_real_browser(data: Path, tmp_path: Path) -> None:
    from analytics_platform_tests.screenshots import capture
    from analytics_platform_tests.test_collector import free_port

    port = free_port()
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data)}
    env.pop("ANALYTICS_RAW_URL", None)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("analytics-platform")),
                             "dashboard", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        views = ["Overview", "Sources", "Funnel", "Cohorts", "Experiments", "SQL"]
        shots = capture(f"http://127.0.0.1:{port}", tmp_path, views)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    kpis = mart(data, "SELECT sum(sessions) AS s FROM kpis_daily")[0]
    for view in views:
        assert shots[view]["errors"] == [], (view, shots[view]["errors"])
        assert shots[view]["screenshot"].stat().st_size > 10_000
    assert shots["Overview"]["metrics"]["Sessions"] == f"{kpis['s']:,}"
    assert set(shots["Overview"]["metrics"]) >= {"Visitors", "Pageviews", "Bounce rate",
                                                  "Visit duration", "Conversion rate"}
    for view in ("Overview", "Sources", "Funnel", "Cohorts"):
        assert shots[view]["charts"] >= 1, view
