"""What the instance knows that the sensors and the schedule ask before they request a run: the
partitions a job is already running (or has queued), and what an ``events`` hour or a day was
last materialised from. One place, so the raw-lake sensor, the schedule and the downstream
automation agree on "already done"."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from analytics_platform.backfill import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from analytics_platform.defs.automation.records import FINGERPRINT

PARTITION_TAG = "dagster/partition"
RUN_KEY_TAG = "dagster/run_key"
# A run in one of these states has not finished: queued (it will read its inputs when it
# starts) or started (what it read, its materialisation will tell).
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
             dg.DagsterRunStatus.CANCELING]
EVENTS = dg.AssetKey("events")
SESSIONS = dg.AssetKey("sessions")


def instance_of(context: dg.SensorEvaluationContext | dg.ScheduleEvaluationContext
                ) -> dg.DagsterInstance | None:
    """The context's instance; None when it was built without one (a unit test of the cursor
    alone): then only the cursor decides."""
    try:
        return context.instance
    except dg.DagsterInvariantViolationError:
        return None


def run_partitions(run: dg.DagsterRun, partitions: dg.PartitionsDefinition) -> set[str]:
    """The partitions of ``partitions`` one run covers: its partition, or its range (a
    single-run backfill); none when its keys are another definition's (an hourly run's keys
    are no days)."""
    if PARTITION_TAG in run.tags:
        key = run.tags[PARTITION_TAG]
        return {key} if partitions.has_partition_key(key) else set()
    first, last = run.tags.get(PARTITION_RANGE_START_TAG), run.tags.get(PARTITION_RANGE_END_TAG)
    # checked first: a range of hours read as days gives the days that hold them
    if first and last and partitions.has_partition_key(first) and partitions.has_partition_key(
            last):
        return set(partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    return set()


def busy_partitions(instance: dg.DagsterInstance, job_name: str,
                    partitions: dg.PartitionsDefinition) -> set[str]:
    """The partitions of ``job_name``'s stage that a queued or running run already covers: a
    run of the job, or a run started from the asset graph (the UI's Materialize or asset
    backfill, ``dagster asset materialize``: job ``__ASSET_JOB``, with the assets it selected)
    of partitions of the same definition. Every asset on the hourly partitions is the events
    stage's and every one on the daily partitions the daily stage's, and a run holds the
    assets of one partitions definition (Dagster splits an asset backfill by definition): the
    partition tags say whose it is."""
    out: set[str] = set()
    for run in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT)):
        if run.job_name == job_name or run.asset_selection:
            out |= run_partitions(run, partitions)
    return out


def run_key_after_cancel(instance: dg.DagsterInstance, job_name: str, partition: str,
                         run_key: str) -> str | None:
    """When the latest run of ``job_name`` for ``partition`` was asked for as ``run_key`` (or
    as a key made from it here) and canceled (by hand, in the queue or while it ran): the run
    key to ask for it again with, ``run_key`` and that run's id (the daemon launches a run key
    once, so the old one would be dropped). Else None. One new key per canceled run: a run
    canceled each time it is asked for comes back once per sensor tick, no faster."""
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, tags={PARTITION_TAG: partition}),
                             limit=1)
    if (runs and runs[0].status == dg.DagsterRunStatus.CANCELED
            and runs[0].tags.get(RUN_KEY_TAG, "").startswith(run_key)):
        return f"{run_key}:{runs[0].run_id}"
    return None


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey,
                           partition: str | None = None) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None),
        limit=1).records
    return records[0] if records else None


def materialized_fingerprints(instance: dg.DagsterInstance, keys: Iterable[str]
                              ) -> dict[str, str]:
    """The raw fingerprint each ``events`` hour was last materialised from (records.py), for
    the hours that have one."""
    out = {}
    for key in keys:
        record = latest_materialization(instance, EVENTS, key)
        value = record and record.asset_materialization.metadata.get(FINGERPRINT)
        if value is not None:
            out[key] = str(value.value)
    return out


def run_start(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """When a run started (its creation when it never did)."""
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return None
    return record.start_time or record.create_timestamp.timestamp()
