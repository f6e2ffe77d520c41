"""Daily marts (CONTRACT §5): KPIs, pages and attribution, one partition per session_date.

Each reads the day's ``sessions`` (and ``session_events`` for pages) as the views ``s`` and
``e``; its statement is ``sql/<mart>.sql`` beside this file, all there is to each table. A new
daily mart is one more ``daily_mart(...)`` line here and its ``.sql`` file: the job (by group)
and the warehouse view (one per table of the lake) follow (docs/PIPELINE.md, "Adding a mart").
"""

import time
from collections.abc import Callable
from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform import sql
from analytics_platform.defs.automation import DAILY_MARTS, refresh_when_deps_change
from analytics_platform.defs.metadata import table_metadata
from analytics_platform.duck import connect
from analytics_platform.layout import day_folder
from analytics_platform.partitions import daily, day_of
from analytics_platform.resources import LakeResource
from analytics_platform.storage import Lake, markdown_preview, publish_warehouse


def run_daily(
    context: dg.AssetExecutionContext,
    lake: Lake,
    table: str,
    build: Callable[[duckdb.DuckDBPyConnection, datetime], str],
    with_events: bool = False,
) -> dg.MaterializeResult:
    """For each day of the run: expose that day's sessions as ``s`` (and events as ``e``), write
    the query ``build`` returns as the day's partition of ``table``."""
    con = connect()
    t0 = time.perf_counter()
    days = sorted(day_of(k) for k in context.partition_keys)
    written: list[str] = []
    for day in days:
        folder = day_folder(day)
        s_files = lake.existing("sessions", [folder])
        if not s_files:
            lake.remove(table, folder)
            continue
        con.execute(f"CREATE OR REPLACE TEMP VIEW s AS SELECT * FROM read_parquet("
                    f"{sql.literal_list(s_files)})")
        if with_events:
            e_files = lake.existing("session_events", [folder])
            con.execute(f"CREATE OR REPLACE TEMP VIEW e AS SELECT * FROM read_parquet("
                        f"{sql.literal_list(e_files)})")
        written.append(str(lake.write(con, build(con, day), table, folder)))
    publish_warehouse(lake)
    preview = markdown_preview(con, "SELECT * FROM read_parquet($f)", {"f": written}) if (
        written) else "no sessions in these days"
    con.close()
    table_meta = table_metadata(written)
    return dg.MaterializeResult(metadata={
        "days": len(days), "days_with_data": len(written),
        "rows": table_meta["dagster/row_count"],
        "seconds": round(time.perf_counter() - t0, 2), "preview": dg.MetadataValue.md(preview),
        **table_meta,
    })


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


def daily_mart(name: str, description: str, deps: list[str]) -> dg.AssetsDefinition:
    """The daily mart ``name``: ``sql/<name>.sql`` over the day's sessions as ``s`` (and, when
    ``deps`` holds ``session_events``, their events as ``e``)."""
    query = sql.load(f"marts/{name}")  # read now: a missing file fails the definitions' load

    @daily_mart_asset(name=name, description=description, deps=deps)
    def mart(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return run_daily(context, lake.open(), name, lambda con, day: query,
                         with_events="session_events" in deps)

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
