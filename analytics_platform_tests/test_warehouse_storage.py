"""The warehouse's stored tables (storage.NATIVE_TABLES, issue #21): the rows the dashboard reads
from the warehouse file are exactly the lake's, after a backfill and after an incremental
update, and a reader holding the warehouse open keeps working while a publish swaps it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform import storage
from analytics_platform.backfill import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    run_backfill,
)
from analytics_platform.definitions import defs
from analytics_platform.duck import connect
from analytics_platform.lake import open_raw_lake
from analytics_platform.query import rollups
from analytics_platform.query.warehouse import Warehouse
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.storage import NATIVE_TABLES, STORE, Lake, publish_warehouse

DAY = date(2026, 3, 9)


def differences(data: Path) -> dict[str, tuple[int, int, int]]:
    """Per stored table: (rows, rows in the warehouse and not in the lake, rows in the lake and
    not in the warehouse), duplicates counted (EXCEPT ALL), the lake read from its own files."""
    con = duckdb.connect()
    con.execute("ATTACH ? AS w (READ_ONLY)", [str(data / "warehouse.duckdb")])
    out = {}
    for table in NATIVE_TABLES:
        view = con.execute("SELECT sql FROM duckdb_views() WHERE database_name = 'w' AND "
                           "view_name = ?", [table]).fetchall()[0][0]
        assert f"{STORE}.{table}_rows" in view, view  # read from the stored rows, not Parquet
        lake = (f"read_parquet('{data}/lake/{table}/date=*/part.parquet', "
                "union_by_name = true, hive_partitioning = false)")
        n = con.execute(f"SELECT count(*) FROM w.{table}").fetchall()[0][0]
        extra = con.execute(f"SELECT count(*) FROM (FROM w.{table} EXCEPT ALL FROM {lake})"
                            ).fetchall()[0][0]
        missing = con.execute(f"SELECT count(*) FROM (FROM {lake} EXCEPT ALL FROM w.{table})"
                              ).fetchall()[0][0]
        out[table] = (n, extra, missing)
    con.close()
    return out


def rollup_differences(data: Path) -> dict[str, tuple[int, int, int]]:
    """Per rollup (query/rollups.py): (rows, rows kept and not in the rollup made afresh from
    every stored day, rows of the fresh one not kept), duplicates counted."""
    con = duckdb.connect()
    con.execute("ATTACH ? AS w (READ_ONLY)", [str(data / "warehouse.duckdb")])
    con.execute("USE w")
    out = {}
    stored = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE "
                                        "schema_name = ?", [STORE]).fetchall()}
    for r in rollups.ROLLUPS:
        if f"{r.base}_rows" not in stored:
            continue
        days = [d for (d,) in con.execute(
            f"SELECT DISTINCT session_date::VARCHAR FROM {STORE}.{r.base}_rows").fetchall()]
        fresh = r.statement(f"{STORE}.{r.base}_rows")
        params = {"days": days, "first": min(days)} if r.chain else {"days": days}
        con.execute(f"CREATE TEMP TABLE fresh_{r.name} AS {fresh}", params)
        n = con.execute(f"SELECT count(*) FROM {r.table}").fetchall()[0][0]
        kept = con.execute(f"SELECT count(*) FROM (FROM {r.table} EXCEPT ALL "
                           f"FROM fresh_{r.name})").fetchall()[0][0]
        missing = con.execute(f"SELECT count(*) FROM (FROM fresh_{r.name} EXCEPT ALL "
                              f"FROM {r.table})").fetchall()[0][0]
        out[r.name] = (n, kept, missing)
    con.close()
    return out


def stored_files(data: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {(t, d): (i, s, m) for t, d, i, s, m in con.execute(
            f"SELECT * FROM {storage._FILES}").fetchall()}


def test_stored_tables_hold_the_lake_after_a_backfill_and_an_update(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backfill of two days, then an update as the automation makes it (the new day's hours,
    then one run of the stored tables' assets over the day before, processed again, and the new
    day), then a day removed. Kept lean: three runs, then two (no history, no other marts)."""
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "0")  # fewer hours to a day's window
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    raw = open_raw_lake(data / "raw")
    write_traffic(generate(SimConfig(days=2, visitors_per_day=25, start=DAY, seed=5)), raw,
                  progress=False)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_backfill(DAY, DAY + timedelta(1), instance=instance,
                            log=lambda _: None).success
    after_backfill = differences(data)
    assert all(n > 0 for n, _, _ in after_backfill.values()), after_backfill
    assert {t: d[1:] for t, d in after_backfill.items()} == {t: (0, 0) for t in NATIVE_TABLES}
    assert all(d == (d[0], 0, 0) and d[0] for d in rollup_differences(data).values())
    before = stored_files(data)

    # An incremental update: a third day arrives, the second is processed again (new files for
    # its partitions), the first is untouched and must not be stored again.
    third = DAY + timedelta(2)
    write_traffic(generate(SimConfig(days=1, visitors_per_day=25, start=third, seed=6)), raw,
                  progress=False)
    d = defs()
    stored = [dg.AssetKey(t) for t in NATIVE_TABLES]  # pages_daily and the sessions asset's
    with dg.DagsterInstance.ephemeral() as instance:
        for job, first, last, selection in (
                ("events_job", f"{third:%Y-%m-%d}-00:00", f"{third:%Y-%m-%d}-23:00", None),
                ("daily_job", f"{DAY + timedelta(1)}", f"{third}", stored)):
            assert d.resolve_job_def(job).execute_in_process(
                instance=instance, asset_selection=selection,
                tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}).success
    after_update = differences(data)
    assert {t: d[1:] for t, d in after_update.items()} == {t: (0, 0) for t in NATIVE_TABLES}
    assert all(after_update[t][0] > after_backfill[t][0] for t in NATIVE_TABLES)
    # the rollups, brought in step day by day (the second day made again, the third new), hold
    # what they would made afresh from every stored day
    assert all(d == (d[0], 0, 0) for d in rollup_differences(data).values())
    now = stored_files(data)
    first, second = f"{DAY}", f"{DAY + timedelta(1)}"
    for table in NATIVE_TABLES:
        assert now[(table, first)] == before[(table, first)]  # kept, not stored again
        assert now[(table, second)] != before[(table, second)]  # a new file, stored again
        assert (table, f"{third}") in now

    # a day whose file goes leaves the stored table too, and nothing else is stored again
    lake = Lake(data, remote_url="")
    lake.remove("pages_daily", f"date={second}")
    publish_warehouse(lake)
    assert differences(data)["pages_daily"][1:] == (0, 0)
    assert stored_files(data) == {k: v for k, v in now.items() if k != ("pages_daily", second)}


def test_a_reader_keeps_its_warehouse_while_a_publish_replaces_it(tmp_path: Path) -> None:
    """Readers hold the old file open (the dashboard's attached connection, a read-only
    connection of another tool): a publish never waits for them nor fails on their lock, the
    old file is removed from the folder at once (no copy of the stored tables lingers on disk
    for the retention hour), and they go on reading it whole until they reopen."""
    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()

    def write_day(day: date, n: int) -> None:
        lake.write(con, f"SELECT $d::DATE AS session_date, range AS visitor_key, 'page_view' AS "
                   f"event_type, '/p' || (range % 7) AS page_path FROM range({n})",
                   "session_events", f"date={day}", {"d": day})

    write_day(DAY, 50_000)
    write_day(DAY + timedelta(1), 30_000)
    publish_warehouse(lake)
    wh = Warehouse(lake.warehouse_path)
    query = "SELECT count(*), sum(visitor_key) FROM session_events"
    assert wh.row(query) == (80_000, 50_000 * 49_999 // 2 + 30_000 * 29_999 // 2)
    held = storage.snapshot_root(lake)
    old_files = set(held.glob("*.duckdb"))
    dashboard = Warehouse(lake.warehouse_path)
    from analytics_platform.query.warehouse import _cursor

    running = _cursor(dashboard.path)  # a query of the dashboard's, on the old file
    other = duckdb.connect(str(lake.warehouse_path), read_only=True)  # another tool's

    write_day(DAY + timedelta(1), 10)  # the day processed again
    publish_warehouse(lake)
    assert not old_files & set(held.glob("*.duckdb"))  # the old file is gone from the folder
    new = (50_000 + 10, 50_000 * 49_999 // 2 + 45)
    old = (80_000, 50_000 * 49_999 // 2 + 30_000 * 29_999 // 2)
    assert running.execute(query).fetchall()[0] == old
    assert other.execute(query).fetchall()[0] == old
    assert wh.row(query) == new  # the next query of the dashboard reads the new file
    write_day(DAY + timedelta(2), 5)
    publish_warehouse(lake)  # again, while both still hold the first file
    assert other.execute(query).fetchall()[0] == old
    running.close()
    other.close()
    assert wh.row(query)[0] == new[0] + 5


@pytest.mark.s3
def test_partitions_written_to_s3_by_another_machine_are_seen(
        tmp_path: Path, s3_bucket: str, moto_endpoint: str) -> None:
    """Lake.existing on a lake in S3 that other machines write too (ECS run tasks): a partition
    missing from the local cache is asked of S3, never assumed absent, whether it is probed (a
    few missing: a GET each) or listed (many: one listing of their key range, paged, then a GET
    of each that exists); requests counted as the client sends them."""
    url = f"s3://{s3_bucket}/lake"
    writer = Lake(tmp_path / "writer", remote_url=url)  # another machine, the same bucket
    reader = Lake(tmp_path / "reader", remote_url=url)
    calls: list[str] = []
    reader.remote.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name))
    con = connect()
    hours = [f"hour=2026-03-09T{h:02d}" for h in range(24)] + [
        f"hour=2026-03-10T{h:02d}" for h in range(24)]

    def write(hour: str) -> None:
        writer.write(con, "SELECT $h AS hour, range AS n FROM range(3)", "events", hour,
                     {"h": hour})

    for h in (hours[0], hours[5], hours[30]):
        write(h)
    write("hour=2026-03-11T00")  # past the range asked for: the listing stops before it
    reader.remote.page_keys = 2  # S3 pages 1000 keys; 2 here, so the range takes pages
    assert reader.existing("events", hours) == [
        str(reader.partition_path("events", h)) for h in (hours[0], hours[5], hours[30])]
    assert calls.count("GetObject") == 3 and "HeadObject" not in calls
    assert 2 <= calls.count("ListObjectsV2") <= 3  # 3 keys in range, 2 a page: never to the end

    # another machine writes one more hour: the reader, whose cache has the three, sees it
    write(hours[40])
    calls.clear()
    assert str(reader.partition_path("events", hours[40])) in reader.existing("events", hours)
    assert calls.count("GetObject") == 1 and calls.count("ListObjectsV2") >= 1
    # a few partitions missing: one GET each, no listing; an absent one stays absent
    write(hours[41])
    calls.clear()
    assert reader.existing("events", hours[40:43]) == [
        str(reader.partition_path("events", h)) for h in hours[40:42]]
    assert calls == ["GetObject", "GetObject"]
    # and what is cached is not asked again
    calls.clear()
    assert len(reader.existing("events", hours[40:42])) == 2 and calls == []


def test_publish_once_holds_the_publishes_of_its_steps_until_it_ends(tmp_path: Path) -> None:
    """Inside storage.publish_once (the CLI backfill's runs) a step's publish waits for its end,
    which publishes each lake once, with everything its steps wrote, even when one of them
    failed; outside it, a step publishes at once (runs launched by the daemon)."""
    lake = Lake(tmp_path)
    con = connect()

    def step(x: int) -> None:
        lake.write(con, f"SELECT {x} AS x, DATE '2026-03-09' AS date", "demo_daily",
                   "date=2026-03-09")
        storage.publish_after_step(lake)

    def published() -> tuple[int, list[int]]:
        made = {f.stem for f in storage.snapshot_root(lake).iterdir()
                if f.suffix in (".duckdb", ".retired")}
        with duckdb.connect(str(lake.warehouse_path), read_only=True) as w:
            return len(made), [x for (x,) in w.execute("SELECT x FROM demo_daily").fetchall()]

    with pytest.raises(RuntimeError, match="a later step failed"), \
            storage.publish_once() as seconds:
        step(1)
        step(2)
        assert not lake.warehouse_path.exists()
        raise RuntimeError("a later step failed")
    assert list(seconds) == [lake.data_dir] and seconds[lake.data_dir] > 0
    assert published() == (1, [2])
    step(3)
    assert published() == (2, [3])
    with storage.publish_once() as seconds:  # a run that wrote nothing publishes nothing
        pass
    assert seconds == {} and published() == (2, [3])


def write_store_day(lake: Lake, con: duckdb.DuckDBPyConnection, day: date, n: int,
                    seed: int) -> None:
    """One day of each stored table (NATIVE_TABLES), ``n`` session_events rows in no order (a
    day above 122,880 rows spans two of the stored table's row groups)."""
    p = {"d": day, "s": seed}

    def pick(k: int, *values: str) -> str:
        return f"[{', '.join(values)}][1 + (hash(range, $s, {k}) % {len(values)})::INT]"

    event, source = pick(1, "'page_view'", "'click'", "'scroll'"), pick(1, "'ads'", "NULL")
    device = pick(3, "'mobile'", "'desktop'")
    lake.write(con, f"SELECT $d::DATE AS session_date, hash(range, $s) % 1000 AS visitor_key, "
               f"{event} AS event_type, '/p' || hash(range, $s, 2) % 40 AS page_path, "
               f"range AS n FROM range({n})", "session_events", f"date={day}", p)
    lake.write(con, f"SELECT $d::DATE AS session_date, {source} AS source, "
               f"{device} AS device_type, '/p' || hash(range, $s, 2) % "
               f"40 AS entry_page, range AS n FROM range({n // 9})", "sessions", f"date={day}", p)
    lake.write(con, "SELECT $d::DATE AS date, '/p' || range AS page_path, hash(range, $s) % 99 "
               "AS views FROM range(40)", "pages_daily", f"date={day}", p)


def stored_differences(a: Path, b: Path) -> dict[str, tuple[int, int, int, int]]:
    """Per stored table of two warehouse files: (rows of a, rows of b, rows of a not in b, rows
    of b not in a), duplicates counted (EXCEPT ALL)."""
    con = duckdb.connect()
    con.execute("ATTACH ? AS a (READ_ONLY)", [str(a)])
    con.execute("ATTACH ? AS b (READ_ONLY)", [str(b)])
    out = {}
    for t in NATIVE_TABLES:
        x, y = f"a.{STORE}.{t}_rows", f"b.{STORE}.{t}_rows"
        out[t] = tuple(con.execute(
            f"SELECT (FROM {x} SELECT count(*)), (FROM {y} SELECT count(*)), "
            f"(SELECT count(*) FROM (FROM {x} EXCEPT ALL FROM {y})), "
            f"(SELECT count(*) FROM (FROM {y} EXCEPT ALL FROM {x}))").fetchall()[0])
    con.close()
    return out


def days_out_of_place(path: Path) -> dict[str, int]:
    """Per stored table: the days whose rows are not one run of the table (by ``rowid``, the
    order the table holds them in) sorted by the table's columns (NATIVE_TABLES): the k-th row
    of a day by ``rowid`` has the sort key of its k-th by ``ORDER BY``, NULLs as it puts them."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for t, (day, order) in NATIVE_TABLES.items():
            out[t] = con.execute(
                f"WITH r AS (SELECT {day} AS d, rowid, struct_pack({order}) AS k, "
                f"row_number() OVER (PARTITION BY {day} ORDER BY rowid) AS by_row, "
                f"row_number() OVER (PARTITION BY {day} ORDER BY {order}) AS by_key "
                f"FROM {STORE}.{t}_rows) "
                "SELECT count(DISTINCT d) FROM (SELECT d FROM r GROUP BY d "
                "HAVING max(rowid) - min(rowid) + 1 <> count(*) UNION ALL SELECT a.d FROM r a "
                "JOIN r b ON a.d = b.d AND a.by_row = b.by_key WHERE a.k IS DISTINCT FROM b.k)"
                ).fetchall()[0][0]
    return out


def test_days_stored_on_two_cursors_are_what_one_cursor_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The changed days are inserted by storage.STORE_WORKERS cursors at once: the stored
    tables hold exactly what one cursor stores (and the lake's files hold), each day one sorted
    run, from nothing and after a day's file is replaced and a day removed; a fault in one
    worker's day (a damaged page of a day's file) fails the publish and leaves the warehouse it
    would have replaced, and no file of its own."""
    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()
    for i, n in enumerate((125_000, 8_000, 30_000, 2_000, 12_000)):
        write_store_day(lake, con, DAY + timedelta(i), n, seed=i)
    parallel = tmp_path / "parallel.duckdb"

    def publish(workers: int, from_nothing: bool = False) -> None:
        if from_nothing:
            lake.warehouse_path.unlink(missing_ok=True)
            shutil.rmtree(storage.snapshot_root(lake), ignore_errors=True)
        monkeypatch.setattr(storage, "STORE_WORKERS", workers)
        publish_warehouse(lake)

    def same_as_sequential() -> None:
        """The warehouse just published by 2 cursors against one stored from nothing by 1."""
        shutil.copyfile(lake.warehouse_path, parallel)
        assert days_out_of_place(parallel) == {t: 0 for t in NATIVE_TABLES}
        assert {t: d[1:] for t, d in differences(lake.data_dir).items()} == {
            t: (0, 0) for t in NATIVE_TABLES}
        publish(1, from_nothing=True)
        found = stored_differences(parallel, lake.warehouse_path)
        assert all(a == b > 0 and extra == missing == 0
                   for a, b, extra, missing in found.values()), found

    publish(2, from_nothing=True)
    same_as_sequential()

    # two days' files replaced (other rows), one day gone: only those are stored again
    before = stored_files(lake.data_dir)
    write_store_day(lake, con, DAY, 20_000, seed=7)
    write_store_day(lake, con, DAY + timedelta(2), 3_000, seed=8)
    for t in NATIVE_TABLES:
        lake.remove(t, f"date={DAY + timedelta(3)}")
    publish(2)
    now = stored_files(lake.data_dir)
    assert {k for k in now if now[k] != before.get(k)} == {
        (t, f"{DAY + timedelta(i)}") for t in NATIVE_TABLES for i in (0, 2)}
    assert set(before) - set(now) == {(t, f"{DAY + timedelta(3)}") for t in NATIVE_TABLES}
    same_as_sequential()

    # a damaged page of one day's file (its footer whole: the damage is met in the insert),
    # another day changed too: the publish fails, and what it would have replaced stays
    held = lake.warehouse_path.stat().st_ino
    kept, files = stored_files(lake.data_dir), sorted(storage.snapshot_root(lake).iterdir())
    write_store_day(lake, con, DAY + timedelta(4), 9_000, seed=9)
    write_store_day(lake, con, DAY + timedelta(1), 8_000, seed=1)
    bad = lake.partition_path("session_events", f"date={DAY + timedelta(1)}")
    offset, size = con.execute(
        "SELECT data_page_offset, total_compressed_size FROM parquet_metadata(?) WHERE "
        "path_in_schema = 'page_path'", [str(bad)]).fetchall()[0]
    with open(bad, "r+b") as f:
        f.seek(offset)
        f.write(bytes(range(256)) * (size // 256) + bytes(size % 256))
    with pytest.raises(duckdb.Error):
        publish(2)
    assert lake.warehouse_path.stat().st_ino == held and stored_files(lake.data_dir) == kept
    assert sorted(storage.snapshot_root(lake).iterdir()) == files  # no file of its own left
    assert not list(lake.data_dir.glob(".warehouse-*"))
    write_store_day(lake, con, DAY + timedelta(1), 8_000, seed=1)  # mended: stored
    publish(2)
    assert {t: d[1:] for t, d in differences(lake.data_dir).items()} == {
        t: (0, 0) for t in NATIVE_TABLES}


def sbin_tool(name: str) -> str | None:
    """``name`` on PATH or in /usr/sbin or /sbin (not on a user's PATH on Debian)."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small XFS file system, a loop mount of a sparse file: the production data volume is XFS
    (infra/modules/pipeline/user_data.sh.tftpl), whose clones (reflinks) mkfs.xfs turns on by
    default. Needs root and ``mkfs.xfs`` (`make test` installs xfsprogs on Debian)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system image needs root")
    tools = {t: sbin_tool(t) for t in ("mkfs.xfs", "filefrag")}
    if tools["mkfs.xfs"] is None:
        pytest.skip("mkfs.xfs is missing: `make test` installs xfsprogs on Debian")
    if tools["filefrag"] is None:
        pytest.skip("filefrag (e2fsprogs) is missing")
    base = tmp_path_factory.mktemp("xfs")
    image, mnt = base / "xfs.img", base / "mnt"
    mnt.mkdir()
    with image.open("wb") as f:
        f.truncate(512 << 20)  # XFS's least size is 300 MB
    subprocess.run([tools["mkfs.xfs"], "-q", "-m", "reflink=1", str(image)], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"this machine cannot loop-mount a file system: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=False)


def used_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def shared_bytes(path: Path) -> int:
    """The bytes of ``path`` in extents it shares with another file (``filefrag -v``'s
    ``shared`` flag, FIEMAP_EXTENT_SHARED)."""
    out = subprocess.run([sbin_tool("filefrag") or "filefrag", "-v", str(path)],
                         capture_output=True, text=True, check=True).stdout
    block = int(re.search(r"blocks? of (\d+) bytes", out).group(1))
    return block * sum(int(m.group(1)) for m in re.finditer(
        r"^\s*\d+:\s+\d+\.\.\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+):.*\bshared\b", out, re.M))


def test_a_publish_on_xfs_clones_the_warehouse_file_instead_of_copying_it(xfs: Path) -> None:
    """On XFS a publish starts its new warehouse file as a clone of the current one: while a
    reader (the dashboard) holds the file it replaces, most of the new file's bytes are shared
    with it and the file system grows by a fraction of the file, not by a copy; after nothing
    changed, a day of pages_daily and a day of every stored table written again, the stored
    rows are the lake's and the reader still reads its own."""
    lake = Lake(xfs / "data", remote_url="")
    con = connect()
    for i, n in enumerate((125_000, *[60_000] * 11)):
        write_store_day(lake, con, DAY + timedelta(i), n, seed=i)
    publish_warehouse(lake)
    changes = {
        "nothing": lambda: None,
        "a day of pages_daily": lambda: lake.write(
            con, "SELECT $d::DATE AS date, '/q' || range AS page_path, range AS views "
            "FROM range(40)", "pages_daily", f"date={DAY}", {"d": DAY}),
        "a day of every stored table": lambda: write_store_day(lake, con, DAY + timedelta(1),
                                                               5_000, seed=9),
    }
    for change, make in changes.items():
        reader = duckdb.connect(str(lake.warehouse_path), read_only=True)
        held = reader.execute("SELECT count(*) FROM session_events").fetchall()
        make()
        os.sync()  # the lake's new files allocated before the count starts
        before = used_bytes(xfs)
        publish_warehouse(lake)
        os.sync()
        size, grown = lake.warehouse_path.stat().st_size, used_bytes(xfs) - before
        shared = shared_bytes(lake.warehouse_path)
        # a copy grows the disk by the whole file; a clone by what DuckDB wrote (and what XFS
        # sets aside for its copy-on-write: 2.8-3.3 MB of the 8.4 MB file after a stored day)
        assert shared > size / 2 and grown < size * 0.8, (change, size, shared, grown)
        assert reader.execute("SELECT count(*) FROM session_events").fetchall() == held
        reader.close()
        assert {t: d[1:] for t, d in differences(lake.data_dir).items()} == {
            t: (0, 0) for t in NATIVE_TABLES}, change


def test_a_publish_that_would_store_most_days_again_starts_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish carries the current file over when few of its stored days changed (only those
    are stored again), and starts a new file when most did (a backfill over the whole history):
    carried over, the file would hold both the old and the new rows, half of it free blocks.
    Either way the stored tables hold the lake's rows."""
    lake = Lake(tmp_path / "data", remote_url="")
    con = connect()
    sizes = (125_000, *[100_000] * 5)
    for i, n in enumerate(sizes):
        write_store_day(lake, con, DAY + timedelta(i), n, seed=i)
    inserted: list[list[str]] = []
    real = storage._insert_days
    monkeypatch.setattr(storage, "_insert_days", lambda c, plans: (
        inserted.append(sorted({d for plan in plans for d in plan.changed})), real(c, plans)))

    def blocks() -> tuple[int, int]:
        with duckdb.connect(str(lake.warehouse_path), read_only=True) as w:
            return w.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()"
                             ).fetchall()[0]

    def same_as_lake() -> None:
        assert {t: d[1:] for t, d in differences(lake.data_dir).items()} == {
            t: (0, 0) for t in NATIVE_TABLES}

    publish_warehouse(lake)
    fresh = blocks()
    days = [f"{DAY + timedelta(i)}" for i in range(len(sizes))]
    assert inserted == [days]

    # two days of six written again: carried over, only they are stored
    for i in (1, 2):
        write_store_day(lake, con, DAY + timedelta(i), sizes[i], seed=10 + i)
    publish_warehouse(lake)
    assert inserted[-1] == days[1:3]
    same_as_lake()

    # every day written again (other rows, the same sizes): a new file, every day stored once
    for i, n in enumerate(sizes):
        write_store_day(lake, con, DAY + timedelta(i), n, seed=20 + i)
    publish_warehouse(lake)
    assert inserted[-1] == days
    # carried over, the file would hold the old rows' blocks, free, beside the new: about twice
    # the blocks the first store used (19 of 19 here; on the code before, 43 with 24 free)
    used = fresh[0] - fresh[1]
    total, free = blocks()
    assert total < 1.5 * used and free < 0.25 * total, (fresh, total, free)
    same_as_lake()
