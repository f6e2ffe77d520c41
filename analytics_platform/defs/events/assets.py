"""``events`` and ``quarantine``: one raw hour → cleaned, de-duplicated, human events (SPEC §3)."""


import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from analytics_platform.defs.events.reader import chunks, read_lines
from analytics_platform.defs.events.user_agents import classify_table, warm_up
from analytics_platform.defs.events.validation import (
    EXTRACTED,
    field_text_sql,
    field_type_sql,
    validated_sql,
)
from analytics_platform.duck import connect
from analytics_platform.lake import RawLake, RawObject
from analytics_platform.partitions import hour_folder, hourly, hours_of
from analytics_platform.resources import LakeResource, PipelineSettings, RawLakeResource
from analytics_platform.storage import (
    FIRST_COPY_ORDER,
    Lake,
    markdown_table,
    publish_warehouse,
    sql_paths,
)

QUARANTINE_TEXT_CHARS = 4096

# Reads the next chunk of raw objects while DuckDB cleans the current one (and warms up the
# user-agent parser during the first).
_PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-prefetch")

# Records, one per line (each line still ends with its newline, which JSON allows); records
# written back to back with no newline ("}{", as Firehose does when nothing appends one) are
# split apart, each piece then stands or falls on its own. `line` is kept only where the bytes
# are not UTF-8, for the quarantine to show them.
RECORDS_SQL = """
WITH decoded AS (
    SELECT obj, pos, line, try(decode(line)) AS text FROM raw_lines
),
checked AS (
    SELECT obj, pos, CASE WHEN text IS NULL THEN line END AS line, text,
           text IS NOT NULL AND contains(text, '}{') AND NOT json_valid(text) AS glued
    FROM decoded
),
pieces AS (
    SELECT obj, pos, line, glued,
           CASE WHEN glued THEN string_split(
                    replace(rtrim(text, chr(10)), '}{', '}' || chr(10) || '{'), chr(10))
                ELSE [text] END AS parts
    FROM checked
)
-- a whole line is piece 0 of its line; glued records are pieces 1, 2, …
SELECT o.raw_hour, p.obj,
       p.pos * 1000 + CASE WHEN glued THEN generate_subscripts(parts, 1) ELSE 0 END AS raw_pos,
       p.line, unnest(parts) AS text
FROM pieces p JOIN raw_objects o USING (obj)
"""

# One statement per chunk checks every record against the contract (rules generated from
# analytics_platform.contract, on every field's JSON type and text, read in one pass over the
# record) and cleans it (SPEC §3.3–3.6); the rows go to `checked`: a bad record keeps its reason
# and text, a good one its cleaned columns. `{field}` stands for that field's value as text
# (validation.field_text_sql). `ts` corrects the device clock with sent_ts: the error cancels
# out, and an event cannot happen after it arrived.
CHECKED_SQL = """
WITH typed AS (
    SELECT
        CASE WHEN text IS NULL THEN 'invalid_json:utf8' ELSE reason END AS reason,
        CASE WHEN reason IS NOT NULL THEN text END AS text, line,
        {event_id} AS event_id,
        {event_type} AS event_type,
        utc({event_ts}) AS event_ts,
        utc({sent_ts}) AS sent_ts,
        utc({ingest_ts}) AS ingest_ts,
        {session_id} AS session_id,
        {visitor_id} AS visitor_id,
        {page_path} AS page_path,
        {page_host} AS page_host,
        {page_title} AS page_title,
        {referrer} AS referrer,
        {utm_source} AS utm_source, {utm_medium} AS utm_medium,
        {utm_campaign} AS utm_campaign, {utm_content} AS utm_content,
        {utm_term} AS utm_term,
        try_cast({screen_width} AS INTEGER) AS screen_width,
        try_cast({screen_height} AS INTEGER) AS screen_height,
        coalesce({user_agent}, '') AS user_agent,
        CASE WHEN {t_props} = 'OBJECT' THEN {props} END AS props,
        raw_hour, obj, raw_pos
    FROM ({validated})
)
SELECT
    t.reason, t.text, t.line,
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
    t.user_agent,
    scrub(t.props) AS props,
    t.raw_hour, t.obj, t.raw_pos
FROM typed t
"""

QUARANTINE_SQL = """
CREATE OR REPLACE TEMP TABLE quarantined AS
SELECT c.raw_hour, o.key AS raw_key, c.raw_pos, c.reason,
       CASE WHEN c.text IS NULL
            THEN '\\x' || left(hex(c.line), least({max_chars}, 2 * octet_length(c.line) - 2))
            ELSE scrub(left(rtrim(c.text, chr(10)), {max_chars})) END AS raw_text
FROM checked c JOIN raw_objects o USING (obj) WHERE c.reason IS NOT NULL
UNION ALL
SELECT raw_hour, key, NULL, 'corrupt_object', scrub(error) FROM corrupt_objects
"""

# Human events with their parsed user agent, one row per event_id within each hour: the
# earliest arrival wins (SPEC §3.4). Copies are rare (a retried beacon), so the window runs only
# over the event_ids seen more than once, on narrow rows, and the copies it finds are removed
# with an anti-join: ranking every row would move all of their columns through a sort, which
# cost three times as much on a million-event hour (docs/BENCHMARKS.md).
EVENTS_SQL = f"""
WITH human AS (
    SELECT c.rowid AS rid, c.raw_hour, c.event_id, c.ingest_ts, c.event_ts, c.obj, c.raw_pos
    FROM checked c JOIN user_agents ua USING (user_agent)
    WHERE c.reason IS NULL AND NOT ua.is_bot
),
copied AS (SELECT raw_hour, event_id FROM human GROUP BY ALL HAVING count(*) > 1),
later_copies AS (
    SELECT rid FROM (
        SELECT h.*, o.key AS raw_key
        FROM human h SEMI JOIN copied USING (raw_hour, event_id) JOIN raw_objects o USING (obj))
    QUALIFY row_number() OVER (PARTITION BY raw_hour, event_id ORDER BY {FIRST_COPY_ORDER}) > 1
)
SELECT c.event_id, c.event_type, c.ts, c.ingest_ts, c.event_ts, c.session_id, c.visitor_id,
       c.page_path, c.page_host, c.page_title, c.referrer_host, c.utm_source, c.utm_medium,
       c.utm_campaign, c.utm_content, c.utm_term, c.screen_width, c.screen_height,
       ua.browser, ua.os, ua.device_type, c.props, c.raw_hour, c.obj, c.raw_pos
FROM checked c JOIN user_agents ua USING (user_agent)
WHERE c.reason IS NULL AND NOT ua.is_bot AND c.rowid NOT IN (SELECT rid FROM later_copies)
"""

# One hour's events as stored, sorted. Rows carry `obj` (their object's place in the batch) and
# get their raw_key (about 105 characters) only once sorted, in a projection over the sorted rows
# (which keeps their order; a test holds it): carried through the sort, the keys were a sixth
# of what it held, and on a million-event hour it spilled 612 MB to disk under the default memory
# limit with them, 340 MB without (docs/BENCHMARKS.md).
HOUR_EVENTS_SQL = """
SELECT * EXCLUDE (obj, raw_pos), $keys[obj + 1] AS raw_key, raw_pos
FROM (SELECT * FROM {source} WHERE raw_hour = $hour ORDER BY ts, event_id)
"""

# Events that arrived after the horizon of their day's sessions are also kept apart, by the
# UTC date of ``ts``, so a later re-materialisation of those sessions still finds them without
# reading every hour since (SPEC §4, late events).
LATE_SQL = """
SELECT *, strftime(raw_hour, '%Y-%m-%dT%H') AS part, CAST(ts AS DATE) AS ts_date
FROM batch_events
WHERE raw_hour >= date_trunc('day', ts) + to_hours($late_hours::BIGINT)
"""

# Per raw hour: records read, quarantined, from bots, human (before de-duplication).
RECORD_COUNTS_SQL = """
SELECT raw_hour, count(*), count(*) FILTER (reason IS NOT NULL),
       count(*) FILTER (reason IS NULL AND is_bot), count(*) FILTER (reason IS NULL AND NOT is_bot)
FROM checked LEFT JOIN user_agents USING (user_agent) GROUP BY ALL
"""

# Per raw hour: events written, and how many of them are late (see LATE_SQL).
EVENT_COUNTS_SQL = """
SELECT raw_hour, count(*),
       count(*) FILTER (raw_hour >= date_trunc('day', ts) + to_hours($late_hours::BIGINT))
FROM batch_events GROUP BY ALL
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
    # Chunk by chunk (memory follows the chunk, not the batch): the next chunk is read and
    # decompressed on other threads while DuckDB checks this one (the first is read while the
    # statement is prepared). An hour without objects still runs once, so that its tables exist
    # (and its stale files go).
    groups = list(chunks(objects)) or [[]]
    pending = _PREFETCH.submit(read_lines, raw_lake, objects, groups[0])
    keys = [o.key for o in objects]
    con.register("raw_objects", pa.table({
        "obj": pa.array(range(len(objects)), pa.int32()),
        "key": pa.array(keys, pa.string()),
        "raw_hour": pa.array([o.hour.replace(tzinfo=None) for o in objects], pa.timestamp("us")),
    }))
    checked = CHECKED_SQL.format(validated=validated_sql(f"({RECORDS_SQL})", raw=True),
                                 t_props=field_type_sql("props"),
                                 **{f.name: field_text_sql(f.name) for f in EXTRACTED})
    corrupt: list[tuple[RawObject, str]] = []
    for n in range(len(groups)):
        raw = pending.result()
        pending = (_PREFETCH.submit(read_lines, raw_lake, objects, groups[n + 1])
                   if n + 1 < len(groups) else None)
        corrupt += raw.corrupt
        con.register("raw_lines", raw.lines)
        if n == 0:
            # ua-parser compiles its rules on its first parse (0.15 s in a fresh step process):
            # done while DuckDB checks this chunk, not after.
            warm = _PREFETCH.submit(warm_up)
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {checked}" if n == 0
                    else f"INSERT INTO checked {checked}")
        con.unregister("raw_lines")
        del raw
    con.register("corrupt_objects", pa.table({
        "key": pa.array([o.key for o, _ in corrupt], pa.string()),
        "error": pa.array([e for _, e in corrupt], pa.string()),
        "raw_hour": pa.array([o.hour.replace(tzinfo=None) for o, _ in corrupt],
                             pa.timestamp("us")),
    }))
    con.execute(QUARANTINE_SQL.format(max_chars=QUARANTINE_TEXT_CHARS))
    # User agents are parsed once per distinct value (the libraries are Python).
    warm.result()
    agents = [r[0] for r in con.execute(
        "SELECT DISTINCT user_agent FROM checked WHERE reason IS NULL").fetchall()]
    con.register("user_agents", classify_table(agents))

    hours = [h for h, _ in batch]
    folders = [hour_folder(h) for h in hours]
    stats = {h: HourStats(h, objects=len(objs), raw_bytes=sum(o.size for o in objs))
             for h, objs in batch}
    human: dict[datetime, int] = {}
    for hour, records, quarantined, bots, humans in con.execute(RECORD_COUNTS_SQL).fetchall():
        hour = hour.replace(tzinfo=UTC)
        stats[hour].records, stats[hour].quarantined, stats[hour].bots = records, quarantined, bots
        human[hour] = humans
    # Each hour's events go to their own file, sorted (the same raw objects give the same file).
    # One COPY per hour, not one COPY split with PARTITION_BY, which took 2-3 s more on a
    # million-event hour; several hours are de-duplicated once into a table first. An hour that
    # now has no events loses the file an earlier run left (re-materialising replaces).
    source = f"({EVENTS_SQL})"
    if sum(1 for n in human.values() if n) > 1:
        con.execute(f"CREATE OR REPLACE TEMP TABLE deduped AS {EVENTS_SQL}")
        source = "deduped"
    written: list[Path] = []
    for hour, folder in zip(hours, folders, strict=True):
        if human.get(hour):
            written.append(lake.write(
                con, HOUR_EVENTS_SQL.format(source=source), "events", folder,
                {"hour": hour.replace(tzinfo=None), "keys": keys}))
        else:
            path = lake.partition_path("events", folder)
            if path.exists() or lake.remote is not None:
                lake.delete(path)
    con.execute("DROP TABLE IF EXISTS deduped")
    # What follows reads the events back from their files.
    con.execute("CREATE OR REPLACE TEMP VIEW batch_events AS " + (
        f"SELECT * FROM read_parquet({sql_paths(map(str, written))})" if written
        else "SELECT * EXCLUDE (obj, raw_pos), NULL::VARCHAR AS raw_key, raw_pos "
             f"FROM ({EVENTS_SQL}) LIMIT 0"))
    written = lake.write_partitioned(
        con, "SELECT *, strftime(raw_hour, '%Y-%m-%dT%H') AS part FROM quarantined "
        "ORDER BY raw_key, raw_pos", ["part"],
        lambda v: lake.partition_path("quarantine", f"hour={v['part']}"))
    for folder in folders:
        path = lake.partition_path("quarantine", folder)
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

    for hour, events, late in con.execute(EVENT_COUNTS_SQL,
                                          {"late_hours": late_hours}).fetchall():
        st = stats[hour.replace(tzinfo=UTC)]
        st.events, st.late_events = events, late
    for hour, st in stats.items():
        st.duplicates = human.get(hour, 0) - st.events
    for hour, reason, n in con.execute(
        "SELECT raw_hour, reason, count(*) FROM quarantined GROUP BY ALL"
    ).fetchall():
        st = stats[hour.replace(tzinfo=UTC)]
        st.reasons[reason] = n
        if reason == "corrupt_object":
            st.corrupt_objects = n
    for name in ("raw_objects", "corrupt_objects", "user_agents"):
        con.unregister(name)
    con.execute("DROP VIEW batch_events; DROP TABLE checked; DROP TABLE quarantined")
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
