"""The SQL playground's sandbox: an analyst's query runs read-only, on the warehouse's tables and
nothing else, within a row, memory, temp-space and time limit.

What decides, in order (DuckDB's own parser, binder and settings; no hand-written SQL parsing):

1. **A worker process per query**, started with an empty environment (no credentials) in a scratch
   folder, its address space capped by the kernel (``RLIMIT_AS``) and killed when the time is up.
   DuckDB's ``memory_limit`` only governs its buffer pool: ``repeat('x', 1500000000)`` (one
   1.5 GB string) or ``range(300000000)`` (a 2.4 GB list, 14.7 GB peak RSS) grow past it, and
   ``con.interrupt()`` is only looked at between vectors, so one such operator ran 9.2 s against
   a 5 s limit at 2.9 GB in the dashboard's own process. The kernel refuses the allocation (DuckDB
   reports it as out of memory) and the kill stops any operator; the dashboard never holds more
   than the result.
2. **Exactly one statement, a SELECT** (DuckDB's ``extract_statements``): no COPY, ATTACH,
   INSTALL, LOAD, PRAGMA, SET, CALL, EXPORT, CREATE…, no ``;``-chained second statement.
3. **Bound, not parsed**: the query is bound by DuckDB (``json_serialize_plan``) against a
   *shadow catalog*, an in-memory database holding an empty table of the same name, columns and
   types for each of the warehouse's views, with file access off. DuckDB resolves every name per
   scope (CTEs, subqueries, ``query()``, macros) as it will when the query runs; the plan may
   then only scan those tables and the pure table functions of ``ALLOWED_TABLE_FUNCTIONS``, and
   call no function of ``DENIED_FUNCTIONS``. System views (``duckdb_databases``,
   ``sqlite_master``, ``pragma_*``), table functions (``read_csv``, ``glob``…) and file paths are
   refused whatever a CTE of the same name elsewhere is called.
   **And parsed** (``json_serialize_sql``): DuckDB works out table functions' arguments and
   LIMIT / OFFSET while binding, so they reach the plan as their values, computed on the shadow,
   whose settings differ from the real connection's (``access_mode``, ``temp_directory``…):
   ``query(case when current_setting('access_mode') = 'read_only' then … else 'select 1' end)``
   was checked as ``select 1`` and ran the other branch. So the query as written may name no
   function of ``DENIED_FUNCTIONS`` anywhere; those expressions may call only pure functions
   (``stability`` CONSISTENT: the same value on both connections) and hold no subquery; and
   ``query()`` / ``query_table()`` take plain literals only, ``query()``'s SQL checked the same
   way.
4. **The connection that runs it** is read-only, reads files only in the lake folders of the
   warehouse's views (``allowed_directories`` with ``enable_external_access = false``), loads no
   extension and no persistent secret, caps memory, temp space and threads, and locks its
   configuration before the query arrives. Error messages never show the data folder's path.
5. The result is cut at ``max_rows`` (and refused above ``MAX_RESULT_BYTES`` or
   ``MAX_RESULT_VALUES``, the second for the dashboard's conversion to Python rows); DuckDB's
   interrupt stops the query at ``timeout_s``, the kill a second later at the latest.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform.sql import tree_nodes

# Table functions that compute rows and read nothing.
ALLOWED_TABLE_FUNCTIONS = {"range", "generate_series", "unnest", "json_each", "json_tree"}
# Scalar functions that reveal the server's state or act on it: settings hold the data folder's
# path; json_serialize_plan binds (and constant-folds) any SQL in the real connection; write_log
# writes. ``getenv`` exists only in DuckDB's CLI, and is listed in case that changes.
DENIED_FUNCTIONS = {"current_setting", "getenv", "which_secret", "json_serialize_plan",
                    "json_execute_serialized_sql", "write_log"}
# Table functions that bind to other SQL (``query``) or tables (``query_table``) named by their
# argument: the plan shows what that bound to, so the argument must be the same on the shadow and
# on the real connection: a plain literal.
QUERY_FUNCTIONS = {"query", "query_table"}

# The worker's limits. DuckDB's buffer pool (joins, sorts, aggregates; beyond it they spill to
# the temp folder) and, under it, the kernel's cap on the whole process: the Python interpreter
# with DuckDB and pyarrow loaded maps ~0.8 GB before the query starts (VmPeak 782 MB), so 3 GiB
# leaves the 1 GiB pool and ~1.2 GB for what DuckDB allocates outside it (strings, lists).
MEMORY_LIMIT = "1GiB"
ADDRESS_SPACE_BYTES = 3 * 2**30
TEMP_LIMIT = "1GiB"
THREADS = 2
MAX_RESULT_BYTES = 64 * 2**20
# The dashboard turns the result into Python objects, ~20-130 bytes per value, each element of a
# list, map or struct one (and the list itself another), where the Arrow bytes above count 1 bit
# per boolean: ``list_resize([true], 50000000, true)`` was 12 MiB of Arrow, grew the dashboard
# by 3.3 GB and took 17 s. Two million values converted in 0.2-1.5 s and grew it by 43-256 MB
# (booleans in a list; floats in a list; 1M rows of an integer and its text).
MAX_RESULT_VALUES = 2_000_000
# The worker says STARTED once its connections are set up, before it checks the query (0.5 s
# after it is spawned: 0.3 s of that is importing DuckDB); it is killed if that takes longer
# than SETUP_LIMIT_S, or if it still runs KILL_GRACE_S after its own interrupt was due.
STARTED = b"started\n"
SETUP_LIMIT_S = 20.0
KILL_GRACE_S = 1.0


class PlaygroundError(Exception):
    """A query the playground will not run, or that failed; the message is for the user."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def warehouse_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, name) of the warehouse's own views and tables."""
    return con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE NOT internal AND database_name = current_database() "
        "UNION SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE NOT internal AND database_name = current_database() ORDER BY ALL").fetchall()


def shadow_catalog(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """An in-memory database with, for each of ``con``'s tables and views, an empty table of the
    same catalog, schema, name, columns and types; nothing else, and no file access. A query
    binds there exactly as on ``con`` (same names, same types), but a view is not expanded into
    the ``read_parquet`` behind it, so the plan names the table it reads."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    shadow = duckdb.connect(config={"python_enable_replacements": False,
                                    "autoload_known_extensions": False,
                                    "autoinstall_known_extensions": False,
                                    "allow_persistent_secrets": False})
    if catalog != "memory":
        shadow.execute(f"ATTACH ':memory:' AS {_quote(catalog)}")
        shadow.execute(f"USE {_quote(catalog)}")
    for schema, name in warehouse_tables(con):
        try:
            columns = con.execute(f"DESCRIBE {_quote(schema)}.{_quote(name)}").fetchall()
        except duckdb.Error:  # a view whose files are gone: unusable, the others still are
            continue
        shadow.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
        shadow.execute(f"CREATE TABLE {_quote(schema)}.{_quote(name)} ("
                       + ", ".join(f"{_quote(c[0])} {c[1]}" for c in columns) + ")")
    shadow.execute("SET enable_external_access = false")
    shadow.execute("SET lock_configuration = true")
    return shadow


def check_query(sql: str, shadow: duckdb.DuckDBPyConnection) -> str:
    """The single SELECT statement of ``sql`` once DuckDB has bound it against ``shadow`` (see
    :func:`shadow_catalog`) and its plan reads only the shadow's tables; else a PlaygroundError
    saying what is refused."""
    try:
        statements = shadow.extract_statements(sql)
    except duckdb.Error as e:
        raise PlaygroundError(f"SQL error: {e}") from e
    if len(statements) != 1:
        raise PlaygroundError("Run one statement at a time." if statements
                              else "Write a query first.")
    stmt = statements[0]
    if stmt.type != duckdb.StatementType.SELECT:
        raise PlaygroundError(f"Only SELECT queries run here ({stmt.type.name} is refused): "
                              "the playground is read-only.")
    query = _without_terminator(stmt.query)
    catalog = shadow.execute("SELECT current_database()").fetchone()[0]
    tables = {(catalog, s, n) for s, n in warehouse_tables(shadow)}
    listing = ", ".join(sorted(n for _, _, n in tables))
    plan = json.loads(shadow.execute("SELECT json_serialize_plan(?, optimize := false)",
                                     [query]).fetchone()[0])
    if plan.get("error"):
        message = str(plan.get("error_message", "cannot bind")).splitlines()[0]
        if plan.get("error_type") == "permission":
            raise PlaygroundError("Files are off limits: query the warehouse's tables "
                                  f"({listing}).")
        if plan.get("error_type") == "catalog":
            raise PlaygroundError(f"SQL error: {message} The warehouse's tables: {listing}.")
        raise PlaygroundError(f"SQL error: {message}")
    if len(plan.get("plans", [])) != 1:
        raise PlaygroundError("Run one statement at a time.")
    for node in tree_nodes(plan["plans"]):
        if node.get("type") == "LOGICAL_GET":
            path = (node.get("qname") or {}).get("path") or ["?"]
            if path == ["seq_scan"]:
                data = node.get("function_data") or {}
                if (data.get("catalog"), data.get("schema"), data.get("table")) in tables:
                    continue
                raise PlaygroundError(f"Only the warehouse's tables can be queried ({listing}).")
            if str(path[-1]).lower() not in ALLOWED_TABLE_FUNCTIONS:
                raise PlaygroundError(f"The table function {path[-1]}() is not allowed here: "
                                      f"query the warehouse's tables ({listing}).")
        elif "qname" in node:
            name = str(((node["qname"] or {}).get("path") or ["?"])[-1]).lower()
            if name in DENIED_FUNCTIONS:
                raise PlaygroundError(f"The function {name}() is not allowed here.")
    pure = {r[0] for r in shadow.execute(
        "SELECT lower(function_name) FROM duckdb_functions() WHERE function_type = 'scalar' "
        "GROUP BY ALL HAVING bool_or(stability = 'CONSISTENT')").fetchall()}
    _check_parsed(query, shadow, pure)
    return query


def _check_parsed(query: str, shadow: duckdb.DuckDBPyConnection, pure: set[str]) -> None:
    """Refuse what the plan cannot show: DuckDB's parse tree of ``query`` (arguments as written)
    names a function of DENIED_FUNCTIONS, or an expression DuckDB evaluates while binding (a
    table function's argument, LIMIT, OFFSET) is not built of literals and ``pure`` functions,
    or ``query()`` / ``query_table()`` take anything but literals (``query()``'s SQL is checked
    here too)."""
    tree = json.loads(shadow.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    if tree.get("error"):
        message = str(tree.get("error_message", "cannot parse")).splitlines()[0]
        raise PlaygroundError(f"SQL error: this query cannot be checked ({message}).")
    for node in tree_nodes(tree["statements"]):
        name = node.get("function_name")
        if isinstance(name, str) and name.lower() in DENIED_FUNCTIONS:
            raise PlaygroundError(f"The function {name.lower()}() is not allowed here.")
        if node.get("type") == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "?")).lower()
            for arg in function.get("arguments") or []:
                expr = arg.get("expression") or {}
                if name in QUERY_FUNCTIONS:
                    literal = expr.get("literal") or {}
                    if expr.get("class") != "CONSTANT":
                        raise PlaygroundError(f"{name}() takes plain literals here, like "
                                              f"{name}('sessions').")
                    if name == "query" and literal.get("kind") == "STRING":
                        _check_parsed(str(literal.get("text")), shadow, pure)
                _bound_constant(expr, f"the arguments of {name}()", pure)
        elif str(node.get("type", "")).startswith("LIMIT") and "limit" in node:
            for key in ("limit", "offset"):
                if node.get(key):
                    _bound_constant(node[key], "LIMIT and OFFSET", pure)


def _bound_constant(expr: Any, where: str, pure: set[str]) -> None:
    """Refuse ``expr`` (a parse tree) unless it holds no subquery and calls only ``pure``
    functions: DuckDB evaluates it while binding, so its value, not the expression, reaches
    the plan, and it must have the same value on the shadow and on the real connection."""
    for node in tree_nodes(expr):
        if node.get("class") == "SUBQUERY":
            raise PlaygroundError(f"No subquery in {where}: DuckDB works them out before the "
                                  "query is checked. Write constants there.")
        if node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "?")).lower()
            if name not in pure:
                raise PlaygroundError(f"The function {name}() is not allowed in {where}: DuckDB "
                                      "works them out before the query is checked. Write "
                                      "constants there.")


def _without_terminator(statement: str) -> str:
    """``statement`` without its closing ``;`` (and the comments after it), found by DuckDB's
    tokenizer: a ``;`` inside a string or a comment is no terminator. (The tokenizer's
    positions count UTF-8 bytes.)"""
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(statement)
              if kind != duckdb.token_type.comment]
    raw = statement.encode()
    if tokens and tokens[-1][1] == duckdb.token_type.operator \
            and raw[tokens[-1][0]:tokens[-1][0] + 1] == b";":
        return raw[:tokens[-1][0]].decode()
    return statement


def sandbox_connection(warehouse: Path, lake_dir: Path,
                       temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``warehouse`` that can read the lake folders of its views (what
    the views need) and nothing else, with memory, temp space and threads capped and its
    configuration locked."""
    spill = Path(temp_dir or tempfile.mkdtemp(prefix="playground-")) / "spill"
    con = duckdb.connect(str(warehouse), read_only=True, config={
        "memory_limit": MEMORY_LIMIT,
        "threads": THREADS,
        "temp_directory": str(spill),
        "max_temp_directory_size": TEMP_LIMIT,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
        # HUGEINT (every sum of integers) and UUID cross to the dashboard as themselves.
        "arrow_lossless_conversion": True,
    })
    lake = str(lake_dir).rstrip("/")
    folders = ", ".join("'" + f"{lake}/{name}/".replace("'", "''") + "'"
                        for _, name in warehouse_tables(con))
    con.execute(f"SET allowed_directories = [{folders}]")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _scrub(message: str, *paths: Path) -> str:
    for p in paths:
        message = message.replace(str(p), "…")
    return message


def _execute(request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """In the worker: check and run one query; the header for the dashboard and the rows as an
    Arrow IPC stream."""
    import pyarrow as pa

    warehouse, lake_dir = Path(request["warehouse"]), Path(request["lake_dir"])
    timeout_s, max_rows = float(request["timeout_s"]), int(request["max_rows"])
    con = sandbox_connection(warehouse, lake_dir, Path.cwd())
    shadow = shadow_catalog(con)
    # The clock starts here: binding evaluates constant expressions (``repeat('x', 9e8)`` takes
    # seconds in the check already), so the check is inside the time limit too.
    sys.stdout.buffer.write(STARTED)
    sys.stdout.buffer.flush()
    timer = threading.Timer(timeout_s, lambda: (shadow.interrupt(), con.interrupt()))
    timer.start()
    try:
        query = check_query(request["sql"], shadow)
        rel = con.sql(query)
        columns = list(rel.columns)
        table = rel.limit(max_rows + 1).to_arrow_table()
    except duckdb.InterruptException as e:
        raise PlaygroundError(f"Stopped after {timeout_s:g} s: the playground's time limit. "
                              "Narrow the query (a date range, a LIMIT).") from e
    except (duckdb.OutOfMemoryException, MemoryError) as e:
        raise PlaygroundError(f"Refused: the query needs more memory than the playground's "
                              f"{MEMORY_LIMIT}. Narrow it (a date range, fewer columns, a "
                              "LIMIT).") from e
    except duckdb.Error as e:
        message = _scrub(str(e).splitlines()[0], warehouse.parent, lake_dir)
        raise PlaygroundError(f"SQL error: {message}") from e
    finally:
        timer.cancel()
        shadow.close()
        con.close()
    truncated = table.num_rows > max_rows
    table = table.slice(0, max_rows)
    if table.nbytes > MAX_RESULT_BYTES:
        raise PlaygroundError(f"The result is {table.nbytes / 2**20:,.0f} MiB, more than the "
                              f"playground's {MAX_RESULT_BYTES // 2**20} MiB: select fewer "
                              "columns or rows.")
    values = sum(_values(chunk) for column in table.columns for chunk in column.chunks)
    if values > MAX_RESULT_VALUES:
        raise PlaygroundError(f"The result holds {values:,} values (each element of a list, map "
                              f"or struct counts), more than the playground's "
                              f"{MAX_RESULT_VALUES:,}: select fewer columns or rows, or "
                              "shorter lists.")
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return {"columns": columns, "truncated": truncated}, sink.getvalue()


def _values(array: Any) -> int:
    """How many values the dashboard will make of an Arrow ``array`` (a column's chunk): one a
    row, and, inside, one per element of a list or map and per field of a struct."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind):
        # offsets, not flatten(): a map has no flatten, and a sliced array's child is whole
        start, end = array.offsets[0].as_py(), array.offsets[len(array)].as_py()
        items = array.values.slice(start, end - start)
        if pa.types.is_map(kind):  # its keys and values (a dict), no struct of the two
            return len(array) + sum(_values(field) for field in items.flatten())
        return len(array) + _values(items)
    if pa.types.is_fixed_size_list(kind):
        return len(array) + _values(array.flatten())
    if pa.types.is_struct(kind):
        return len(array) + sum(_values(field) for field in array.flatten())
    return len(array)


def _worker() -> None:
    """The worker's entry point: limits first, then one request from stdin, the answer on
    stdout (a JSON header line, then the rows as an Arrow IPC stream)."""
    # Linux enforces the cap; macOS refuses to set it, and there DuckDB's memory_limit is all.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    request = json.loads(sys.stdin.buffer.read())
    try:
        header, body = _execute(request)
    except PlaygroundError as e:
        header, body = {"error": str(e)}, b""
    except MemoryError:
        header, body = {"error": f"Refused: the query needs more memory than the playground's "
                                 f"{MEMORY_LIMIT}."}, b""
    except duckdb.Error as e:
        message = _scrub(str(e).splitlines()[0], Path(request["warehouse"]).parent,
                         Path(request["lake_dir"]))
        header, body = {"error": f"SQL error: {message}"}, b""
    except Exception as e:  # a bug of ours: the user gets its name, not a silent failure
        message = _scrub(f"{type(e).__name__}: {e}", Path(request["warehouse"]).parent,
                         Path(request["lake_dir"]))
        header, body = {"error": f"The playground could not run this query ({message})."}, b""
    sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + body)
    sys.stdout.buffer.flush()


def run_query(sql: str, warehouse: Path, lake_dir: Path, max_rows: int = 10_000,
              timeout_s: float = 10.0) -> Result:
    """Check ``sql`` and run it in a sandboxed worker process; cut it at ``max_rows``, stop it
    after ``timeout_s``."""
    if not warehouse.exists():
        raise PlaygroundError("The warehouse is empty: run `analytics-platform demo` (or a "
                              "backfill) first.")
    request = json.dumps({"sql": sql, "warehouse": str(warehouse.resolve()),
                          "lake_dir": str(lake_dir.resolve()), "max_rows": max_rows,
                          "timeout_s": timeout_s}).encode()
    scratch = Path(tempfile.mkdtemp(prefix="playground-"))
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": str(scratch)}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    out = bytearray()
    cap = MAX_RESULT_BYTES + 2**20  # the header and Arrow's framing on top of the rows
    started: list[float] = []  # when the worker said it had set up and begun the query
    too_big: list[bool] = []  # the worker sent more than any result may be
    try:
        with open(scratch / "stderr", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, cwd=scratch, env=env)

            def pump() -> None:
                try:
                    proc.stdin.write(request)
                    proc.stdin.close()
                    while chunk := proc.stdout.read1(1 << 16):
                        out.extend(chunk)
                        if not started and out.startswith(STARTED):
                            started.append(time.monotonic())
                        if len(out) > cap:
                            proc.kill()
                            too_big.append(True)
                            break
                except OSError:  # the worker died first: its exit status says why
                    pass

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            spawned, killed = time.monotonic(), False
            while proc.poll() is None:
                deadline = (started[0] + timeout_s + KILL_GRACE_S if started
                            else spawned + SETUP_LIMIT_S)
                if time.monotonic() >= deadline:
                    proc.kill()
                    killed = True
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(0.05, max(deadline - time.monotonic(), 0.0)))
            proc.wait()
            reader.join()
            proc.stdout.close()
        if too_big:
            raise PlaygroundError(f"The result is more than the playground's "
                                  f"{MAX_RESULT_BYTES // 2**20} MiB: select fewer columns or "
                                  "rows.")
        if killed:
            raise PlaygroundError(f"Stopped after {timeout_s:g} s: the playground's time limit. "
                                  "Narrow the query (a date range, a LIMIT).")
        head, _, body = bytes(out).removeprefix(STARTED).partition(b"\n")
        try:
            header = json.loads(head) if proc.returncode == 0 else None
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise PlaygroundError(
                "The query stopped the playground's worker (exit status "
                f"{proc.returncode}): it most likely needed more memory than the playground's "
                f"{MEMORY_LIMIT}. Narrow it (a date range, fewer columns, a LIMIT).")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if "error" in header:
        raise PlaygroundError(header["error"])
    import pyarrow as pa

    table = pa.ipc.open_stream(body).read_all()
    # Through DuckDB, so the values are the Python types DuckDB itself returns (int for HUGEINT).
    reader_con = duckdb.connect()
    try:
        rows = reader_con.from_arrow(table).fetchall()
    finally:
        reader_con.close()
    return Result(list(header["columns"]), rows, bool(header["truncated"]))


if __name__ == "__main__":
    _worker()
