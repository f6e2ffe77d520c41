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
from datetime import UTC, datetime, timedelta

import dagster as dg

from analytics_platform import settings
from analytics_platform.defs.automation import (
    DAILY_RUN_TAGS,
    EVENTS_RUN_TAGS,
    HISTORY_RUN_TAGS,
    daily_job,
    events_job,
    history_job,
)
from analytics_platform.defs.automation.notifications import RawNotifications
from analytics_platform.defs.automation.records import SESSION_DAYS, fingerprint, reads_hour
from analytics_platform.defs.automation.runs import (
    EVENTS,
    SESSIONS,
    busy_partitions,
    instance_of,
    latest_materialization,
    materialized_fingerprints,
    run_key_after_cancel,
    run_start,
)
from analytics_platform.lake import (
    S3RawLake,
    hour_of_key,
    hour_of_partition_key,
    hours_between,
    partition_key,
)
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

# Every RunRequest carries its job's run tags (the run queue's `analytics/stage`, and `ecs/cpu`
# and `ecs/memory`, which size the run's Fargate task under the EcsRunLauncher): the daemon
# merges a targeted job's tags into a sensor's runs today, but the sizes an automation run gets
# should not rest on how a launch path merges tags.

# Only recent hour folders are listed (never the whole bucket); each listed hour is one LIST
# request per tick (see settings.sensor_lookback_hours).
LOOKBACK_HOURS = settings.sensor_lookback_hours()
INTERVAL_SECONDS = settings.sensor_interval_seconds()
# With a notifications queue ($ANALYTICS_RAW_QUEUE_URL) the sensor lists an hour only when a
# message names one of its objects, and every recent hour once an hour: a notification that never
# comes (a purged queue, a message kept past its retention) costs at most that long, three LIST
# requests an hour (2,160 a month, $0.01). The hourly schedule checks the previous hour too.
RECONCILE_SECONDS = 3600
# The long poll of a tick: at most half the interval, well inside the daemon's 60-s budget for a
# sensor evaluation (and a message arriving during the poll ends it at once).
QUEUE_WAIT_SECONDS = max(1, INTERVAL_SECONDS // 2)
# Objects also land in older hour folders: the collector's spool flushed after an outage goes
# to the folder of its oldest record (ingest/spool.py), Firehose retries a failed delivery for
# up to a day, and an erased object leaves its hour changed. So every SWEEP_SECONDS the sensor
# lists the hour folders of the last SWEEP_HOURS as well: hourly without a queue (168 LIST
# requests an hour, 120,960 a month: $0.60 at $0.005 per 1,000, beside the 259,200 of listing
# three hours every 30 s), daily with one, whose notifications name the objects of any hour
# as they land (5,040 a month: $0.03; the queue does not report deletions, which this finds).
SWEEP_HOURS = settings.SENSOR_SWEEP_HOURS
SWEEP_SECONDS = (settings.SENSOR_SWEEP_SECONDS_QUEUE if settings.raw_queue_url()
                 else settings.SENSOR_SWEEP_SECONDS)
# Keys of the cursor that are not hours (an hour's key is a date, e.g. 2026-02-01-13:00).
DELETE, WATCH, LISTED_AT, SWEPT_AT = "_delete", "_watch", "_listed_at", "_swept_at"
# What an hour without objects lists as (records.fingerprint of none).
EMPTY = fingerprint([])
# On its first tick the downstream automation reads the events materialisations of the last
# days only (a day older than that is refreshed by a backfill, not by the sensor).
FIRST_TICK_LOOKBACK = timedelta(days=3)


def _hour_requests(listed: dict[str, str], seen: dict[str, str], instance: dg.DagsterInstance | None
                   ) -> tuple[dict[str, str], list[dg.RunRequest], set[str]]:
    """For the hours just listed (partition key → fingerprint of its objects): the fingerprint
    to remember for each, the runs to ask for, and the hours a run of which is queued or in
    progress (to look at again once it is done)."""
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
        # an hour now empty runs only when it was processed (or asked for) with objects: its
        # events must go (an erasure); one that never had any is the schedule's
        emptied = fp == EMPTY and seen.get(key, done.get(key, EMPTY)) != EMPTY
        if fp == done.get(key) or (fp == EMPTY and not emptied):
            continue
        # the run key changes with the fingerprint: a late object means a new run
        run_key = f"{key}:{fp}"
        if fp == seen.get(key) or fp == EMPTY:
            # asked for on an earlier tick (an emptied hour, whose cursor entry is dropped, on
            # every tick until it runs) and not done: a canceled run is asked for again; a
            # failed one is not (no retry loop: Dagster's run retries are for that), nor one
            # the daemon has not launched yet
            again = (run_key_after_cancel(instance, events_job.name, key, run_key)
                     if instance is not None else None)
            if again:
                run_key = again
            elif fp != EMPTY:
                continue
        requests.append(dg.RunRequest(run_key=run_key, partition_key=key, tags=EVENTS_RUN_TAGS))
    return current, requests, busy & set(listed)


@dg.sensor(
    job=events_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Finds the raw hours whose objects changed since they were last processed (a "
    "new object, or a late one in an hour already processed) and asks for a run of each, "
    "unless a run of that hour is already queued or in progress (one more follows it if the "
    "objects changed meanwhile). It lists the hour folders of the last few hours every tick; "
    "with $ANALYTICS_RAW_QUEUE_URL, only the hours the queue's S3 notifications name (and every "
    "recent hour once an hour, for a lost notification), deleting the messages on the next "
    "tick, once this one is committed. The hour folders of the last 7 days are listed hourly "
    "(daily with the queue): a spool flushed after an outage, a Firehose retry, an erased "
    "object; an hour left empty runs again when it was processed with objects. 'Processed' "
    "is what the hour's latest `events` materialisation records (`raw_fingerprint`), so the "
    "hours a backfill did are not run again (nor those a run started from the asset graph has "
    "queued or in progress); an hour whose run was canceled is asked for again. The cursor "
    "keeps the fingerprint each run was asked for.",
)
def raw_lake_sensor(context: dg.SensorEvaluationContext, raw_lake: RawLakeResource):
    lake = raw_lake.open()
    now = datetime.now(UTC)
    state: dict = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, str] = {k: v for k, v in state.items() if not k.startswith("_")}
    first = first_hour()
    recent = [h for h in hours_between(now - timedelta(hours=LOOKBACK_HOURS), now) if h >= first]
    queue_url = settings.raw_queue_url()
    if queue_url is None:
        hours = recent
    else:
        if not isinstance(lake, S3RawLake):
            raise ValueError("ANALYTICS_RAW_QUEUE_URL needs the raw lake in S3 "
                             "(ANALYTICS_RAW_URL=s3://bucket/prefix)")
        queue = RawNotifications(queue_url, lake.bucket, lake.prefix)
        # The tick that received these is committed (its cursor is this one, its runs were
        # asked for): only now may its messages go. Lost, they come again and ask for nothing.
        queue.delete(state.get(DELETE, []))
        received = queue.receive(QUEUE_WAIT_SECONDS)
        # the hours named, as the listing groups objects: by their hour folder
        named = {hour_of_key(k) for k in received.keys}
        named |= {hour_of_partition_key(k) for k in state.get(WATCH, [])}
        reconcile = now.timestamp() - state.get(LISTED_AT, 0.0) >= RECONCILE_SECONDS
        hours = sorted((named | set(recent)) if reconcile else named)
        hours = [h for h in hours if h >= first]
    # the older hours too, every SWEEP_SECONDS (see SWEEP_HOURS)
    sweep = now.timestamp() - state.get(SWEPT_AT, 0.0) >= SWEEP_SECONDS
    if sweep:
        hours = sorted(set(hours) | {h for h in hours_between(
            now - timedelta(hours=SWEEP_HOURS), now) if h >= first})
    # every hour listed, empty ones too: an hour whose objects were all removed (an erasure)
    # must run again to drop its events (_hour_requests)
    listed = {partition_key(hour): fingerprint(lake.list_hour(hour)) for hour in hours}
    current, requests, busy = _hour_requests(listed, seen, instance_of(context))
    # keep what was asked for over the sweep's days (a message, or the next sweep, can list an
    # hour again), not the hours without objects: absent, they compare the same (_hour_requests)
    keep = {partition_key(h) for h in hours_between(now - timedelta(hours=SWEEP_HOURS), now)}
    cursor: dict = {k: v for k, v in (seen | current).items() if k in keep and v != EMPTY}
    if queue_url is not None:
        cursor[DELETE] = received.handles
        cursor[WATCH] = sorted(busy)
        cursor[LISTED_AT] = now.timestamp() if reconcile else state.get(LISTED_AT, 0.0)
    cursor[SWEPT_AT] = now.timestamp() if sweep else state.get(SWEPT_AT, 0.0)
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    if not requests:
        where = (f"the last {LOOKBACK_HOURS} hour folders" if queue_url is None
                 else f"the {len(hours)} hour(s) the queue named or the reconciliation listed")
        return dg.SkipReason(f"no change in {where}"
                             + (f" ({len(busy)} in progress)" if busy else ""))
    return requests


# --- downstream: the days whose events changed, and the all-history marts ------------------------

def window_days(hour_key: str, late_hours: int) -> list[str]:
    """Every day whose session window holds the hour: what an ``events`` materialisation that
    records no ``session_days`` (made before they were recorded) refreshes."""
    hour = hour_of_partition_key(hour_key)
    days = (hour.date() + timedelta(days=n) for n in range(-3 - late_hours // 24, 2))
    return [day_key(datetime(d.year, d.month, d.day)) for d in days
            if reads_hour(d, hour, (), late_hours)]


def _window_hours(day: str, late_hours: int) -> set[str]:
    first, last = session_window(day_of(day), late_hours)
    return {partition_key(h) for h in hours_between(first, last)}


def _handled(instance: dg.DagsterInstance, day: str, since: float) -> bool:
    """Whether a run of ``day`` started after its events changed at ``since``: its sessions
    were materialised by such a run, or its latest run that ended (not canceled: a canceled run
    did not do the day) failed and started after (no retry loop: Dagster's run retries are for
    that)."""
    record = latest_materialization(instance, SESSIONS, day)
    if record is not None and (run_start(instance, record.run_id) or 0) >= since:
        return True
    runs = instance.get_runs(dg.RunsFilter(
        job_name=daily_job.name, tags={"dagster/partition": day},
        statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]), limit=1)
    return bool(runs) and (run_start(instance, runs[0].run_id) or 0) >= since


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
    return dg.RunRequest(job_name=history_job.name, run_key=f"history:{newest.storage_id}",
                         tags=HISTORY_RUN_TAGS)


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
    "every $ANALYTICS_HISTORY_INTERVAL_MINUTES. A day whose run was canceled is asked for "
    "again on the next tick (stop the sensor to leave it). Runs started from the asset graph "
    "(job `__ASSET_JOB`) count as those of the jobs. The cursor keeps the days still to "
    "refresh.",
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
            # its run canceled: the day is still to do, under a new run key
            run_key = f"{day}:{since}"
            again = run_key_after_cancel(instance, daily_job.name, day, run_key)
            if again:
                context.log.info(f"{day}: its run was canceled; asked for again ({again})")
            requests.append(dg.RunRequest(job_name=daily_job.name, partition_key=day,
                                          run_key=again or run_key, tags=DAILY_RUN_TAGS))
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
