"""One measured step, run in a fresh process so that its peak memory is its own; prints one JSON
line (seconds, peak RSS in MB, rows). Called by bench/pipeline.py:

    python bench/steps.py events-hour DATA_DIR HOUR      # the `events` asset's work on one hour
    python bench/steps.py bare-hour DATA_DIR HOUR        # DuckDB COPY read_json → Parquet
    python bench/steps.py floor-hour DATA_DIR HOUR       # the same, de-duplicated and sorted
    python bench/steps.py pandas-hour DATA_DIR HOUR      # bench/pandas_baseline.py
    python bench/steps.py sessions-day DATA_DIR DAY      # the `sessions` asset's work on one day
    python bench/steps.py sessions-reads DATA_DIR DAY    # its reads alone, then the whole day
    python bench/steps.py bare-all DATA_DIR              # the bare DuckDB steps of a backfill
    python bench/steps.py dagster-steps DATA_DIR         # seconds per step of the recorded runs
    python bench/steps.py daily-marts DATA_DIR [WORKERS] # the 13 daily marts' work, every day
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import vm_hwm  # noqa: E402

_T0: list[float] = []
_CPU0: list[float] = []


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _start() -> None:
    """The clock starts here: after the imports and the listing, as in a running pipeline."""
    _T0.append(time.perf_counter())
    _CPU0.append(_cpu())


def _hour_objects(data: Path, hour: datetime) -> list[tuple[str, Path]]:
    from analytics_platform.lake import open_raw_lake

    raw = open_raw_lake(data / "raw")
    return [(o.key, data / "raw" / o.key) for o in raw.list_hour(hour)]


def events_hour(data: Path, hour: datetime) -> int:
    from analytics_platform.defs.events.assets import process_hours
    from analytics_platform.duck import connect
    from analytics_platform.lake import open_raw_lake
    from analytics_platform.storage import Lake

    _start()
    con = connect()
    stats = process_hours(con, open_raw_lake(data / "raw"), Lake(data), [hour], 24)
    return sum(s.records for s in stats)


# The yardstick: raw JSON to Parquet, nothing else.
BARE_SQL = "SELECT * FROM read_json($f, format = 'newline_delimited')"

# The least the spec asks on top of BARE_SQL (CONTRACT §3.4): one row per event_id, the copy with
# the earliest ingest_ts (ties: event_ts, then the object), written in a deterministic order
# (the asset's files must come out the same on every run). Run under the pipeline's DuckDB
# settings (memory limit, spill folder). No contract, no reasons, no scrubbing, no clock
# correction, no user agents, no bots: what the asset spends above this floor is the contract's.
FLOOR_SQL = """
SELECT * EXCLUDE (filename)
FROM read_json($f, format = 'newline_delimited', filename = true{options})
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingest_ts, event_ts, filename) = 1
ORDER BY event_ts, event_id"""


def _copy_hour(data: Path, hour: datetime, select: str,
               connect: Callable[[], duckdb.DuckDBPyConnection]) -> int:
    """``COPY (select) TO`` a Parquet file over the hour's objects; rows written."""
    files = [str(p) for _, p in _hour_objects(data, hour)]
    out = data / "copy-hour.parquet"
    _start()
    n = connect().execute(f"COPY ({select}) TO '{out}' (FORMAT parquet)",
                          {"f": files}).fetchall()[0][0]
    out.unlink()
    return n


def bare_hour(data: Path, hour: datetime) -> int:
    return _copy_hour(data, hour, BARE_SQL, duckdb.connect)


def floor_hour(data: Path, hour: datetime) -> int:
    from analytics_platform.duck import connect

    return _copy_hour(data, hour, FLOOR_SQL.format(options=""), connect)


def pandas_hour(data: Path, hour: datetime) -> int:
    from pandas_baseline import clean_hour

    out = data / "pandas-hour.parquet"
    objects = _hour_objects(data, hour)
    _start()
    counts = clean_hour(objects, out)
    out.unlink()
    return counts["records"]


def sessions_day(data: Path, day: datetime) -> int:
    from analytics_platform.config import load_referrers
    from analytics_platform.defs.sessions.assets import build_day
    from analytics_platform.duck import connect
    from analytics_platform.resources import PipelineSettings
    from analytics_platform.storage import Lake

    pipeline = PipelineSettings()
    _start()
    con = connect()
    con.register("referrers", load_referrers(pipeline.referrers_file))
    return build_day(con, Lake(data), day, pipeline)["events"]


def sessions_reads(data: Path, day: datetime) -> tuple[int, dict[str, float]]:
    """CPU seconds of the reads a day of `sessions` makes, each alone into a temp table on the
    step's connection: its window's files on the columns day_events.sql decides on (narrow),
    the hours before it (session_id, ts), the window's rows in full (what the session_events
    write reads); then of the whole day (build_day, as sessions-day), for the share. What a
    pass that reads each hour once for many days could save is part of the first three."""
    from analytics_platform.config import load_referrers
    from analytics_platform.defs.sessions.assets import build_day
    from analytics_platform.defs.sessions.inputs import day_inputs
    from analytics_platform.duck import connect
    from analytics_platform.resources import PipelineSettings
    from analytics_platform.storage import Lake

    pipeline, lake = PipelineSettings(), Lake(data)
    window, _, _, before = day_inputs(lake, day, pipeline.late_arrival_hours)
    _start()
    con = connect()
    con.register("referrers", load_referrers(pipeline.referrers_file))
    reads = {
        "narrow": ("SELECT file_index::INTEGER AS file_no, file_row_number AS file_row, "
                   "session_id, visitor_hash, event_id, ts, ingest_ts, event_ts FROM "
                   "read_parquet($f, union_by_name = true, hive_partitioning = false)", window),
        "before": ("SELECT session_id, ts FROM read_parquet($f, hive_partitioning = false)",
                   before),
        "wide": ("SELECT * FROM read_parquet($f, union_by_name = true, "
                 "hive_partitioning = false)", window),
    }
    cpu: dict[str, float] = {}
    for name, (query, files) in reads.items():
        if not files:  # the lake's first day has no hours before it
            cpu[name] = 0.0
            continue
        c0 = _cpu()
        con.execute(f"CREATE OR REPLACE TEMP TABLE r AS {query}", {"f": files})
        cpu[name] = _cpu() - c0
    rows = con.execute("SELECT count(*) FROM r").fetchall()[0][0] if window else 0
    con.execute("DROP TABLE IF EXISTS r")
    c0 = _cpu()
    build_day(con, lake, day, pipeline)
    cpu["day"] = _cpu() - c0
    return rows, cpu


# The bare minimum a backfill does, in plain DuckDB: raw JSON → Parquet, sessions by a
# GROUP BY, and the daily KPIs and page table from those. No contract, no scrubbing, no
# de-duplication, no bots, no attribution: the baseline the pipeline is compared with.
BARE_STEPS = {
    "events": f"COPY ({BARE_SQL}) TO '{{out}}/events.parquet' (FORMAT parquet)",
    "sessions": """COPY (
        SELECT session_id, any_value(visitor_id) AS visitor_id, min(event_ts::TIMESTAMP) AS start,
               max(event_ts::TIMESTAMP) AS "end", count(*) AS events,
               arg_min(page_path, event_ts) AS landing_page, arg_max(page_path, event_ts) AS exit,
               count(*) FILTER (event_type = 'page_view') AS pageviews,
               bool_or(event_type = 'cta_click') AS converted,
               arg_min(referrer, event_ts) AS referrer, arg_min(utm_source, event_ts) AS utm
        FROM '{out}/events.parquet' GROUP BY session_id) TO '{out}/sessions.parquet'
        (FORMAT parquet)""",
    "kpis": """COPY (
        SELECT start::DATE AS day, count(*) AS sessions, count(DISTINCT visitor_id) AS visitors,
               sum(pageviews) AS pageviews, avg((pageviews <= 1)::INT) AS bounce_rate,
               avg(epoch("end") - epoch(start)) AS duration, sum(converted::INT) AS conversions
        FROM '{out}/sessions.parquet' GROUP BY ALL) TO '{out}/kpis.parquet' (FORMAT parquet)""",
    "pages": """COPY (
        SELECT event_ts::DATE AS day, page_path, count(*) AS views,
               count(DISTINCT session_id) AS sessions
        FROM '{out}/events.parquet' WHERE event_type = 'page_view' GROUP BY ALL)
        TO '{out}/pages.parquet' (FORMAT parquet)""",
}


# The bare GROUP BY above groups the events by the session_id the client sent. Since issue 18 the
# tracker stores nothing by default, so most events come without one (70 % of the 30-day lake's)
# and the contract makes their sessions in the pipeline: per visitor_hash, a new session after 30
# minutes without an event (CONTRACT §4). This is that rule and the same GROUP BY, in bare DuckDB,
# with the session-sorted events written as `session_events` is: the least the sessions step can
# do today. Reported beside the bare steps, not added to them (measure 2 keeps its definition).
SESSIONS_RULE_STEPS = [
    # the rule on narrow rows, then joined back: the window over the wide rows cost 79 CPU-s
    # on the 30-day lake against 12.5 + 25.6 for these two (2026-12-06, loaded machine)
    """CREATE TEMP TABLE hash_sid AS
        SELECT file_row_number, visitor_hash || '-' || sum(starts) OVER (
                   PARTITION BY visitor_hash ORDER BY event_ts, event_id
                   ROWS UNBOUNDED PRECEDING) AS sid
        FROM (SELECT file_row_number, event_id, visitor_hash, event_ts,
                     coalesce(event_ts - lag(event_ts) OVER (
                         PARTITION BY visitor_hash ORDER BY event_ts, event_id)
                     > INTERVAL 30 MINUTES, true)::INT AS starts
              FROM read_parquet('{out}/events.parquet', file_row_number = true)
              WHERE session_id IS NULL)""",
    """CREATE TEMP TABLE sessionized AS
        SELECT e.* EXCLUDE (file_row_number), coalesce(e.session_id::VARCHAR, h.sid) AS sid
        FROM read_parquet('{out}/events.parquet', file_row_number = true) e
        LEFT JOIN hash_sid h USING (file_row_number)""",
    "COPY (SELECT * FROM sessionized ORDER BY sid, event_ts, event_id) "
    "TO '{out}/session_events.parquet' (FORMAT parquet)",
    BARE_STEPS["sessions"].replace("'{out}/events.parquet' GROUP BY session_id",
                                   "sessionized GROUP BY sid")
                          .replace("SELECT session_id,", "SELECT sid AS session_id,"),
]
# the same GROUP BY as the bare step, over the sessionized rows (an edit of it must keep both)
assert "sessionized GROUP BY sid" in SESSIONS_RULE_STEPS[-1]
assert "SELECT sid AS session_id," in SESSIONS_RULE_STEPS[-1]


def bare_all(data: Path) -> dict[str, float]:
    files = sorted(str(p) for p in (data / "raw").rglob("*.gz"))
    out = data / "bare"
    out.mkdir(exist_ok=True)
    _start()
    con = duckdb.connect()
    times = {}
    for name, sql in BARE_STEPS.items():
        t0 = time.perf_counter()
        con.execute(sql.format(out=out), {"f": files} if "$f" in sql else {}).fetchall()
        times[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for sql in SESSIONS_RULE_STEPS:
        con.execute(sql.format(out=out)).fetchall()
    times["sessions_rule"] = time.perf_counter() - t0
    return times


def floor_all(data: Path) -> float:
    """FLOOR_SQL once per raw hour (as hourly partitions demand, in the memory of one), each
    read with the column types DuckDB detects once for all the objects, as the bare step's
    single statement does (detecting them again for every hour cost 100 s instead of 41 s on
    the 30-day backfill); seconds."""
    from analytics_platform.duck import connect
    from analytics_platform.lake import hour_of_key

    raw = data / "raw"
    hours: dict[datetime, list[str]] = {}
    for p in sorted(raw.rglob("*.gz")):
        hours.setdefault(hour_of_key(p.relative_to(raw).as_posix()), []).append(str(p))
    out = data / "floor"
    out.mkdir(exist_ok=True)
    _start()
    con = connect()
    every = [f for files in hours.values() for f in files]
    described = con.execute(f"DESCRIBE {FLOOR_SQL.format(options=', hive_partitioning = false')}",
                            {"f": every}).fetchall()
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind, *_ in described)
    select = FLOOR_SQL.format(options=f", hive_partitioning = false, columns = {{{columns}}}")
    for i, files in enumerate(hours.values()):
        con.execute(f"COPY ({select}) TO '{out / f'{i}.parquet'}' (FORMAT parquet)", {"f": files})
    seconds = time.perf_counter() - _T0[-1]
    shutil.rmtree(out)
    return seconds


def dagster_steps(data: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per step key, summed over the runs recorded in the folder's Dagster instance, and
    of those the seconds from a step's first materialization record to its end: Dagster writing
    one record per partition (1,544 for the 30-day backfill's `events` step, ~10 ms each, however
    little metadata they carry), which happens inside the step once its work is done."""
    from dagster import DagsterEventType, DagsterInstance

    _start()
    instance = DagsterInstance.get()  # $DAGSTER_HOME: the folder's, from report.data_env
    seconds: dict[str, float] = {}
    records: dict[str, float] = {}
    for run in instance.get_runs():
        stats = {st.step_key: st for st in instance.get_run_step_stats(run.run_id)
                 if st.start_time and st.end_time}
        first: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            if entry.step_key in stats:
                first[entry.step_key] = min(first.get(entry.step_key, entry.timestamp),
                                            entry.timestamp)
        for key, st in stats.items():
            seconds[key] = seconds.get(key, 0.0) + st.end_time - st.start_time
            if key in first:
                records[key] = records.get(key, 0.0) + st.end_time - first[key]
    return seconds, records


def daily_marts(data: Path, workers: int | None) -> tuple[int, dict]:
    """The 13 daily marts' own work over every day of the lake's ``sessions``: each asset's
    function called as a ranged run calls it, its days ``workers`` at a time
    (``marts/assets.DAY_WORKERS``: the asset's own when None). Left out: the warehouse's publish
    and Dagster's records (the backfill publishes once after its runs; dagster-steps times the
    steps in Dagster). Returns the files written, the seconds and CPU-s of each mart and a
    sha256 of all the files, so two settings can be shown to write the same bytes."""
    import hashlib
    import inspect
    import types

    os.environ.setdefault("ANALYTICS_DATA_DIR", str(data.resolve()))
    import dagster as dg

    from analytics_platform.definitions import defs
    from analytics_platform.defs.automation import DAILY_MARTS
    from analytics_platform.defs.marts import assets as marts
    from analytics_platform.layout import DAY
    from analytics_platform.resources import LakeResource, PipelineSettings

    marts.publish_after_step = lambda lake: None
    marts.record_partitions = lambda *args, **kwargs: None
    if workers is not None:
        marts.DAY_WORKERS = workers
    keys = sorted(p.name.removeprefix(f"{DAY}=")
                  for p in (data / "lake" / "sessions").glob(f"{DAY}=*"))
    # an instance without records: the marts' check of never-computed days is left to the files
    # (marts.refuse_days_without_sessions), as over a lake made outside Dagster
    context = types.SimpleNamespace(partition_keys=keys, instance=dg.DagsterInstance.ephemeral(),
                                    log=types.SimpleNamespace(info=lambda *a: None,
                                                              debug=lambda *a: None,
                                                              warning=lambda *a: None))
    assets = sorted(((k.to_user_string(), a) for a in defs().assets
                     for k, g in a.group_names_by_key.items() if g == DAILY_MARTS),
                    key=lambda na: na[0])
    lake, pipeline = LakeResource(data_dir=str(data)), PipelineSettings()
    each: dict[str, list[float]] = {}
    _start()
    for name, asset in assets:
        fn = asset.op.compute_fn.decorated_fn
        t0, c0 = time.perf_counter(), _cpu()
        resources = {"lake": lake, "pipeline": pipeline}  # the ones the function takes
        fn(context, **{k: v for k, v in resources.items()
                       if k in inspect.signature(fn).parameters})
        each[name] = [round(time.perf_counter() - t0, 2), round(_cpu() - c0, 2)]
    digest = hashlib.sha256()
    files = sorted(f for name, _ in assets for f in (data / "lake" / name).glob("*/*.parquet"))
    for f in files:
        digest.update(f.read_bytes())
    return len(files), {"marts": each, "sha256": digest.hexdigest()}


def main() -> None:
    step, data = sys.argv[1], Path(sys.argv[2])
    when = (datetime.fromisoformat(sys.argv[3]).replace(tzinfo=UTC) if len(sys.argv) > 3
            and step != "daily-marts" else None)
    extra: dict = {}
    if step == "daily-marts":
        rows, extra = daily_marts(data, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif step == "bare-all":
        extra = {"steps": bare_all(data), "floor_events": floor_all(data)}
        rows = 0
    elif step == "sessions-reads":
        rows, cpu_of = sessions_reads(data, when)
        extra = {"cpu_of": cpu_of}
    elif step == "dagster-steps":
        steps, records = dagster_steps(data)
        extra = {"steps": steps, "records": records}
        rows = 0
    else:
        rows = {"events-hour": events_hour, "bare-hour": bare_hour, "floor-hour": floor_hour,
                "pandas-hour": pandas_hour, "sessions-day": sessions_day}[step](data, when)
    seconds = time.perf_counter() - _T0[0]
    rss = vm_hwm(os.getpid()) / 1024  # MB: this process image's own peak (report.vm_hwm)
    # CPU seconds from the same start (all threads): on a loaded machine the wall clock
    # measures the neighbours too, this does not
    cpu = _cpu() - _CPU0[0]
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": rss, "rows": rows, **extra}))


if __name__ == "__main__":
    main()
