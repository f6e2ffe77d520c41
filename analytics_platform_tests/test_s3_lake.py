"""The transformed lake kept in S3 (moto's server): every partition reaches S3, a machine with
an empty local cache rebuilds the same tables from it, and `lake-pull` fills a reader's cache."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

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
