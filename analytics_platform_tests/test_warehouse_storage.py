"""The warehouse's stored tables (storage.NATIVE_TABLES, issue #21): the rows the dashboard reads
from the warehouse file are exactly the lake's, after a backfill and after an incremental
update, and a reader holding the warehouse open keeps working while a publish swaps it."""

from __future__ import annotations

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
