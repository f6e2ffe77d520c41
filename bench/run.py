"""Benchmarks of the simulator and the pipeline; prints a markdown table (and appends it to
docs/BENCHMARKS.md with --record).

    python bench/run.py                       # default sizes (a few minutes)
    python bench/run.py --large-hour 1000000  # the `events` asset on a 1M-record hour
    python bench/run.py --quick --repeat 1    # tiny sizes: what the test suite runs

Each measure runs --repeat times on fresh folders; the table gives the median and the spread.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import data_env, med, section  # noqa: E402


def simulate(folder: Path, days: int, visitors: int, one_hour: bool = False) -> dict[str, float]:
    from analytics_platform.lake import open_raw_lake
    from analytics_platform.simulate import SimConfig, generate, write_traffic

    t0 = time.perf_counter()
    traffic = generate(SimConfig(days=days, visitors_per_day=visitors, start=date(2026, 2, 1),
                                 one_hour=one_hour))
    report = write_traffic(traffic, open_raw_lake(folder / "raw"), progress=False)
    seconds = time.perf_counter() - t0
    return {"records": report.records, "objects": report.objects, "seconds": seconds,
            "rate": report.records / seconds}


def backfill(folder: Path, first: date, last: date) -> dict[str, float]:
    """The CLI's backfill in a fresh process, as a user runs it."""
    env = data_env(folder)
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(Path(sys.executable).with_name("analytics-platform")), "backfill", "--from",
         str(first), "--to", str(last)], env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    import duckdb

    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    con.close()
    del out
    return {"seconds": seconds, "events": events, "rate": events / seconds}


def events_hour(folder: Path) -> dict[str, float]:
    """The `events` asset's own work on one hour (no process start-up)."""
    from analytics_platform.defs.events.assets import process_hours
    from analytics_platform.duck import connect
    from analytics_platform.lake import open_raw_lake
    from analytics_platform.storage import Lake

    raw = open_raw_lake(folder / "raw")
    hour = datetime(2026, 2, 1, 12, tzinfo=UTC)
    con = connect()
    t0 = time.perf_counter()
    stats = process_hours(con, raw, Lake(folder), [hour], late_hours=24)
    seconds = time.perf_counter() - t0
    con.close()
    records = sum(s.records for s in stats)
    return {"records": records, "seconds": seconds, "rate": records / seconds}


def repeat(n: int, fn: Callable[[Path], dict[str, float]], setup: Callable[[Path], None] | None
           = None) -> list[dict[str, float]]:
    out = []
    for _ in range(n):
        folder = Path(tempfile.mkdtemp(prefix="bench-", dir=ROOT))  # the project's disk
        try:
            if setup:
                setup(folder)
            out.append(fn(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return out


def summary(runs: list[dict[str, float]], key: str, fmt: str = "{:,.0f}") -> str:
    return med([r[key] for r in runs], fmt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--visitors", type=int, default=2000)
    ap.add_argument("--large-visitors", type=int, default=20000,
                    help="visitors/day of the large simulator run")
    ap.add_argument("--large-hour", type=int, default=300_000,
                    help="records wanted in the one-hour events run (about 12.5 per visitor)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (used by the test suite)")
    ap.add_argument("--record", action="store_true", help="append the table to docs/BENCHMARKS.md")
    args = ap.parse_args()
    if args.quick:
        args.days, args.visitors, args.large_visitors, args.large_hour = 1, 100, 200, 2000
    hour_visitors = max(1, args.large_hour * 10 // 125)
    first, last = date(2026, 2, 1), date(2026, 2, args.days) if args.days <= 28 else None
    rows = []

    sim = repeat(args.repeat, lambda f: simulate(f, args.days, args.visitors))
    rows.append((f"simulator, {args.days} days × {args.visitors:,} visitors/day "
                 f"({sim[0]['records']:,.0f} records, {sim[0]['objects']:,.0f} objects)",
                 summary(sim, "seconds", "{:.2f}") + " s", summary(sim, "rate") + " records/s"))
    big = repeat(args.repeat, lambda f: simulate(f, args.days, args.large_visitors))
    rows.append((f"simulator, {args.days} days × {args.large_visitors:,} visitors/day "
                 f"({big[0]['records']:,.0f} records, {big[0]['objects']:,.0f} objects)",
                 summary(big, "seconds", "{:.2f}") + " s", summary(big, "rate") + " records/s"))
    if last is not None:
        bf = repeat(args.repeat, lambda f: backfill(f, first, last),
                    setup=lambda f: simulate(f, args.days, args.visitors))
        rows.append((f"`analytics-platform backfill` of those {args.days} days (all assets, 3 "
                     f"runs, process start-up included; {bf[0]['events']:,.0f} events)",
                     summary(bf, "seconds", "{:.1f}") + " s", summary(bf, "rate") + " events/s"))
    hr = repeat(args.repeat, events_hour,
                setup=lambda f: simulate(f, 1, hour_visitors, one_hour=True))
    rows.append((f"`events` asset on one hour of {hr[0]['records']:,.0f} records "
                 "(gzip NDJSON, Firehose layout)",
                 summary(hr, "seconds", "{:.2f}") + " s", summary(hr, "rate") + " records/s"))

    section(f"Median of {args.repeat} run(s), (min–max) in brackets.",
            "| measure | time | throughput |",
            [f"| {a} | {b} | {c} |" for a, b, c in rows], args.record)


if __name__ == "__main__":
    main()
