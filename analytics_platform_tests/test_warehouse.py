"""The warehouse a reader opens (CONTRACT §6): never a half-written or replaced file, a
`quarantine` view even when nothing was quarantined, and only the contract's columns."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from analytics_platform.defs.events.assets import process_hours
from analytics_platform.duck import connect
from analytics_platform.lake import open_raw_lake
from analytics_platform.storage import Lake, publish_warehouse
from analytics_platform_tests.test_raw_recovery import HOUR, ndjson, record


def test_readers_never_see_a_file_being_replaced(tmp_path: Path) -> None:
    """A thread re-materialises a partition and republishes the warehouse in a loop (what the
    pipeline does when a day is rebuilt) while this one opens the warehouse read-only and reads
    the whole view, again and again: attached read-only to one in-memory connection, as the
    dashboard and the API do (a new connection per open costs 60 ms here; every tenth open is
    one anyway, as the DuckDB shell or a notebook does). With the views over the live files,
    6 of 1,000 reads failed: DuckDB reads a Parquet file's footer, then opens the path again
    for its pages, by then another file (`don't know what type:`, `TProtocolException`)."""
    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()

    def rewrite(seed: int) -> None:
        lake.write(con, f"SELECT range AS a, md5((range * {seed})::VARCHAR) AS b "
                   "FROM range(200000)", "sessions", "date=2026-01-01")

    rewrite(1)
    publish_warehouse(lake)
    stop, rewrites = threading.Event(), [0]

    def writer() -> None:
        while not stop.is_set():
            rewrites[0] += 1
            rewrite(rewrites[0] + 1)
            publish_warehouse(lake)

    thread = threading.Thread(target=writer)
    thread.start()
    failures: dict[str, int] = {}
    opens, t0 = 0, time.perf_counter()
    host = duckdb.connect()
    query = "SELECT count(*), sum(a) FROM sessions WHERE b IS NOT NULL"
    try:
        while opens < 1000:
            opens += 1
            try:
                if opens % 10:
                    host.execute("ATTACH ? AS w (READ_ONLY)", [str(lake.warehouse_path)])
                    try:
                        got = host.execute(query.replace("FROM ", "FROM w.")).fetchall()[0]
                    finally:
                        host.execute("DETACH w")
                else:
                    reader = duckdb.connect(str(lake.warehouse_path), read_only=True)
                    try:
                        got = reader.execute(query).fetchall()[0]
                    finally:
                        reader.close()
                assert got == (200000, 200000 * 199999 // 2)
            except (duckdb.Error, AssertionError) as e:
                k = str(e).splitlines()[0][:100]
                failures[k] = failures.get(k, 0) + 1
    finally:
        stop.set()
        thread.join()
    print(f"\n{opens} read-only opens during {rewrites[0]} rewrites and republishes in "
          f"{time.perf_counter() - t0:.0f} s: {sum(failures.values())} failed {failures}")
    assert failures == {}
    assert rewrites[0] > 20
    # superseded snapshots stay for readers that may still use them, then go
    assert len(list((lake.root / "sessions" / "_published").iterdir())) >= 2


def test_old_snapshots_are_removed_after_their_retention(tmp_path: Path, monkeypatch) -> None:
    from analytics_platform import storage

    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()
    lake.write(con, "SELECT 1 AS a", "sessions", "date=2026-01-01")
    for _ in range(3):
        publish_warehouse(lake)
    assert len(list((lake.root / "sessions" / "_published").iterdir())) == 3
    monkeypatch.setattr(storage, "SNAPSHOT_RETENTION_SECONDS", 0)
    publish_warehouse(lake)
    assert len(list((lake.root / "sessions" / "_published").iterdir())) == 1
    assert len(list(storage.snapshot_root(lake).iterdir())) == 1
    r = duckdb.connect(str(lake.warehouse_path), read_only=True)
    assert r.execute("SELECT * FROM sessions").fetchall() == [(1,)]


def test_what_a_killed_publish_or_write_leaves_goes_after_the_retention(
        tmp_path: Path, monkeypatch) -> None:
    """A process killed mid-way (SIGKILL, the OOM killer) skips its own clean-up. Found in
    review: a publish killed while it stored left ``.warehouse/<gen>.duckdb.wal`` after its file
    had gone; a write killed in its COPY left ``lake/_tmp/<table>-<uuid>.parquet`` (94 MB).
    The next publish removes such leftovers once older than the snapshots' retention; a temp
    file younger than that may be a running write's and stays, as does the WAL of a file that
    is still there (a publish in progress)."""
    import os
    import uuid

    from analytics_platform import storage

    lake = Lake(tmp_path / "data", remote_url="")
    lake.write(connect(), "SELECT 1 AS a", "sessions", "date=2026-01-01")
    publish_warehouse(lake)
    root = storage.snapshot_root(lake)
    old = time.time() - storage.SNAPSHOT_RETENTION_SECONDS - 60

    def left(path: Path, size: int = 1000, aged: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
        if aged:
            os.utime(path, (old, old))
        return path

    def gen() -> str:  # the name of a publish's generation, two hours ago
        return f"{time.time_ns() - 7200 * 10**9:020d}-{uuid.uuid4().hex[:8]}"

    orphan_wal = left(root / f"{gen()}.duckdb.wal")  # its file pruned already
    killed_write = left(lake.root / "_tmp" / f"events-{uuid.uuid4().hex}.parquet")
    killed_fetch = left(lake.root / "_tmp" / f"fetch-{uuid.uuid4().hex}.parquet")
    running_write = left(lake.root / "_tmp" / f"sessions-{uuid.uuid4().hex}.parquet", aged=False)
    # killed between linking its file and renaming the link over warehouse.duckdb: the link
    # keeps the file's second name, so the file never counted as superseded
    linked = left(root / f"{gen()}.duckdb")
    stray = lake.data_dir / f".warehouse-{linked.stem}.duckdb"
    os.link(linked, stray)
    live = left(root / f"{gen()}.duckdb", aged=False)  # a publish in progress
    live_wal = left(root / f"{live.stem}.duckdb.wal")
    publish_warehouse(lake)
    assert not orphan_wal.exists() and not killed_write.exists() and not killed_fetch.exists()
    assert not stray.exists() and linked.stat().st_nlink == 1
    assert running_write.exists() and live.exists() and live_wal.exists()
    # a killed publish's file and its WAL, once superseded for longer than the retention
    live.unlink()
    monkeypatch.setattr(storage, "SNAPSHOT_RETENTION_SECONDS", 0)
    publish_warehouse(lake)
    assert not linked.exists() and not live_wal.exists()
    assert sorted(p.suffix for p in root.iterdir()) == [".duckdb"]
    r = duckdb.connect(str(lake.warehouse_path), read_only=True)
    assert r.execute("SELECT * FROM sessions").fetchall() == [(1,)]


def quarantine_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute("DESCRIBE quarantine").fetchall()]


def test_the_quarantine_view_exists_when_nothing_is_quarantined(tmp_path: Path) -> None:
    raws = {"clean": [ndjson([record(1), record(2)])],
            "dirty": [ndjson([record(1)]) + b"not json\n"]}
    columns = {}
    for name, bodies in raws.items():
        import gzip

        raw = open_raw_lake(tmp_path / name / "raw")
        for i, body in enumerate(bodies):
            raw.write_records(HOUR + timedelta(seconds=i), gzip.compress(body), f"o{i}")
        lake = Lake(tmp_path / name / "data", remote_url="")
        process_hours(connect(), raw, lake, [HOUR], 24)
        publish_warehouse(lake)
        con = duckdb.connect(str(lake.warehouse_path), read_only=True)
        columns[name] = quarantine_columns(con)
        n = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        assert n == (name == "dirty"), name
        con.close()
    assert columns["clean"] == columns["dirty"]
    assert [c for c, _ in columns["clean"]] == ["raw_hour", "raw_key", "raw_pos", "reason",
                                                "raw_text"]


def test_a_fresh_warehouse_has_the_quarantine_view(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "data", remote_url="")
    assert publish_warehouse(lake) == ["quarantine"]
    con = duckdb.connect(str(lake.warehouse_path), read_only=True)
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]


def test_session_window_and_the_late_macro_agree() -> None:
    """One definition of late (CONTRACT §4): the SQL macro ends a day's window where
    partitions.session_window does."""
    from analytics_platform.partitions import session_window

    con = connect()
    for late in (0, 4, 24, 30, 48):
        for day in (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)):
            end = session_window(day, late)[1].replace(tzinfo=None)
            got = con.execute("SELECT window_end($d::DATE, $h)",
                              {"d": day.date(), "h": late}).fetchall()[0][0]
            assert got == end, (day, late)
            ts = day + timedelta(hours=23, minutes=59, seconds=20)
            for raw_hour, late_expected in ((end, False), (end + timedelta(hours=1), True)):
                assert con.execute("SELECT is_late($ts::TIMESTAMP, $h, $r::TIMESTAMP)", {
                    "ts": ts.replace(tzinfo=None), "h": late,
                    "r": raw_hour}).fetchall()[0][0] is late_expected
