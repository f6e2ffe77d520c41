"""Checks on ``sessions``: its counts against the events files, and whether the events hours it
read had all been materialised (a day never computed is not a day without traffic)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from analytics_platform import sql
from analytics_platform.defs.sessions.inputs import day_inputs
from analytics_platform.lake import floor_hour, hour_of_partition_key, hours_between, partition_key
from analytics_platform.layout import day_folder, hour_folder
from analytics_platform.partitions import first_hour, session_window
from analytics_platform.resources import PipelineSettings
from analytics_platform.storage import Lake

# Shown as the check's "About" in the UI (it runs inside the sessions asset).
RECONCILE_DESCRIPTION = (
    "Sum of session event counts equals the distinct human events of those sessions, dated "
    "their day or the next, in the events partitions (counted from the events files, not from "
    "session_events)."
)


def reconcile(con: duckdb.DuckDBPyConnection, lake: Lake, days: list[datetime],
              pipeline: PipelineSettings) -> dg.AssetCheckResult:
    """Sum of the sessions' event counts = distinct human events of those sessions, counted
    straight from the ``events`` files (not from ``session_events``)."""
    mismatches = []
    checked = 0
    for day in days:
        files = lake.existing("sessions", [day_folder(day)])
        if not files:
            continue
        inputs = day_inputs(lake, day, pipeline.late_arrival_hours)
        sources = inputs.window + inputs.late
        in_sessions = con.execute(
            "SELECT coalesce(sum(events), 0) FROM read_parquet($f, hive_partitioning = false)",
            {"f": files}).fetchall()[0][0]
        # recounted from the events files (sql/reconcile.sql: CONTRACT §4's rules, one join)
        in_events = con.execute(sql.load("sessions/reconcile"),
                                {"src": sources, "f": files, "day": day.date()}).fetchall()[0][0]
        checked += 1
        if in_sessions != in_events:
            mismatches.append(f"{day:%Y-%m-%d}: sessions say {in_sessions}, events {in_events}")
    return dg.AssetCheckResult(
        check_name="sessions_reconcile_with_events",
        asset_key="sessions",
        passed=not mismatches,
        metadata={"days_checked": checked, "mismatches": "\n".join(mismatches) or "none"},
        description=RECONCILE_DESCRIPTION,
    )


WINDOW_CHECK = "sessions_window_materialised"
# Shown as the check's "About" in the UI.
WINDOW_DESCRIPTION = (
    "Every `events` hour of the day's session window that should be materialised by now is: "
    "from the first partition, the hours that ended over an hour ago (the hourly schedule "
    "materialises an hour without traffic at :10 of the next) up to the newest materialised "
    "hour, and all of the day's own hours. An hour never materialised is read as an hour "
    "without events: fails (error) naming them; materialise them (events_job, or the "
    "backfill) and the day again. A day none of whose own hours was ever materialised fails "
    "its run instead, writing nothing."
)


def due_hours(day: datetime, late_hours: int, newest: datetime | None, now: datetime
              ) -> list[datetime]:
    """The hours of the day's session window that should be materialised by ``now``: from the
    first partition, those that ended over an hour ago (an hour without objects is the hourly
    schedule's, at :10 of the next hour), and up to the newest materialised hour (the pipeline
    got that far; for today, the automation runs the day before its later hours exist) or of
    the day itself (a past day needs every hour of its own). ``newest``: the newest
    materialised hour, None when there is none."""
    first, last = session_window(day, late_hours)
    settled = floor_hour(now) - timedelta(hours=2)
    end = day + timedelta(days=1)
    return [h for h in hours_between(max(first, first_hour()), min(last, settled))
            if (newest is not None and h <= newest) or day <= h < end]


def never_computed(day: datetime, materialised: set[str], now: datetime) -> list[datetime]:
    """The day's own hours that have ended when none of its own hours (the current one
    included) was ever materialised: the day was never computed. Else none."""
    own = hours_between(max(day, first_hour()), min(day + timedelta(hours=23), floor_hour(now)))
    if any(partition_key(h) in materialised for h in own):
        return []
    return [h for h in own if h < floor_hour(now)]


def spans(keys: Iterable[str]) -> str:
    """Hour partition keys as runs of consecutive hours: ``a … b (n hours)``, comma-joined."""
    hours = sorted(hour_of_partition_key(k) for k in keys)
    runs: list[list[datetime]] = []
    for h in hours:
        if runs and h - runs[-1][-1] == timedelta(hours=1):
            runs[-1].append(h)
        else:
            runs.append([h])
    return ", ".join(partition_key(r[0]) if len(r) == 1 else
                     f"{partition_key(r[0])} … {partition_key(r[-1])} ({len(r)} hours)"
                     for r in runs)


def window_check(lake: Lake, days: list[datetime], late_hours: int, materialised: set[str],
                 now: datetime) -> dg.AssetCheckResult:
    """:data:`WINDOW_CHECK` over the days of a run (``materialised``: the ``events`` hours the
    instance holds a materialisation of, read before the days were built).

    An hour the instance has no record of but whose ``events`` file is in the lake was
    computed (a Dagster home made anew over an existing lake, as :func:`never_computed`'s
    caller lets the files decide): found in the diff's review, such a day's 24 hours were
    named "never materialised" though their files and sessions were right."""
    # the newest hour once, not once a day: 8,800 keys parsed for each of 365 days took 12 s
    newest = max((hour_of_partition_key(k) for k in materialised), default=None)
    missing = {}
    for day in days:
        lacking = [h for h in due_hours(day, late_hours, newest, now)
                   if partition_key(h) not in materialised]
        if lacking:
            present = {Path(f).parent.name for f in lake.existing(
                "events", [hour_folder(h) for h in lacking])}
            lacking = [h for h in lacking if hour_folder(h) not in present]
        if lacking:
            missing[f"{day:%Y-%m-%d}"] = [partition_key(h) for h in lacking]
    return dg.AssetCheckResult(
        check_name=WINDOW_CHECK,
        asset_key="sessions",
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"days_checked": len(days),
                  "missing_hours": "\n".join(f"{d}: {spans(k)}" for d, k in missing.items())
                  or "none"},
        description=WINDOW_DESCRIPTION,
    )
