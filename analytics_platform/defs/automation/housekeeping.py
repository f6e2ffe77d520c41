"""Keeping the instance small and telling CloudWatch: old runs deleted (Dagster keeps every run's
events forever: about 190 KB a run in SQLite), and one ``RunSucceeded`` data point per successful
run when ``$ANALYTICS_METRIC_NAMESPACE`` is set (the stack's "no successful run" alarm).

Sensor and schedule *ticks* are purged by Dagster itself (``retention`` in deploy/dagster.yaml);
runs it never purges, hence ``run_retention``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import dagster as dg

from analytics_platform import settings
from analytics_platform.defs.automation.runs import latest_materialization

# Every hour: a tick deletes up to BATCH runs (about 1,000 runs are made a day at 1M events a
# month, so a day's worth takes a day's ticks at most), so no tick holds the daemon for long.
RETENTION_INTERVAL_SECONDS = 3600
BATCH = 500
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED]
# A run kept for holding a partition's latest materialisation is superseded by the partition's
# next run: a pass over the old runs that reached the newest starts again from the oldest once
# this long after it began, so those are deleted within a day of it. A pass looks at BATCH runs
# a tick: the kept runs (one or a few per partition: ~9,000 a year of hours) take a tick per
# 500 of them, once a day.
RESCAN_SECONDS = 86400


def holds_a_latest_materialization(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether some asset partition's latest materialisation is in this run (deleting the run
    would delete it: the UI would lose that partition's metadata, the sensors its
    fingerprint)."""
    for event in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        m = event.asset_materialization
        if m is None:
            continue
        # (by run: SQLite numbers a run's events apart from the index the latest is read from)
        latest = latest_materialization(instance, m.asset_key, m.partition)
        if latest is not None and latest.run_id == run_id:
            return True
    return False


def delete_old_runs(instance: dg.DagsterInstance, older_than_days: float, after: float = 0.0,
                    now: float | None = None, limit: int = BATCH) -> tuple[int, int, float]:
    """Delete the finished runs created more than ``older_than_days`` ago (and after
    ``after``, a creation timestamp), oldest first, up to ``limit``, but those that hold the
    latest materialisation of a partition. Returns (deleted, kept, the creation time of the
    last run looked at); fewer than ``limit`` looked at: none older is left after it."""
    now = time.time() if now is None else now
    cutoff = datetime.fromtimestamp(now - older_than_days * 86400, UTC)
    records = instance.get_run_records(
        dg.RunsFilter(statuses=FINISHED, created_before=cutoff,
                      created_after=datetime.fromtimestamp(after, UTC)),
        limit=limit, ascending=True)
    deleted = kept = 0
    for r in records:
        if holds_a_latest_materialization(instance, r.dagster_run.run_id):
            kept += 1
        else:
            instance.delete_run(r.dagster_run.run_id)
            deleted += 1
        after = max(after, r.create_timestamp.timestamp())
    return deleted, kept, after


def retention_pass(instance: dg.DagsterInstance, days: float, cursor: str | None,
                   now: float | None = None) -> tuple[int, int, str]:
    """One tick of :func:`run_retention`: its (deleted, kept, next cursor). The cursor is
    where the pass is (``after``: the creation time of the last run looked at), when it began
    and whether it reached the newest old run; a pass that did starts again from the oldest
    :data:`RESCAN_SECONDS` after it began, for the kept runs since superseded. (A cursor of
    before, a bare timestamp, goes on from there.)"""
    now = time.time() if now is None else now
    raw = json.loads(cursor) if cursor else {}
    state = raw if isinstance(raw, dict) else {"after": float(raw), "began": 0.0, "end": False}
    after, began = float(state.get("after", 0.0)), float(state.get("began", 0.0))
    if not cursor or (state.get("end") and now - began >= RESCAN_SECONDS):
        after, began = 0.0, now
    deleted, kept, after = delete_old_runs(instance, days, after, now=now)
    end = deleted + kept < BATCH
    return deleted, kept, json.dumps({"after": after, "began": began, "end": end})


@dg.sensor(
    minimum_interval_seconds=RETENTION_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every hour, deletes the finished runs older than $ANALYTICS_RUN_RETENTION_DAYS "
    "(14 by default; 0 keeps every run) with their events, but the runs that hold the latest "
    "materialisation of some partition: those are looked at again once a day, and deleted once "
    "a later run has superseded them. Launches no run.",
)
def run_retention(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    days = settings.run_retention_days()
    if days <= 0:
        return dg.SkipReason("ANALYTICS_RUN_RETENTION_DAYS=0: every run is kept")
    deleted, kept, cursor = retention_pass(context.instance, days, context.cursor)
    context.update_cursor(cursor)
    return dg.SkipReason(f"{deleted} run(s) older than {days:g} days deleted, {kept} kept (they "
                         "hold the latest materialisation of a partition)")


def put_run_succeeded(namespace: str, at: datetime) -> None:
    """One ``RunSucceeded`` data point (Count 1) in ``namespace`` (boto3's configuration)."""
    import boto3

    boto3.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": "RunSucceeded", "Value": 1.0, "Unit": "Count", "Timestamp": at}])


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="run_succeeded_metric",
    default_status=(dg.DefaultSensorStatus.RUNNING if settings.metric_namespace()
                    else dg.DefaultSensorStatus.STOPPED),
    description="Puts one `RunSucceeded` data point in the CloudWatch namespace "
    "$ANALYTICS_METRIC_NAMESPACE for every successful run (what the stack's alarm counts). "
    "Starts RUNNING when the namespace is set.",
)
def run_succeeded_metric(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
    namespace = settings.metric_namespace()
    if not namespace:
        return dg.SkipReason("ANALYTICS_METRIC_NAMESPACE is not set")
    record = context.instance.get_run_record_by_id(context.dagster_run.run_id)
    ended = (datetime.fromtimestamp(record.end_time, UTC) if record and record.end_time
             else datetime.now(UTC))
    put_run_succeeded(namespace, ended)
    return None
