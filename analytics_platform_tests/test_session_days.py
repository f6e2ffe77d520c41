"""A session belongs to one day and is counted once, whatever the client sends (CONTRACT §4), and
one definition of a late event.

Hypothesis makes sessions whose events spread over up to four days, with gaps of any length
across midnight and arrivals hours after the event; the `events` and `sessions` steps run on
them (their own functions, no Dagster), and every day's sessions are compared with the oracle's
(oracle.py: the rule written record by record in Python)."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics_platform.config import load_referrers
from analytics_platform.defs.events.assets import process_hours
from analytics_platform.defs.sessions.assets import build_day
from analytics_platform.duck import connect
from analytics_platform.lake import floor_hour, open_raw_lake
from analytics_platform.resources import PipelineSettings
from analytics_platform.storage import Lake
from analytics_platform_tests import oracle as o
from analytics_platform_tests.raw_events import event

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
LATE_HOURS = 4
def run(tmp: Path, events: list[dict]) -> tuple[list[tuple], list[tuple], list]:
    """The events through both steps; (pipeline's sessions, oracle's sessions, hour stats)."""
    raw = open_raw_lake(tmp / "raw")
    by_hour: dict[datetime, list[dict]] = {}
    for e in events:
        arrived = datetime.fromisoformat(e["ingest_ts"].replace("Z", "+00:00"))
        by_hour.setdefault(floor_hour(arrived), []).append(e)
    for hour, evs in by_hour.items():
        body = b"".join(json.dumps(e).encode() + b"\n" for e in evs)
        raw.write_records(hour, gzip.compress(body), object_id="o")
    lake = Lake(tmp / "data", remote_url="")
    con = connect()
    # the hours that hold objects, as the raw-lake sensor asks for them: one batch of the step
    # (every hour in between, up to 158 of them, took up to four, each ~0.7 s of CPU)
    stats = process_hours(con, raw, lake, sorted(by_hour), LATE_HOURS)
    con.register("referrers", load_referrers(None))
    pipeline = PipelineSettings(late_arrival_hours=LATE_HOURS)
    first = min(by_hour).date() - timedelta(days=2)
    days = [first + timedelta(days=i) for i in range((max(by_hour).date() - first).days + 1)]
    for d in days:
        build_day(con, lake, datetime(d.year, d.month, d.day, tzinfo=UTC), pipeline)
    got = []
    if any((lake.root / "sessions").glob("*/*.parquet")):
        got = duckdb.sql(
            "SELECT session_id, session_date, events, session_start, session_end "
            f"FROM read_parquet('{lake.root}/sessions/*/*.parquet', hive_partitioning = false)"
        ).fetchall()
    orc = o.Oracle.for_simulation()
    orc.read_lake(tmp / "raw")
    want = [(s["session_id"], s["session_date"], s["events"], o.utc(s["session_start"]),
             o.utc(s["session_end"])) for s in orc.session_rows(set(days))]
    return sorted(got), sorted(want), stats


# a session: its events as (hours after its first event, hours until the event arrives)
session_st = st.lists(
    st.tuples(st.floats(0, 80, allow_nan=False), st.floats(0, 6, allow_nan=False)),
    min_size=1, max_size=6)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(starts=st.lists(st.floats(0, 72, allow_nan=False), min_size=1, max_size=4),
       shapes=st.lists(session_st, min_size=4, max_size=4))
# the findings of issue 16: a gap of more than three hours across midnight (a phantom session on
# the second day), and a session whose events span three days (three overlapping rows)
@example(starts=[21.0], shapes=[[(0, 0.01), (5.5, 0.01)], [], [], []])
@example(starts=[20.0], shapes=[[(0, 0.01), (10, 0.01), (30, 0.01), (52, 0.01)], [], [], []])
def test_a_session_is_one_row_on_the_day_of_its_first_event(
    tmp_path_factory, starts: list[float], shapes: list[list[tuple[float, float]]]
) -> None:
    events, n = [], 0
    for s, start in enumerate(starts):
        for offset, delay in shapes[s] or [(0, 0)]:
            ts = DAY0 + timedelta(hours=start + offset)
            events.append(event(n, s, ts.replace(microsecond=ts.microsecond // 1000 * 1000),
                                timedelta(hours=delay)))
            n += 1
    got, want, _ = run(tmp_path_factory.mktemp("days"), events)
    assert got == want
    ids = [g[0] for g in got]
    # one row per session_id unless the client came back after more than a day of silence
    for sid in set(ids):
        dates = sorted(g[1] for g in got if g[0] == sid)
        assert all(b - a >= timedelta(days=2) for a, b in itertools.pairwise(dates)), dates
    counted = sum(g[2] for g in got)
    assert counted <= len(events)


def test_the_phantom_and_the_three_day_session(tmp_path: Path) -> None:
    """Before: the first gave a row on each of two days, the second three rows (its events of
    the second and third day counted twice)."""
    gap = [event(1, 1, DAY0 + timedelta(hours=21), timedelta(seconds=1)),
           event(2, 1, DAY0 + timedelta(hours=26, minutes=30), timedelta(seconds=1))]
    long = [event(10 + i, 2, DAY0 + timedelta(hours=20 + 10 * i), timedelta(seconds=1))
            for i in range(6)]
    got, want, _ = run(tmp_path, gap + long)
    assert got == want
    rows = {(g[0][-2:], g[1]): g[2] for g in got}
    assert rows == {("01", date(2026, 3, 2)): 2, ("02", date(2026, 3, 2)): 3}


def test_one_definition_of_late(tmp_path: Path) -> None:
    """An event of 23:59:20 that arrives 40 seconds after midnight is on time for the events
    asset as for the sessions (both use duck.py's is_late); one that arrives after its day's
    window is late for both."""
    on_time = event(1, 1, DAY0 + timedelta(hours=23, minutes=59, seconds=20),
                    timedelta(seconds=80))
    late = event(2, 2, DAY0 + timedelta(hours=12),
                 timedelta(hours=12 + 24 + LATE_HOURS + 1))
    got, want, stats = run(tmp_path, [on_time, late])
    assert got == want
    assert sum(s.late_events for s in stats) == 1
    assert {s.hour: s.late_events for s in stats if s.events} == {
        DAY0 + timedelta(days=1): 0, DAY0 + timedelta(hours=12 + 12 + 24 + LATE_HOURS + 1): 1}
    con = connect()
    lake = Lake(tmp_path / "data", remote_url="")
    con.register("referrers", load_referrers(None))
    result = build_day(con, lake, DAY0, PipelineSettings(late_arrival_hours=LATE_HOURS))
    assert (result["sessions"], result["late_events"]) == (2, 1)


def hashed(e: dict, visitor_hash: str = "0123456789abcdef") -> dict:
    """``e`` without consent: no session_id, the collector's visitor_hash instead."""
    e = {k: v for k, v in e.items() if k != "session_id"}
    return {**e, "visitor_hash": visitor_hash, "consent": False}


def test_an_event_of_the_evening_before_that_arrives_days_late(tmp_path: Path) -> None:
    """A session's first event, of 23:50, arrives three days later (a device offline), after
    the window of the next day too; its second, of 00:10, on time. Before: the session had a
    row on each day and the 00:10 event was counted on both (the next day read only the late
    events of its own date and the one after, so its `earlier` check never saw 23:50). Now one
    session, on the day of its first event, as the oracle says; with consent (session_id) and
    without (a visitor_hash, whose late events are of a later day's hash)."""
    midnight = DAY0 + timedelta(days=1)
    days_late = timedelta(days=3, hours=10)
    consented = [event(1, 1, midnight - timedelta(minutes=10), days_late),
                 event(2, 1, midnight + timedelta(minutes=10), timedelta(seconds=1))]
    # the hash of the day both arrive on: the same for both (CONTRACT §2)
    anonymous = [hashed(event(3, 2, midnight - timedelta(minutes=10), days_late)),
                 hashed(event(4, 2, midnight + timedelta(minutes=10), days_late))]
    # another visit of the first day, on time: the days from the day before it are built
    anchor = event(5, 3, DAY0 + timedelta(hours=12), timedelta(seconds=1))
    for n, (evening, after_midnight) in enumerate((consented, anonymous)):
        got, want, _ = run(tmp_path / str(n), [anchor, evening, after_midnight])
        assert got == want
        assert sorted((g[1], g[2]) for g in got) == [(DAY0.date(), 1), (DAY0.date(), 2)]
        # and no event on two days in session_events
        rows = duckdb.sql(
            "SELECT event_id, count(*) FROM read_parquet("
            f"'{tmp_path / str(n)}/data/lake/session_events/*/*.parquet') GROUP BY 1 "
            "HAVING count(*) > 1"
        ).fetchall()
        assert rows == []
