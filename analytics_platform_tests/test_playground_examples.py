"""Every shipped playground example runs in the sandbox, on a warehouse the real pipeline built
from simulated traffic, and returns what the same query returns straight from the warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform.backfill import run_backfill
from analytics_platform.dashboard.examples import EXAMPLES
from analytics_platform.dashboard.sandbox import run_query
from analytics_platform.lake import open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of clean simulated traffic through the pipeline: nothing is quarantined."""
    data = tmp_path_factory.mktemp("examples") / "data"
    write_traffic(generate(SimConfig(days=2, visitors_per_day=300, start=DAY1, seed=5)),
                  open_raw_lake(data / "raw"), progress=False)
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        mp.delenv("ANALYTICS_LAKE_URL", raising=False)
        assert run_backfill(DAY1, DAY2, instance=instance, log=lambda _: None).success
    return data


def direct(data: Path, sql: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        cur = con.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_example_runs_in_the_sandbox(data: Path, name: str) -> None:
    result = run_query(EXAMPLES[name], data / "warehouse.duckdb", data / "lake", timeout_s=60)
    columns, rows = direct(data, EXAMPLES[name])
    assert result.columns == columns and not result.truncated
    assert sorted(map(repr, result.rows)) == sorted(map(repr, rows))
    if name != "Quarantined records by reason":
        assert result.rows, name


def test_the_quarantine_example_works_when_nothing_is_quarantined(data: Path) -> None:
    assert direct(data, "SELECT count(*) FROM quarantine")[1] == [(0,)]
    result = run_query(EXAMPLES["Quarantined records by reason"], data / "warehouse.duckdb",
                       data / "lake")
    assert result.columns == ["reason", "records"] and result.rows == []
