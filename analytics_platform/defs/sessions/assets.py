"""``sessions`` and ``session_events``: one day of sessions from every hour that can hold them.

Which raw hours hold the events of the sessions that start on day D (SPEC §4)?

- An event's ``ts`` is never after its arrival, so a session starting on D has all its events in
  raw hours from D 00:00 on — less the few minutes a Firehose buffer can straddle, and we read
  ``session_lookback_hours`` (3) before midnight. Reading those hours also shows sessions that
  began the day before (their first events are there), which are left to that day.
- They arrive until D + 1 day + ``late_arrival_hours``: the window after which the day is final.
- Events that arrive later still are filed by the events asset under ``late_events/ts_date=…``;
  the window's events plus those of dates D and D+1 that arrived after the window are read, so
  a re-materialisation counts them (``late_events`` in the metadata) without scanning history.

De-duplication is over everything read, so a copy that arrived in another hour counts once.
"""

import time
from datetime import datetime, timedelta

import dagster as dg
import duckdb

from analytics_platform.config import load_referrers
from analytics_platform.defs.automation import refresh_when_deps_change
from analytics_platform.duck import connect
from analytics_platform.partitions import daily, day_folder, day_of, hour_folder
from analytics_platform.resources import LakeResource, PipelineSettings
from analytics_platform.storage import (
    FIRST_COPY_ORDER,
    Lake,
    markdown_preview,
    publish_warehouse,
)

# The day's de-duplicated human events, each with the session it belongs to. The copy of each
# event that counts is chosen on narrow rows, then only the day's winners are read in full
# (twice as fast as sorting the wide rows: 7.1 → 3.7 s on a 1M-event day). `visitor_key`: see
# the macro in duck.py.
DAY_EVENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE day_events AS
WITH read AS NOT MATERIALIZED (
    {{sources}}
),
-- Which copy of each event counts (the earliest arrival), decided on a few narrow columns: the
-- wide rows are never sorted. A row is one line of one object: (raw_key, raw_pos).
kept AS (
    SELECT raw_key, raw_pos, session_id, ts FROM read
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {FIRST_COPY_ORDER}) = 1
),
day_sessions AS (
    SELECT session_id, CAST(min(ts) AS DATE) AS session_date FROM kept GROUP BY session_id
    HAVING CAST(min(ts) AS DATE) = $day::DATE
),
day_rows AS (
    SELECT k.raw_key, k.raw_pos, s.session_date
    FROM kept k JOIN day_sessions s USING (session_id)
)
SELECT r.*, d.session_date, visitor_key(r.visitor_id) AS visitor_key
FROM read r JOIN day_rows d USING (raw_key, raw_pos)
"""

# One row per session (SPEC §4). Ties on ts are broken by the smaller event_id.
SESSIONS_SQL = """
WITH per_session AS (
    SELECT
        session_id,
        min(ts) AS session_start,
        max(ts) AS session_end,
        any_value(session_date) AS session_date,
        date_diff('millisecond', min(ts), max(ts)) / 1000.0 AS duration_s,
        first(visitor_id ORDER BY ts, event_id) AS visitor_id,
        count(*) AS events,
        count(*) FILTER (event_type = 'page_view') AS pageviews,
        first(page_path ORDER BY ts, event_id) FILTER (event_type = 'page_view') AS entry_page,
        first(page_path ORDER BY ts DESC, event_id) FILTER (event_type = 'page_view')
            AS exit_page,
        coalesce(max(try_cast(props::JSON->>'depth' AS DOUBLE))
                 FILTER (event_type = 'scroll_depth'), 0)::INTEGER AS max_scroll_depth,
        coalesce(max(try_cast(props::JSON->>'seconds' AS DOUBLE))
                 FILTER (event_type = 'time_on_page'), 0)::INTEGER AS max_time_on_page,
        count(*) FILTER (event_type IN ('cta_click', 'form_start', 'form_submit'))
            AS interactions,
        count(*) FILTER (event_type = 'cta_click') > 0 AS converted,
        first({'experiment': props::JSON->>'experiment', 'variant': props::JSON->>'variant'}
              ORDER BY ts, event_id) FILTER (props::JSON->>'experiment' IS NOT NULL) AS exp,
        first(browser ORDER BY ts, event_id) AS browser,
        first(os ORDER BY ts, event_id) AS os,
        first(device_type ORDER BY ts, event_id) AS device_type,
        first(screen_width ORDER BY ts, event_id) AS screen_width,
        -- attribution touch: the first page_view, or the first event when there is none
        coalesce(
            first({'utm_source': utm_source, 'utm_medium': utm_medium,
                   'utm_campaign': utm_campaign, 'referrer_host': referrer_host,
                   'page_host': page_host} ORDER BY ts, event_id)
                FILTER (event_type = 'page_view'),
            first({'utm_source': utm_source, 'utm_medium': utm_medium,
                   'utm_campaign': utm_campaign, 'referrer_host': referrer_host,
                   'page_host': page_host} ORDER BY ts, event_id)
        ) AS touch
    FROM day_events
    GROUP BY session_id
),
touches AS (
    SELECT session_id,
           nullif(trim(touch.utm_source), '') AS utm_source,
           nullif(trim(touch.utm_medium), '') AS utm_medium,
           nullif(trim(touch.utm_campaign), '') AS utm_campaign,
           touch.referrer_host AS referrer_host,
           regexp_replace(lower(touch.page_host), '^www\\.', '') AS own_host
    FROM per_session
),
-- The referrer table, matched once per distinct host; the most specific pattern wins.
ref_map AS (
    SELECT h.host,
           arg_max(r.source, r.priority * 10000 + length(r.pattern)) AS source,
           arg_max(r.medium, r.priority * 10000 + length(r.pattern)) AS medium
    FROM (SELECT DISTINCT referrer_host AS host FROM touches WHERE referrer_host IS NOT NULL) h
    JOIN referrers r ON regexp_full_match(h.host, r.regex)
    GROUP BY h.host
),
attributed AS (
    SELECT t.session_id,
           CASE
               WHEN t.utm_source IS NOT NULL THEN lower(t.utm_source)
               WHEN t.referrer_host IS NOT NULL AND NOT coalesce(
                        t.referrer_host = t.own_host OR t.referrer_host LIKE '%.' || t.own_host,
                        false)
                   THEN coalesce(m.source, t.referrer_host)
               ELSE '(direct)'
           END AS source,
           CASE
               WHEN t.utm_source IS NOT NULL THEN coalesce(lower(t.utm_medium), '(none)')
               WHEN t.referrer_host IS NOT NULL AND NOT coalesce(
                        t.referrer_host = t.own_host OR t.referrer_host LIKE '%.' || t.own_host,
                        false)
                   THEN coalesce(m.medium, 'referral')
               ELSE '(none)'
           END AS medium,
           CASE WHEN t.utm_source IS NOT NULL THEN coalesce(t.utm_campaign, '(none)')
                ELSE '(none)' END AS campaign
    FROM touches t LEFT JOIN ref_map m ON m.host = t.referrer_host
)
SELECT
    s.session_id, s.session_start, s.session_end, s.session_date, s.duration_s, s.visitor_id,
    visitor_key(s.visitor_id) AS visitor_key,
    s.events, s.pageviews, s.entry_page, s.exit_page, s.max_scroll_depth, s.max_time_on_page,
    s.interactions, s.pageviews = 1 AND s.interactions = 0 AS is_bounce, s.converted,
    a.source, a.medium, a.campaign,
    s.exp.experiment AS experiment, s.exp.variant AS variant,
    s.browser, s.os, s.device_type, s.screen_width
FROM per_session s JOIN attributed a USING (session_id)
ORDER BY s.session_start, s.session_id
"""


def day_inputs(lake: Lake, day: datetime, lookback_hours: int, late_hours: int
               ) -> tuple[list[str], list[str], datetime]:
    """(events files of the day's window, late-events files to add, end of the window)."""
    first = day - timedelta(hours=lookback_hours)
    window_end = day + timedelta(days=1, hours=late_hours)
    hours = []
    h = first
    while h <= window_end:
        hours.append(hour_folder(h))
        h += timedelta(hours=1)
    late = []
    for d in (day, day + timedelta(days=1)):
        late += lake.files("late_events", f"ts_date={d:%Y-%m-%d}")
    return lake.existing("events", hours), late, window_end


def build_day(con: duckdb.DuckDBPyConnection, lake: Lake, day: datetime,
              pipeline: PipelineSettings) -> dict[str, int]:
    """Write the ``sessions`` and ``session_events`` partitions of one day (the referrer table
    is registered on ``con`` as ``referrers``)."""
    window, late, window_end = day_inputs(lake, day, pipeline.session_lookback_hours,
                                          pipeline.late_arrival_hours)
    folder = day_folder(day)
    if not window and not late:
        lake.remove("sessions", folder)
        lake.remove("session_events", folder)
        return {"sessions": 0, "events": 0, "late_events": 0, "input_files": 0}
    sources = []
    if window:
        sources.append("SELECT * FROM read_parquet($window, union_by_name = true)")
    if late:
        # only what arrived after the window: the rest is in the window's files already
        sources.append("SELECT * FROM read_parquet($late, union_by_name = true) "
                       "WHERE raw_hour > $window_end::TIMESTAMP")
    params: dict = {"day": day.date().isoformat()}
    if window:
        params["window"] = window
    if late:
        params["late"] = late
        params["window_end"] = window_end.replace(tzinfo=None)
    con.execute(DAY_EVENTS_SQL.format(sources="\n    UNION ALL BY NAME\n    ".join(sources)),
                params)
    lake.write(con, "SELECT * FROM day_events ORDER BY session_id, ts, event_id",
               "session_events", folder)
    lake.write(con, SESSIONS_SQL, "sessions", folder)
    n_sessions, n_events, n_late = con.execute(
        "SELECT count(DISTINCT session_id), count(*), "
        "count(*) FILTER (raw_hour > $window_end::TIMESTAMP) FROM day_events",
        {"window_end": window_end.replace(tzinfo=None)},
    ).fetchall()[0]
    return {"sessions": n_sessions, "events": n_events, "late_events": n_late,
            "input_files": len(window) + len(late)}


# A day reads the hours of the day before (for sessions begun then), the day, and up to two
# days after (late arrivals); the exact window is in `day_inputs`.
SPEC_COMMON = {
    "deps": [dg.AssetDep("events", partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-1, end_offset=2, allow_nonexistent_upstream_partitions=True))],
    "kinds": {"duckdb", "parquet"},
    "group_name": "sessions",
    "automation_condition": refresh_when_deps_change(),
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "sessions",
            description="One row per session (SPEC §4): start, end, duration, visitor, pages, "
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
    check_specs=[dg.AssetCheckSpec("sessions_reconcile_with_events", asset="sessions")],
)
def sessions(context: dg.AssetExecutionContext, lake: LakeResource, pipeline: PipelineSettings):
    """Sessions and their events, one day at a time (see the module docstring for the window)."""
    from analytics_platform.defs.sessions.checks import reconcile

    out = lake.open()
    con = connect()
    con.register("referrers", load_referrers(pipeline.referrers_file))
    t0 = time.perf_counter()
    days = sorted(day_of(k) for k in context.partition_keys)
    totals = {"sessions": 0, "events": 0, "late_events": 0, "input_files": 0}
    for i, day in enumerate(days, 1):
        for k, v in build_day(con, out, day, pipeline).items():
            totals[k] += v
        context.log.info(f"sessions: {i}/{len(days)} days, {totals['sessions']:,} sessions")
    publish_warehouse(out)
    check = reconcile(con, out, days, pipeline)
    seconds = round(time.perf_counter() - t0, 2)
    preview = ""
    files = out.existing("sessions", [day_folder(d) for d in days])
    if files:
        preview = markdown_preview(
            con,
            "SELECT session_date, count(*) AS sessions, sum(events) AS events, "
            "round(avg(is_bounce::INT), 3) AS bounce_rate, sum(converted::INT) AS conversions "
            "FROM read_parquet($f) GROUP BY 1 ORDER BY 1", {"f": files}, limit=31,
        )
    con.close()
    yield dg.MaterializeResult(
        asset_key="sessions",
        metadata={"days": len(days), **totals, "seconds": seconds,
                  "preview": dg.MetadataValue.md(preview)},
    )
    yield dg.MaterializeResult(asset_key="session_events",
                               metadata={"days": len(days), "events": totals["events"]})
    yield check
