"""Every shipped playground example runs in the sandbox, on a warehouse the real pipeline built
from simulated traffic, and returns what the same query returns straight from the warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform import dashboard
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


@pytest.mark.parametrize(("sql", "columns", "chart"), [
    # two columns of one name (a join): pandas' df[name] is then a frame, and Arrow refuses
    # duplicate names; the table shows them numbered
    ("SELECT a.page_path, b.page_path, count(*) AS n FROM events a JOIN events b "
     "USING (event_id) GROUP BY ALL", ["page_path", "page_path (2)", "n"], True),
    ("SELECT 1 AS n, 2 AS n", ["n", "n (2)"], False),
    # a first column of lists, or of structs: values that do not hash
    ("SELECT [1, 2] AS l, 3 AS n UNION ALL SELECT [3], 4", ["l", "n"], False),
    ("SELECT {'a': 1} AS s, 3 AS n UNION ALL SELECT {'a': 2}, 4", ["s", "n"], False),
    # the ordinary case: labels and a measure, one bar each
    ("SELECT source, count(*) AS sessions FROM sessions GROUP BY 1", ["source", "sessions"],
     True),
])
def test_the_sql_view_shows_any_result(data: Path, monkeypatch: pytest.MonkeyPatch, sql: str,
                                       columns: list[str], chart: bool) -> None:
    """The SQL view, driven as a user does: any result the playground returns is shown as a
    table (a chart only when its first column holds distinct labels), never as a traceback."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    at = AppTest.from_file(str(Path(dashboard.__file__).parent / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/sql.py").run()
    at.text_area(key=f"sql_{at.selectbox(key='example').value}").set_value(sql).run()
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    shown = at.dataframe[-1].value
    assert list(shown.columns) == columns and len(shown) >= 1
    assert bool(at.get("plotly_chart")) == chart
