"""Partitions of the pipeline: hourly for raw data and events, daily for sessions and marts; and
the session window, which ties a day to the raw hours it reads.

The first partition is ``$ANALYTICS_START_DATE`` (default 2026-01-01; ``settings.start_date``).
The current hour and day are included (``end_offset=1``) so fresh data can be processed before
the period closes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from analytics_platform import settings
from analytics_platform.lake import PARTITION_KEY_FORMAT, hour_of_partition_key

DAY_FORMAT = "%Y-%m-%d"
START_DATE = settings.start_date()

hourly = dg.HourlyPartitionsDefinition(
    start_date=f"{START_DATE}-00:00", fmt=PARTITION_KEY_FORMAT, timezone="UTC", end_offset=1
)
daily = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=1)

# The session window (CONTRACT §4). The sessions that start on day D read the raw hours from
# SESSION_OWNER_HOURS + SESSION_LOOKBACK_HOURS before D's midnight to D + 1 day + the late-arrival
# hours, inclusive:
# - an event's ts is never after its arrival, so a session starting on D has its events in raw
#   hours from D 00:00 on, less the few minutes a Firehose buffer can straddle; the three hours
#   before midnight are read in full too (SESSION_LOOKBACK_HOURS);
# - a session belongs to the day of its first event: the day before those three hours is read
#   for session ids and times only, so that a session_id seen in the 27 hours before midnight
#   (one that began earlier, however long its gap across midnight) is left to an earlier day;
# - events arrive until D + 1 day + late_arrival_hours, after which the day is final (later
#   ones are filed under late_events/ and read as well).
# The sessions asset, its partition mapping, the automation and the backfill's plan all take it
# from here.
SESSION_LOOKBACK_HOURS = 3
SESSION_OWNER_HOURS = 24


def session_window(day: datetime, late_hours: int) -> tuple[datetime, datetime]:
    """The first and last raw hour (inclusive) whose events the sessions of ``day`` read (the
    hours before :func:`events_start` only for the session ids and times they hold)."""
    return (day - timedelta(hours=SESSION_OWNER_HOURS + SESSION_LOOKBACK_HOURS),
            day + timedelta(days=1, hours=late_hours))


def events_start(day: datetime) -> datetime:
    """The first raw hour whose events the sessions of ``day`` read in full."""
    return day - timedelta(hours=SESSION_LOOKBACK_HOURS)


def session_window_mapping(late_hours: int) -> dg.TimeWindowPartitionMapping:
    """The hourly ``events`` partitions of a day, as whole days of offsets: the days that hold
    the window's first hour (the look-back) through the day that holds its last."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-((SESSION_OWNER_HOURS + SESSION_LOOKBACK_HOURS + 23) // 24),
        end_offset=1 + late_hours // 24,
        allow_nonexistent_upstream_partitions=True,
    )


def hours_of(keys: list[str]) -> list[datetime]:
    """The hours of hourly partition keys, sorted."""
    return sorted(hour_of_partition_key(k) for k in keys)


def day_of(key: str) -> datetime:
    return datetime.strptime(key, DAY_FORMAT).replace(tzinfo=UTC)


def day_key(day: datetime) -> str:
    return day.strftime(DAY_FORMAT)


def first_hour() -> datetime:
    """The start of the first hourly partition."""
    return hourly.start_time_for_partition_key(hourly.get_first_partition_key())
