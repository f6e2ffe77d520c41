"""Dashboard query latency: the Overview's queries (KPIs for the period and the one before,
the daily series, top / entry / exit pages, the filter choices, the date range), with no result
cache, through the dashboard's own query functions and `Warehouse` (the warehouse file stays
open, a cursor per query), on warehouses of about 1M and 10M simulated events; and the same
queries in ClickHouse (chDB, bench/clickhouse.py: MergeTree tables loaded from the same Parquet
files), results asserted identical row for row, engines alternating round by round, 2 threads
each (issue #21).

    python bench/dashboard.py [--sizes 1000000 10000000] [--rounds 50] [--record]
                              [--without-clickhouse] [--filter source=google,device=mobile]
                              [--days 14] [--clock wall|cpu] [--panels]

With ``--filter`` the same page is timed a second time with those sidebar filters set (the
dashboard's URL parameters: source, medium, campaign, country, device, browser, page; a key
given twice is "any of"), both engines, results asserted identical, in a table of its own.

``--panels`` (with ``--filter``) also times the other views' panels that are SQL of their own
over the filtered sessions (goals, funnels, experiments, cohorts, first / last touch, the
reports of issue 19: ``dashboard/queries.py``), ours only (no ClickHouse translation).

``--days`` is the range shown: the last 14 days by default (the recorded measure; on the 1M
warehouse, which holds 14 days, the previous period of the KPIs is then a range with no data);
``--days 7`` shows the last 7, whose previous 7 days have data at both sizes. ``--clock cpu``
times each query by the process's CPU (all threads; chDB runs in the process too) rather than
the wall clock: the figure to read on a loaded machine.

Each warehouse is built once under bench-dashboard-<events>/ (simulate + backfill) and reused;
its ClickHouse copy under bench-dashboard-<events>/chdb/, loaded again when the warehouse's
files change. The ClickHouse side needs `pip install -e ".[bench]"` (make install does it).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import data_env, section  # noqa: E402

CLI = str(Path(sys.executable).with_name("analytics-platform"))
EVENTS_PER_VISITOR_DAY = 12.4  # what the simulator produces on average
THREADS = 2
# where the dashboard's query functions live (the first that has them all)
QUERY_MODULES = ("analytics_platform.dashboard.queries",)
NEEDED = ("Warehouse", "Filters", "kpis", "series", "top_pages", "entry_pages", "exit_pages",
          "table", "CHOICES", "RANGE")


def build(folder: Path, events: int, shown: int = 14) -> tuple[date, date]:
    days = 14 if events <= 2_000_000 else 30
    visitors = max(1, round(events / days / EVENTS_PER_VISITOR_DAY))
    first = date(2026, 1, 1)
    last = first + timedelta(days=days - 1)
    if not (folder / "warehouse.duckdb").exists():
        env = data_env(folder)
        subprocess.run([CLI, "simulate", "--days", str(days), "--visitors-per-day",
                        str(visitors), "--start", str(first), "--quiet"], env=env, check=True)
        subprocess.run([CLI, "backfill", "--from", str(first), "--to", str(last)], env=env,
                       check=True)
    return last - timedelta(days=shown - 1), last


def dashboard_queries() -> ModuleType:
    """The module of the dashboard's own query functions (timed as they are, never copied)."""
    for name in QUERY_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if all(hasattr(mod, a) for a in NEEDED):
            return mod
    raise ImportError(f"none of {QUERY_MODULES} has {NEEDED}")


def parse_filter(text: str) -> dict[str, Any]:
    """``source=google,device=mobile`` → the dashboard's ``Filters`` fields
    (``{"sources": ("google",), "devices": ("mobile",)}``), named by its URL parameters."""
    Q = dashboard_queries()
    field = {param: name for name, param, _ in Q.FILTERS}
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in field or not value:
            raise SystemExit(f"--filter: {part!r}: use key=value, key one of {sorted(field)}")
        name = field[key]
        out[name] = value if name in ("page", "goal") else (*out.get(name, ()), value)
    return out


def ours(warehouse: Path, start: date, end: date, filters: dict[str, Any] | None = None,
         rollups: bool = True) -> tuple[Any, dict[str, Callable[[], Any]]]:
    """The Overview's queries as the dashboard runs them: the panels through the query layer
    the dashboard and the API share (narrowed by ``filters``, ``Filters`` fields), the filter
    choices and the date range as hand-written SQL. ``rollups`` False: the warehouse's rollups
    (analytics_platform/query/rollups.py) hidden from the layer, every panel from the rows."""
    Q = dashboard_queries()
    wh = Q.Warehouse(warehouse) if rollups else _without_rollups(Q.Warehouse(warehouse))
    wh.df(f"SET threads = {THREADS}")  # DuckDB's default is a thread per core
    f = Q.Filters(start, end, **(filters or {}))
    prev = f.previous()
    return wh, {
        "KPIs": lambda: Q.table(wh, Q.kpis(f)),
        "KPIs, previous period": lambda: Q.table(wh, Q.kpis(prev)),
        "daily series": lambda: Q.table(wh, Q.series(f, False)),
        "top pages": lambda: Q.table(wh, Q.top_pages(f)),
        "entry pages": lambda: Q.table(wh, Q.entry_pages(f)),
        "exit pages": lambda: Q.table(wh, Q.exit_pages(f)),
        "filter choices": lambda: wh.df(Q.CHOICES),
        "date range": lambda: wh.df(Q.RANGE),
    }


def _without_rollups(wh: Any) -> Any:
    """The dashboard's ``Warehouse`` ``wh`` with no rollup to answer from."""
    return type("RowsOnly", (type(wh),), {"rollups": frozenset()})(wh.path)


def _plain(v: Any) -> Any:
    """A cell as a comparable Python value (NULL, NaN and NaT as None; lists as lists; dates
    and datetimes as dates when at midnight)."""
    if isinstance(v, np.ndarray | list | tuple):
        return [_plain(x) for x in v]
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, datetime) and v.time() == datetime.min.time():
        v = v.date()
    return v


def difference(name: str, a: pd.DataFrame, b: pd.DataFrame, names: bool) -> str | None:
    """How two engines' results differ, or None when they are identical row for row: the same
    rows in the same order, the same values (counts exactly; a float to 1e-12 relative, since
    the engines add floats in different orders: the mean visit duration at 1M events came out
    170.91889293416298 in DuckDB, 170.91889293416358 in ClickHouse), and the same column names
    when ``names``."""
    if names and list(a.columns) != list(b.columns):
        return f"{name}: columns {list(a.columns)} ≠ {list(b.columns)}"
    if a.shape != b.shape:
        return f"{name}: shape {a.shape} ≠ {b.shape}"
    for i, (ra, rb) in enumerate(zip(a.itertuples(index=False), b.itertuples(index=False),
                                     strict=True)):
        for col, x, y in zip(a.columns, ra, rb, strict=True):
            x, y = _plain(x), _plain(y)
            same = (math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
                    if isinstance(x, float) and isinstance(y, float | int) else x == y)
            if not same:
                return f"{name}: row {i}, column {col}: {x!r} ≠ {y!r}"
    return None


def panels(warehouse: Path, start: date, end: date,
           filters: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The other views' panels written in SQL of their own over the sessions ``filters`` keep,
    as the views run them (``wh.df(*Q.goals(f))`` …; with no filter but the dates most of them
    read their marts instead)."""
    Q = dashboard_queries()
    wh = Q.Warehouse(warehouse)
    wh.df(f"SET threads = {THREADS}")
    f = Q.Filters(start, end, **filters)
    out: dict[str, Callable[[], Any]] = {
        "goals": lambda: wh.df(*Q.goals(f)),
        "funnels": lambda: [wh.df(*funnel[1:]) for funnel in Q.funnels(f)],
        "experiments": lambda: wh.df(*Q.experiments(f)),
        "cohorts": lambda: wh.df(*Q.cohorts(f)),
        "first / last touch": lambda: wh.df(*Q.touch(f)),
    }
    for name in Q.REPORTS:
        out[f"report: {name}"] = lambda name=name: wh.df(*Q.report(f, name))
    return out


def measure_panels(folder: Path, start: date, end: date, rounds: int, filters: dict[str, Any],
                   clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """p50 / p95 of each of :func:`panels`, ``rounds`` warm rounds (one warming round first)."""
    load = os.getloadavg()[0]
    timed = panels(folder / "warehouse.duckdb", start, end, filters)
    for q in timed.values():
        q()
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(rounds):
        for name, q in timed.items():
            t0 = clock()
            q()
            times[name].append(clock() - t0)
    events = dashboard_queries().Warehouse(folder / "warehouse.duckdb").row(
        "SELECT count(*) FROM events")[0]
    return {"events": events, "load": (load, os.getloadavg()[0]),
            "rows": {n: (_p(t, .5), _p(t, .95)) for n, t in times.items()}}


# Levers of issue #21, measured with the dashboard's own queries (no change to the dashboard):
# the same Overview on a copy of the warehouse laid out otherwise. The warehouse itself stores
# the Overview's tables as native DuckDB tables (analytics_platform/storage.py NATIVE_TABLES)
# and two rollups of them (analytics_platform/query/rollups.py); the levers are how it read
# them before: views over the lake's daily Parquet files, one sorted Parquet file per table,
# and the stored tables without the rollups.
LEVERS = ("views over the daily Parquet files (before)", "one sorted Parquet file per table")
ROWS_ONLY = "native tables, no rollups"


def lever_warehouse(folder: Path, lever: str) -> Path:
    """A warehouse file beside ``folder``'s whose Overview tables are laid out as ``lever``
    says (the sorted file as the ClickHouse tables' keys: the date, then the filtered columns);
    built again when the lake's files change."""
    import duckdb
    from clickhouse import TABLES, parquet_globs, stamp

    from analytics_platform.storage import PARQUET  # the pipeline's Parquet settings

    src = folder / "warehouse.duckdb"
    out = folder / "levers" / str(LEVERS.index(lever))
    now = stamp(src)
    if (out / "stamp").exists() and (out / "stamp").read_text() == now:
        return out / "warehouse.duckdb"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect(str(out / "warehouse.duckdb"))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("ATTACH ? AS src (READ_ONLY)", [str(src)])
        for table, glob in parquet_globs(src).items():
            if lever == LEVERS[0]:
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', "
                            "union_by_name = true, hive_partitioning = false)")
            else:
                file = out / f"{table}.parquet"
                con.execute(f"COPY (SELECT * FROM src.{table} ORDER BY {TABLES[table]}) "
                            f"TO '{file}' ({PARQUET})")
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{file}')")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    (out / "stamp").write_text(now)
    return out / "warehouse.duckdb"


def _p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[round(q * (len(s) - 1))] * 1e3


def measure(folder: Path, start: date, end: date, rounds: int, clickhouse: bool,
            levers: bool = False, filters: dict[str, Any] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    load = os.getloadavg()[0]
    wh, duck = ours(folder / "warehouse.duckdb", start, end, filters)
    threads = int(wh.row("SELECT current_setting('threads')")[0])
    engines: dict[str, dict[str, Callable[[], Any]]] = {"ours": duck}
    if levers:
        for lever in LEVERS:
            engines[lever] = ours(lever_warehouse(folder, lever), start, end)[1]
        engines[ROWS_ONLY] = ours(folder / "warehouse.duckdb", start, end, rollups=False)[1]
    if clickhouse:
        import clickhouse as CH

        prev_start = start - (end - start) - timedelta(days=1)
        ch = CH.ClickHouse(folder / "warehouse.duckdb", folder / "chdb")
        for table in ("sessions", "session_events"):
            n = (wh.row(f"SELECT count(*) FROM {table}")[0], ch.count(table))
            assert n[0] == n[1], f"{table}: {n[0]} rows in DuckDB, {n[1]} in ClickHouse"
        engines["ClickHouse"] = CH.overview(ch, start, end, (prev_start, start - timedelta(1)),
                                            filters)
    # warm both (the OS file cache, DuckDB's Parquet metadata), and compare the results
    results = {e: {name: q() for name, q in panels.items()} for e, panels in engines.items()}
    for e in list(engines)[1:]:
        for name, b in results[e].items():
            diff = difference(name, results["ours"][name], b,
                              names=name not in ("filter choices", "date range"))
            assert diff is None, f"the engines differ: {diff}" + (
                "" if e == "ClickHouse" else f" ({e})")
    per_query = {e: {name: [] for name in panels} for e, panels in engines.items()}
    per_page: dict[str, list[float]] = {e: [] for e in engines}
    order = list(engines)
    for r in range(rounds):
        # the engines take turns going first
        for e in order[r % len(order):] + order[:r % len(order)]:
            t_page = clock()
            for name, q in engines[e].items():
                t0 = clock()
                q()
                per_query[e][name].append(clock() - t0)
            per_page[e].append(clock() - t_page)
    events = wh.row("SELECT count(*) FROM events")[0]
    shown = wh.row("SELECT count(*) FROM session_events WHERE session_date BETWEEN $start "
                   "AND $end", {"start": start, "end": end})[0]
    out: dict[str, Any] = {"events": events, "shown": shown, "threads": threads, "rows": {},
                           "load": (load, os.getloadavg()[0])}
    for name in duck:
        out["rows"][name] = {e: (_p(per_query[e][name], .5), _p(per_query[e][name], .95))
                             for e in engines if name in per_query[e]}
    complete = [e for e in engines if per_query[e].keys() == duck.keys()]
    every = {e: [t for ts in per_query[e].values() for t in ts] for e in complete}
    out["rows"]["any query"] = {e: (_p(every[e], .5), _p(every[e], .95)) for e in complete}
    out["rows"]["**whole page**"] = {e: (_p(per_page[e], .5), _p(per_page[e], .95))
                                     for e in complete}
    if clickhouse:
        ch.close()
    return out


def _ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--without-clickhouse", action="store_true",
                    help="time the dashboard's queries only (no chDB comparison)")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="where the bench-dashboard-<events>/ warehouses are kept")
    ap.add_argument("--levers", action="store_true",
                    help="also time the same queries on copies of the warehouse laid out "
                         "otherwise (issue #21's levers), and from the daily marts")
    ap.add_argument("--filter", default="",
                    help="also time the page with these filters set, e.g. "
                         "source=google,device=mobile")
    ap.add_argument("--days", type=int, default=14,
                    help="the range shown: the last DAYS days of the warehouse (14: the "
                         "recorded measure; 7: a previous period with data at both sizes)")
    ap.add_argument("--panels", action="store_true",
                    help="with --filter: also time the other views' panels over the filtered "
                         "sessions (goals, funnels, experiments, cohorts, touch, reports)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time by the wall clock (recorded) or the process's CPU, all threads")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    filters = parse_filter(args.filter)
    clickhouse = not args.without_clickhouse
    if args.panels and not filters:
        raise SystemExit("--panels needs --filter: without one the panels read their marts")
    results, narrowed, panel_results = [], [], []
    for size in args.sizes:
        folder = (args.root / f"bench-dashboard-{size}").resolve()
        start, end = build(folder, size, args.days)
        results.append(measure(folder, start, end, args.rounds, clickhouse, args.levers,
                               clock=clock))
        if filters:
            narrowed.append(measure(folder, start, end, args.rounds, clickhouse,
                                    filters=filters, clock=clock))
        if args.panels:
            panel_results.append(measure_panels(folder, start, end, args.rounds, filters,
                                                clock=clock))
    what, header, rows = overview_table(results, args.rounds, clickhouse, args.days,
                                        args.clock)
    section(what, header, rows, args.record)
    if filters:
        what, header, rows = overview_table(narrowed, args.rounds, clickhouse, args.days,
                                            args.clock)
        section(f"With the filter {args.filter} set (the same page, the same rounds, taken after "
                "the unfiltered ones): " + what, header, rows, args.record)
    if panel_results:
        header = "| panel |" + "".join(f" ours, {m['events']:,} events |"
                                       for m in panel_results)
        rows = [f"| {name} |" + "".join(f" {_ms(m['rows'][name][0])} / "
                                        f"{_ms(m['rows'][name][1])} |" for m in panel_results)
                for name in panel_results[0]["rows"]]
        section(f"With the filter {args.filter}: the other views' panels in SQL of their own "
                "over the filtered sessions (dashboard/queries.py, run as the views run them), "
                f"p50 / p95 in ms over {args.rounds} warm rounds, no result cache, "
                f"{THREADS} DuckDB threads, after the Overview's rounds. Load average (1 min) "
                "before / after: " + ", ".join(
                    f"{m['load'][0]:.1f} / {m['load'][1]:.1f} ({m['events']:,} events)"
                    for m in panel_results) + ".", header, rows, args.record)
    if args.levers:
        section("Levers (issue #21), the same rounds: the dashboard's own queries on the "
                "warehouse (its Overview tables stored as native DuckDB tables, the daily "
                "series and top pages answered from its rollups, analytics_platform/query/"
                "rollups.py), on a copy whose Overview tables are views over the lake's daily "
                "Parquet files (as before) or one Parquet file each (sorted as the ClickHouse "
                "tables), and on the warehouse with its rollups unused (every panel from the "
                "rows); results asserted identical. p50 / p95 in ms, (÷ ClickHouse at p50).",
                *levers_table(results, clickhouse), args.record)


def overview_table(results: list[dict[str, Any]], rounds: int, clickhouse: bool,
                   days: int = 14, clock: str = "wall") -> tuple[str, str, list[str]]:
    """The description, header and rows of the Overview's table for ``results``."""
    header = "| query |"
    for m in results:
        header += f" ours, {m['events']:,} events |"
        if clickhouse:
            header += " ClickHouse | ÷ |"
    rows = []
    for name in results[0]["rows"]:
        row = f"| {name} |"
        for m in results:
            o = m["rows"][name]["ours"]
            row += f" {_ms(o[0])} / {_ms(o[1])} |"
            if clickhouse:
                c = m["rows"][name]["ClickHouse"]
                row += f" {_ms(c[0])} / {_ms(c[1])} | {o[0] / c[0]:.1f} |"
        rows.append(row)
    shown = ", ".join(f"{m['shown']:,}" for m in results)
    what = (f"Overview queries (the last {days} days shown: {shown} events), p50 / p95 in "
            f"ms{' of CPU (the process, all threads)' if clock == 'cpu' else ''} over "
            f"{rounds} warm rounds, no result cache, through the dashboard's query "
            "functions and `Warehouse` (the file open, a cursor per query; bar: any query's "
            f"p95 ≤ 200 ms on 10M events), {results[0]['threads']} DuckDB threads.")
    if clickhouse:
        what += (" ClickHouse: the same queries in ClickHouse SQL in chDB (bench/clickhouse.py: "
                 "MergeTree tables ordered by the date and the filtered columns, loaded from "
                 "the same Parquet files), max_threads 2, results asserted identical row for "
                 "row, the engines taking turns round by round; ÷: ours ÷ ClickHouse at p50.")
    what += " Load average (1 min) before / after the rounds: " + ", ".join(
        f"{m['load'][0]:.1f} / {m['load'][1]:.1f} ({m['events']:,} events)" for m in results) + "."
    return what, header, rows


def levers_table(results: list[dict[str, Any]], clickhouse: bool) -> tuple[str, list[str]]:
    engines = ["ours", *LEVERS, ROWS_ONLY] + (["ClickHouse"] if clickhouse else [])
    label = {"ours": "native tables and rollups (now)"}
    header = "| warehouse | query | " + " | ".join(label.get(e, e) for e in engines) + " |"
    rows = []
    for m in results:
        for name, by in m["rows"].items():
            cells = []
            for e in engines:
                if e not in by:
                    cells.append("—")
                    continue
                cell = f"{_ms(by[e][0])} / {_ms(by[e][1])}"
                if clickhouse and e != "ClickHouse":
                    cell += f" ({by[e][0] / by['ClickHouse'][0]:.1f})"
                cells.append(cell)
            rows.append(f"| {m['events']:,} events | {name} | " + " | ".join(cells) + " |")
    return header, rows


if __name__ == "__main__":
    main()
