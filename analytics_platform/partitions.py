"""Partitions of the pipeline: hourly for raw data and events, daily for sessions and marts.

The first partition is ``$ANALYTICS_START_DATE`` (default 2026-01-01). The current hour and day
are included (``end_offset=1``) so fresh data can be processed before the period closes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from analytics_platform.lake import PARTITION_KEY_FORMAT, hour_of_partition_key

START_DATE = os.environ.get("ANALYTICS_START_DATE") or "2026-01-01"
DAY_FORMAT = "%Y-%m-%d"

hourly = dg.HourlyPartitionsDefinition(
    start_date=f"{START_DATE}-00:00", fmt=PARTITION_KEY_FORMAT, timezone="UTC", end_offset=1
)
daily = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=1)


def hours_of(keys: list[str]) -> list[datetime]:
    """The hours of hourly partition keys, sorted."""
    return sorted(hour_of_partition_key(k) for k in keys)


def day_of(key: str) -> datetime:
    return datetime.strptime(key, DAY_FORMAT).replace(tzinfo=UTC)


def day_key(day: datetime) -> str:
    return day.strftime(DAY_FORMAT)


def day_range(first: datetime, last: datetime) -> list[datetime]:
    out, d = [], first
    while d <= last:
        out.append(d)
        d += timedelta(days=1)
    return out


def hour_folder(hour: datetime) -> str:
    """The lake folder name of an hourly partition (no ':' in file names)."""
    return f"hour={hour:%Y-%m-%dT%H}"


def day_folder(day: datetime) -> str:
    return f"date={day:%Y-%m-%d}"
