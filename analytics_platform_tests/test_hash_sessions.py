"""Sessions made from visitor_hash (CONTRACT §4): the same visits give the same sessions whether
the tracker sent its session ids (consent) or sent no id and the handler gave each event the
day's visitor_hash. Visits stay within one UTC day: the salt, and so the hash, changes at
midnight. Run through the real events and sessions steps (process_hours, build_day)."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_platform.config import load_referrers
from analytics_platform.defs.events.assets import process_hours
from analytics_platform.defs.sessions.assets import build_day
from analytics_platform.duck import connect
from analytics_platform.lake import hours_between, open_raw_lake
from analytics_platform.resources import PipelineSettings
from analytics_platform.storage import Lake

DAY = datetime(2026, 3, 2, tzinfo=UTC)
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
# what the two runs must agree on (the ids differ by construction)
COMPARED = ("session_start", "session_end", "duration_s", "events", "pageviews", "entry_page",
            "exit_page", "interactions", "is_bounce", "converted", "source", "medium")


def fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# A visitor's events: seconds since the day began, up to 40 minutes apart (so both sides of the
# 30-minute rule, and exactly 30 minutes, occur), all before midnight.
gaps = st.lists(st.sampled_from([0, 1, 59, 600, 1799, 1800, 1801, 2400]) | st.integers(0, 2400),
                min_size=1, max_size=8)
visitors = st.lists(st.tuples(st.integers(0, 80_000), gaps), min_size=1, max_size=4)


def visits(plan: list[tuple[int, list[int]]]) -> list[list[tuple[datetime, str, str]]]:
    """Per visitor, its events (time, type, path), in order, within the day."""
    out = []
    for start, steps in plan:
        t, evs = DAY + timedelta(seconds=start), []
        for i, g in enumerate(steps):
            t += timedelta(seconds=g, milliseconds=i)  # no two events at the same instant
            if t >= DAY + timedelta(days=1) - timedelta(seconds=5):
                break
            evs.append((t, "page_view" if i % 3 == 0 else "scroll_depth", f"/p{i % 4}"))
        out.append(evs)
    return out


def records(plan: list[list[tuple[datetime, str, str]]], consent: bool) -> list[dict[str, Any]]:
    """The raw records of the visits: with the tracker's ids (its rule: a new session_id after
    30 minutes without an event), or with none and the visitor's hash of the day."""
    out = []
    for v, evs in enumerate(plan):
        vid, sid, last = str(uuid.UUID(int=v + 1)), None, None
        for i, (t, etype, path) in enumerate(evs):
            if last is None or t - last > timedelta(minutes=30):
                sid = str(uuid.UUID(int=(v + 1) << 64 | i))
            last = t
            r: dict[str, Any] = {
                "event_type": etype, "event_id": str(uuid.UUID(int=(v + 1) << 96 | i)),
                "session_id": sid if consent else None, "page_path": path,
                "page_host": "example.com", "event_ts": fmt(t), "sent_ts": fmt(t),
                "props": {"depth": 50} if etype == "scroll_depth" else {},
                "ingest_ts": fmt(t + timedelta(milliseconds=300)), "user_agent": UA,
                "schema_version": 1, "consent": consent}
            if consent:
                r["visitor_id"] = vid
            else:
                r["visitor_hash"] = f"{v + 1:016x}"
            out.append(r)
    return out


def sessions_of(root: Path, recs: list[dict[str, Any]]) -> list[tuple]:
    raw = open_raw_lake(root / "raw")
    for i, r in enumerate(recs):
        t = datetime.fromisoformat(r["ingest_ts"].replace("Z", "+00:00"))
        raw.write_records(t, gzip.compress(json.dumps(r).encode() + b"\n"), object_id=f"o{i}")
    lake = Lake(root, remote_url="")
    con = connect()
    pipeline = PipelineSettings(late_arrival_hours=24)
    process_hours(con, raw, lake, list(hours_between(DAY - timedelta(hours=3),
                                                     DAY + timedelta(days=2))), 24)
    con.register("referrers", load_referrers(None))
    build_day(con, lake, DAY, pipeline)
    files = lake.existing("sessions", ["date=2026-03-02"])
    got = duckdb.connect().execute(
        f"SELECT {', '.join(COMPARED)}, session_id, visitor_id, visitor_key "
        "FROM read_parquet($f) ORDER BY session_start", {"f": files}).fetchall() if files else []
    con.close()
    return got


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(visitors)
def test_the_same_visits_give_the_same_sessions_either_way(tmp_path_factory: Any,
                                                           plan: list[tuple[int, list[int]]]
                                                           ) -> None:
    evs = visits(plan)
    with_ids = sessions_of(tmp_path_factory.mktemp("ids"), records(evs, consent=True))
    hashed = sessions_of(tmp_path_factory.mktemp("hash"), records(evs, consent=False))
    n = len(COMPARED)
    assert sorted(r[:n] for r in with_ids) == sorted(r[:n] for r in hashed)
    # the tracker's rule, counted here: a session per run of events less than 30 minutes apart
    expected = sum(1 for v in evs for i, e in enumerate(v)
                   if i == 0 or e[0] - v[i - 1][0] > timedelta(minutes=30))
    assert len(hashed) == expected
    # a hash-made session has a deterministic UUID and no visitor_id; its visitor is the hash
    assert all(r[n + 1] is None and uuid.UUID(r[n]) for r in hashed)
    assert len({r[n + 2] for r in hashed}) == len({r[n + 2] for r in with_ids}) == len(
        [v for v in evs if v])


def test_a_rerun_gives_the_same_session_ids(tmp_path: Path) -> None:
    evs = visits([(3600, [0, 60, 2000, 30]), (7200, [0, 1801])])
    recs = records(evs, consent=False)
    first = sessions_of(tmp_path / "a", recs)
    again = sessions_of(tmp_path / "b", list(reversed(recs)))
    assert [r[len(COMPARED)] for r in first] == [r[len(COMPARED)] for r in again]
    assert len(first) == 4


# the reconcile check's count before issue 21 (a correlated EXISTS), kept as a second formulation
OLD_RECOUNT = (
    "WITH e AS (SELECT * FROM (SELECT NULL::VARCHAR AS visitor_hash WHERE false) "
    "UNION ALL BY NAME SELECT * FROM read_parquet($src, union_by_name = true, "
    "hive_partitioning = false)), s AS (SELECT * FROM read_parquet($f, hive_partitioning = false)) "
    "SELECT count(DISTINCT event_id) FROM e "
    "WHERE (session_id IN (SELECT session_id FROM s) OR (session_id IS NULL AND EXISTS ("
    "SELECT 1 FROM s WHERE s.visitor_hash = e.visitor_hash "
    "AND e.ts BETWEEN s.session_start AND s.session_end))) "
    "AND ts >= $day::TIMESTAMP AND ts < $day::TIMESTAMP + INTERVAL 2 DAYS")


def test_the_reconcile_check_recounts_both_kinds_and_fails_on_a_wrong_session(
        tmp_path: Path) -> None:
    """The sessions check recounts the day's events from the events files: it agrees with the
    records sent (one of them twice) and with its former formulation, and fails when a session
    with ids claims one event more, or a hashed session ends before its last event."""
    from analytics_platform import sql
    from analytics_platform.defs.sessions.checks import reconcile
    from analytics_platform.defs.sessions.inputs import day_inputs

    evs = visits([(3600, [0, 60, 60, 2000]), (7200, [0, 1801]), (9000, [0, 5, 5])])
    hashed = records(evs[:2], consent=False)
    for r in hashed:  # ids apart from the consented visitor's
        r["event_id"] = str(uuid.UUID(int=uuid.UUID(r["event_id"]).int | 1 << 127))
    retry = {**hashed[1], "ingest_ts": fmt(evs[0][1][0] + timedelta(hours=1))}
    recs = hashed + records(evs[2:], consent=True) + [retry]
    sessions_of(tmp_path, recs)
    lake, con, pipeline = Lake(tmp_path, remote_url=""), connect(), PipelineSettings()
    part = lake.existing("sessions", ["date=2026-03-02"])[0]
    inputs = day_inputs(lake, DAY, pipeline.late_arrival_hours)
    params = {"src": inputs.window + inputs.late, "f": [part], "day": DAY.date()}
    recount = sql.load("sessions/reconcile")
    assert con.execute(recount, params).fetchall() == con.execute(OLD_RECOUNT, params).fetchall(
        ) == [(len(recs) - 1,)]
    check = reconcile(con, lake, [DAY], pipeline)
    assert check.passed and check.metadata["days_checked"].value == 1
    con.execute("CREATE TEMP TABLE good AS SELECT * FROM read_parquet($f, hive_partitioning = "
                "false)", {"f": part})

    def tampered(change: str) -> list[str]:
        con.execute(f"COPY (SELECT * REPLACE ({change}) FROM good) TO '{part}' (FORMAT parquet)")
        check = reconcile(con, lake, [DAY], pipeline)
        assert not check.passed
        return check.metadata["mismatches"].text.split(": ", 1)[1:]

    consented = "events + (visitor_hash IS NULL)::INT AS events"
    assert tampered(consented) == [f"sessions say {len(recs)}, events {len(recs) - 1}"]
    # the hash's first session (3 events) ends a millisecond before its last event
    cut = ("CASE WHEN visitor_hash IS NOT NULL AND events = 3 "
           "THEN session_end - INTERVAL 1 MILLISECOND ELSE session_end END AS session_end")
    assert tampered(cut) == [f"sessions say {len(recs) - 1}, events {len(recs) - 2}"]
    con.close()
