"""A query without dimensions (the Overview's KPIs, the API's aggregate queries) is compiled as
one aggregate statement when it is counted in one aggregate (``stats.compile_query``'s
``single``, issue #21: less for DuckDB to bind and plan on every page view); it answers exactly
as the general shape (a CTE per part, then the select of them) on every range of the API tests'
warehouse, a range before its data and one past it included, with every kind of filter."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from analytics_platform.dashboard import queries as Q
from analytics_platform.query.stats import Query, compile_query, run
from analytics_platform.query.warehouse import Warehouse, frame_of_numbers, numbers_only
from analytics_platform_tests.apidata import DAY1, DAY3, warehouse_dir

RANGES = [(DAY1, DAY1), (DAY1, DAY3), (DAY3, DAY3), (DAY1 - timedelta(3), DAY1 - timedelta(1)),
          (DAY3 + timedelta(1), DAY3 + timedelta(5))]


@pytest.fixture(scope="module")
def wh() -> Warehouse:
    return Warehouse(warehouse_dir() / "warehouse.duckdb")


def queries(start: date, end: date) -> list[Query]:
    """Every shape a query without dimensions takes: session rows (filters on the visit, on
    its events, on a goal), event rows, session metrics under an event filter, the visit's
    touch, a datetime range, a page past the one row."""
    def f(**kw: object) -> Q.Filters:
        return Q.Filters(start, end, **kw)  # type: ignore[arg-type]

    noon = datetime.combine(start, datetime.min.time()) + timedelta(hours=12)
    return [
        Q.kpis(f()), Q.kpis(f(sources=("google",), devices=("mobile", "desktop"))),
        Q.kpis(f(page="/pricing")), Q.kpis(f(goal="cta_click")),
        Query(start, end, ("visitors", "pageviews", "events"),
              filters=(["is", "event:page", ["/"]],)),
        Query(start, end, ("bounce_rate", "visit_duration"),
              filters=(["is", "event:page", ["/pricing"]],)),
        Query(start, end, ("visits", "views_per_visit"),
              filters=(["is_not", "visit:referrer", ["nothing.example"]],)),
        Query(start, end, Q.KPI_METRICS, start_ts=noon),
        Query(start, end, ("visitors",), order_by=(("visitors", "asc"),), limit=1, offset=1),
    ]


@pytest.mark.parametrize(("start", "end"), RANGES, ids=lambda d: f"{d:%m-%d}")
def test_one_aggregate_answers_as_the_general_shape(wh: Warehouse, start: date,
                                                    end: date) -> None:
    for q in queries(start, end):
        one, general = compile_query(q), compile_query(q, single=False)
        assert "p_main" not in one.sql and "ORDER BY" not in one.sql, one.sql
        assert "\nSELECT" in general.sql and " p_" in general.sql, general.sql
        want = wh.df(general.sql, general.params, general.setup)
        assert want["total_rows"].tolist() == ([] if q.offset else [1]), q
        got = wh.df(one.sql, one.params, one.setup)
        pd.testing.assert_frame_equal(got, want.drop(columns="total_rows"), check_exact=True)
        # a behavioural filter's sessions as a temporary table or as a subquery: the same
        # numbers (a mean of floats to its last bits: the two plans add them in another order)
        inline = compile_query(q, temp_tables=False)
        assert not inline.setup and "temp." not in inline.sql
        assert bool(one.setup) == ("has_done_0" in one.sql), one.sql
        pd.testing.assert_frame_equal(wh.df(inline.sql, inline.params), got, check_exact=False,
                                      rtol=1e-12)
        result = run(wh, q)
        assert result.total_rows == 1, q
        pd.testing.assert_frame_equal(result.rows, got, check_exact=True)
    if start <= DAY3 and end >= DAY1:  # a range with data counts some
        assert run(wh, Q.kpis(Q.Filters(start, end))).rows["visits"].iloc[0] > 0


def test_the_dashboard_names_the_columns_once(wh: Warehouse) -> None:
    """``Q.table``'s frame: the layer's columns under the dashboard's names, nothing else."""
    f = Q.Filters(DAY1, DAY3)
    kpis = Q.table(wh, Q.kpis(f))
    assert list(kpis.columns) == ["visitors", "sessions", "pageviews", "bounce_rate",
                                  "avg_duration_s", "conversions", "conversion_rate"]
    top = Q.table(wh, Q.top_pages(f))
    assert list(top.columns) == ["page_path", "pageviews", "visitors"] and len(top)


def test_an_aggregate_row_is_the_frame_duckdb_makes(wh: Warehouse) -> None:
    """``Warehouse.aggregate`` builds the frame of a row of numbers itself: the same columns,
    dtypes (a NULL count nullable, a NULL mean NaN), values and index as DuckDB's ``.df()``;
    anything else is ``.df()``'s own."""
    for sql in ("SELECT 1::BIGINT a, NULL::BIGINT b, 1.5::DOUBLE c, NULL::DOUBLE d, "
                "2::INTEGER e, NULL::INTEGER f",
                "SELECT count(*) AS n, avg(duration_s) AS d FROM sessions WHERE session_date "
                "< DATE '2000-01-01'",
                "SELECT 1::BIGINT AS a WHERE false", "SELECT 'x' AS a, 1::BIGINT AS b",
                "SELECT * FROM (VALUES (1::BIGINT, NULL::DOUBLE), (NULL, 2.0)) t(a, b)"):
        want, got = wh.df(sql), wh.aggregate(sql)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert got.columns.dtype == want.columns.dtype and got.index.equals(want.index), sql
    # the KPIs' kind of row is made by frame_of_numbers, not by a silent fall back to .df()
    con = duckdb.connect()
    for sql in ("SELECT 1::BIGINT a, NULL::BIGINT b, 1.5::DOUBLE c, NULL::DOUBLE d, "
                "2::INTEGER e, NULL::INTEGER f",
                "SELECT count(*) AS n, avg(x) AS d FROM (VALUES (1.0::DOUBLE)) t(x) WHERE false"):
        res = con.execute(sql)
        assert numbers_only(res.description), (sql, res.description)
        pd.testing.assert_frame_equal(frame_of_numbers(res.description, res.fetchall()),
                                      con.execute(sql).df(), check_exact=True)
    assert not numbers_only(con.execute("SELECT 'x' AS a, 1::BIGINT AS b").description)
    assert not numbers_only(con.execute("SELECT 1::BIGINT AS a, 2::BIGINT AS a").description)
