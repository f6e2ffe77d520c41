"""`analytics-platform serve` on SQLite, for real: the six processes come up (URLs printed once
they answer), a raw object reaches the warehouse through the sensor and a run launched by the
code server, a child that dies is restarted, and SIGTERM leaves no process behind."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from analytics_platform.serve import Topology, instance_config, workspace_config
from analytics_platform_tests.topology import (
    CLI,
    ROOT,
    base_env,
    expected_event_ids,
    free_port,
    processes_with,
    simulate_one_hour,
    start,
    stop,
    tail,
    wait_for,
    warehouse_events,
)

pytestmark = pytest.mark.slow


def test_instance_config_is_sqlite_without_postgres_and_postgres_with_it() -> None:
    template = ROOT / "deploy" / "dagster.yaml"
    local = instance_config(template, postgres=False)
    assert "storage" not in local  # Dagster's SQLite under $DAGSTER_HOME
    prod = instance_config(template, postgres=True)
    db = prod["storage"]["postgres"]["postgres_db"]
    # every connection setting comes from the environment, none is written in the file
    assert db == {"hostname": {"env": "DAGSTER_POSTGRES_HOST"},
                  "port": {"env": "DAGSTER_POSTGRES_PORT"},
                  "username": {"env": "DAGSTER_POSTGRES_USER"},
                  "password": {"env": "DAGSTER_POSTGRES_PASSWORD"},
                  "db_name": {"env": "DAGSTER_POSTGRES_DB"},
                  "scheme": "postgresql+psycopg2"}
    for config in (local, prod):
        assert config["telemetry"] == {"enabled": False}
        assert config["run_monitoring"]["enabled"] is True
        assert config["run_retries"]["enabled"] is True
        coordinator = config["run_coordinator"]
        assert coordinator["class"] == "QueuedRunCoordinator"
        limits = {(x["key"], x["value"]): x["limit"]
                  for x in coordinator["config"]["tag_concurrency_limits"]}
        assert limits[("analytics/stage", "events")] <= coordinator["config"][
            "max_concurrent_runs"]


def test_the_ecs_config_is_the_production_config_plus_the_launcher() -> None:
    base = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    ecs = yaml.safe_load((ROOT / "deploy" / "dagster-ecs.yaml").read_text())
    assert {k: v for k, v in ecs.items() if k not in ("run_launcher", "run_coordinator")} == \
        {k: v for k, v in base.items() if k != "run_coordinator"}
    assert ecs["run_launcher"]["class"] == "EcsRunLauncher"
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        instance_config(ROOT / "deploy" / "dagster-ecs.yaml", postgres=False)


def test_with_ecs_runs_serve_also_brings_their_lake_to_this_warehouse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs' tasks publish nothing here (analytics_platform/follow.py): `serve` adds the
    role that does, and refuses ECS runs without a lake in S3 for them to share."""
    from analytics_platform.serve import FOLLOWER, ROLES, role_command, roles_to_run

    monkeypatch.delenv("ANALYTICS_RUN_LAUNCHER", raising=False)
    assert roles_to_run() == ROLES
    monkeypatch.setenv("ANALYTICS_RUN_LAUNCHER", "ecs")
    monkeypatch.delenv("ANALYTICS_LAKE_URL", raising=False)
    with pytest.raises(ValueError, match="needs ANALYTICS_LAKE_URL"):
        roles_to_run()
    monkeypatch.setenv("ANALYTICS_LAKE_URL", "s3://bucket/lake")
    assert roles_to_run() == (*ROLES, FOLLOWER)
    assert role_command(FOLLOWER, Topology())[1:] == ["lake-pull", "--follow"]


def test_workspace_points_at_the_grpc_server() -> None:
    t = Topology(code_server_host="code.internal", code_server_port=4100,
                 dagster_home=Path("/nowhere"))
    assert workspace_config(t) == {"load_from": [{"grpc_server": {
        "host": "code.internal", "port": 4100, "location_name": "analytics_platform"}}]}


def test_serve_end_to_end_then_sigterm_leaves_nothing(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    data = tmp_path / "data"
    simulate_one_hour(env)
    expected = expected_event_ids(data / "raw")
    assert len(expected) > 500
    ports = {"--port": free_port(), "--dashboard-port": free_port(),
             "--collector-port": free_port(), "--api-port": free_port(),
             "--code-server-port": free_port()}
    out = tmp_path / "serve.out"
    serve = start([CLI, "serve", *[str(x) for kv in ports.items() for x in kv]], env, out)
    try:
        wait_for("every server to answer", lambda: "All servers answer" in out.read_text(),
                 timeout=240)
        text = out.read_text()
        # each URL once, after its server answered; the children's chatter is in their logs
        for port in (ports["--port"], ports["--dashboard-port"], ports["--collector-port"],
                     ports["--api-port"]):
            assert text.count(f"http://127.0.0.1:{port}") == 1, text
        assert len(text.splitlines()) < 20, text
        logs = data / "logs"
        assert {"code-server.log", "daemon.log", "webserver.log", "dashboard.log",
                "collector.log", "api.log"} <= {p.name for p in logs.iterdir()}
        assert (tmp_path / "dagster_home" / "dagster.yaml").read_text().startswith(
            "# Written by `analytics-platform serve`")

        # the raw objects reach the warehouse: the sensor, runs in the code server's processes
        def complete() -> bool:
            got = warehouse_events(data)
            return got is not None and got[1] >= expected

        wait_for("the simulated hour in the warehouse", complete, timeout=300, every=1)
        rows, ids = warehouse_events(data)
        assert ids == expected and rows == len(expected)  # every event, once

        # a child that dies is restarted and answers again
        import psutil

        children = psutil.Process(serve.pid).children()
        collector = next(p for p in children if "collect" in " ".join(p.cmdline()))
        collector.kill()
        wait_for("the collector's restart",
                 lambda: "collector   exited" in out.read_text() and _answers(
                     f"http://127.0.0.1:{ports['--collector-port']}/healthz"), timeout=60)
        family = [p.pid for p in psutil.Process(serve.pid).children(recursive=True)]
        assert len(family) >= 6
        # the image's HEALTHCHECK: every role answers
        health = subprocess.run([CLI, "serve", "--health-check"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        serve.send_signal(signal.SIGTERM)  # to serve alone: it stops its children itself
        try:
            code = serve.wait(timeout=60)
        finally:
            stop(serve, signal.SIGKILL)
    assert code == 0, tail(out)
    health = subprocess.run([CLI, "serve", "--health-check"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert health.returncode == 1 and "not answering" in health.stderr
    assert "stopped" in out.read_text()
    marker = str(tmp_path)
    assert processes_with(marker) == [], (
        "left behind: " + ", ".join(str(p) for p in processes_with(marker)))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
