"""The SQL playground refuses or stops every hostile query, with a clear message, reveals no path
of the server and changes nothing on disk; ordinary queries (and trailing comments) run."""

from __future__ import annotations

import hashlib
import resource
from datetime import date
from pathlib import Path

import duckdb
import pytest

from analytics_platform.dashboard.sandbox import PlaygroundError, run_query
from analytics_platform.storage import Lake, publish_warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("pg") / "data", remote_url="")
    con = duckdb.connect()
    lake.write(con, "SELECT DATE '2026-03-02' + i::INTEGER AS day, 100 + i AS sessions, "
               "10 AS conversions FROM range(5) t(i)", "kpis_daily", "date=all")
    lake.write(con, "SELECT 's' || i AS session_id, 'google' AS source FROM range(3) t(i)",
               "sessions", "date=2026-03-02")
    publish_warehouse(lake)
    # Files a hostile user would like to read: beside the warehouse, in the lake folder, and in
    # the folder of a table the views read.
    (lake.data_dir / "secret.txt").write_text("do not read")
    (lake.root / "secret.txt").write_text("do not read")
    (lake.root / "sessions" / "planted.csv").write_text("a,b\n1,2\n")
    return lake


def snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(lake: Lake, sql: str, **kw):
    return run_query(sql, lake.warehouse_path, lake.root, **kw)


def test_ordinary_queries_work(warehouse: Lake) -> None:
    r = run(warehouse, "with k as (select * from kpis_daily) "
                       "select day, sessions from k where sessions > 101 order by day")
    assert r.columns == ["day", "sessions"] and not r.truncated
    assert r.rows == [(date(2026, 3, 4), 102), (date(2026, 3, 5), 103), (date(2026, 3, 6), 104)]
    r = run(warehouse, "select s.source, count(*) n from sessions s, range(2) group by 1")
    assert r.rows == [("google", 6)]
    # A sum of integers is a HUGEINT: it reaches the dashboard as an int, not a Decimal.
    assert run(warehouse, "select sum(sessions) from kpis_daily").rows == [(510,)]


@pytest.mark.parametrize("sql", [
    "select count(*) from sessions -- every session",
    "select count(*) from sessions\n-- every session\n",
    "select count(*) from sessions; -- every session",
    "select count(*) /* all */ from sessions /* trailing */",
    "select count(*) from sessions where source <> 'é;' ; -- é",
])
def test_a_query_may_end_in_a_comment(warehouse: Lake, sql: str) -> None:
    assert run(warehouse, sql).rows == [(3,)]


def test_a_cte_may_reuse_a_table_name_for_warehouse_data(warehouse: Lake) -> None:
    r = run(warehouse, "with sessions as (select * from sessions where session_id <> 's0') "
                       "select count(*) from sessions")
    assert r.rows == [(2,)]
    r = run(warehouse, "select (with k as (select 7) select * from k), "
                       "(with k as (select count(*) from kpis_daily) select * from k)")
    assert r.rows == [(7, 5)]


def test_describe_and_summarize_show_a_table(warehouse: Lake) -> None:
    # the files' columns only: the partition folder (date=…) is no column (CONTRACT §6)
    assert [c[0] for c in run(warehouse, "describe sessions").rows] == ["session_id", "source"]
    assert run(warehouse, "summarize kpis_daily").columns[:2] == ["column_name", "column_type"]


def test_the_row_limit_cuts_and_says_so(warehouse: Lake) -> None:
    r = run(warehouse, "select * from kpis_daily", max_rows=2)
    assert len(r.rows) == 2 and r.truncated
    r = run(warehouse, "select * from range(1000000000000)", max_rows=3)
    assert r.rows == [(0,), (1,), (2,)] and r.truncated


# Every way out a hostile user tried: (query, what the refusal says). {lake} is the lake folder,
# {data} the folder holding warehouse.duckdb. The count is the one the close reports.
ESCAPES: list[tuple[str, str]] = [
    # A CTE defined in one scope let the same name through everywhere (the finding).
    ("select * from (with duckdb_databases as (select 1) select 1), duckdb_databases",
     "duckdb_databases"),
    ("select * from (with sqlite_master as (select 1) select 1), sqlite_master",
     "not allowed"),
    ("select sql from (with duckdb_views as (select 1) select 1), duckdb_views", "duckdb_views"),
    ("select * from (with duckdb_settings as (select 1) select 1), duckdb_settings",
     "duckdb_settings"),
    ("select * from (with pragma_database_list as (select 1) select 1), pragma_database_list",
     "duckdb_databases"),
    ("select * from (with \"{lake}/secret.txt\" as (select 1) select 1), '{lake}/secret.txt'",
     "does not exist"),
    ("select * from (with read_text as (select 1) select 1), read_text('{lake}/secret.txt')",
     "Files are off limits"),
    ("select * from (with x as (select 1) select * from x), (select 1) x, duckdb_databases",
     "duckdb_databases"),
    ("with a as (select 1) select * from a union all "
     "select 1 from (with duckdb_secrets as (select 1) select 1), duckdb_secrets()",
     "duckdb_secrets"),
    # A CTE named like a warehouse table, holding something else.
    ("with sessions as (select * from duckdb_settings()) select * from sessions",
     "duckdb_settings"),
    ("with sessions as (select path from duckdb_databases) select * from sessions",
     "duckdb_databases"),
    ("with recursive sessions(p) as (select path from duckdb_databases) select * from sessions",
     "duckdb_databases"),
    # Files, by path or table function, outside the lake and inside it.
    ("select * from read_csv('/etc/passwd')", "Files are off limits"),
    ("select * from read_text('/etc/hostname')", "Files are off limits"),
    ("select * from read_blob('{lake}/secret.txt')", "Files are off limits"),
    ("select * from read_text('{lake}/sessions/planted.csv')", "Files are off limits"),
    ("select * from read_csv('{lake}/sessions/planted.csv')", "Files are off limits"),
    ("select * from '/etc/passwd'", "does not exist"),
    ("select * from 'secret.txt'", "does not exist"),
    ("select * from '{lake}/secret.txt'", "does not exist"),
    ("select * from '{lake}/sessions/planted.csv'", "Files are off limits"),
    ("select * from '{lake}/sessions/*/*.parquet'", "Files are off limits"),
    ("select * from read_parquet('{lake}/sessions/*/*.parquet')", "Files are off limits"),
    ("select * from read_parquet('{data}/warehouse.duckdb')", "Files are off limits"),
    ("select * from read_json('/etc/passwd')", "Files are off limits"),
    ("select * from glob('/*')", "Files are off limits"),
    ("select * from glob('{lake}/**')", "Files are off limits"),
    ("select * from parquet_metadata('{lake}/sessions/*/*.parquet')", "Files are off limits"),
    ("select * from sniff_csv('{lake}/sessions/planted.csv')", "table function sniff_csv"),
    ("select * from read_text(chr(47) || 'etc/passwd')", "not allowed|off limits"),
    ("select * from sqlite_scan('/tmp/x.db', 't')", "not in the catalog"),
    # Functions that tell the server's state.
    ("select getenv('HOME')", "does not exist|not allowed"),
    ("select current_setting('allowed_directories')", "function current_setting"),
    ("select CURRENT_SETTING('temp_directory')", "function current_setting"),
    ("select current_setting('home_directory')", "function current_setting"),
    ("select json_serialize_plan('select current_setting(''allowed_directories'')', "
     "optimize := true)", "function json_serialize_plan"),
    ("select * from json_execute_serialized_sql("
     "json_serialize_sql('select * from duckdb_settings()'))",
     "does not support serialization"),
    ("select * from which_secret('s3://bucket/key', 's3')", "which_secret"),
    ("select write_log('hello')", "function write_log"),
    ("select * from duckdb_secrets()", "duckdb_secrets"),
    ("select * from duckdb_extensions()", "duckdb_extensions"),
    ("select * from duckdb_settings()", "duckdb_settings"),
    ("select * from system.main.duckdb_settings()", "duckdb_settings"),
    ("select * from \"DUCKDB_SETTINGS\"()", "duckdb_settings"),
    ("select * from duckdb_databases()", "duckdb_databases"),
    ("select * from duckdb_views()", "duckdb_views"),
    ("select * from duckdb_temporary_files()", "duckdb_temporary_files"),
    ("select * from duckdb_memory()", "duckdb_memory"),
    ("select * from pragma_database_size()", "pragma_database_size"),
    ("select * from sqlite_master", "not allowed"),
    ("select * from information_schema.tables", "not allowed"),
    ("select * from pg_catalog.pg_settings", "not allowed|does not exist"),
    ("select * from query('select * from duckdb_settings()')", "duckdb_settings"),
    ("select * from query_table('duckdb_databases')", "duckdb_databases"),
    ("select (select path from duckdb_databases() limit 1)", "duckdb_databases"),
    ("select 1 where exists (from sqlite_master)", "not allowed"),
    ("select * from sessions where source in (select path from duckdb_databases)",
     "duckdb_databases"),
    ("summarize select * from duckdb_settings()", "duckdb_settings"),
    ("show databases", "not allowed"),
    ("select * from force_checkpoint()", "force_checkpoint"),
    ("select * from enable_logging()", "enable_logging"),
    # Variables of the worker's Python code (DuckDB's Python replacement scans).
    ("select * from request", "does not exist"),
    ("select * from con", "does not exist"),
    # Statements other than one SELECT.
    ("copy (select 1) to '{lake}/x.csv'", "COPY is refused"),
    ("copy kpis_daily to '/tmp/out.parquet'", "COPY is refused"),
    ("attach '/tmp/other.db' as o", "ATTACH is refused"),
    ("attach '{data}/warehouse.duckdb' as w2", "ATTACH is refused"),
    ("detach warehouse", "DETACH is refused"),
    ("use system", "is refused"),
    ("install httpfs", "is refused"),
    ("load httpfs", "is refused"),
    ("pragma database_list", "is refused"),
    ("call duckdb_settings()", "is refused"),
    ("set enable_external_access = true", "is refused"),
    ("reset lock_configuration", "is refused"),
    ("set variable x = 1", "is refused"),
    ("create table t as select 1", "CREATE is refused"),
    ("create secret (type s3, key_id 'a', secret 'b')", "is refused"),
    ("insert into kpis_daily values (current_date, 1, 1)", "INSERT is refused"),
    ("drop view kpis_daily", "DROP is refused"),
    ("export database '/tmp/x'", "is refused"),
    ("checkpoint", "is refused"),
    ("explain analyze select * from sessions", "EXPLAIN is refused"),
    ("select 1; copy (select 1) to '/tmp/y.csv'", "one statement at a time"),
    ("select 1; drop view kpis_daily", "one statement at a time"),
    # Other catalogs.
    ("select * from other_db.main.kpis_daily", "does not exist"),
    ("select * from memory.main.kpis_daily", "does not exist"),
    # Unicode look-alikes of a denied name (fullwidth letters, a zero-width space, a Cyrillic e).
    ("select * from \uff44\uff55\uff43\uff4b\uff44\uff42_settings()", "does not exist|SQL error"),
    ("select * from duck\u200bdb_settings()", "does not exist|SQL error"),
    ("select * from read_t\u0435xt('/etc/passwd')", "does not exist|SQL error"),
    ("", "Write a query first"),
    ("selec 1", "SQL error"),
]


def test_the_escape_count() -> None:
    assert len(ESCAPES) == 92


@pytest.mark.parametrize(("sql", "message"), ESCAPES)
def test_every_escape_is_refused_and_nothing_changes(warehouse: Lake, sql: str,
                                                     message: str) -> None:
    before = snapshot(warehouse.data_dir)
    query = sql.format(lake=warehouse.root, data=warehouse.data_dir)
    with pytest.raises(PlaygroundError, match=message) as refused:
        run(warehouse, query)
    assert snapshot(warehouse.data_dir) == before
    assert not Path("/tmp/out.parquet").exists() and not Path("/tmp/y.csv").exists()
    assert "do not read" not in str(refused.value)
    if str(warehouse.data_dir) not in query:
        assert str(warehouse.data_dir) not in str(refused.value)


def test_a_failing_view_does_not_reveal_the_data_folder(warehouse: Lake) -> None:
    with pytest.raises(PlaygroundError, match="SQL error") as failed:
        run(warehouse, "select session_id::INTEGER from sessions")
    assert str(warehouse.data_dir) not in str(failed.value)


def test_a_long_query_is_stopped(warehouse: Lake) -> None:
    with pytest.raises(PlaygroundError, match=r"Stopped after 0\.5 s"):
        run(warehouse, "select count(*) from range(10000000000) a, kpis_daily", timeout_s=0.5)


@pytest.mark.parametrize("sql", [
    "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t",
    "select count(*) from range(1000000) a, range(1000000) b",
])
def test_recursion_and_cross_joins_are_stopped(warehouse: Lake, sql: str) -> None:
    with pytest.raises(PlaygroundError, match=r"Stopped after 1 s"):
        run(warehouse, sql, timeout_s=1)


def cpu_seconds() -> float:
    """CPU time of this process and of the children it has reaped (the sandbox's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def test_one_heavy_operator_is_stopped_on_time(warehouse: Lake) -> None:
    """DuckDB looks at an interrupt only between vectors, and ``repeat`` builds its one string
    without looking: a billion characters take about 5.6 s of CPU (0.9 billion took 5.1 s and
    13.4 s of wall time against a 1 s limit). The worker is killed a second after the limit
    instead, so the query gets the limit, the second of grace and the worker's start-up (~0.5 s)
    at most: counted in CPU time, which a busy machine does not stretch (measured: 0.9 s)."""
    before = cpu_seconds()
    with pytest.raises(PlaygroundError, match=r"Stopped after 0\.5 s"):
        run(warehouse, "select length(repeat('x', 1000000000))", timeout_s=0.5)
    assert cpu_seconds() - before < 3.5


@pytest.mark.parametrize("sql", [
    "SELECT repeat('x', 1500000000)",  # one 1.5 GB string: 2.9 GB in the dashboard before
    "select len(range(300000000))",  # one 2.4 GB list: 14.7 GB RSS without a cap
    "with recursive t(s, n) as (select 'x', 0 union all select s || s, n + 1 from t "
    "where n < 40) select max(length(s)) from t",  # doubling strings
    "select list(repeat('x', 1000) || i) from range(3000000) t(i)",  # one 3 GB list aggregate
])
def test_a_huge_allocation_is_refused_by_the_memory_cap(warehouse: Lake, sql: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PlaygroundError, match="more memory than the playground's 1GiB"):
        run(warehouse, sql, timeout_s=60)
    # The dashboard's own process never held the data (ru_maxrss is in KiB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def test_a_huge_result_is_refused(warehouse: Lake) -> None:
    with pytest.raises(PlaygroundError, match="more than the playground's 64 MiB"):
        run(warehouse, "select repeat('x', 10000000) from range(10)")


def test_a_sort_bigger_than_the_memory_limit_spills_and_leaves_no_file(warehouse: Lake) -> None:
    """Sorting 10 million 47-byte strings does not fit DuckDB's 1 GiB (with 1 MB of temp space
    it fails: "failed to offload data block"): it spills to the worker's scratch folder."""
    rows = "select i::varchar || repeat('y', 40) x from range(10000000) t(i)"
    r = run(warehouse, f"select sum(hash(x)) = (select sum(hash(x)) from ({rows})), count(*) "
                       f"from ({rows} order by x desc)", timeout_s=120)
    assert r.rows == [(True, 10000000)]
    assert not list(warehouse.data_dir.glob("*.tmp"))


def test_an_empty_warehouse_says_how_to_fill_it(tmp_path: Path) -> None:
    with pytest.raises(PlaygroundError, match="analytics-platform demo"):
        run_query("select 1", tmp_path / "warehouse.duckdb", tmp_path / "lake")


# DuckDB works out table functions' arguments and LIMIT / OFFSET while binding: the plan shows
# their values, computed on the shadow catalog, whose settings are not the real connection's.
# Each of these ran (the first read the settings, the read_blob ones the warehouse's file and
# the planted CSV) before the query as written was checked too.
BIND_TIME_ESCAPES: list[tuple[str, str]] = [
    ("select * from query(case when current_setting('access_mode') = 'read_only' "
     "then 'select name, value from duckdb_settings()' else 'select 1' end)",
     r"query\(\) takes plain literals"),
    ("select * from query(case when current_setting('access_mode') = 'read_only' "
     "then 'select * from read_blob(''{data}/warehouse.duckdb'')' else 'select 1' end)",
     r"query\(\) takes plain literals"),
    ("select * from query(case when current_setting('access_mode') = 'read_only' "
     "then 'select * from read_csv(''{lake}/sessions/planted.csv'')' else 'select 1' end)",
     r"query\(\) takes plain literals"),
    ("select * from query_table(case when current_setting('access_mode') = 'read_only' "
     "then 'duckdb_settings' else 'sessions' end)", r"query_table\(\) takes plain literals"),
    ("select * from unnest([current_setting('temp_directory'), "
     "current_setting('allowed_paths')::varchar])", r"current_setting\(\) is not allowed"),
    ("select 1 limit ascii(substr(current_setting('temp_directory'), 2, 1))",
     r"current_setting\(\) is not allowed in LIMIT"),
    ("select * from kpis_daily limit 1 offset length(current_setting('allowed_paths')::varchar)",
     r"current_setting\(\) is not allowed in LIMIT"),
    # the same, one level down: query()'s SQL is checked as written too
    ("select * from query('select * from range(ascii(current_setting(''temp_directory'')))')",
     r"current_setting\(\) is not allowed in the arguments of range"),
    # a function whose value is the connection's, denied or not (the shadow's differs: the
    # rule is DuckDB's stability, not a list), and a subquery, evaluated while binding
    ("select * from range(length(current_database()))",
     r"current_database\(\) is not allowed in the arguments of range"),
    ("select * from range((select count(*) from sessions))", "No subquery in the arguments"),
]


@pytest.mark.parametrize(("sql", "message"), BIND_TIME_ESCAPES)
def test_what_duckdb_evaluates_while_binding_is_checked_as_written(
        warehouse: Lake, sql: str, message: str) -> None:
    query = sql.format(lake=warehouse.root, data=warehouse.data_dir)
    with pytest.raises(PlaygroundError, match=message) as refused:
        run(warehouse, query)
    for secret in ("read_only", "/tmp", str(warehouse.data_dir), "a,b"):
        assert secret not in str(refused.value)


def test_constant_arguments_and_limits_still_run(warehouse: Lake) -> None:
    r = run(warehouse, "select * from generate_series(date '2026-03-02', date '2026-03-04', "
                       "interval 1 day) t(d)")
    assert [d.date() for (d,) in r.rows] == [date(2026, 3, 2), date(2026, 3, 3),
                                             date(2026, 3, 4)]
    r = run(warehouse, "select session_id, x from sessions s, "
                       "unnest(string_split(s.session_id, 's')) t(x) where x <> '' order by 1")
    assert r.rows == [("s0", "0"), ("s1", "1"), ("s2", "2")]
    assert run(warehouse, "select * from query('select count(*) from sessions')").rows == [(3,)]
    assert run(warehouse, "select count(*) from query_table('kpis_daily')").rows == [(5,)]
    r = run(warehouse, "select sessions from kpis_daily order by day limit 1 + 1 offset 3 - 1")
    assert r.rows == [(102,), (103,)]


@pytest.mark.parametrize(("sql", "values"), [
    # 3,000,000 booleans in one list: 2 MiB of Arrow, ~0.2 GB as Python objects
    ("select list_resize([true], 3000000, true) as x", "3,000,001"),
    # inside a struct: the struct, its two lists and their elements
    ("select {'a': list_resize([1], 1200000, 1), 'b': list_resize([2], 1200000, 2)} as s",
     "2,400,003"),
    # the map, its keys and its values
    ("select map(range(1100000), range(1100000)) as m", "2,200,001"),
])
def test_a_result_of_too_many_values_is_refused(warehouse: Lake, sql: str, values: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PlaygroundError, match=f"holds {values} values.*more than the "
                                              "playground's 2,000,000"):
        run(warehouse, sql)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_values_are_counted_in_the_rows_returned(warehouse: Lake) -> None:
    """5,000 lists of 1,000 elements hold 5 million values; cut at 1,000 rows, one million."""
    r = run(warehouse, "select list_resize([i], 1000, i) as x from range(5000) t(i)",
            max_rows=1000)
    assert len(r.rows) == 1000 and r.truncated
    assert r.rows[999] == ([999] * 1000,)
