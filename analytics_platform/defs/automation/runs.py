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
    """The partitions one run covers: its partition, or its range (a single-run backfill)."""
    if PARTITION_TAG in run.tags:
        return {run.tags[PARTITION_TAG]}
    first, last = run.tags.get(PARTITION_RANGE_START_TAG), run.tags.get(PARTITION_RANGE_END_TAG)
    if first and last:
        return set(partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    return set()


def busy_partitions(instance: dg.DagsterInstance, job_name: str,
                    partitions: dg.PartitionsDefinition) -> set[str]:
    """The partitions of ``job_name`` that a queued or running run already covers."""
    out: set[str] = set()
    for run in instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT)):
        out |= run_partitions(run, partitions)
    return out


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
