"""The API (``analytics-platform api``): its answers equal the dashboard's on every view; keys
(401, revocation, stored hashed, never logged), the rate limit (429 + Retry-After), bad input
(400 in Plausible's shape, values bound and never pasted into SQL), read-only by construction,
exports (CLI and streamed HTTP, against pandas) and the OpenAPI document."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import math
import os
import stat
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from openapi_spec_validator import validate as validate_openapi
from starlette.testclient import TestClient

from analytics_platform.api.app import MAX_BODY, create_app
from analytics_platform.api.keys import KeyStore, RateLimiter
from analytics_platform.api.openapi import document
from analytics_platform.cli import main as cli
from analytics_platform.contract import EVENT_TYPES
from analytics_platform.dashboard import queries as Q
from analytics_platform.query.export import TABLES
from analytics_platform.query.stats import METRICS, round_half_up
from analytics_platform_tests.apidata import DAY1, DAY3, NOW, lake_table, post, warehouse_dir
from analytics_platform_tests.test_collector import free_port


@pytest.fixture(scope="module")
def data() -> Path:
    return warehouse_dir()


@pytest.fixture()
def client(data: Path, tmp_path: Path) -> tuple[TestClient, str, KeyStore]:
    keys = KeyStore(tmp_path / "api_keys.json")
    _, secret = keys.create("test")
    app = create_app(data, keys, RateLimiter(per_hour=1e6, burst=1000), now=lambda: NOW)
    return TestClient(app), secret, keys


def ask(c: TestClient, key: str, **query: Any) -> dict[str, Any]:
    body = {"site_id": "example.com", **query}
    r = c.post("/api/v2/query", json=body, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return r.json()


FILTERS = [Q.Filters(DAY1, DAY3), Q.Filters(DAY3, DAY3),
           Q.Filters(DAY1, DAY3, ("google", "linkedin")), Q.Filters(DAY1, DAY3, (), ("mobile",)),
           Q.Filters(DAY1, DAY3, (), (), "/pricing"),
           Q.Filters(DAY1, DAY3, ("(direct)",), ("desktop",), "/")]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: f"{f.start}-{f.end}-{f.sources}-"
                         f"{f.devices}-{f.page}")
def test_the_api_answers_what_the_dashboard_shows(client: tuple[TestClient, str, KeyStore],
                                                  data: Path, f: Q.Filters) -> None:
    """Every number of the Overview and Sources views (KPIs, daily and hourly series, top,
    entry and exit pages, sources) asked through POST /api/v2/query with the same filters."""
    c, key, _ = client
    wh = Q.Warehouse(data / "warehouse.duckdb")
    dates = [f.start.isoformat(), f.end.isoformat()]
    filters = [list(x) for x in f.conditions()]

    k = Q.table(wh, Q.kpis(f)).iloc[0]
    got = ask(c, key, metrics=["visitors", "visits", "pageviews", "bounce_rate",
                               "visit_duration", "conversions", "conversion_rate"],
              date_range=dates, filters=filters)["results"][0]["metrics"]
    assert got == [int(k.visitors), int(k.sessions), int(k.pageviews),
                   int(round_half_up(k.bounce_rate * 100)), int(round_half_up(k.avg_duration_s)),
                   int(k.conversions), round_half_up(k.conversion_rate * 100, 2)]
    assert k.sessions > 0

    for dim, hourly in (("time:day", False), ("time:hour", True)):
        s = Q.table(wh, Q.series(f, hourly))
        res = ask(c, key, metrics=["visitors", "visits", "pageviews", "conversions"],
                  date_range=dates, filters=filters, dimensions=[dim])["results"]
        fmt = "%Y-%m-%d %H:%M:%S" if hourly else "%Y-%m-%d"
        assert [(r["dimensions"][0], *r["metrics"]) for r in res] == [
            (p.strftime(fmt), v, n, pv, cv) for p, v, n, pv, cv in
            s[["period", "visitors", "sessions", "pageviews", "conversions"]].itertuples(
                index=False)]

    top = Q.table(wh, Q.top_pages(f))
    res = ask(c, key, metrics=["pageviews", "visitors"], dimensions=["event:page"],
              date_range=dates, filters=[*filters, ["is", "event:name", ["pageview"]]],
              pagination={"limit": 15})["results"]
    assert [(r["dimensions"][0], *r["metrics"]) for r in res] == list(
        top[["page_path", "pageviews", "visitors"]].itertuples(index=False, name=None))

    entry = Q.table(wh, Q.entry_pages(f))
    res = ask(c, key, metrics=["visits", "bounce_rate"], dimensions=["visit:entry_page"],
              date_range=dates, filters=filters, pagination={"limit": 10})["results"]
    assert [(r["dimensions"][0], *r["metrics"]) for r in res] == [
        (p, n, int(round_half_up(b * 100))) for p, n, b in entry.itertuples(index=False)]

    exits = Q.table(wh, Q.exit_pages(f))
    res = ask(c, key, metrics=["visits"], dimensions=["visit:exit_page"], date_range=dates,
              filters=filters, pagination={"limit": 10})["results"]
    assert [(r["dimensions"][0], *r["metrics"]) for r in res] == list(
        exits.itertuples(index=False, name=None))

    src = Q.table(wh, Q.sources(f))
    res = ask(c, key, metrics=["visits", "visitors", "conversions", "conversion_rate"],
              dimensions=["visit:source", "visit:medium", "visit:campaign"], date_range=dates,
              filters=filters)["results"]
    assert [(*r["dimensions"], *r["metrics"]) for r in res] == [
        (s, m, cp, n, v, cv, round_half_up(cr * 100, 2))
        for s, m, cp, n, v, cv, cr in src.itertuples(index=False)]


def test_the_dashboards_numbers_are_the_marts(client: tuple[TestClient, str, KeyStore],
                                              data: Path) -> None:
    """The shared layer against the pipeline's marts, read from Parquet with pandas."""
    c, key, _ = client
    kpis = lake_table(data, "kpis_daily").sort_values("date")
    res = ask(c, key, metrics=["visitors", "visits", "pageviews", "bounce_rate", "events"],
              date_range=[str(DAY1), str(DAY3)], dimensions=["time:day"])["results"]
    assert [(r["dimensions"][0], *r["metrics"]) for r in res] == [
        (d.isoformat(), v, s, p, int(round_half_up(b * 100)), e) for d, v, s, p, b, e in
        kpis[["date", "visitors", "sessions", "pageviews", "bounce_rate", "events"]]
        .itertuples(index=False)]


def test_requests_without_a_valid_key_get_401(client: tuple[TestClient, str, KeyStore]) -> None:
    c, key, keys = client
    body = {"site_id": "x", "metrics": ["visitors"], "date_range": "7d"}
    for headers in ({}, {"authorization": "Bearer "}, {"authorization": "Basic abc"},
                    {"authorization": "Bearer ap_not-a-key"}, {"authorization": key}):
        r = c.post("/api/v2/query", json=body, headers=headers)
        assert r.status_code == 401 and set(r.json()) == {"error"}, (headers, r.text)
    r = c.get("/api/v1/export?table=sessions")
    assert r.status_code == 401
    assert c.post("/api/v2/query", json=body,
                  headers={"authorization": f"Bearer {key}"}).status_code == 200
    keys.revoke("test")  # as the CLI does: the running app reads the file again
    r = c.post("/api/v2/query", json=body, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "Invalid API key" in r.json()["error"]


def test_the_rate_limit_answers_429_with_retry_after(data: Path, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "k.json")
    _, a = keys.create("a")
    _, b = keys.create("b")
    clock = [1000.0]
    app = create_app(data, keys, RateLimiter(per_hour=60, burst=2, clock=lambda: clock[0]),
                     now=lambda: NOW)
    c = TestClient(app)
    body = {"site_id": "x", "metrics": ["visitors"], "date_range": "7d"}

    def go(key: str) -> Any:
        return c.post("/api/v2/query", json=body, headers={"authorization": f"Bearer {key}"})

    assert [go(a).status_code for _ in range(2)] == [200, 200]
    r = go(a)
    assert r.status_code == 429 and set(r.json()) == {"error"}
    assert r.headers["retry-after"] == "60"  # one request a minute
    assert go(b).status_code == 200  # per key
    clock[0] += 59
    assert go(a).status_code == 429
    clock[0] += 1.5
    assert go(a).status_code == 200


def test_keys_are_printed_once_stored_hashed_0600(data: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    made = runner.invoke(cli, ["api-key", "create", "looker"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    assert secret.startswith("ap_") and len(secret) >= 40
    path = tmp_path / "api_keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()
    assert secret not in stored and hashlib.sha256(secret.encode()).hexdigest() in stored
    listed = runner.invoke(cli, ["api-key", "list"]).output
    assert "looker" in listed and "active" in listed and secret not in listed
    assert runner.invoke(cli, ["api-key", "create", "looker"]).exit_code != 0  # names unique
    assert KeyStore(path).verify(secret) is not None
    assert runner.invoke(cli, ["api-key", "revoke", "looker"]).exit_code == 0
    assert KeyStore(path).verify(secret) is None
    assert "revoked" in runner.invoke(cli, ["api-key", "list"]).output


def test_the_running_api_never_logs_a_key(data: Path, tmp_path: Path) -> None:
    """``analytics-platform api`` as a process, on 127.0.0.1: a key that works, one that does
    not and one in the query string are nowhere in its output."""
    home = tmp_path / "data"
    home.mkdir()
    (home / "warehouse.duckdb").symlink_to(data / "warehouse.duckdb")
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(home)}
    exe = str(Path(sys.executable).with_name("analytics-platform"))
    secret = subprocess.run([exe, "api-key", "create", "ci"], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([exe, "api", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        q = {"site_id": "x", "metrics": ["visitors"], "date_range": [str(DAY1), str(DAY3)]}
        status, body, _ = post(f"{url}/api/v2/query", q, secret)
        assert status == 200 and body["results"][0]["metrics"][0] > 0
        wrong = secret[:-4] + "AAAA"
        assert post(f"{url}/api/v2/query", q, wrong)[0] == 401
        assert post(f"{url}/api/v2/query?key={secret}", q, None)[0] == 401
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "POST /api/v2/query" in out  # it does log requests…
    assert secret not in out and wrong not in out  # …never a key
    assert secret[3:] not in out


@pytest.mark.parametrize("query,message", [
    ({"metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:city"]}, "visit:city"),
    ({"metrics": ["nonsense"], "date_range": "7d"}, "Unknown metric"),
    ({"metrics": ["time_on_page"], "date_range": "7d"}, "time_on_page"),
    ({"metrics": ["visitors"], "date_range": "fortnight"}, "date_range"),
    ({"metrics": ["visitors"], "date_range": ["2026-03-04", "2026-03-01"]}, "date_range"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["equals", "event:page", ["/"]]]},
     "Unknown operator"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["is", "time:day", ["x"]]]},
     "time"),
    ({"metrics": ["visitors"], "date_range": "7d", "filters": [["matches", "event:page",
                                                                ["(unclosed"]]]}, "regular"),
    ({"metrics": ["bounce_rate"], "date_range": "7d", "dimensions": ["event:page"]},
     "Session metric"),
    ({"metrics": ["visitors"], "date_range": "7d", "order_by": [["pageviews", "desc"]]},
     "order_by"),
    ({"metrics": ["visitors"], "date_range": "7d", "include": {"time_labels": True}},
     "time_labels"),
    ({"metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 0}}, "pagination"),
    ({"metrics": ["visitors"], "date_range": "7d", "sql": "select 1"}, "unknown key"),
    ({"metrics": ["percentage"], "date_range": "7d"}, "percentage"),
    ({"date_range": "7d"}, "metrics"),
])
def test_bad_queries_get_400_in_plausibles_shape(client: tuple[TestClient, str, KeyStore],
                                                 query: dict, message: str) -> None:
    c, key, _ = client
    r = c.post("/api/v2/query", json={"site_id": "x", **query},
               headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and message in r.json()["error"], r.json()


def test_values_are_bound_never_pasted(client: tuple[TestClient, str, KeyStore],
                                       data: Path) -> None:
    """SQL in filter values and in a props key is only a value that matches nothing."""
    c, key, _ = client
    before = (data / "warehouse.duckdb").read_bytes()
    evil = "x') OR 1=1; --"
    for f in (["is", "visit:source", [evil]], ["contains", "event:page", [evil]],
              ["matches", "visit:source", [evil.replace("(", "").replace(")", "")]],
              ["is", "event:props:x') OR (1=1", ["a"]], ["is", "event:goal", [f"Visit {evil}"]]):
        res = ask(c, key, metrics=["visitors"], date_range=[str(DAY1), str(DAY3)],
                  filters=[f])["results"]
        assert res == [{"metrics": [0], "dimensions": []}], f
    res = ask(c, key, metrics=["visitors"], date_range=[str(DAY1), str(DAY3)],
              dimensions=["event:props:it's"])["results"]
    assert [r["dimensions"] for r in res] == [["(none)"]]
    assert (data / "warehouse.duckdb").read_bytes() == before


def test_read_only_by_construction(client: tuple[TestClient, str, KeyStore], data: Path) -> None:
    c, key, _ = client
    auth = {"authorization": f"Bearer {key}"}
    for method in ("put", "delete", "patch"):
        assert getattr(c, method)("/api/v2/query", headers=auth).status_code == 405
    assert c.post("/api/v1/export", headers=auth).status_code == 405
    assert {r.path: sorted(r.methods - {"HEAD"}) for r in c.app.routes} == {
        "/api/v2/query": ["POST"], "/api/v1/export": ["GET"], "/api/openapi.json": ["GET"],
        "/healthz": ["GET"]}


def oracle_events(data: Path, first: date, last: date) -> pd.DataFrame:
    """The `events` rows of those days, from the lake's files: one copy per event_id, the
    earliest arrival (CONTRACT §3.4), by pandas."""
    e = lake_table(data, "events").sort_values(["ingest_ts", "event_ts", "raw_key", "raw_pos"])
    e = e.drop_duplicates("event_id")
    day = pd.to_datetime(e.ts).dt.date
    return e[(day >= first) & (day <= last)]


def test_has_done_and_has_not_done_split_the_sessions(
        client: tuple[TestClient, str, KeyStore], data: Path) -> None:
    """The behavioural filters (Plausible's ``has_done`` / ``has_not_done``), on session metrics
    and on event rows: the sessions with a view of the page, and the others, counted by pandas
    from the lake's files; together every session of the range once."""
    c, key, _ = client
    dates = [DAY1.isoformat(), DAY3.isoformat()]
    s = lake_table(data, "sessions")
    s = s[(s.session_date >= DAY1) & (s.session_date <= DAY3)]
    e = lake_table(data, "session_events")
    e = e[(e.session_date >= DAY1) & (e.session_date <= DAY3)]
    for page in ("/pricing", "/", "/no-such-page"):
        viewed = set(e[(e.event_type == "page_view") & (e.page_path == page)].session_id)
        inner = ["and", [["is", "event:page", [page]], ["is", "event:name", ["pageview"]]]]
        for op, keep in (("has_done", s.session_id.isin(viewed)),
                         ("has_not_done", ~s.session_id.isin(viewed))):
            got = ask(c, key, metrics=["visits", "visitors", "pageviews"], date_range=dates,
                      filters=[[op, inner]])["results"][0]["metrics"]
            kept = s[keep]
            assert got == [len(kept), kept.visitor_key.nunique(),
                           int(kept.pageviews.sum())], (page, op)
            events = ask(c, key, metrics=["events"], date_range=dates, filters=[[op, inner]],
                         dimensions=["event:name"])["results"]
            ids = set(kept.session_id)
            assert sum(r["metrics"][0] for r in events) == int(e.session_id.isin(ids).sum()), (
                page, op)
    assert 0 < len(set(e[(e.event_type == "page_view") & (e.page_path == "/pricing")]
                       .session_id)) < len(s)


def test_every_daily_mart_can_be_exported(data: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each daily mart of the pipeline (its daily_marts group), exported for one day as CSV by
    the CLI, holds that day's rows of the mart's lake files (9 of the 13 were unknown tables)."""
    import dagster as dg

    from analytics_platform.definitions import defs
    from analytics_platform.defs.automation import DAILY_MARTS

    marts = {k.to_user_string() for k in dg.AssetSelection.groups(DAILY_MARTS).resolve(
        defs().resolve_asset_graph())}
    assert len(marts) == 13 and marts <= set(TABLES)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    nonempty = 0
    for mart in sorted(marts):
        out = tmp_path / f"{mart}.csv"
        result = CliRunner().invoke(cli, ["export", "--table", mart, "--from", str(DAY3),
                                          "--to", str(DAY3), "--format", "csv", "--out",
                                          str(out)])
        assert result.exit_code == 0, (mart, result.output)
        lake = lake_table(data, mart)
        want = int((pd.to_datetime(lake.date).dt.date == DAY3).sum())
        assert len(pd.read_csv(out)) == want, mart
        nonempty += want > 0
    assert nonempty >= 10  # the test warehouse's traffic reaches nearly every mart


def test_export_events_cli_and_api(client: tuple[TestClient, str, KeyStore], data: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c, key, _ = client
    want = oracle_events(data, DAY1, DAY1)
    assert len(want) > 1000
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    runner = CliRunner()
    got: dict[str, pd.DataFrame] = {}
    for fmt in ("csv", "parquet", "ndjson"):
        out = tmp_path / f"events.{fmt}"
        r = runner.invoke(cli, ["export", "--table", "events", "--from", str(DAY1), "--to",
                                str(DAY1), "--format", fmt, "--out", str(out)])
        assert r.exit_code == 0, r.output
        got[fmt] = (pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
                    if fmt == "parquet" else pd.read_json(out, lines=True))
        http = c.get(f"/api/v1/export?table=events&from={DAY1}&to={DAY1}&format={fmt}",
                     headers={"authorization": f"Bearer {key}"})
        assert http.status_code == 200 and http.content == out.read_bytes()
        assert f"events_{DAY1}_{DAY1}.{fmt}" in http.headers["content-disposition"]
    for fmt, df in got.items():
        assert list(df.event_id) == list(want.sort_values(["ts", "event_id"]).event_id), fmt
        assert "raw_key" not in df.columns and "hour" not in df.columns, fmt
        assert list(df.columns) == [c for c in want.columns if c not in ("raw_key", "raw_pos")]
    # every day: the copies of an event that arrived in two hours are one row
    out = tmp_path / "all.parquet"
    assert runner.invoke(cli, ["export", "--table", "events", "--format", "parquet", "--out",
                               str(out)]).exit_code == 0
    every = oracle_events(data, date(2000, 1, 1), date(2100, 1, 1))
    assert len(lake_table(data, "events")) > len(every)  # the lake holds such copies
    assert list(pd.read_parquet(out).event_id) == list(every.sort_values(["ts", "event_id"])
                                                       .event_id)
    # standard output, and the session's table
    r = runner.invoke(cli, ["export", "--table", "sessions", "--from", str(DAY1), "--to",
                            str(DAY3), "--format", "csv"])
    assert r.exit_code == 0
    sessions = pd.read_csv(io.StringIO(r.stdout))
    assert sorted(sessions.session_id) == sorted(lake_table(data, "sessions").session_id)
    assert "date" not in sessions.columns
    assert not list((data / ".export_tmp").glob("*")) if (data / ".export_tmp").exists() \
        else True


def test_export_refuses_what_it_cannot_do(client: tuple[TestClient, str, KeyStore]) -> None:
    c, key, _ = client
    auth = {"authorization": f"Bearer {key}"}
    for q, msg in (("table=users", "Unknown table"), ("table=events&format=xlsx",
                                                       "Unknown format"),
                   ("table=events&from=yesterday", "dates"),
                   ("table=experiments&from=2026-03-01", "all history"),
                   ("table=events&from=2026-03-04&to=2026-03-01", "after")):
        r = c.get(f"/api/v1/export?{q}", headers=auth)
        assert r.status_code == 400 and msg in r.json()["error"], (q, r.text)



def test_export_reads_the_files_the_events_view_reads(data: Path, tmp_path: Path) -> None:
    """The events export reads the snapshot the warehouse's view reads, not the live lake: a
    partition being rewritten (or written and not yet published) is not in it. Here every live
    events file is replaced by one that is not Parquet, as the pipeline replaces a file (a new
    file renamed over the path; the snapshot's links keep the old one)."""
    from analytics_platform.query import export as exports
    from analytics_platform_tests.apidata import build_warehouse

    own = build_warehouse(tmp_path / "data")
    live = sorted((own / "lake" / "events").glob("hour=*/*.parquet"))
    assert live
    for f in live:
        f.with_suffix(".new").write_bytes(b"PAR1 being rewritten PAR1")
        os.replace(f.with_suffix(".new"), f)
    con = duckdb.connect(str(own / "warehouse.duckdb"), read_only=True)
    try:
        view = [r[0] for r in con.execute(
            "SELECT event_id FROM events WHERE ts >= $1 AND ts < $1 + INTERVAL 1 DAY "
            "ORDER BY ts, event_id", [DAY1]).fetchall()]
    finally:
        con.close()
    out = tmp_path / "events.csv"
    assert exports.export(own / "warehouse.duckdb", "events", DAY1, DAY1, "csv", out) == len(
        view) > 1000
    assert list(pd.read_csv(out).event_id) == view


def test_export_to_the_last_day_a_date_can_be(client: tuple[TestClient, str, KeyStore],
                                              data: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """to=9999-12-31 (there is no day after it) is an open end, in the API and the CLI."""
    c, key, _ = client
    auth = {"authorization": f"Bearer {key}"}
    r = c.get(f"/api/v1/export?table=events&from={DAY3}&to=9999-12-31", headers=auth)
    assert r.status_code == 200, r.text
    want = oracle_events(data, DAY3, date.max).sort_values(["ts", "event_id"])
    assert list(pd.read_csv(io.BytesIO(r.content)).event_id) == list(want.event_id)
    for table in ("quarantine", "sessions"):
        r = c.get(f"/api/v1/export?table={table}&to=9999-12-31", headers=auth)
        assert r.status_code == 200, (table, r.text)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    out = tmp_path / "events.csv"
    r = CliRunner().invoke(cli, ["export", "--table", "events", "--from", str(DAY3), "--to",
                                 "9999-12-31", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert list(pd.read_csv(out).event_id) == list(want.event_id)


@pytest.mark.parametrize(("query", "name"), [
    (f"from={DAY1}&to={DAY3}", f"sessions_{DAY1}_{DAY3}.csv"),
    (f"from={DAY3}", f"sessions_from_{DAY3}.csv"),
    (f"to={DAY1}", f"sessions_to_{DAY1}.csv"),
    ("", "sessions.csv"),
])
def test_the_exports_file_name_says_the_days_asked_for(
        client: tuple[TestClient, str, KeyStore], query: str, name: str) -> None:
    c, key, _ = client
    r = c.get(f"/api/v1/export?table=sessions&{query}",
              headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.headers["content-disposition"] == (
        f'attachment; filename="{name}"')


def test_openapi_document_is_valid_and_lists_the_registry(
        client: tuple[TestClient, str, KeyStore]) -> None:
    c, _, _ = client
    doc = c.get("/api/openapi.json").json()
    assert doc == json.loads(json.dumps(document()))
    validate_openapi(doc)
    props = doc["components"]["schemas"]["Query"]["properties"]
    assert props["metrics"]["items"]["enum"] == list(METRICS)
    assert doc["paths"]["/api/v1/export"]["get"]["parameters"][0]["schema"]["enum"] == list(
        TABLES)



# --- the review of the v2 API (defects found against Plausible's behaviour) ------------------

RANGE = [str(DAY1), str(DAY3)]


def post_raw(c: TestClient, key: str, body: Any) -> Any:
    """A query (its site_id added when it is an object), whatever the answer's status."""
    if isinstance(body, dict):
        body = json.dumps({"site_id": "example.com", **body})
    return c.post("/api/v2/query", content=body, headers={
        "authorization": f"Bearer {key}", "content-type": "application/json"})


def lake_range(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sessions and their events of DAY1…DAY3, from the lake's files."""
    s = lake_table(data, "sessions")
    e = lake_table(data, "session_events")
    return (s[(s.session_date >= DAY1) & (s.session_date <= DAY3)],
            e[(e.session_date >= DAY1) & (e.session_date <= DAY3)])


def event_names(e: pd.DataFrame) -> pd.Series:
    """event:name as Plausible names events: pageview, a custom event's name, else the type."""
    custom = e.props.map(lambda p: json.loads(p).get("name") if isinstance(p, str) else None)
    return e.event_type.where(e.event_type != "custom", custom).where(
        e.event_type != "page_view", "pageview")


def pct(part: int, whole: int) -> float:
    """A share as Plausible shows it: a percentage to two decimals, halves up."""
    return math.floor(part / whole * 100 * 100 + 0.5) / 100


def test_a_page_past_the_last_row_is_empty(client: tuple[TestClient, str, KeyStore],
                                           data: Path) -> None:
    """Paging past the rows of a query whose filter is a temporary table (has_done; an event
    filter with a session metric): no rows, and total_rows still counts them (the count ran
    without the table's parameters: a 400)."""
    c, key, _ = client
    s, e = lake_range(data)
    pricing = set(e[e.page_path == "/pricing"].session_id)
    kept = s[s.session_id.isin(pricing)]
    devices = kept.device_type.fillna("").replace("", "(not set)").nunique()
    sources = kept.source.dropna().nunique()
    assert devices >= 2 and sources >= 2
    for query, rows in (
            ({"metrics": ["visitors"], "dimensions": ["visit:device"],
              "filters": [["has_done", ["is", "event:page", ["/pricing"]]]]}, devices),
            ({"metrics": ["visitors", "bounce_rate"], "dimensions": ["visit:source"],
              "filters": [["is", "event:page", ["/pricing"]]]}, sources)):
        for offset in (rows - 1, rows, rows + 100):
            got = ask(c, key, **query, date_range=RANGE, include={"total_rows": True},
                      pagination={"limit": 2, "offset": offset})
            assert len(got["results"]) == (1 if offset == rows - 1 else 0), (query, offset)
            assert got["meta"]["total_rows"] == rows, (query, offset)


def test_a_goals_conversion_rate_is_of_all_visitors(client: tuple[TestClient, str, KeyStore],
                                                    data: Path) -> None:
    """With a goal filter and another dimension, each row's conversion rate is its converted
    visitors over all the visitors of the range (Plausible's total has no dimensions), not
    over the visitors of its own group."""
    c, key, _ = client
    s, e = lake_range(data)
    everyone = s.visitor_key.nunique()
    done = e[event_names(e) == "cta_click"]
    device = done.session_id.map(s.set_index("session_id").device_type).fillna("") \
        .replace("", "(not set)")
    variant = done.props.map(lambda p: json.loads(p).get("variant") if isinstance(p, str)
                             else None).fillna("(none)")
    for dim, groups in (("visit:device", device), ("event:props:variant", variant)):
        want = {k: [g.visitor_key.nunique(), pct(g.visitor_key.nunique(), everyone)]
                for k, g in done.groupby(groups)}
        assert len(want) >= 2
        got = ask(c, key, metrics=["visitors", "conversion_rate"], date_range=RANGE,
                  dimensions=[dim], filters=[["is", "event:goal", ["cta_click"]]])["results"]
        assert {r["dimensions"][0]: r["metrics"] for r in got} == want, dim
    # a props filter is the goal's too: out of the total, as Plausible leaves it
    control = done[variant == "control"].visitor_key.nunique()
    assert control > 0
    got = ask(c, key, metrics=["visitors", "conversion_rate"], date_range=RANGE,
              filters=[["is", "event:goal", ["cta_click"]],
                       ["is", "event:props:variant", ["control"]]])["results"]
    assert got[0]["metrics"] == [control, pct(control, everyone)]


def test_event_name_filters_know_every_event_type(client: tuple[TestClient, str, KeyStore],
                                                  data: Path) -> None:
    """``is`` / ``is_not`` on event:name find every event type of the contract by its name
    (outbound, download, engagement… were left out: 0 events)."""
    c, key, _ = client
    _, e = lake_range(data)
    names = event_names(e)
    typed = sorted(set(EVENT_TYPES) - {"page_view", "custom"})
    assert {"outbound", "download", "engagement", "not_found", "web_vitals"} <= set(typed)
    assert all((names == t).any() for t in ("outbound", "download", "web_vitals"))
    for t in typed:
        for op, want in (("is", int((names == t).sum())), ("is_not", int((names != t).sum()))):
            got = ask(c, key, metrics=["events"], date_range=RANGE,
                      filters=[[op, "event:name", [t]]])["results"][0]["metrics"]
            assert got == [want], (op, t)


def test_patterns_are_re2_and_take_no_modifiers(client: tuple[TestClient, str, KeyStore],
                                                data: Path) -> None:
    """matches / matches_not take RE2 patterns (DuckDB's regexp_matches, as ClickHouse's match
    in Plausible): what RE2 reads is run, what it refuses is a 400 that says so; like
    Plausible's schema, a modifier is for is / is_not / contains / contains_not only (a
    case-insensitive pattern lowered its own \\D into \\d)."""
    c, key, _ = client
    _, e = lake_range(data)
    views = e[e.event_type == "page_view"]
    pageview = ["is", "event:name", ["pageview"]]

    def count(f: list) -> int:
        return ask(c, key, metrics=["pageviews"], date_range=RANGE,
                   filters=[f, pageview])["results"][0]["metrics"][0]

    letter = views.page_path.map(lambda p: len(p) > 1 and p[1].isalpha())
    assert 0 < int(letter.sum()) < len(views)
    assert count(["matches", "event:page", [r"^/\pL+"]]) == int(letter.sum())  # RE2 only
    blog = views.page_path.str.lower().str.startswith("/blog")
    assert int(blog.sum()) > 0
    assert count(["matches", "event:page", ["(?i)^/BLOG"]]) == int(blog.sum())
    assert count(["matches_not", "event:page", ["(?i)^/BLOG"]]) == int((~blog).sum())
    assert count(["contains_not", "event:page", ["BLOG"], {"case_sensitive": False}]) == int(
        (~views.page_path.str.lower().str.contains("blog")).sum())
    assert count(["is_not", "event:page", ["/PRICING"], {"case_sensitive": False}]) == int(
        (views.page_path.str.lower() != "/pricing").sum())
    for f, message in (
            (["matches", "event:page", ["^/(?=b)"]], "bad regular expression"),  # Python's
            (["matches", "event:page", ["(unclosed"]], "bad regular expression"),
            (["matches", "event:page", [r"^/blog/\D"], {"case_sensitive": False}],
             "take no modifiers"),
            (["matches_not", "event:page", ["^/blog"], {"case_sensitive": True}],
             "take no modifiers")):
        r = post_raw(c, key, {"metrics": ["pageviews"], "date_range": RANGE, "filters": [f]})
        assert r.status_code == 400 and set(r.json()) == {"error"}, (f, r.text)
        assert message in r.json()["error"], (f, r.text)


def test_props_keys_are_names_not_paths(data: Path, tmp_path: Path) -> None:
    """A props key is any 1-64 characters (the contract): ``a.b`` is the key "a.b", not "b"
    of an object "a"; ``*`` is the key "*", not every key (a 500). On a copy of the warehouse
    whose CTA clicks carry such keys."""
    props = {"a.b": "dotted", "a": "plain", "*": "star", "x~/y": "escaped"}
    home = tmp_path / "data"
    home.mkdir()
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("ATTACH ? AS w (READ_ONLY)", [str(data / "warehouse.duckdb")])
        con.execute("CREATE TABLE sessions_rows AS SELECT * FROM w.sessions")
        con.execute("CREATE TABLE session_events_rows AS SELECT * REPLACE (CASE WHEN "
                    "event_type = 'cta_click' THEN ? ELSE props END AS props) "
                    "FROM w.session_events", [json.dumps(props)])
        con.execute("CREATE VIEW sessions AS SELECT * FROM sessions_rows")
        con.execute("CREATE VIEW session_events AS SELECT * FROM session_events_rows")
    keys = KeyStore(tmp_path / "api_keys.json")
    _, key = keys.create("test")
    c = TestClient(create_app(home, keys, RateLimiter(per_hour=1e6, burst=1000),
                              now=lambda: NOW))
    _, e = lake_range(data)
    clicks = e[e.event_type == "cta_click"]
    assert len(clicks) > 0
    for k, v in props.items():
        got = ask(c, key, metrics=["visitors"], date_range=RANGE,
                  dimensions=[f"event:props:{k}"])["results"]
        want = {v: clicks.visitor_key.nunique(),
                "(none)": e[e.event_type != "cta_click"].visitor_key.nunique()}
        assert {r["dimensions"][0]: r["metrics"][0] for r in got} == want, k
        got = ask(c, key, metrics=["visitors"], date_range=RANGE,
                  filters=[["is", f"event:props:{k}", [v]]])["results"]
        assert got[0]["metrics"] == [clicks.visitor_key.nunique()], k
        got = ask(c, key, metrics=["visitors"], date_range=RANGE,
                  filters=[["is_not", f"event:props:{k}", [v]]])["results"]
        assert got[0]["metrics"] == [e[e.event_type != "cta_click"].visitor_key.nunique()], k


def nested(levels: int) -> str:
    """A query body whose filter is ``levels`` - 1 nots around a source filter."""
    inner = '["is", "visit:source", ["google"]]'
    return ('{"site_id": "x", "metrics": ["visitors"], "date_range": ["2026-03-02", '
            '"2026-03-04"], "filters": [' + '["not", ' * (levels - 1) + inner
            + "]" * (levels - 1) + "]}")


@pytest.mark.parametrize("body,message", [
    (nested(21), "nested more than 20 levels"),
    (nested(500), "nested more than 20 levels"),  # freeze's recursion: a 500
    (nested(5000), "nested too deeply"),  # the JSON parser's recursion: a 500
    ({"metrics": ["visitors"], "date_range": "7d",
      "filters": [["is", "visit:source", [["a", ["b", ["c"]]]]]]}, "nested too deep"),
    ({"metrics": ["visitors"], "date_range": ["0001-01-01T00:00:00+01:00",
                                              "2026-03-04T00:00:00+00:00"]}, "date_range"),
    ({"metrics": ["visitors"], "date_range": ["2026-03-01T00:00:00+00:00",
                                              "9999-12-31T23:00:00-05:00"]}, "date_range"),
    ({"metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:source"],
      "pagination": {"limit": 2, "offset": 2**63}}, "pagination"),
    ({"metrics": ["visitors"], "date_range": "7d", "pagination": {"offset": 10**20}},
     "pagination"),
])
def test_malformed_input_is_a_400_never_a_500(client: tuple[TestClient, str, KeyStore],
                                              body: Any, message: str) -> None:
    c, key, _ = client
    r = post_raw(c, key, body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and message in r.json()["error"], r.json()


def test_filters_nested_within_the_limit_are_counted(client: tuple[TestClient, str, KeyStore],
                                                     data: Path) -> None:
    """18 nots (19 levels; an even number of nots is no not) count what the filter does."""
    c, key, _ = client
    s, _ = lake_range(data)
    want = s[s.source == "google"].visitor_key.nunique()
    assert want > 0
    r = post_raw(c, key, nested(19))
    assert r.status_code == 200 and r.json()["results"][0]["metrics"] == [want], r.text


def test_a_chunked_body_is_read_no_further_than_the_limit(data: Path, tmp_path: Path) -> None:
    """A body without a length (chunked) is refused with 413 once past MAX_BODY, while it is
    still arriving: here it never ends, and the API reads 4 KiB at a time."""
    keys = KeyStore(tmp_path / "api_keys.json")
    _, key = keys.create("test")
    app = create_app(data, keys, RateLimiter(per_hour=1e6, burst=1000), now=lambda: NOW)
    pieces, sent = [0], []

    async def receive() -> dict[str, Any]:
        pieces[0] += 1
        assert pieces[0] <= 1000, "the API read on past MAX_BODY"
        return {"type": "http.request", "body": b" " * 4096, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/v2/query",
             "raw_path": b"/api/v2/query", "query_string": b"", "root_path": "",
             "headers": [(b"authorization", f"Bearer {key}".encode()),
                         (b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert pieces[0] == MAX_BODY // 4096 + 1


def test_time_labels_are_bounded(client: tuple[TestClient, str, KeyStore],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """More than 10,000 time labels is a 400, said before any query runs (1800 to today by the
    hour was 2M labels built in Python); a long range by the month is fine."""
    c, key, _ = client
    far = ["1800-01-01", str(DAY3)]
    months = pd.period_range("1800-01", DAY3.strftime("%Y-%m"), freq="M")
    got = ask(c, key, metrics=["visitors"], date_range=far, dimensions=["time:month"],
              include={"time_labels": True})["meta"]["time_labels"]
    assert got == [f"{m.start_time:%Y-%m-%d}" for m in months]

    def no_query(*_: Any, **__: Any) -> Any:
        raise AssertionError("a query ran")

    monkeypatch.setattr("analytics_platform.api.app.run", no_query)
    for dim in ("time:hour", "time:day"):
        r = post_raw(c, key, {"metrics": ["visitors"], "date_range": far, "dimensions": [dim],
                              "include": {"time_labels": True}})
        assert r.status_code == 400 and "time_labels" in r.json()["error"], (dim, r.text)


@pytest.mark.parametrize("date_range,dim", [
    (["2026-03-04", "2026-03-04"], "time:hour"),
    (["2026-03-03", "2026-03-04"], "time:hour"),  # 47:59:59
    (["2026-03-02", "2026-03-04"], "time:day"),
    (["2026-01-23", "2026-03-04"], "time:day"),  # 41 dates: 40 days and 23:59:59
    (["2026-01-22", "2026-03-04"], "time:week"),
    (["2025-02-27", "2026-03-04"], "time:week"),  # 371 dates: 52 weeks and 6 days
    (["2025-02-26", "2026-03-04"], "time:month"),
    (["2026-03-02T11:30:00+00:00", "2026-03-04T12:00:00+00:00"], "time:hour"),  # 48:30
    (["2026-03-02T11:00:00+00:00", "2026-03-04T12:00:00+00:00"], "time:day"),  # 49 hours
])
def test_the_time_dimension_is_plausibles(client: tuple[TestClient, str, KeyStore],
                                          date_range: list[str], dim: str) -> None:
    """``time`` is what Plausible resolves it to (query_optimizer.ex resolve_time_dimension,
    in whole units elapsed from the range's first instant to its last): hours up to 48
    hours, days up to 40 days, weeks up to 52 weeks, months beyond."""
    c, key, _ = client
    got = ask(c, key, metrics=["visitors"], date_range=date_range, dimensions=["time"])
    assert got["query"]["dimensions"] == [dim]
    assert got["query"]["order_by"] == [[dim, "asc"], ["visitors", "desc"]]
    assert got["results"] == ask(c, key, metrics=["visitors"], date_range=date_range,
                                 dimensions=[dim])["results"]
