"""API latency and export memory: ``analytics-platform api`` as its own process on 127.0.0.1,
asked over keep-alive HTTP from this one (p50 / p95 of the KPIs' aggregate query, a sources
breakdown and a daily time series, each over the last 14 days, no result cache); then the peak
RSS of exporting the largest tables whole (``analytics-platform export``, a process of its own,
its ru_maxrss; and the API process's VmHWM after the same export over HTTP).

    python bench/api.py [--sizes 1000000 10000000] [--rounds 50] [--export-size 1000000]
                        [--record] [--root DIR]

The warehouses are bench/dashboard.py's (built once under <root>/bench-dashboard-<events>/).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from collector import free_port  # noqa: E402
from dashboard import CLI, build  # noqa: E402
from report import data_env, section, vm_hwm  # noqa: E402

from analytics_platform.query.warehouse import Warehouse  # noqa: E402


def start_api(folder: Path) -> tuple[subprocess.Popen, int, str]:
    """The API on the warehouse of ``folder``, with a fresh key and no effective rate limit."""
    env = data_env(folder)
    key = subprocess.run([CLI, "api-key", "create", f"bench-{time.time_ns()}"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([CLI, "api", "--port", str(port), "--rate-per-hour", "1e9",
                             "--burst", "1000000"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc, port, key
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start") from None
            time.sleep(0.2)


def queries(start: date, end: date) -> dict[str, dict]:
    dates = [start.isoformat(), end.isoformat()]
    asked = {
        "aggregate (KPIs: visitors, visits, pageviews, bounce_rate, visit_duration, "
        "conversion_rate)": {"metrics": ["visitors", "visits", "pageviews", "bounce_rate",
                                         "visit_duration", "conversion_rate"]},
        "breakdown (visit:source, visitors + visits)": {"metrics": ["visitors", "visits"],
                                                         "dimensions": ["visit:source"]},
        "time series (time:day, visitors + pageviews)": {"metrics": ["visitors", "pageviews"],
                                                         "dimensions": ["time:day"]},
    }
    return {name: {"site_id": "bench", "date_range": dates, **q} for name, q in asked.items()}


def measure(port: int, key: str, body: dict, rounds: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    payload = json.dumps(body)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    times = []
    for i in range(rounds + 1):
        t0 = time.perf_counter()
        conn.request("POST", "/api/v2/query", payload, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(data.decode())
        if i:  # the first warms the OS file cache
            times.append(time.perf_counter() - t0)
    q = sorted(times)
    return statistics.median(q) * 1e3, q[int(0.95 * (len(q) - 1))] * 1e3


def export_rss(folder: Path, table: str, fmt: str) -> tuple[int, float, float, int]:
    """Rows, seconds, peak RSS (MB) and file size of ``analytics-platform export`` of the whole
    table, in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{table}.{fmt}"
        t0 = time.perf_counter()
        proc = subprocess.Popen([CLI, "export", "--table", table, "--format", fmt, "--out",
                                 str(out)], env=data_env(folder), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        # VmHWM, polled: the child's ru_maxrss would start from this process's RSS at the fork
        # (Linux keeps it across exec), and this process holds a 10M-event warehouse's cache
        peak = 0
        while proc.poll() is None:
            peak = max(peak, vm_hwm(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(err or "export failed")
        rows = int(err.split()[0].replace(",", ""))
        return rows, seconds, peak / 1024, out.stat().st_size


def http_export_rss(port: int, key: str, pid: int, table: str, fmt: str) -> tuple[int, float]:
    """Bytes streamed, and the API process's peak RSS (VmHWM, MB) after the export."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", f"/api/v1/export?table={table}&format={fmt}",
                 headers={"authorization": f"Bearer {key}"})
    r = conn.getresponse()
    n = 0
    while piece := r.read(1 << 20):
        n += len(piece)
    return n, vm_hwm(pid) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--export-size", type=int, default=1_000_000,
                    help="the warehouse whose largest tables are exported (0: none)")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="where the bench-dashboard-<events>/ warehouses are kept")
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        folder = args.root / f"bench-dashboard-{size}"
        start, end = build(folder, size)
        proc, port, key = start_api(folder)
        try:
            events = Warehouse(folder / "warehouse.duckdb").row("SELECT count(*) FROM events")[0]
            for name, body in queries(start, end).items():
                p50, p95 = measure(port, key, body, args.rounds)
                rows.append(f"| {events:,} events, last 14 days | {name} | {p50:.0f} ms | "
                            f"{p95:.0f} ms |")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if rows:
        section(f"`POST /api/v2/query` over HTTP (keep-alive, one client) to `analytics-platform "
                f"api` on 127.0.0.1, no result cache, {args.rounds} rounds after one warm-up.",
                "| warehouse | query | p50 | p95 |", rows, args.record)
    if args.export_size:
        folder = args.root / f"bench-dashboard-{args.export_size}"
        build(folder, args.export_size)
        out = []
        for table in ("events", "session_events"):
            for fmt in ("csv", "parquet", "ndjson"):
                n, secs, rss, size = export_rss(folder, table, fmt)
                out.append(f"| `export --table {table} --format {fmt}` (all days) | {n:,} rows, "
                           f"{size / 1e6:.0f} MB | {secs:.1f} s | {rss:.0f} MB |")
        proc, port, key = start_api(folder)
        try:
            for table, fmt in (("events", "csv"), ("events", "parquet")):
                n, hwm = http_export_rss(port, key, proc.pid, table, fmt)
                out.append(f"| `GET /api/v1/export?table={table}&format={fmt}` (all days), "
                           f"the API process | {n / 1e6:.0f} MB streamed | — | {hwm:.0f} MB |")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        section("Exports of the largest tables whole, peak RSS (VmHWM) of the exporting "
                "process: the CLI, and the API server, which served nothing else. DuckDB's "
                "memory limit for exports: 512 MB.",
                "| export | size | time | peak RSS |", out, args.record)


if __name__ == "__main__":
    main()
