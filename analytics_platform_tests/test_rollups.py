"""The warehouse's rollups (query/rollups.py, issue #21) answer exactly as the rows do: the
daily series and the top pages, and the API's queries of the same shape, from the rollups and
from ``sessions`` / ``session_events``, on every range of the API tests' warehouse (three
days; the last one is the provisional day of their clock, ``apidata.NOW``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics_platform.dashboard import queries as Q
from analytics_platform.duck import connect
from analytics_platform.query import rollups
from analytics_platform.query.stats import Query, compile_query, run
from analytics_platform.query.warehouse import Warehouse
from analytics_platform.storage import Lake, publish_warehouse
from analytics_platform_tests.apidata import DAY1, DAY3, NOW, warehouse_dir
from analytics_platform_tests.test_warehouse_storage import rollup_differences

DAYS = [DAY1 + timedelta(i) for i in range((DAY3 - DAY1).days + 1)]
# every range of the three days (single days included), and one reaching past the data
RANGES = [(a, b) for a in DAYS for b in DAYS if a <= b] + [(DAY3, DAY3 + timedelta(5))]


@pytest.fixture(scope="module")
def wh() -> Warehouse:
    w = Warehouse(warehouse_dir() / "warehouse.duckdb")
    assert w.rollups == {r.name for r in rollups.ROLLUPS}
    return w


def queries(start: date, end: date) -> list[Query]:
    f = Q.Filters(start, end)
    return [
        Q.series(f, False), Q.top_pages(f),
        # as the API may ask: every metric a day's rollup holds, in another order, paged
        Query(start, end, rollups.DAY_METRICS[::-1], ("time:day",),
              order_by=(("visits", "desc"),), limit=2, offset=1),
        Query(start, end, ("visitors",), ("event:page",), rollups.PAGEVIEWS,
              order_by=(("visitors", "desc"), ("event:page", "asc"))),
        Query(start, end, ("visitors", "pageviews"), ("event:page",), rollups.PAGEVIEWS,
              limit=3, offset=2),
    ]


@pytest.mark.parametrize(("start", "end"), RANGES, ids=lambda d: f"{d:%m-%d}")
def test_the_rollups_count_what_the_rows_count(wh: Warehouse, start: date, end: date) -> None:
    for q in queries(start, end):
        assert compile_query(q, wh.rollups).rollup is not None, q
        fast, rows = run(wh, q), run(wh, q, rollups=False)
        pd.testing.assert_frame_equal(fast.rows, rows.rows, check_exact=True)
        assert fast.total_rows == rows.total_rows
        assert len(rows.rows) or end > DAY3 or q.offset, q  # a range with data has rows


def test_what_the_rollups_do_not_answer_is_counted_from_the_rows(wh: Warehouse) -> None:
    """A filter, a datetime range, a metric a day's rollup cannot sum exactly (the mean of
    floats), another dimension: the rows."""
    f = Q.Filters(DAY1, DAY3)
    for q in (Q.series(Q.Filters(DAY1, DAY3, sources=("google",)), False),
              Q.top_pages(Q.Filters(DAY1, DAY3, devices=("mobile",))), Q.kpis(f),
              Q.series(f, True), Q.entry_pages(f),
              Query(DAY1, DAY3, ("visit_duration",), ("time:day",)),
              Query(DAY1, DAY3, ("visitors",), ("time:day",), start_ts=NOW.replace(tzinfo=None)),
              Query(DAY1, DAY3, ("visitors", "visits"), ("event:page",), rollups.PAGEVIEWS)):
        assert compile_query(q, wh.rollups).rollup is None, q


def test_a_visitor_back_on_a_page_counts_once_over_the_range(wh: Warehouse) -> None:
    """The data has what makes the page rollup's distinct count matter: visitors who viewed a
    page on several days (each counted once over the range, not once a day)."""
    def visitors(start: date, end: date) -> int:
        q = Query(start, end, ("visitors",), ("event:page",), rollups.PAGEVIEWS)
        return int(run(wh, q).rows["visitors"].sum())  # every page's

    assert visitors(DAY1, DAY3) < sum(visitors(d, d) for d in DAYS)
    assert wh.row("SELECT count(*) FROM _store.page_visitors WHERE prev_date IS NOT NULL")[0]


def test_the_page_rollup_follows_every_change_of_the_stored_events(tmp_path: Path) -> None:
    """Hand-written events of visitors back on a page days later (and a view without a
    visitor, one without a page, an event that is not a view): after each publish (three days;
    the middle one stored again with other visitors; the first removed) the page rollup holds
    what one made afresh from the stored days would, and the top pages count as the rows."""
    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()
    day = [date(2026, 3, 9) + timedelta(i) for i in range(3)]

    def write(d: date, keys: list[int]) -> None:
        lake.write(con, "SELECT $d::DATE AS session_date, k AS visitor_key, t AS event_type, "
                   "p AS page_path FROM unnest($k::UBIGINT[]) u(k), (VALUES ('page_view', '/a'), "
                   "('page_view', '/a'), ('page_view', '/b'), ('cta_click', '/c')) v(t, p) "
                   "UNION ALL SELECT $d::DATE, NULL, 'page_view', '/a' "
                   "UNION ALL SELECT $d::DATE, 7, 'page_view', NULL",
                   "session_events", f"date={d}", {"d": d, "k": keys})

    def check() -> None:
        assert {n: d[1:] for n, d in rollup_differences(lake.data_dir).items()} == {
            "page_visitors": (0, 0)}
        wh = Warehouse(lake.warehouse_path)
        assert "page_visitors" in wh.rollups
        for a, b in [(a, b) for a in day for b in day if a <= b]:
            q = Q.top_pages(Q.Filters(a, b))
            assert compile_query(q, wh.rollups).rollup == "page_visitors"
            pd.testing.assert_frame_equal(run(wh, q).rows, run(wh, q, rollups=False).rows)

    for d, keys in zip(day, ([1, 2, 3], [2, 3, 4], [3, 5]), strict=True):
        write(d, keys)
    publish_warehouse(lake)
    check()
    assert Warehouse(lake.warehouse_path).row(
        "SELECT count(*) FROM _store.page_visitors WHERE prev_date IS NOT NULL "
        "AND visitor_key IS NOT NULL")[0] == 6  # 2 and 3 on /a and /b, then 3
    write(day[1], [1, 6])  # the middle day processed again: other visitors
    publish_warehouse(lake)
    check()
    lake.remove("session_events", f"date={day[0]}")  # visitor 1 of day 1 has no day before
    publish_warehouse(lake)
    check()


TYPED = {"session_date": "DATE '2026-03-09'", "visitor_key": "1::UBIGINT",
         "pageviews": "1::BIGINT", "events": "2::BIGINT", "is_bounce": "true",
         "converted": "false", "event_type": "'page_view'", "page_path": "'/a'"}


def test_a_base_without_the_columns_a_rollup_reads_has_no_rollup(tmp_path: Path) -> None:
    """Each rollup is made from its ``needs`` alone; a base without them (an older version's
    rows) publishes all the same, with no rollup, and is answered from the rows."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(f"CREATE SCHEMA {rollups.STORE}")
    for r in rollups.ROLLUPS:
        cols = ", ".join(f"{TYPED.get(c, 'NULL::VARCHAR')} AS {c}" for c in r.needs)
        con.execute(f"CREATE TABLE {rollups.STORE}.{r.base}_rows AS SELECT {cols}")
        rollups.refresh(con, r.base, f"{rollups.STORE}.{r.base}_rows", ["2026-03-09"],
                        ["2026-03-09"], [])
        assert con.execute(f"SELECT count(*) FROM {r.table}").fetchall()[0][0] == 1
        con.execute(f"ALTER TABLE {rollups.STORE}.{r.base}_rows DROP COLUMN {r.needs[-1]}")
        rollups.refresh(con, r.base, f"{rollups.STORE}.{r.base}_rows", ["2026-03-09"], [], [])
    assert rollups.available(con, "w") == frozenset()
