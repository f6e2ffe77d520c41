"""Issue 21: the faster statements write the same as the simple ones.

The events step checks props and scrubs them once per distinct value (below); the `sessions`
statement is described here:

``sessions/day_events.sql`` ranks only the event_ids read more than once (copies are rare) and
makes sessions only for the hashes with an event on the day. The simple statement ranks every
row of the window and makes sessions for every hash it reads. Both run through the real events
and sessions steps on simulated traffic with more copies, late and very late deliveries than the
defaults, and must write byte-identical ``sessions`` and ``session_events`` files, day by day.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from analytics_platform import sql
from analytics_platform.config import load_referrers
from analytics_platform.defs.events import validation
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


# The events step checks the props rules, and scrubs props, once per distinct (event type, props
# type, props text), and joins the result back to the records (validation.validated_sql). The
# simple way, one evaluation per record, is written out below from the same generated pieces.
def simple_reasons_and_props(source: str) -> str:
    return f"""
    WITH parsed AS (SELECT *, coalesce(json_valid(text), false) AS is_json FROM {source}),
    extracted AS (
        SELECT *, CASE WHEN is_json THEN json_type(text, {validation._PATHS}) END AS t,
               CASE WHEN is_json THEN json_extract_string(text, {validation._PATHS}) END AS s
        FROM parsed),
    typed AS (
        SELECT *, {validation.typed_columns_sql()},
               CASE WHEN t_props = 'OBJECT' THEN s_props::JSON END AS p FROM extracted),
    mapped AS (SELECT *, try_cast(p AS MAP(VARCHAR, JSON)) AS pm FROM typed)
    SELECT n, {validation.reason_sql(raw=True)} AS reason,
           scrub_props(CASE WHEN t_props = 'OBJECT' THEN s_props END) AS props
    FROM mapped"""


def _tricky_lines() -> list[str]:
    """Records whose props repeat, differ only by event type, hold addresses or escapes, break
    a rule or are no object; among good records of other kinds and lines that are no JSON."""
    base = {"event_id": "7d3c3a4e-3b8e-4f0a-9c1e-2f6d7a8b9c0d", "page_path": "/a",
            "event_ts": "2026-03-02T12:00:00Z", "ingest_ts": "2026-03-02T12:00:01Z",
            "session_id": "1c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f", "schema_version": 1}
    props: list[object] = [
        None, {}, [], "x", 3, {"depth": 50}, {"depth": 50.0}, {"depth": 33}, {"seconds": 30},
        {"seconds": 86_400}, {"seconds": -1}, {"name": "signup"}, {"name": ""},
        {"host": "example.org"}, {"host": "[2001:db8::1]"}, {"host": "a b"}, {"ext": "pdf"},
        {"ext": "p.df"}, {"lcp": 2500, "cls": 0.05}, {"ttfb": 841.3}, {"cls": 1001},
        {"lcp": None}, {"experiment": "e"}, {"experiment": "e", "variant": "b"},
        {"email": "jamie@example.com", "ip": "10.1.2.3"}, {"jamie@example.com": 1},
        {"v": "1.2.3.4,5.6.7.8"}, {"note": "a\nb\u0001c", "x": "\u00011.2.3.4"},
        {"k" * 65: 1}, {"": 1}, {"nested": {"a": 1}}, {"list": [1]}, {"long": "x" * 513},
        {f"k{i}": i for i in range(21)}, {"ipv6": "fe80::1%eth0", "t": "10:30"},
    ]
    lines: list[str] = []
    for i in range(40):  # many rows, so that a vector mixes kinds and selections are sparse
        for event_type in ("page_view", "scroll_depth", "time_on_page", "custom", "outbound",
                           "download", "engagement", "web_vitals", "nope"):
            for j, p in enumerate(props):
                record = {**base, "event_type": event_type}
                if p is not None:
                    record["props"] = p
                if (i + j) % 7 == 0:
                    record["props_cls"] = 0.1 * i  # an unknown field, ignored
                lines.append(json.dumps(record, ensure_ascii=(i + j) % 2 == 0))
        # web vitals whose numbers are all different, as in real traffic
        lines.append(json.dumps({**base, "event_type": "web_vitals",
                                 "props": {"lcp": 1000 + i, "cls": i / 1000, "ttfb": i + 0.5}}))
    lines += ["{", "[1,2]", "null", '{"a":1}{"b":2}', '{"props":{"a":1,"a":"x@y.org"},'
              '"event_type":"custom"}']
    return lines


def test_props_checked_once_per_distinct_value_agree_with_every_record() -> None:
    con = connect()
    lines = _tricky_lines()
    source = "(SELECT unnest($lines) AS text, generate_subscripts($lines, 1) AS n)"
    fast = validation.validated_sql(source, raw=True,
                                    per_props={"props": "scrub_props(p_text)"})
    got = con.execute(f"SELECT n, reason, props FROM ({fast}) ORDER BY n",
                      {"lines": lines}).fetchall()
    want = con.execute(f"SELECT * FROM ({simple_reasons_and_props(source)}) ORDER BY n",
                       {"lines": lines}).fetchall()
    assert got == want
    # the sample reaches every kind of outcome the join carries
    reasons = {r for _, r, _ in got}
    assert {None, "wrong_type:props", "props_bad_value:props.nested", "props_too_many_keys:props",
            "props_invalid:props.depth", "props_missing:props.name",
            "props_experiment_without_variant:props", "unknown_event_type:event_type",
            "invalid_json"} <= reasons, reasons
    assert any(p is not None and "(email)" in p for _, r, p in got if r is None)
    assert any(p is not None and "(ip)" in p for _, r, p in got if r is None)
