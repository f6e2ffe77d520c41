"""The batched SQLite event log (analytics_platform/event_log.py) against Dagster's own.

The same ranged runs on two real instances, Dagster's default SQLite storage storing records one
by one and ours with ``DAGSTER_EVENT_BATCH_SIZE`` on, must leave the same records, partitions,
latest materialisations, asset entries and tag index; a batch that a real SQLite fault stops
must leave what Dagster's own storage leaves under the same fault.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
import yaml

from analytics_platform import event_log, settings
from analytics_platform.event_log import BatchedSqliteEventLogStorage
from analytics_platform.serve import ROOT
from analytics_platform_tests.test_production import postgres  # noqa: F401 (a fixture)

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")
KEYS = HOURLY.get_partition_keys()[:30]
ALPHA, BETA = dg.AssetKey("alpha"), dg.AssetKey("beta")
FAULT_PARTITION = KEYS[7]


@dg.multi_asset(specs=[dg.AssetSpec("alpha", partitions_def=HOURLY),
                       dg.AssetSpec("beta", partitions_def=HOURLY)],
                backfill_policy=dg.BackfillPolicy.single_run())
def pair(context):  # unannotated: Dagster would read this module's string annotation
    n = len(context.partition_keys)
    yield dg.MaterializeResult(asset_key="alpha", metadata={"hours": n, "table": "alpha"},
                               tags={"analytics/stage": "events"})
    yield dg.MaterializeResult(asset_key="beta", metadata={"hours": n},
                               data_version=dg.DataVersion(f"v{n}"))


JOB = dg.Definitions(assets=[pair], jobs=[dg.define_asset_job("j", [pair])]).resolve_job_def("j")


def _instance(monkeypatch: pytest.MonkeyPatch, home: Path, batched: bool) -> dg.DagsterInstance:
    home.mkdir()
    config: dict = {"telemetry": {"enabled": False}}
    if batched:
        config["event_log_storage"] = dict(settings.SQLITE_EVENT_LOG_STORAGE)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "16" if batched else "0")
    instance = dg.DagsterInstance.from_config(str(home))
    assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage) == batched
    return instance


def _run(instance: dg.DagsterInstance, first: str, last: str) -> dg.ExecuteInProcessResult:
    return JOB.execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags={"dagster/asset_partition_range_start": first,
              "dagster/asset_partition_range_end": last})


def _state(instance: dg.DagsterInstance, home: Path, runs: list[str]) -> dict:
    """What the instance holds of the two assets, with ids and times replaced by what they
    point at (the run by its order, an event by its asset and partition)."""
    run_no = {r: i for i, r in enumerate(runs)}
    index = sqlite3.connect(home / "history" / "runs" / "index.db")
    state: dict = {}
    # a data version Dagster derives (alpha's) is a hash of the run's id: named by the order
    # in which the runs' partitions first show it
    labels: dict[str, str] = {}
    everything = [r for key in (ALPHA, BETA)
                  for r in instance.fetch_materializations(key, limit=1000).records]
    for r in sorted(everything,
                    key=lambda r: (run_no[r.run_id], r.partition_key, str(r.asset_key))):
        for v in r.asset_materialization.tags.values():
            labels.setdefault(v, f"value {len(labels)}")

    def norm(value: str) -> str:
        return labels.get(value, value)

    for key in (ALPHA, BETA):
        records = instance.fetch_materializations(key, limit=1000).records
        by_id = {r.storage_id: r for r in records}
        # the index shard's rows are the records' ids, each with its own partition and time
        rows = index.execute("SELECT id, partition, timestamp FROM event_logs WHERE asset_key = ?"
                             " AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                             (key.to_string(),)).fetchall()
        assert sorted(i for i, _, _ in rows) == sorted(by_id)
        for i, partition, _ in rows:
            assert by_id[i].partition_key == partition
        state[key, "records"] = sorted(
            (r.partition_key, run_no[r.run_id], r.event_log_entry.step_key,
             repr(sorted(r.asset_materialization.metadata.items())),
             repr(sorted((k, norm(v)) for k, v in r.asset_materialization.tags.items())))
            for r in records)
        state[key, "partitions"] = instance.get_materialized_partitions(key)
        latest = instance.event_log_storage.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION)
        state[key, "latest"] = {p: (by_id[i].partition_key, run_no[by_id[i].run_id])
                                for p, i in latest.items()}
        entry = instance.get_asset_records([key])[0].asset_entry
        last = entry.last_materialization_record
        if last is None:
            assert not by_id
            state[key, "entry"] = (None, None, run_no[entry.last_run_id])
        else:
            assert last.storage_id == max(by_id)
            state[key, "entry"] = (last.partition_key, run_no[last.run_id],
                                   run_no[entry.last_run_id])
        # the tag index: each row points at the event it was written for (its time is that
        # event's), and holds that event's value
        tags = index.execute(
            "SELECT t.key, t.value, e.partition, t.event_timestamp = e.timestamp, e.id"
            " FROM asset_event_tags t JOIN event_logs e ON e.id = t.event_id"
            " WHERE t.asset_key = ?", (key.to_string(),)).fetchall()
        for k, v, _, same_time, i in tags:
            assert same_time and by_id[i].asset_materialization.tags[k] == v
        state[key, "tags"] = sorted((k, norm(v), p) for k, v, p, _, i in tags)
    index.close()
    state["run shards"] = [
        sorted(sqlite3.connect(home / "history" / "runs" / f"{r}.db").execute(
            "SELECT asset_key, partition FROM event_logs"
            " WHERE dagster_event_type = 'ASSET_MATERIALIZATION'").fetchall())
        for r in runs]
    return state


def test_batched_records_are_dagsters_own(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """30 hours then 10 of them again: the same state on both storages, in batches of 16 rows
    written 5 rows to a statement on ours."""
    monkeypatch.setattr(event_log, "ROWS_PER_INSERT", 5)
    states = []
    for batched in (False, True):
        home = tmp_path / str(batched)
        with _instance(monkeypatch, home, batched) as instance:
            runs = [_run(instance, KEYS[0], KEYS[-1]), _run(instance, KEYS[10], KEYS[19])]
            assert all(r.success for r in runs)
            states.append(_state(instance, home, [r.run_id for r in runs]))
    default, batched_state = states
    assert batched_state == default
    assert len(default[ALPHA, "records"]) == 40 and len(default[BETA, "tags"]) == 40
    assert default[ALPHA, "latest"][KEYS[12]] == (KEYS[12], 1)
    assert default[ALPHA, "latest"][KEYS[25]] == (KEYS[25], 0)
    assert default[BETA, "entry"] == (KEYS[19], 1, 1)


def test_a_failed_batch_leaves_what_dagster_leaves(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    """The index database refuses one partition's record (a trigger: a real SQLite abort in the
    middle of the batch's transaction). Ours rolls the batch back in both databases and Dagster
    stores its events one by one, as its own storage does: the same records, none twice."""
    states = []
    for batched in (False, True):
        home = tmp_path / str(batched)
        with _instance(monkeypatch, home, batched) as instance:
            with sqlite3.connect(home / "history" / "runs" / "index.db") as db:
                db.execute("CREATE TRIGGER fault BEFORE INSERT ON event_logs"
                           f" WHEN NEW.partition = '{FAULT_PARTITION}' AND NEW.asset_key ="
                           " '[\"alpha\"]' AND NEW.dagster_event_type = 'ASSET_MATERIALIZATION'"
                           " BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
            run = _run(instance, KEYS[0], KEYS[15])
            states.append((run.success, _state(instance, home, [run.run_id])))
            err = capfd.readouterr().err
            assert ("Exception while storing event batch" in err) == batched
            assert "injected fault" in err
    assert states[1] == states[0]
    # Dagster's own: the step stops at the refused record (the partitions before it recorded,
    # the refused one in the run's database only), the run fails
    success, state = states[0]
    assert not success
    assert state[ALPHA, "partitions"] == set(KEYS[:7]) and not state[BETA, "partitions"]
    assert state["run shards"][0] == [('["alpha"]', k) for k in KEYS[:8]]


def test_the_cli_and_serve_install_it_and_keep_the_history(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """A dagster.yaml an earlier CLI wrote is brought up to date and the runs recorded with
    Dagster's own storage are still there; a user's own is left alone; `serve` without
    PostgreSQL installs the storage, with PostgreSQL it keeps Dagster's."""
    from analytics_platform.cli import EARLIER_LOCAL_INSTANCE_YAMLS, _dagster_home
    from analytics_platform.serve import instance_config

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with _instance(monkeypatch, home, batched=False) as instance:
        assert _run(instance, KEYS[0], KEYS[3]).success
    (home / "dagster.yaml").write_text(EARLIER_LOCAL_INSTANCE_YAMLS[-1])
    assert _dagster_home() == str(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        assert instance.get_materialized_partitions(ALPHA) == set(KEYS[:4])
        assert instance.get_asset_records([BETA])[0].asset_entry.last_materialization_record
    own = EARLIER_LOCAL_INSTANCE_YAMLS[-1] + "# mine\n"
    (home / "dagster.yaml").write_text(own)
    _dagster_home()
    assert (home / "dagster.yaml").read_text() == own

    template = ROOT / "deploy" / "dagster.yaml"
    local = instance_config(template, postgres=False)
    assert local["event_log_storage"] == settings.SQLITE_EVENT_LOG_STORAGE
    assert "event_log_storage" not in instance_config(template, postgres=True)
    served = tmp_path / "served"
    served.mkdir()
    (served / "dagster.yaml").write_text(yaml.safe_dump(local))
    monkeypatch.setenv("DAGSTER_HOME", str(served))
    with dg.DagsterInstance.from_config(str(served)) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        assert Path(instance.event_log_storage._base_dir) == served / "history" / "runs"


def test_postgres_takes_the_same_batches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         postgres: dict[str, str]) -> None:  # noqa: F811
    """Production's PostgreSQL, with the batch size the code location sets: dagster-postgres's
    own batch insert leaves every partition's record, its tag row and the asset's entry."""
    for k, v in postgres.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    settings.apply_dagster_defaults()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == str(settings.EVENT_BATCH_SIZE)
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump(
        {"storage": config["storage"], "telemetry": {"enabled": False}}))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert _run(instance, KEYS[0], KEYS[-1]).success
        records = instance.fetch_materializations(BETA, limit=1000).records
        assert sorted(r.partition_key for r in records) == KEYS
        assert instance.get_materialized_partitions(ALPHA) == set(KEYS)
        last = instance.get_asset_records([BETA])[0].asset_entry.last_materialization_record
        assert last is not None and last.storage_id == max(r.storage_id for r in records)
        assert last.partition_key == KEYS[-1]
        tagged = instance.get_event_tags_for_asset(BETA, filter_tags={"dagster/data_version":
                                                                      f"v{len(KEYS)}"})
        assert len(tagged) == len(KEYS)
