"""Issue 21: the faster `sessions` statement writes the same files as the simple one.

``sessions/day_events.sql`` ranks only the event_ids read more than once (copies are rare) and
makes sessions only for the hashes with an event on the day. The simple statement ranks every
row of the window and makes sessions for every hash it reads. Both run through the real events
and sessions steps on simulated traffic with more copies, late and very late deliveries than the
defaults, and must write byte-identical ``sessions`` and ``session_events`` files, day by day.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from analytics_platform import sql
from analytics_platform.config import load_referrers
from analytics_platform.defs.events.assets import process_hours
from analytics_platform.defs.sessions.assets import build_day
from analytics_platform.duck import connect
from analytics_platform.lake import hours_between, open_raw_lake
from analytics_platform.resources import PipelineSettings
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.storage import Lake

START = date(2026, 3, 2)
DAYS = 3

# The simple statement's copy choice and hash sessions: every row ranked, every hash.
SIMPLE = """winners AS (
    SELECT raw_key, raw_pos, session_id, visitor_hash, event_id, ts FROM read
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {first_copy_order}) = 1
),
hash_gaps AS (
    SELECT raw_key, raw_pos, visitor_hash, event_id, ts,
           coalesce(ts - lag(ts) OVER w > to_minutes($inactivity_minutes::BIGINT), true)::INTEGER
               AS starts
    FROM winners WHERE session_id IS NULL
    WINDOW w AS (PARTITION BY visitor_hash ORDER BY ts, event_id)
),
"""


def simple_day_events() -> str:
    """day_events.sql with its fast copy choice and hash filter replaced by the simple ones."""
    text = sql._statement("sessions/day_events")
    simple, n = re.subn(r"narrow AS MATERIALIZED \(.*?\n(?=hash_runs AS \()", SIMPLE, text,
                        flags=re.S)
    assert n == 1, "day_events.sql no longer has the fast CTEs this test replaces"
    return simple


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Three days of events, with many copies and late deliveries, hash sessions and ids."""
    data = tmp_path_factory.mktemp("fast")
    traffic = generate(SimConfig(days=DAYS, visitors_per_day=150, start=START, seed=21,
                                 duplicate_share=0.05, late_share=0.05, very_late_share=0.01))
    raw = open_raw_lake(data / "raw")
    write_traffic(traffic, raw)
    first = datetime(START.year, START.month, START.day, tzinfo=UTC)
    out = Lake(data, remote_url="")
    process_hours(connect(), raw, out, hours_between(first, first + timedelta(days=DAYS + 2)),
                  PipelineSettings().late_arrival_hours)
    return out


def build(lake: Lake, into: Path) -> None:
    pipeline = PipelineSettings()
    con = connect()
    con.register("referrers", load_referrers(pipeline.referrers_file))
    start = datetime(START.year, START.month, START.day, tzinfo=UTC)
    for i in range(DAYS):
        build_day(con, lake, start + timedelta(days=i), pipeline)
    for table in ("sessions", "session_events"):
        shutil.copytree(lake.table_dir(table), into / table)


def test_fast_sessions_write_the_simple_files(lake: Lake, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    con = connect()
    events = lake.glob("events")
    # the data exercises both changes: events read more than once, and sessions from hashes
    copies, hashed = con.execute(
        "SELECT (SELECT count(*) FROM (SELECT event_id FROM read_parquet($f) GROUP BY 1 "
        "HAVING count(*) > 1)), count(*) FILTER (session_id IS NULL) FROM read_parquet($f)",
        {"f": events}).fetchall()[0]
    assert copies >= 10 and hashed >= 1000, (copies, hashed)

    build(lake, tmp_path / "fast")
    statement = sql._statement
    simple = simple_day_events()
    monkeypatch.setattr(sql, "_statement",
                        lambda name: simple if name == "sessions/day_events" else statement(name))
    build(lake, tmp_path / "simple")

    files = sorted(p.relative_to(tmp_path / "simple")
                   for p in (tmp_path / "simple").rglob("*.parquet"))
    assert len(files) == 2 * DAYS
    assert files == sorted(p.relative_to(tmp_path / "fast")
                           for p in (tmp_path / "fast").rglob("*.parquet"))
    for f in files:
        a, b = tmp_path / "fast" / f, tmp_path / "simple" / f
        # rows and their order (EXCEPT ALL both ways, numbered), then the bytes themselves
        numbered = "SELECT *, row_number() OVER () AS n FROM read_parquet('{}')"
        diff = con.execute(f"SELECT count(*) FROM ({numbered.format(a)} EXCEPT ALL "
                           f"{numbered.format(b)}) UNION ALL SELECT count(*) FROM "
                           f"({numbered.format(b)} EXCEPT ALL {numbered.format(a)})").fetchall()
        assert diff == [(0,), (0,)], f
        assert con.execute(f"SELECT count(*) FROM '{a}'").fetchall()[0][0] > 0, f
        assert a.read_bytes() == b.read_bytes(), f
