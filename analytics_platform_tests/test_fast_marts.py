"""Issue 21: the daily marts' faster statements write the same files as the simple ones.

``journeys_daily.sql`` orders a session's page views in one list and drops a reload with a
lambda (no window); ``goals_daily`` and ``funnel_daily`` (``mart_logic``) read the events their
goals or steps match once, then select each goal's or step's from those. The simple statements
below are the ones they replaced: two windows and a ``row_number``; one scan of ``e`` per goal
and per step. Both write a day of made-up sessions with the edges the fast ones touch (reloads,
journeys longer than five pages, two page views at the same instant ordered by event_id, a NULL
page, one event matching two goals, steps of one type, a goal no event matches) to Parquet with
the lake's own options, and the files must be byte-identical. (It caught a first version of the
list that kept a session's first page when it was NULL, which lag drops.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from analytics_platform import sql
from analytics_platform.config import Funnel, FunnelStep, Goal
from analytics_platform.duck import connect
from analytics_platform.mart_logic import funnels_sql, goals_sql, step_condition
from analytics_platform.storage import PARQUET

_lit = sql.literal
DAY = datetime(2026, 3, 2, tzinfo=UTC)

SIMPLE_JOURNEYS = """
WITH views AS (
    SELECT session_id, page_path, ts, event_id,
           lag(page_path) OVER (PARTITION BY session_id ORDER BY ts, event_id) AS previous
    FROM e WHERE event_type = 'page_view'
),
steps AS (
    SELECT session_id, page_path,
           row_number() OVER (PARTITION BY session_id ORDER BY ts, event_id) AS step
    FROM views WHERE previous IS DISTINCT FROM page_path
),
journeys AS (
    SELECT session_id, list(page_path ORDER BY step) AS pages
    FROM steps WHERE step <= 5 GROUP BY session_id HAVING count(*) >= 2
),
"""

GOALS = [Goal("Booked a call", "form_submit", prop="form", equals="book_call"),
         Goal("Any form", "form_submit"),
         Goal("Viewed pricing", "page_view", page_path="/pricing"),
         Goal("Read to the end", "scroll_depth", prop="depth", min=100),
         Goal("Never sent", "purchase")]
FUNNELS = [Funnel("book_call", (FunnelStep("Viewed a page", "page_view"),
                                FunnelStep("Read half", "scroll_depth", prop="depth", min=50),
                                FunnelStep("Viewed pricing", "page_view", page_path="/pricing"),
                                FunnelStep("Submitted", "form_submit", prop="form",
                                           equals="book_call"))),
           Funnel("again", (FunnelStep("Pricing", "page_view", page_path="/pricing"),
                            FunnelStep("Any page after", "page_view")))]


def simple_journeys() -> str:
    """journeys_daily.sql with its first three CTEs as they were: two windows, then an ordered
    list of the kept steps (the rest of the statement is the mart's own)."""
    text = sql.load("marts/journeys_daily")
    return SIMPLE_JOURNEYS + text[text.index("-- each session counts once"):]


def simple_goals() -> str:
    """goals_daily.sql with one scan of ``e`` per goal."""
    names = " UNION ALL ".join(f"SELECT {k} AS goal_order, {_lit(g.name)} AS goal"
                               for k, g in enumerate(GOALS, start=1))
    events = " UNION ALL ".join(f"SELECT {_lit(g.name)} AS goal, e.session_id FROM e "
                                f"WHERE {step_condition(g)}" for g in GOALS)
    return sql.load("marts/goals_daily", goals=names, goal_events=events)


def simple_funnels() -> str:
    """funnel_daily's statement with one scan of ``e`` per step."""
    parts = []
    for f in FUNNELS:
        ctes = [f"step1 AS (SELECT e.session_id, min(e.ts) AS t FROM e "
                f"WHERE {step_condition(f.steps[0])} GROUP BY e.session_id)"]
        ctes += [f"step{k} AS (SELECT e.session_id, min(e.ts) AS t FROM e JOIN step{k - 1} p "
                 f"ON p.session_id = e.session_id AND e.ts >= p.t WHERE {step_condition(s)} "
                 f"GROUP BY e.session_id)" for k, s in enumerate(f.steps[1:], start=2)]
        counts = " UNION ALL ".join(f"SELECT {k} AS step, {_lit(s.name)} AS step_name, (SELECT "
                                    f"count(*) FROM step{k}) AS sessions"
                                    for k, s in enumerate(f.steps, start=1))
        parts.append(
            f"WITH {', '.join(ctes)}, counts AS ({counts}) SELECT '2026-03-02'::DATE AS date, "
            f"{_lit(f.name)} AS funnel, step, step_name, sessions, coalesce(sessions / nullif("
            f"first(sessions) OVER (ORDER BY step), 0), 0) AS pct_of_start, CASE WHEN step = 1 "
            f"THEN 1 ELSE coalesce(sessions / nullif(lag(sessions) OVER (ORDER BY step), 0), 0) "
            f"END AS pct_of_previous FROM counts")
    return " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts) + " ORDER BY funnel, step"


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    """A day of 3,000 sessions of 1–16 events over six pages and NULL (reloads and long
    journeys common), a fifth of them with two events at the same instant (event_id
    ordering them one way in half of those, the other way in the rest), as ``s``/``e``."""
    c = connect()
    c.execute("SELECT setseed(0.21)")
    c.execute("""
        CREATE TABLE s AS SELECT printf('s%05d', i) AS session_id, DATE '2026-03-02'
               AS session_date, (i % 700)::UBIGINT AS visitor_key,
               ['google', 'bing', NULL][1 + i % 3] AS source, ['organic', NULL][1 + i % 2]
               AS medium, NULL::VARCHAR AS campaign,
               (1 + (random() * 15)::INT) AS n
        FROM range(3000) t(i)""")
    c.execute("""
        CREATE TABLE e AS SELECT s.session_id, printf('e%s-%02d', s.session_id, 99 - j) AS event_id,
               TIMESTAMP '2026-03-02 10:00:00' + INTERVAL (CASE
                   WHEN j = 2 AND s.session_id[-1] = '7' THEN 1
                   WHEN j = 3 AND s.session_id[-1] = '3' THEN 4 ELSE j END) SECOND AS ts,
               ['page_view', 'page_view', 'page_view', 'scroll_depth', 'form_submit',
                'custom'][1 + (random() * 5.99)::INT] AS event_type,
               ['/', '/pricing', '/blog', '/about', '/contact', '/blog/a'][
                   1 + (random() * 3.5 * (1 + j % 2))::INT] AS page_path,
               ['{"depth":50}', '{"depth":100}', '{"form":"book_call"}', '{"form":"contact"}',
                NULL][1 + (random() * 4.99)::INT] AS props
        FROM s, range(s.n) r(j)""")
    c.execute("ALTER TABLE s DROP n")
    # the edges are there: reloads, journeys over five pages, page views at the same instant
    reloads, long_ones, ties = c.execute("""
        WITH v AS (SELECT session_id, page_path, lag(page_path) OVER w AS prev,
                          count(*) OVER (PARTITION BY session_id, ts) AS at_ts,
                          count(*) OVER (PARTITION BY session_id) AS n
                   FROM e WHERE event_type = 'page_view'
                   WINDOW w AS (PARTITION BY session_id ORDER BY ts, event_id))
        SELECT count(*) FILTER (prev = page_path), count(DISTINCT session_id) FILTER (n > 6),
               count(*) FILTER (at_ts > 1) FROM v""").fetchone()
    assert reloads > 100 and long_ones > 50 and ties > 50
    return c


def written(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> bytes:
    con.execute(f"COPY ({query}) TO '{path}' ({PARQUET})", {"min_visitors": 2} if
                "$min_visitors" in query else {})
    return path.read_bytes()


def test_journeys_write_what_the_two_windows_wrote(con, tmp_path: Path) -> None:
    fast = written(con, sql.load("marts/journeys_daily"), tmp_path / "fast.parquet")
    assert fast == written(con, simple_journeys(), tmp_path / "simple.parquet")
    steps = dict(con.execute(f"SELECT steps, count(*) FROM '{tmp_path}/fast.parquet' "
                             "GROUP BY ALL").fetchall())
    assert sorted(steps) == [2, 3, 4, 5]  # every length is written and compared


def test_goals_read_once_write_what_a_scan_per_goal_wrote(con, tmp_path: Path) -> None:
    fast = written(con, goals_sql(GOALS), tmp_path / "fast.parquet")
    assert fast == written(con, simple_goals(), tmp_path / "simple.parquet")
    conversions = dict(con.execute(f"SELECT goal, sum(conversions) FROM "
                                   f"'{tmp_path}/fast.parquet' GROUP BY ALL").fetchall())
    assert conversions["Never sent"] == 0 and min(
        v for k, v in conversions.items() if k != "Never sent") > 100
    # one event, two goals: each counts it
    assert conversions["Any form"] > conversions["Booked a call"] > 0


def test_funnels_read_once_write_what_a_scan_per_step_wrote(con, tmp_path: Path) -> None:
    fast = written(con, funnels_sql(FUNNELS, DAY), tmp_path / "fast.parquet")
    assert fast == written(con, simple_funnels(), tmp_path / "simple.parquet")
    rows = con.execute(f"SELECT funnel, sessions FROM '{tmp_path}/fast.parquet'").fetchall()
    for name in ("book_call", "again"):  # every step reached by some, fewer at each step
        sessions = [n for f, n in rows if f == name]
        assert sessions == sorted(sessions, reverse=True) and sessions[-1] > 0
