"""Checks on ``sessions``."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform.partitions import day_folder
from analytics_platform.resources import PipelineSettings
from analytics_platform.storage import Lake


def reconcile(con: duckdb.DuckDBPyConnection, lake: Lake, days: list[datetime],
              pipeline: PipelineSettings) -> dg.AssetCheckResult:
    """Sum of the sessions' event counts = distinct human events of those sessions, counted
    straight from the ``events`` files (not from ``session_events``)."""
    from analytics_platform.defs.sessions.assets import day_inputs

    mismatches = []
    checked = 0
    for day in days:
        files = lake.existing("sessions", [day_folder(day)])
        if not files:
            continue
        window, late, _ = day_inputs(lake, day, pipeline.session_lookback_hours,
                                     pipeline.late_arrival_hours)
        sources = window + late
        in_sessions = con.execute("SELECT coalesce(sum(events), 0) FROM read_parquet($f)",
                                  {"f": files}).fetchall()[0][0]
        in_events = con.execute(
            "SELECT count(DISTINCT event_id) FROM read_parquet($src, union_by_name = true) "
            "WHERE session_id IN (SELECT session_id FROM read_parquet($f))",
            {"src": sources, "f": files},
        ).fetchall()[0][0]
        checked += 1
        if in_sessions != in_events:
            mismatches.append(f"{day:%Y-%m-%d}: sessions say {in_sessions}, events {in_events}")
    return dg.AssetCheckResult(
        check_name="sessions_reconcile_with_events",
        asset_key="sessions",
        passed=not mismatches,
        metadata={"days_checked": checked, "mismatches": "\n".join(mismatches) or "none"},
        description="Sum of session event counts equals the distinct human events of those "
        "sessions in the events partitions.",
    )
