"""S3 requests of one run of each job, counted on the wire (issue 17: the cost model's request
lines rest on this).

    python bench/s3_requests.py [--days 3] [--buffer-seconds 180]

A moto S3 server on 127.0.0.1 counts every HTTP request it answers (GET, HEAD, PUT/POST, LIST,
DELETE, by prefix). The raw lake and the Parquet lake are in that bucket, as on AWS
(``ANALYTICS_RAW_URL`` and ``ANALYTICS_LAKE_URL``). ``--days`` days of Firehose objects, one
every 180 s of about 70 events each as the ingest handler stores them (a 1M-events-a-month
site), are backfilled, then a
new Firehose-shaped object lands in the last hour and, as the automation does, one ``events`` run
of that hour, one ``daily_job`` run of its day and one ``history_job`` run follow, each in its own
process, counted one by one:

- ``machine``: the pipeline machine, whose lake cache (``ANALYTICS_DATA_DIR``) persists between
  runs (the data volume);
- ``task``: an ECS run task, which starts with an empty cache (the task's own disk).

Prints one table per setting, and the lake files (PUTs under ``lake/``) each run writes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from runs import drop, free_port  # noqa: E402

CLI = str(Path(sys.executable).with_name("analytics-platform"))
BUCKET = "analytics-bench"


class Counting:
    """WSGI middleware: (kind, top-level prefix) of every S3 request the server answers."""

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter = Counter()

    def reset(self) -> Counter:
        with self.lock:
            out, self.counts = self.counts, Counter()
        return out

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        parts = path.split("/", 2)
        if (method == "GET" and len(parts) < 2) or (len(parts) == 2 and not parts[1]):
            kind = "LIST" if method == "GET" else method
            prefix = (query.get("prefix", [""])[0].split("/", 1)[0] or "-")
        else:
            kind = {"POST": "PUT", "PUT": "PUT"}.get(method, method)
            prefix = parts[1].split("/", 1)[0] if len(parts) > 1 else "-"
        with self.lock:
            self.counts[(kind, prefix)] += 1
        return self.app(environ, start_response)


def start_server() -> tuple[Counting, str]:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    counting = Counting(DomainDispatcherApplication(create_backend_app))
    port = free_port()
    server = make_server("127.0.0.1", port, counting, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return counting, f"http://127.0.0.1:{port}"


RUN = """
import sys, dagster as dg
from analytics_platform.definitions import defs
job, partition = sys.argv[1], sys.argv[2] or None
with dg.DagsterInstance.get() as instance:
    result = defs().resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=True)
    assert result.success
"""


def sh(args: list[str], env: dict[str, str]) -> None:
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")


def run_job(env: dict[str, str], job: str, partition: str | None) -> None:
    sh([sys.executable, "-c", RUN, job, partition or ""], env)


def table(title: str, rows: dict[str, Counter]) -> str:
    kinds = ["GET", "HEAD", "PUT", "LIST", "DELETE"]
    out = [title, f"  {'run':<26}" + "".join(f"{k:>8}" for k in kinds) + f"{'lake PUTs':>11}"]
    for name, c in rows.items():
        totals = Counter()
        for (kind, _), n in c.items():
            totals[kind] += n
        lake_puts = c[("PUT", "lake")]
        out.append(f"  {name:<26}" + "".join(f"{totals[k]:>8}" for k in kinds)
                   + f"{lake_puts:>11}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--buffer-seconds", type=int, default=180,
                    help="one Firehose object every this many seconds")
    ap.add_argument("--json", type=Path, help="also write the counts here")
    args = ap.parse_args()

    counting, endpoint = start_server()
    tmp = Path(tempfile.mkdtemp(prefix="s3-requests-"))
    base = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "ANALYTICS_RAW_URL": f"s3://{BUCKET}/raw", "ANALYTICS_LAKE_URL": f"s3://{BUCKET}/lake"}
    import boto3

    os.environ.update(base)  # this process writes the raw objects
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket=BUCKET)
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    machine = {**base, "ANALYTICS_DATA_DIR": str(tmp / "machine"),
               "DAGSTER_HOME": str(tmp / "machine" / "dagster_home"),
               "ANALYTICS_START_DATE": str(first)}
    Path(machine["DAGSTER_HOME"]).mkdir(parents=True)
    # Firehose's objects at 1M events a month: one every 180 s, ~70 events each (6 visits of
    # 2-6 requests of 3 events, as bench/runs.py writes them)
    rng = random.Random(42)
    for day in range(args.days):
        start = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=day)
        for n in range(24 * 3600 // args.buffer_seconds):
            drop(base["ANALYTICS_RAW_URL"], rng,
                 start + timedelta(seconds=n * args.buffer_seconds + 90))
    sh([CLI, "backfill", "--from", str(first), "--to", str(last)], machine)
    counting.reset()

    # a new object in the last hour of the last day, as Firehose writes one every 180 s
    hour = datetime(last.year, last.month, last.day, 23, tzinfo=UTC)
    drop(base["ANALYTICS_RAW_URL"], random.Random(7), hour + timedelta(minutes=40))
    counting.reset()
    runs = [("events_job", hour.strftime("%Y-%m-%d-%H:00")), ("daily_job", str(last)),
            ("history_job", None)]
    results: dict[str, dict[str, Counter]] = {}
    for setting in ("machine", "task"):
        rows: dict[str, Counter] = {}
        for job, partition in runs:
            env = machine
            if setting == "task":  # an empty cache and an ephemeral instance for every run
                fresh = tmp / f"task-{job}"
                env = {**machine, "ANALYTICS_DATA_DIR": str(fresh),
                       "DAGSTER_HOME": str(fresh / "dagster_home")}
                Path(env["DAGSTER_HOME"]).mkdir(parents=True)
            counting.reset()
            run_job(env, job, partition)
            rows[f"{job} {partition or ''}".strip()] = counting.reset()
        results[setting] = rows
        print(table(f"{setting}: S3 requests of one run "
                    f"({args.days} days, an object every {args.buffer_seconds} s)", rows))
        print()
    if args.json:
        args.json.write_text(json.dumps({s: {r: {f"{k}:{p}": n for (k, p), n in c.items()}
                                             for r, c in rows.items()}
                                         for s, rows in results.items()}, indent=1))


if __name__ == "__main__":
    main()
