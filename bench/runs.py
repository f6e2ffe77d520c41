"""Runs per raw object: the production daemon against a local raw lake into which Firehose-shaped
objects drop at a steady rate (issue 17 §5).

    python bench/runs.py [--objects 16] [--every 45] [--sensor-seconds 5] [--code DIR]

Time is compressed: one object every ``--every`` seconds stands for Firehose's 180-s buffer, and
the sensors tick every ``--sensor-seconds`` (30 s in production: the same six ticks an object).
The processes are the production ones (``dagster code-server`` and ``dagster-daemon`` on
deploy/dagster.yaml, SQLite), exactly as ``analytics-platform serve`` starts them.

1. Four hours of objects (the three before this one and this one so far) are backfilled with
   ``analytics-platform backfill`` before the daemon starts, as ``make demo`` does; the runs the
   daemon makes in its first ``--settle`` seconds are what it re-did of the backfill.
2. Then ``--objects`` objects, one every ``--every`` seconds, each a few sessions' requests as
   the ingest handler stores them; once the queue is empty, the runs of each job are counted
   from the instance.

``--code DIR`` runs another copy of the package (``DIR/analytics_platform``, e.g. a snapshot of
the code before a change) through ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics_platform.contract import encode_records  # noqa: E402
from analytics_platform.ingest.core import IngestConfig, Ingestor  # noqa: E402
from analytics_platform.lake import floor_hour, open_raw_lake  # noqa: E402

CLI = str(Path(sys.executable).with_name("analytics-platform"))
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0 Safari/537.36")
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/signup", "/docs"]
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def requests_object(rng: random.Random, at: datetime, sessions: int = 6) -> bytes:
    """One Firehose object: the requests of a few visits (3 events a request, as the tracker
    batches), stored as the ingest handler stores them, arrived at ``at``."""
    ingestor = Ingestor(IngestConfig.from_env(), clock=lambda: at)
    records = []
    for _ in range(sessions):
        visitor, session = str(uuid.uuid4()), str(uuid.uuid4())
        for _ in range(rng.randint(2, 6)):
            ts = at - timedelta(seconds=rng.uniform(1, 60))
            batch = [{"event_type": "page_view", "event_id": str(uuid.uuid4()),
                      "session_id": session, "visitor_id": visitor,
                      "page_path": rng.choice(PAGES), "page_host": "www.example.com",
                      "event_ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
                     for _ in range(3)]
            prepared = ingestor.prepare("POST", {"content-type": "application/json",
                                                 "user-agent": BROWSER},
                                        json.dumps(batch).encode())
            records += prepared.records
    return gzip.compress(encode_records(records))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drop(raw_url: str, rng: random.Random, at: datetime) -> None:
    open_raw_lake(raw_url).write_records(at, requests_object(rng, at),
                                         object_id=uuid.uuid4().hex[:12])


def count_runs(home: Path, env: dict[str, str], since: float) -> dict[str, Counter]:
    """Runs of each job created after ``since``, by status (read in a child process, with the
    measured code's environment)."""
    script = (
        "import json, sys, dagster as dg\n"
        "since = float(sys.argv[1])\n"
        "with dg.DagsterInstance.get() as inst:\n"
        "    out = [(r.dagster_run.job_name, r.dagster_run.status.value, "
        "r.dagster_run.tags.get('dagster/partition'), r.create_timestamp.timestamp()) "
        "for r in inst.get_run_records()]\n"
        "print(json.dumps([o for o in out if o[3] >= since]))\n")
    out = subprocess.run([sys.executable, "-c", script, str(since)], env=env, cwd=home,
                         capture_output=True, text=True, timeout=300, check=True)
    runs: dict[str, Counter] = {}
    for job, status, _partition, _ in json.loads(out.stdout):
        runs.setdefault(job, Counter())[status] += 1
    return runs


def in_flight(home: Path, env: dict[str, str]) -> int:
    runs = count_runs(home, env, 0)
    return sum(c[s] for c in runs.values() for s in IN_FLIGHT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=16)
    ap.add_argument("--every", type=float, default=45.0, help="seconds between objects")
    ap.add_argument("--sensor-seconds", type=int, default=5)
    ap.add_argument("--history-minutes", type=int, default=10,
                    help="ANALYTICS_HISTORY_INTERVAL_MINUTES (production: 60), compressed")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="seconds the daemon runs before the first new object")
    ap.add_argument("--code", type=Path, help="a folder holding another analytics_platform")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    from analytics_platform.serve import Topology, install_instance, role_command

    tmp = Path(tempfile.mkdtemp(prefix="runs-"))
    data, home = tmp / "data", tmp / "dagster_home"
    now = datetime.now(UTC)
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data), "DAGSTER_HOME": str(home),
           "ANALYTICS_START_DATE": (now - timedelta(days=2)).date().isoformat(),
           "ANALYTICS_SENSOR_INTERVAL_SECONDS": str(args.sensor_seconds),
           "ANALYTICS_HISTORY_INTERVAL_MINUTES": str(args.history_minutes),
           "ANALYTICS_SERVE_LOGS": "files"}
    env.pop("ANALYTICS_RAW_URL", None)
    env.pop("ANALYTICS_LAKE_URL", None)
    if args.code:
        env["PYTHONPATH"] = str(args.code.resolve())
    os.environ.update({k: env[k] for k in ("ANALYTICS_DATA_DIR", "DAGSTER_HOME",
                                           "ANALYTICS_START_DATE")})
    raw = str(data / "raw")
    rng = random.Random(17)

    # 1. four hours of objects, backfilled before the daemon starts (what `make demo` does)
    this_hour = floor_hour(now)
    for h in range(3, -1, -1):
        hour = this_hour - timedelta(hours=h)
        for i in range(3):
            at = min(hour + timedelta(minutes=3 * i, seconds=5), now - timedelta(seconds=5))
            drop(raw, rng, at)
    topology = Topology(code_server_port=free_port(), dagster_home=home)
    install_instance(topology)
    subprocess.run([CLI, "backfill", "--from", str((this_hour - timedelta(hours=3)).date()),
                    "--to", str(this_hour.date())], env=env, cwd=tmp, check=True,
                   capture_output=True, timeout=900)
    logs = tmp / "logs"
    logs.mkdir()
    procs = []
    for role in ("code-server", "daemon"):
        out = (logs / f"{role}.log").open("w")
        procs.append(subprocess.Popen(role_command(role, topology), env=env, cwd=tmp,
                                      stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    try:
        started = time.time()
        time.sleep(args.settle)
        after_start = count_runs(home, env, started)

        # 2. a steady stream of objects
        steady = time.time()
        for _ in range(args.objects):
            t0 = time.time()
            drop(raw, rng, datetime.now(UTC))
            time.sleep(max(0.0, args.every - (time.time() - t0)))
        deadline = time.time() + 900
        while in_flight(home, env) and time.time() < deadline:
            time.sleep(5)
        time.sleep(3 * args.sensor_seconds)  # a last tick of each sensor
        while in_flight(home, env) and time.time() < deadline:
            time.sleep(5)
        runs = count_runs(home, env, steady)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    total = {job: sum(c.values()) for job, c in runs.items()}
    n = sum(total.values())
    print(json.dumps({
        "code": str(args.code or ROOT), "objects": args.objects, "every_s": args.every,
        "sensor_s": args.sensor_seconds, "history_minutes": args.history_minutes,
        "runs_in_first_settle_s_after_backfill": {j: sum(c.values())
                                                  for j, c in after_start.items()},
        "runs_by_job": total, "statuses": {j: dict(c) for j, c in runs.items()},
        "runs": n, "runs_per_object": round(n / args.objects, 2),
        "tmp": str(tmp),
    }, indent=1))
    if not args.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
