"""The SQL playground refuses or stops every hostile query, with a clear message, and changes
nothing on disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from analytics_platform.dashboard.sandbox import PlaygroundError, run_query
from analytics_platform.storage import Lake, publish_warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("pg") / "data")
    con = duckdb.connect()
    lake.write(con, "SELECT DATE '2026-03-02' + i::INTEGER AS date, 100 + i AS sessions, "
               "10 AS conversions FROM range(5) t(i)", "kpis_daily", "date=all")
    lake.write(con, "SELECT 's' || i AS session_id, 'google' AS source FROM range(3) t(i)",
               "sessions", "date=2026-03-02")
    publish_warehouse(lake)
    (lake.data_dir / "secret.txt").write_text("do not read")
    return lake


def snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(lake: Lake, sql: str, **kw):
    return run_query(sql, lake.warehouse_path, lake.root, **kw)


def test_ordinary_queries_work(warehouse: Lake) -> None:
    r = run(warehouse, "with k as (select * from kpis_daily) "
                       "select date, sessions from k where sessions > 101 order by date")
    assert r.columns == ["date", "sessions"] and len(r.rows) == 3 and not r.truncated
    r = run(warehouse, "select s.source, count(*) n from sessions s, range(2) group by 1")
    assert r.rows == [("google", 6)]


def test_the_row_limit_cuts_and_says_so(warehouse: Lake) -> None:
    r = run(warehouse, "select * from kpis_daily", max_rows=2)
    assert len(r.rows) == 2 and r.truncated


HOSTILE = [
    ("select * from read_csv('/etc/passwd')", "table function read_csv"),
    ("select * from read_text('/etc/hostname')", "table function read_text"),
    ("select * from '/etc/passwd'", "Unknown table '/etc/passwd'"),
    ("select * from 'secret.txt'", "Unknown table"),
    ("select * from read_parquet('{lake}/../warehouse.duckdb')", "table function read_parquet"),
    ("select * from glob('/*')", "table function glob"),
    ("select getenv('HOME')", "function getenv"),
    ("copy (select 1) to '{lake}/x.csv'", "COPY is refused"),
    ("copy kpis_daily to '/tmp/out.parquet'", "COPY is refused"),
    ("attach '/tmp/other.db' as o", "ATTACH is refused"),
    ("install httpfs", "is refused"),
    ("load httpfs", "is refused"),
    ("pragma database_list", "is refused"),
    ("set enable_external_access = true", "is refused"),
    ("create table t as select 1", "CREATE is refused"),
    ("insert into kpis_daily values (current_date, 1, 1)", "INSERT is refused"),
    ("drop view kpis_daily", "DROP is refused"),
    ("export database '/tmp/x'", "is refused"),
    ("select 1; copy (select 1) to '/tmp/y.csv'", "one statement at a time"),
    ("select 1; drop view kpis_daily", "one statement at a time"),
    ("select * from sqlite_scan('/tmp/x.db', 't')", "table function sqlite_scan"),
    ("select * from other_db.main.kpis_daily", "Only the warehouse's own tables"),
    ("select * from duckdb_settings()", "table function duckdb_settings"),
    ("", "Write a query first"),
    ("selec 1", "SQL error"),
]


@pytest.mark.parametrize(("sql", "message"), HOSTILE)
def test_hostile_queries_are_refused_and_nothing_changes(warehouse: Lake, sql: str,
                                                         message: str) -> None:
    before = snapshot(warehouse.data_dir)
    with pytest.raises(PlaygroundError, match=message):
        run(warehouse, sql.format(lake=warehouse.root))
    assert snapshot(warehouse.data_dir) == before
    assert not Path("/tmp/out.parquet").exists() and not Path("/tmp/y.csv").exists()


def test_a_long_query_is_stopped(warehouse: Lake) -> None:
    with pytest.raises(PlaygroundError, match=r"Stopped after 0\.5 s"):
        run(warehouse, "select count(*) from range(10000000000) a, kpis_daily", timeout_s=0.5)


def test_an_empty_warehouse_says_how_to_fill_it(tmp_path: Path) -> None:
    with pytest.raises(PlaygroundError, match="analytics-platform demo"):
        run_query("select 1", tmp_path / "warehouse.duckdb", tmp_path / "lake")
