"""What the API's tests share: a small warehouse built from simulated traffic (once per test
session, whichever worker asks first), the lake's Parquet files read with pandas (the oracle's
input, not the query layer), the API served by uvicorn on 127.0.0.1 in a thread, and a plain
HTTP client."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from analytics_platform.backfill import run_backfill
from analytics_platform.lake import open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.storage import Lake, publish_warehouse
from analytics_platform_tests.test_collector import free_port

DAY1, DAY3 = date(2026, 3, 2), date(2026, 3, 4)
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # the server's clock in the tests


@cache
def warehouse_dir() -> Path:
    """Three simulated days (300 visitors a day), backfilled: ``<tmp>/data``, shared read-only
    by the API tests. Built once per test session: under pytest-xdist the first worker to ask
    builds it in the session's shared folder (conftest.py's ``shared_across_workers``), the
    others wait on its lock file, then read it; a backfill of these days took 15-58 s of CPU,
    once per worker and file before."""
    shared = os.environ.get("TESTS_SHARED_DIR")
    if shared is None:  # outside pytest
        return _backfill(Path(tempfile.mkdtemp(prefix="api-test-")) / "data")
    root = Path(shared) / "apidata"
    root.mkdir(exist_ok=True)
    data, done = root / "data", root / "built"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not done.exists():
            shutil.rmtree(data, ignore_errors=True)  # what a worker that failed left
            _backfill(data)
            done.touch()
    return data


def build_warehouse(data: Path) -> Path:
    """The warehouse of :func:`warehouse_dir` in ``data``, a folder of its own for a test that
    writes into it (as the dashboard's Realtime test does): a copy of its raw objects and lake
    files, and the warehouse published from the copy (as the backfill's last run published it),
    so that its views read the copy's files."""
    # not the warehouse files and their snapshots (they name the shared folder's files), nor
    # DuckDB's spill folder (a reader of the shared folder may be using it)
    shutil.copytree(warehouse_dir(), data, ignore=shutil.ignore_patterns(
        ".duckdb_tmp", "_published", ".warehouse", ".warehouse-*", "warehouse.duckdb"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        publish_warehouse(Lake(data, remote_url=""))
    return data


def _backfill(data: Path) -> Path:
    """The three simulated days, backfilled through Dagster into ``data``."""
    write_traffic(generate(SimConfig(days=3, visitors_per_day=300, start=DAY1, seed=3)),
                  open_raw_lake(data / "raw"), progress=False)
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        assert run_backfill(DAY1, DAY3, instance=instance, log=lambda _: None).success
    return data


def lake_table(data: Path, table: str) -> pd.DataFrame:
    """Every Parquet file of a lake table, concatenated (no DuckDB, no view)."""
    files = sorted((data / "lake" / table).glob("*/*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    for col in ("session_date", "date"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col]).dt.date
    return df


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on uvicorn, 127.0.0.1, a free port, in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post(url: str, body: Any, key: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A JSON POST with urllib: status, body, headers."""
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)
