"""The production topology on PostgreSQL, and runs launched as ECS tasks, for real.

- A PostgreSQL server (Debian's package, installed by scripts/ensure-postgres.sh) started on
  127.0.0.1 in a temporary folder; the code server, the daemon and the webserver as separate
  processes (`serve --only ROLE`, as in the image) with deploy/dagster.yaml. A raw object reaches
  the warehouse through the sensor; a run's process and the daemon are killed in the middle of a
  run, the daemon restarted: the dead run is marked failed and retried, and the warehouse holds
  every event once (against the oracle's reading of the raw objects).
- dagster-aws's EcsRunLauncher (deploy/dagster-ecs.yaml) against moto's ECS server: a run of each
  job becomes a RunTask with the code server's image, that run's command and the size its job's
  tags ask for, read back from moto.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from analytics_platform_tests.topology import (
    BIN,
    CLI,
    ROOT,
    base_env,
    expected_event_ids,
    free_port,
    simulate_one_hour,
    start,
    stop,
    tail,
    wait_for,
    warehouse_events,
)

pytestmark = pytest.mark.slow


# --- a real PostgreSQL server --------------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL server on 127.0.0.1 (password authentication), run as the `postgres` user
    when the tests run as root; yields the DAGSTER_POSTGRES_* of a fresh database."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL is not installed (scripts/ensure-postgres.sh installs it)")
    # not under pytest's temporary folder: that one is closed to other users
    folder = Path(tempfile.mkdtemp(prefix="analytics-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        import pwd

        ids = pwd.getpwnam(user)
        os.chown(folder, ids.pw_uid, ids.pw_gid)
    password = secrets.token_hex(12)
    (folder / "pw").write_text(password)
    if user:
        os.chown(folder / "pw", ids.pw_uid, ids.pw_gid)
    port = free_port()

    def run(*cmd: str) -> None:
        out = subprocess.run(list(cmd), user=user, cwd=folder, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr

    run(str(pg / "initdb"), "-D", str(folder / "data"), "-U", "dagster", "--pwfile",
        str(folder / "pw"), "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8")
    run(str(pg / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-o",
        f"-h 127.0.0.1 -p {port} -k {folder}", "start")
    try:
        db = "dagster"
        run(str(pg / "createdb"), "-h", str(folder), "-p", str(port), "-U", "dagster", db)
        yield {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(port),
               "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_PASSWORD": password,
               "DAGSTER_POSTGRES_DB": db, "_PG_SOCKET": str(folder), "_PG_BIN": str(pg)}
    finally:
        subprocess.run([str(pg / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w",
                        "stop"], user=user, cwd=folder, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


USER_DATA = ROOT / "infra" / "modules" / "pipeline" / "user_data.sh.tftpl"


def test_every_boot_leaves_postgresql_its_own_files() -> None:
    """The machine's boot script gives the data folder to the image's user on every boot
    (user_data.sh.tftpl's own_data); PostgreSQL's files in it must stay its own, or the server
    cannot start on the next machine (a Spot interruption, a new image): run it on a folder with
    a real cluster, as two boots would, then start the server."""
    pg = _pg_bin()
    if pg is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL and root (chown)")
    import pwd

    ids = pwd.getpwnam("postgres")
    own_data = re.search(r"^own_data\(\) \{.*?^\}$", USER_DATA.read_text(), re.S | re.M)
    assert own_data, "user_data.sh.tftpl defines own_data()"
    folder = Path(tempfile.mkdtemp(prefix="analytics-boot-"))  # the server's log and socket
    os.chown(folder, ids.pw_uid, ids.pw_gid)
    data = folder / "data"
    part = data / "lake" / "events" / "date=2026-11-24"
    part.mkdir(parents=True)
    (part / "part.parquet").write_bytes(b"PAR1")
    pgdata = data / "postgres"

    def boot() -> None:  # the script's own lines: ownership, then PGDATA's folder
        subprocess.run(["bash", "-euc", f'{own_data.group(0)}\nDATA="$1"\nown_data 10001:10001\n'
                        'install -d -o postgres -g postgres -m 700 "$DATA/postgres"', "boot",
                        str(data)], check=True, timeout=60)

    try:
        boot()
        subprocess.run([str(pg / "initdb"), "-D", str(pgdata), "-A", "trust"], user="postgres",
                       check=True, capture_output=True, timeout=120)
        boot()  # the next machine
        started = subprocess.run(
            [str(pg / "pg_ctl"), "-D", str(pgdata), "-l", str(folder / "log"), "-w", "-o",
             f"-h 127.0.0.1 -p {free_port()} -k {folder}", "start"],
            user="postgres", capture_output=True, text=True, timeout=120)
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        assert started.returncode == 0, started.stdout + started.stderr + log
        assert (pgdata / "PG_VERSION").stat().st_uid == ids.pw_uid
        assert (part / "part.parquet").stat().st_uid == 10001 and data.stat().st_uid == 10001
    finally:
        subprocess.run([str(pg / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
                       user="postgres", capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(pg: dict[str, str]) -> dict[str, str]:
    """The connection settings of a new, empty database on the server."""
    name = f"d{uuid.uuid4().hex[:10]}"
    subprocess.run([str(Path(pg["_PG_BIN"]) / "createdb"), "-h", "127.0.0.1", "-p",
                    pg["DAGSTER_POSTGRES_PORT"], "-U", "dagster", name], check=True,
                   env={**os.environ, "PGPASSWORD": pg["DAGSTER_POSTGRES_PASSWORD"]},
                   capture_output=True, timeout=60, user="postgres" if os.geteuid() == 0
                   else None)
    return {k: v for k, v in pg.items() if not k.startswith("_")} | {"DAGSTER_POSTGRES_DB": name}


def open_instance(env: dict[str, str]):  # -> dg.DagsterInstance, in this process
    import dagster as dg

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def role(name: str, env: dict[str, str], tmp: Path, *args: str) -> subprocess.Popen:
    return start([CLI, "serve", "--only", name, "--host", "127.0.0.1", *args], env,
                 tmp / f"{name}.log")


def run_pid(instance, run_id: str) -> int | None:
    """The pid of a run's process, from the engine event it logs when it starts."""
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event and event.event_type_value == "ENGINE_EVENT" and \
                "Started process for run" in (record.message or ""):
            pid = event.engine_event_data.metadata.get("pid")
            if pid is not None:
                return int(pid.value)
    return None


# --- the topology on PostgreSQL ------------------------------------------------------------------

def test_postgres_topology_survives_a_killed_run_and_daemon(
        postgres: dict[str, str], tmp_path: Path) -> None:
    import dagster as dg

    code_port = free_port()
    env = base_env(tmp_path, **fresh_database(postgres))
    data = tmp_path / "data"
    simulate_one_hour(env)
    expected = expected_event_ids(data / "raw")
    ports = ("--code-server-port", str(code_port))
    code = role("code-server", env, tmp_path, *ports)
    daemon = role("daemon", env, tmp_path, *ports)
    webserver = None
    procs = [code, daemon]
    try:
        instance = wait_for("the daemon to create the schema",
                            lambda: daemon_up(daemon, env), timeout=180)
        webserver_port = free_port()
        webserver = role("webserver", env, tmp_path, *ports, "--port", str(webserver_port))
        procs.append(webserver)
        # the dagster.yaml each role installed is the production one, on PostgreSQL
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

        # the sensor asks for the simulated hours; kill the first events run we catch started
        victim = wait_for("an events run in progress, with its pid",
                          lambda: _started_run(instance), timeout=240, every=0.1)
        run_id, pid = victim
        os.kill(pid, signal.SIGKILL)
        stop(daemon, signal.SIGKILL)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        daemon = role("daemon", env, tmp_path, *ports)
        procs.append(daemon)

        # the code server sees the dead process and fails the run; the restarted daemon retries
        failed = wait_for("the killed run marked failed", lambda: instance.get_run_by_id(
            run_id).status == dg.DagsterRunStatus.FAILURE, timeout=120)
        assert failed
        retry = wait_for("its retry", lambda: instance.get_runs(dg.RunsFilter(
            tags={"dagster/parent_run_id": run_id})), timeout=180)[0]
        assert retry.tags.get("dagster/partition") == instance.get_run_by_id(run_id).tags.get(
            "dagster/partition")

        def settled() -> bool:
            got = warehouse_events(data)
            runs = instance.get_runs(dg.RunsFilter(statuses=[
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.NOT_STARTED]))
            return got is not None and got[1] >= expected and not runs

        wait_for("every hour processed and no run left", settled, timeout=360, every=1)
        assert instance.get_run_by_id(retry.run_id).status == dg.DagsterRunStatus.SUCCESS
        rows, ids = warehouse_events(data)
        assert ids == expected and rows == len(expected)  # every event, exactly once
        # nothing of this ran under `dagster dev`
        assert not any("dagster dev" in p.read_text(errors="replace")
                       for p in tmp_path.glob("*.log"))
        instance.dispose()
    except BaseException:
        for log in ("code-server", "daemon", "webserver"):
            print(f"--- {log}.log\n{tail(tmp_path / f'{log}.log')}")
        raise
    finally:
        for p in reversed(procs):
            stop(p)


def daemon_up(daemon: subprocess.Popen, env: dict[str, str]):
    """The instance, once the daemon's `serve --only daemon` has migrated the schema and become
    `dagster-daemon` (opening it earlier would race the migration)."""
    import psutil

    assert daemon.poll() is None, "the daemon's serve exited"
    try:
        if not any("dagster-daemon" in part for part in psutil.Process(daemon.pid).cmdline()):
            return None
    except psutil.NoSuchProcess:
        return None
    return open_instance(env)


def _started_run(instance) -> tuple[str, int] | None:
    import dagster as dg

    for run in instance.get_runs(dg.RunsFilter(job_name="events_job",
                                               statuses=[dg.DagsterRunStatus.STARTED])):
        pid = run_pid(instance, run.run_id)
        if pid is not None:
            return run.run_id, pid
    return None


# --- ECS -----------------------------------------------------------------------------------------

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/analytics-platform:test"


def test_ecs_run_launcher_starts_a_sized_task_per_run(
        postgres: dict[str, str], moto_endpoint: str, tmp_path: Path) -> None:
    import dagster as dg

    from analytics_platform.defs.automation import (
        DAILY_RUN_TAGS,
        EVENTS_RUN_TAGS,
        HISTORY_RUN_TAGS,
    )

    ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name="us-east-1")
    cluster = f"analytics-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dagster-db-AbCdEf"
    # the run task definition, as infra/modules/pipeline declares it: image, role, environment,
    # the database password as a secret reference
    family = f"analytics-run-{uuid.uuid4().hex[:6]}"
    ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="512", memory="2048",
        taskRoleArn="arn:aws:iam::123456789012:role/analytics-run",
        executionRoleArn="arn:aws:iam::123456789012:role/analytics-exec",
        containerDefinitions=[{
            "name": "run", "image": IMAGE, "essential": True,
            "memory": 2048,  # moto's RunTask needs a container-level size
            "environment": [{"name": "ANALYTICS_LAKE_URL", "value": "s3://analytics-test/lake"},
                            {"name": "DAGSTER_POSTGRES_HOST", "value": "db.internal"}],
            "secrets": [{"name": "DAGSTER_POSTGRES_PASSWORD", "valueFrom": secret}]}])
    ec2 = boto3.client("ec2", endpoint_url=moto_endpoint, region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"]
               for i in (1, 2)]
    group = ec2.create_security_group(GroupName=family, Description="runs", VpcId=vpc)["GroupId"]
    code_port = free_port()
    env = base_env(
        tmp_path, **fresh_database(postgres),
        ANALYTICS_RUN_LAUNCHER="ecs",  # serve installs deploy/dagster-ecs.yaml
        ANALYTICS_ECS_TASK_DEFINITION=family,
        ANALYTICS_ECS_CLUSTER=cluster,
        ANALYTICS_ECS_SUBNETS=",".join(subnets), ANALYTICS_ECS_SECURITY_GROUPS=group,
        ANALYTICS_ECS_CAPACITY_PROVIDER="FARGATE_SPOT",
        ANALYTICS_RAW_URL="s3://analytics-test/raw", ANALYTICS_LAKE_URL="s3://analytics-test/lake",
        AWS_ENDPOINT_URL=moto_endpoint, AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="analytics-test")
    # one raw object an hour ago: the raw-lake sensor launches an `events` run of its hour (an
    # automation run, next to the runs launched by hand below)
    from analytics_platform.lake import open_raw_lake, partition_key

    arrived = datetime.now(UTC) - timedelta(hours=1)
    open_raw_lake("s3://analytics-test/raw", client=s3).write_records(
        arrived, gzip.compress(b"{}\n"), object_id="sensor-test")
    ports = ("--code-server-port", str(code_port))
    procs = [role("code-server", env, tmp_path, *ports), role("daemon", env, tmp_path, *ports)]
    try:
        instance = wait_for("the daemon to create the schema",
                            lambda: daemon_up(procs[1], env), timeout=180)
        workspace = Path(env["DAGSTER_HOME"]) / "workspace.yaml"
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        launches = {"events_job": {"dagster/partition": f"{yesterday}-12:00"},
                    "daily_job": {"dagster/partition": str(yesterday)},
                    "history_job": {}}
        run_ids = {}
        wait_for("the code server", lambda: subprocess.run(
            [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(code_port)],
            capture_output=True).returncode == 0, timeout=180, every=2)
        for job, tags in launches.items():
            run_ids[job] = str(uuid.uuid4())
            out = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", str(workspace),
                                  "-j", job, "--run-id", run_ids[job], "--tags",
                                  json.dumps(tags)], env=env, capture_output=True, text=True,
                                 timeout=180)
            assert out.returncode == 0, out.stdout + out.stderr

        def tasks() -> dict[str, dict]:
            arns = ecs.list_tasks(cluster=cluster)["taskArns"]
            found = ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"] \
                if arns else []
            by_run = {}
            for t in found:
                tags = {x["key"]: x["value"] for x in t.get("tags", [])}
                if tags.get("dagster/run_id") in run_ids.values():
                    by_run[tags["dagster/run_id"]] = t
            return by_run if len(by_run) == len(run_ids) else {}


        def sensor_run() -> str | None:
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "raw_lake_sensor"}))
            return runs[0].run_id if runs else None

        run_ids["raw_lake_sensor"] = wait_for("the raw-lake sensor's run", sensor_run,
                                              timeout=180, every=1)
        assert instance.get_run_by_id(run_ids["raw_lake_sensor"]).tags["dagster/partition"] == \
            partition_key(arrived)
        by_run = wait_for("a task for each run", tasks, timeout=180, every=1)
        # the network `serve` wrote into the installed instance config, from the environment
        installed = yaml.safe_load((Path(env["DAGSTER_HOME"]) / "dagster.yaml").read_text())
        assert installed["run_launcher"]["config"]["run_task_kwargs"]["networkConfiguration"] == {
            "awsvpcConfiguration": {"subnets": subnets, "assignPublicIp": "ENABLED",
                                    "securityGroups": [group]}}
        sizes = {"events_job": EVENTS_RUN_TAGS, "daily_job": DAILY_RUN_TAGS,
                 "history_job": HISTORY_RUN_TAGS, "raw_lake_sensor": EVENTS_RUN_TAGS}
        assert EVENTS_RUN_TAGS["ecs/memory"] != DAILY_RUN_TAGS["ecs/memory"]
        for job, run_id in run_ids.items():
            task = by_run[run_id]
            run = instance.get_run_by_id(run_id)
            assert run.tags["ecs/task_arn"] == task["taskArn"]  # the launcher recorded it
            override = task["overrides"]["containerOverrides"][0]
            # that run's command: Dagster's run worker, for this run id
            assert override["command"][:3] == ["dagster", "api", "execute_run"]
            args = dg.deserialize_value(override["command"][3])
            assert type(args).__name__ == "ExecuteRunArgs" and args.run_id == run_id
            # the size its job's tags ask for, for the task and its container
            want = sizes[job]
            assert (task["overrides"]["cpu"], task["overrides"]["memory"]) == (
                want["ecs/cpu"], want["ecs/memory"])
            assert (override["cpu"], override["memory"]) == (int(want["ecs/cpu"]),
                                                             int(want["ecs/memory"]))
            assert task["capacityProviderName"] == "FARGATE_SPOT"
            # in the network the environment named
            details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
            assert details["subnetId"] in subnets
            # the image: the run task definition's, the one the services run
            definition = ecs.describe_task_definition(
                taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
            assert definition["family"] == family
            container = next(c for c in definition["containerDefinitions"] if c["name"] == "run")
            assert container["image"] == IMAGE
            # no secret travels in the RunTask call
            assert postgres["DAGSTER_POSTGRES_PASSWORD"] not in json.dumps(task, default=str)
            assert "environment" not in override
        # What the task's container would run: the image's entry point, then the command the
        # launcher gave it (moto starts no container). The hand-launched `events` run: its
        # hour has no raw object, so it succeeds with nothing to do.
        entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", (ROOT / "Dockerfile").read_text(),
                                     re.M).group(1))
        run_id = run_ids["events_job"]
        command = by_run[run_id]["overrides"]["containerOverrides"][0]["command"]
        worker = subprocess.run([str(BIN / entry[0]), *entry[1:], *command], env=env,
                                capture_output=True, text=True, timeout=300)
        assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        instance.dispose()
    except BaseException:
        for log in ("code-server", "daemon"):
            print(f"--- {log}.log\n{tail(tmp_path / f'{log}.log')}")
        raise
    finally:
        for p in reversed(procs):
            stop(p)


def test_a_run_without_size_tags_gets_the_daily_stages_size(
        moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run from the asset graph (the UI's Materialize or asset backfill, `dagster asset
    materialize`) carries none of the jobs' tags: deploy/dagster-ecs.yaml's `run_resources`
    size it as the daily stage (4096 MiB; the task definition's 2048 MiB were short of a day's
    sessions). The size is dagster-aws's own computation, from the file as Dagster loads it; a
    run's `ecs/cpu` and `ecs/memory` tags still win. Before: no size, the task definition's."""
    import dagster as dg
    from dagster_aws.ecs.container_context import EcsContainerContext

    from analytics_platform.defs.automation import DAILY_RUN_TAGS, EVENTS_RUN_TAGS

    ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name="us-east-1")
    family = f"analytics-run-{uuid.uuid4().hex[:6]}"
    ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="512",
        memory="2048", containerDefinitions=[{"name": "run", "image": IMAGE, "memory": 2048}])
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "ANALYTICS_ECS_TASK_DEFINITION": family,
                        "ANALYTICS_ECS_CLUSTER": "analytics"}.items():
        monkeypatch.setenv(name, value)
    launcher_config = yaml.safe_load((ROOT / "deploy" / "dagster-ecs.yaml").read_text())[
        "run_launcher"]
    with dg.instance_for_test(overrides={"run_launcher": launcher_config}) as instance:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        for tags, want in (({}, DAILY_RUN_TAGS), (EVENTS_RUN_TAGS, EVENTS_RUN_TAGS)):
            run = dg.DagsterRun(job_name="__ASSET_JOB", tags=tags)
            size = launcher.get_cpu_and_memory_overrides(
                EcsContainerContext.create_for_run(run, launcher), run)
            assert size == {"cpu": want["ecs/cpu"], "memory": want["ecs/memory"]}, tags
