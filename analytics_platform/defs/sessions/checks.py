"""Checks on ``sessions``."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb

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
        # a session counts its events of its day and the next (CONTRACT §4)
        # a session made from a visitor_hash (CONTRACT §4) holds that hash's events from its
        # start to its end (two sessions of one hash are more than 30 minutes apart)
        in_events = con.execute(
            "WITH e AS (SELECT * FROM (SELECT NULL::VARCHAR AS visitor_hash WHERE false) "
            "UNION ALL BY NAME SELECT * FROM read_parquet($src, union_by_name = true, "
            "hive_partitioning = false)), "
            "s AS (SELECT * FROM read_parquet($f, hive_partitioning = false)) "
            "SELECT count(DISTINCT event_id) FROM e "
            "WHERE (session_id IN (SELECT session_id FROM s) OR (session_id IS NULL AND EXISTS ("
            "SELECT 1 FROM s WHERE s.visitor_hash = e.visitor_hash "
            "AND e.ts BETWEEN s.session_start AND s.session_end))) "
            "AND ts >= $day::TIMESTAMP AND ts < $day::TIMESTAMP + INTERVAL 2 DAYS",
            {"src": sources, "f": files, "day": day.date()},
        ).fetchall()[0][0]
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
