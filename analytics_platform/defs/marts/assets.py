"""Daily marts (SPEC §5): KPIs, pages and attribution, one partition per session_date.

Each reads the day's ``sessions`` (and ``session_events`` for pages) as the views ``s`` and
``e``; the SQL below is all there is to each table.
"""

import time
from collections.abc import Callable
from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform.defs.automation import refresh_when_deps_change
from analytics_platform.duck import connect
from analytics_platform.partitions import daily, day_folder, day_of
from analytics_platform.resources import LakeResource
from analytics_platform.storage import Lake, markdown_preview, publish_warehouse, sql_paths

KPIS_SQL = """
SELECT session_date AS date,
       count(DISTINCT visitor_id) AS visitors,
       count(*) AS sessions,
       sum(pageviews)::BIGINT AS pageviews,
       sum(events)::BIGINT AS events,
       avg(is_bounce::INTEGER) AS bounce_rate,
       avg(duration_s) AS avg_duration_s,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
GROUP BY session_date
"""

PAGES_SQL = """
WITH views AS (
    SELECT session_date, page_path, session_id, visitor_id FROM e WHERE event_type = 'page_view'
),
-- the deepest scroll each session reached on each page it viewed (0 if it never scrolled)
depth AS (
    SELECT v.session_date, v.page_path, v.session_id,
           coalesce(max(try_cast(x.props::JSON->>'depth' AS DOUBLE)), 0) AS max_depth
    FROM (SELECT DISTINCT session_date, page_path, session_id FROM views) v
    LEFT JOIN e x ON x.session_id = v.session_id AND x.page_path = v.page_path
                 AND x.event_type = 'scroll_depth'
    GROUP BY ALL
),
entries AS (SELECT entry_page AS page_path, count(*) AS n FROM s GROUP BY ALL),
exits AS (SELECT exit_page AS page_path, count(*) AS n FROM s GROUP BY ALL)
SELECT v.session_date AS date, v.page_path,
       count(*) AS pageviews,
       count(DISTINCT v.visitor_id) AS visitors,
       coalesce(any_value(en.n), 0) AS entries,
       coalesce(any_value(ex.n), 0) AS exits,
       (SELECT avg(d.max_depth) FROM depth d WHERE d.page_path = v.page_path)
           AS avg_max_scroll_depth
FROM views v
LEFT JOIN entries en ON en.page_path = v.page_path
LEFT JOIN exits ex ON ex.page_path = v.page_path
GROUP BY v.session_date, v.page_path
ORDER BY pageviews DESC, page_path
"""

ATTRIBUTION_SQL = """
SELECT session_date AS date, source, medium, campaign,
       count(*) AS sessions,
       count(DISTINCT visitor_id) AS visitors,
       sum(pageviews)::BIGINT AS pageviews,
       count(*) FILTER (is_bounce) AS bounces,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
GROUP BY ALL
ORDER BY sessions DESC, source, medium, campaign
"""


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
    rows = 0
    written = []
    for day in days:
        folder = day_folder(day)
        s_files = lake.existing("sessions", [folder])
        if not s_files:
            lake.remove(table, folder)
            continue
        con.execute(f"CREATE OR REPLACE TEMP VIEW s AS SELECT * FROM read_parquet("
                    f"{sql_paths(s_files)})")
        if with_events:
            e_files = lake.existing("session_events", [folder])
            con.execute(f"CREATE OR REPLACE TEMP VIEW e AS SELECT * FROM read_parquet("
                        f"{sql_paths(e_files)})")
        path = lake.write(con, build(con, day), table, folder)
        rows += con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)}
                            ).fetchall()[0][0]
        written.append(str(path))
    publish_warehouse(lake)
    preview = markdown_preview(con, "SELECT * FROM read_parquet($f)", {"f": written}) if (
        written) else "no sessions in these days"
    con.close()
    return dg.MaterializeResult(metadata={
        "days": len(days), "days_with_data": len(written), "rows": rows,
        "seconds": round(time.perf_counter() - t0, 2), "preview": dg.MetadataValue.md(preview),
    })


def daily_mart(name: str, description: str, deps: list[str]) -> Callable:
    return dg.asset(
        name=name,
        description=description,
        deps=deps,
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="marts",
        kinds={"duckdb", "parquet"},
        automation_condition=refresh_when_deps_change(),
    )


@daily_mart("kpis_daily", "Visitors, sessions, pageviews, events, bounce rate, average "
            "duration and conversions per day.", ["sessions"])
def kpis_daily(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    return run_daily(context, lake.open(), "kpis_daily", lambda con, day: KPIS_SQL)


@daily_mart("pages_daily", "Per page and day: pageviews, visitors, entries, exits and the "
            "average deepest scroll.", ["sessions", "session_events"])
def pages_daily(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    return run_daily(context, lake.open(), "pages_daily", lambda con, day: PAGES_SQL,
                     with_events=True)


@daily_mart("attribution_daily", "Sessions, visitors, pageviews, bounces and conversions per "
            "day and source / medium / campaign.", ["sessions"])
def attribution_daily(context: dg.AssetExecutionContext, lake: LakeResource
                      ) -> dg.MaterializeResult:
    return run_daily(context, lake.open(), "attribution_daily", lambda con, day: ATTRIBUTION_SQL)

