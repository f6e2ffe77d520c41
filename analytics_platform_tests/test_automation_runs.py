"""The automation asks for each run once (issue 17 §5), against a real Dagster instance: the
sensors and the schedule are evaluated with it, the runs they would ask for are executed for real,
and what the instance then holds decides the next tick."""

from __future__ import annotations

import gzip
import json
import shutil
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster import DagsterEventType

from analytics_platform.backfill import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    run_backfill,
)
from analytics_platform.contract import encode_records
from analytics_platform.defs.automation import housekeeping
from analytics_platform.defs.automation.housekeeping import delete_old_runs
from analytics_platform.defs.automation.records import SESSION_DAYS
from analytics_platform.defs.automation.sensors import window_days
from analytics_platform.ingest.core import IngestConfig, Ingestor
from analytics_platform.lake import floor_hour, open_raw_lake, partition_key
from analytics_platform.resources import PipelineSettings, RawLakeResource
from analytics_platform.simulate import SimConfig, generate, write_traffic

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
DAY = date(2026, 3, 9)


def visit(at: datetime, session: str | None = None, event_ts: datetime | None = None) -> bytes:
    """One Firehose object: one request of three page views of a session, stored as the ingest
    handler stores it, arrived at ``at``."""
    session = session or str(uuid.uuid4())
    ts = (event_ts or at - timedelta(seconds=5)).isoformat(timespec="milliseconds")
    batch = [{"event_type": "page_view", "event_id": str(uuid.uuid4()), "session_id": session,
              "visitor_id": session, "page_path": f"/p{i}", "page_host": "example.com",
              "event_ts": ts.replace("+00:00", "Z")} for i in range(3)]
    records = Ingestor(IngestConfig.from_env(), clock=lambda: at).prepare(
        "POST", {"content-type": "application/json", "user-agent": BROWSER},
        json.dumps(batch).encode()).records
    assert len(records) == 3
    return gzip.compress(encode_records(records))


def drop(raw: Path, at: datetime, **kw) -> None:
    open_raw_lake(raw).write_records(at, visit(at, **kw), object_id=uuid.uuid4().hex[:12])


def definitions() -> dg.Definitions:
    from analytics_platform.definitions import defs

    return defs()


def tick(name: str, instance: dg.DagsterInstance, cursor: str | None, raw: Path | None = None
         ) -> tuple[list[dg.RunRequest], str | None]:
    sensor = definitions().resolve_sensor_def(name)
    resources = {"pipeline": PipelineSettings()}
    if raw is not None:
        resources["raw_lake"] = RawLakeResource(url=str(raw))
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = sensor(ctx)
        requests = [r for r in (result if isinstance(result, list) else [])
                    if isinstance(r, dg.RunRequest)]
        return requests, ctx.cursor


def execute(instance: dg.DagsterInstance, request: dg.RunRequest, job: str = "events_job"
            ) -> dg.ExecuteInProcessResult:
    """What the daemon does with a request: run the job for its partition."""
    result = definitions().resolve_job_def(request.job_name or job).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags)
    assert result.success
    return result


# The events that put a run in each status, in order.
STATUS_EVENTS = {
    dg.DagsterRunStatus.QUEUED: [DagsterEventType.RUN_ENQUEUED],
    dg.DagsterRunStatus.STARTED: [DagsterEventType.RUN_START],
    dg.DagsterRunStatus.CANCELED: [DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_CANCELED],
}


def add_run(instance: dg.DagsterInstance, job: str, key: str | None,
            status: dg.DagsterRunStatus, tags: dict[str, str] | None = None,
            assets: set[str] | None = None) -> dg.DagsterRun:
    """A run as the daemon leaves it in the instance: queued (by the run coordinator), started
    (by its run worker) or canceled while queued, through the events that put it there; of
    partition ``key`` unless ``tags`` say otherwise; ``assets``: the selection of a run started
    from the asset graph (job ``__ASSET_JOB``)."""
    from dagster._core.remote_origin import (  # what a run launched from the daemon carries
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )

    origin = RemoteJobOrigin(RemoteRepositoryOrigin(
        RegisteredCodeLocationOrigin("analytics_platform"), "__repository__"), job)
    run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), remote_job_origin=origin,
                        status=dg.DagsterRunStatus.NOT_STARTED,
                        tags=tags if tags is not None else {"dagster/partition": key},
                        asset_selection=frozenset(dg.AssetKey(a) for a in assets)
                        if assets else None)
    instance.add_run(run)
    for event in STATUS_EVENTS[status]:
        instance.report_dagster_event(dg.DagsterEvent(event.value, job_name=job), run.run_id)
    assert instance.get_run_by_id(run.run_id).status == status
    return run


def finish(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    instance.delete_run(run.run_id)  # gone from the queue: it ended without materialising


# --- the raw-lake sensor and the schedule ---------------------------------------------------------

@pytest.fixture()
def recent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, datetime]:
    """Objects in the last three hours (what the sensor lists), in a fresh data folder."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "1")  # a short window: fewer hours
    now = datetime.now(UTC)
    raw = tmp_path / "raw"
    for h in (2, 1):
        drop(raw, floor_hour(now) - timedelta(hours=h) + timedelta(minutes=1))
    return raw, now


def test_no_run_for_hours_a_backfill_processed(recent: tuple[Path, datetime]) -> None:
    raw, now = recent
    h1 = floor_hour(now) - timedelta(hours=1)
    with dg.instance_for_test() as instance:
        assert run_backfill((now - timedelta(hours=2)).date(), now.date(), instance=instance,
                            log=lambda _: None).success
        # the sensor starts after the backfill with no cursor: nothing to do
        requests, cursor = tick("raw_lake_sensor", instance, None, raw)
        assert requests == []
        # nor for the schedule at :10, for the hour that just ended
        schedule = definitions().resolve_schedule_def("hourly_events_schedule")
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=h1 + timedelta(
                hours=1, minutes=10)) as ctx:
            assert isinstance(schedule(ctx), dg.SkipReason)
        # a new object in one of those hours: a run of that hour, and of it alone
        drop(raw, h1 + timedelta(minutes=30))
        requests, cursor = tick("raw_lake_sensor", instance, cursor, raw)
        assert [r.partition_key for r in requests] == [partition_key(h1)]
        # the schedule would run it too, had the sensor not: it sees objects not processed yet
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=h1 + timedelta(
                hours=1, minutes=10)) as ctx:
            assert schedule(ctx).partition_key == partition_key(h1)
        # once the sensor's run is done, the schedule has nothing left to do
        execute(instance, requests[0])
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=h1 + timedelta(
                hours=1, minutes=10)) as ctx:
            assert isinstance(schedule(ctx), dg.SkipReason)
        assert tick("raw_lake_sensor", instance, cursor, raw)[0] == []


def test_one_run_of_an_hour_at_a_time(recent: tuple[Path, datetime]) -> None:
    raw, now = recent
    hour = floor_hour(now) - timedelta(hours=1)
    key = partition_key(hour)
    with dg.instance_for_test() as instance:
        requests, cursor = tick("raw_lake_sensor", instance, None, raw)
        assert sorted(r.partition_key for r in requests) == sorted(
            [key, partition_key(hour - timedelta(hours=1))])
        # the daemon queued the run of `hour`; two more objects land, two ticks pass: no second
        # run while the first is queued (it will list every object when it starts)
        queued = add_run(instance, "events_job", key, dg.DagsterRunStatus.QUEUED)
        for minute in (20, 21):
            drop(raw, hour + timedelta(minutes=minute))
            requests, cursor = tick("raw_lake_sensor", instance, cursor, raw)
            assert key not in [r.partition_key for r in requests]
        # it starts, sees all three objects and materialises: nothing left to do
        finish(instance, queued)
        execute(instance, dg.RunRequest(partition_key=key))
        requests, cursor = tick("raw_lake_sensor", instance, cursor, raw)
        assert key not in [r.partition_key for r in requests]

        # a run in progress, and an object lands that it did not see: one more run, once, after it
        started = add_run(instance, "events_job", key, dg.DagsterRunStatus.STARTED)
        drop(raw, hour + timedelta(minutes=40))
        assert key not in [r.partition_key for r in tick("raw_lake_sensor", instance, cursor,
                                                         raw)[0]]
        finish(instance, started)
        requests, cursor = tick("raw_lake_sensor", instance, cursor, raw)
        assert [r.partition_key for r in requests if r.partition_key == key] == [key]
        assert key not in [r.partition_key for r in tick("raw_lake_sensor", instance, cursor,
                                                         raw)[0]]


# --- the downstream automation --------------------------------------------------------------------

@pytest.fixture(scope="module")
def day_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("day") / "raw"
    write_traffic(generate(SimConfig(days=1, visitors_per_day=200, start=DAY, seed=5)),
                  open_raw_lake(raw), progress=False)
    return raw


@pytest.fixture(scope="module")
def backfilled_once(tmp_path_factory: pytest.TempPathFactory, day_lake: Path
                    ) -> tuple[Path, Path, str | None]:
    """DAY backfilled into a data folder and a Dagster home (SQLite storage) of their own, and
    the downstream sensor's first tick done (nothing to do: the backfill's daily run came after
    its events): (data folder, Dagster home, cursor). Made once for the tests below, which each
    start from a copy of both (a backfill was most of each test's time)."""
    base = tmp_path_factory.mktemp("backfilled")
    data, home = base / "data", base / "dagster_home"
    shutil.copytree(day_lake, data / "raw")
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        mp.delenv("ANALYTICS_LATE_ARRIVAL_HOURS", raising=False)
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            assert run_backfill(DAY, DAY, instance=instance, log=lambda _: None).success
            requests, cursor = tick("downstream_automation", instance, None)
            assert requests == []
    return data, home, cursor


@pytest.fixture()
def backfilled(tmp_path: Path, backfilled_once: tuple[Path, Path, str | None],
               monkeypatch: pytest.MonkeyPatch):
    """A copy of :func:`backfilled_once`'s data folder and instance, for one test to change:
    (data folder, the instance, the sensor's cursor after its first tick)."""
    data0, home0, cursor = backfilled_once
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(data0, data)
    shutil.copytree(home0, home)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    monkeypatch.delenv("ANALYTICS_LATE_ARRIVAL_HOURS", raising=False)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        # the copy holds the backfill's runs and materialisations, as the original does
        assert len(instance.get_runs()) == 3
        yield data, instance, cursor


def session_days_of(instance: dg.DagsterInstance, key: str) -> list[str]:
    record = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("events"), asset_partitions=[key]), limit=1).records[0]
    return list(record.asset_materialization.metadata[SESSION_DAYS].value)


def dates_in(data: Path, hour: datetime) -> set[date]:
    """The dates of ts of the hour's events, and of every event of their sessions that day."""
    files = str(data / "lake" / "events" / "*" / "*.parquet")
    with duckdb.connect() as con:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT CAST(ts AS DATE) FROM read_parquet($all) WHERE session_id IN "
            "(SELECT session_id FROM read_parquet($all) WHERE raw_hour = $h)",
            {"all": files, "h": hour.replace(tzinfo=None)}).fetchall()}


def test_an_hour_of_one_days_events_refreshes_that_day_only(
        backfilled, monkeypatch: pytest.MonkeyPatch) -> None:
    data, instance, cursor = backfilled
    hour = datetime(2026, 3, 9, 12, tzinfo=UTC)
    key = partition_key(hour)
    assert dates_in(data, hour) == {DAY}  # computed from the files, not by the pipeline
    # several days' windows hold the hour (the day before reads up to 24 h after its end):
    # every one of them was refreshed by "any upstream partition updated"
    assert "2026-03-08" in window_days(key, 24) and len(window_days(key, 24)) > 1
    assert session_days_of(instance, key) == ["2026-03-09"]
    # the hour runs again (a new object): one day's run, and nothing else this tick
    execute(instance, dg.RunRequest(partition_key=key))
    requests, cursor = tick("downstream_automation", instance, cursor)
    assert [(r.job_name, r.partition_key) for r in requests] == [("daily_job", "2026-03-09")]
    # while it is queued, or an events run of its window is: no second request
    queued = add_run(instance, "daily_job", "2026-03-09", dg.DagsterRunStatus.QUEUED)
    assert tick("downstream_automation", instance, cursor)[0] == []
    finish(instance, queued)
    started = add_run(instance, "events_job", partition_key(hour + timedelta(hours=3)),
                      dg.DagsterRunStatus.STARTED)
    assert tick("downstream_automation", instance, cursor)[0] == []
    finish(instance, started)
    # the day's run done, the all-history marts follow, but not within the hour of their last
    # run (the backfill's)
    execute(instance, requests[0])
    assert tick("downstream_automation", instance, cursor)[0] == []
    monkeypatch.setenv("ANALYTICS_HISTORY_INTERVAL_MINUTES", "0.01")
    time.sleep(1)
    requests, cursor = tick("downstream_automation", instance, cursor)
    assert [r.job_name for r in requests] == ["history_job"]
    # once: their run is then the latest
    execute(instance, requests[0])
    assert tick("downstream_automation", instance, cursor)[0] == []


def test_late_objects_refresh_the_days_of_their_sessions(backfilled) -> None:
    data, instance, cursor = backfilled
    raw = data / "raw"
    # a session that started on DAY at 23:50 goes on after midnight, in the next day's first
    # hour; and an event of DAY arrives two days late
    session = str(uuid.uuid4())
    evening = datetime(2026, 3, 9, 23, 50, tzinfo=UTC)
    midnight = datetime(2026, 3, 10, 0, 5, tzinfo=UTC)
    drop(raw, evening, session=session)
    drop(raw, midnight, session=session)
    late_at = datetime(2026, 3, 11, 5, 30, tzinfo=UTC)
    drop(raw, late_at, event_ts=datetime(2026, 3, 9, 15, 0, tzinfo=UTC))
    for at in (evening, midnight, late_at):
        execute(instance, dg.RunRequest(partition_key=partition_key(floor_hour(at))))
    # the midnight hour changes the session of DAY (and is read by the next day's window)
    assert session_days_of(instance, partition_key(floor_hour(midnight))) == [
        "2026-03-09", "2026-03-10"]
    # the late event: its own day, which reads it as a late event; not the days of its hour
    assert session_days_of(instance, partition_key(floor_hour(late_at))) == ["2026-03-09"]
    requests, cursor = tick("downstream_automation", instance, cursor)
    assert sorted(r.partition_key for r in requests) == ["2026-03-09", "2026-03-10"]
    for r in requests:
        execute(instance, r)
    with duckdb.connect() as con:
        sessions = con.execute(
            "SELECT session_date, events FROM read_parquet($f) WHERE session_id = $s",
            {"f": str(data / "lake" / "sessions" / "*" / "*.parquet"), "s": session}).fetchall()
        late = con.execute("SELECT count(*) FROM read_parquet($f) WHERE raw_hour = $h", {
            "f": str(data / "lake" / "session_events" / "date=2026-03-09" / "*.parquet"),
            "h": floor_hour(late_at).replace(tzinfo=None)}).fetchall()[0][0]
    assert sessions == [(DAY, 6)]  # one session of DAY, with both objects' events
    assert late == 3


def test_old_runs_are_deleted_but_the_latest_materialisations(backfilled) -> None:
    _, instance, _ = backfilled
    key = partition_key(datetime(2026, 3, 9, 12, tzinfo=UTC))
    first = execute(instance, dg.RunRequest(partition_key=key)).run_id
    second = execute(instance, dg.RunRequest(partition_key=key)).run_id
    before = {r.run_id for r in instance.get_runs()}
    # nothing is old enough yet
    assert delete_old_runs(instance, 1)[:2] == (0, 0)
    deleted, kept, _ = delete_old_runs(instance, 1, now=datetime.now(UTC).timestamp() + 2 * 86400)
    after = {r.run_id for r in instance.get_runs()}
    # the first run of the hour is superseded by the second; the backfill's three runs hold the
    # latest materialisation of the other partitions
    assert first not in after and second in after
    assert deleted == len(before) - len(after) == 1 and kept == len(after) == 4
    assert session_days_of(instance, key) == ["2026-03-09"]


# --- the CloudWatch metric of successful runs ----------------------------------------------------

def test_a_successful_run_puts_one_data_point(moto_endpoint: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    namespace = f"test-{uuid.uuid4().hex[:8]}/pipeline"
    sensor = definitions().resolve_sensor_def("run_succeeded_metric")
    with dg.instance_for_test() as instance:
        # a real run (the history marts over an empty lake) and its RUN_SUCCESS event
        run_id = definitions().resolve_job_def("history_job").execute_in_process(
            instance=instance).run_id
        run = instance.get_run_by_id(run_id)
        success = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.RUN_SUCCESS).records[0].event_log_entry

        def evaluate() -> None:
            ctx = dg.build_run_status_sensor_context(
                sensor_name="run_succeeded_metric", dagster_instance=instance, dagster_run=run,
                dagster_event=success.dagster_event)
            sensor(ctx)

        evaluate()  # not configured: nothing is sent
        cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_endpoint)
        assert cloudwatch.list_metrics(Namespace=namespace)["Metrics"] == []
        monkeypatch.setenv("ANALYTICS_METRIC_NAMESPACE", namespace)
        evaluate()
    metrics = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["RunSucceeded"]
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="RunSucceeded", Statistics=["Sum"], Period=3600,
        StartTime=datetime.now(UTC) - timedelta(hours=1), EndTime=datetime.now(UTC)
        + timedelta(minutes=5))["Datapoints"]
    assert sum(d["Sum"] for d in stats) == 1.0


# --- the days an hour changes: late, wrong clocks, erasures (review of issue 21) ---------------

def run_hour(instance: dg.DagsterInstance, hour: datetime) -> None:
    execute(instance, dg.RunRequest(partition_key=partition_key(floor_hour(hour))))


def test_the_days_an_hour_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked against CONTRACT §4 by hand: the days whose sessions a run of an hour changes.

    - an event of 23:50 on the day before that arrives three days late, of a session whose
      other events are of DAY: DAY leaves the session to the day before (its `earlier` check),
      so DAY changes. Before: only the days that count the event (the day before), and DAY
      kept a second row of the session;
    - a record whose device clock is a year behind (no sent_ts to correct it): the days around
      its date and its session's own day, not the 366 between them (before: every one);
    - an hour whose only object was erased: the day of the events it held. Before: none, the
      hour having no events left, and the erased visit stayed in the sessions."""
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    monkeypatch.delenv("ANALYTICS_LATE_ARRIVAL_HOURS", raising=False)  # 24
    raw = tmp_path / "raw"
    midnight = datetime(2026, 3, 9, tzinfo=UTC)
    session, clock = str(uuid.uuid4()), str(uuid.uuid4())
    on_time = midnight + timedelta(minutes=10)
    late_at = midnight + timedelta(days=3, hours=10)
    drop(raw, on_time, session=session)
    drop(raw, late_at, session=session, event_ts=midnight - timedelta(minutes=10))
    wrong_at = midnight + timedelta(days=3, hours=12, minutes=5)
    drop(raw, wrong_at, session=clock)
    drop(raw, wrong_at + timedelta(minutes=1), session=clock,
         event_ts=datetime(2025, 3, 12, 12, tzinfo=UTC))
    erased_at = midnight + timedelta(hours=14, minutes=5)
    drop(raw, erased_at)
    with dg.instance_for_test() as instance:
        for at in (on_time, late_at, wrong_at, erased_at):
            run_hour(instance, at)
        assert session_days_of(instance, partition_key(floor_hour(late_at))) == [
            "2026-03-07", "2026-03-08", "2026-03-09"]
        # the days before are refreshed blind: their own events are older than the hours the
        # run reads (2026-03-07 only reads the event in its `earlier` check)
        assert session_days_of(instance, partition_key(floor_hour(wrong_at))) == [
            "2025-03-11", "2025-03-12", "2025-03-13", "2026-03-12"]
        assert session_days_of(instance, partition_key(floor_hour(erased_at))) == ["2026-03-09"]
        for f in (raw / "year=2026" / "month=03" / "day=09" / "hour=14").iterdir():
            f.unlink()
        run_hour(instance, erased_at)
        assert not (tmp_path / "lake" / "events" / "hour=2026-03-09T14" / "part.parquet").exists()
        assert session_days_of(instance, partition_key(floor_hour(erased_at))) == ["2026-03-09"]
        # and a run of an hour that had no events and has none asks for no day
        run_hour(instance, erased_at)
        assert session_days_of(instance, partition_key(floor_hour(erased_at))) == []


def test_older_and_emptied_hours_are_run(recent: tuple[Path, datetime]) -> None:
    """The raw-lake sensor finds objects in hour folders older than its three recent ones (a
    spool flushed after an outage, ingest/spool.py, goes to the folder of its oldest record),
    on its first tick and then every SWEEP_SECONDS; and asks for a run of an hour whose objects
    were all removed, so its events go. Before: neither, ever."""
    from analytics_platform.defs.automation import sensors

    raw, now = recent
    old = floor_hour(now) - timedelta(hours=30)
    drop(raw, old + timedelta(minutes=7))
    with dg.instance_for_test() as instance:
        requests, cursor = tick("raw_lake_sensor", instance, None, raw)
        keys = sorted(r.partition_key for r in requests)
        assert partition_key(old) in keys and len(keys) == 3
        for r in requests:
            execute(instance, r)
        # a spool flush between two sweeps: found by the next one, not before
        older = floor_hour(now) - timedelta(hours=50)
        drop(raw, older + timedelta(minutes=3))
        assert tick("raw_lake_sensor", instance, cursor, raw)[0] == []
        state = json.loads(cursor)
        state[sensors.SWEPT_AT] -= sensors.SWEEP_SECONDS
        requests, cursor = tick("raw_lake_sensor", instance, json.dumps(state), raw)
        assert [r.partition_key for r in requests] == [partition_key(older)]
        execute(instance, requests[0])
        # every object of a processed hour removed: one run of it, once
        h1 = floor_hour(now) - timedelta(hours=1)
        for f in (raw / h1.strftime("year=%Y/month=%m/day=%d/hour=%H")).iterdir():
            f.unlink()
        requests, cursor = tick("raw_lake_sensor", instance, cursor, raw)
        assert [r.partition_key for r in requests] == [partition_key(h1)]
        execute(instance, requests[0])
        assert tick("raw_lake_sensor", instance, cursor, raw)[0] == []
        assert not (raw.parent / "lake" / "events" / f"hour={h1:%Y-%m-%dT%H}" / "part.parquet"
                    ).exists()


# --- runs from the asset graph, canceled runs, retention (review of the operations side) -------

def schedule_at(instance: dg.DagsterInstance, hour: datetime) -> dg.RunRequest | dg.SkipReason:
    """The hourly schedule's tick for ``hour`` (at :10 of the hour after)."""
    schedule = definitions().resolve_schedule_def("hourly_events_schedule")
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=hour + timedelta(
            hours=1, minutes=10)) as ctx:
        return schedule(ctx)


def test_an_asset_run_in_flight_holds_its_hours(recent: tuple[Path, datetime]) -> None:
    """A run started from the asset graph (the UI's Materialize or asset backfill, `dagster
    asset materialize`: job __ASSET_JOB, one run over a range) is in flight as an events_job
    run is. Before: only events_job runs counted, and the sensor and the schedule started a
    second writer of the same hours."""
    raw, now = recent
    hour = floor_hour(now) - timedelta(hours=1)
    first, key = partition_key(hour - timedelta(hours=2)), partition_key(hour)
    with dg.instance_for_test() as instance:
        backfill = add_run(instance, "__ASSET_JOB", None, dg.DagsterRunStatus.QUEUED,
                           tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: key},
                           assets={"events", "quarantine"})
        requests, cursor = tick("raw_lake_sensor", instance, None, raw)
        assert requests == []  # both hours with objects are the asset run's
        assert isinstance(schedule_at(instance, hour), dg.SkipReason)
        # once it is gone (it ended without materialising), they are run
        finish(instance, backfill)
        requests, cursor = tick("raw_lake_sensor", instance, cursor, raw)
        assert sorted(r.partition_key for r in requests) == [
            partition_key(hour - timedelta(hours=1)), key]
        assert schedule_at(instance, hour).partition_key == key


def test_the_days_wait_for_asset_runs_of_their_window(backfilled) -> None:
    """An events hour of the day's window, or the day itself, in an asset run in flight: the
    downstream automation waits for it, as for events_job and daily_job runs. Before: it asked
    for the day at once."""
    _, instance, cursor = backfilled
    hour = datetime(2026, 3, 9, 12, tzinfo=UTC)
    execute(instance, dg.RunRequest(partition_key=partition_key(hour)))
    events = add_run(instance, "__ASSET_JOB", None, dg.DagsterRunStatus.QUEUED, tags={
        PARTITION_RANGE_START_TAG: partition_key(hour - timedelta(hours=2)),
        PARTITION_RANGE_END_TAG: partition_key(hour - timedelta(hours=1))},
        assets={"events", "quarantine"})
    assert tick("downstream_automation", instance, cursor)[0] == []
    finish(instance, events)
    mart = add_run(instance, "__ASSET_JOB", "2026-03-09", dg.DagsterRunStatus.STARTED,
                   assets={"kpis_daily"})
    assert tick("downstream_automation", instance, cursor)[0] == []
    finish(instance, mart)
    requests, _ = tick("downstream_automation", instance, cursor)
    assert [(r.job_name, r.partition_key) for r in requests] == [("daily_job", "2026-03-09")]


def test_a_canceled_days_run_is_asked_for_again(backfilled) -> None:
    """Its run canceled (by hand, in the queue), the day is still to refresh: asked for again,
    under a new run key (the daemon launches a run key once), once per canceled run. Before:
    the canceled run counted as done and the day was dropped."""
    _, instance, cursor = backfilled
    execute(instance, dg.RunRequest(partition_key=partition_key(datetime(2026, 3, 9, 12,
                                                                         tzinfo=UTC))))
    requests, cursor = tick("downstream_automation", instance, cursor)
    assert [r.partition_key for r in requests] == ["2026-03-09"]
    add_run(instance, "daily_job", None, dg.DagsterRunStatus.CANCELED,
            tags={"dagster/partition": "2026-03-09", "dagster/run_key": requests[0].run_key})
    again, cursor = tick("downstream_automation", instance, cursor)
    assert [r.partition_key for r in again] == ["2026-03-09"]
    assert again[0].run_key != requests[0].run_key
    # the same request on the next tick, until the daemon has launched it: no new key
    assert [r.run_key for r in tick("downstream_automation", instance, cursor)[0]] == [
        again[0].run_key]
    execute(instance, again[0])
    assert tick("downstream_automation", instance, cursor)[0] == []


def test_a_canceled_hours_run_is_asked_for_again(recent: tuple[Path, datetime]) -> None:
    """The raw-lake sensor likewise: the hour whose run was canceled runs again, under a new
    run key, once per canceled run. Before: the cursor had it as asked for, and it was not."""
    raw, now = recent
    key = partition_key(floor_hour(now) - timedelta(hours=1))
    with dg.instance_for_test() as instance:
        requests, cursor = tick("raw_lake_sensor", instance, None, raw)
        asked = next(r for r in requests if r.partition_key == key)
        add_run(instance, "events_job", None, dg.DagsterRunStatus.CANCELED,
                tags={"dagster/partition": key, "dagster/run_key": asked.run_key})
        again, cursor = tick("raw_lake_sensor", instance, cursor, raw)
        assert [r.partition_key for r in again] == [key] and again[0].run_key != asked.run_key
        assert [r.run_key for r in tick("raw_lake_sensor", instance, cursor, raw)[0]] == [
            again[0].run_key]
        execute(instance, again[0])
        assert tick("raw_lake_sensor", instance, cursor, raw)[0] == []


def test_a_kept_run_is_deleted_once_superseded(backfilled, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """The retention sensor keeps a run that holds the latest materialisation of a partition;
    once a later run supersedes it, a later pass deletes it. Before: the cursor had moved past
    it and it was kept for ever."""
    _, instance, _ = backfilled
    key = partition_key(datetime(2026, 3, 9, 12, tzinfo=UTC))
    monkeypatch.setenv("ANALYTICS_RUN_RETENTION_DAYS", str(1 / 86400))  # a second
    sensor = definitions().resolve_sensor_def("run_retention")

    def retention(cursor: str | None) -> str | None:
        with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
            sensor(ctx)
            return ctx.cursor

    first = execute(instance, dg.RunRequest(partition_key=key)).run_id
    time.sleep(1.1)
    cursor = retention(None)
    assert first in {r.run_id for r in instance.get_runs()}  # the hour's latest
    second = execute(instance, dg.RunRequest(partition_key=key)).run_id
    time.sleep(1.1)
    # a day later (the kept runs are looked at again once a day)
    monkeypatch.setattr(housekeeping, "RESCAN_SECONDS", 0, raising=False)
    cursor = retention(cursor)
    left = {r.run_id for r in instance.get_runs()}
    assert first not in left and second in left
    assert session_days_of(instance, key) == ["2026-03-09"]


def step_error(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.event_specific_data.error
    texts = []
    while error is not None:
        texts.append(error.message)
        error = error.cause
    return " ".join(texts)


def test_a_day_never_computed_fails_and_names_its_hours(backfilled) -> None:
    """A day none of whose events hours was ever materialised (nor its sessions, for a mart)
    fails, naming what is missing, and writes nothing: "never computed" is not "no traffic".
    Before: an empty sessions partition and a kpis_daily of 0 rows, every check passed."""
    data, instance, _ = backfilled
    day = "2026-03-12"  # the backfill's events end at 2026-03-11 00:00
    daily = definitions().resolve_job_def("daily_job")
    result = daily.execute_in_process(instance=instance, partition_key=day,
                                      raise_on_error=False)
    assert not result.success
    error = step_error(result)
    assert "2026-03-12-00:00" in error and "2026-03-12-23:00" in error, error
    assert not (data / "lake" / "sessions" / f"date={day}").exists()
    kpis = definitions().resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("kpis_daily")})
    result = kpis.execute_in_process(instance=instance, partition_key=day, raise_on_error=False)
    assert not result.success
    assert f"sessions of {day}" in step_error(result)


def test_a_day_with_hours_missing_says_which(backfilled) -> None:
    """A day with some of its window's hours never materialised is built from the others and
    its `sessions_window_materialised` check fails (error), naming them; a day whose window is
    complete passes it. Before: no such check."""
    _, instance, _ = backfilled
    daily = definitions().resolve_job_def("daily_job")
    checks = {}
    for day in ("2026-03-09", "2026-03-11"):
        result = daily.execute_in_process(instance=instance, partition_key=day)
        checks[day] = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["2026-03-09"]["sessions_window_materialised"].passed
    missing = checks["2026-03-11"]["sessions_window_materialised"]
    assert not missing.passed and missing.severity == dg.AssetCheckSeverity.ERROR
    text = missing.metadata["missing_hours"].value
    assert "2026-03-11-01:00" in text and "2026-03-11-23:00" in text, text
    assert "2026-03-11-00:00 " not in text  # the backfill's last hour


def test_a_new_dagster_home_over_the_lake_lets_its_files_decide(backfilled) -> None:
    """A Dagster home made anew over an existing lake (no record of any hour): a day whose
    hours' files are there is no day never computed, and its window check passes. Found in the
    diff's review: the check named its 24 hours "never materialised"."""
    daily = definitions().resolve_job_def("daily_job")
    with dg.DagsterInstance.ephemeral() as fresh:
        result = daily.execute_in_process(instance=fresh, partition_key="2026-03-09")
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}[
        "sessions_window_materialised"]
    assert check.passed, check.metadata["missing_hours"].value


def test_today_runs_while_its_current_hour_is_not_materialised(recent: tuple[Path, datetime]
                                                               ) -> None:
    """The automation's own path: the hours with objects run, then their days, while the
    current hour is not materialised: every run succeeds."""
    raw, now = recent
    with dg.instance_for_test() as instance:
        requests, _ = tick("raw_lake_sensor", instance, None, raw)
        for r in requests:
            execute(instance, r)
        assert partition_key(floor_hour(now)) not in instance.get_materialized_partitions(
            dg.AssetKey("events"))
        days, _ = tick("downstream_automation", instance, None)
        assert days and {r.job_name for r in days} == {"daily_job"}
        for r in days:
            execute(instance, r)
