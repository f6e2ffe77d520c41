"""The raw-lake sensor: a run for every recent hour whose objects changed since it was last
processed; and ``downstream_automation``: a day's sessions and marts when the events they read
changed, the all-history marts at most every ``$ANALYTICS_HISTORY_INTERVAL_MINUTES``.

Each run is asked for once (issue 17 §5). Measured with ``bench/runs.py`` (the production daemon,
a Firehose object every 45 s standing for 180 s): before, 5.5 runs an object (a run of an hour per
sensor tick that saw it change, three days of sessions after every events run, the all-history
marts after every day), and the daemon's first tick re-ran every hour a backfill had just done.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from analytics_platform import settings
from analytics_platform.defs.automation import daily_job, events_job, history_job
from analytics_platform.defs.automation.records import SESSION_DAYS, fingerprint, reads_hour
from analytics_platform.defs.automation.runs import (
    EVENTS,
    SESSIONS,
    busy_partitions,
    instance_of,
    latest_materialization,
    materialized_fingerprints,
    run_start,
)
from analytics_platform.lake import hour_of_partition_key, hours_between, partition_key
from analytics_platform.partitions import (
    daily,
    day_key,
    day_of,
    first_hour,
    hourly,
    session_window,
)
from analytics_platform.resources import PipelineSettings, RawLakeResource

__all__ = ["downstream_automation", "fingerprint", "raw_lake_sensor"]

# Only recent hour folders are listed (never the whole bucket); each listed hour is one LIST
# request per tick (see settings.sensor_lookback_hours).
LOOKBACK_HOURS = settings.sensor_lookback_hours()
INTERVAL_SECONDS = settings.sensor_interval_seconds()
# On its first tick the downstream automation reads the events materialisations of the last
# days only (a day older than that is refreshed by a backfill, not by the sensor).
FIRST_TICK_LOOKBACK = timedelta(days=3)


@dg.sensor(
    job=events_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the raw hour folders of the last few hours; an hour whose objects "
    "changed since it was last processed (a new object, or a late one in an hour already "
    "processed) gets a run, unless a run of that hour is already queued or in progress (one "
    "more follows it if the objects changed meanwhile). 'Processed' is what the hour's latest "
    "`events` materialisation records (`raw_fingerprint`), so the hours a backfill did are not "
    "run again; the cursor keeps the fingerprint each run was asked for.",
)
def raw_lake_sensor(context: dg.SensorEvaluationContext, raw_lake: RawLakeResource):
    lake = raw_lake.open()
    now = datetime.now(UTC)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    first = first_hour()
    listed: dict[str, str] = {}
    for hour in hours_between(now - timedelta(hours=LOOKBACK_HOURS), now):
        if hour >= first and (objects := lake.list_hour(hour)):
            listed[partition_key(hour)] = fingerprint(objects)
    instance = instance_of(context)
    busy = busy_partitions(instance, events_job.name, hourly) if instance and listed else set()
    done = materialized_fingerprints(instance, listed) if instance and listed else {}
    current: dict[str, str] = {}
    requests = []
    for key, fp in listed.items():
        if key in busy:
            # queued: it will list the objects when it starts; started: its materialisation
            # will say what it saw, and the tick after it compares again
            if key in seen:
                current[key] = seen[key]
            continue
        current[key] = fp
        if fp != seen.get(key) and fp != done.get(key):
            # the run key changes with the fingerprint: a late object means a new run
            requests.append(dg.RunRequest(run_key=f"{key}:{fp}", partition_key=key))
    context.update_cursor(json.dumps(current, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"no change in the last {LOOKBACK_HOURS} hour folders"
                             + (f" ({len(busy & set(listed))} in progress)" if busy else ""))
    return requests


# --- downstream: the days whose events changed, and the all-history marts ------------------------

def window_days(hour_key: str, late_hours: int) -> list[str]:
    """Every day whose session window holds the hour: what an ``events`` materialisation that
    records no ``session_days`` (made before they were recorded) refreshes."""
    hour = hour_of_partition_key(hour_key)
    days = (hour.date() + timedelta(days=n) for n in range(-3 - late_hours // 24, 2))
    return [day_key(datetime(d.year, d.month, d.day)) for d in days
            if reads_hour(d, hour, (date.min, date.min), late_hours)]


def _window_hours(day: str, late_hours: int) -> set[str]:
    first, last = session_window(day_of(day), late_hours)
    return {partition_key(h) for h in hours_between(first, last)}


def _handled(instance: dg.DagsterInstance, day: str, since: float) -> bool:
    """Whether a run of ``day`` started after its events changed at ``since``: its sessions
    were materialised by such a run, or its latest run (failed) started after (no retry loop:
    Dagster's run retries are for that)."""
    record = latest_materialization(instance, SESSIONS, day)
    if record is not None and (run_start(instance, record.run_id) or 0) >= since:
        return True
    runs = instance.get_runs(dg.RunsFilter(job_name=daily_job.name,
                                           tags={"dagster/partition": day}), limit=1)
    return (bool(runs) and runs[0].is_finished
            and (run_start(instance, runs[0].run_id) or 0) >= since)


def _history_request(instance: dg.DagsterInstance, now: float, interval: float
                     ) -> dg.RunRequest | None:
    """The all-history marts: when some day's sessions were materialised after their last run
    started, at most once per ``interval`` seconds, never two at once."""
    newest = latest_materialization(instance, SESSIONS)
    if newest is None:
        return None
    runs = instance.get_runs(dg.RunsFilter(job_name=history_job.name), limit=1)
    if runs:
        last = runs[0]
        if not last.is_finished:
            return None
        record = instance.get_run_record_by_id(last.run_id)
        created = record.create_timestamp.timestamp() if record else 0.0
        if (run_start(instance, last.run_id) or 0) >= newest.timestamp or now - created < interval:
            return None
    return dg.RunRequest(job_name=history_job.name, run_key=f"history:{newest.storage_id}")


@dg.sensor(
    name="downstream_automation",
    jobs=[daily_job, history_job],
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads every new `events` materialisation and the days its hour can change "
    "(`session_days` in its metadata: the dates of the sessions it holds, where their window "
    "reads the hour), then asks for one `daily_job` run per such day once no run of that day "
    "and no `events` run of its window is queued or in progress, unless a run of the day "
    "started after the change. The all-history marts follow when sessions changed, at most "
    "every $ANALYTICS_HISTORY_INTERVAL_MINUTES. The cursor keeps the days still to refresh.",
)
def downstream_automation(context: dg.SensorEvaluationContext, pipeline: PipelineSettings):
    instance = context.instance
    late = pipeline.late_arrival_hours
    state = json.loads(context.cursor) if context.cursor else {}
    after: int | None = state.get("after")  # the last events materialisation read
    dirty: dict[str, float] = state.get("dirty", {})  # day → when its events last changed
    while True:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=EVENTS, after_storage_id=after,
            after_timestamp=None if after is not None
            else time.time() - FIRST_TICK_LOOKBACK.total_seconds()), limit=500, ascending=True)
        for r in records.records:
            recorded = r.asset_materialization.metadata.get(SESSION_DAYS)
            days = (list(recorded.value) if recorded is not None
                    else window_days(r.partition_key, late) if r.partition_key else [])
            for day in days:
                if daily.has_partition_key(day):
                    dirty[day] = max(dirty.get(day, 0.0), r.timestamp)
            after = r.storage_id
        if not records.has_more:
            break

    busy_days = busy_partitions(instance, daily_job.name, daily) if dirty else set()
    busy_hours = busy_partitions(instance, events_job.name, hourly) if dirty else set()
    requests: list[dg.RunRequest] = []
    waiting = []
    for day, since in sorted(dirty.items()):
        if day in busy_days or busy_hours & _window_hours(day, late):
            waiting.append(day)  # its run, or an events run of its window, is not done yet
        elif _handled(instance, day, since):
            del dirty[day]
        else:
            requests.append(dg.RunRequest(job_name=daily_job.name, partition_key=day,
                                          run_key=f"{day}:{since}"))
    # the all-history marts, when no day is asked for this tick (they read every day)
    history = None if requests or busy_days else _history_request(
        instance, time.time(), settings.history_interval_minutes() * 60)
    if history is not None:
        requests.append(history)
    context.update_cursor(json.dumps({"after": after, "dirty": dirty}, sort_keys=True))
    if not requests:
        return dg.SkipReason("nothing changed" if not dirty
                             else f"waiting for runs in progress: {', '.join(waiting)}")
    return requests
