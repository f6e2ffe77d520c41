"""A small or new site on the dashboard and the API: sessions without a country (Plausible's
/api/event has no time zone), sessions without any page view, events received but no session
built yet (bots only, or the pipeline's first hour), and a table not published yet."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from analytics_platform.api.app import create_app, raw_lake_has_objects
from analytics_platform.api.keys import KeyStore
from analytics_platform.lake import S3RawLake, open_raw_lake
from analytics_platform_tests.apidata import build_warehouse
from analytics_platform_tests.raw_events import event

DASHBOARD = Path(__file__).resolve().parent.parent / "analytics_platform" / "dashboard"
APP = str(DASHBOARD / "app.py")
# every view (app.py's VIEWS; importing it would run the app)
VIEWS = sorted(p.name for p in (DASHBOARD / "views").glob("*.py") if p.name != "__init__.py")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The API tests' three simulated days, a copy of their own (the variants rewrite views)."""
    return build_warehouse(tmp_path_factory.mktemp("small") / "data")


def variant(full: Path, to: Path, statements: tuple[str, ...] = (), **views: str) -> Path:
    """``full``'s warehouse in ``to``, after ``statements``, each view named in ``views``
    replaced by the query given, with ``{}`` standing for the view's own body (its files stay
    ``full``'s)."""
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy(full / "warehouse.duckdb", to / "warehouse.duckdb")
    with duckdb.connect(str(to / "warehouse.duckdb")) as con:
        for statement in statements:
            con.execute(statement)
        for view, query in views.items():
            sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?",
                              [view]).fetchone()[0]
            body = sql.split(" AS ", 1)[1].rstrip().rstrip(";")
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {query.format(body)}")
    return to


def open_every_view(data: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """Each view of the dashboard on ``data``, run once; asserts none raised."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for view in VIEWS:
        at.switch_page(f"views/{view}").run()
        assert not at.exception, (view, [e.value for e in at.exception])
    return at


def test_sessions_without_a_country_open_every_view(
        full: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No session has a country (a site on /api/event without CloudFront, or before its first
    visitor with a known time zone): the country choices are none, not NULL (every page failed
    with TypeError: 'NAType' object is not iterable)."""
    data = variant(full, tmp_path / "data",
                   sessions="SELECT * REPLACE (NULL::VARCHAR AS country) FROM ({})")
    at = open_every_view(data, monkeypatch)
    country = at.sidebar.multiselect(key="countries")
    assert country.disabled and "No session has a country yet" in country.help


def test_sessions_without_a_page_view_open_every_view(
        full: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions, but no page view anywhere (custom events only) and no device or browser known:
    every view opens, and the overview says there is no page instead of empty tables."""
    data = variant(
        full, tmp_path / "data",
        # the top pages' rollup (query/rollups.py), made from the page views
        ("DELETE FROM _store.page_visitors",),
        pages_daily="SELECT * FROM ({}) WHERE false",
        events="SELECT * FROM ({}) WHERE event_type <> 'page_view'",
        engagement_daily="SELECT * FROM ({}) WHERE false",
        session_events="SELECT * FROM ({}) WHERE event_type <> 'page_view'",
        sessions="SELECT * REPLACE (NULL::VARCHAR AS device_type, NULL::VARCHAR AS browser, "
                 "0::BIGINT AS pageviews, NULL::VARCHAR AS entry_page, "
                 "NULL::VARCHAR AS exit_page) FROM ({})")
    at = open_every_view(data, monkeypatch).switch_page("views/overview.py").run()
    infos = [i.value for i in at.info]
    assert infos.count("No page view in these dates and filters.") == 3, infos  # top, entry, exit
    assert not at.dataframe, [d.value for d in at.dataframe]


def raw_object(data: Path, arrived: datetime) -> None:
    """One raw object of two page views, as the collector stores it."""
    body = b"".join(json.dumps(event(n, 1, arrived, timedelta(seconds=1))).encode() + b"\n"
                    for n in range(2))
    open_raw_lake(data / "raw").write_records(arrived, gzip.compress(body))


def test_events_received_but_no_session_yet_do_not_ask_for_simulated_traffic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw events and no session (bots only, or serve's first hour): the dashboard says events
    arrived and when the pipeline counts them, never to run `make demo` or `simulate`, which on
    a production deployment would write simulated traffic into the real raw lake."""
    data = tmp_path / "data"
    raw_object(data, datetime.now(UTC) - timedelta(minutes=5))
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    info = at.info[0].value
    assert "make demo" not in info and "simulate" not in info, info
    assert "received" in info and "bots" in info, info


def test_a_raw_lake_that_cannot_be_listed_gets_no_advice_to_simulate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: str) -> None:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANALYTICS_RAW_URL", f"s3://{s3_bucket}-gone/raw")  # no such bucket
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    info = at.info[0].value
    assert "could not be listed" in info and "make demo" not in info, info


def test_the_api_says_events_arrived_instead_of_asking_for_a_backfill(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same in the API: "run a backfill first" is wrong when events came and the pipeline
    runs (it is told when they count instead); with no event at all, it says so."""
    data = tmp_path / "data"
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    keys = KeyStore(tmp_path / "keys.json")
    _, key = keys.create("t")
    body = {"site_id": "x", "metrics": ["visitors"], "date_range": "7d"}
    auth = {"authorization": f"Bearer {key}"}
    with TestClient(create_app(data, keys)) as c:
        r = c.post("/api/v2/query", json=body, headers=auth)
        assert r.status_code == 503 and "no event" in r.json()["error"], r.text
        raw_object(data, datetime.now(UTC) - timedelta(minutes=5))
        r = c.post("/api/v2/query", json=body, headers=auth)
        assert r.status_code == 503, r.text
        assert "received" in r.json()["error"] and "backfill" not in r.json()["error"], r.text


def test_exporting_a_table_not_published_yet_is_503(full: Path, tmp_path: Path) -> None:
    """A table the warehouse has no view of yet (no file of it published: a site without web
    vitals, a pipeline that has not made it yet) is the server's state, not a bad request: 503
    with Retry-After, as for a missing warehouse; an unknown table stays 400."""
    data = variant(full, tmp_path / "data")
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.execute("DROP VIEW web_vitals_daily")
    keys = KeyStore(tmp_path / "keys.json")
    _, key = keys.create("t")
    auth = {"authorization": f"Bearer {key}"}
    with TestClient(create_app(data, keys)) as c:
        r = c.get("/api/v1/export?table=web_vitals_daily", headers=auth)
        assert r.status_code == 503, r.text
        assert "web_vitals_daily" in r.json()["error"] and r.headers.get("retry-after")
        assert c.get("/api/v1/export?table=nope", headers=auth).status_code == 400
        assert c.get("/api/v1/export?table=sessions", headers=auth).status_code == 200


def test_the_raw_lake_is_asked_for_one_object_locally_and_on_s3(
        tmp_path: Path, s3_bucket: str) -> None:
    """One LIST of one key on S3, the first file found locally; what is not an object of the
    lake (outside year=/month=/day=/hour=/, or a write under way) is not one."""
    (tmp_path / "raw" / "year=2026").mkdir(parents=True)
    (tmp_path / "raw" / "year=2026" / "notes.txt").write_text("not an object")
    for url in (str(tmp_path / "raw"), f"s3://{s3_bucket}/raw"):
        lake = open_raw_lake(url)
        if isinstance(lake, S3RawLake):
            assert raw_lake_has_objects(url) is False, url
            lake.client.put_object(Bucket=s3_bucket, Key="raw/notes.txt", Body=b"not an object")
        assert raw_lake_has_objects(url) is False, url
        lake.write_records(datetime(2026, 3, 2, 9, tzinfo=UTC), gzip.compress(b"{}\n"))
        assert raw_lake_has_objects(url) is True, url
    # a lake that cannot be asked: no hint, no failure
    assert raw_lake_has_objects("s3://no-such-bucket-for-this-test/raw") is None
