"""Helpers of the production-topology tests (test_production.py, test_serve.py): processes started
from this environment's commands, a simulated hour of traffic, the warehouse against the oracle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform_tests import oracle as o

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "analytics-platform")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """``check()``'s first truthy value, polled; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A fresh data folder and Dagster home; the raw-lake sensor looks two days back (the
    simulated hour is yesterday's noon), nothing of the caller's ANALYTICS_* leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANALYTICS_", "DAGSTER_", "AWS_ENDPOINT"))}
    env.update(ANALYTICS_DATA_DIR=str(tmp / "data"), DAGSTER_HOME=str(tmp / "dagster_home"),
               ANALYTICS_SENSOR_LOOKBACK_HOURS="48", ANALYTICS_SENSOR_INTERVAL_SECONDS="5",
               ANALYTICS_LATE_ARRIVAL_HOURS="4")
    env.update(extra)
    return env


def simulate_one_hour(env: dict[str, str], visitors: int = 150) -> datetime:
    """Yesterday's traffic in its noon hour (``simulate --one-hour``); returns that day."""
    day = datetime.now(UTC).date() - timedelta(days=1)
    subprocess.run([CLI, "simulate", "--days", "1", "--start", day.isoformat(), "--one-hour",
                    "--visitors-per-day", str(visitors), "--quiet"], env=env, check=True,
                   capture_output=True, timeout=300)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def expected_event_ids(raw: Path) -> set[str]:
    """The events the contract keeps from every raw object, computed by the oracle."""
    orc = o.Oracle.for_simulation()
    orc.read_lake(raw)
    return set(orc.events)


def warehouse_events(data: Path) -> tuple[int, set[str]] | None:
    """(rows, distinct event ids) of the published `events` view, None before it exists."""
    try:
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            rows = con.execute("SELECT event_id FROM events").fetchall()
    except duckdb.Error:
        return None
    return len(rows), {r[0] for r in rows}


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own group, its output in ``log``."""
    out = log.open("ab")
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group; SIGKILL it if it has not gone after ``timeout``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (a test's unique data folder): what is
    left of a topology, whoever its parent is now."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in v for v in p.environ().values()):
                found.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} missing)"


def backfill_today(data: Path, first_day: date | None = None) -> None:
    """Materialise today's raw hours (from ``first_day``'s, when given) in process (an ephemeral
    Dagster instance) into the lake and warehouse under ``data``: what the browser tests check
    their visit against."""
    import dagster as dg
    import pytest

    from analytics_platform.backfill import run_backfill

    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)  # the raw lake is data/raw
        today = datetime.now(UTC).date()
        assert run_backfill(first_day or today, today, instance=instance,
                            log=lambda _: None).success
