"""Everything that can be read of a damaged raw object is read (CONTRACT §3.1).

Real damaged files, as a crash or a bad copy leaves them: gzip objects truncated at several
points, one with garbage after a complete member, one with a damaged byte in the middle. The
`events` step runs on them (no Dagster, the step's own functions), and what it keeps is compared
with what an independent reading finds: Python's zlib fed the same bytes in a stream, and the
records whose line it returns whole. Also: records written back to back (`}{`) are split only
between records, never inside a JSON string.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics_platform.defs.events.assets import process_hours
from analytics_platform.duck import connect
from analytics_platform.lake import open_raw_lake
from analytics_platform.storage import Lake
from analytics_platform_tests import oracle as o

HOUR = datetime(2026, 3, 2, 10, tzinfo=UTC)
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def record(n: int, **extra: Any) -> dict[str, Any]:
    ts = HOUR + timedelta(seconds=n % 3000)
    r = {"event_type": "page_view", "event_id": f"00000000-0000-4000-8000-{n:012d}",
         "session_id": f"00000000-0000-4000-9000-{n // 5:012d}",
         "page_path": f"/blog/post-{n % 37}", "page_host": "example.com",
         "page_title": f"Post {n} – a title long enough to look real", "referrer": None,
         "event_ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
         "ingest_ts": (ts + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
         "schema_version": 1, "user_agent": UA, "screen_width": 1280 + n % 400}
    r.update(extra)
    return {k: v for k, v in r.items() if v is not None}


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def readable(data: bytes) -> tuple[bytes, bool]:
    """What plain zlib gets out of ``data`` (all that comes before a damaged byte) and whether
    it read the whole object: the oracle's independent reading the pipeline is held to."""
    text, damaged = o.readable(data)
    return text, not damaged


def complete_ids(text: bytes) -> list[str]:
    """The event ids of the records of ``text`` that are whole JSON."""
    ids = []
    for line in text.split(b"\n"):
        try:
            ids.append(json.loads(line)["event_id"])
        except (ValueError, KeyError):
            continue
    return ids


def run_hour(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, Path]:
    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()
    process_hours(con, open_raw_lake(tmp_path / "raw"), lake, [HOUR], 24)
    return con, lake.root


def test_damaged_objects_keep_every_complete_record(tmp_path: Path) -> None:
    raw = open_raw_lake(tmp_path / "raw")
    n_per = 2000
    objects: dict[str, bytes] = {}
    for i, cut in enumerate([0.25, 0.5, 0.75, 0.999]):
        body = gzip.compress(ndjson([record(i * n_per + k) for k in range(n_per)]))
        objects[f"cut{i}"] = body[: int(len(body) * cut)]
    whole = gzip.compress(ndjson([record(10_000 + k) for k in range(n_per)]))
    objects["garbage"] = whole + b"\x00\x01garbage after the member" * 20
    flipped = bytearray(gzip.compress(ndjson([record(20_000 + k) for k in range(n_per)])))
    flipped[len(flipped) // 2] ^= 0xFF  # one damaged byte in the middle of the deflate stream
    objects["flipped"] = bytes(flipped)
    # two complete members, then a third cut short: the first two are read whole
    objects["members"] = (gzip.compress(ndjson([record(30_000 + k) for k in range(100)]))
                          + gzip.compress(ndjson([record(30_100 + k) for k in range(100)]))
                          + gzip.compress(ndjson([record(30_200 + k) for k in range(100)]))[:-30])
    keys = {}
    for i, (name, data) in enumerate(objects.items()):
        keys[name] = raw.write_records(HOUR + timedelta(seconds=i), data, object_id=name).key

    con, root = run_hour(tmp_path)
    kept = {r[0] for r in con.execute(
        "SELECT event_id FROM read_parquet($f)",
        {"f": str(root / "events" / "hour=2026-03-02T10" / "part.parquet")}).fetchall()}
    quarantine = con.execute(
        "SELECT raw_key, reason, raw_pos FROM read_parquet($f) ORDER BY ALL",
        {"f": str(root / "quarantine" / "hour=2026-03-02T10" / "part.parquet")}).fetchall()

    expected, total, damaged = set(), 0, 0
    for name, data in objects.items():
        text, complete = readable(data)
        ids = complete_ids(text)
        expected |= set(ids)
        damaged += not complete
        total += len(ids)
        reasons = [r for k, r, _ in quarantine if k == keys[name]]
        assert reasons.count("corrupt_object") == 1, (name, reasons)
        # whatever of the last line was decompressed is a record cut short
        assert set(reasons) <= {"corrupt_object", "invalid_json"}, (name, reasons)
    assert kept == expected
    assert damaged == len(objects)
    # the unreadable tail sits after the last line read, so it sorts after its object's lines
    for key in keys.values():
        mine = [(r, pos) for k, r, pos in quarantine if k == key]
        tail = max(pos for r, pos in mine if r == "corrupt_object")
        assert all(pos < tail for r, pos in mine if r != "corrupt_object"), mine
    sent = 4 * n_per + n_per + n_per + 300
    print(f"\nrecords recovered from {len(objects)} damaged objects: {total:,} of {sent:,} sent "
          f"({total / sent:.1%})")
    assert total > 0.5 * 4 * n_per  # the cut objects alone give back about half


def test_an_object_that_is_not_gzip_at_all_is_one_corrupt_object(tmp_path: Path) -> None:
    raw = open_raw_lake(tmp_path / "raw")
    key = raw.write_records(HOUR, b"this is not gzip", object_id="junk").key
    raw.write_records(HOUR + timedelta(seconds=1), gzip.compress(ndjson([record(1)])), "ok")
    con, root = run_hour(tmp_path)
    rows = con.execute("SELECT raw_key, reason, raw_pos FROM read_parquet($f)", {
        "f": str(root / "quarantine" / "hour=2026-03-02T10" / "part.parquet")}).fetchall()
    assert rows == [(key, "corrupt_object", 0)]


def test_glued_records_are_split_only_between_records(tmp_path: Path) -> None:
    raw = open_raw_lake(tmp_path / "raw")
    tricky = [record(1, page_title="a}{b"), record(2, page_title='say "}{" and \\}{'),
              record(3, page_title="}{}{"), record(4, props={"name": "x}{y"}, event_type="custom")]
    glued = b"".join(json.dumps(r).encode() for r in tricky)
    # a broken piece between two good ones: only it goes to quarantine
    broken = (json.dumps(record(5, page_title="p}{q")).encode() + b'{"event_type": nope, "x": "}{"}'
              + json.dumps(record(6)).encode())
    key = raw.write_records(HOUR, gzip.compress(glued + b"\n" + broken + b"\n"),
                            object_id="glued").key
    con, root = run_hour(tmp_path)
    got = dict(con.execute("SELECT event_id, page_title FROM read_parquet($f)", {
        "f": str(root / "events" / "hour=2026-03-02T10" / "part.parquet")}).fetchall())
    assert got == {r["event_id"]: r["page_title"] for r in [*tricky, record(5, page_title="p}{q"),
                                                            record(6)]}
    rows = con.execute("SELECT raw_key, raw_pos, reason FROM read_parquet($f)", {
        "f": str(root / "quarantine" / "hour=2026-03-02T10" / "part.parquet")}).fetchall()
    assert rows == [(key, 1002, "invalid_json")]


@pytest.mark.parametrize("cut", [10, 100, 1000])
def test_oracle_and_pipeline_agree_on_a_cut_object(tmp_path: Path, cut: int) -> None:
    """The oracle (record by record in Python) reads a cut object as the pipeline does."""
    raw = open_raw_lake(tmp_path / "raw")
    body = gzip.compress(ndjson([record(k) for k in range(300)]))
    raw.write_records(HOUR, body[:-cut], object_id="cut")
    con, root = run_hour(tmp_path)
    orc = o.Oracle.for_simulation()
    orc.read_lake(tmp_path / "raw")
    kept = {r[0] for r in con.execute("SELECT event_id FROM read_parquet($f)", {
        "f": str(root / "events" / "hour=2026-03-02T10" / "part.parquet")}).fetchall()}
    assert kept == set(orc.events)
    reasons = sorted(r[0] for r in con.execute("SELECT reason FROM read_parquet($f)", {
        "f": str(root / "quarantine" / "hour=2026-03-02T10" / "part.parquet")}).fetchall())
    assert reasons == sorted(r for _, r in orc.quarantine)
