"""The raw-lake sensor against a real S3 endpoint (moto's server), the hourly schedule, and the
definitions as Dagster's own tooling loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from analytics_platform.lake import floor_hour, open_raw_lake, partition_key
from analytics_platform.resources import RawLakeResource

ROOT = Path(__file__).resolve().parent.parent


def evaluate(cursor: str | None, url: str) -> tuple[list[dg.RunRequest], str | None]:
    from analytics_platform.definitions import defs

    sensor = defs().resolve_sensor_def("raw_lake_sensor")
    ctx = dg.build_sensor_context(cursor=cursor, resources={"raw_lake": RawLakeResource(url=url)})
    result = sensor(ctx)
    requests = [r for r in (result if isinstance(result, list) else []) if
                isinstance(r, dg.RunRequest)]
    return requests, ctx.cursor


@pytest.mark.s3
def test_sensor_on_s3(s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/raw"
    lake = open_raw_lake(url)
    now = floor_hour(datetime.now(UTC))
    h0, h1, h2, old = now, now - timedelta(hours=1), now - timedelta(hours=2), now - timedelta(
        hours=8)
    for i in range(1001):  # more than one page of listing
        lake.write_records(h1 + timedelta(seconds=i % 3600), b"x", object_id=f"{i:05d}",
                           durable=False)
    lake.write_records(h0, b"x", object_id="now-1")
    # outside the look-back: listed by the sweep of the last 7 days (the first tick's, then
    # one every SWEEP_SECONDS), not by every tick
    lake.write_records(old, b"x", object_id="older")

    requests, cursor = evaluate(None, url)
    assert sorted(r.partition_key for r in requests) == sorted([partition_key(h0),
                                                               partition_key(h1),
                                                               partition_key(old)])
    assert json.loads(cursor)[partition_key(h1)].startswith("1001-")

    # nothing new: nothing to run
    again, cursor2 = evaluate(cursor, url)
    assert again == [] and json.loads(cursor2) == json.loads(cursor)

    # a late object lands in an hour already processed: one new run, with a new run key
    first_key = next(r.run_key for r in requests if r.partition_key == partition_key(h1))
    lake.write_records(h1 + timedelta(minutes=59), b"late", object_id="late")
    lake.write_records(h2, b"x", object_id="h2")
    late, cursor3 = evaluate(cursor2, url)
    by_key = {r.partition_key: r.run_key for r in late}
    assert set(by_key) == {partition_key(h1), partition_key(h2)}
    assert by_key[partition_key(h1)] != first_key

    # a restart: the saved cursor means no repeated runs
    restarted, _ = evaluate(cursor3, url)
    assert restarted == []


def test_sensor_on_a_local_folder(tmp_path: Path) -> None:
    url = str(tmp_path / "raw")
    lake = open_raw_lake(url)
    now = floor_hour(datetime.now(UTC))
    assert evaluate(None, url)[0] == []
    lake.write_records(now, b"x", object_id="a")
    requests, cursor = evaluate(None, url)
    assert [r.partition_key for r in requests] == [partition_key(now)]
    lake.write_records(now, b"y", object_id="b")
    assert [r.partition_key for r in evaluate(cursor, url)[0]] == [partition_key(now)]


def test_hourly_schedule_processes_the_previous_hour() -> None:
    from analytics_platform.definitions import defs

    schedule = defs().resolve_schedule_def("hourly_events_schedule")
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 2, 11, 10,
                                                                      tzinfo=UTC))
    request = schedule(ctx)
    assert request.partition_key == "2026-03-02-10:00"
    assert schedule.cron_schedule == "10 * * * *"


def test_the_schedules_first_tick_skips_the_hour_before_the_first_partition() -> None:
    """On $ANALYTICS_START_DATE at :10 the hour that ended is before the first partition: a
    skip, not a run request for a partition that does not exist (the daemon's tick failed with
    DagsterUnknownPartitionError)."""
    from analytics_platform.definitions import defs
    from analytics_platform.partitions import first_hour

    schedule = defs().resolve_schedule_def("hourly_events_schedule")
    with dg.build_schedule_context(
            scheduled_execution_time=first_hour() + timedelta(minutes=10)) as ctx:
        result = schedule(ctx)
    assert isinstance(result, dg.SkipReason), result
    assert "before the first partition" in (result.skip_message or "")
    with dg.build_schedule_context(
            scheduled_execution_time=first_hour() + timedelta(hours=1, minutes=10)) as ctx:
        assert schedule(ctx).partition_key == partition_key(first_hour())


def test_definitions_load_and_validate() -> None:
    from analytics_platform.definitions import defs

    d = defs()
    keys = {k.to_user_string() for k in d.resolve_all_asset_keys()}
    assert keys == {"events", "quarantine", "sessions", "session_events", "kpis_daily",
                    "pages_daily", "attribution_daily", "funnel_daily", "devices_daily",
                    "goals_daily", "journeys_daily", "attribution_touch", "cohort_retention",
                    "experiments", "countries_daily", "outbound_daily", "downloads_daily",
                    "not_found_daily", "web_vitals_daily", "engagement_daily"}
    sensor = d.resolve_sensor_def("downstream_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert d.resolve_sensor_def("raw_lake_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    checks = {k.name for k in d.resolve_asset_graph().asset_check_keys}
    assert {"event_id_unique_and_not_null", "quarantine_share", "events_freshness",
            "events_hourly_volume", "sessions_reconcile_with_events"} <= checks
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DAGSTER_HOME": ""})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Validation successful" in out.stdout + out.stderr


def test_sensor_interval_follows_the_raw_lake(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """Local folders are listed every 10 s (free); S3 every 30 s (LIST requests cost money)."""
    from analytics_platform import settings

    monkeypatch.delenv("ANALYTICS_SENSOR_INTERVAL_SECONDS", raising=False)
    monkeypatch.setenv("ANALYTICS_RAW_URL", "s3://bucket/raw")
    assert settings.sensor_interval_seconds() == 30
    monkeypatch.setenv("ANALYTICS_RAW_URL", str(tmp_path / "raw"))
    assert settings.sensor_interval_seconds() == 10
    monkeypatch.setenv("ANALYTICS_SENSOR_INTERVAL_SECONDS", "120")
    assert settings.sensor_interval_seconds() == 120


def test_the_local_instance_starts_runs_quickly_and_two_at_a_time(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The dagster.yaml the CLI writes is one Dagster accepts, with the run queue it says."""
    from analytics_platform.cli import _dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = _dagster_home()
    with dg.DagsterInstance.from_config(home) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        assert coordinator.dequeue_interval_seconds == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
    assert "enabled: false" in (Path(home) / "dagster.yaml").read_text()  # no telemetry
