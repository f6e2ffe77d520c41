"""The files a day's sessions read (the session window, ``partitions.session_window``): shared
by the ``sessions`` asset, which builds the day from them, and its reconciliation check, which
counts the same events again."""

from __future__ import annotations

from datetime import datetime, timedelta

from analytics_platform import layout
from analytics_platform.lake import hours_between
from analytics_platform.partitions import session_window
from analytics_platform.storage import Lake


def day_inputs(lake: Lake, day: datetime, late_hours: int
               ) -> tuple[list[str], list[str], datetime]:
    """(events files of the day's window, late-events files to add, last hour of the window).

    The late events filed under the dates of ``day`` and the day after are read too (the
    sessions asset keeps only those that arrived after the window)."""
    first, window_end = session_window(day, late_hours)
    hours = [layout.hour_folder(h) for h in hours_between(first, window_end)]
    late = []
    for d in (day, day + timedelta(days=1)):
        late += lake.files(layout.LATE_EVENTS, layout.late_folder(d))
    return lake.existing("events", hours), late, window_end
