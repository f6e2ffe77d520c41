"""The dashboard's Overview queries in ClickHouse SQL, run in chDB (embedded ClickHouse), for
bench/dashboard.py's side-by-side comparison (issue #21). Bench-only: `pip install -e
".[bench]"`; nothing in the product imports it.

The tables are MergeTree tables ordered by the date and then the columns the dashboard filters
on, loaded from the very Parquet files the warehouse's stored tables were built from (the lake's
daily files). A column with no NULL in the data is declared without Nullable, as a
ClickHouse schema would be (Plausible's are): ClickHouse at its own pace, not handicapped.

Each query is the translation of what the dashboard runs (``analytics_platform.query.stats``
compiles it; ``sql/choices.sql`` and ``sql/range.sql``), with the same column names, order and
limits, so that the two engines' results can be compared row for row.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

# table → its ORDER BY: the date, then the filtered columns (the Overview's filters are the
# source, the device and the page; top pages filter the event type)
TABLES = {
    "sessions": "session_date, source, device_type, entry_page",
    "session_events": "session_date, event_type, page_path",
    "pages_daily": "date, page_path",
}
THREADS = 2
SETTINGS = f"SETTINGS max_threads = {THREADS}"

# Each query as the dashboard writes it (see analytics_platform/query/stats.py's compile_query
# for the same query in DuckDB SQL). ``count() OVER ()`` is the layer's total_rows (the rows
# before the page), computed there on every query with a dimension, so here too; a query
# without one (the KPIs) is one aggregate row, with no total_rows and no order in either.
# avgOrNull: DuckDB's avg of no rows is NULL, ClickHouse's avg nan.
_KPIS = """
SELECT uniqExact(visitor_key) AS visitors, count() AS sessions,
       toInt64(sum(pageviews)) AS pageviews, avgOrNull(toUInt8(is_bounce)) AS bounce_rate,
       avgOrNull(duration_s) AS avg_duration_s, countIf(converted) AS conversions,
       avgOrNull(toUInt8(converted)) AS conversion_rate
FROM sessions WHERE session_date BETWEEN {start:Date} AND {end:Date} /*s*/
"""
_SERIES = """
SELECT session_date AS period, uniqExact(visitor_key) AS visitors, count() AS sessions,
       toInt64(sum(pageviews)) AS pageviews, countIf(converted) AS conversions,
       count() OVER () AS total_rows
FROM sessions WHERE session_date BETWEEN {start:Date} AND {end:Date} /*s*/
GROUP BY period ORDER BY period ASC, visitors DESC
"""
_TOP_PAGES = """
SELECT page_path, count() AS pageviews, uniqExact(visitor_key) AS visitors,
       count() OVER () AS total_rows
FROM session_events
WHERE session_date BETWEEN {start:Date} AND {end:Date} AND event_type = 'page_view'
  AND page_path IS NOT NULL /*e*/
GROUP BY page_path ORDER BY pageviews DESC, page_path ASC LIMIT 15
"""
_ENTRY_PAGES = """
SELECT entry_page AS page_path, count() AS sessions, avg(toUInt8(is_bounce)) AS bounce_rate,
       count() OVER () AS total_rows
FROM sessions
WHERE session_date BETWEEN {start:Date} AND {end:Date} AND entry_page IS NOT NULL /*s*/
GROUP BY page_path ORDER BY sessions DESC, page_path ASC LIMIT 10
"""
_EXIT_PAGES = """
SELECT exit_page AS page_path, count() AS sessions, count() OVER () AS total_rows
FROM sessions
WHERE session_date BETWEEN {start:Date} AND {end:Date} AND exit_page IS NOT NULL /*s*/
GROUP BY page_path ORDER BY sessions DESC, page_path ASC LIMIT 10
"""
_CHOICES = """
SELECT (SELECT arraySort(groupUniqArray(source)) FROM sessions),
       (SELECT arraySort(groupUniqArray(medium)) FROM sessions),
       (SELECT arraySort(groupUniqArray(campaign)) FROM sessions),
       (SELECT arraySort(groupUniqArray(device_type)) FROM sessions
        WHERE device_type IS NOT NULL),
       (SELECT arraySort(groupUniqArray(browser)) FROM sessions WHERE browser IS NOT NULL),
       (SELECT groupArray(page_path) FROM (
            SELECT page_path, sum(pageviews) AS n FROM pages_daily
            GROUP BY page_path ORDER BY n DESC, page_path LIMIT 200))
"""
_RANGE = "SELECT min(session_date), max(session_date) FROM sessions"


# The dashboard's filters (bench/dashboard.py passes its ``Filters`` fields): the sessions'
# column each "any of" filter compares, as analytics_platform.query.stats compiles them
# (``coalesce(source, '') IN (…)``: a NULL matches the empty string).
SESSION_FILTERS = {"sources": "source", "mediums": "medium", "campaigns": "campaign",
                   "countries": "country", "devices": "device_type", "browsers": "browser"}


def _quoted(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def goal_condition(name: str) -> str:
    """The events that complete the goal ``name`` of goals.yaml ($ANALYTICS_GOALS_FILE), in
    ClickHouse SQL, as mart_logic.step_condition writes it for DuckDB: the event type, the page,
    and a props value read as DuckDB's ``props::JSON->>key`` reads it (a string's text, any
    other value's JSON text, NULL for a JSON null or no such key)."""
    from analytics_platform.query.stats import configured_goals

    goals = configured_goals()
    if name not in goals:
        raise ValueError(f"the goal filter translates the goals of goals.yaml, not {name!r}")
    g = goals[name]
    cond = [f"event_type = {_quoted(g.event_type)}"]
    if g.page_path is not None:
        cond.append(f"page_path = {_quoted(g.page_path)}")
    if g.prop is not None:
        doc, key = "ifNull(props, '{}')", _quoted(g.prop)
        value = (f"multiIf(JSONType({doc}, {key}) IN ('Null', 'Nothing'), NULL, "
                 f"JSONType({doc}, {key}) = 'String', JSONExtractString({doc}, {key}), "
                 f"JSONExtractRaw({doc}, {key}))")
        if g.min is not None:
            cond.append(f"toFloat64OrNull({value}) >= {float(g.min)}")
        if g.equals is not None:
            eq = str(g.equals).lower() if isinstance(g.equals, bool) else str(g.equals)
            cond.append(f"{value} = {_quoted(eq)}")
        if g.min is None and g.equals is None:
            cond.append(f"{value} IS NOT NULL")
    return "(" + " AND ".join(cond) + ")"


def _filters(filters: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The conditions ``filters`` add to a query of the sessions (``/*s*/``) and to top pages'
    query of the events (``/*e*/``), and their parameters. The page filter keeps the sessions
    that has_done the page, the goal filter those with an event completing the goal (Plausible's
    ``has_done``: :func:`goal_condition`); on the events, the session filters keep
    the events of the sessions they keep: ``session_id IN`` those sessions, as ClickHouse
    reads it (the dashboard joins the sessions: the same rows, session ids being unique)."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    for name, column in SESSION_FILTERS.items():
        if filters.get(name):
            conds.append(f"ifNull({column}, '') IN {{f_{name}:Array(String)}}")
            # chDB takes a parameter as text: an array as ClickHouse's literal of it
            params[f"f_{name}"] = "[" + ", ".join(_quoted(v) for v in filters[name]) + "]"
    has_done = ""
    if filters.get("page") is not None:
        params["f_page"] = filters["page"]
        has_done = ("session_id IN (SELECT session_id FROM session_events WHERE session_date "
                    "BETWEEN {start:Date} AND {end:Date} AND ifNull(page_path, '') = "
                    "{f_page:String} AND event_type = 'page_view')")
    if filters.get("goal") is not None:
        completed = ("session_id IN (SELECT session_id FROM session_events WHERE session_date "
                     "BETWEEN {start:Date} AND {end:Date} AND " + goal_condition(filters["goal"])
                     + ")")
        has_done = f"{has_done} AND {completed}" if has_done else completed
    on_sessions = "".join(f" AND {c}" for c in [*conds, has_done] if c)
    on_events = ((" AND session_id IN (SELECT session_id FROM sessions WHERE session_date "
                  "BETWEEN {start:Date} AND {end:Date}" + "".join(f" AND {c}" for c in conds)
                  + ")") if conds else "") + (f" AND {has_done}" if has_done else "")
    return on_sessions, on_events, params


def parquet_globs(warehouse: Path) -> dict[str, str]:
    """The Parquet files of each of :data:`TABLES` in the lake beside ``warehouse``: what the
    warehouse's stored tables were built from (analytics_platform/storage.py), one file per
    day."""
    lake = warehouse.parent / "lake"
    return {table: str(lake / table / "date=*" / "part.parquet") for table in TABLES}


def stamp(warehouse: Path) -> str:
    """What the files of :func:`parquet_globs` are now (name, size, modification time): a copy
    loaded from them is loaded again when it changes."""
    lines = []
    for table, glob in sorted(parquet_globs(warehouse).items()):
        for f in sorted(Path(glob).parent.parent.glob("date=*/part.parquet")):
            st = f.stat()
            lines.append(f"{table} {f.parent.name} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(lines)


class ClickHouse:
    """A chDB session holding the warehouse's tables as MergeTree tables (in ``folder``, built
    again when the warehouse's files change)."""

    def __init__(self, warehouse: Path, folder: Path) -> None:
        from chdb import session as chs  # bench-only dependency: imported when used

        globs = parquet_globs(warehouse)
        now = stamp(warehouse)
        marker = folder / "loaded-from.txt"
        fresh = not (marker.exists() and marker.read_text() == now)
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        self.session = chs.Session(str(folder / "db"))
        if fresh:
            for table, glob in globs.items():
                self._load(table, glob)
            marker.write_text(now)

    def _load(self, table: str, glob: str) -> None:
        src = f"file('{glob}', Parquet)"
        cols = list(self.df(f"DESCRIBE {src}")[["name", "type"]].itertuples(index=False))
        nulls = self.df("SELECT " + ", ".join(f"countIf(isNull(`{c}`)) AS `{c}`" for c, _ in cols)
                        + f" FROM {src}").iloc[0]
        types = [(c, t[len("Nullable("):-1] if t.startswith("Nullable(") and not nulls[c] else t)
                 for c, t in cols]
        self.session.query(f"DROP TABLE IF EXISTS {table}")
        self.session.query(
            f"CREATE TABLE {table} ({', '.join(f'`{c}` {t}' for c, t in types)}) "
            f"ENGINE = MergeTree ORDER BY ({TABLES[table]}) SETTINGS allow_nullable_key = 1")
        self.session.query(f"INSERT INTO {table} SELECT * FROM {src} {SETTINGS}")
        self.session.query(f"OPTIMIZE TABLE {table} FINAL")

    def df(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if sql.lstrip().upper().startswith("SELECT"):
            sql = f"{sql.rstrip()}\n{SETTINGS}"
        return self.session.query(sql, "DataFrame", params=params)

    def count(self, table: str) -> int:
        return int(self.df(f"SELECT count() AS n FROM {table}")["n"].iloc[0])

    def close(self) -> None:
        self.session.close()


def _table(ch: ClickHouse, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """As the dashboard's ``table()``: total_rows dropped, the period a datetime."""
    df = ch.df(sql, params).drop(columns=["total_rows"], errors="ignore")
    if "period" in df.columns:
        df["period"] = pd.to_datetime(df["period"])
    return df


def overview(ch: ClickHouse, start: date, end: date, before: tuple[date, date],
             filters: dict[str, Any] | None = None) -> dict[str, Callable[[], pd.DataFrame]]:
    """The Overview's queries, named as bench/dashboard.py names the dashboard's, narrowed by
    ``filters`` (the dashboard's ``Filters`` fields: ``sources``, ``devices``, ``page``…)."""
    on_s, on_e, extra = _filters(filters or {})
    now = {"start": start, "end": end, **extra}
    prev = {"start": before[0], "end": before[1], **extra}

    def q(sql: str) -> str:
        return sql.replace("/*s*/", on_s).replace("/*e*/", on_e)

    return {
        "KPIs": lambda: _table(ch, q(_KPIS), now),
        "KPIs, previous period": lambda: _table(ch, q(_KPIS), prev),
        "daily series": lambda: _table(ch, q(_SERIES), now),
        "top pages": lambda: _table(ch, q(_TOP_PAGES), now),
        "entry pages": lambda: _table(ch, q(_ENTRY_PAGES), now),
        "exit pages": lambda: _table(ch, q(_EXIT_PAGES), now),
        "filter choices": lambda: ch.df(_CHOICES),
        "date range": lambda: ch.df(_RANGE),
    }
