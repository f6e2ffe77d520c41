"""The benchmark script still runs (tiny sizes; no timing is asserted)."""

import subprocess
import sys
from pathlib import Path

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
    assert any("s per day" in line for line in table)


def test_dashboard_bench_runs(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "bench/dashboard.py", "--sizes", "20000", "--rounds",
                          "2", "--root", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "events (last 14 days shown)" in out.stdout and " ms |" in out.stdout


def test_latency_bench_runs(tmp_path: Path) -> None:
    """The README's flow, end to end: collector → raw lake → `dagster dev` (raw-lake sensor,
    automation sensor) → `events` and `sessions` in the warehouse."""
    out = subprocess.run([sys.executable, "bench/latency.py", "--samples", "1", "--root",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "in the `events` view" in out.stdout and "in the `sessions` view" in out.stdout
