"""The transformed lake kept in S3 (moto's server): every partition reaches S3, a machine with
an empty local cache rebuilds the same tables from it, and `lake-pull` fills a reader's cache."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
from click.testing import CliRunner

from analytics_platform import layout
from analytics_platform.backfill import run_backfill
from analytics_platform.cli import main
from analytics_platform.lake import open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform_tests.test_incremental import snapshot

DAY = date(2026, 3, 16)
pytestmark = pytest.mark.s3


def test_the_lake_in_s3(tmp_path: Path, s3_bucket: str, moto_endpoint: str,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    write_traffic(generate(SimConfig(days=1, visitors_per_day=200, start=DAY, seed=4)),
                  open_raw_lake(data / "raw"), progress=False)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.setenv("ANALYTICS_LAKE_URL", f"s3://{s3_bucket}/lake")
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "4")
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_backfill(DAY, DAY, instance=instance, log=lambda _: None).success
    first = snapshot(data)
    assert first["sessions"]

    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket, Prefix="lake/") for o in page.get("Contents", [])}
    local = {"lake/" + p.relative_to(data / "lake").as_posix()
             for p in (data / "lake").rglob("*.parquet")
             if "_tmp" not in p.parts and layout.PUBLISHED not in p.parts}  # snapshots: local
    assert local and keys == local

    # another machine: an empty cache; the daily and history runs read what they need from S3
    shutil.rmtree(data / "lake")
    (data / "warehouse.duckdb").unlink()
    from analytics_platform.definitions import defs

    d = defs()
    with dg.DagsterInstance.ephemeral() as instance:
        assert d.resolve_job_def("daily_job").execute_in_process(
            instance=instance, partition_key=str(DAY)).success
        assert d.resolve_job_def("history_job").execute_in_process(instance=instance).success
    again = snapshot(data)
    assert {t: again[t] for t in first if t not in ("events", "quarantine")} == {
        t: first[t] for t in first if t not in ("events", "quarantine")}

    # a reader's machine: lake-pull fills the whole cache and publishes the warehouse
    shutil.rmtree(data / "lake")
    (data / "warehouse.duckdb").unlink()
    result = CliRunner().invoke(main, ["lake-pull"])
    assert result.exit_code == 0, result.output
    assert snapshot(data) == first


def test_lake_pull_needs_a_lake_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ANALYTICS_LAKE_URL", raising=False)
    result = CliRunner().invoke(main, ["lake-pull"])
    assert result.exit_code == 1 and "ANALYTICS_LAKE_URL is not set" in result.output


def test_the_machine_follows_runs_made_elsewhere(tmp_path: Path, s3_bucket: str) -> None:
    """ANALYTICS_RUN_LAUNCHER=ecs: a run's task writes the lake in S3 and goes; the machine's
    warehouse (its dashboard's) follows after each run Dagster records as a success, a partition
    replaced at the same key included (a day run again), and only then."""
    import duckdb

    from analytics_platform.follow import follow
    from analytics_platform.storage import Lake

    url = f"s3://{s3_bucket}/lake"
    task, machine = Lake(tmp_path / "task", url), Lake(tmp_path / "machine", url)
    con = duckdb.connect()

    def run_writes(rows: int) -> None:  # a task's run: one day of a mart, replaced each time
        task.write(con, f"SELECT range AS n FROM range({rows})", "visits_daily", "date=2026-03-16")

    def shown() -> int:  # what the machine's dashboard reads
        with duckdb.connect(str(machine.warehouse_path), read_only=True) as w:
            return w.execute("SELECT count(*) FROM visits_daily").fetchone()[0]

    said: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        def succeeded() -> None:
            instance.add_run(dg.DagsterRun(job_name="daily_job",
                                           status=dg.DagsterRunStatus.SUCCESS))

        steps = iter([
            lambda: run_writes(3),  # before the machine starts: its first pass brings it
            lambda: (shown() == 3 or pytest.fail("the first pass")) and run_writes(5),
            # the day replaced, no run succeeded yet: nothing moves
            lambda: (shown() == 3 or pytest.fail("a pass without a success")) and succeeded(),
            lambda: shown() == 5 or pytest.fail("the replaced day after the success"),
        ])

        def until() -> bool:
            step = next(steps, None)
            if step is None:
                return True
            step()
            return False

        follow(machine, instance, every=0.01, echo=said.append, until=until)
    assert len(said) == 2 and said[0].startswith("1 file(s) fetched"), said
    assert said[1].startswith("1 file(s) fetched"), said


def _rows(path: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect() as con:
        return con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false) "
                           "ORDER BY ALL", [str(path)]).fetchall()


def _s3_rows(s3: Any, bucket: str, key: str, tmp_path: Path) -> list[tuple]:
    copy = tmp_path / "s3-copy.parquet"
    copy.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return _rows(copy)


def test_a_pull_during_a_write_never_rolls_it_back(tmp_path: Path, s3_bucket: str,
                                                   moto_endpoint: str) -> None:
    """One machine, one data folder, two runs at once (deploy/dagster.yaml allows two): a daily
    run writes `sessions` while a history run pulls it (run_history). The pull happens in the
    moment the daily run's PUT leaves, and again while it is between the PUT and the file
    taking its place here: the day rewritten keeps its new rows and a new day keeps its file,
    here and in S3 (found in review: the pull fetched the old day back from S3 and deleted the
    new one, whose upload then failed); a day emptied is not fetched back during its DELETE."""
    import threading

    from botocore.config import Config

    from analytics_platform.duck import connect
    from analytics_platform.storage import Lake

    url = f"s3://{s3_bucket}/lake"
    data = tmp_path / "data"

    def client() -> Any:  # each run its own; an upload whose body changed under it (the
        # code before) stalls the server until the read timeout: fail in seconds, not minutes
        return boto3.client("s3", endpoint_url=moto_endpoint, config=Config(
            read_timeout=5, retries={"total_max_attempts": 1}))

    daily, history = Lake(data, url, client()), Lake(data, url, client())
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    con = connect()
    day1, day2 = "date=2026-03-16", "date=2026-03-17"
    daily.write(con, "SELECT range AS n FROM range(10)", "sessions", day1)
    pulled: list[int] = []
    late: list[threading.Thread] = []

    def pull_now(**_: object) -> None:  # just before the real PUT
        pulled.append(history.pull("sessions"))

    def pull_soon(**_: object) -> None:  # the PUT done, from another thread (it may wait)
        late.append(threading.Thread(target=lambda: pulled.append(history.pull("sessions"))))
        late[-1].start()

    daily.remote.client.meta.events.register("before-call.s3.PutObject", pull_now)
    daily.remote.client.meta.events.register("after-call.s3.PutObject", pull_soon)
    daily.write(con, "SELECT range AS n FROM range(1000)", "sessions", day1)
    daily.write(con, "SELECT range AS n FROM range(5)", "sessions", day2)
    for t in late:
        t.join(timeout=30)
    assert len(pulled) == 4
    for day, n in ((day1, 1000), (day2, 5)):
        path = daily.partition_path("sessions", day)
        assert path.exists(), day
        assert _rows(path) == [(i,) for i in range(n)], day
        assert _s3_rows(s3, s3_bucket, f"lake/sessions/{day}/part.parquet", tmp_path) == [
            (i,) for i in range(n)], day
    # a day emptied by a run again: gone here and in S3, not fetched back during its DELETE
    daily.remote.client.meta.events.register("before-call.s3.DeleteObject", pull_now)
    daily.remote.client.meta.events.register("after-call.s3.DeleteObject", pull_soon)
    daily.remove("sessions", day2)
    for t in late:
        t.join(timeout=30)
    assert len(pulled) == 6
    assert not daily.partition_path("sessions", day2).exists()
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"lake/sessions/{day2}")
    # and a pull afterwards has nothing to do
    assert history.pull("sessions") == 0


def test_a_table_emptied_in_s3_is_emptied_here(tmp_path: Path, s3_bucket: str) -> None:
    """lake-pull (Lake.pull_all) on a reader's machine: a table whose last file was removed in
    S3 (quarantine, after a re-run of its hour cleared it) loses its files here too, and its
    view then shows no row (found in review: only the tables S3 still listed were pulled, so
    the reader kept publishing the old quarantined records)."""
    import duckdb

    from analytics_platform.duck import connect
    from analytics_platform.storage import Lake, publish_warehouse

    url = f"s3://{s3_bucket}/lake"
    writer, reader = Lake(tmp_path / "writer", url), Lake(tmp_path / "reader", url)
    con = connect()
    writer.write(con, "SELECT 1 AS x", "quarantine", "hour=2026-03-01T10")
    writer.write(con, "SELECT 1 AS x", "outbound_daily", "date=2026-03-01")
    writer.write(con, "SELECT 2 AS x", "outbound_daily", "date=2026-03-02")
    assert reader.pull_all() == {"outbound_daily": 2, "quarantine": 1}
    writer.remove("quarantine", "hour=2026-03-01T10")  # the table's only file
    writer.remove("outbound_daily", "date=2026-03-02")
    assert reader.pull_all() == {"outbound_daily": 0, "quarantine": 0}
    assert reader.pull_all() == {"outbound_daily": 0}  # an emptied table is not listed again
    assert sorted(p.relative_to(reader.root).as_posix()
                  for p in reader.root.glob("*/*/*.parquet")) == [
        "outbound_daily/date=2026-03-01/part.parquet"]
    publish_warehouse(reader)
    with duckdb.connect(str(reader.warehouse_path), read_only=True) as w:
        assert w.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        assert w.execute("SELECT x FROM outbound_daily").fetchall() == [(1,)]


def test_a_file_replaced_within_the_same_second_is_fetched_again(tmp_path: Path,
                                                                 s3_bucket: str,
                                                                 moto_endpoint: str) -> None:
    """S3's LastModified has whole seconds: a partition pulled and then replaced within the same
    second by a file of the same size looked unchanged to a pull comparing size and time, and
    the reader kept the old rows until the next change (found in review). The ETag tells."""
    import time

    from analytics_platform.duck import connect
    from analytics_platform.storage import Lake

    url = f"s3://{s3_bucket}/lake"
    writer, reader = Lake(tmp_path / "writer", url), Lake(tmp_path / "reader", url)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    con = connect()
    key = "lake/visits_daily/date=2026-03-16/part.parquet"

    def modified() -> Any:
        return s3.head_object(Bucket=s3_bucket, Key=key)["LastModified"]

    for _ in range(5):  # until both writes land in one second (the first try, but for a stall)
        time.sleep(1.02 - time.time() % 1)
        first = writer.write(con, "SELECT 1 AS x", "visits_daily", "date=2026-03-16")
        before = modified()
        reader.pull("visits_daily")
        second = writer.write(con, "SELECT 2 AS x", "visits_daily", "date=2026-03-16")
        if modified() == before:
            break
    else:
        pytest.fail("no two writes within one second in five tries")
    local = reader.partition_path("visits_daily", "date=2026-03-16")
    assert first.stat().st_size == second.stat().st_size == local.stat().st_size
    assert reader.pull("visits_daily") == 1
    assert _rows(local) == [(2,)]
    assert reader.pull("visits_daily") == 0


def test_a_fetch_never_lands_over_a_newer_write(tmp_path: Path, s3_bucket: str,
                                                moto_endpoint: str) -> None:
    """The other side of the same race: a pull's GET is answered with S3's copy as it was, and
    before the downloaded file takes its place a run of this machine writes a newer one. The
    newer one stays (with the code before, the GET's older copy replaced it: the machine's
    lake behind S3 until a pull came after the next change)."""
    from analytics_platform.duck import connect
    from analytics_platform.storage import Lake

    url = f"s3://{s3_bucket}/lake"
    data = tmp_path / "data"
    daily, history = Lake(data, url), Lake(data, url)
    elsewhere = Lake(tmp_path / "elsewhere", url)  # an ECS task, another machine
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    con = connect()
    day = "date=2026-03-16"
    daily.write(con, "SELECT range AS n FROM range(10)", "sessions", day)
    elsewhere.write(con, "SELECT range AS n FROM range(20)", "sessions", day)  # S3 newer

    def write_here(**_: object) -> None:  # the GET has its answer (20 rows): a run writes 30
        daily.write(con, "SELECT range AS n FROM range(30)", "sessions", day)

    history.remote.client.meta.events.register("after-call.s3.GetObject", write_here)
    assert history.pull("sessions") == 0  # its download dropped
    path = daily.partition_path("sessions", day)
    assert _rows(path) == [(i,) for i in range(30)]
    assert _s3_rows(s3, s3_bucket, f"lake/sessions/{day}/part.parquet", tmp_path) == [
        (i,) for i in range(30)]
    assert not list((data / "lake" / "_tmp").iterdir())  # the download removed


def test_a_publish_leaves_a_fetch_on_its_way_in_place(tmp_path: Path, s3_bucket: str,
                                                      moto_endpoint: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A downloaded file waits under ``lake/_tmp`` for its file's lock; a publish of another run
    meanwhile removes that folder's leftovers an hour old. Found in review: the download had
    S3's LastModified (a day old) as its time already there, so the publish removed it and the
    reading step failed (FileNotFoundError). The time is now given once the file is in place,
    where pull compares it."""
    from datetime import UTC, datetime, timedelta

    from analytics_platform import storage
    from analytics_platform.duck import connect
    from analytics_platform.storage import Lake

    url = f"s3://{s3_bucket}/lake"
    day = "date=2026-03-16"
    Lake(tmp_path / "writer", url).write(connect(), "SELECT 1 AS n", "sessions", day)
    reader = Lake(tmp_path / "reader", url)
    a_day_ago = datetime.now(UTC) - timedelta(days=1)

    def day_old(parsed: dict, **_: object) -> None:  # as most of a lake's objects are
        parsed["LastModified"] = a_day_ago

    reader.remote.client.meta.events.register("after-call.s3.GetObject", day_old)
    lock = Lake._lock

    def publish_first(self: Lake, path: Path):  # what another run's publish does meanwhile
        storage._prune_leftovers(self, "none")
        return lock(self, path)

    monkeypatch.setattr(Lake, "_lock", publish_first)
    [got] = reader.existing("sessions", [day])
    assert _rows(Path(got)) == [(1,)]
    assert abs(Path(got).stat().st_mtime - a_day_ago.timestamp()) < 1  # pull's fallback
