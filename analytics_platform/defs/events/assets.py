"""``events`` and ``quarantine``: one raw hour → cleaned, de-duplicated, human events (CONTRACT §3).

The statements are in ``sql/`` beside this file (records → checked → quarantine / human →
later_copies, events → hour_events, late_events); the contract's rules are generated
(``validation.py``).
"""


import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from analytics_platform import layout, sql
from analytics_platform.defs.automation import CLEAN
from analytics_platform.defs.automation.records import (
    hour_metadata,
    raw_fingerprints,
    session_days,
    snapshot_sessions,
)
from analytics_platform.defs.events.checks import (
    QUARANTINE_SHARE_DESCRIPTION,
    UNIQUE_IDS_DESCRIPTION,
    events_check_results,
)
from analytics_platform.defs.events.reader import CHUNK_GZ_BYTES, chunks, objects_table, read_lines
from analytics_platform.defs.events.stats import HourStats, total
from analytics_platform.defs.events.user_agents import classify_table, warm_up
from analytics_platform.defs.events.validation import (
    EXTRACTED,
    field_text_sql,
    validated_sql,
)
from analytics_platform.defs.metadata import column_schema, record_partitions
from analytics_platform.duck import connect, memory_limit_bytes, props_kept_sql, scrub_maybe_sql
from analytics_platform.lake import RawLake, RawObject, partition_key
from analytics_platform.partitions import hourly, hours_of
from analytics_platform.resources import LakeResource, PipelineSettings, RawLakeResource
from analytics_platform.storage import (
    FIRST_COPY_ORDER,
    Lake,
    markdown_table,
    publish_after_step,
)
from analytics_platform.workers import Worker, run_jobs

QUARANTINE_TEXT_CHARS = 4096

# Reads the next chunk of raw objects while DuckDB cleans the current one (and warms up the
# user-agent parser during the first).
_PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-prefetch")


# A batch of hours is cleaned in one pass (statement overheads paid once per batch, not per
# hour), up to this much raw text. 48 hours of 20k records (985k, 2026-12-06, 5 paired runs, one
# connection): 256 MB (4 batches) 27.6-33.4 CPU-s, peak 1,069-1,096 MB; 512 MB 1.9 CPU-s less,
# peak 1,214-1,249 MB. Two or more batches are cleaned by WORKERS at once (below), which holds
# each to a smaller share of the memory.
BATCH_BYTES = 256 * 1024 * 1024
BATCH_HOURS = 48
# Batches cleaned at once, each on a thread with a DuckDB connection of its own (one DuckDB thread,
# WORKER_MEMORY_SHARE of the memory, chunks of WORKER_CHUNK_GZ_BYTES). One connection keeps only
# ~1.65 of the 2 cores busy: part of each chunk's work is single-threaded (planning, Arrow,
# Python), and two workers fill those gaps. 192 hours of the 30-day lake (3.95M records,
# 2026-12-06, idle machine, two pairs, each worker taking the next batch): 71.2 s (67.9, 74.5) with
# one connection at 512 MB batches and 24 MB chunks, 61.5 s (61.0, 61.9) with two workers, -14 %,
# for 2 % more CPU, peak RSS 1,259-1,281 -> 1,028-1,069 MB; the same files and counts. Two workers
# of two DuckDB threads each were slower (the cores oversubscribed), and a worker's batch per
# 48-hour call left one idle while the other finished: no gain.
WORKERS = 2
WORKER_MEMORY_SHARE = 0.4  # of the step's DuckDB memory ($ANALYTICS_DUCKDB_MEMORY): 400 MB of 1 GB
WORKER_THREADS = 1
# 16 MB, measured again once the chunk's statement lost its scrubs (96 hours, 1.98M records,
# 2026-12-07, 6 runs each, alternating): 40.6-51.5 CPU-s against 39.9-54.2 at 8 MB (medians 45.9
# and 46.3, within the machine's noise), peak RSS 1,167-1,222 MB against 937-977: not taken.
WORKER_CHUNK_GZ_BYTES = 8 * 1024 * 1024


# The page and source texts checked.sql keeps cleaned (clean_text.sql), once per distinct text,
# with whether scrub could change them (TEXTS_CHECKED, duck.scrub_maybe_sql): those are scrubbed
# once per batch (texts_scrubbed.sql), not in every chunk's statement, whose plan held the
# macro's dozen regular expressions: a chunk of an hour of the 30-day lake (32k records, one
# thread, the two forms interleaved in one process, 2026-12-07) 0.406-0.590 -> 0.375-0.547
# CPU-s, an empty one 0.078-0.108 -> 0.048-0.069; no record of its 96 hours needs the scrub.
CLEANED_TEXTS = ("page_path", "page_host", "page_title", "referrer", "utm_source", "utm_medium",
                 "utm_campaign", "utm_content", "utm_term")
TEXTS_CHECKED = ("texts_unscrubbed", scrub_maybe_sql("clean"))
# checked's column of each cleaned text: of a referrer only its host is kept (checked.sql)
_TEXT_COLUMNS = tuple("referrer_host" if f == "referrer" else f for f in CLEANED_TEXTS)


@lru_cache(maxsize=1)
def _texts_scrubbed_sql() -> str:
    """texts_scrubbed.sql over checked's columns of the cleaned texts (a referrer's host that
    the scrub empties is NULL, as checked.sql makes an empty one)."""
    cols = _TEXT_COLUMNS
    return sql.load(
        "events/texts_scrubbed", columns=", ".join(cols),
        assignments=", ".join(f"{c} = s.{c}" for c in cols),
        scrubbed=", ".join(f"nullif(c_{c}.clean, '') AS {c}" if c == "referrer_host"
                           else f"c_{c}.clean AS {c}" for c in cols),
        joins="\n    ".join(f"LEFT JOIN texts c_{c} ON c_{c}.field = {sql.literal(c)} "
                            f"AND c_{c}.v = f.{c}" for c in cols))

# props as they came, and whether scrub_props could change them, once per distinct value (see
# validation.validated_sql's per_props): a props that scrub_props would only write again the same
# (duck.props_kept_sql) is kept as it is (0.26-0.32 -> 0.155 CPU-s per 195k-record chunk of
# measure 1's hour: 27k distinct props, nearly all web vitals' numbers). The others, few, are
# scrubbed once per batch after its chunks (props_scrubbed.sql): the macro in the chunk's
# statement cost 0.10-0.14 CPU-s to plan and compile in every chunk, rows or none (an empty
# chunk's statement 0.18-0.28 -> 0.12-0.20 CPU-s, 2026-12-07, loaded machine).
PROPS_CHECKED = {
    "props_text": "p_text",
    "props_unscrubbed": f"p_text IS NOT NULL AND NOT coalesce({props_kept_sql('p_text', 'pm')}, "
                        "false)",
}


@lru_cache(maxsize=1)
def _refused_texts_sql() -> str:
    """refused_texts.sql: the refused records' texts read again, records.sql over their lines
    only."""
    return sql.load("events/refused_texts",
                    records=sql.load("events/records", lines="refused_lines"))


@lru_cache(maxsize=1)
def _checked_sql() -> str:
    """checked.sql over records.sql, with the contract's validation generated between them
    (``{field}``: the text of each field checked.sql keeps; props come with whether they need
    scrub_props (PROPS_CHECKED), once per distinct value, from the validation's pass over the
    distinct props, and the page and source texts cleaned but for their scrub, with whether
    it could change them (TEXTS_CHECKED), once per distinct text)."""
    wanted = sql.placeholders("events/checked")
    return sql.load("events/checked",
                    validated=validated_sql(f"({sql.load('events/records', lines='raw_lines')})",
                                            raw=True, keep_text=False,
                                            per_props=PROPS_CHECKED,
                                            per_text=(CLEANED_TEXTS,
                                                      sql.load("events/clean_text").strip()),
                                            text_flag=TEXTS_CHECKED),
                    **{f.name: field_text_sql(f.name) for f in EXTRACTED if f.name in wanted})


def _later_copies_sql() -> str:
    return sql.load("events/later_copies", first_copy_order=FIRST_COPY_ORDER)


def process_hours(
    con: duckdb.DuckDBPyConnection, raw_lake: RawLake, lake: Lake, hours: list[datetime],
    late_hours: int, progress: Callable[[list[HourStats]], None] | None = None,
) -> list[HourStats]:
    """Clean raw hours and write their ``events``, ``quarantine`` and late-event partitions;
    their stats in the order of ``hours``. ``progress`` is called on this thread with the stats
    of each batch done.

    A single batch (one large hour, a few small ones) is cleaned in ``con``; more are cleaned
    ``WORKERS`` at a time, each worker in a connection of its own (see WORKERS)."""
    batches = list(_batches(raw_lake, hours))
    if WORKERS < 2 or len(batches) < 2:
        out: list[HourStats] = []
        for batch in batches:
            out += _process_batch(con, raw_lake, lake, batch, late_hours, _PREFETCH)
            if progress is not None:
                progress(out[-len(batch):])
        return out
    return _in_parallel(raw_lake, lake, batches, late_hours, progress)


def _batches(raw_lake: RawLake, hours: list[datetime],
             ) -> Iterator[list[tuple[datetime, list[RawObject]]]]:
    """Consecutive hours with their objects, in batches of at most ``BATCH_HOURS`` hours and
    about ``BATCH_BYTES`` of text (an hour larger than that is a batch of its own)."""
    batch: list[tuple[datetime, list[RawObject]]] = []
    size = 0
    for hour in hours:
        objects = raw_lake.list_hour(hour)
        batch.append((hour, objects))
        size += sum(o.size for o in objects) * 10  # gzip'd JSON inflates about tenfold
        if size >= BATCH_BYTES or len(batch) >= BATCH_HOURS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _in_parallel(raw_lake: RawLake, lake: Lake,
                 batches: list[list[tuple[datetime, list[RawObject]]]], late_hours: int,
                 progress: Callable[[list[HourStats]], None] | None,
                 ) -> list[HourStats]:
    """The batches on ``WORKERS`` threads (workers.run_jobs), each with its own connection
    (``WORKER_MEMORY_SHARE``, ``WORKER_THREADS``, a spill folder of its own) and prefetch
    thread, taking the next batch when done with one. This thread reports each batch done to
    ``progress``; the first error stops the other workers and is raised here."""

    def start(worker: int, stack: ExitStack) -> Worker:
        con = connect()
        spill = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        (spill / f"events-{worker}").mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {sql.literal(str(spill / f'events-{worker}'))}")
        con.execute(f"SET memory_limit = '{_worker_memory(con)}B'")
        con.execute(f"SET threads = {WORKER_THREADS}")
        prefetch = stack.enter_context(
            ThreadPoolExecutor(1, thread_name_prefix=f"raw-prefetch-{worker}"))
        return Worker(con, lambda batch: _process_batch(con, raw_lake, lake, batch, late_hours,
                                                        prefetch, WORKER_CHUNK_GZ_BYTES))

    results = run_jobs(batches, WORKERS, start, progress, name="events-worker")
    return [s for r in results for s in r]


def _worker_memory(con: duckdb.DuckDBPyConnection) -> int:
    """A worker's memory limit in bytes: WORKER_MEMORY_SHARE of ``con``'s."""
    return int(memory_limit_bytes(con) * WORKER_MEMORY_SHARE)


def _process_batch(
    con: duckdb.DuckDBPyConnection, raw_lake: RawLake, lake: Lake,
    batch: list[tuple[datetime, list[RawObject]]], late_hours: int,
    prefetch: ThreadPoolExecutor, chunk_gz_bytes: int = CHUNK_GZ_BYTES,
) -> list[HourStats]:
    """One batch of raw hours: check every record, then write each hour's files and count."""
    objects = [o for _, objs in batch for o in objs]
    keys = [o.key for o in objects]
    hours = [h for h, _ in batch]
    folders = [layout.hour_folder(h) for h in hours]
    con.register("raw_objects", objects_table(objects))
    corrupt, warm = _check_records(con, raw_lake, objects, prefetch, chunk_gz_bytes)
    _quarantine(con, corrupt)
    # User agents are parsed once per distinct value (the libraries are Python).
    warm.result()
    agents = [r[0] for r in con.execute(
        "SELECT DISTINCT user_agent FROM checked WHERE reason IS NULL").fetchall()]
    con.register("user_agents", classify_table(agents))

    stats = {h: HourStats(h, objects=len(objs), raw_bytes=sum(o.size for o in objs))
             for h, objs in batch}
    human = _count_records(con, stats)
    _write_events(con, lake, hours, folders, human, keys)
    _write_quarantine(con, lake, folders)
    _write_late_events(con, lake, folders, late_hours)
    _count_events(con, stats, human, late_hours)

    for name in ("raw_objects", "corrupt_objects", "user_agents"):
        con.unregister(name)
    con.execute("DROP VIEW batch_events; DROP TABLE later_copies; DROP VIEW human; "
                "DROP TABLE checked; DROP TABLE quarantined")
    return [stats[h] for h in hours]


def _check_records(con: duckdb.DuckDBPyConnection, raw_lake: RawLake, objects: list[RawObject],
                   prefetch: ThreadPoolExecutor, chunk_gz_bytes: int,
                   ) -> tuple[list[tuple[RawObject, str, int]], Future]:
    """Fill the table ``checked`` (checked.sql), chunk by chunk, then scrub the props and texts
    that need it (props_scrubbed.sql, texts_scrubbed.sql); returns the objects that could not be
    decompressed to their end (with the error and the line their unreadable part starts at) and
    the user-agent parser's warm-up.

    Memory follows the chunk, not the batch: the next chunk is read and decompressed on other
    threads while DuckDB checks this one (the first is read while the statement is prepared).
    An hour without objects still runs once, so that its tables exist (and its stale files go).
    """
    groups = list(chunks(objects, chunk_gz_bytes)) or [[]]
    pending: Future | None = prefetch.submit(read_lines, raw_lake, objects, groups[0])
    checked = _checked_sql()
    refused = _refused_texts_sql()
    corrupt: list[tuple[RawObject, str, int]] = []
    warm: Future | None = None
    for n in range(len(groups)):
        assert pending is not None
        raw = pending.result()
        pending = (prefetch.submit(read_lines, raw_lake, objects, groups[n + 1])
                   if n + 1 < len(groups) else None)
        corrupt += raw.corrupt
        con.register("raw_lines", raw.lines)
        if warm is None:
            # ua-parser compiles its rules on its first parse (0.15 s in a fresh step process):
            # done while DuckDB checks this chunk, not after.
            warm = prefetch.submit(warm_up)
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {checked}" if n == 0
                    else f"INSERT INTO checked {checked}")
        con.execute(refused)
        con.unregister("raw_lines")
        del raw
    props, texts = con.execute(
        "SELECT bool_or(props_unscrubbed), bool_or(texts_unscrubbed) FROM checked").fetchall()[0]
    if props:
        con.execute(sql.load("events/props_scrubbed")).fetchall()
    if texts:
        con.execute(_texts_scrubbed_sql()).fetchall()
    assert warm is not None
    return corrupt, warm


def _quarantine(con: duckdb.DuckDBPyConnection,
                corrupt: list[tuple[RawObject, str, int]], skip_empty: bool = True) -> None:
    """The table ``quarantined``: bad records and the unreadable parts of damaged objects
    (quarantine.sql).

    A batch with neither gets the table empty (quarantine_empty.sql's columns; ``skip_empty``
    False runs the statement anyway, as test_fast_paths.py does to compare) without running
    quarantine.sql, whose scrubs cost ~0.15 CPU-s to plan and compile, rows or none: the 30-day
    backfill quarantines nothing in any of its 51 batches."""
    con.register("corrupt_objects", pa.table({
        "key": pa.array([o.key for o, _, _ in corrupt], pa.string()),
        "error": pa.array([e for _, e, _ in corrupt], pa.string()),
        "line": pa.array([n for _, _, n in corrupt], pa.int64()),
        "raw_hour": pa.array([o.hour.replace(tzinfo=None) for o, _, _ in corrupt],
                             pa.timestamp("us")),
    }))
    if skip_empty and not corrupt and not con.execute(
            "SELECT bool_or(reason IS NOT NULL) FROM checked").fetchall()[0][0]:
        con.execute("CREATE OR REPLACE TEMP TABLE quarantined AS "
                    + sql.load("events/quarantine_empty"))
        return
    con.execute(sql.load("events/quarantine", max_chars=str(QUARANTINE_TEXT_CHARS)))


def _count_records(con: duckdb.DuckDBPyConnection, stats: dict[datetime, HourStats],
                   ) -> dict[datetime, int]:
    """Records, quarantined and bots per hour into ``stats``; returns the human records per
    hour (before de-duplication)."""
    human: dict[datetime, int] = {}
    for hour, records, quarantined, bots, humans in con.execute(
            sql.load("events/record_counts")).fetchall():
        hour = hour.replace(tzinfo=UTC)
        stats[hour].records, stats[hour].quarantined, stats[hour].bots = records, quarantined, bots
        human[hour] = humans
    return human


def _write_events(con: duckdb.DuckDBPyConnection, lake: Lake, hours: list[datetime],
                  folders: list[str], human: dict[datetime, int], keys: list[str]) -> None:
    """Each hour's events to their own file, sorted (the same raw objects give the same file),
    then the view ``batch_events`` over what was written.

    One COPY per hour, not one COPY split with PARTITION_BY, which took 2-3 s more on a
    million-event hour. The batch's human rows are one view (human.sql); the later copies of an
    event are found once for the batch (a temp table of their rowids, later_copies.sql); each
    hour's COPY reads its rows from that view. An
    hour that now has no events loses the file an earlier run left (re-materialising replaces).
    """
    con.execute("CREATE OR REPLACE TEMP VIEW human AS " + sql.load("events/human"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE later_copies AS {_later_copies_sql()}")
    events = sql.load("events/events")
    hour_events = sql.load("events/hour_events", source=f"({events})")
    written: list[Path] = []
    for hour, folder in zip(hours, folders, strict=True):
        if human.get(hour):
            written.append(lake.write(
                con, hour_events, "events", folder,
                {"hour": hour.replace(tzinfo=None), "keys": keys}))
        else:
            path = lake.partition_path("events", folder)
            if path.exists() or lake.remote is not None:
                lake.delete(path)
    # What follows reads the events back from their files.
    con.execute("CREATE OR REPLACE TEMP VIEW batch_events AS " + (
        f"SELECT * FROM read_parquet({sql.literal_list(map(str, written))}, "
        "hive_partitioning = false)" if written
        else "SELECT * EXCLUDE (obj, raw_pos), NULL::VARCHAR AS raw_key, raw_pos "
             f"FROM ({events}) LIMIT 0"))


def _write_sorted(con: duckdb.DuckDBPyConnection, lake: Lake, source: str, by: list[str],
                  order: str, place: Callable[[tuple], tuple[str, str, str]]) -> set[Path]:
    """One sorted file per distinct value of the columns ``by`` of ``source`` (which the files
    leave out), at ``lake.partition_path(*place(values))``; returns the files.

    A COPY per file, not one COPY with ``PARTITION_BY``: DuckDB's partitioned write does not
    keep the query's ORDER BY (duckdb/duckdb#14349): on 48 hours, 12 of the 66 late-event files
    came out unsorted, and in another order when the hours were batched differently. The COPYs
    cost ~0.1 CPU-s more on those 48 hours (0.51 against 0.40). Every column is written
    OPTIONAL, whatever the other hours of the batch hold (Lake.write: storage.NULLABLE)."""
    written: set[Path] = set()
    cols = ", ".join(by)
    where = " AND ".join(f"{c} IS NOT DISTINCT FROM ${c}" for c in by)
    for values in con.execute(f"SELECT DISTINCT {cols} FROM {source}").fetchall():
        table, partition, name = place(values)
        written.add(lake.write(
            con, f"SELECT * EXCLUDE ({cols}) FROM {source} WHERE {where} ORDER BY {order}",
            table, partition, dict(zip(by, values, strict=True)), name))
    return written


def _write_quarantine(con: duckdb.DuckDBPyConnection, lake: Lake, folders: list[str]) -> None:
    """Each hour's quarantined records to its ``quarantine/hour=…`` file; an hour with none
    loses an earlier run's file."""
    written = _write_sorted(con, lake, "(SELECT *, raw_hour AS part FROM quarantined)",
                            ["part"], "raw_key, raw_pos",
                            lambda v: ("quarantine", layout.hour_folder(v[0]), "part"))
    for folder in folders:
        path = lake.partition_path("quarantine", folder)
        if path not in written and (path.exists() or lake.remote is not None):
            lake.delete(path)


def _write_late_events(con: duckdb.DuckDBPyConnection, lake: Lake, folders: list[str],
                       late_hours: int) -> None:
    """Late events, filed by the date of their ts (late_events.sql); files an earlier run of
    these hours left and this one did not write go. Within a file (one date, one raw hour) an
    event_id is there once (events are de-duplicated per raw hour), so (ts, event_id) orders
    its rows totally: the same hours write the same bytes however they are batched."""
    con.execute("CREATE OR REPLACE TEMP TABLE late AS " + sql.load(
        "events/late_events", hour_format=sql.literal(layout.HOUR_FORMAT)),
        {"late_hours": late_hours})
    try:
        late_written = _write_sorted(
            con, lake, "late", ["ts_date", "part"], "ts, event_id",
            lambda v: (layout.LATE_EVENTS, layout.late_folder(v[0]), layout.hour_name(v[1])))
    finally:
        con.execute("DROP TABLE late")
    for stale in lake.named(layout.LATE_EVENTS, {f"{folder}.parquet" for folder in folders}):
        if stale not in late_written:
            lake.delete(stale)


def _count_events(con: duckdb.DuckDBPyConnection, stats: dict[datetime, HourStats],
                  human: dict[datetime, int], late_hours: int) -> None:
    """Events written, late events, duplicates and quarantine reasons per hour into ``stats``."""
    for hour, events, late in con.execute(sql.load("events/event_counts"),
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


def hour_figures(stats: HourStats) -> tuple[dict[str, object], dict[str, object]]:
    """What one hour's ``events`` and ``quarantine`` partitions record of it: its own figures,
    whatever run cleaned it (a run of one hour or the backfill's run of hundreds)."""
    events = {
        "records_in": stats.records,
        "events_out": stats.events,
        "quarantined": stats.quarantined,
        "corrupt_objects": stats.corrupt_objects,
        "bot_events": stats.bots,
        "duplicates_removed": stats.duplicates,
        "late_events": stats.late_events,
        "raw_objects": stats.objects,
        "raw_mb": round(stats.raw_bytes / 1e6, 2),
        "dagster/row_count": stats.events,
    }
    quarantine = {
        "quarantined": stats.quarantined,
        "corrupt_objects": stats.corrupt_objects,
        "reasons": dg.MetadataValue.json(stats.reasons),
        "dagster/row_count": stats.quarantined,
    }
    return events, quarantine


def run_metadata(rows: list[HourStats], sums: HourStats, seconds: float) -> dict[str, object]:
    """The run's summary, recorded on its last hour only (metadata.record_partitions), each hour
    its own figures (:func:`hour_figures`): 3.2 KB an `events` partition, against 12.4 KB when
    every hour carried the run's metadata; the step's records on the 30-day backfill of a small
    lake (771 hours, 17k records, old and new code alternating) 1.51-1.82 -> 0.98-1.04 s
    (2026-12-07)."""
    totals, _ = hour_figures(sums)  # the hour's figures, summed over the run's hours
    return {
        "run_hours": len(rows),
        **{f"run_{k}": v for k, v in totals.items() if k != "dagster/row_count"},
        "run_quarantine_reasons": dg.MetadataValue.json(sums.reasons),
        "run_seconds": round(seconds, 2),
        "run_records_per_second": round(sums.records / seconds) if seconds else 0,
        "run_per_hour": dg.MetadataValue.md(_markdown(rows)),
    }


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
            group_name=CLEAN,
        ),
        dg.AssetSpec(
            "quarantine",
            description="Records that broke the event contract (with the rule they broke, the "
            "object and line they came from and their scrubbed text, cut to 4 KiB), and objects "
            "that could not be decompressed (`corrupt_object`). Nothing is dropped silently.",
            kinds={"duckdb", "parquet"},
            group_name=CLEAN,
        ),
    ],
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec("event_id_unique_and_not_null", asset="events",
                          description=UNIQUE_IDS_DESCRIPTION),
        dg.AssetCheckSpec("quarantine_share", asset="events",
                          description=QUARANTINE_SHARE_DESCRIPTION),
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
    raw, out = raw_lake.open(), lake.open()
    hours = hours_of(context.partition_keys)
    fingerprints = raw_fingerprints(raw, hours)  # for the automation: before reading
    con = connect()
    # the sessions the hours held before this run: an erased object changes their days too
    snapshot_sessions(con, out, hours)
    t0 = time.perf_counter()
    done = records = logged = 0

    def progress(batch: list[HourStats]) -> None:
        # a line per BATCH_HOURS hours done (each line is an event Dagster stores)
        nonlocal done, records, logged
        done += len(batch)
        records += sum(s.records for s in batch)
        if done - logged >= BATCH_HOURS or done == len(hours):
            logged = done
            context.log.info(f"events: {done}/{len(hours)} hours, {records:,} records, "
                             f"{records / (time.perf_counter() - t0):,.0f} records/s")

    rows = process_hours(con, raw, out, hours, pipeline.late_arrival_hours, progress)
    seconds = time.perf_counter() - t0
    publish_after_step(out)
    sums = total(rows)
    folders = [layout.hour_folder(h) for h in hours]
    checks = events_check_results(con, out, hours, rows, pipeline.quarantine_warn_share)
    # each hour's objects and the days its events can change (defs/automation/records.py)
    days = session_days(con, out, hours, pipeline.late_arrival_hours, datetime.now(UTC))
    con.close()
    figures = {partition_key(r.hour): hour_figures(r) for r in rows}
    automation = hour_metadata(fingerprints, days)
    record_partitions(
        context, {k: events_meta | automation[k] for k, (events_meta, _) in figures.items()},
        run_metadata(rows, sums, seconds) | column_schema(out.existing("events", folders)[-1:]),
        asset_key="events")
    record_partitions(
        context, {k: quarantine_meta for k, (_, quarantine_meta) in figures.items()},
        column_schema(out.existing("quarantine", folders)[-1:]), asset_key="quarantine")
    yield dg.MaterializeResult(asset_key="quarantine")
    yield dg.MaterializeResult(asset_key="events")
    yield from checks
