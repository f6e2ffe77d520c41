"""Exports: a table of the warehouse, or the days of it in a range, as CSV, Parquet or NDJSON
(``analytics-platform export`` and ``GET /api/v1/export``).

DuckDB writes the file itself (``COPY … TO``), streaming from the Parquet lake, on a connection
of its own with a memory limit and a spill folder, so an export of any size holds a bounded
amount in memory (measured: docs/BENCHMARKS.md); the API then streams the file and deletes it.
The warehouse is attached read-only: an export cannot change it. The ``events`` rows are read
from the files the warehouse's ``events`` view reads (the snapshot ``publish_warehouse`` made,
``lake/events/_published/<gen>/``), with their own de-duplication (``sql/export_events.sql``): the
view's window holds every event in memory. Not the live ``lake/events/hour=*/`` files: a run
rewriting one failed 5 exports in 366 (Snappy / ZSTD errors), and they hold hours not yet
published (5,606 rows against the view's 5,536); reading the snapshot, 0 in 193. The same SQL on
other paths (hard links to the same files) costs the same: exporting the test warehouse's 16,751
events whole took 0.10-0.16 s at 166-171 MB peak RSS either way (three runs each, 2026-12-07).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from analytics_platform.query.handwritten import fill
from analytics_platform.sql import literal, tree_nodes
from analytics_platform.storage import FIRST_COPY_ORDER


@dataclass(frozen=True)
class Table:
    name: str
    day_column: str | None  # what --from/--to select on (None: all history, no range)
    order: str  # a deterministic order of the rows
    hidden: tuple[str, ...] = ()  # the views' Hive-partition columns, not in the contract
    timestamp: bool = False  # day_column is a timestamp (UTC): whole days of it


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("events", "ts", "ts, event_id", ("hour",), timestamp=True),
    Table("sessions", "session_date", "session_start, session_id", ("date",)),
    Table("session_events", "session_date", "session_date, session_id, ts, event_id",
          ("hour", "ts_date", "date")),
    Table("quarantine", "raw_hour", "raw_hour, raw_key, raw_pos", ("hour",), timestamp=True),
    # every daily mart (test_api holds this list to the pipeline's), ordered by its key
    Table("kpis_daily", "date", "date"),
    Table("pages_daily", "date", "date, page_path"),
    Table("attribution_daily", "date", "date, source, medium, campaign"),
    Table("funnel_daily", "date", "date, funnel, step"),
    Table("goals_daily", "date", "date, goal, source, medium, campaign"),
    Table("devices_daily", "date", "date, dimension, value"),
    Table("countries_daily", "date", "date, country, country_source"),
    Table("journeys_daily", "date", "date, entry_page, path"),
    Table("engagement_daily", "date", "date, page_path"),
    Table("outbound_daily", "date", "date, host"),
    Table("downloads_daily", "date", "date, ext, file"),
    Table("not_found_daily", "date", "date, page_path, referrer"),
    Table("web_vitals_daily", "date", "date, page_path"),
    Table("attribution_touch", None, "source, medium, campaign"),
    Table("cohort_retention", None, "cohort_week, week_offset"),
    Table("experiments", None, "experiment, variant"),
)}

FORMATS = {"csv": ("FORMAT csv, HEADER", "text/csv; charset=utf-8"),
           "parquet": ("FORMAT parquet, COMPRESSION zstd", "application/vnd.apache.parquet"),
           "ndjson": ("FORMAT json", "application/x-ndjson")}

# The export connection's memory: DuckDB spills beyond it (sorts, the events view's
# de-duplication) to the data folder's .duckdb_tmp.
MEMORY_LIMIT = "512MB"


class ExportError(ValueError):
    """An export that cannot be made as asked (the API answers 400)."""


class NotPublished(ExportError):
    """An export of a table the warehouse has no file of yet: the request is right, the server
    cannot serve it now (the API answers 503 with Retry-After, as for a missing warehouse). Not
    a file of headers alone: that reads as "no rows on those days" to a client that syncs, which
    would never ask again; and without a file DuckDB has no columns to write the headers of."""


def not_yet(table: str) -> str:
    """Why a table of the contract is not in the warehouse."""
    return (f"The warehouse has no {table} yet: the pipeline publishes a table once a run has "
            "written a file of it (a site without any web vital, say, has no web_vitals_daily).")


def _day_after(last: date | None) -> date | None:
    """The exclusive end of a range of UTC days ending with ``last``; None (no end) for none, or
    for the last day a date can be (9999-12-31 has no day after)."""
    return None if last is None or last == date.max else last + timedelta(days=1)


def published_files(con: duckdb.DuckDBPyConnection, view: str) -> str:
    """The glob of files the warehouse's ``view`` reads (``read_parquet``'s first argument):
    the snapshot :func:`analytics_platform.storage.publish_warehouse` made, taken from the
    view's definition by DuckDB's parser."""
    row = con.execute("SELECT sql FROM duckdb_views() WHERE database_name = current_database() "
                      "AND view_name = ?", [view]).fetchone()
    if row is None:
        raise NotPublished(not_yet(view))
    sql = row[0].encode()  # the tokenizer's positions count UTF-8 bytes
    tokens = duckdb.tokenize(row[0])
    ends = [pos for pos, _ in tokens[1:]] + [len(sql)]
    # "CREATE VIEW <name> AS <select>": the SELECT follows the first AS
    body = next((sql[end:].decode() for (pos, kind), end in zip(tokens, ends, strict=True)
                 if kind == duckdb.token_type.keyword and sql[pos:end].strip().lower() == b"as"),
                "")
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [body]).fetchone()[0])
    for node in tree_nodes(tree.get("statements", [])):
        function = node.get("function") or {}
        if node.get("type") == "TABLE_FUNCTION" and function.get("function_name") == "read_parquet":
            literal_ = (function["arguments"][0]["expression"].get("literal") or {})
            if literal_.get("kind") == "STRING":
                return str(literal_["text"])
    raise NotPublished(f"The warehouse's {view} view reads no Parquet files: publish the "
                       "warehouse again (a backfill).")


def export_sql(table: str, first: date | None, last: date | None, columns: list[str],
               events_files: str | None = None) -> tuple[str, dict[str, object]]:
    """The SELECT of an export, its days as parameters; ``events_files``: the glob of the
    files the warehouse's ``events`` view reads (:func:`published_files`; the ``events`` rows
    are read from them, sql/export_events.sql says why)."""
    if table not in TABLES:
        raise ExportError(f"Unknown table '{table}': one of {', '.join(TABLES)}.")
    t = TABLES[table]
    if first and last and first > last:
        raise ExportError("from is after to.")
    if table == "events":
        if events_files is None:
            raise ExportError("The events export needs the files of the events view.")
        return fill("export_events", files=literal(events_files),
                    first_copy_order=FIRST_COPY_ORDER), {"first": first,
                                                         "after": _day_after(last)}
    hidden = [c for c in t.hidden if c in columns]
    select = "SELECT *" + (f" EXCLUDE ({', '.join(hidden)})" if hidden else "")
    where, params = [], {}
    if t.day_column is None and (first or last):
        raise ExportError(f"{table} is all history: it takes no from / to.")
    if first:
        where.append(f"{t.day_column} >= $first")
        params["first"] = first
    if last:
        if t.timestamp:
            if _day_after(last) is not None:
                where.append(f"{t.day_column} < $after")
                params["after"] = _day_after(last)
        else:
            where.append(f"{t.day_column} <= $last")
            params["last"] = last
    sql = f"{select} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY {t.order}", params


def export(warehouse: Path, table: str, first: date | None, last: date | None, fmt: str,
           out: Path) -> int:
    """Write ``table`` (its days ``first``…``last``) to ``out`` in ``fmt``, atomically (a
    temporary file renamed); the number of rows."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format '{fmt}': one of {', '.join(FORMATS)}.")
    if not warehouse.exists():
        raise NotPublished("The warehouse is empty: the pipeline has not published it yet "
                           "(or run a backfill).")
    spill = warehouse.parent / ".duckdb_tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill),
                                 "threads": 2})
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    try:
        con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(warehouse)])
        con.execute("USE warehouse")
        views = {r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        if table in TABLES and table not in views:
            raise NotPublished(not_yet(table))
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?",
            [table]).fetchall()]
        sql, params = export_sql(table, first, last, columns,
                                 published_files(con, "events") if table == "events" else None)
        rows = con.execute(f"COPY ({sql}) TO {literal(tmp)} ({FORMATS[fmt][0]})",
                           params).fetchall()[0][0]
        os.replace(tmp, out)
        return int(rows)
    finally:
        con.close()
        tmp.unlink(missing_ok=True)


def chunks(path: Path, size: int = 1 << 20, delete: bool = True) -> Iterator[bytes]:
    """The file in pieces of ``size`` bytes (deleted once read, or abandoned)."""
    try:
        with path.open("rb") as f:
            while piece := f.read(size):
                yield piece
    finally:
        if delete:
            path.unlink(missing_ok=True)
