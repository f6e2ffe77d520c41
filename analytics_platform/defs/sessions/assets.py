"""``sessions`` and ``session_events``: one day of sessions from every hour that can hold them.

The day's window of raw hours is ``partitions.session_window`` (from 27 hours before midnight,
the first 24 of them for session ids and times only, to day + 1 day + ``late_arrival_hours``);
events that arrive later still are filed by the events asset under ``late_events/ts_date=…``,
and those of dates D and D+1 that arrived after the window are read too, so a
re-materialisation counts them without scanning history. A session belongs to the day of its
first event and counts its events of that day and the next (``day_events.sql``). The statements
are in ``sql/`` beside this file.

De-duplication is over everything read, so a copy that arrived in another hour counts once.
"""

import time
from datetime import UTC, datetime

import dagster as dg
import duckdb

from analytics_platform import settings, sql
from analytics_platform.config import load_referrers
from analytics_platform.contract import SESSION_INACTIVITY_MINUTES
from analytics_platform.defs.automation import SESSIONS, refresh_when_deps_change
from analytics_platform.defs.metadata import column_schema, record_partitions
from analytics_platform.defs.sessions.checks import (
    RECONCILE_DESCRIPTION,
    WINDOW_CHECK,
    WINDOW_DESCRIPTION,
    never_computed,
    reconcile,
    spans,
    window_check,
)
from analytics_platform.defs.sessions.inputs import day_inputs, late_before
from analytics_platform.duck import connect, memory_limit_bytes
from analytics_platform.lake import partition_key
from analytics_platform.layout import day_folder, hour_folder
from analytics_platform.partitions import daily, day_key, day_of, session_window_mapping
from analytics_platform.resources import LakeResource, PipelineSettings
from analytics_platform.storage import (
    FIRST_COPY_ORDER,
    Lake,
    markdown_preview,
    publish_after_step,
)


def build_day(con: duckdb.DuckDBPyConnection, lake: Lake, day: datetime,
              pipeline: PipelineSettings) -> dict[str, int]:
    """Write the ``sessions`` and ``session_events`` partitions of one day (the referrer table
    is registered on ``con`` as ``referrers``)."""
    window, late, window_end, before = day_inputs(lake, day, pipeline.late_arrival_hours)
    folder = day_folder(day)
    if not window and not late:  # no event of the day (late_before holds none)
        lake.remove("sessions", folder)
        lake.remove("session_events", folder)
        return {"sessions": 0, "events": 0, "late_events": 0, "input_files": 0}
    sources = []
    if window:
        sources.append("SELECT *, file_index::INTEGER AS file_no, file_row_number AS file_row "
                       "FROM read_parquet($window, union_by_name = true, "
                       "hive_partitioning = false)")
    # the late events of the two dates before go with the day's (after them: file_no), read in
    # full, so that a session, by its session_id or its visitor_hash, that began in the 27 hours
    # before midnight is left to its day (`earlier` in day_events.sql) however late that event
    # arrived; day_events.sql keeps only the rows dated the day and the next
    late = late + late_before(lake, day, pipeline.late_arrival_hours)
    if late:
        # only what arrived after the window: the rest is in the window's files already
        sources.append(f"SELECT *, (file_index + {len(window)})::INTEGER AS file_no, "
                       "file_row_number AS file_row FROM read_parquet($late, union_by_name = true, "
                       "hive_partitioning = false) WHERE raw_hour > $window_end::TIMESTAMP")
    # events files written before issue 18 have no visitor_hash or consent: NULL there (last:
    # UNION BY NAME keeps the first query's column order)
    sources.append("SELECT NULL::VARCHAR AS visitor_hash, NULL::BOOLEAN AS consent WHERE false")
    # the parameters of the sources and the day (session_events.sql), then day_events.sql's own
    read: dict = {"day": day.date().isoformat()}
    if window:
        read["window"] = window
    if late:
        read["late"] = late
        read["window_end"] = window_end.replace(tzinfo=None)
    params: dict = {**read, "inactivity_minutes": SESSION_INACTIVITY_MINUTES}
    if before:
        params["before"] = before
    union = "\n    UNION ALL BY NAME\n    ".join(sources)
    con.execute(sql.load(
        "sessions/day_events", first_copy_order=FIRST_COPY_ORDER, sources=union,
        before="UNION ALL SELECT session_id, ts FROM read_parquet($before, "
               "hive_partitioning = false)" if before else ""), params)
    # session_events is written from the files and read back for what follows (the sessions,
    # the counts): see session_events.sql for what that saves
    # the write joins the wide rows to day_keys and sorts them: on a big day, in two statements
    # (see joined_first)
    rows = con.execute("SELECT count(*) FROM day_keys").fetchall()[0][0]
    if joined_first(rows, memory_limit_bytes(con)):
        con.execute("CREATE OR REPLACE TEMP TABLE day_wide AS " + sql.load(
            "sessions/session_events", sources=union, order_by=""), read)
        query, query_params = f"SELECT * FROM day_wide {SESSION_EVENTS_ORDER}", None
    else:
        query = sql.load("sessions/session_events", sources=union, order_by=SESSION_EVENTS_ORDER)
        query_params = read
    written = lake.write(con, query, "session_events", folder, query_params)
    con.execute("DROP TABLE IF EXISTS day_wide")
    # each row's place in the session-sorted file orders a session's events (sessions.sql)
    con.execute("CREATE OR REPLACE TEMP VIEW day_events AS SELECT * FROM read_parquet("
                f"{sql.literal(str(written))}, hive_partitioning = false, "
                "file_row_number = true)")
    lake.write(con, sql.load("sessions/sessions"), "sessions", folder)
    # late: the one definition (duck.py's is_late, CONTRACT §4), as the events asset counts it
    n_sessions, n_events, n_late = con.execute(
        "SELECT count(DISTINCT session_id), count(*), "
        "count(*) FILTER (is_late(ts, $late_hours, raw_hour)) FROM day_events",
        {"late_hours": pipeline.late_arrival_hours},
    ).fetchall()[0]
    return {"sessions": n_sessions, "events": n_events, "late_events": n_late,
            "input_files": len(window) + len(late) + len(before)}


# How session_events/date=…/part.parquet is sorted (session_events.sql's {order_by}).
SESSION_EVENTS_ORDER = "ORDER BY session_id, ts, event_id"
# What a session_events row takes in DuckDB's sort, measured: 1,474,466 rows of the first day of
# the 7-day benchmark history (bench-cache/day-7d-80000v) sorted ~750 MB in memory and spilled
# (2026-12-07).
SORT_ROW_BYTES = 530


def joined_first(rows: int, memory_bytes: int) -> bool:
    """Whether the ``session_events`` write of a day of ``rows`` events joins the wide rows to
    ``day_keys`` into a temp table first and sorts them in a second statement: when the sort
    needs more than half the step's memory.

    In one statement the hash table of the day's keys is held while the sort takes the joined
    rows, and DuckDB 2.0's sort did not spill in time beside it on a 1.47M-event day: out of
    memory at the default 1 GB in 5 of 12 runs on two threads (3 of 5 with the write at 750 MB),
    and on one thread in the 7-day history's backfill (its sixth day) though 18 runs alone
    passed. Joined first, the table is released before the sort: 12 of 12 runs alone, 7 days on
    one connection and that history's backfill passed; +3-4 CPU-s on that day. A day of the
    30-day benchmark (489k events, 2.1-2.5 s) never failed in one statement and keeps it
    (docs/BENCHMARKS.md, issue 21's early-morning round).
    """
    return rows * SORT_ROW_BYTES > memory_bytes / 2


# A day reads the hours of its session window: the mapping is that window in whole days (as
# configured when the definitions load: $ANALYTICS_LATE_ARRIVAL_HOURS).
SPEC_COMMON = {
    "deps": [dg.AssetDep("events",
                         partition_mapping=session_window_mapping(settings.late_arrival_hours()))],
    "kinds": {"duckdb", "parquet"},
    "group_name": SESSIONS,
    "automation_condition": refresh_when_deps_change(),
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "sessions",
            description="One row per session (CONTRACT §4): start, end, duration, visitor, pages, "
            "scroll and reading time, interactions, bounce, conversion, attribution "
            "(source / medium / campaign), experiment variant and device. Partitioned by "
            "session_date, the UTC day of the session's first event.",
            **SPEC_COMMON,
        ),
        dg.AssetSpec(
            "session_events",
            description="The de-duplicated human events of each day's sessions, with their "
            "session_date: what the daily page and funnel marts count.",
            **SPEC_COMMON,
        ),
    ],
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("sessions_reconcile_with_events", asset="sessions",
                                   description=RECONCILE_DESCRIPTION),
                 dg.AssetCheckSpec(WINDOW_CHECK, asset="sessions",
                                   description=WINDOW_DESCRIPTION)],
)
def sessions(context: dg.AssetExecutionContext, lake: LakeResource, pipeline: PipelineSettings):
    """Sessions and their events, one day at a time (see the module docstring for the window)."""
    out = lake.open()
    t0 = time.perf_counter()
    days = sorted(day_of(k) for k in context.partition_keys)
    # what the instance knows of the events hours, before anything is written (checks.py)
    materialised = context.instance.get_materialized_partitions(dg.AssetKey("events"))
    now = datetime.now(UTC)
    refuse_days_never_computed(out, days, materialised, now)
    con = connect()
    con.register("referrers", load_referrers(pipeline.referrers_file))
    totals = {"sessions": 0, "events": 0, "late_events": 0, "input_files": 0}
    per_day: dict[str, dict[str, int]] = {}
    for i, day in enumerate(days, 1):
        per_day[day_key(day)] = counts = build_day(con, out, day, pipeline)
        for k, v in counts.items():
            totals[k] += v
        context.log.info(f"sessions: {i}/{len(days)} days, {totals['sessions']:,} sessions")
    publish_after_step(out)
    check = reconcile(con, out, days, pipeline)
    seconds = round(time.perf_counter() - t0, 2)
    preview = ""
    files = out.existing("sessions", [day_folder(d) for d in days])
    if files:
        preview = markdown_preview(
            con,
            "SELECT session_date, count(*) AS sessions, sum(events) AS events, "
            "round(avg(is_bounce::INT), 3) AS bounce_rate, sum(converted::INT) AS conversions "
            "FROM read_parquet($f, hive_partitioning = false) GROUP BY 1 ORDER BY 1",
            {"f": files}, limit=31,
        )
    con.close()
    # each day its own counts, the run's totals, preview and columns on its last day
    # (metadata.record_partitions)
    record_partitions(
        context, {k: {**c, "dagster/row_count": c["sessions"]} for k, c in per_day.items()},
        {"run_days": len(days), **{f"run_{k}": v for k, v in totals.items()},
         "run_seconds": seconds, "run_preview": dg.MetadataValue.md(preview),
         **column_schema(files[-1:])},
        asset_key="sessions")
    event_files = out.existing("session_events", [day_folder(d) for d in days])
    record_partitions(
        context, {k: {"events": c["events"], "dagster/row_count": c["events"]}
                  for k, c in per_day.items()},
        {"run_days": len(days), "run_events": totals["events"],
         **column_schema(event_files[-1:])},
        asset_key="session_events")
    yield dg.MaterializeResult(asset_key="sessions")
    yield dg.MaterializeResult(asset_key="session_events")
    yield check
    yield window_check(out, days, pipeline.late_arrival_hours, materialised, now)


def refuse_days_never_computed(lake: Lake, days: list[datetime], materialised: set[str],
                               now: datetime) -> None:
    """Fail the run, before it writes anything, when a day of it was never computed: none of
    its own events hours is materialised (``materialised``) nor holds a file in the lake (a
    Dagster home made anew over an existing lake knows none of them). Its sessions would be
    empty, as for a day without traffic, and every check would pass."""
    never = {}
    for day in days:
        hours = never_computed(day, materialised, now)
        if hours and not lake.existing("events", [hour_folder(h) for h in hours]):
            never[day_key(day)] = [partition_key(h) for h in hours]
    if never:
        raise dg.Failure(
            description="No events hour of " + "; ".join(
                f"{d} was ever materialised ({spans(k)})" for d, k in never.items())
            + ": its sessions would be those of a day without traffic. Materialise `events` "
            "for those hours first (events_job, or `analytics-platform backfill`), then the "
            "day.",
            metadata={"days": ", ".join(never)})
