"""The SQL playground's sandbox: an analyst's query runs read-only, on the warehouse's tables and
nothing else, with a row and a time limit.

Layers, each enough on its own for most tricks:

1. Exactly one statement, and it must be a ``SELECT`` (no COPY, ATTACH, INSTALL, LOAD, PRAGMA,
   SET, CALL, EXPORT, CREATE…; no ``;``-chained second statement).
2. Its parsed tree (DuckDB's own parser, ``json_serialize_sql``) may only name the warehouse's
   tables and the query's own CTEs: no table functions (``read_csv``, ``glob``…), no file paths
   (``FROM '/etc/passwd'``), no other catalog; and no function that reaches outside
   (``getenv``…).
3. The connection is read-only, external access is off except for reading the lake folder the
   views point at, and the configuration is locked so the query cannot turn any of it back on.
4. The result is cut at ``max_rows``; a query still running after ``timeout_s`` is interrupted.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

ALLOWED_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}
DENIED_FUNCTIONS = {"getenv", "current_setting", "read_text", "read_blob", "glob",
                    "sniff_csv", "parquet_metadata", "parquet_schema", "query", "query_table"}


class PlaygroundError(Exception):
    """A query the playground will not run, or that failed; the message is for the user."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _walk(node: Any, tables: set[str], functions: set[str], table_functions: set[str],
          ctes: set[str], catalogs: set[str]) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            tables.add(node.get("table_name", ""))
            if node.get("catalog_name"):
                catalogs.add(node["catalog_name"])
            if node.get("schema_name") not in ("", None, "main"):
                catalogs.add(node["schema_name"])
        elif kind == "TABLE_FUNCTION":
            table_functions.add((node.get("function") or {}).get("function_name", "?"))
        if node.get("class") == "FUNCTION":
            functions.add(str(node.get("function_name", "")).lower())
        for entry in (node.get("cte_map") or {}).get("map", []):
            ctes.add(entry.get("key", ""))
        for v in node.values():
            _walk(v, tables, functions, table_functions, ctes, catalogs)
    elif isinstance(node, list):
        for v in node:
            _walk(v, tables, functions, table_functions, ctes, catalogs)


def check_query(sql: str, allowed_tables: set[str]) -> str:
    """The single SELECT statement of ``sql``, or a PlaygroundError saying what is refused."""
    parser = duckdb.connect()
    try:
        try:
            statements = parser.extract_statements(sql)
        except duckdb.Error as e:
            raise PlaygroundError(f"SQL error: {e}") from e
        if len(statements) != 1:
            raise PlaygroundError("Run one statement at a time." if statements
                                  else "Write a query first.")
        stmt = statements[0]
        if stmt.type != duckdb.StatementType.SELECT:
            raise PlaygroundError(f"Only SELECT queries run here ({stmt.type.name} is refused): "
                                  "the playground is read-only.")
        tree = json.loads(parser.execute("SELECT json_serialize_sql(?)", [stmt.query])
                          .fetchall()[0][0])
    finally:
        parser.close()
    if tree.get("error"):
        raise PlaygroundError(f"SQL error: {tree.get('error_message', 'cannot parse')}")
    tables: set[str] = set()
    functions: set[str] = set()
    table_functions: set[str] = set()
    ctes: set[str] = set()
    catalogs: set[str] = set()
    _walk(tree, tables, functions, table_functions, ctes, catalogs)
    unknown = {t for t in tables if t.lower() not in allowed_tables and t not in ctes}
    if unknown:
        raise PlaygroundError(
            f"Unknown table {sorted(unknown)[0]!r}: query the warehouse's tables "
            f"({', '.join(sorted(allowed_tables))}); files and other databases are off limits.")
    if catalogs:
        raise PlaygroundError("Only the warehouse's own tables can be queried.")
    bad_tf = table_functions - ALLOWED_TABLE_FUNCTIONS
    if bad_tf:
        raise PlaygroundError(f"The table function {sorted(bad_tf)[0]}() is not allowed here: "
                              "query the warehouse's tables.")
    bad_fn = functions & DENIED_FUNCTIONS
    if bad_fn:
        raise PlaygroundError(f"The function {sorted(bad_fn)[0]}() is not allowed here.")
    return stmt.query.strip().rstrip(";")


def sandbox_connection(warehouse: Path, lake_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection that can read the lake (what the views need) and nothing else."""
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute(f"SET allowed_directories = ['{str(lake_dir).rstrip('/')}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(sql: str, warehouse: Path, lake_dir: Path, max_rows: int = 10_000,
              timeout_s: float = 10.0) -> Result:
    """Check ``sql``, run it in the sandbox, cut it at ``max_rows``, stop it after
    ``timeout_s``."""
    if not warehouse.exists():
        raise PlaygroundError("The warehouse is empty: run `analytics-platform demo` (or a "
                              "backfill) first.")
    con = sandbox_connection(warehouse, lake_dir)
    try:
        allowed = {r[0].lower() for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal "
            "UNION SELECT table_name FROM duckdb_tables()").fetchall()}
        query = check_query(sql, allowed)
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cur = con.execute(f"SELECT * FROM ({query}) AS q LIMIT {int(max_rows) + 1}")
            columns = [d[0] for d in cur.description]
            rows = cur.fetchall()
        except duckdb.InterruptException as e:
            raise PlaygroundError(f"Stopped after {timeout_s:g} s: the playground's time "
                                  "limit. Narrow the query (a date range, a LIMIT).") from e
        except duckdb.Error as e:
            message = str(e)
            if "interrupted" in message.lower():
                raise PlaygroundError(f"Stopped after {timeout_s:g} s: the playground's time "
                                      "limit.") from e
            raise PlaygroundError(f"SQL error: {message.splitlines()[0]}") from e
        finally:
            timer.cancel()
        return Result(columns, rows[:max_rows], len(rows) > max_rows)
    finally:
        con.close()
