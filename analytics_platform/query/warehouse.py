"""Read-only access to ``warehouse.duckdb``, shared by the dashboard and the API.

The warehouse stays open, shared by every caller in the process, each query on a cursor of its
own (thread-safe). Opening the file costs ~20 ms a query, and an open database keeps what it has
read of the Parquet files' metadata: the top-pages query on 10M events took 170 ms with a
connection per query, 120 ms on an open one. It is attached read-only to an in-memory database:
DuckDB hands every connect() of the same path the database already open, which would keep
showing the file the pipeline has since replaced. Nothing here can write the warehouse.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from analytics_platform.query.rollups import available

# DuckDB's types of the layer's aggregates → the pandas dtype ``.df()`` gives a column of them
# without a NULL and with one (Warehouse.aggregate)
_NUMBERS = {"BIGINT": ("int64", "Int64"), "INTEGER": ("int32", "Int32"),
            "DOUBLE": ("float64", "float64")}

def numbers_only(description: list[tuple[Any, ...]]) -> bool:
    """Whether :func:`frame_of_numbers` makes the frame of a result of this ``description``
    (DuckDB's: distinct names, every type in :data:`_NUMBERS`)."""
    names = [d[0] for d in description]
    return len(set(names)) == len(names) and all(str(d[1]) in _NUMBERS for d in description)


def frame_of_numbers(description: list[tuple[Any, ...]], rows: list[tuple]) -> pd.DataFrame:
    """The frame DuckDB's ``.df()`` makes of ``rows`` (a result of this ``description``, every
    column of :data:`_NUMBERS`): its dtypes, a column with a NULL nullable (a count) or NaN (a
    mean)."""
    cols: dict[str, Any] = {}
    for i, d in enumerate(description):
        values = [r[i] for r in rows]  # one row (an aggregate): no loop over data
        plain, nullable = _NUMBERS[str(d[1])]
        cols[d[0]] = (np.array(values, dtype=plain) if None not in values else
                      pd.array(values, dtype=nullable) if nullable != plain else
                      np.array([np.nan if v is None else v for v in values], dtype=plain))
    return pd.DataFrame(cols)


def _used(sql: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters ``sql`` names (DuckDB refuses extra ones)."""
    return {k: v for k, v in (params or {}).items() if f"${k}" in sql}


# path → (the file's inode and mtime, the connection it is attached to, its current rollups)
_OPEN: dict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection, frozenset[str]]] = {}
_OPEN_LOCK = threading.Lock()


def _open(path: Path) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
    """The connection the warehouse ``path`` is attached to, reopened when the pipeline has
    swapped in a new file (it writes a new file and renames it over the old one: a new inode),
    and the rollups that file holds (query/rollups.py), asked once per file."""
    st = path.stat()
    key = (st.st_ino, st.st_mtime_ns)
    with _OPEN_LOCK:
        known = _OPEN.get(str(path))
        if known is None or known[0] != key:
            # The old one is dropped, not closed: closing would cut off queries still running on
            # its cursors; it goes (and lets go of the old file) when the last of them ends.
            con = duckdb.connect()
            con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(path)])
            known = (key, con, available(con, "warehouse"))
            _OPEN[str(path)] = known
    return known[1], known[2]


def _run_setup(con: duckdb.DuckDBPyConnection, setup: Sequence[str],
               params: dict[str, Any] | None) -> None:
    """The statements a query runs first on its cursor (temporary tables: a cursor's own, and
    gone with it; the warehouse is attached read-only)."""
    for statement in setup:
        con.execute(statement, _used(statement, params))


def _cursor(path: Path) -> duckdb.DuckDBPyConnection:
    """A cursor on the open warehouse ``path`` (:func:`_open`)."""
    cur = _open(path)[0].cursor()
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
    def rollups(self) -> frozenset[str]:
        """The rollups of the file open now (stats.run answers from them when it can)."""
        return _open(self.path)[1] if self.path.exists() else frozenset()

    @property
    def ready(self) -> bool:
        # the page list of the dashboard's filters comes from pages_daily (sql/choices.sql)
        return {"sessions", "session_events", "pages_daily"} <= self.tables

    @cached_property
    def outdated(self) -> bool:
        """Sessions written by a version without ``visitor_key`` (rebuild them to view)."""
        with _cursor(self.path) as con:
            return not con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'session_events' "
                "AND column_name = 'visitor_key'").fetchall()[0][0]

    def df(self, sql: str, params: dict[str, Any] | None = None,
           setup: Sequence[str] = ()) -> pd.DataFrame:
        """The result of ``sql``, run on a cursor of its own after the ``setup`` statements
        (the temporary tables it reads: ``stats.Compiled.setup``), which go with the cursor."""
        with _cursor(self.path) as con:
            _run_setup(con, setup, params)
            return con.execute(sql, _used(sql, params)).df()

    def aggregate(self, sql: str, params: dict[str, Any] | None = None,
                  setup: Sequence[str] = ()) -> pd.DataFrame:
        """The result of ``sql``, an aggregate of numbers (one row: the KPIs), as :meth:`df`
        gives it, built from its tuple when every column is of :data:`_NUMBERS`: DuckDB's
        ``.df()`` of the KPIs' row took 1.8 ms of CPU over ``fetchall()``; the dashboard's
        KPIs of a range without data, 4.0 ms in all, took 3.2 this way (``test_query_shapes.py``
        holds the two frames equal)."""
        with _cursor(self.path) as con:
            _run_setup(con, setup, params)
            res = con.execute(sql, _used(sql, params))
            if not numbers_only(res.description):
                return res.df()
            return frame_of_numbers(res.description, res.fetchall())

    def row(self, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...]:
        with _cursor(self.path) as con:
            return con.execute(sql, _used(sql, params)).fetchall()[0]
