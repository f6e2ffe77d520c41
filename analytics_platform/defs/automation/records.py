"""What each ``events`` partition records for the automation, in its materialisation's metadata:

- ``raw_fingerprint``: the hour's raw objects when the run listed them (:func:`fingerprint`). The
  raw-lake sensor and the hourly schedule compare the hour's objects now with it, so an hour that
  a backfill (or any run) already processed as it is gets no second run.
- ``session_days``: the days whose sessions the hour's events can change (:func:`session_days`).
  The ``downstream_automation`` sensor refreshes those days only, not every day whose window
  holds the hour (three or four).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime, timedelta

import duckdb

from analytics_platform import layout, sql
from analytics_platform.lake import RawLake, RawObject, floor_hour, hours_between, partition_key
from analytics_platform.partitions import day_key, session_window
from analytics_platform.storage import Lake

FINGERPRINT = "raw_fingerprint"
SESSION_DAYS = "session_days"


def fingerprint(objects: list[RawObject]) -> str:
    """Changes whenever an object is added, removed or rewritten in an hour."""
    h = hashlib.sha1()
    for o in objects:
        h.update(f"{o.key}\0{o.size}\n".encode())
    return f"{len(objects)}-{h.hexdigest()[:12]}"


def raw_fingerprints(raw: RawLake, hours: list[datetime]) -> dict[str, str]:
    """Each hour's fingerprint, by partition key. Listed *before* the hours are read: an object
    that lands in between is then processed but not in the fingerprint, which costs one more run
    at worst; listed after, it could be in the fingerprint without having been processed, and
    never be (one LIST an hour: 480 a day at 1M events a month, $0.07 a month on S3)."""
    return {partition_key(h): fingerprint(raw.list_hour(h)) for h in hours}


def reads_hour(day: date, hour: datetime, hour_dates: tuple[date, date], late_hours: int) -> bool:
    """Whether the sessions of ``day`` read events of ``hour`` whose ts dates span
    ``hour_dates``: the hour is in the day's window, or after it and holds events of the day or
    the next, which the day reads as late events (CONTRACT §4)."""
    first, last = session_window(datetime(day.year, day.month, day.day, tzinfo=hour.tzinfo),
                                 late_hours)
    if first <= hour <= last:
        return True
    lo, hi = hour_dates
    return hour > last and lo <= day + timedelta(days=1) and hi >= day


def session_days(con: duckdb.DuckDBPyConnection, lake: Lake, hours: list[datetime],
                 late_hours: int, now: datetime) -> dict[str, list[str]]:
    """The days whose sessions the events of ``hours`` (just written) can change, by partition
    key: the dates of every session with events in the hour, from its first event to its last
    over the hours around it (as far either side as a day's session window reaches: a session
    that crosses midnight changes both days, and the day it is left to), kept when that day
    reads the hour (:func:`reads_hour`). An hour of one day's events refreshes that day alone,
    where its hour is in the windows of two or three days.

    Conservative where it cannot know more: records without a session id are one session to
    it, and a session is seen only as far as those hours go (a day's sessions see no further)."""
    out: dict[str, set[str]] = {partition_key(h): set() for h in hours}
    here = lake.existing("events", [layout.hour_folder(h) for h in hours])
    if not here:
        return {k: [] for k in out}
    # every hour a day that reads these hours reads too: a session seen there can move
    first, last = session_window(datetime(2000, 1, 1, tzinfo=hours[0].tzinfo), late_hours)
    reach = last - first + timedelta(days=1)
    near_hours = hours_between(min(hours) - reach, min(max(hours) + reach, floor_hour(now)))
    near = lake.existing("events", [layout.hour_folder(h) for h in near_hours])
    columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($f)",
                                         {"f": here[0]}).fetchall()}
    # records without a session id make their session from visitor_hash (CONTRACT, issue 18)
    key = ("coalesce(session_id, visitor_hash)" if "visitor_hash" in columns else "session_id")
    rows = con.execute(sql.load("automation/session_spans", session_key=key),
                       {"here": here, "near": near}).fetchall()
    for raw_hour, lo, hi, h_lo, h_hi in rows:
        hour = raw_hour.replace(tzinfo=hours[0].tzinfo)
        days = out.setdefault(partition_key(hour), set())
        d = lo
        while d <= hi:
            if reads_hour(d, hour, (h_lo, h_hi), late_hours):
                days.add(day_key(datetime(d.year, d.month, d.day)))
            d += timedelta(days=1)
    return {k: sorted(v) for k, v in out.items()}


def hour_metadata(fingerprints: Mapping[str, str], days: Mapping[str, list[str]]
                  ) -> dict[str, dict[str, object]]:
    """The metadata each ``events`` partition records, by partition key."""
    return {k: {FINGERPRINT: fp, SESSION_DAYS: days.get(k, [])} for k, fp in fingerprints.items()}
