"""The raw lake behaves the same on a local folder and on S3 (moto's server over HTTP)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from analytics_platform import settings
from analytics_platform.lake import (
    LocalRawLake,
    RawLake,
    S3RawLake,
    hour_of_key,
    hour_of_partition_key,
    hour_prefix,
    hours_between,
    object_key,
    open_raw_lake,
    partition_key,
)

HOUR = datetime(2026, 2, 1, 13, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RawLake]:
    if request.param == "local":
        yield open_raw_lake(tmp_path / "raw")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        yield open_raw_lake(f"s3://{bucket}/raw")


def test_key_partition_round_trip_for_every_hour_of_a_year() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = hours_between(start, start + timedelta(days=365) - timedelta(hours=1))
    assert len(hours) == 8760
    seen_prefixes = set()
    for h in hours:
        key = object_key(h + timedelta(minutes=59, seconds=59), object_id="x")
        assert hour_of_key(key) == h
        assert hour_of_partition_key(partition_key(h)) == h
        assert key.startswith(hour_prefix(h))
        seen_prefixes.add(hour_prefix(h))
    assert len(seen_prefixes) == 8760


def test_key_layout_is_firehose_shaped() -> None:
    key = object_key(datetime(2026, 3, 7, 4, 5, 6, tzinfo=UTC), "abc", stream="web", version=2)
    assert key == "year=2026/month=03/day=07/hour=04/web-2-2026-03-07-04-05-06-abc.gz"
    assert partition_key(datetime(2026, 3, 7, 4, 59, tzinfo=UTC)) == "2026-03-07-04:00"
    with pytest.raises(ValueError, match="not a raw-lake object key"):
        hour_of_key("raw/2026/03/07/x.gz")


def test_write_list_read(lake: RawLake) -> None:
    payload = gzip.compress(b'{"a":1}\n')
    obj = lake.write_records(HOUR + timedelta(minutes=5), payload, object_id="one")
    lake.write_records(HOUR + timedelta(hours=1), payload, object_id="next-hour")
    listed = lake.list_hour(HOUR)
    assert [o.key for o in listed] == [obj.key]
    assert listed[0].size == len(payload)
    assert listed[0].hour == HOUR
    assert abs(listed[0].last_modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert lake.read(obj.key) == payload
    assert lake.list_hour(HOUR - timedelta(hours=1)) == []
    with lake.local_paths(listed) as paths:
        assert [p.read_bytes() for p in paths] == [payload]


def test_rewriting_a_key_replaces_it(lake: RawLake) -> None:
    key = object_key(HOUR, "same")
    lake.write(key, b"first")
    lake.write(key, b"second")
    assert [o.key for o in lake.list_hour(HOUR)] == [key]
    assert lake.read(key) == b"second"


def test_listing_an_hour_with_more_than_1000_objects_paginates(lake: RawLake) -> None:
    n = 1105
    for i in range(n):
        lake.write(object_key(HOUR + timedelta(seconds=i), f"{i:05d}"), b"x", durable=False)
    listed = lake.list_hour(HOUR)
    assert len(listed) == n
    assert len({o.key for o in listed}) == n
    assert listed == sorted(listed, key=lambda o: o.key)


def test_writes_are_atomic_for_concurrent_readers(lake: RawLake) -> None:
    """A reader polling the hour while big objects are written only ever sees whole objects."""
    big = gzip.compress(b'{"k":"' + b"v" * 4_000_000 + b'"}\n', compresslevel=1)
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            for o in lake.list_hour(HOUR):
                data = lake.read(o.key)
                reads[0] += 1
                if data != big:
                    problems.append(f"{o.key}: {len(data)} bytes")

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(6):
            lake.write_records(HOUR + timedelta(minutes=i), big, object_id=f"big{i}")
    finally:
        stop.set()
        t.join()
    assert problems == []
    assert len(lake.list_hour(HOUR)) == 6
    assert reads[0] > 0


def test_local_lake_leaves_no_temporary_files(tmp_path: Path) -> None:
    lake = LocalRawLake(tmp_path)
    lake.write_records(HOUR, b"data", object_id="a")
    files = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [Path(object_key(HOUR, "a")).name]


def test_local_lake_refuses_keys_outside_the_layout(tmp_path: Path) -> None:
    lake = LocalRawLake(tmp_path / "raw")
    with pytest.raises(ValueError):
        lake.write("../escape.gz", b"x")
    with pytest.raises(ValueError):
        lake.write("year=2026/month=01/day=01/hour=00/../../../../../x.gz", b"x")


def test_s3_lake_honours_aws_endpoint_url_and_prefix(s3_bucket: str, moto_endpoint: str) -> None:
    lake = open_raw_lake(f"s3://{s3_bucket}/some/prefix/")
    assert isinstance(lake, S3RawLake)
    obj = lake.write_records(HOUR, b"abc", object_id="p")
    raw = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(Bucket=s3_bucket)
    assert [c["Key"] for c in raw["Contents"]] == [f"some/prefix/{obj.key}"]


def test_default_raw_url_follows_data_dir(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.raw_url() == str(data_dir / "raw")
    monkeypatch.setenv("ANALYTICS_RAW_URL", "s3://bucket/raw")
    assert settings.raw_url() == "s3://bucket/raw"


@pytest.mark.parametrize("url", ["s3://", "http://example.com/raw", "gs://bucket/raw"])
def test_bad_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError):
        open_raw_lake(url)


def test_read_lines_splits_objects_as_python_does(lake: RawLake,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The `events` reader's lines (object, line number, bytes with their newline) are those
    of a plain Python split: blank lines dropped, CRLF and a missing last newline kept as
    they are, an empty object without lines, a corrupt object reported and skipped."""
    from analytics_platform.defs.events import reader

    monkeypatch.setattr(reader, "_SCAN_BYTES", 7)  # newlines found across many scan slices
    bodies = [b'{"a":1}\n\n{"b":2}\r\n{"c":"\xff"}\n', b"", b'{"d":4}\n{"e":5}', b"\n\n",
              b"x" * 40 + b"\n" + b"y" * 3]
    texts = {lake.write_records(HOUR + timedelta(seconds=i), gzip.compress(b), f"o{i}").key: b
             for i, b in enumerate(bodies)}
    bad = lake.write_records(HOUR + timedelta(seconds=9), b"not gzip", "bad").key
    objects = lake.list_hour(HOUR)
    got = reader.read_lines(lake, objects)
    expected = []
    for i, o in enumerate(objects):
        if o.key == bad:
            continue
        text = texts[o.key]
        lines = text.split(b"\n")[: -1 if text.endswith(b"\n") else None]
        expected += [(i, pos, line + b"\n") for pos, line in enumerate(lines) if line]
    assert list(zip(*got.lines.to_pydict().values(), strict=True)) == expected
    assert [(o.key, line) for o, _, line in got.corrupt] == [(bad, 0)]
    assert got.raw_bytes == sum(o.size for o in objects)
