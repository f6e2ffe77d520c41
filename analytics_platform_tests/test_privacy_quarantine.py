"""The quarantine holds no more of a refused record than the warehouse may (docs/PRIVACY.md):
a line cut short (the last line of an object cut mid-record, or of a damaged gzip stream, which
is not JSON, so that DuckDB cannot write it again) loses its user agent and query strings as a
whole record does, and a record written by another tool loses its time zone (stored nowhere)."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics_platform.defs.events import assets
from analytics_platform.duck import connect
from analytics_platform.lake import open_raw_lake
from analytics_platform.storage import Lake
from analytics_platform_tests.raw_events import event

HOUR = datetime(2026, 3, 2, 10, tzinfo=UTC)
AGENT = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A) UNIQUEUA-1234"


def _line(n: int, **fields: object) -> str:
    record = {**event(n, n, HOUR + timedelta(minutes=n), timedelta(seconds=1)), **fields}
    return json.dumps(record, separators=(",", ":"))


def _deflate_cut(text: bytes, at: int) -> bytes:
    """A gzip stream of ``text`` whose bytes stop (no trailer) once ``at`` bytes of it are in:
    what a damaged object decompresses to is ``text[:at]``, then an error."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(text[:at]) + c.flush(zlib.Z_SYNC_FLUSH)


def test_a_line_cut_short_keeps_no_user_agent_query_or_time_zone(tmp_path: Path) -> None:
    raw = open_raw_lake(tmp_path / "raw")
    good = _line(1)
    # an object whose last line stops inside the user agent (no closing quote); a line before
    # it stops right after a backslash of the agent's (half an escape)
    in_agent = _line(2, page_path="/a", user_agent=AGENT)
    cut = in_agent.index("UNIQUEUA") + len("UNIQUEUA-12")
    quoted = _line(6, user_agent=AGENT + ' "q"')
    raw.write_records(HOUR, gzip.compress((
        good + "\n" + quoted[:quoted.index('\\"q') + 1] + "\n" + in_agent[:cut]).encode()),
        object_id="cut-agent")
    # one whose last line stops inside a page_path's query; a line before it stops after its
    # "?" written as an escape (\u003f: a line that is no JSON is not written again)
    in_query = _line(3, page_path="/t1?token=QSECRET1&x=1")
    cut = in_query.index("QSECRET1") + len("QSECRET")
    escaped = _line(4, page_path="/t4?token=QSECRET4").replace("?", "\\u003f")
    raw.write_records(HOUR, gzip.compress(
        (good + "\n" + escaped[:escaped.index("QSECRET4") + 5] + "\n" + in_query[:cut]).encode()),
        object_id="cut-query")
    # a damaged gzip stream that stops inside the user agent
    text = (good + "\n" + in_agent + "\n").encode()
    raw.write_records(HOUR, _deflate_cut(text, text.index(b"UNIQUEUA") + 10),
                      object_id="damaged")
    # a record another tool wrote, refused, with the time zone the edge never stores and URLs
    # with queries among its props (a question is no URL: kept)
    raw.write_records(HOUR, gzip.compress((_line(
        5, event_type="bogus", time_zone="America/Indiana/Knox",
        props={"url": "https://x.example/?token=QSECRET2", "back": "/a#token=QSECRET3",
               "q": "why? #1"}) + "\n").encode()),
        object_id="time-zone")

    lake = Lake(tmp_path / "lake", remote_url="")
    assets.process_hours(connect(), raw, lake, [HOUR], 24)
    rows = connect().execute(
        "SELECT raw_key, reason, raw_text FROM read_parquet($f) ORDER BY raw_key, raw_pos",
        {"f": str(next((lake.root / "quarantine").rglob("*.parquet")))}).fetchall()
    texts = [t for _, reason, t in rows if reason != "corrupt_object"]
    assert len(texts) == 6, rows  # the five lines cut short and the refused record
    leaks = [(key, t) for key, _, t in rows
             for secret in ("UNIQUEUA", "QSECRET", "token", "Indiana", "Knox") if secret in t]
    assert leaks == []
    # what is kept stays readable: the path up to its query, the agent's key marked
    assert any('"page_path":"/t1"' in t for t in texts)
    assert any('"user_agent":"(removed)"' in t for t in texts)
    assert any('"time_zone":"(removed)"' in t and '"url":"https://x.example/"' in t
               and '"back":"/a"' in t and '"q":"why? #1"' in t for t in texts)
