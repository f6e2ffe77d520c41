"""The hourly schedule: process the hour that just ended, once Firehose has flushed it, unless
it was already processed as it is."""

from datetime import timedelta

import dagster as dg

from analytics_platform import settings
from analytics_platform.defs.automation import EVENTS_RUN_TAGS, events_job
from analytics_platform.defs.automation.records import fingerprint
from analytics_platform.defs.automation.runs import (
    busy_partitions,
    instance_of,
    materialized_fingerprints,
)
from analytics_platform.lake import floor_hour, partition_key
from analytics_platform.partitions import first_hour, hourly
from analytics_platform.resources import RawLakeResource

# By :10 the previous hour's folder is complete but for rare retries (settings.schedule_minute).
SCHEDULE_MINUTE = settings.schedule_minute()


@dg.schedule(
    job=events_job,
    cron_schedule=f"{SCHEDULE_MINUTE} * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every hour at :{SCHEDULE_MINUTE:02d} UTC, clean the previous hour's raw objects "
    "into events, unless the raw-lake sensor's run already did with these very objects (the "
    "hour's latest `events` materialisation records them) or has one queued or in progress: a "
    "safety net, and the hourly run of an hour without traffic. The days follow through the "
    "`downstream_automation` sensor.",
)
def hourly_events_schedule(context: dg.ScheduleEvaluationContext):
    previous = floor_hour(context.scheduled_execution_time) - timedelta(hours=1)
    key = partition_key(previous)
    if previous < first_hour():
        # the first tick on $ANALYTICS_START_DATE: a request for it failed the daemon's tick
        # (DagsterUnknownPartitionError)
        return dg.SkipReason(f"{key} is before the first partition ({partition_key(first_hour())})")
    instance = instance_of(context)
    if instance is not None:
        if key in busy_partitions(instance, events_job.name, hourly):
            return dg.SkipReason(f"{key}: a run of this hour is queued or in progress")
        # the raw lake as the code location binds it: both take $ANALYTICS_RAW_URL and
        # $AWS_ENDPOINT_URL (a schedule that asked for the resource could not be evaluated
        # without one)
        fp = fingerprint(RawLakeResource().open().list_hour(previous))
        if materialized_fingerprints(instance, [key]).get(key) == fp:
            return dg.SkipReason(f"{key}: already processed with these objects ({fp})")
    # the job's tags on the request itself, as the sensors do (sensors.py)
    return dg.RunRequest(run_key=f"schedule:{key}", partition_key=key, tags=EVENTS_RUN_TAGS)
