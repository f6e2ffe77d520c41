"""Rollups of the warehouse's stored tables (issue #21): two small tables the publish keeps in
step with the stored ``sessions`` and ``session_events`` day by day, from which the query layer
answers the two Overview panels that cost the most when counted from the rows, with the same
numbers (``test_rollups.py`` compares both ways on every range of the test warehouse).

- ``_store.sessions_by_day``: per ``session_date``, each metric of :data:`DAY_METRICS` as
  ``stats.METRICS`` counts it over the day's sessions. It answers a query by ``time:day`` with
  no filter (the daily series): a day's visitors are that day's own.
- ``_store.page_visitors``: per day, page and visitor, the page views, and the visitor's
  previous day on the page (``prev_date``). It answers the top pages with no filter: page
  views add up over the days; a range's distinct visitors of a page are its rows whose
  ``prev_date`` is before the range or none (each visitor counted on their first day in it):
  a count, where the rows need a distinct count (10M events: 19 ms of CPU against 195).

Why not the ``kpis_daily`` mart: its day is written by a later step of the run than the
sessions, and each step publishes, so between the two the warehouse holds the new sessions and
the old mart (the current, provisional day most often): the series would disagree with the KPIs
above it. A rollup is made in the publish that stores the sessions, from the very rows stored.

A rollup is read only when its table's comment is its current definition (the SQL that makes
it): a warehouse written by a version that counted otherwise is answered from the rows until
the next publish makes the rollup again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import duckdb

from analytics_platform.query.handwritten import fill
from analytics_platform.query.stats import METRICS, Query

STORE = "_store"  # the warehouse's own schema (storage.STORE)

# The metrics whose value for a day is exact from sessions_by_day: counts, and averages of
# integers (exact sums). Not visit_duration: an average of floats, whose last digit depends on
# the order the rows are added in.
DAY_METRICS = ("visitors", "visits", "pageviews", "events", "conversions", "bounce_rate",
               "conversion_rate")
# The top pages' filter, as the dashboard and Plausible write it.
PAGEVIEWS = (("is", "event:name", ("pageview",)),)


@dataclass(frozen=True)
class Rollup:
    name: str  # its table in STORE
    base: str  # the stored table it is made from (storage.NATIVE_TABLES)
    select: str  # its rows of the days ``$days`` from ``{rows}``, the base's stored rows
    needs: tuple[str, ...] = ()  # the base's columns it reads (a base without them: no rollup)
    chain: str | None = None  # rows that depend on earlier days: redone from the first changed

    @property
    def table(self) -> str:
        return f"{STORE}.{self.name}"

    def statement(self, rows: str) -> str:
        """The rows of the days ``$days`` (all of them from ``$first`` on, for a chained
        rollup), made from ``rows``, the base's stored rows."""
        select = self.select.replace("{rows}", rows)
        if self.chain is None:
            return select
        return self.chain.replace("{days}", select).replace("{table}", self.table)



def _sessions_by_day() -> str:
    cols = ", ".join(f"{(METRICS[m].session_sql or '').replace('{s}', '')} AS {m}"
                     for m in DAY_METRICS)
    return (f"SELECT session_date AS date, {cols} FROM {{rows}} "
            "WHERE session_date IN (SELECT unnest($days::DATE[])) GROUP BY session_date")


ROLLUPS = (
    Rollup("sessions_by_day", "sessions", _sessions_by_day(),
           ("session_date", "visitor_key", "pageviews", "events", "is_bounce", "converted")),
    Rollup("page_visitors", "session_events", fill("page_visitors", rows="{rows}"),
           ("session_date", "visitor_key", "event_type", "page_path"),
           fill("page_visitors_chain", days="{days}", table="{table}")),
)
BY_NAME = {r.name: r for r in ROLLUPS}


def _existing(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, str]:
    return {name: comment or "" for name, comment in con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = ? AND "
        "schema_name = ?", [database, STORE]).fetchall()}


def drop(con: duckdb.DuckDBPyConnection, base: str) -> None:
    """Drop the rollups of ``base`` (no longer stored)."""
    for r in ROLLUPS:
        if r.base == base:
            con.execute(f"DROP TABLE IF EXISTS {r.table}")


def refresh(con: duckdb.DuckDBPyConnection, base: str, rows: str, days: Sequence[str],
            changed: Collection[str], gone: Collection[str]) -> None:
    """Bring the rollups of ``base`` in step with its stored rows ``rows``, which hold the
    ``days`` now: ``changed`` were stored again (or are new), ``gone`` were removed. A rollup
    missing or made by another definition is made again from every day."""
    database = con.execute("SELECT current_database()").fetchall()[0][0]
    existing = _existing(con, database)
    schema, _, table = rows.partition(".")
    have = {c for (c,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ?", [database, schema, table]).fetchall()}
    for r in (r for r in ROLLUPS if r.base == base):
        if not set(r.needs) <= have:  # rows of an older version: answered from the rows
            con.execute(f"DROP TABLE IF EXISTS {r.table}")
            continue
        definition = r.statement(rows)  # kept as the table's comment
        todo, removed = set(changed), set(gone)
        if existing.get(r.name) != definition:
            con.execute(f"DROP TABLE IF EXISTS {r.table}")
            # its columns: the statement's over no day (a chained one reading, for the days
            # before, its own select: the table is not there yet)
            shape = r.statement(rows).replace(r.table, f"({r.select.replace('{rows}', rows)})")
            con.execute(f"CREATE TABLE {r.table} AS SELECT * FROM ({shape}) LIMIT 0",
                        {"days": [], **({"first": "1970-01-01"} if r.chain else {})})
            con.execute(f"COMMENT ON TABLE {r.table} IS {_quote(definition)}")
            todo, removed = set(days), set()
        redo = sorted(todo | removed)
        if not redo:
            continue
        if r.chain is None:
            con.execute(f"DELETE FROM {r.table} WHERE date IN (SELECT unnest($d::DATE[]))",
                        {"d": redo})
            con.execute(f"INSERT INTO {r.table} BY NAME {r.statement(rows)} ORDER BY date",
                        {"days": sorted(todo)})
            continue
        # every day from the first changed on is made again: its rows' prev_date may change
        first = redo[0]
        con.execute(f"DELETE FROM {r.table} WHERE date >= $f::DATE", {"f": first})
        con.execute(f"INSERT INTO {r.table} BY NAME {r.statement(rows)}",
                    {"days": [d for d in days if d >= first], "first": first})


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def available(con: duckdb.DuckDBPyConnection, database: str) -> frozenset[str]:
    """The rollups of the warehouse attached as ``database`` that are current (made by the
    definitions here)."""
    try:
        existing = _existing(con, database)
    except duckdb.Error:
        return frozenset()
    rows = {r.base: f"{STORE}.{r.base}_rows" for r in ROLLUPS}
    return frozenset(r.name for r in ROLLUPS
                     if existing.get(r.name) == r.statement(rows[r.base]))


def part(q: Query, rollups: Collection[str]) -> tuple[str, str] | None:
    """(the rollup, the ``p_main`` part of ``stats.compile_query``: ``d0`` and a column per
    metric) answering ``q`` from one of ``rollups``, or None when none answers it exactly."""
    if q.start_ts is not None or q.end_ts is not None:
        return None
    if (q.dimensions == ("time:day",) and not q.filters and set(q.metrics) <= set(DAY_METRICS)
            and "sessions_by_day" in rollups):
        # pageviews: a day whose sessions have no page-view count reads 0, as from the rows
        cols = ", ".join("coalesce(pageviews, 0)::BIGINT AS pageviews" if m == "pageviews"
                         else m for m in q.metrics)
        return "sessions_by_day", (
            f"SELECT date AS d0, {cols} FROM {BY_NAME['sessions_by_day'].table} "
            "WHERE date BETWEEN $start AND $end")
    if (q.dimensions == ("event:page",) and q.filters == PAGEVIEWS
            and set(q.metrics) <= {"pageviews", "visitors"} and "page_visitors" in rollups):
        col = {"pageviews": "sum(pageviews)::BIGINT AS pageviews",
               # a NULL visitor_key is no visitor (count(DISTINCT) leaves it out too)
               "visitors": "count(visitor_key) FILTER (prev_date IS NULL OR prev_date < $start)"
                           " AS visitors"}
        return "page_visitors", (
            f"SELECT page_path AS d0, {', '.join(col[m] for m in q.metrics)} "
            f"FROM {BY_NAME['page_visitors'].table} WHERE date BETWEEN $start AND $end "
            "GROUP BY ALL")
    return None
