"""The ``analytics-platform`` command line."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from analytics_platform import settings
from analytics_platform.serve import FOLLOWER, ROLES

if TYPE_CHECKING:
    from analytics_platform.serve import Topology


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Self-hosted, privacy-first web analytics.

    Data lives under $ANALYTICS_DATA_DIR (default ./data); raw events are read from and written
    to $ANALYTICS_RAW_URL (default $ANALYTICS_DATA_DIR/raw, or s3://bucket/prefix).
    """


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What reaching a folder or a bucket raises: the disk's, and botocore's (no credentials,
    no bucket, access denied), imported only when a command needs it."""
    from botocore.exceptions import BotoCoreError, ClientError

    return OSError, BotoCoreError, ClientError


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise click.BadParameter(f"{value!r} is not a date like 2026-02-01") from e


@main.command()
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 3650),
              help="Days of traffic.")
@click.option("--visitors-per-day", default=2000, show_default=True,
              type=click.IntRange(1, 10_000_000), help="Distinct visitors a day.")
@click.option("--start", callback=_parse_date,
              help="First day (UTC), e.g. 2026-02-01. Default: so that the last day is today; "
                   "nothing that would arrive after now is written.")
@click.option("--seed", default=42, show_default=True, type=int,
              help="Same seed and options → the same raw objects, byte for byte.")
@click.option("--raw-url", default=None,
              help="Where to write (default $ANALYTICS_RAW_URL): a folder or s3://bucket/prefix.")
@click.option("--one-hour", is_flag=True,
              help="Put each day's traffic into its 12:00 UTC hour (for throughput benchmarks).")
@click.option("--consent-share", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Share of visitors whose tracker runs in consent mode (ids in localStorage); "
                   "the others send no id and get the day's visitor_hash (docs/PRIVACY.md).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate(days: int, visitors_per_day: int, start: date | None, seed: int,
             raw_url: str | None, one_hour: bool, consent_share: float, quiet: bool) -> None:
    """Simulate realistic traffic and write it into the raw lake in Firehose's layout.

    Visitors come back over the weeks, browse several pages, scroll, read, click the "Book a call"
    CTA and fill in the form at plausible rates; they arrive from search, social, campaigns (UTM),
    unknown blogs and directly; an A/B test on the CTA copy has a real effect. Delivery is as
    messy as the real thing: device clocks off, late retries, duplicates and a few bots.
    """
    from analytics_platform.lake import open_raw_lake
    from analytics_platform.simulate import SimConfig, generate, write_traffic
    from analytics_platform.simulate.truth import summarize

    now = datetime.now(UTC)
    start = start or (now - timedelta(days=days - 1)).date()
    url = raw_url or settings.raw_url()
    lake = open_raw_lake(url)
    if "://" not in url:  # a local folder: refused before any work, even with nothing to write
        try:  # (a day begun a minute ago has no record; found when the suite ran at 00:14)
            Path(url).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise click.ClickException(f"cannot write to {lake.url}: {e}") from e
    cfg = SimConfig(days=days, visitors_per_day=visitors_per_day, start=start, seed=seed,
                    one_hour=one_hour, until=now, consent_share=consent_share)
    click.echo(f"Simulating {days} day(s) from {start} ({visitors_per_day:,} visitors/day, "
               f"seed {seed}) into {lake.url}")
    t0 = time.perf_counter()
    traffic = generate(cfg)
    try:
        report = write_traffic(traffic, lake, progress=not quiet)
    except _storage_errors() as e:
        raise click.ClickException(f"cannot write to {lake.url}: {e}") from e
    elapsed = time.perf_counter() - t0
    click.echo(
        f"Wrote {report.records:,} records in {report.objects:,} objects "
        f"({report.bytes_written / 1e6:.1f} MB gzip) in {elapsed:.1f} s: "
        f"{report.records / elapsed:,.0f} records/s."
    )
    click.echo(summarize(traffic).to_text())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--flush-seconds", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Write spooled events to the raw lake at least this often.")
@click.option("--flush-mb", default=8.0, show_default=True, type=click.FloatRange(0.01),
              help="…or as soon as this many MB are spooled.")
@click.option("--allow-origin", "origins", multiple=True,
              help="Origin allowed to send events (repeat it); default $ANALYTICS_ALLOWED_ORIGINS "
                   "or any origin.")
def collect(host: str, port: int, flush_seconds: float, flush_mb: float,
            origins: tuple[str, ...]) -> None:
    """Serve POST /v1/events (plus /analytics.js, /demo, /healthz, /metrics) and write accepted
    events to the raw lake in Firehose's layout, through a crash-safe local spool."""
    from analytics_platform.ingest.collector import create_app, serve
    from analytics_platform.ingest.core import IngestConfig
    from analytics_platform.lake import open_raw_lake

    config = IngestConfig(tuple(origins)) if origins else IngestConfig.from_env()
    lake = open_raw_lake(settings.raw_url())
    app = create_app(lake, settings.data_dir() / "spool", config, flush_seconds,
                     int(flush_mb * 1024 * 1024))
    click.echo(f"Collector on http://{host}:{port} (demo page: http://{host}:{port}/demo) → "
               f"{lake.url}; flush every {flush_seconds:g} s or {flush_mb:g} MB")
    serve(app, host, port)


@main.command()
@click.option("--port", default=8501, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
def dashboard(port: int, host: str) -> None:
    """The dashboard (Streamlit) on the warehouse, read-only."""
    app = Path(__file__).resolve().parent / "dashboard" / "app.py"
    click.echo(f"Dashboard: http://{host}:{port}")
    sys.stdout.flush()
    # Streamlit takes this process's place, so a Ctrl-C or SIGTERM sent to it stops the server
    # (a child would be left running, orphaned).
    cmd = streamlit_command(app, host, port)
    os.execv(cmd[0], cmd)


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    # No usage statistics leave the machine: a privacy-first product.
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
            "--client.toolbarMode", "viewer"]


@main.command()
@click.option("--events-per-month", default=1_000_000, show_default=True, type=click.IntRange(0),
              help="Steady traffic the bill is for.")
@click.option("--design", type=click.Choice(["machine", "machine-ipv4", "machine-on-demand",
                                           "ecs", "none"]),
              default="machine", show_default=True,
              help="How the pipeline and the dashboard run (infra/modules/pipeline): `machine`, "
              "`serve` on one t4g.small on Spot; `machine-on-demand`, the same on-demand; `ecs`, "
              "the same machine with every run a Fargate Spot task; `none`, the ingest side only "
              "(the pipeline runs elsewhere).")
@click.option("--mode", type=click.Choice(["firehose", "kinesis"]), default="firehose",
              show_default=True, help="The ingest stack's ingest_mode (kinesis adds a shard).")
@click.option("--endpoint", type=click.Choice(["url", "http-api"]), default="url",
              show_default=True, help="Lambda Function URL or API Gateway HTTP API.")
@click.option("--buffer-seconds", type=click.IntRange(60, 900), default=None,
              help="Firehose's buffering interval. Default: 220 with the pipeline in the "
              "account (event → dashboard within 5 minutes), 300 with --design none.")
@click.option("--sensor-seconds", type=click.IntRange(1), default=None,
              help="The raw-lake and automation sensors' interval. Default: 10 with the "
              "stack's raw/ notifications queue, 30 with --raw-listing or --design none.")
@click.option("--raw-listing", is_flag=True,
              help="Price the raw-lake sensor listing hour prefixes every tick, without the "
              "stack's S3 notifications queue (the design before it: with --buffer-seconds 180 "
              "--sensor-seconds 30).")
@click.option("--cloudfront", is_flag=True,
              help="With CloudFront in front of the endpoint (the stack's ingest_cloudfront: "
              "the country from CloudFront), its always-free allowance counted.")
@click.option("--backfill", is_flag=True,
              help="Print the capacity model instead: a year's backfill at 10M / 100M / 1B "
              "events a month on ECS run tasks and on one machine.")
def cost(events_per_month: int, design: str, mode: str, endpoint: str,
         buffer_seconds: int | None, sensor_seconds: int | None, raw_listing: bool,
         cloudfront: bool, backfill: bool) -> None:
    """The whole stack's monthly AWS bill, line by line (ingest, pipeline, dashboard), with the
    runs a day, the time from an event to the dashboard, every design at 100k / 1M / 10M events,
    and the assumptions and prices it rests on (docs/COSTS.md)."""
    from dataclasses import replace

    from analytics_platform import cost as model

    p = model.PipelineAssumptions()
    if buffer_seconds is not None:
        p = replace(p, buffer_seconds=buffer_seconds)
    if raw_listing:
        p = replace(p, raw_queue=False)
    if sensor_seconds is not None:
        p = replace(p, sensor_seconds=sensor_seconds)
    if backfill:
        click.echo(model.backfill_text(p))
    elif design == "none":
        a = model.Assumptions()
        a = replace(a, buffer_seconds=buffer_seconds or a.buffer_seconds,
                    sensor_seconds=sensor_seconds or a.sensor_seconds)
        click.echo(f"{events_per_month:,} events a month, ingest_mode={mode}, "
                   f"endpoint={endpoint}{', behind CloudFront' if cloudfront else ''}\n")
        click.echo(model.monthly_bill(events_per_month, mode, endpoint, a,
                                      cloudfront=cloudfront).to_text())
        click.echo("\n" + model.assumptions_text(a))
    else:
        click.echo(model.stack_text(events_per_month, design, mode, endpoint, p, cloudfront))


@main.command("lake-pull")
@click.option("--follow", is_flag=True,
              help="Keep going: again after each look at Dagster's runs ($DAGSTER_HOME) that "
                   "finds one succeeded since the last pass (what `serve` runs with "
                   "ANALYTICS_RUN_LAUNCHER=ecs).")
@click.option("--every", default=300.0, show_default=True, type=click.FloatRange(1),
              help="With --follow: seconds between two looks.")
def lake_pull(follow: bool, every: float) -> None:
    """Bring the local lake cache up to date from $ANALYTICS_LAKE_URL (new and replaced files
    fetched, deleted ones dropped) and publish the warehouse (for a machine that only reads,
    such as the dashboard's)."""
    from analytics_platform.storage import Lake, publish_warehouse

    lake = Lake()
    if lake.remote is None:
        raise click.ClickException("ANALYTICS_LAKE_URL is not set: the lake is local only.")
    if follow:
        import dagster as dg

        from analytics_platform import follow as following

        with dg.DagsterInstance.get() as instance:
            following.follow(lake, instance, every, echo=lambda m: click.echo(
                f"{datetime.now(UTC):%H:%M:%S} {m}"))
        return
    url = f"s3://{lake.remote.bucket}/{lake.remote.prefix}"
    try:  # every table the lake in S3 holds or the cache here has
        fetched = lake.pull_all()
    except _storage_errors() as e:  # no bucket, no access, S3 failing: one line, no traceback
        raise click.ClickException(f"cannot pull the lake {url}: {e}") from e
    for table, n in fetched.items():
        click.echo(f"{table}: {n} file(s) fetched")
    try:
        views = publish_warehouse(lake)
    except OSError as e:  # the data folder's disk (full, read-only)
        raise click.ClickException(f"cannot publish the warehouse in {lake.data_dir}: "
                                   f"{e}") from e
    click.echo("warehouse views: " + ", ".join(views))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dagster(args: tuple[str, ...]) -> None:
    """Dagster's own command line: `analytics-platform dagster ARGS` is `dagster ARGS`.

    The image's entry point is `analytics-platform`, and a run launcher that starts a run in
    the image (dagster-aws's EcsRunLauncher: `dagster api execute_run …` as the container's
    command) reaches Dagster through here; so does `docker run IMAGE dagster …`.
    """
    # the process becomes Dagster's: its exit code and signals are the container's. Its own
    # script beside this interpreter (the same environment), so that it names itself `dagster`.
    script = Path(sys.executable).parent / "dagster"
    if script.exists():
        os.execv(script, [str(script), *args])
    os.execv(sys.executable, [sys.executable, "-m", "dagster", *args])


@main.command("build-lambda")
@click.option("--out", default="dist/ingest-lambda.zip", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path))
def build_lambda(out: Path) -> None:
    """Build the ingest Lambda's deployment zip (pure Python, reproducible)."""
    import hashlib

    from analytics_platform.ingest.package import HANDLER, build_lambda_zip

    path = build_lambda_zip(out)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    click.echo(f"{path} ({path.stat().st_size:,} bytes, sha256 {digest[:16]}…), "
               f"handler {HANDLER}")


# The local Dagster instance: no telemetry (a privacy-first product does not phone home), a
# run queue that starts a queued run within a second (Dagster's default looks every 5 s) and
# runs two at a time (each run's DuckDB is memory-capped; two of them fit a laptop), and the
# SQLite event log that writes a ranged step's materialisation records in one go
# (analytics_platform/event_log.py; the same files as Dagster's default, so no history is lost).
LOCAL_INSTANCE_YAML = f"""\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    max_concurrent_runs: 2
event_log_storage:
  module: {settings.SQLITE_EVENT_LOG_STORAGE["module"]}
  class: {settings.SQLITE_EVENT_LOG_STORAGE["class"]}
"""
# What earlier versions of the CLI wrote: a dagster.yaml that is exactly one of these was never
# edited by its user, and is brought up to date; any other is the user's and left alone.
EARLIER_LOCAL_INSTANCE_YAMLS = (
    "telemetry:\n  enabled: false\n",
    LOCAL_INSTANCE_YAML.split("event_log_storage:")[0],
)


def _raw_has_objects(first: date, last: date) -> None:
    """A ValueError unless the raw lake holds an object in an hour of ``first``…``last``: a
    backfill of a range without any (a wrong ANALYTICS_RAW_URL) emptied the warehouse's days
    and said "Done". Hour by hour until one has an object (one LIST an hour on S3)."""
    from analytics_platform.lake import hours_between, open_raw_lake

    url = settings.raw_url()
    if "://" not in url and not Path(url).is_dir():
        raise ValueError(f"the raw lake {url} does not exist (ANALYTICS_RAW_URL)")
    lake = open_raw_lake(url)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = min(datetime(last.year, last.month, last.day, 23, tzinfo=UTC), datetime.now(UTC))
    try:
        if any(lake.list_hour(h) for h in hours_between(start, end)):
            return
    except _storage_errors() as e:
        raise ValueError(f"cannot list the raw lake {url}: {e}") from e
    raise ValueError(f"the raw lake {url} has no object from {first} to {last}: nothing to "
                     "backfill (check ANALYTICS_RAW_URL; --allow-empty empties those days)")


def _dagster_home() -> str:
    """$DAGSTER_HOME, defaulting to $ANALYTICS_DATA_DIR/dagster_home (created), so runs started
    here show up in `dagster dev`."""
    home = str(settings.dagster_home())
    Path(home).mkdir(parents=True, exist_ok=True)
    config = Path(home) / "dagster.yaml"
    if not config.exists() or config.read_text() in EARLIER_LOCAL_INSTANCE_YAMLS:
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = home
    return home


@main.command()
@click.option("--from", "first", required=True, callback=_parse_date,
              help="First day (UTC), e.g. 2026-02-01.")
@click.option("--to", "last", required=True, callback=_parse_date,
              help="Last day (UTC), inclusive.")
@click.option("--verbose", is_flag=True, help="Show Dagster's step logs.")
@click.option("--allow-empty", is_flag=True,
              help="Go on when the raw lake has no object in the range: its days' tables are "
                   "then emptied (by default that is refused, as a wrong ANALYTICS_RAW_URL).")
def backfill(first: date, last: date, verbose: bool, allow_empty: bool) -> None:
    """Materialise every asset for a range of days through Dagster.

    Three runs whatever the range (raw hours → events, days → sessions and daily marts, then
    the all-history marts), recorded in $DAGSTER_HOME so the UI shows them.
    """
    from analytics_platform.backfill import plan, run_backfill

    try:
        # what the steps would refuse only inside the first run, in its stack traces
        settings.duckdb_memory_limit()
        settings.late_arrival_hours()
        days = plan(first, last)[1]
        if not allow_empty:
            _raw_has_objects(first, last)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    home = _dagster_home()
    # the plan clamps the range to the partitions that exist: say so, not only in a job's line
    if days.first != str(first):
        click.echo(f"Note: the partitions begin on {days.first} (ANALYTICS_START_DATE); the "
                   f"days before it are left out.", err=True)
    if days.last != str(last):
        click.echo(f"Note: {last} has not begun yet (UTC); the backfill ends with {days.last}.",
                   err=True)
    click.echo(f"Backfilling {first} … {last} (Dagster instance: {home})")
    try:
        report = run_backfill(first, last, log=click.echo,
                              log_level="INFO" if verbose else "WARNING")
    except (ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    except KeyboardInterrupt:  # also a run Dagster failed as interrupted (backfill._run_phase)
        click.echo("Interrupted: run the same command again to finish (a partition done "
                   "again is written the same).", err=True)
        sys.exit(130)
    ev = report.phases[0]
    click.echo(
        f"Done in {report.seconds:.1f} s: {report.records:,} raw records → "
        f"{ev.metadata.get('run_events_out', 0):,} events "
        f"({report.records / report.seconds:,.0f} records/s end to end; events step "
        f"{ev.metadata.get('run_records_per_second', 0):,} records/s)."
    )
    click.echo(f"Warehouse: {settings.data_dir() / 'warehouse.duckdb'}")


@main.command()
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 365))
@click.option("--visitors-per-day", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port.")
@click.option("--collector-port", default=8000, show_default=True, type=int)
@click.option("--dashboard-port", default=8501, show_default=True, type=int)
@click.option("--api-port", default=8010, show_default=True, type=int,
              help="The Stats API's port (docs/API.md).")
@click.option("--no-ui", is_flag=True, help="Stop after the backfill (no servers).")
def demo(days: int, visitors_per_day: int, port: int, collector_port: int, dashboard_port: int,
         api_port: int, no_ui: bool) -> None:
    """Simulate traffic (unless the raw lake already has some), backfill, then start what
    `serve` starts (Dagster's code server, daemon and UI, the dashboard, the collector with its
    demo page); Ctrl-C stops them."""
    now = datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    # The partitions begin with the first simulated day (before anything defines them), so the
    # UI's partition bars cover days that can hold data.
    os.environ.setdefault("ANALYTICS_START_DATE", first.isoformat())
    from analytics_platform.lake import hours_between, open_raw_lake
    from analytics_platform.serve import Topology, install_instance, migrate_instance

    topology = Topology(webserver_port=port, dashboard_port=dashboard_port,
                        collector_port=collector_port, api_port=api_port)
    storage = install_instance(topology)  # the backfill's runs go where the UI reads
    migrate_instance()
    lake = open_raw_lake(settings.raw_url())
    recent = hours_between(now - timedelta(hours=6), now)
    if any(lake.list_hour(h) for h in recent):
        click.echo(f"The raw lake {lake.url} already has recent data: not simulating again.")
    else:
        ctx = click.get_current_context()
        ctx.invoke(simulate, days=days, visitors_per_day=visitors_per_day, start=first,
                   seed=42, raw_url=None, one_hour=False, quiet=False)
    ctx = click.get_current_context()
    ctx.invoke(backfill, first=first, last=now.date(), verbose=False)
    if no_ui:
        return
    c = collector_port
    _supervise(topology, storage, done=(
        f"\nDashboard:   http://127.0.0.1:{dashboard_port}\n"
        f"Dagster UI:  http://127.0.0.1:{port}   (DAGSTER_HOME={topology.dagster_home})\n"
        f"Demo page:   http://127.0.0.1:{c}/demo   — click around: your visit lands in the raw "
        "lake within seconds,\n"
        "             the sensor processes it and the day's sessions and marts follow.\n"
        f"Collector:   http://127.0.0.1:{c}/metrics\n"
        f"Stats API:   http://127.0.0.1:{api_port}/api/v2/query   (keys: `analytics-platform "
        "api-key create NAME`)\n"
        f"Logs:        {settings.data_dir() / 'logs'}\n"
        "Ctrl-C stops them all."))


def _supervise(topology: Topology, storage: str, done: str,
               roles: tuple[str, ...] = ()) -> None:
    """Run the roles under the supervisor; print ``done`` once every server answers."""
    from analytics_platform.serve import ROLES, Supervisor, write_roles

    write_roles(topology, roles or ROLES)  # what `serve --health-check` probes
    log_dir = settings.data_dir() / "logs" if settings.serve_logs() == "files" else None
    click.echo(f"Dagster storage: {storage}; the servers' logs: "
               + (f"{log_dir}/" if log_dir else "this output"))
    supervisor = Supervisor(roles or ROLES, topology, log_dir, echo=click.echo)
    announced = []

    def on_ready(_role: str) -> None:
        if supervisor.all_ready() and not announced:
            announced.append(True)
            click.echo(done)

    supervisor.on_ready = on_ready
    supervisor.run()


@main.command()
@click.option("--host", help="Address the servers bind: 127.0.0.1 by default, 0.0.0.0 with "
              "--only (a role alone is a container, reached by the others).")
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port.")
@click.option("--dashboard-port", default=8501, show_default=True, type=int)
@click.option("--collector-port", default=8000, show_default=True, type=int)
@click.option("--api-port", default=8010, show_default=True, type=int,
              help="The Stats API's port (docs/API.md).")
@click.option("--code-server-port", default=4000, show_default=True, type=int,
              help="The code location's gRPC port.")
@click.option("--code-server-host", envvar="DAGSTER_CODE_SERVER_HOST", default="127.0.0.1",
              show_default=True, help="Where the webserver and daemon find the code server "
              "(env DAGSTER_CODE_SERVER_HOST).")
@click.option("--only", "role", type=click.Choice([*ROLES, FOLLOWER]),
    help="Run this one role in the foreground (a container's command) instead of all six "
         "(seven with ANALYTICS_RUN_LAUNCHER=ecs: lake-pull, the runs' lake brought to this "
         "warehouse).")
@click.option("--instance-config", envvar="DAGSTER_INSTANCE_CONFIG",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Dagster instance config to install (env DAGSTER_INSTANCE_CONFIG; default "
                   "deploy/dagster.yaml).")
@click.option("--health-check", is_flag=True,
              help="Exit 0 if every role `serve` started here answers, 1 otherwise.")
def serve(host: str | None, port: int, dashboard_port: int, collector_port: int,
          api_port: int, code_server_port: int, code_server_host: str, role: str | None,
          instance_config: Path | None, health_check: bool) -> None:
    """The production topology: Dagster's gRPC code server, daemon and webserver as separate
    processes, the dashboard and the collector; supervised (a child that dies is restarted),
    logs in $ANALYTICS_DATA_DIR/logs/, SIGTERM stops them all.

    Dagster's history is in PostgreSQL when DAGSTER_POSTGRES_HOST is set (with
    DAGSTER_POSTGRES_PORT, _USER, _PASSWORD, _DB), in SQLite under $DAGSTER_HOME otherwise.
    """
    from analytics_platform.serve import (
        Topology,
        exec_role,
        install_instance,
        migrate_instance,
        roles_to_run,
    )
    from analytics_platform.serve import health_check as check

    if health_check:
        failing = check()
        if failing:
            raise click.ClickException("not answering: " + ", ".join(failing))
        click.echo("healthy")
        return
    host = host or ("0.0.0.0" if role else "127.0.0.1")
    topology = Topology(host=host, webserver_port=port, dashboard_port=dashboard_port,
                        collector_port=collector_port, api_port=api_port,
                        code_server_port=code_server_port,
                        code_server_host=code_server_host)
    try:
        storage = install_instance(topology, instance_config)
        # the one process that creates or upgrades the schema: serve itself, or the daemon's
        # container (start it before the webserver's)
        roles = roles_to_run()
        if role in (None, "daemon"):
            migrate_instance()
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    if role:
        click.echo(f"{role} (Dagster storage: {storage})")
        exec_role(role, topology)
    _supervise(topology, storage, done="All servers answer. SIGTERM or Ctrl-C stops them.",
               roles=roles)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8010, show_default=True, type=int)
@click.option("--rate-per-hour", default=600.0, show_default=True, type=click.FloatRange(0),
              help="Requests an hour per API key (Plausible's default).")
@click.option("--burst", default=60, show_default=True, type=click.IntRange(1),
              help="Requests a key may make at once before the hourly rate applies.")
def api(host: str, port: int, rate_per_hour: float, burst: int) -> None:
    """The read-only API: Plausible's Stats API v2 (POST /api/v2/query) and exports
    (GET /api/v1/export) on the warehouse, for keys made with `api-key create`
    (docs/API.md)."""
    from analytics_platform.api.app import create_app, serve
    from analytics_platform.api.keys import KeyFileError, KeyStore, RateLimiter

    data = settings.data_dir()
    keys = KeyStore(data / "api_keys.json")
    try:
        if not any(k.revoked is None for k in keys.list()):
            click.echo("No API key yet: every request will get 401. Make one with "
                       "`analytics-platform api-key create NAME`.", err=True)
    except KeyFileError as e:
        # started all the same (under `serve` a process that exits is restarted for ever): every
        # query is answered 503 until the file is mended, which the server sees without a restart
        click.echo(f"{e} Every request will get 503 until it is mended.", err=True)
    click.echo(f"API on http://{host}:{port} (POST /api/v2/query, GET /api/v1/export, "
               f"GET /api/openapi.json) on {data / 'warehouse.duckdb'}")
    serve(create_app(data, keys, RateLimiter(rate_per_hour, burst)), host, port)


@main.group("api-key")
def api_key() -> None:
    """API keys of `analytics-platform api`, stored hashed in
    $ANALYTICS_DATA_DIR/api_keys.json."""


@api_key.command("create")
@click.argument("name")
def api_key_create(name: str) -> None:
    """Make a key named NAME and print it: once, it is not stored."""
    from analytics_platform.api.keys import KeyStore

    try:
        key, secret = KeyStore(settings.data_dir() / "api_keys.json").create(name)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(secret)
    click.echo(f"Key {key.name!r} (id {key.id}). Keep it now: it is shown only once "
               "(Authorization: Bearer <key>).", err=True)


@api_key.command("list")
def api_key_list() -> None:
    """Every key: id, name, first characters, created, revoked."""
    from analytics_platform.api.keys import KeyFileError, KeyStore

    try:
        keys = KeyStore(settings.data_dir() / "api_keys.json").list()
    except KeyFileError as e:  # a message naming the file, not a traceback
        raise click.ClickException(str(e)) from e
    if not keys:
        click.echo("No API keys.")
    for k in keys:
        state = f"revoked {k.revoked}" if k.revoked else "active"
        click.echo(f"{k.id}  {k.name}  {k.shown}…  created {k.created}  {state}")


@api_key.command("revoke")
@click.argument("name_or_id")
def api_key_revoke(name_or_id: str) -> None:
    """Revoke the active key with this name or id (a running API refuses it at once)."""
    from analytics_platform.api.keys import KeyStore

    try:
        key = KeyStore(settings.data_dir() / "api_keys.json").revoke(name_or_id)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"Revoked {key.name!r} (id {key.id}).")


@main.command()
@click.option("--table", required=True, help="events, sessions, session_events, quarantine, "
              "a daily mart, or an all-history mart (attribution_touch, cohort_retention, "
              "experiments).")
@click.option("--from", "first", callback=_parse_date, help="First day (UTC), inclusive.")
@click.option("--to", "last", callback=_parse_date, help="Last day (UTC), inclusive.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "ndjson"]),
              default="csv", show_default=True)
@click.option("--out", default="-", show_default=True,
              help="The file to write, or - for standard output.")
def export(table: str, first: date | None, last: date | None, fmt: str, out: str) -> None:
    """Export a table of the warehouse (the days --from…--to) as CSV, Parquet or NDJSON; the
    `events` rows are the cleaned, de-duplicated events (CONTRACT §3)."""
    import tempfile

    import duckdb

    from analytics_platform.query import export as exports

    warehouse = settings.data_dir() / "warehouse.duckdb"
    try:
        if out != "-":
            rows = exports.export(warehouse, table, first, last, fmt, Path(out))
            click.echo(f"{rows:,} rows → {out}", err=True)
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"export.{fmt}"
            rows = exports.export(warehouse, table, first, last, fmt, path)
            for piece in exports.chunks(path):
                sys.stdout.buffer.write(piece)
            sys.stdout.buffer.flush()
        click.echo(f"{rows:,} rows", err=True)
    except exports.ExportError as e:
        raise click.ClickException(str(e)) from e
    except (OSError, duckdb.IOException) as e:  # --out where nothing can be written
        raise click.ClickException(f"cannot write {out}: {e}") from e


if __name__ == "__main__":
    main()
