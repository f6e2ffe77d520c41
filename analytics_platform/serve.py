"""The production topology on one machine, or one role of it in a container (docs/DEPLOY.md).

Five processes, as Dagster documents a production deployment: the code location served by a gRPC
code server (``dagster code-server start``), ``dagster-daemon`` and ``dagster-webserver`` loading
it through a workspace file that points at that server, plus the dashboard and the collector.
:class:`Supervisor` runs them as children, each in its own process group with its output in
``$ANALYTICS_DATA_DIR/logs/<role>.log``: a child that dies is logged and restarted with backoff,
a URL is printed once its server answers, SIGTERM stops every group (no orphan: a run process is
in its code server's group). ``serve --only ROLE`` instead becomes that one role's process
(``exec``), for a container whose orchestrator does the supervising.

The Dagster instance is ``deploy/dagster.yaml`` (or ``$DAGSTER_INSTANCE_CONFIG``), installed as
``$DAGSTER_HOME/dagster.yaml`` by :func:`install_instance`: PostgreSQL when
``DAGSTER_POSTGRES_HOST`` is set, SQLite under ``$DAGSTER_HOME`` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from analytics_platform import settings

ROLES = ("code-server", "daemon", "webserver", "dashboard", "collector", "api")
# With ANALYTICS_RUN_LAUNCHER=ecs, one more: the runs' lake brought to the machine's warehouse
# (analytics_platform/follow.py). It answers nothing: running is all it can show.
FOLLOWER = "lake-pull"


def roles_to_run() -> tuple[str, ...]:
    """What ``serve`` starts here: every role, and :data:`FOLLOWER` when the runs are ECS tasks
    (their warehouse is not this machine's)."""
    if settings.run_launcher() != "ecs":
        return ROLES
    if not settings.lake_url():
        raise ValueError("ANALYTICS_RUN_LAUNCHER=ecs needs ANALYTICS_LAKE_URL (s3://bucket/lake): "
                         "each run is a task of its own, and they share the lake through S3")
    return (*ROLES, FOLLOWER)
# Stop order: the daemon first (no new run is launched while the rest stops), the code server
# (parent of the run processes) last.
STOP_ORDER = ("daemon", "webserver", "dashboard", "collector", "api", "code-server")
NEEDS_CODE_SERVER = ("daemon", "webserver")
LOCATION_NAME = "analytics_platform"  # as workspace.yaml and pyproject.toml name it
DEFINITIONS_MODULE = "analytics_platform.definitions"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_CONFIG = ROOT / "deploy" / "dagster.yaml"  # a checkout; the image sets the env
POSTGRES_ENV = ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_PORT", "DAGSTER_POSTGRES_USER",
                "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_DB")
ECS_LAUNCHER = "EcsRunLauncher"
HEADER = "# Written by `analytics-platform serve` from {source}; edit that file, not this one.\n"


@dataclass(frozen=True)
class Topology:
    """Where each role listens, and where the others find the code server."""

    host: str = "127.0.0.1"  # bind address of every server (0.0.0.0 in a container)
    webserver_port: int = 3000
    dashboard_port: int = 8501
    collector_port: int = 8000
    api_port: int = 8010
    code_server_port: int = 4000
    code_server_host: str = "127.0.0.1"  # how the webserver and daemon reach the code server
    dagster_home: Path = field(default_factory=settings.dagster_home)

    @property
    def probe_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def workspace(self) -> Path:
        return self.dagster_home / "workspace.yaml"

    def url(self, role: str) -> str | None:
        port = {"webserver": self.webserver_port, "dashboard": self.dashboard_port,
                "collector": self.collector_port, "api": self.api_port}.get(role)
        return f"http://{self.probe_host}:{port}" if port else None


# --- the Dagster instance ------------------------------------------------------------------------

def instance_config(template: Path, postgres: bool,
                    network: dict[str, list[str]] | None = None,
                    capacity_provider: str | None = None) -> dict[str, Any]:
    """The instance config ``template`` describes, for this environment.

    - Without PostgreSQL (``postgres`` False: no ``DAGSTER_POSTGRES_HOST``), the ``storage``
      section goes and Dagster keeps its run history in SQLite under ``$DAGSTER_HOME`` (one
      small machine), its event log written by ``settings.SQLITE_EVENT_LOG_STORAGE`` (a ranged
      step's records in batches) unless the template names its own storages. The ECS run
      launcher cannot work that way (a run task could not reach that file), so that is an error.
    - With the ECS run launcher, ``network`` (``ANALYTICS_ECS_SUBNETS`` and
      ``ANALYTICS_ECS_SECURITY_GROUPS``) becomes the tasks' network configuration, and
      ``capacity_provider`` (``FARGATE_SPOT``) their capacity: lists, which Dagster's config
      cannot take from the environment itself.
    """
    try:
        config = yaml.safe_load(Path(template).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read the Dagster instance config {template}: {e}") from e
    launcher = config.get("run_launcher") or {}
    ecs = launcher.get("class") == ECS_LAUNCHER
    if not postgres:
        if ecs:
            raise ValueError(f"{template} launches runs on ECS: it needs PostgreSQL "
                             "(set DAGSTER_POSTGRES_HOST and the other DAGSTER_POSTGRES_*)")
        config.pop("storage", None)
        if not {"run_storage", "event_log_storage", "schedule_storage"} & config.keys():
            config["event_log_storage"] = dict(settings.SQLITE_EVENT_LOG_STORAGE)
    if ecs:
        kwargs = launcher["config"].setdefault("run_task_kwargs", {})
        if network:
            vpc: dict[str, Any] = {"subnets": network["subnets"], "assignPublicIp": "ENABLED"}
            if network.get("security_groups"):
                vpc["securityGroups"] = network["security_groups"]
            kwargs["networkConfiguration"] = {"awsvpcConfiguration": vpc}
        if capacity_provider:
            kwargs.pop("launchType", None)
            kwargs["capacityProviderStrategy"] = [{"capacityProvider": capacity_provider,
                                                   "weight": 1}]
    return config


def template_path(explicit: Path | None = None) -> Path:
    """The instance config to install: ``explicit``, else ``$DAGSTER_INSTANCE_CONFIG``, else the
    checkout's ``deploy/dagster.yaml``; its ``dagster-ecs.yaml`` sibling when
    ``ANALYTICS_RUN_LAUNCHER=ecs``."""
    path = Path(explicit or os.environ.get("DAGSTER_INSTANCE_CONFIG") or DEFAULT_INSTANCE_CONFIG)
    if settings.run_launcher() == "ecs" and path.name == "dagster.yaml":
        path = path.with_name("dagster-ecs.yaml")
    return path


def workspace_config(topology: Topology) -> dict[str, Any]:
    """The workspace file of the webserver and the daemon: the code location is the gRPC server
    (they never import the project's code themselves)."""
    return {"load_from": [{"grpc_server": {"host": topology.code_server_host,
                                           "port": topology.code_server_port,
                                           "location_name": LOCATION_NAME}}]}


def install_instance(topology: Topology, template: Path | None = None) -> str:
    """Write ``$DAGSTER_HOME/dagster.yaml`` and ``workspace.yaml``; return the storage used."""
    template = template_path(template)
    postgres = bool(os.environ.get("DAGSTER_POSTGRES_HOST"))
    if postgres:
        os.environ.setdefault("DAGSTER_POSTGRES_PORT", "5432")
    config = instance_config(template, postgres, settings.ecs_network(),
                             settings.ecs_capacity_provider())
    home = topology.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(HEADER.format(source=template)
                                       + yaml.safe_dump(config, sort_keys=False))
    topology.workspace.write_text(yaml.safe_dump(workspace_config(topology), sort_keys=False))
    os.environ["DAGSTER_HOME"] = str(home)
    if "storage" in config:
        return (f"PostgreSQL {os.environ['DAGSTER_POSTGRES_HOST']}:"
                f"{os.environ['DAGSTER_POSTGRES_PORT']}/{os.environ.get('DAGSTER_POSTGRES_DB')}")
    return f"SQLite in {home}"


def migrate_instance() -> None:
    """Create or upgrade the instance's storage once, before the processes that share it start:
    a daemon and a webserver creating a fresh SQLite (or PostgreSQL) schema at the same moment
    leave it with two migration heads, and neither can open it again."""
    out = subprocess.run([_bin("dagster"), "instance", "migrate"], capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        raise ValueError("`dagster instance migrate` failed:\n"
                         + "\n".join((out.stdout + out.stderr).splitlines()[-20:]))


# --- the roles -----------------------------------------------------------------------------------

def _bin(name: str) -> str:
    """This environment's command (not PATH's)."""
    return str(Path(sys.executable).with_name(name))


def role_command(role: str, t: Topology) -> list[str]:
    """The command line of one role."""
    if role == "code-server":
        # The proxy server: it loads the code in a subprocess of its own and reloads it on request
        # (the UI's "Reload"); run processes are its children.
        return [_bin("dagster"), "code-server", "start", "-m", DEFINITIONS_MODULE,
                "--location-name", LOCATION_NAME, "-h", t.host, "-p", str(t.code_server_port),
                "--log-level", "warning"]
    if role == "daemon":
        return [_bin("dagster-daemon"), "run", "-w", str(t.workspace), "--log-level", "warning"]
    if role == "webserver":
        return [_bin("dagster-webserver"), "-w", str(t.workspace), "-h", t.host, "-p",
                str(t.webserver_port), "--log-level", "warning", "--dagster-log-level",
                "warning", "--suppress-warnings"]
    if role == "dashboard":
        from analytics_platform.cli import streamlit_command

        return streamlit_command(Path(__file__).resolve().parent / "dashboard" / "app.py",
                                 t.host, t.dashboard_port)
    if role == "collector":
        return [_bin("analytics-platform"), "collect", "--host", t.host, "--port",
                str(t.collector_port)]
    if role == "api":
        return [_bin("analytics-platform"), "api", "--host", t.host, "--port", str(t.api_port)]
    if role == FOLLOWER:
        return [_bin("analytics-platform"), "lake-pull", "--follow"]
    raise ValueError(f"unknown role {role!r}: one of {', '.join((*ROLES, FOLLOWER))}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _grpc_serving(host: str, port: int) -> bool:
    """The standard gRPC health check, which Dagster's code server answers."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=2)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def probe(role: str, t: Topology) -> bool:
    """Whether the role answers: HTTP health endpoints, the gRPC health check of the code
    server, the daemon's heartbeats (``dagster-daemon liveness-check``)."""
    h = t.probe_host
    if role == "webserver":
        return _http_ok(f"http://{h}:{t.webserver_port}/server_info")
    if role == "dashboard":
        return _http_ok(f"http://{h}:{t.dashboard_port}/_stcore/health")
    if role == "collector":
        return _http_ok(f"http://{h}:{t.collector_port}/healthz")
    if role == "api":
        return _http_ok(f"http://{h}:{t.api_port}/healthz")
    if role == "code-server":
        return _grpc_serving(h, t.code_server_port)
    if role == FOLLOWER:
        return True  # no port: the supervisor's restarts are its health
    if role == "daemon":
        try:
            return subprocess.run([_bin("dagster-daemon"), "liveness-check"],
                                  capture_output=True, timeout=60).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    raise ValueError(f"unknown role {role!r}")


# --- one role, in a container --------------------------------------------------------------------

ROLE_FILE = "serve-roles.json"  # what `serve --health-check` probes


def write_roles(t: Topology, roles: Iterable[str]) -> None:
    (t.dagster_home / ROLE_FILE).write_text(json.dumps({
        "roles": list(roles), "host": t.probe_host, "webserver_port": t.webserver_port,
        "dashboard_port": t.dashboard_port, "collector_port": t.collector_port,
        "api_port": t.api_port, "code_server_port": t.code_server_port}))


def health_check(home: Path | None = None) -> list[str]:
    """The roles started by ``serve`` under ``$DAGSTER_HOME`` that do not answer (the image's
    HEALTHCHECK: healthy when this is empty)."""
    home = Path(home or settings.dagster_home())
    try:
        spec = json.loads((home / ROLE_FILE).read_text())
    except (OSError, ValueError):
        return ["serve (not started)"]
    t = Topology(host=spec["host"], webserver_port=spec["webserver_port"],
                 dashboard_port=spec["dashboard_port"], collector_port=spec["collector_port"],
                 api_port=spec.get("api_port", Topology.api_port),
                 code_server_port=spec["code_server_port"], code_server_host=spec["host"],
                 dagster_home=home)
    return [r for r in spec["roles"] if not probe(r, t)]


def exec_role(role: str, t: Topology) -> None:
    """Become the role's process: signals reach it directly, its output is the container's."""
    cmd = role_command(role, t)
    write_roles(t, [role])
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


# --- the supervisor ------------------------------------------------------------------------------

@dataclass
class Child:
    role: str
    command: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # consecutive quick exits
    restart_at: float | None = None
    ready: bool = False
    next_probe: float = 0.0
    pgids: set[int] = field(default_factory=set)  # every group it ever had (survivors too)
    log: TextIO | None = None


class Supervisor:
    """Start the roles, restart the ones that die, stop them all on SIGTERM or Ctrl-C.

    The terminal gets one line per event (started, ready with its URL, exited, restarting,
    stopped); the children's own output goes to ``logs/<role>.log`` under the data folder.
    """

    # A child that ran less than this before dying counts as a quick failure: the next restart
    # waits 1, 2, 4 … 60 s; one that ran longer is restarted at once.
    HEALTHY_SECONDS = 60.0
    MAX_BACKOFF = 60.0
    STOP_GRACE = 20.0  # the collector flushes its spool; runs get their SIGTERM
    # The daemon and the webserver start once the code server answers (else their first
    # workspace load fails and they log a gRPC error until the next reload), at most this late.
    CODE_WAIT = 180.0

    def __init__(self, roles: Iterable[str], topology: Topology, log_dir: Path | None,
                 echo: Callable[[str], None] = print,
                 on_ready: Callable[[str], None] | None = None) -> None:
        """``log_dir`` None: the children write to this process's own output (a container's
        log, ``ANALYTICS_SERVE_LOGS=stdout``)."""
        self.topology = topology
        self.children = [Child(r, role_command(r, topology)) for r in roles]
        self.log_dir = log_dir
        self.echo = echo
        self.on_ready = on_ready
        self._stopping = False

    def _say(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        self.echo(line)
        if self.log_dir is not None:
            with (self.log_dir / "serve.log").open("a") as f:
                f.write(line + "\n")

    def _start(self, c: Child) -> None:
        if c.log is None and self.log_dir is not None:
            c.log = (self.log_dir / f"{c.role}.log").open("a", buffering=1)
        if c.log is not None:
            c.log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: "
                        f"{' '.join(c.command)}\n")
        sys.stdout.flush()
        c.proc = subprocess.Popen(c.command, stdout=c.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        c.pgids.add(c.proc.pid)
        c.started, c.ready, c.restart_at = time.monotonic(), False, None
        c.next_probe = c.started + 1.0
        self._say(f"{c.role:<11} started (pid {c.proc.pid})")

    def _check(self, c: Child, now: float) -> None:
        if c.proc is None:
            if c.restart_at is not None and now >= c.restart_at:
                self._start(c)
            return
        code = c.proc.poll()
        if code is None:
            return
        ran = now - c.started
        c.failures = c.failures + 1 if ran < self.HEALTHY_SECONDS else 0
        delay = 0.0 if not c.failures else min(self.MAX_BACKOFF, 2.0 ** (c.failures - 1))
        where = f" (log: {self.log_dir / (c.role + '.log')})" if self.log_dir else ""
        self._say(f"{c.role:<11} exited with code {code} after {ran:.0f} s; restarting in "
                  f"{delay:.0f} s{where}")
        c.proc, c.restart_at = None, now + delay

    def _probe(self, now: float) -> None:
        for c in self.children:
            if c.proc is None or c.ready or now < c.next_probe:
                continue
            # the daemon's check is a process of its own (about 2 s of CPU): not every second
            c.next_probe = now + (5.0 if c.role == "daemon" else 1.0)
            if probe(c.role, self.topology):
                c.ready = True
                url = self.topology.url(c.role)
                self._say(f"{c.role:<11} ready" + (f": {url}" if url else ""))
                if self.on_ready:
                    self.on_ready(c.role)

    def _has(self, role: str) -> bool:
        return any(c.role == role for c in self.children)

    def _ready(self, role: str) -> bool:
        return any(c.role == role and c.ready for c in self.children)

    def all_ready(self) -> bool:
        return all(c.ready for c in self.children)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Supervise until SIGTERM, SIGINT or ``until()``; then stop everything."""
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            began = time.monotonic()
            waiting = [c for c in self.children if c.role in NEEDS_CODE_SERVER]
            for c in self.children:
                if c not in waiting or not self._has("code-server"):
                    self._start(c)
            while not self._stopping and not (until and until()):
                now = time.monotonic()
                if waiting and (self._ready("code-server") or now - began > self.CODE_WAIT):
                    for c in waiting:
                        self._start(c)
                    waiting = []
                for c in self.children:
                    self._check(c, now)
                # readiness probes: every second until all answer, then never again
                if not self.all_ready():
                    self._probe(now)
                time.sleep(0.2)
        finally:
            self.stop()
            for s, h in previous.items():
                signal.signal(s, h)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        """SIGTERM to every process group, then SIGKILL to what is left after the grace."""
        self._stopping = True
        by_role = {c.role: c for c in self.children}
        ordered = [by_role[r] for r in STOP_ORDER if r in by_role]
        for c in ordered:
            for pgid in c.pgids:
                _killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.STOP_GRACE
        for c in ordered:
            while any(_group_alive(g) for g in c.pgids) and time.monotonic() < deadline:
                if c.proc is not None:
                    c.proc.poll()  # reap the leader so its group can empty
                time.sleep(0.1)
        for c in ordered:
            for pgid in c.pgids:
                if _group_alive(pgid):
                    self._say(f"{c.role:<11} still running after {self.STOP_GRACE:.0f} s: "
                              "killed")
                    _killpg(pgid, signal.SIGKILL)
            if c.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):  # killed above
                    c.proc.wait(timeout=5)
            if c.log is not None:
                c.log.close()
                c.log = None
        if ordered:
            self._say("stopped")
        self.children = []


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state, ppid, pgrp
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
