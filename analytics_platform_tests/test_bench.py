"""The benchmark script still runs (tiny sizes; no timing is asserted)."""

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_at_tiny_sizes() -> None:
    out = subprocess.run([sys.executable, "bench/run.py", "--quick", "--repeat", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 5  # header + simulator ×2, backfill, events hour
    assert all("records/s" in line or "events/s" in line for line in table[1:])


def test_collector_bench_runs() -> None:
    out = subprocess.run([sys.executable, "bench/collector.py", "--requests", "200",
                          "--disk-samples", "1"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "events/s" in out.stdout and "202 → record in the raw lake" in out.stdout


def test_pipeline_bench_runs_every_measure() -> None:
    out = subprocess.run([sys.executable, "bench/pipeline.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    measures = {line.split("|")[1].strip() for line in table[1:]}
    assert measures == {"1", "2", "3", "7"}
    # the ratios of measure 1 and 2 are there, next to their bars
    assert any("÷ bare DuckDB" in line and "≤ 1.5×" in line for line in table)
    assert any("pandas ÷ `events`" in line and "≥ 5×" in line for line in table)
    assert any("backfill ÷ bare steps" in line and "≤ 2×" in line for line in table)
    # the floors the missed bars are explained with, and Dagster's share of the backfill
    assert any("floor ÷ bare DuckDB" in line for line in table)
    assert any("`events` ÷ floor" in line for line in table)
    assert any("events step at its floor" in line for line in table)
    assert any("Dagster's share" in line for line in table)
    # the warehouse's publish, once after the runs, is timed from the CLI's own output
    split = next(line for line in table if "published once after its 3 runs" in line)
    _, published, _ = split.split("|")[3].split("/")
    assert float(published.strip().removesuffix(" s")) > 0
    # the sessions step's yardstick that makes sessions as the contract does (bench/steps.py)
    assert any("30-minute rule per visitor_hash" in line and "SESSIONS_RULE_STEPS" in line
               for line in table)
    assert any("s per day" in line for line in table)


def _bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SIZE = 20_000  # events of the tiny warehouse bench/dashboard.py and bench/api.py run on


@pytest.fixture(scope="module")
def bench_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --root holding bench/dashboard.py's warehouse of SIZE events, built once (simulate +
    a 14-day backfill: most of each of the two tests' time) for both benches that read it."""
    root = tmp_path_factory.mktemp("bench-root")
    _bench_module("dashboard").build(root / f"bench-dashboard-{SIZE}", SIZE)
    return root


def test_dashboard_bench_runs_against_clickhouse(bench_root: Path) -> None:
    """Both engines answer the Overview's queries on a tiny warehouse, their results identical
    row for row (the script asserts it), and a ClickHouse query that counts something else
    is caught."""
    pytest.importorskip("chdb", reason="chdb (the bench's ClickHouse) is not installed: "
                        "pip install -e '.[bench]'")
    out = subprocess.run([sys.executable, "bench/dashboard.py", "--sizes", str(SIZE), "--rounds",
                          "2", "--levers", "--root", str(bench_root)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    levers = [line for line in lines if line.split("|")[1].strip().endswith(" events")]
    table = [line for line in lines if line not in levers]
    # every lever answered the Overview (identical results asserted by the script)
    assert len(levers) == 10 and all(line.count(" / ") >= 4 for line in levers)
    table = [line for line in table if not line.startswith("| warehouse | query |")]
    assert table[0].startswith("| query | ours, ") and "| ClickHouse | ÷ |" in table[0]
    names = [line.split("|")[1].strip() for line in table[1:]]
    assert names == ["KPIs", "KPIs, previous period", "daily series", "top pages",
                     "entry pages", "exit pages", "filter choices", "date range", "any query",
                     "**whole page**"]
    assert all(line.count(" / ") == 2 for line in table[1:])  # p50 / p95 for each engine

    bench = _bench_module("dashboard")
    ch = importlib.import_module("clickhouse")  # bench/ (on the path now): what measure() runs
    folder = bench_root / f"bench-dashboard-{SIZE}"
    start, end = bench.build(folder, SIZE)
    # a query that sums every event instead of the page views: the bench must refuse it
    real = ch._KPIS
    try:
        ch._KPIS = real.replace("sum(pageviews)", "sum(events)")
        with pytest.raises(AssertionError, match="the engines differ: KPIs: row 0, column "
                                                 "pageviews"):
            bench.measure(folder, start, end, 1, clickhouse=True)
    finally:
        ch._KPIS = real


def test_api_bench_runs(bench_root: Path) -> None:
    """bench/api.py at a tiny size (no timing asserted): latency rows and export rows."""
    out = subprocess.run([sys.executable, "bench/api.py", "--sizes", str(SIZE), "--rounds", "2",
                          "--export-size", str(SIZE), "--root", str(bench_root)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert sum("aggregate" in line and " ms |" in line for line in table) == 1
    assert sum("`export --table" in line and " MB |" in line for line in table) == 6
    assert sum("/api/v1/export" in line for line in table) == 2


def test_publish_bench_runs(bench_root: Path, tmp_path: Path) -> None:
    """bench/publish.py on the tiny warehouse (no timing asserted): a row for each change and
    way, the fragmentation rows (where the page cache may be dropped: root, /proc/sys
    writable), and the data folder it copied from left as it was."""
    data = bench_root / f"bench-dashboard-{SIZE}"
    before = sorted((p.relative_to(data), p.stat().st_mtime_ns) for p in data.rglob("*"))
    root = os.access("/proc/sys/vm/drop_caches", os.W_OK)
    out = subprocess.run([sys.executable, "bench/publish.py", "--data", str(data), "--work",
                          str(tmp_path / "work"), "--rounds", "1",
                          *(["--fragmentation", "2"] if root else [])], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    tables = out.stdout.split("\n### ")
    rows = [line for line in tables[1].splitlines() if line.startswith("| ")][1:]
    assert [tuple(c.strip() for c in line.split("|")[1:3]) for line in rows] == [
        (change, way) for change in ("nothing changed", "a day of a daily mart written again",
                                     "a day of session_events written again")
        for way in ("copied (before)", "cloned (now)")]
    if root:
        rows = [line for line in tables[2].splitlines() if line.startswith("| ")][1:]
        assert [line.split("|")[1].strip() for line in rows] == [
            "at the start (after the rounds)", "after 2 more, each with a day stored again"]
    assert sorted((p.relative_to(data), p.stat().st_mtime_ns) for p in data.rglob("*")) == before


def test_publish_bench_times_snapshot_links(tmp_path: Path) -> None:
    """bench/publish.py --links (no timing asserted): a row per table size, its folder gone."""
    out = subprocess.run([sys.executable, "bench/publish.py", "--work", str(tmp_path),
                          "--links", "3", "40"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    assert [line.split("|")[1].strip() for line in rows] == ["3", "40"]
    assert list(tmp_path.iterdir()) == []


def test_sessions_reads_step_runs(bench_root: Path, tmp_path: Path) -> None:
    """bench/steps.py sessions-reads on a copy of the tiny lake (it builds the day too): the
    CPU seconds of each read and of the day, and the window's rows."""
    data = tmp_path / "data"
    shutil.copytree(bench_root / f"bench-dashboard-{SIZE}" / "lake", data / "lake")
    days = sorted(p.name.removeprefix("date=") for p in (data / "lake" / "sessions").glob("date=*"))
    day = days[3]
    out = subprocess.run([sys.executable, "bench/steps.py", "sessions-reads", str(data), day],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["rows"] > 0 and set(found["cpu_of"]) == {"narrow", "before", "wide", "day"}


def test_daily_marts_step_runs(bench_root: Path, tmp_path: Path) -> None:
    """bench/steps.py daily-marts on a copy of the tiny lake: the 13 daily marts over its 14
    days, one day at a time and two at a time, write the same bytes (issue 21's paired runs)."""
    data = tmp_path / "data"
    for table in ("sessions", "session_events"):
        shutil.copytree(bench_root / f"bench-dashboard-{SIZE}" / "lake" / table,
                        data / "lake" / table)
    found = []
    for workers in ("1", "2"):
        out = subprocess.run([sys.executable, "bench/steps.py", "daily-marts", str(data),
                              workers], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
        found.append(json.loads(out.stdout.splitlines()[-1]))
    days = len(list((data / "lake" / "sessions").glob("date=*")))
    assert days >= 14 and len(found[0]["marts"]) == 13
    assert found[0]["rows"] == found[1]["rows"] == 13 * days  # a file per mart and day
    assert found[0]["sha256"] == found[1]["sha256"]


def test_dashboard_bench_compares_the_page_and_goal_filters_with_clickhouse(
        bench_root: Path) -> None:
    """The sidebar's page and goal filters (Plausible's ``has_done``) translated for ClickHouse
    too: the goal's type, page and props value (goals.yaml), results identical row for row (the
    script asserts it); a goal that is not configured is refused, not guessed."""
    pytest.importorskip("chdb", reason="chdb (the bench's ClickHouse) is not installed: "
                        "pip install -e '.[bench]'")
    for flt in ("goal=Booked a call,page=/", "goal=Viewed pricing"):
        out = subprocess.run([sys.executable, "bench/dashboard.py", "--sizes", str(SIZE),
                              "--rounds", "2", "--root", str(bench_root), "--filter", flt],
                             cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        assert f"With the filter {flt} set" in out.stdout
    clickhouse = _bench_module("clickhouse")
    assert "JSONExtractString" in clickhouse.goal_condition("Booked a call")
    with pytest.raises(ValueError, match="not 'Signed up'"):
        clickhouse.goal_condition("Signed up")


def test_dashboard_bench_times_the_other_panels_with_a_filter(bench_root: Path) -> None:
    """``--panels`` times every panel of the other views that is SQL of its own over the
    filtered sessions, p50 / p95 each; it refuses to run without a filter (the panels would
    read their marts)."""
    cmd = [sys.executable, "bench/dashboard.py", "--sizes", str(SIZE), "--rounds", "2",
           "--without-clickhouse", "--root", str(bench_root), "--panels"]
    refused = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert refused.returncode != 0 and "--panels needs --filter" in refused.stderr
    out = subprocess.run([*cmd, "--filter", "page=/"], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| panel |")))
    rows = [line for line in lines[start + 2:] if line.startswith("| ")]
    names = [line.split("|")[1].strip() for line in rows]
    assert names == ["goals", "funnels", "experiments", "cohorts", "first / last touch",
                     *(f"report: {n}" for n in ("countries", "outbound", "downloads",
                                                "not_found", "engagement", "web_vitals"))]
    assert all(line.split("|")[2].count(" / ") == 1 for line in rows)  # p50 / p95


def test_dashboard_bench_compares_row_for_row() -> None:
    bench = _bench_module("dashboard")
    a = pd.DataFrame({"page_path": ["/a", "/b"], "sessions": [3, 2], "rate": [0.5, 0.25]})
    assert bench.difference("t", a, a.copy(), names=True) is None
    # the same values from another engine: float sums in another order, numpy scalars
    b = a.assign(rate=[0.5 + 1e-16, 0.25])
    assert bench.difference("t", a, b, names=True) is None
    assert "row 0, column sessions" in bench.difference(
        "t", a, a.assign(sessions=[4, 2]), names=True)
    assert "row 0, column page_path" in bench.difference(  # same rows, another order
        "t", a, a.iloc[::-1].reset_index(drop=True), names=True)
    assert "shape" in bench.difference("t", a, a.iloc[:1], names=True)
    assert "columns" in bench.difference("t", a, a.rename(columns={"rate": "r"}), names=True)
    assert "row 0, column rate" in bench.difference("t", a, a.assign(rate=[0.5001, 0.25]),
                                                    names=True)


def test_latency_bench_runs(tmp_path: Path) -> None:
    """The README's flow, end to end: collector → raw lake → `dagster dev` (raw-lake sensor,
    automation sensor) → `events` and `sessions` in the warehouse."""
    # the sensors at the daemon's own 5-s loop (the local default is 10 s): the flow is the
    # same, each of its four sensor hops up to 5 s shorter (no timing is asserted)
    env = {**os.environ, "ANALYTICS_SENSOR_INTERVAL_SECONDS": "5"}
    out = subprocess.run([sys.executable, "bench/latency.py", "--samples", "1", "--root",
                          str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "in the `events` view" in out.stdout and "in the `sessions` view" in out.stdout
