"""What each partition of the `events` and `quarantine` assets records of a run over several
hours: the hour's own figures, and the run's summary and the tables' columns on its last hour
only (defs/events/assets.py's hour_figures and run_metadata)."""

from __future__ import annotations

import gzip
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform.lake import open_raw_lake, partition_key
from analytics_platform_tests.test_fast_paths import _raw_hours

HOURS = 4


def test_each_hour_records_its_own_figures_and_the_last_the_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.definitions import defs

    raw = open_raw_lake(tmp_path / "raw")
    hours = _raw_hours(raw, hours=HOURS, per_hour=120)
    keys = [partition_key(h) for h in hours]
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs().resolve_job_def("events_job").execute_in_process(
            instance=instance, tags={"dagster/asset_partition_range_start": keys[0],
                                     "dagster/asset_partition_range_end": keys[-1]})
    assert result.success
    meta: dict[tuple[str, str], dict] = {
        (e.asset_key.to_user_string(), e.partition): {
            k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()}
    assert sorted(meta) == sorted((a, k) for a in ("events", "quarantine") for k in keys)

    con = duckdb.connect()
    for hour, key in zip(hours, keys, strict=True):
        lines = sum(gzip.decompress(raw.read(o.key)).count(b"\n") for o in raw.list_hour(hour))
        folder = tmp_path / "lake" / "events" / f"hour={hour:%Y-%m-%dT%H}"
        written = con.execute("SELECT count(*) FROM read_parquet($f)",
                              {"f": str(folder / "part.parquet")}).fetchall()[0][0]
        quarantined = con.execute(
            "SELECT count(*) FROM read_parquet($f)",
            {"f": str(tmp_path / "lake" / "quarantine" / folder.name / "part.parquet")},
        ).fetchall()[0][0]
        events, quarantine = meta["events", key], meta["quarantine", key]
        # the hour's own figures, counted here from its raw objects and its files
        assert events["records_in"] == lines
        assert events["events_out"] == events["dagster/row_count"] == written
        assert events["quarantined"] == quarantine["quarantined"] == quarantined > 0
        assert quarantine["dagster/row_count"] == quarantined
        assert events["raw_objects"] == 2
        # the run's summary and the columns, on the last hour only
        last = key == keys[-1]
        assert ("run_records_in" in events) is last
        assert ("dagster/column_schema" in events) is last
        assert ("dagster/column_schema" in quarantine) is last
    summary = meta["events", keys[-1]]
    assert summary["run_hours"] == HOURS
    for name in ("records_in", "events_out", "quarantined", "bot_events", "late_events",
                 "duplicates_removed"):
        assert summary[f"run_{name}"] == sum(meta["events", k][name] for k in keys), name
    columns = {c.name for c in summary["dagster/column_schema"].columns}
    assert {"event_id", "ts", "raw_key", "session_id"} <= columns


def test_each_day_of_a_backfill_records_its_own_sessions_and_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for the daily assets (sessions, session_events, a daily mart): each day its own
    counts, the run's summary and columns on the last day."""
    from datetime import date

    from analytics_platform.backfill import run_backfill
    from analytics_platform.simulate import SimConfig, generate, write_traffic

    first = date(2026, 3, 2)
    write_traffic(generate(SimConfig(days=2, visitors_per_day=60, start=first, seed=3)),
                  open_raw_lake(tmp_path / "raw"), progress=False)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "4")
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    days = ["2026-03-02", "2026-03-03"]
    con = duckdb.connect()
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_backfill(first, date(2026, 3, 3), instance=instance,
                            log=lambda _: None).success
        for asset, count in (("sessions", "count(*)"), ("session_events", "count(*)"),
                             ("kpis_daily", "count(*)")):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=10).records
            meta = {r.asset_materialization.partition: r.asset_materialization.metadata
                    for r in records}
            assert sorted(meta) == days, asset
            for day in days:
                n = con.execute(f"SELECT {count} FROM read_parquet($f)", {
                    "f": str(tmp_path / "lake" / asset / f"date={day}" / "part.parquet")
                }).fetchall()[0][0]
                assert meta[day]["dagster/row_count"].value == n > 0, (asset, day)
                assert ("run_days" in meta[day]) is (day == days[-1]), (asset, day)
                assert ("dagster/column_schema" in meta[day]) is (day == days[-1]), (asset, day)
            assert meta[days[-1]]["run_days"].value == 2
        sessions = {r.asset_materialization.partition: r.asset_materialization.metadata
                    for r in instance.fetch_materializations(
                        dg.AssetRecordsFilter(asset_key=dg.AssetKey("sessions")),
                        limit=10).records}
        assert sessions[days[-1]]["run_sessions"].value == sum(
            sessions[d]["sessions"].value for d in days)
