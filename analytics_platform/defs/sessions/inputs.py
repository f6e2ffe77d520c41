"""The files a day's sessions read (the session window, ``partitions.session_window``): shared
by the ``sessions`` asset, which builds the day from them, and its reconciliation check, which
counts the same events again."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from analytics_platform import layout
from analytics_platform.lake import hours_between
from analytics_platform.partitions import events_start, session_window
from analytics_platform.storage import Lake


class DayInputs(NamedTuple):
    window: list[str]  # events files read in full
    late: list[str]  # late-events files (dates: the day and the next)
    window_end: datetime  # the window's last raw hour
    before: list[str]  # events files of the hours before: session ids and times only


def day_inputs(lake: Lake, day: datetime, late_hours: int) -> DayInputs:
    """The files the sessions of ``day`` read: the events files of its window
    (``partitions.session_window``), split where they start to be read in full, and the late
    events filed under the dates of ``day`` and the day after (the sessions asset keeps only
    those that arrived after the window). See also :func:`late_before`."""
    first, window_end = session_window(day, late_hours)
    full = events_start(day)
    before = [layout.hour_folder(h) for h in hours_between(first, full - timedelta(hours=1))]
    hours = [layout.hour_folder(h) for h in hours_between(full, window_end)]
    late = []
    for d in (day, day + timedelta(days=1)):
        late += lake.files(layout.LATE_EVENTS, layout.late_folder(d))
    return DayInputs(lake.existing("events", hours), late, window_end,
                     lake.existing("events", before))


def late_before(lake: Lake, day: datetime, late_hours: int) -> list[str]:
    """The late-events files of the two dates before ``day`` that arrived after its window:
    an event of the 27 hours before midnight leaves its session to an earlier day (CONTRACT
    §4) however late it arrives, and one of 23:50 that arrives three days later is in no hour
    the window reads. Only the files of the hours after the window (their names say:
    ``late_events/ts_date=…/hour=….parquet``), which are few: events that late are rare. None
    of their rows is the day's (day_events.sql keeps those dated the day and the next)."""
    window_end = session_window(day, late_hours)[1]
    return [f for d in (day - timedelta(days=2), day - timedelta(days=1))
            for f in lake.files(layout.LATE_EVENTS, layout.late_folder(d))
            if layout.hour_of_folder(Path(f).stem) > window_end]
