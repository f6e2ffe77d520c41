"""Incremental processing equals a backfill; materialising twice changes nothing; readers of the
warehouse are never blocked by a run."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform.backfill import plan, run_backfill
from analytics_platform.lake import hour_of_partition_key, hours_between, open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic

DAY = date(2026, 3, 9)
TABLES = ["events", "quarantine", "sessions", "kpis_daily", "pages_daily", "attribution_daily",
          "attribution_touch", "funnel_daily", "cohort_retention", "experiments"]


def snapshot(data: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() if t in views
                else [] for t in TABLES}
    finally:
        con.close()


def late_object(raw: Path) -> tuple[str, bytes]:
    """A late object for hour 10: two retried copies of records already there, and one new
    event of a session already there."""
    lake = open_raw_lake(raw)
    hour = datetime(2026, 3, 9, 10, tzinfo=UTC)
    first = lake.list_hour(hour)[0]
    records = [json.loads(x) for x in gzip.decompress(lake.read(first.key)).splitlines()]
    human = [r for r in records if "bot" not in r["user_agent"].lower()
             and "curl" not in r["user_agent"] and "python" not in r["user_agent"]]
    new = dict(human[0], event_id="11111111-2222-4333-8444-555555555555",
               event_type="custom", props={"name": "late_retry"},
               ingest_ts="2026-03-09T10:59:58.000Z")
    body = b"".join(json.dumps(r).encode() + b"\n" for r in (human[1], human[2], new))
    key = "year=2026/month=03/day=09/hour=10/analytics-1-2026-03-09-10-59-58-late.gz"
    return key, gzip.compress(body)


@pytest.fixture(scope="module")
def base_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("inc") / "raw"
    write_traffic(generate(SimConfig(days=1, visitors_per_day=300, start=DAY, seed=9)),
                  open_raw_lake(raw), progress=False)
    return raw


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    # a short late window keeps the number of hourly runs small
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "4")
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)


def backfilled(data: Path, raw: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    shutil.copytree(raw, data / "raw")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_backfill(DAY, DAY, instance=instance, log=lambda _: None).success
    return snapshot(data)


@pytest.fixture(scope="module")
def shared(base_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One backfilled data folder for the tests below that start from one (each runs the
    backfill again, which leaves the folder as it was: the first of them asserts it), made once
    instead of once per test (a backfill is most of each test's time)."""
    data = tmp_path_factory.mktemp("inc-shared") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "4")
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        backfilled(data, base_raw, mp)
    return data


def test_incremental_hour_by_hour_equals_one_backfill(
    tmp_path: Path, base_raw: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics_platform.definitions import defs

    late_key, late_body = late_object(base_raw)
    # A: the final raw lake (late object included), one backfill.
    full_raw = tmp_path / "full_raw"
    shutil.copytree(base_raw, full_raw)
    (full_raw / late_key).write_bytes(late_body)
    expected = backfilled(tmp_path / "a", full_raw, monkeypatch)

    # B: as the sensor would: one run per hour as the hours fill (the raw-lake sensor asks for
    # runs of the hours that hold objects only: 25 of the backfill's 56 here), the day refreshed
    # as it goes, then the late object lands in hour 10 after that hour was processed.
    data = tmp_path / "b"
    shutil.copytree(base_raw, data / "raw")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    d = defs()
    events_job, daily_job = d.resolve_job_def("events_job"), d.resolve_job_def("daily_job")
    history_job = d.resolve_job_def("history_job")
    first, last = plan(DAY, DAY)[0].first, plan(DAY, DAY)[0].last
    lake = open_raw_lake(data / "raw")
    hours = [h for h in hours_between(hour_of_partition_key(first), hour_of_partition_key(last))
             if lake.list_hour(h)]
    assert len(hours) >= 24  # every hour of the day, and those its sessions run into
    with dg.DagsterInstance.ephemeral() as instance:
        for i, h in enumerate(hours):
            key = h.strftime("%Y-%m-%d-%H:%M")
            assert events_job.execute_in_process(instance=instance, partition_key=key).success
            if i % 8 == 7:
                assert daily_job.execute_in_process(instance=instance,
                                                    partition_key=str(DAY)).success
        (data / "raw" / late_key).write_bytes(late_body)
        assert events_job.execute_in_process(instance=instance,
                                             partition_key="2026-03-09-10:00").success
        assert daily_job.execute_in_process(instance=instance, partition_key=str(DAY)).success
        assert history_job.execute_in_process(instance=instance).success
    got = snapshot(data)
    assert {t: len(v) for t, v in got.items()} == {t: len(v) for t, v in expected.items()}
    assert got == expected
    ids = {r[0] for r in got["events"]}
    assert "11111111-2222-4333-8444-555555555555" in ids


def test_materialising_twice_gives_identical_output(
    tmp_path: Path, shared: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shared
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    first = snapshot(data)
    files = {p: p.read_bytes() for p in (data / "lake").glob("*/*/*.parquet")}
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_backfill(DAY, DAY, instance=instance, log=lambda _: None).success
    assert snapshot(data) == first
    # the table files (the warehouse's snapshots, `_published/<gen>/`, are links to them)
    after = {p: p.read_bytes() for p in (data / "lake").glob("*/*/*.parquet")}
    assert set(after) == set(files)  # replaced, never appended: same files, no new ones
    assert sum(len(v) for v in first.values()) > 1000


READER = """
import sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
import os
n = 0
while not os.path.exists(stop):
    con = duckdb.connect(path, read_only=True)
    n += con.execute("SELECT count(*) FROM kpis_daily").fetchall()[0][0] >= 0
    n += con.execute("SELECT count(*) FROM sessions").fetchall()[0][0] >= 0
    con.close()
print(n)
"""


def test_readers_are_never_blocked_by_a_run(
    tmp_path: Path, shared: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shared
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    warehouse = data / "warehouse.duckdb"
    stop = tmp_path / "stop"
    # a separate process, like a dashboard or `duckdb -readonly`, reading all along
    reader = subprocess.Popen([sys.executable, "-c", READER, str(warehouse), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the DuckDB shell, as the README shows it
    cli = Path(sys.executable).with_name("duckdb")
    shell = subprocess.Popen(
        ["bash", "-c", f'n=0; until [ -e "{stop}" ]; do "{cli}" -readonly "{warehouse}" '
                       f'"select count(*) from kpis_daily" > /dev/null || exit 1; n=$((n+1)); '
                       'done; echo $n'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # and a connection held open in this process for the whole run
    held = duckdb.connect(str(warehouse), read_only=True)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            assert run_backfill(DAY, DAY, instance=instance, log=lambda _: None).success
        assert held.execute("SELECT count(*) FROM sessions").fetchall()[0][0] > 0
    finally:
        stop.write_text("")
        out, err = reader.communicate(timeout=60)
        shell_out, shell_err = shell.communicate(timeout=60)
        held.close()
    assert reader.returncode == 0, err
    assert int(out.strip()) > 0
    assert shell.returncode == 0, shell_err
    assert int(shell_out.strip()) > 0
    assert os.path.exists(warehouse)


def test_two_runs_at_once_do_not_fail_on_a_lock(
    tmp_path: Path, shared: Path, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes materialise (overlapping) partitions at the same time."""
    data = shared
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    script = ("import dagster as dg; from analytics_platform.backfill import run_backfill; "
              "import datetime as d; inst = dg.DagsterInstance.ephemeral(); "
              "assert run_backfill(d.date(2026,3,9), d.date(2026,3,9), instance=inst, "
              "log=lambda _: None).success")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ),
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    assert snapshot(data)["sessions"]


def test_a_backfill_whose_run_fails_still_publishes_what_the_runs_before_it_wrote(
        base_raw: Path, tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backfill publishes once, after its runs (backfill.run_backfill): when its second run
    fails, the error names that run and the asset's own exception, the log says the warehouse
    was published, and it shows the events the first run wrote, with no sessions."""
    from analytics_platform.defs.sessions import assets as sessions_assets

    def broken(*_a: object, **_k: object) -> None:
        raise ValueError("sessions broke")

    monkeypatch.setattr(sessions_assets, "build_day", broken)
    shutil.copytree(base_raw, tmp_path / "raw")
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    logged: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance, \
            pytest.raises(RuntimeError, match=r"daily_job failed: .*sessions broke"):
        run_backfill(DAY, DAY, instance=instance, log=logged.append)
    assert any(line.startswith("  the warehouse published in") for line in logged), logged
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    finally:
        con.close()
    expected = duckdb.sql(
        "SELECT count(DISTINCT event_id) FROM read_parquet($f)",  # the view drops later copies
        params={"f": str(tmp_path / "lake" / "events" / "*" / "*.parquet")}).fetchall()[0][0]
    assert events == expected > 0
    assert "sessions" not in views
