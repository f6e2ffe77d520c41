"""What the dashboard asks the warehouse, one readable query per panel.

Every panel of the Overview and Sources views counts from ``sessions`` (and ``session_events``)
narrowed by the filters, so a filter means the same thing everywhere: sessions of those days,
from those sources, on those devices, that viewed that page. Visitors are counted on
``visitor_key`` (a 64-bit hash of ``visitor_id`` written by the sessions asset): distinct counts
of an integer are about twice as fast as of the UUID text. Funnels, cohorts, experiments and
first/last touch read their marts as the pipeline computed them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    sources: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    page: str | None = None

    def previous(self) -> Filters:
        """The period of equal length just before."""
        days = (self.end - self.start).days + 1
        return Filters(self.start - timedelta(days=days), self.start - timedelta(days=1),
                       self.sources, self.devices, self.page)

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "sources": list(self.sources),
                "devices": list(self.devices), "page": self.page}


# The sessions the filters select; every Overview and Sources query starts from it.
FILTERED = """
WITH f AS (
    SELECT * FROM sessions
    WHERE session_date BETWEEN $start AND $end
      AND (len($sources::VARCHAR[]) = 0 OR list_contains($sources::VARCHAR[], source))
      AND (len($devices::VARCHAR[]) = 0 OR list_contains($devices::VARCHAR[], device_type))
      AND ($page::VARCHAR IS NULL OR session_id IN (
              SELECT session_id FROM session_events
              WHERE session_date BETWEEN $start AND $end
                AND event_type = 'page_view' AND page_path = $page::VARCHAR))
)
"""

KPIS = FILTERED + """
SELECT count(DISTINCT visitor_key) AS visitors,
       count(*) AS sessions,
       coalesce(sum(pageviews), 0)::BIGINT AS pageviews,
       avg(is_bounce::INTEGER) AS bounce_rate,
       avg(duration_s) AS avg_duration_s,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM f
"""

SERIES_DAILY = FILTERED + """
SELECT session_date::TIMESTAMP AS period, count(DISTINCT visitor_key) AS visitors,
       count(*) AS sessions, sum(pageviews)::BIGINT AS pageviews,
       count(*) FILTER (converted) AS conversions
FROM f GROUP BY 1 ORDER BY 1
"""

SERIES_HOURLY = FILTERED + """
SELECT date_trunc('hour', session_start) AS period, count(DISTINCT visitor_key) AS visitors,
       count(*) AS sessions, sum(pageviews)::BIGINT AS pageviews,
       count(*) FILTER (converted) AS conversions
FROM f GROUP BY 1 ORDER BY 1
"""

TOP_PAGES = FILTERED + """
SELECT e.page_path, count(*) AS pageviews, count(DISTINCT e.visitor_key) AS visitors
FROM session_events e JOIN f USING (session_id)
WHERE e.event_type = 'page_view' AND e.session_date BETWEEN $start AND $end
GROUP BY 1 ORDER BY pageviews DESC, page_path LIMIT 15
"""

# The same with dates only: every session of those dates is selected, so the join is dropped
# (on 10M events it is most of the query's time).
TOP_PAGES_ALL = """
SELECT page_path, count(*) AS pageviews, count(DISTINCT visitor_key) AS visitors
FROM session_events
WHERE event_type = 'page_view' AND session_date BETWEEN $start AND $end
GROUP BY 1 ORDER BY pageviews DESC, page_path LIMIT 15
"""


def top_pages_sql(filters: Filters) -> str:
    """TOP_PAGES, or TOP_PAGES_ALL when only dates are chosen (same rows, less work)."""
    narrowed = filters.sources or filters.devices or filters.page is not None
    return TOP_PAGES if narrowed else TOP_PAGES_ALL

ENTRY_PAGES = FILTERED + """
SELECT entry_page AS page_path, count(*) AS sessions,
       avg(is_bounce::INTEGER) AS bounce_rate
FROM f WHERE entry_page IS NOT NULL GROUP BY 1 ORDER BY sessions DESC, 1 LIMIT 10
"""

EXIT_PAGES = FILTERED + """
SELECT exit_page AS page_path, count(*) AS sessions
FROM f WHERE exit_page IS NOT NULL GROUP BY 1 ORDER BY sessions DESC, 1 LIMIT 10
"""

SOURCES = FILTERED + """
SELECT source, medium, campaign, count(*) AS sessions,
       count(DISTINCT visitor_key) AS visitors,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM f GROUP BY ALL ORDER BY sessions DESC, source, medium, campaign
"""

TOUCH = """
SELECT source, medium, campaign, first_touch_conversions, last_touch_conversions
FROM attribution_touch ORDER BY last_touch_conversions DESC, first_touch_conversions DESC
"""

FUNNEL = """
SELECT funnel, step, any_value(step_name) AS step_name, sum(sessions)::BIGINT AS sessions
FROM funnel_daily WHERE date BETWEEN $start AND $end
GROUP BY funnel, step ORDER BY funnel, step
"""

COHORTS = "SELECT * FROM cohort_retention ORDER BY cohort_week, week_offset"

EXPERIMENTS = "SELECT * FROM experiments ORDER BY experiment, variant"

RANGE = "SELECT min(session_date), max(session_date) FROM sessions"
CHOICES = """
SELECT (SELECT list(DISTINCT source ORDER BY source) FROM sessions),
       (SELECT list(DISTINCT device_type ORDER BY device_type) FROM sessions
        WHERE device_type IS NOT NULL),
       -- the 200 most viewed pages, from the daily page mart (not every event)
       (SELECT list(page_path ORDER BY n DESC, page_path) FROM (
            SELECT page_path, sum(pageviews) AS n FROM pages_daily
            GROUP BY 1 ORDER BY n DESC, page_path LIMIT 200))
"""


# The warehouse stays open, shared by every session of the dashboard, each query on a cursor of
# its own (thread-safe). Opening the file costs ~20 ms a query, and an open database keeps what
# it has read of the Parquet files' metadata: the top-pages query on 10M events took 170 ms with
# a connection per query, 120 ms on an open one. It is attached to an in-memory database: DuckDB
# hands every connect() of the same path the database already open, which would keep showing
# the file the pipeline has since replaced.
_OPEN: dict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection]] = {}
_OPEN_LOCK = threading.Lock()


def _cursor(path: Path) -> duckdb.DuckDBPyConnection:
    """A cursor on the open warehouse ``path``, reopened when the pipeline has swapped in a new
    file (it writes a new file and renames it over the old one: a new inode)."""
    st = path.stat()
    key = (st.st_ino, st.st_mtime_ns)
    with _OPEN_LOCK:
        known = _OPEN.get(str(path))
        if known is None or known[0] != key:
            # The old one is dropped, not closed: closing would cut off queries still running on
            # its cursors; it goes (and lets go of the old file) when the last of them ends.
            con = duckdb.connect()
            con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(path)])
            known = (key, con)
            _OPEN[str(path)] = known
    cur = known[1].cursor()
    cur.execute("USE warehouse")
    return cur


@dataclass
class Warehouse:
    """Read-only access to ``warehouse.duckdb``; a file the pipeline has just swapped in is
    picked up by the next query."""

    path: Path

    @cached_property
    def tables(self) -> set[str]:
        """The tables (views) the warehouse has, asked once."""
        if not self.path.exists():
            return set()
        with _cursor(self.path) as con:
            return {r[0] for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}

    @property
    def ready(self) -> bool:
        # the page list of the filters comes from pages_daily (see CHOICES)
        return {"sessions", "session_events", "pages_daily"} <= self.tables

    @cached_property
    def outdated(self) -> bool:
        """Sessions written by a version without ``visitor_key`` (rebuild them to view)."""
        with _cursor(self.path) as con:
            return not con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'session_events' "
                "AND column_name = 'visitor_key'").fetchall()[0][0]

    def df(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        # A query gets the filter parameters it names (DuckDB refuses extra ones).
        used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
        with _cursor(self.path) as con:
            return con.execute(sql, used).df()

    def row(self, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...]:
        with _cursor(self.path) as con:
            return con.execute(sql, params or {}).fetchall()[0]
