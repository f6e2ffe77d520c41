"""Where things live holds: one settings table (the README's), one reader of the environment,
SQL files that say what they read and write, a warehouse view per table of the lake, one session
window, and the CLI's backfill recorded as a backfill the Dagster UI lists."""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform import layout, settings, sql
from analytics_platform.partitions import daily, hourly, session_window, session_window_mapping
from analytics_platform.storage import Lake, publish_warehouse

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "analytics_platform"


def test_the_readme_configuration_table_is_the_settings_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration"):]
    section = section[:section.index("\n## ")]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    assert table == settings.configuration_table()


def _setting_reads(tree: ast.AST) -> list[str]:
    """The ``ANALYTICS_*`` variables a module reads from the environment: ``os.environ.get``,
    ``os.getenv``, ``os.environ[…]`` or ``in os.environ`` with the name as a constant (setting
    one for a child process is not a read)."""
    def named(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value.startswith("ANALYTICS_")):
            return node.value
        return None

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and named(node.args[0]) and (
                isinstance(node.func, ast.Attribute)
                and (node.func.attr == "getenv"
                     or (node.func.attr == "get" and is_environ(node.func.value)))):
            found.append(named(node.args[0]))
        elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
              and is_environ(node.value) and named(node.slice)):
            found.append(named(node.slice))
        elif (isinstance(node, ast.Compare) and named(node.left)
              and any(is_environ(c) for c in node.comparators)):
            found.append(named(node.left))
    return [n for n in found if n]


def test_settings_is_the_only_reader_of_analytics_variables_on_the_pipeline_side() -> None:
    # the ingest side runs in the Lambda with the standard library only: it reads its own
    readers = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(PACKAGE).as_posix()
        if rel.startswith("ingest/") or rel == "settings.py":
            continue
        names = _setting_reads(ast.parse(f.read_text()))
        if names:
            readers[rel] = names
    assert readers == {}, readers
    # settings.py reads them all through `_env(name)`, each one in its table (the README's)
    tree = ast.parse((PACKAGE / "settings.py").read_text())
    read = {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "_env" and isinstance(node.args[0], ast.Constant)}
    documented = {n for s in settings.SETTINGS for n in s.name.split(", ")}
    assert len(read) >= 14 and read <= documented, read - documented


def test_every_sql_file_says_what_it_reads_and_writes_and_loads() -> None:
    files = sorted((PACKAGE / "defs").glob("*/sql/*.sql"))
    assert len(files) >= 15
    for f in files:
        header = []
        for line in f.read_text().splitlines():
            if not line.startswith("--"):
                break
            header.append(line)
        text = "\n".join(header)
        assert "reads:" in text and "writes:" in text, f"{f}: no reads/writes header"
        name = f"{f.parent.parent.name}/{f.stem}"
        statement = sql.load(name, **{p: "x" for p in sql.placeholders(name)})
        assert not statement.startswith("--") and statement.strip()
    with pytest.raises(ValueError, match="takes"):
        sql.load("marts/kpis_daily", extra="1")
    with pytest.raises(ValueError, match="takes"):
        sql.load("sessions/day_events")  # its placeholders are missing


def test_sql_literals_quote_what_views_and_generated_sql_embed() -> None:
    weird = "it's a '; DROP TABLE x; --"
    assert duckdb.sql(f"SELECT {sql.literal(weird)}").fetchall() == [(weird,)]
    assert duckdb.sql(f"SELECT {sql.literal_list(['a', weird])}").fetchall() == [(["a", weird],)]


def test_the_warehouse_publishes_a_view_for_every_table_of_the_lake(tmp_path: Path) -> None:
    lake = Lake(tmp_path, "")
    con = duckdb.connect()
    day = datetime(2026, 2, 1, tzinfo=UTC)
    lake.write(con, "SELECT 1 AS a, 'x' AS b", "a_new_mart", layout.day_folder(day))
    lake.write(con, "SELECT 2 AS a", "another", layout.ALL)
    lake.write(con, "SELECT 3 AS a", layout.LATE_EVENTS, layout.late_folder(day),
               name=layout.hour_folder(day))
    (lake.root / "_tmp").mkdir(exist_ok=True)
    # bookkeeping is not published; quarantine always is (empty until a record is quarantined)
    assert publish_warehouse(lake) == ["a_new_mart", "another", "quarantine"]
    with duckdb.connect(str(lake.warehouse_path), read_only=True) as wh:
        assert wh.sql("SELECT a, b FROM a_new_mart").fetchall() == [(1, "x")]
        assert wh.sql("SELECT a FROM another").fetchall() == [(2,)]


def test_folder_names_round_trip() -> None:
    hour = datetime(2026, 2, 1, 13, tzinfo=UTC)
    assert layout.hour_folder(hour) == "hour=2026-02-01T13"
    assert layout.hour_of_folder(layout.hour_folder(hour)) == hour
    assert layout.day_folder(hour) == "date=2026-02-01"
    assert layout.late_folder(date(2026, 2, 1)) == layout.late_folder("2026-02-01")
    assert layout.hour_name(hour.strftime(layout.HOUR_FORMAT)) == layout.hour_folder(hour)


@pytest.mark.parametrize("late_hours", [0, 4, 23, 24, 30, 48])
def test_the_session_window_mapping_covers_the_window(late_hours: int) -> None:
    """The partition mapping of sessions onto events holds every hour the day reads, and
    no whole day more than it needs."""
    day = datetime(2026, 2, 10, tzinfo=UTC)
    first, last = session_window(day, late_hours)
    mapping = session_window_mapping(late_hours)
    mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
        daily.subset_with_partition_keys(["2026-02-10"]), daily, hourly,
        current_time=datetime(2026, 3, 1, tzinfo=UTC),
    ).partitions_subset.get_partition_keys()
    hours = {hourly.start_time_for_partition_key(k) for k in mapped}
    h = first
    while h <= last:
        assert h in hours
        h += timedelta(hours=1)
    assert min(hours) > first - timedelta(days=1) and max(hours) < last + timedelta(days=1)


def test_resources_bind_the_variables_that_are_set(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    from analytics_platform.definitions import defs

    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ANALYTICS_LAKE_URL", raising=False)
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "7")
    resources = defs().resources
    assert isinstance(resources["lake"].data_dir, dg.EnvVar)
    assert resources["lake"].data_dir.env_var_name == "ANALYTICS_DATA_DIR"
    assert resources["lake"].url is None  # unset: the resource's default (local only)
    with dg.build_resources({"lake": resources["lake"],
                             "pipeline": resources["pipeline"]}) as built:
        assert built.lake.open().data_dir == tmp_path.resolve()  # resolved when a run starts
        assert built.pipeline.late_arrival_hours == 7


def test_a_cli_backfill_is_listed_as_a_backfill(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.backfill import run_backfill
    from analytics_platform.lake import open_raw_lake
    from analytics_platform.simulate import SimConfig, generate, write_traffic

    day = date(2026, 2, 3)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "2")
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    cfg = SimConfig(days=1, visitors_per_day=30, start=day, seed=7,
                    until=datetime(2026, 2, 5, tzinfo=UTC))
    write_traffic(generate(cfg), open_raw_lake(tmp_path / "raw"), progress=False)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run_backfill(day, day, instance=instance, log=lambda _: None)
        assert report.success and len(report.phases) == 3
        backfills = instance.get_backfills()
        assert len(backfills) == 1
        backfill = backfills[0]
        assert backfill.status.value == "COMPLETED_SUCCESS"
        runs = instance.get_runs(dg.RunsFilter(tags=dg.DagsterRun.tags_for_backfill_id(
            backfill.backfill_id)))
        assert sorted(r.job_name for r in runs) == ["daily_job", "events_job", "history_job"]
        data = backfill.asset_backfill_data
        assert data is not None
        materialized = {k.to_user_string() for k in data.materialized_subset.asset_keys}
        assert materialized == {"events", "quarantine", "sessions", "session_events",
                                "kpis_daily", "pages_daily", "attribution_daily",
                                "funnel_daily", "devices_daily", "goals_daily",
                                "journeys_daily", "attribution_touch", "cohort_retention",
                                "experiments", "countries_daily", "outbound_daily",
                                "downloads_daily", "not_found_daily", "web_vitals_daily",
                                "engagement_daily"}
        sessions_days = data.materialized_subset.get_asset_subset(dg.AssetKey("sessions"))
        assert sessions_days is not None
        assert list(sessions_days.value.get_partition_keys()) == ["2026-02-03"]
        assert re.fullmatch(r"[a-z]{8}", backfill.backfill_id)
