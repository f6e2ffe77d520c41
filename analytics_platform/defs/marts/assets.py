"""Daily marts (CONTRACT §5): KPIs, pages, attribution and devices, one partition per session_date.

Each reads the day's ``sessions`` (and ``session_events`` for pages) as the views ``s`` and
``e``; its statement is ``sql/<mart>.sql`` beside this file, all there is to each table. A new
daily mart is one more ``daily_mart(...)`` line here and its ``.sql`` file: the job (by group)
and the warehouse view (one per table of the lake) follow (docs/PIPELINE.md, "Adding a mart").
"""

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from analytics_platform import sql
from analytics_platform.defs.automation import DAILY_MARTS, refresh_when_deps_change
from analytics_platform.defs.metadata import column_schema, record_partitions
from analytics_platform.duck import connect, cursor
from analytics_platform.layout import day_folder
from analytics_platform.partitions import daily, day_key, day_of
from analytics_platform.resources import LakeResource
from analytics_platform.storage import Lake, markdown_preview, publish_after_step
from analytics_platform.workers import Worker, run_jobs


@dataclass(frozen=True)
class MartCheck:
    """A check of a daily mart, evaluated by the asset on each day it writes: ``sql/<name>.sql``
    over that day's partition as ``m`` and its sessions as ``s`` returns the rows that break it
    (none: passed). Its header says what it holds; ``description`` is the UI's "About"."""

    name: str
    description: str

    def spec(self, asset: str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, description=self.description)


def _run_checks(con: duckdb.DuckDBPyConnection, checks: Sequence[MartCheck], day: datetime,
                path: str, params: dict[str, Any], failures: dict[str, list[str]]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP VIEW m AS SELECT * FROM read_parquet({sql.literal(path)})")
    for check in checks:
        query = sql.load(f"marts/{check.name}")
        bad = con.execute(query, {k: v for k, v in params.items() if f"${k}" in query}).fetchall()
        failures[check.name] += [f"{day:%Y-%m-%d}: {row}" for row in bad[:5]]


# How many days of a mart are written at once, each on a cursor of the step's connection (one
# DuckDB database, so one memory limit): a day's statements are small (~16k sessions and ~490k
# events a day of the 30-day benchmark lake), and their planning, Parquet footers and file
# writes run mostly on one core. The 13 daily marts over those 30 days (`bench/steps.py
# daily-marts`), four pairs taking turns: one day at a time 16.7-21.2 s wall, 1.48-1.50 cores
# busy; two at a time 12.5-16.4 s (-24 % at the median pair), 1.85 cores, peak RSS 340-345 ->
# 403-410 MB, the 390 files byte-identical (issue 21, docs/BENCHMARKS.md).
DAY_WORKERS = 2


@dataclass(frozen=True)
class _Day:
    """What one day of a mart wrote: its file (None: no sessions that day), its rows, and the
    rows that broke each check."""

    written: str | None
    rows: int
    failures: dict[str, list[str]]


def _write_day(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, day: datetime,
               build: Callable[[duckdb.DuckDBPyConnection, datetime], str], with_events: bool,
               checks: Sequence[MartCheck], params: dict[str, Any]) -> _Day:
    """One day of ``table`` on ``con``: its sessions as ``s`` (and events as ``e``), the rows of
    ``build`` written as the day's partition, then its ``checks``; a day without sessions (no
    ``sessions`` file, or one of no row) has no partition."""
    folder = day_folder(day)
    s_files = lake.existing("sessions", [folder])
    # A day's sessions partition can exist and hold no row: its window read events of the day
    # after (or before) and none began that day. That day has no sessions (CONTRACT §5), so
    # every daily mart drops its partition, as for a day never materialised: a mart whose
    # statement always yields rows (funnel_daily's zero-count steps) wrote a day kpis_daily
    # had not. The count is the files' footers, no data read.
    if not sum(pq.ParquetFile(f).metadata.num_rows for f in s_files):
        lake.remove(table, folder)
        return _Day(None, 0, {})
    con.execute(f"CREATE OR REPLACE TEMP VIEW s AS SELECT * FROM read_parquet("
                f"{sql.literal_list(s_files)}, hive_partitioning = false)")
    if with_events:
        e_files = lake.existing("session_events", [folder])
        con.execute(f"CREATE OR REPLACE TEMP VIEW e AS SELECT * FROM read_parquet("
                    f"{sql.literal_list(e_files)}, hive_partitioning = false)")
    written = str(lake.write(con, build(con, day), table, folder, params))
    failures: dict[str, list[str]] = {c.name: [] for c in checks}
    _run_checks(con, checks, day, written, params, failures)
    return _Day(written, pq.ParquetFile(written).metadata.num_rows, failures)


def run_daily(
    context: dg.AssetExecutionContext,
    lake: Lake,
    table: str,
    build: Callable[[duckdb.DuckDBPyConnection, datetime], str],
    with_events: bool = False,
    checks: Sequence[MartCheck] = (),
    params: dict[str, Any] | None = None,
) -> dg.MaterializeResult:
    """For each day of the run: expose that day's sessions as ``s`` (and events as ``e``), write
    the query ``build`` returns (with the DuckDB ``params``) as the day's partition of ``table``,
    then evaluate ``checks`` on it. Days are written ``DAY_WORKERS`` at a time, each worker on
    a cursor of its own (temp views are a cursor's own); what is recorded is in day order."""
    t0 = time.perf_counter()
    days = sorted(day_of(k) for k in context.partition_keys)
    refuse_days_without_sessions(context.instance, lake, days)
    con = connect()
    params = params or {}

    def start(worker: int, stack: ExitStack) -> Worker[datetime, _Day]:
        cur = cursor(con)
        return Worker(cur, lambda day: _write_day(cur, lake, table, day, build, with_events,
                                                  checks, params))

    try:
        done = run_jobs(days, DAY_WORKERS, start, name=f"{table}-day")
    except BaseException:
        con.close()
        raise
    written = [d.written for d in done if d.written is not None]
    rows = {day_key(day): d.rows for day, d in zip(days, done, strict=True)}
    failures = {c.name: [f for d in done for f in d.failures.get(c.name, [])] for c in checks}
    publish_after_step(lake)
    preview = markdown_preview(con, "SELECT * FROM read_parquet($f)", {"f": written}) if (
        written) else "no sessions in these days"
    con.close()
    # each day its rows, the run's summary and columns on its last day (record_partitions)
    record_partitions(context, {k: {"dagster/row_count": n} for k, n in rows.items()}, {
        "run_days": len(days), "run_days_with_data": len(written),
        "run_rows": sum(rows.values()), "run_seconds": round(time.perf_counter() - t0, 2),
        "run_preview": dg.MetadataValue.md(preview), **column_schema(written[-1:])})
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name=c.name, asset_key=table, passed=not failures[c.name],
                            description=c.description,
                            metadata={"days_checked": len(written),
                                      "failures": "\n".join(failures[c.name]) or "none"})
        for c in checks
    ])


def refuse_days_without_sessions(instance: dg.DagsterInstance, lake: Lake,
                                 days: list[datetime]) -> None:
    """Fail the run, before it writes anything, when a day of it has no ``sessions`` file and
    its sessions partition was never materialised: the mart would hold the day as one without
    sessions (no partition, 0 rows) when it was never computed. A day materialised without a
    file had no sessions (build_day). An instance that holds no sessions materialisation at
    all (a Dagster home made anew over an existing lake) cannot tell: the files decide."""
    materialised = instance.get_materialized_partitions(dg.AssetKey("sessions"))
    if not materialised:
        return
    never = [day_key(d) for d in days if day_key(d) not in materialised
             and not lake.existing("sessions", [day_folder(d)])]
    if never:
        raise dg.Failure(
            description=f"The sessions of {', '.join(never)} were never materialised: the "
            "mart would count no sessions there, as for a day without traffic. Materialise "
            "`sessions` for those days first (daily_job runs both), then the mart.",
            metadata={"days": ", ".join(never)})


def daily_mart_asset(**kwargs) -> Callable:
    """``@dg.asset`` with what every daily mart shares (partitions, group, automation)."""
    return dg.asset(
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=DAILY_MARTS,
        kinds={"duckdb", "parquet"},
        automation_condition=refresh_when_deps_change(),
        **kwargs,
    )


def daily_mart(name: str, description: str, deps: list[str],
               checks: Sequence[MartCheck] = ()) -> dg.AssetsDefinition:
    """The daily mart ``name``: ``sql/<name>.sql`` over the day's sessions as ``s`` (and, when
    ``deps`` holds ``session_events``, their events as ``e``), with its ``checks``."""
    query = sql.load(f"marts/{name}")  # read now: a missing file fails the definitions' load
    for c in checks:
        sql.load(f"marts/{c.name}")

    @daily_mart_asset(name=name, description=description, deps=deps,
                      check_specs=[c.spec(name) for c in checks])
    def mart(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return run_daily(context, lake.open(), name, lambda con, day: query,
                         with_events="session_events" in deps, checks=checks)

    return mart


kpis_daily = daily_mart(
    "kpis_daily", "Visitors, sessions, pageviews, events, bounce rate, average duration and "
    "conversions per day.", ["sessions"])
pages_daily = daily_mart(
    "pages_daily", "Per page and day: pageviews, visitors, entries, exits and the average "
    "deepest scroll.", ["sessions", "session_events"])
attribution_daily = daily_mart(
    "attribution_daily", "Sessions, visitors, pageviews, bounces and conversions per day and "
    "source / medium / campaign.", ["sessions"])
devices_daily = daily_mart(
    "devices_daily", "Per day: sessions, visitors, pageviews, bounces and conversions by device "
    "type, browser, operating system and screen-size class (mobile < 576 px ≤ tablet < 992 ≤ "
    "laptop < 1440 ≤ desktop), one row per dimension and value.", ["sessions"],
    checks=[MartCheck("devices_daily_reconcile", "Each dimension's rows add up to the day's "
                      "sessions, pageviews, bounces and conversions (from sessions).")])
