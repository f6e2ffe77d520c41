"""Dashboard query latency: the Overview's queries (KPIs for the period and the one before,
the daily series, top / entry / exit pages, the filter choices), with no result cache, through
the dashboard's own `Warehouse` (the warehouse file stays open, a cursor per query), on
warehouses of about 1M and 10M simulated events.

    python bench/dashboard.py [--sizes 1000000 10000000] [--rounds 20] [--record]

Each warehouse is built once under bench-dashboard-<events>/ (simulate + backfill) and reused.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import data_env, section  # noqa: E402

CLI = str(Path(sys.executable).with_name("analytics-platform"))
EVENTS_PER_VISITOR_DAY = 12.4  # what the simulator produces on average


def build(folder: Path, events: int) -> tuple[date, date]:
    days = 14 if events <= 2_000_000 else 30
    visitors = max(1, round(events / days / EVENTS_PER_VISITOR_DAY))
    first = date(2026, 1, 1)
    last = first + timedelta(days=days - 1)
    if not (folder / "warehouse.duckdb").exists():
        env = data_env(folder)
        subprocess.run([CLI, "simulate", "--days", str(days), "--visitors-per-day",
                        str(visitors), "--start", str(first), "--quiet"], env=env, check=True)
        subprocess.run([CLI, "backfill", "--from", str(first), "--to", str(last)], env=env,
                       check=True)
    return last - timedelta(days=13), last


def measure(folder: Path, start: date, end: date, rounds: int) -> dict[str, float]:
    from analytics_platform.dashboard import queries as Q

    wh = Q.Warehouse(folder / "warehouse.duckdb")
    f = Q.Filters(start, end)
    overview = [(Q.KPIS, f.params()), (Q.KPIS, f.previous().params()),
                (Q.SERIES_DAILY, f.params()), (Q.top_pages_sql(f), f.params()),
                (Q.ENTRY_PAGES, f.params()), (Q.EXIT_PAGES, f.params()), (Q.CHOICES, {}),
                (Q.RANGE, {})]
    per_query: list[float] = []
    per_page: list[float] = []
    wh.df(Q.KPIS, f.params())  # warm the OS file cache once
    for _ in range(rounds):
        t_page = time.perf_counter()
        for sql, params in overview:
            t0 = time.perf_counter()
            wh.df(sql, params)
            per_query.append(time.perf_counter() - t0)
        per_page.append(time.perf_counter() - t_page)
    events = wh.row("SELECT count(*) FROM events")[0]
    q = sorted(per_query)
    return {"events": events, "p50": statistics.median(q) * 1e3,
            "p95": q[int(0.95 * (len(q) - 1))] * 1e3,
            "page_p50": statistics.median(per_page) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="where the bench-dashboard-<events>/ warehouses are kept")
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        folder = args.root / f"bench-dashboard-{size}"
        start, end = build(folder, size)
        m = measure(folder, start, end, args.rounds)
        rows.append(f"| {m['events']:,.0f} events (last 14 days shown) | {m['p50']:.0f} ms | "
                    f"{m['p95']:.0f} ms | {m['page_p50']:.0f} ms |")
    section("Overview queries, no result cache, through the dashboard's `Warehouse` (the file "
            "open, a cursor per query; bar: p95 ≤ 200 ms on 10M events).",
            "| warehouse | query p50 | query p95 | whole overview (8 queries) p50 |", rows,
            args.record)


if __name__ == "__main__":
    main()
