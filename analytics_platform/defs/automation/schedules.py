"""The hourly schedule: process the hour that just ended, once Firehose has flushed it."""

from datetime import timedelta

import dagster as dg

from analytics_platform import settings
from analytics_platform.defs.automation import events_job
from analytics_platform.lake import floor_hour, partition_key

# By :10 the previous hour's folder is complete but for rare retries (settings.schedule_minute).
SCHEDULE_MINUTE = settings.schedule_minute()


@dg.schedule(
    job=events_job,
    cron_schedule=f"{SCHEDULE_MINUTE} * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every hour at :{SCHEDULE_MINUTE:02d} UTC, clean the previous hour's raw objects "
    "into events; the day's sessions and marts follow through their automation conditions.",
)
def hourly_events_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    previous = floor_hour(context.scheduled_execution_time) - timedelta(hours=1)
    key = partition_key(previous)
    return dg.RunRequest(run_key=f"schedule:{key}", partition_key=key)
