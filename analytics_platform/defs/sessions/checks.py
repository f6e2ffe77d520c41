"""Checks on ``sessions``."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform import sql
from analytics_platform.defs.sessions.inputs import day_inputs
from analytics_platform.layout import day_folder
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
