"""Measure 6 of issue #7: from an event's 202 at the local collector to the moment it can be
queried in the warehouse, first in `events`, then (with its session) in `sessions`, on a fresh
local data folder, with either topology: the collector (10 s flushes) and `dagster dev` (the
raw-lake sensor, the automation sensor, a new process for every run), or `analytics-platform
serve` (the production processes of docs/DEPLOY.md; issue #17).

    python bench/latency.py [--samples 4] [--topology dev|serve] [--record]

A warm-up event goes first (the daemon's first ticks, the first runs' imports); then each sample
posts one page view at a random point of the flush and sensor cycles and polls the warehouse
every 0.25 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from collector import event, free_port, start  # noqa: E402
from report import data_env, section  # noqa: E402

from analytics_platform.cli import LOCAL_INSTANCE_YAML  # noqa: E402

DAGSTER = str(Path(sys.executable).with_name("dagster"))
CLI = str(Path(sys.executable).with_name("analytics-platform"))
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0 Safari/537.36")


def found(warehouse: Path, sql: str, key: str) -> bool:
    """Whether the published warehouse answers ``sql`` with a row (False while it has no such
    table yet, or is being swapped in)."""
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return bool(con.execute(sql, [key]).fetchall()[0][0])
    except duckdb.Error:
        return False


def sample(url: str, warehouse: Path, timeout: float) -> tuple[float, float]:
    """Post one page view; seconds until it is in `events`, and until its session is in
    `sessions`."""
    ev = event()
    # a browser's user agent: httpx's own is a bot's, and bots never reach `events`
    httpx.post(f"{url}/v1/events", json=ev, headers={"user-agent": BROWSER}).raise_for_status()
    t0 = time.perf_counter()
    t_events = None
    while time.perf_counter() - t0 < timeout:
        if t_events is None and found(
                warehouse, "SELECT count(*) FROM events WHERE event_id = ?", ev["event_id"]):
            t_events = time.perf_counter() - t0
        if t_events is not None and found(
                warehouse, "SELECT count(*) FROM sessions WHERE session_id = ?",
                ev["session_id"]):
            return t_events, time.perf_counter() - t0
        time.sleep(0.25)
    raise SystemExit(f"event {ev['event_id']} not in the warehouse after {timeout:.0f} s "
                     f"(events after {t_events} s); see the logs in {warehouse.parent}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for one event")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--root", type=Path, default=ROOT, help="where bench-latency/ is made")
    ap.add_argument("--topology", choices=["dev", "serve"], default="dev",
                    help="dev: the collector and `dagster dev`; serve: `analytics-platform "
                         "serve` (gRPC code server, daemon, webserver, dashboard, collector as "
                         "separate processes, SQLite storage), the production topology")
    args = ap.parse_args()
    # a SIGTERM still stops `dagster dev` and the collector (the `finally` below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = args.root / "bench-latency"
    shutil.rmtree(folder, ignore_errors=True)
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    env = data_env(folder)
    if args.topology == "serve":
        # serve installs deploy/dagster.yaml (SQLite here) and runs its own collector
        collector = None
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (folder / "serve.log").open("w")
        ui = subprocess.Popen([CLI, "serve", "--port", str(free_port()), "--dashboard-port",
                               str(free_port()), "--collector-port", str(port),
                               "--code-server-port", str(free_port())], env=env, cwd=folder,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while "All servers answer" not in (folder / "serve.log").read_text():
            if time.monotonic() > deadline or ui.poll() is not None:
                raise SystemExit(f"serve did not come up; see {folder / 'serve.log'}")
            time.sleep(0.5)
    else:
        (home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)  # what the CLI writes
        collector, url = start(folder, flush_seconds=10)
        log = (folder / "dagster-dev.log").open("w")
        ui = subprocess.Popen([DAGSTER, "dev", "-w", str(ROOT / "workspace.yaml"), "-h",
                               "127.0.0.1", "-p", str(free_port())], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    warehouse = folder / "warehouse.duckdb"
    try:
        t0 = time.perf_counter()
        sample(url, warehouse, args.timeout)
        print(f"warm-up event through in {time.perf_counter() - t0:.0f} s", flush=True)
        events, sessions = [], []
        for i in range(args.samples):
            time.sleep(random.uniform(0, 10))
            e, s = sample(url, warehouse, args.timeout)
            events.append(e)
            sessions.append(s)
            print(f"sample {i + 1}: events {e:.1f} s, sessions {s:.1f} s", flush=True)
    finally:
        # `dagster dev` stops on SIGINT to its group; serve on SIGTERM to itself (it stops
        # its children's groups)
        if args.topology == "serve":
            ui.send_signal(signal.SIGTERM)
        else:
            os.killpg(ui.pid, signal.SIGINT)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
        if collector is not None:
            collector.send_signal(signal.SIGTERM)
            collector.wait(timeout=30)
        log.close()
    sensor = os.environ.get("ANALYTICS_SENSOR_INTERVAL_SECONDS") or "default"
    rows = [f"| 202 at the collector → in the `{name}` view | {statistics.median(v):.1f} s | "
            f"{min(v):.1f}–{max(v):.1f} s | ≤ 60 s |"
            for name, v in (("events", events), ("sessions", sessions))]
    what = ("local default (`dagster dev`" if args.topology == "dev" else
            "production topology (`analytics-platform serve`: gRPC code server, daemon, "
            "webserver as separate processes, SQLite storage, deploy/dagster.yaml")
    section(f"Event → queryable, {what}, collector flush 10 s, sensor "
            f"interval {sensor}); {args.samples} samples after a warm-up event.",
            "| measure | median | range | bar |", rows, args.record)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
