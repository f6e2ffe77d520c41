"""What each ``events`` partition records for the automation, in its materialisation's metadata:

- ``raw_fingerprint``: the hour's raw objects when the run listed them (:func:`fingerprint`). The
  raw-lake sensor and the hourly schedule compare the hour's objects now with it, so an hour that
  a backfill (or any run) already processed as it is gets no second run.
- ``session_days``: the days whose sessions the hour's events can change, those it holds and
  those it held before the run (:func:`session_days`).
  The ``downstream_automation`` sensor refreshes those days only, not every day whose window
  holds the hour (three or four).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta

import duckdb

from analytics_platform import layout, sql
from analytics_platform.lake import RawLake, RawObject, floor_hour, hours_between, partition_key
from analytics_platform.partitions import (
    SESSION_LOOKBACK_HOURS,
    SESSION_OWNER_HOURS,
    day_key,
    session_window,
)
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


def reads_hour(day: date, hour: datetime, ts_days: Collection[date], late_hours: int) -> bool:
    """Whether the sessions of ``day`` read events of ``hour`` whose ts are read by the days
    ``ts_days`` (:func:`ts_days`): the hour is in the day's window, or after it and holds events
    the day reads as late events: of the day or the next (it counts them), or of the 27 hours
    before it (its ``earlier`` check: CONTRACT §4; sessions/inputs.py)."""
    first, last = session_window(datetime(day.year, day.month, day.day, tzinfo=hour.tzinfo),
                                 late_hours)
    if first <= hour <= last:
        return True
    return hour > last and day in ts_days


def ts_days(d: date, top: date) -> set[date]:
    """The days whose sessions read an event dated ``d`` whose ``earlier`` check reaches up to
    ``top`` (hour_sessions.sql): the day before and the day count it, the next one or two look
    for it in the 27 hours before their midnight."""
    return {d + timedelta(days=n) for n in range(-1, (top - d).days + 1)}


def snapshot_sessions(con: duckdb.DuckDBPyConnection, lake: Lake, hours: list[datetime]) -> None:
    """Keep, before a run rewrites the events of ``hours``, the sessions and dates they hold
    (hour_sessions.sql, a few rows per session): :func:`session_days` then counts the days of
    the events the run removed (an erased raw object, an hour now empty) as well as those of
    the events it wrote. One narrow read of the hours' own files."""
    files = lake.existing("events", [layout.hour_folder(h) for h in hours])
    _hour_sessions(con, "hour_sessions_before", files)


def _hour_sessions(con: duckdb.DuckDBPyConnection, table: str, files: list[str]) -> None:
    query = sql.load("automation/hour_sessions")
    params: dict = {"files": files, "before_hours": SESSION_OWNER_HOURS + SESSION_LOOKBACK_HOURS}
    if not files:  # read_parquet refuses an empty list: the same columns, no rows
        query, params = _NO_SESSIONS, {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {query}", params)


_NO_SESSIONS = ("SELECT NULL::TIMESTAMP AS raw_hour, NULL::VARCHAR AS session, NULL::DATE AS d, "
                "NULL::DATE AS top WHERE false")


def session_days(con: duckdb.DuckDBPyConnection, lake: Lake, hours: list[datetime],
                 late_hours: int, now: datetime) -> dict[str, list[str]]:
    """The days whose sessions the events of ``hours`` (just written, and as they were before:
    :func:`snapshot_sessions`, when it was called on ``con``) can change, by partition key: the
    dates of ts of every session with events in the hour, over the hours around it (as far
    either side as a day's session window reaches: a session that crosses midnight changes both
    days, and the day it is left to), kept when that day reads the hour (:func:`reads_hour`). An
    hour of one day's events refreshes that day alone, where its hour is in the windows of two
    or three days. The distinct dates, not every date from the first to the last: a day's
    sessions depend on a session only through its events of that day.

    Conservative where it cannot know more: records without a session id are one session per
    visitor_hash to it; a session is seen only as far as those hours go (a day's sessions see no
    further); and a day whose own events are older than those hours (an event that arrives days
    after it happened, a wrong device clock) is refreshed whenever it reads the hour."""
    out: dict[str, set[str]] = {partition_key(h): set() for h in hours}
    # without snapshot_sessions on ``con``, no events before the run
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS hour_sessions_before AS {_NO_SESSIONS}")
    _hour_sessions(con, "hour_sessions",
                   lake.existing("events", [layout.hour_folder(h) for h in hours]))
    if not con.execute("SELECT count(*) FROM (SELECT * FROM hour_sessions UNION ALL "
                       "SELECT * FROM hour_sessions_before)").fetchall()[0][0]:
        con.execute("DROP TABLE hour_sessions; DROP TABLE hour_sessions_before")
        return {k: [] for k in out}
    # every hour a day that reads these hours reads too: a session seen there can move
    first, last = session_window(datetime(2000, 1, 1, tzinfo=hours[0].tzinfo), late_hours)
    reach = last - first + timedelta(days=1)
    near_start = min(hours) - reach
    near_hours = hours_between(near_start, min(max(hours) + reach, floor_hour(now)))
    near = lake.existing("events", [layout.hour_folder(h) for h in near_hours])
    # a day's own events arrive from SESSION_LOOKBACK_HOURS before its midnight on (an event's ts
    # is never after its arrival): the days from here on have all of theirs in `near`
    seen_from = (near_start + timedelta(hours=SESSION_LOOKBACK_HOURS + 23)).date()
    rows = con.execute(sql.load("automation/session_spans", near=(
        "SELECT NULL::VARCHAR AS visitor_hash WHERE false UNION ALL BY NAME SELECT * FROM "
        "read_parquet($near, union_by_name = true, hive_partitioning = false)" if near else
        "SELECT NULL::VARCHAR AS session_id, NULL::VARCHAR AS visitor_hash, "
        "NULL::TIMESTAMP AS ts WHERE false")), {"near": near} if near else {}).fetchall()
    con.execute("DROP TABLE hour_sessions; DROP TABLE hour_sessions_before")
    for raw_hour, reads, dates in rows:
        hour = raw_hour.replace(tzinfo=hours[0].tzinfo)
        days = out.setdefault(partition_key(hour), set())
        read_by = set().union(*(ts_days(r["d"], r["top"]) for r in reads))
        candidates = set(dates) | {d for d in read_by if d < seen_from}
        for d in candidates:
            if reads_hour(d, hour, read_by, late_hours):
                days.add(day_key(datetime(d.year, d.month, d.day)))
    return {k: sorted(v) for k, v in out.items()}


def hour_metadata(fingerprints: Mapping[str, str], days: Mapping[str, list[str]]
                  ) -> dict[str, dict[str, object]]:
    """The metadata each ``events`` partition records, by partition key."""
    return {k: {FINGERPRINT: fp, SESSION_DAYS: days.get(k, [])} for k, fp in fingerprints.items()}
