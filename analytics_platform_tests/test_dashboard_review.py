"""The dashboard's review findings, each against numbers computed here with DuckDB over the lake's
Parquet files: the Overview's series has every bucket of the range, the page filter knows every
page the warehouse has, every day whose window for late events is open is marked provisional,
Realtime counts records written back to back on one line, and the playground's campaign example
counts visitors once.

The warehouse is test_dashboard's (three simulated days) plus a fourth day, 2026-03-05, run
through the pipeline: 200 pages viewed 12 times each (so a page viewed once is not among the
200 most viewed), such a page, a visitor of a campaign coming back through it, and records
written back to back on one line (``}{``)."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from analytics_platform import settings
from analytics_platform.backfill import run_backfill
from analytics_platform.contract import encode_records, format_timestamp, make_raw_record
from analytics_platform.dashboard.examples import EXAMPLES
from analytics_platform.dashboard.frame import provisional_days
from analytics_platform.dashboard.realtime import recent_activity
from analytics_platform.lake import open_raw_lake
from analytics_platform.partitions import session_window
from analytics_platform_tests.apidata import build_warehouse
from analytics_platform_tests.test_dashboard import APP, DAY1, DAY3, metrics, spec_values

DAY4 = DAY3 + timedelta(days=1)
AT = datetime.combine(DAY4, datetime.min.time(), UTC) + timedelta(hours=10)
UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")
RARE = "/rare-page"
CAMPAIGN = "spring_launch"


def lake(data: Path) -> duckdb.DuckDBPyConnection:
    """The lake's sessions (S), session events (E) and events (EV), straight from Parquet."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for view, table in (("S", "sessions"), ("E", "session_events")):
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet("
                    f"'{data}/lake/{table}/date=*/part.parquet', union_by_name = true)")
    con.execute(f"CREATE VIEW EV AS SELECT * FROM read_parquet('{data}/lake/events/*/*.parquet', "
                "union_by_name = true)")
    return con


def event(kind: str, session: str, page: str, ts: datetime, **more: Any) -> dict[str, Any]:
    return make_raw_record({"event_type": kind, "event_id": str(uuid.uuid4()),
                            "session_id": session, "page_path": page,
                            "event_ts": format_timestamp(ts), **more}, ts, UA,
                           consent="visitor_id" in more or None)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = build_warehouse(tmp_path_factory.mktemp("dash-review") / "data")
    raw = open_raw_lake(data / "raw")
    records = []
    for i in range(200):
        s = str(uuid.uuid4())
        records += [event("page_view", s, f"/archive/post-{i:03d}", AT + timedelta(seconds=j))
                    for j in range(12)]
    s = str(uuid.uuid4())
    records += [event("page_view", s, RARE, AT + timedelta(minutes=1)),
                event("page_view", s, "/pricing", AT + timedelta(minutes=2))]
    # a visitor of the campaign on an earlier day comes back through it
    [(visitor,)] = lake(data).execute(
        "SELECT min(visitor_id) FROM S WHERE campaign = $c AND visitor_id IS NOT NULL",
        {"c": CAMPAIGN}).fetchall()
    records.append(event("page_view", str(uuid.uuid4()), "/", AT + timedelta(minutes=3),
                         visitor_id=visitor, utm_source="newsletter", utm_medium="email",
                         utm_campaign=CAMPAIGN))
    raw.write_records(AT, gzip.compress(encode_records(records)))
    # three records back to back on one line, then one on a line of its own (a later object)
    s = str(uuid.uuid4())
    glued = [event("page_view", s, f"/glued-{i}", AT + timedelta(minutes=10, seconds=i))
             for i in range(4)]
    text = "".join(json.dumps(r) for r in glued[:3]) + "\n" + json.dumps(glued[3]) + "\n"
    raw.write_records(AT + timedelta(minutes=10), gzip.compress(text.encode()))
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        assert run_backfill(DAY4, DAY4, instance=instance, log=lambda _: None).success
    return data


def open_app(data: Path, monkeypatch: pytest.MonkeyPatch, **address: str) -> AppTest:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in address.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sessions_series(at: AppTest) -> list[tuple[str, float]]:
    """The Overview chart's sessions line: (bucket, sessions) per point."""
    [chart] = at.get("plotly_chart")
    [line] = [t for t in json.loads(chart.proto.spec)["data"] if t["name"] == "sessions"]
    x = [line["x"]] if isinstance(line["x"], str) else line["x"]
    return list(zip(x, spec_values(line["y"]), strict=True))


# --- 1. the series has every bucket of the range -------------------------------------------------

def test_the_series_has_every_day_and_hour_with_zero_where_no_session_started(
        data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = lake(data)
    # the source with the most days without a session in DAY1 – DAY4, and per day the sessions
    [(source, days, counts)] = con.execute("""
        SELECT source, list(d ORDER BY d), list(n ORDER BY d) FROM (
            SELECT s.source, d::DATE AS d, count(x.session_id) AS n
            FROM (SELECT DISTINCT source FROM S) s
            CROSS JOIN range($a::DATE, $b::DATE + 1, INTERVAL 1 DAY) r(d)
            LEFT JOIN S x ON x.source = s.source AND x.session_date = d::DATE GROUP BY ALL)
        GROUP BY source HAVING bool_or(n = 0) AND sum(n) > 0
        ORDER BY count(*) FILTER (n = 0) DESC, source LIMIT 1""",
                                     {"a": DAY1, "b": DAY4}).fetchall()[0:1]
    at = open_app(data, monkeypatch, **{"from": str(DAY1), "to": str(DAY4), "source": source})
    assert sessions_series(at) == [(f"{d}T00:00:00", n)
                                   for d, n in zip(days, counts, strict=True)]
    # one day: by the hour, 24 buckets (the range is long past: every hour has begun)
    [(day, hours)] = con.execute("""
        SELECT d, list(n ORDER BY h) FROM (
            SELECT x.session_date AS d, h.h, count(*) FILTER (hour(x.session_start) = h.h) AS n
            FROM S x CROSS JOIN range(24) h(h) WHERE x.source = 'google' GROUP BY ALL)
        GROUP BY d HAVING bool_or(n = 0) ORDER BY d LIMIT 1""").fetchall()
    at = open_app(data, monkeypatch, **{"from": str(day), "to": str(day), "source": "google"})
    assert sessions_series(at) == [(f"{day}T{h:02d}:00:00", n) for h, n in enumerate(hours)]


# --- 2. the page filter knows every page of the warehouse ----------------------------------------

def type_page(at: AppTest, page: str) -> None:
    box = at.sidebar.selectbox(key="page")
    box.options.append(page)
    box.set_value(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_page_outside_the_200_most_viewed_is_applied_and_can_be_chosen(
        data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = lake(data)
    # each page's rank by page views (the choices' order), and the sessions that viewed it
    ranked = {r[0]: r[1:] for r in con.execute("""
        SELECT page_path, row_number() OVER (ORDER BY count(*) DESC, page_path),
               count(DISTINCT session_id)
        FROM E WHERE event_type = 'page_view' GROUP BY 1""").fetchall()}
    typed = max(ranked, key=lambda p: ranked[p][0] if p != RARE else 0)
    assert ranked[RARE][0] > 200 and ranked[typed][0] > 200  # pages the top 200 leave out
    at = open_app(data, monkeypatch, **{"from": str(DAY1), "to": str(DAY4), "page": RARE})
    assert not at.sidebar.warning, [w.value for w in at.sidebar.warning]
    assert metrics(at)["Sessions"] == f"{ranked[RARE][1]:,}"
    page = at.sidebar.selectbox(key="page")
    assert page.value == RARE and RARE in page.options
    assert at.query_params["page"] == RARE
    # the reader types another such page's path: the selectbox takes new options, and the
    # browser sends the typed text as the value (AppTest sends only a listed option's, so the
    # text is listed in the test's copy of the widget first)
    type_page(at, typed)
    assert metrics(at)["Sessions"] == f"{ranked[typed][1]:,}"
    assert at.sidebar.selectbox(key="page").value == typed
    # a page without any view is said so, with that reason, and not applied
    at = open_app(data, monkeypatch, **{"from": str(DAY1), "to": str(DAY4),
                                        "page": "/never-viewed"})
    [(all_sessions,)] = con.execute("SELECT count(*) FROM S").fetchall()
    assert metrics(at)["Sessions"] == f"{all_sessions:,}"
    assert ["“/never-viewed” (no page view of it in this warehouse)" in w.value
            for w in at.sidebar.warning] == [True]
    type_page(at, "/typed-never-viewed")
    assert any("“/typed-never-viewed” (no page view of it" in w.value
               for w in at.sidebar.warning)
    assert metrics(at)["Sessions"] == f"{all_sessions:,}"


# --- 3. every day whose window is open is provisional --------------------------------------------

def final(day: date) -> datetime:
    """CONTRACT §4: the day's last raw hour (partitions.session_window), processed at
    :schedule_minute past the hour after it."""
    end = session_window(datetime.combine(day, datetime.min.time(), UTC),
                         settings.late_arrival_hours())[1]
    return end + timedelta(hours=1, minutes=settings.schedule_minute())


def test_the_days_still_taking_late_events_are_provisional() -> None:
    # the review's case: at 01:10 UTC on 6 Dec, 5 Dec still changes (and 6 Dec); 4 Dec is done
    now = datetime(2026, 12, 6, 1, 10, tzinfo=UTC)
    days = [date(2026, 12, d) for d in range(1, 7)]
    assert provisional_days(days[0], days[-1], now) == [d for d in days if final(d) > now]
    assert provisional_days(days[0], days[-1], now) == days[-2:]
    assert provisional_days(days[0], days[-1], now - timedelta(minutes=1)) == days[-3:]


def test_the_overview_marks_the_open_days_in_its_caption_and_chart(
        data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a late window long enough that, by the real clock, DAY2 – DAY4 are still open and DAY1
    # is not: the pipeline's setting, not a fake clock
    now = datetime.now(UTC)
    done = datetime.combine(DAY1, datetime.min.time(), UTC) + timedelta(
        days=1, hours=1, minutes=settings.schedule_minute())
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", str(int((now - done) / timedelta(hours=1))))
    day2 = DAY1 + timedelta(days=1)
    assert final(DAY1) <= datetime.now(UTC) < final(day2)
    at = open_app(data, monkeypatch, **{"from": str(DAY1), "to": str(DAY4)})
    captions = [c.value for c in at.caption if "provisional" in c.value]
    assert len(captions) == 1 and f"{day2:%d %b} – {DAY4:%d %b} (UTC) are provisional" in (
        captions[0]), captions
    [chart] = at.get("plotly_chart")
    [shade] = json.loads(chart.proto.spec)["layout"]["shapes"]
    assert shade["x0"].startswith(str(day2))


# --- 4. Realtime counts records written back to back ---------------------------------------------

@pytest.mark.parametrize("minutes", [20, 8])
def test_realtime_counts_records_written_back_to_back(data: Path, minutes: int) -> None:
    """Realtime's counts of the injected hour's last 30 minutes are the pipeline's: its events
    of that window in the lake (human, one per event id). Asked about a moment before the
    hour's last records (8 minutes in), it leaves out what arrived after it, as its per-minute
    series does."""
    now = AT + timedelta(minutes=minutes)
    got = recent_activity(str(data / "raw"), now)
    assert got.per_minute.events.sum() == got.events
    want = lake(data).execute("""
        SELECT count(*), count(DISTINCT coalesce(session_id, visitor_hash)),
               count(*) FILTER (event_type = 'page_view'),
               count(*) FILTER (starts_with(page_path, '/glued-'))
        FROM (SELECT DISTINCT ON (event_id) * FROM EV WHERE ingest_ts BETWEEN $a AND $b)""",
                              {"a": now - timedelta(minutes=30), "b": now}).fetchall()[0]
    if minutes == 20:  # the three glued records and the one after them, as the pipeline has
        assert want[3] == 4
    assert (got.events, got.sessions, got.pageviews) == want[:3]


# --- 5. the campaign example counts each visitor once --------------------------------------------

def test_the_campaign_example_counts_each_visitor_once(data: Path) -> None:
    want = lake(data).execute("""
        SELECT campaign, source, count(*), count(DISTINCT visitor_key),
               count(*) FILTER (converted),
               count(DISTINCT (visitor_key, session_date)) AS visitor_days
        FROM S WHERE campaign <> '(none)' GROUP BY ALL""").fetchall()
    # the case: a visitor of the campaign on two days
    assert any(r[5] > r[3] for r in want if r[0] == CAMPAIGN)
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    got = con.execute(EXAMPLES["Which campaigns bring visitors"]).fetchall()
    assert sorted(got) == sorted(r[:5] for r in want)
