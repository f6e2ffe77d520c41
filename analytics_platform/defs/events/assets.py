"""``events`` and ``quarantine``: one raw hour → cleaned, de-duplicated, human events (SPEC §3)."""


import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
import duckdb
import pyarrow as pa

from analytics_platform.defs.events.reader import read_hour
from analytics_platform.defs.events.user_agents import classify_table
from analytics_platform.defs.events.validation import EXTRACTED, validated_sql, value_sql
from analytics_platform.duck import connect
from analytics_platform.lake import RawLake, RawObject
from analytics_platform.partitions import hour_folder, hourly, hours_of
from analytics_platform.resources import LakeResource, PipelineSettings, RawLakeResource
from analytics_platform.storage import Lake, markdown_table, publish_warehouse

QUARANTINE_TEXT_CHARS = 4096

# Records, one per line; records written back to back with no newline ("}{", as Firehose does
# when nothing appends one) are split apart, each piece then stands or falls on its own.
RECORDS_SQL = """
CREATE OR REPLACE TEMP TABLE records AS
WITH decoded AS (
    SELECT obj, pos, line, try(decode(line)) AS text FROM raw_lines
),
pieces AS (
    SELECT obj, pos, 0 AS sub, line, text FROM decoded
    WHERE text IS NULL OR json_valid(text) OR NOT contains(text, '}{')
    UNION ALL
    SELECT obj, pos, generate_subscripts(parts, 1) AS sub, NULL AS line, unnest(parts) AS text
    FROM (
        SELECT obj, pos, string_split(replace(text, '}{', '}' || chr(10) || '{'), chr(10)) AS parts
        FROM decoded
        WHERE text IS NOT NULL AND NOT json_valid(text) AND contains(text, '}{')
    )
)
SELECT p.obj, o.raw_hour, o.key AS raw_key, p.pos * 1000 + p.sub AS raw_pos, p.line, p.text,
       try(json(p.text)) AS j
FROM pieces p JOIN raw_objects o USING (obj)
"""

# The contract's rules (generated from analytics_platform.contract), on every field's JSON value
# extracted in a single parse of the record.
REASONED_SQL = """
CREATE OR REPLACE TEMP TABLE reasoned AS
SELECT * REPLACE (CASE WHEN text IS NULL THEN 'invalid_json:utf8' ELSE reason END AS reason)
FROM ({validated})
"""

QUARANTINE_SQL = """
CREATE OR REPLACE TEMP TABLE quarantined AS
SELECT raw_hour, raw_key, raw_pos, reason,
       CASE WHEN text IS NULL THEN '\\x' || left(hex(line), {max_chars})
            ELSE scrub(left(text, {max_chars})) END AS raw_text
FROM reasoned WHERE reason IS NOT NULL
UNION ALL
SELECT raw_hour, key, NULL, 'corrupt_object', scrub(error) FROM corrupt_objects
"""

# The cleaned event (SPEC §3.3–3.6). `{field}` stands for that field's extracted JSON value (see
# validation.extract_sql). `ts` corrects the device clock with sent_ts: the error cancels out,
# and an event cannot happen after it arrived.
CLEAN_SQL = """
CREATE OR REPLACE TEMP TABLE cleaned AS
WITH typed AS (
    SELECT
        {event_id}->>'$' AS event_id,
        {event_type}->>'$' AS event_type,
        utc({event_ts}->>'$') AS event_ts,
        utc({sent_ts}->>'$') AS sent_ts,
        utc({ingest_ts}->>'$') AS ingest_ts,
        {session_id}->>'$' AS session_id,
        {visitor_id}->>'$' AS visitor_id,
        {page_path}->>'$' AS page_path,
        {page_host}->>'$' AS page_host,
        {page_title}->>'$' AS page_title,
        {referrer}->>'$' AS referrer,
        {utm_source}->>'$' AS utm_source, {utm_medium}->>'$' AS utm_medium,
        {utm_campaign}->>'$' AS utm_campaign, {utm_content}->>'$' AS utm_content,
        {utm_term}->>'$' AS utm_term,
        ({screen_width}->>'$')::INTEGER AS screen_width,
        ({screen_height}->>'$')::INTEGER AS screen_height,
        coalesce({user_agent}->>'$', '') AS user_agent,
        CASE WHEN json_type({props}) = 'OBJECT' THEN {props}::VARCHAR END AS props,
        raw_hour, raw_key, raw_pos
    FROM reasoned WHERE reason IS NULL
)
SELECT
    t.event_id,
    t.event_type,
    CASE WHEN t.sent_ts IS NOT NULL AND t.sent_ts >= t.event_ts
         THEN t.ingest_ts - (t.sent_ts - t.event_ts)
         ELSE least(t.event_ts, t.ingest_ts) END AS ts,
    t.ingest_ts,
    t.event_ts,
    t.session_id,
    coalesce(t.visitor_id, t.session_id) AS visitor_id,
    scrub(regexp_replace(t.page_path, '[?#].*$', '')) AS page_path,
    scrub(lower(t.page_host)) AS page_host,
    scrub(t.page_title) AS page_title,
    nullif(scrub(regexp_replace(lower(regexp_extract(t.referrer,
        '^[A-Za-z][A-Za-z0-9+.\\-]*://(?:[^/?#@]*@)?([^/?#:]+)', 1)), '^www\\.', '')), '')
        AS referrer_host,
    scrub(t.utm_source) AS utm_source, scrub(t.utm_medium) AS utm_medium,
    scrub(t.utm_campaign) AS utm_campaign, scrub(t.utm_content) AS utm_content,
    scrub(t.utm_term) AS utm_term,
    t.screen_width, t.screen_height,
    ua.browser, ua.os, ua.device_type,
    scrub(t.props) AS props,
    t.raw_hour,
    t.raw_key, t.raw_pos,
    ua.is_bot
FROM typed t JOIN user_agents ua USING (user_agent)
"""

# One row per event_id within each hour: the earliest arrival wins (SPEC §3.4).
EVENTS_SQL = """
CREATE OR REPLACE TEMP TABLE batch_events AS
SELECT * EXCLUDE (is_bot) FROM cleaned WHERE NOT is_bot
QUALIFY row_number() OVER (
    PARTITION BY raw_hour, event_id ORDER BY ingest_ts, event_ts, raw_key, raw_pos) = 1
"""

# Events that arrived after the horizon of their day's sessions are also kept apart, by the
# UTC date of ``ts``, so a later re-materialisation of those sessions still finds them without
# reading every hour since (SPEC §4, late events).
LATE_SQL = """
SELECT *, strftime(raw_hour, '%Y-%m-%dT%H') AS part, CAST(ts AS DATE) AS ts_date
FROM batch_events
WHERE raw_hour >= date_trunc('day', ts) + to_hours($late_hours::BIGINT)
"""

STATS_SQL = """
WITH r AS (SELECT raw_hour, count(*) AS records FROM records GROUP BY ALL),
q AS (SELECT raw_hour, count(*) AS quarantined FROM reasoned WHERE reason IS NOT NULL
      GROUP BY ALL),
c AS (SELECT raw_hour, count(*) FILTER (is_bot) AS bots, count(*) FILTER (NOT is_bot) AS human
      FROM cleaned GROUP BY ALL),
e AS (SELECT raw_hour, count(*) AS events,
             count(*) FILTER (raw_hour >= date_trunc('day', ts)
                              + to_hours($late_hours::BIGINT)) AS late
      FROM batch_events GROUP BY ALL)
SELECT h.raw_hour, coalesce(r.records, 0), coalesce(q.quarantined, 0), coalesce(c.bots, 0),
       coalesce(c.human, 0), coalesce(e.events, 0), coalesce(e.late, 0)
FROM (SELECT DISTINCT raw_hour FROM raw_objects) h
LEFT JOIN r USING (raw_hour) LEFT JOIN q USING (raw_hour) LEFT JOIN c USING (raw_hour)
LEFT JOIN e USING (raw_hour)
"""


@dataclass
class HourStats:
    hour: datetime
    objects: int = 0
    raw_bytes: int = 0
    records: int = 0
    quarantined: int = 0
    corrupt_objects: int = 0
    bots: int = 0
    duplicates: int = 0
    events: int = 0
    late_events: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


# A batch of hours is cleaned in one pass (statement overheads paid once per batch, not per
# hour), up to this much raw text.
BATCH_BYTES = 256 * 1024 * 1024
BATCH_HOURS = 48


def process_hours(
    con: duckdb.DuckDBPyConnection, raw_lake: RawLake, lake: Lake, hours: list[datetime],
    late_hours: int,
) -> list[HourStats]:
    """Clean raw hours and write their ``events``, ``quarantine`` and late-event partitions."""
    out: list[HourStats] = []
    batch: list[tuple[datetime, list[RawObject]]] = []
    size = 0
    for hour in hours:
        objects = raw_lake.list_hour(hour)
        batch.append((hour, objects))
        size += sum(o.size for o in objects) * 10  # gzip'd JSON inflates about tenfold
        if size >= BATCH_BYTES or len(batch) >= BATCH_HOURS:
            out += _process_batch(con, raw_lake, lake, batch, late_hours)
            batch, size = [], 0
    if batch:
        out += _process_batch(con, raw_lake, lake, batch, late_hours)
    return out


def _process_batch(
    con: duckdb.DuckDBPyConnection, raw_lake: RawLake, lake: Lake,
    batch: list[tuple[datetime, list[RawObject]]], late_hours: int,
) -> list[HourStats]:
    objects = [o for _, objs in batch for o in objs]
    raw = read_hour(raw_lake, objects)
    con.register("raw_lines", raw.lines)
    con.register("raw_objects", pa.table({
        "obj": pa.array(range(len(objects)), pa.int32()),
        "key": pa.array([o.key for o in objects], pa.string()),
        "raw_hour": pa.array([o.hour.replace(tzinfo=None) for o in objects], pa.timestamp("us")),
    }))
    con.register("corrupt_objects", pa.table({
        "key": pa.array([o.key for o, _ in raw.corrupt], pa.string()),
        "error": pa.array([e for _, e in raw.corrupt], pa.string()),
        "raw_hour": pa.array([o.hour.replace(tzinfo=None) for o, _ in raw.corrupt],
                             pa.timestamp("us")),
    }))
    con.execute(RECORDS_SQL)
    con.execute(REASONED_SQL.format(validated=validated_sql("records", raw=True)))
    con.execute(QUARANTINE_SQL.format(max_chars=QUARANTINE_TEXT_CHARS))
    agents = [r[0] for r in con.execute(
        "SELECT DISTINCT coalesce(j->>'user_agent', '') FROM reasoned WHERE reason IS NULL"
    ).fetchall()]
    con.register("user_agents", classify_table(agents))
    con.execute(CLEAN_SQL.format(**{f.name: value_sql(f.name) for f in EXTRACTED}))
    con.execute(EVENTS_SQL)

    # Every hour of the batch is written in one pass; an hour that now has no rows loses the
    # file an earlier run left (re-materialising replaces, never appends).
    hours = [h for h, _ in batch]
    folders = [hour_folder(h) for h in hours]
    for table, source, order in (("events", "batch_events", "ts, event_id"),
                                 ("quarantine", "quarantined", "raw_key, raw_pos")):
        written = lake.write_partitioned(
            con, f"SELECT *, strftime(raw_hour, '%Y-%m-%dT%H') AS part FROM {source} "
            f"ORDER BY {order}", ["part"],
            lambda v, t=table: lake.partition_path(t, f"hour={v['part']}"))
        for folder in folders:
            path = lake.partition_path(table, folder)
            if path not in written and (path.exists() or lake.remote is not None):
                lake.delete(path)
    # Late events, filed by the date of their ts (see LATE_SQL).
    late_written = lake.write_partitioned(
        con, LATE_SQL, ["ts_date", "part"],
        lambda v: lake.partition_path("late_events", f"ts_date={v['ts_date']}",
                                      f"hour={v['part']}"),
        {"late_hours": late_hours})
    for stale in lake.named("late_events", {f"{folder}.parquet" for folder in folders}):
        if stale not in late_written:
            lake.delete(stale)

    stats = {h: HourStats(h) for h in hours}
    for h, objs in batch:
        stats[h].objects = len(objs)
        stats[h].raw_bytes = sum(o.size for o in objs)
    for row in con.execute(STATS_SQL, {"late_hours": late_hours}).fetchall():
        st = stats[row[0].replace(tzinfo=UTC)]
        st.records, st.quarantined, st.bots, human, st.events, st.late_events = row[1:]
        st.duplicates = human - st.events
    for hour, reason, n in con.execute(
        "SELECT raw_hour, reason, count(*) FROM quarantined GROUP BY ALL"
    ).fetchall():
        st = stats[hour.replace(tzinfo=UTC)]
        st.reasons[reason] = n
        if reason == "corrupt_object":
            st.corrupt_objects = n
    for name in ("raw_lines", "raw_objects", "corrupt_objects", "user_agents"):
        con.unregister(name)
    con.execute("DROP TABLE records; DROP TABLE reasoned; DROP TABLE cleaned; "
                "DROP TABLE quarantined; DROP TABLE batch_events")
    return [stats[h] for h in hours]


def _markdown(rows: list[HourStats], limit: int = 48) -> str:
    return markdown_table(
        ["hour", "objects", "records", "events", "quarantined", "bots", "duplicates", "late"],
        [(f"{s.hour:%Y-%m-%d %H:00}", s.objects, s.records, s.events, s.quarantined, s.bots,
          s.duplicates, s.late_events) for s in rows[:limit]],
        more=max(0, len(rows) - limit))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "events",
            description="Cleaned, human, de-duplicated events: one Parquet file per raw hour "
            "(the `hour=` folder the objects landed in). See the step's description.",
            kinds={"duckdb", "parquet"},
            group_name="clean",
        ),
        dg.AssetSpec(
            "quarantine",
            description="Records that broke the event contract (with the rule they broke, the "
            "object and line they came from and their scrubbed text, cut to 4 KiB), and objects "
            "that could not be decompressed (`corrupt_object`). Nothing is dropped silently.",
            kinds={"duckdb", "parquet"},
            group_name="clean",
        ),
    ],
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec("event_id_unique_and_not_null", asset="events"),
        dg.AssetCheckSpec("quarantine_share", asset="events"),
    ],
)
def events(
    context: dg.AssetExecutionContext,
    raw_lake: RawLakeResource,
    lake: LakeResource,
    pipeline: PipelineSettings,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Cleaned events, one Parquet file per raw hour (the `hour=` folder the objects landed in).

    Parses every record of the hour against the event contract (bad ones go to `quarantine` with
    their reason), drops bots (crawlers, headless browsers, HTTP libraries), corrects the device
    clock with `sent_ts`, scrubs query strings, referrer paths, e-mail and IP addresses, parses
    the user agent into browser / OS / device type, and keeps one row per `event_id` (earliest
    arrival). Copies that arrive in a later hour are removed by the `events` view and by
    `sessions`. Also writes the `quarantine` partition of the same hour.
    """
    from analytics_platform.defs.events.checks import events_check_results

    raw, out = raw_lake.open(), lake.open()
    hours = hours_of(context.partition_keys)
    con = connect()
    t0 = time.perf_counter()
    rows: list[HourStats] = []
    for i in range(0, len(hours), BATCH_HOURS):
        rows += process_hours(con, raw, out, hours[i : i + BATCH_HOURS],
                              pipeline.late_arrival_hours)
        done = sum(s.records for s in rows)
        context.log.info(f"events: {len(rows)}/{len(hours)} hours, {done:,} records, "
                         f"{done / (time.perf_counter() - t0):,.0f} records/s")
    seconds = time.perf_counter() - t0
    publish_warehouse(out)
    total = HourStats(hours[0])
    for s in rows:
        for k in ("objects", "raw_bytes", "records", "quarantined", "corrupt_objects", "bots",
                  "duplicates", "events", "late_events"):
            setattr(total, k, getattr(total, k) + getattr(s, k))
        for r, n in s.reasons.items():
            total.reasons[r] = total.reasons.get(r, 0) + n
    checks = events_check_results(con, out, hours, rows, pipeline.quarantine_warn_share)
    con.close()
    yield dg.MaterializeResult(
        asset_key="quarantine",
        metadata={"quarantined": total.quarantined, "corrupt_objects": total.corrupt_objects,
                  "reasons": dg.MetadataValue.json(total.reasons)},
    )
    yield dg.MaterializeResult(
        asset_key="events",
        metadata={
            "hours": len(hours),
            "raw_objects": total.objects,
            "raw_mb": round(total.raw_bytes / 1e6, 2),
            "records_in": total.records,
            "events_out": total.events,
            "quarantined": total.quarantined,
            "corrupt_objects": total.corrupt_objects,
            "bot_events": total.bots,
            "duplicates_removed": total.duplicates,
            "late_events": total.late_events,
            "quarantine_reasons": dg.MetadataValue.json(total.reasons),
            "seconds": round(seconds, 2),
            "records_per_second": round(total.records / seconds) if seconds else 0,
            "per_hour": dg.MetadataValue.md(_markdown(rows)),
        },
    )
    yield from checks
