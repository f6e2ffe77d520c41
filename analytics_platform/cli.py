"""The ``analytics-platform`` command line."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from analytics_platform import settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Self-hosted, privacy-first web analytics.

    Data lives under $ANALYTICS_DATA_DIR (default ./data); raw events are read from and written
    to $ANALYTICS_RAW_URL (default $ANALYTICS_DATA_DIR/raw, or s3://bucket/prefix).
    """


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
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate(days: int, visitors_per_day: int, start: date | None, seed: int,
             raw_url: str | None, one_hour: bool, quiet: bool) -> None:
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
    cfg = SimConfig(days=days, visitors_per_day=visitors_per_day, start=start, seed=seed,
                    one_hour=one_hour, until=now)
    click.echo(f"Simulating {days} day(s) from {start} ({visitors_per_day:,} visitors/day, "
               f"seed {seed}) into {lake.url}")
    t0 = time.perf_counter()
    traffic = generate(cfg)
    report = write_traffic(traffic, lake, progress=not quiet)
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
    import uvicorn

    from analytics_platform.ingest.collector import create_app
    from analytics_platform.ingest.core import IngestConfig
    from analytics_platform.lake import open_raw_lake

    config = IngestConfig(tuple(origins)) if origins else IngestConfig.from_env()
    lake = open_raw_lake(settings.raw_url())
    app = create_app(lake, settings.data_dir() / "spool", config, flush_seconds,
                     int(flush_mb * 1024 * 1024))
    click.echo(f"Collector on http://{host}:{port} (demo page: http://{host}:{port}/demo) → "
               f"{lake.url}; flush every {flush_seconds:g} s or {flush_mb:g} MB")
    # No proxy headers: the collector never looks at a client address (SPEC §2).
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10,
                proxy_headers=False)


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
@click.option("--events-per-month", required=True, type=click.IntRange(0))
@click.option("--mode", type=click.Choice(["firehose", "kinesis"]), default="firehose",
              show_default=True)
@click.option("--endpoint", type=click.Choice(["url", "http-api"]), default="url",
              show_default=True)
def cost(events_per_month: int, mode: str, endpoint: str) -> None:
    """The ingest stack's monthly AWS bill, line by line, with its assumptions."""
    from analytics_platform.cost import assumptions_text, monthly_bill

    bill = monthly_bill(events_per_month, mode, endpoint)
    click.echo(f"{events_per_month:,} events a month, ingest_mode={mode}, endpoint={endpoint}\n")
    click.echo(bill.to_text())
    click.echo("\n" + assumptions_text())


@main.command("lake-pull")
def lake_pull() -> None:
    """Fill the local lake cache from $ANALYTICS_LAKE_URL and publish the warehouse (for a
    machine that only reads, such as the dashboard's)."""
    from analytics_platform.storage import WAREHOUSE_VIEWS, Lake, publish_warehouse

    lake = Lake()
    if lake.remote is None:
        raise click.ClickException("ANALYTICS_LAKE_URL is not set: the lake is local only.")
    for table in [*WAREHOUSE_VIEWS, "late_events"]:
        n = lake.pull(table)
        click.echo(f"{table}: {n} file(s) fetched")
    click.echo("warehouse views: " + ", ".join(publish_warehouse(lake)))


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


# The local Dagster instance: no telemetry (a privacy-first product does not phone home), and a
# run queue that starts a queued run within a second (Dagster's default looks every 5 s) and
# runs two at a time (each run's DuckDB is memory-capped; two of them fit a laptop).
LOCAL_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    max_concurrent_runs: 2
"""


def _dagster_home() -> str:
    """$DAGSTER_HOME, defaulting to $ANALYTICS_DATA_DIR/dagster_home (created), so runs started
    here show up in `dagster dev`."""
    home = os.environ.get("DAGSTER_HOME") or str(settings.data_dir() / "dagster_home")
    Path(home).mkdir(parents=True, exist_ok=True)
    config = Path(home) / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = home
    return home


@main.command()
@click.option("--from", "first", required=True, callback=_parse_date,
              help="First day (UTC), e.g. 2026-02-01.")
@click.option("--to", "last", required=True, callback=_parse_date,
              help="Last day (UTC), inclusive.")
@click.option("--verbose", is_flag=True, help="Show Dagster's step logs.")
def backfill(first: date, last: date, verbose: bool) -> None:
    """Materialise every asset for a range of days through Dagster.

    Three runs whatever the range (raw hours → events, days → sessions and daily marts, then
    the all-history marts), recorded in $DAGSTER_HOME so the UI shows them.
    """
    from analytics_platform.backfill import run_backfill

    home = _dagster_home()
    click.echo(f"Backfilling {first} … {last} (Dagster instance: {home})")
    try:
        report = run_backfill(first, last, log=click.echo,
                              log_level="INFO" if verbose else "WARNING")
    except (ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    ev = report.phases[0]
    click.echo(
        f"Done in {report.seconds:.1f} s: {report.records:,} raw records → "
        f"{ev.metadata.get('events_out', 0):,} events "
        f"({report.records / report.seconds:,.0f} records/s end to end; events step "
        f"{ev.metadata.get('records_per_second', 0):,} records/s)."
    )
    click.echo(f"Warehouse: {settings.data_dir() / 'warehouse.duckdb'}")


@main.command()
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 365))
@click.option("--visitors-per-day", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port.")
@click.option("--collector-port", default=8000, show_default=True, type=int)
@click.option("--dashboard-port", default=8501, show_default=True, type=int)
@click.option("--no-ui", is_flag=True, help="Stop after the backfill (no servers).")
def demo(days: int, visitors_per_day: int, port: int, collector_port: int, dashboard_port: int,
         no_ui: bool) -> None:
    """Simulate traffic (unless the raw lake already has some), backfill, then start the
    dashboard, the collector (with its demo page) and `dagster dev`; Ctrl-C stops them."""
    from analytics_platform.lake import hours_between, open_raw_lake

    home = _dagster_home()
    now = datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
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
    import subprocess

    root = Path(__file__).resolve().parent.parent
    bin_dir = Path(sys.executable).parent  # this environment's commands, not PATH's
    collector = subprocess.Popen([str(bin_dir / "analytics-platform"), "collect", "--port",
                                  str(collector_port)])
    board = subprocess.Popen(streamlit_command(Path(__file__).resolve().parent / "dashboard"
                                               / "app.py", "127.0.0.1", dashboard_port),
                             stdout=subprocess.DEVNULL)
    ui = subprocess.Popen([str(bin_dir / "dagster"), "dev", "-w", str(root / "workspace.yaml"),
                           "-h", "127.0.0.1", "-p", str(port)])
    click.echo(
        f"\nDashboard:   http://127.0.0.1:{dashboard_port}\n"
        f"Dagster UI:  http://127.0.0.1:{port}   (DAGSTER_HOME={home})\n"
        f"Demo page:   http://127.0.0.1:{collector_port}/demo   — click around: your visit "
        f"lands in the raw lake within seconds,\n"
        f"             the sensor processes it and the day's sessions and marts follow.\n"
        f"Collector:   http://127.0.0.1:{collector_port}/metrics\n"
        "Ctrl-C stops them all.")
    try:
        ui.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (ui, board, collector):
            if proc.poll() is None:
                proc.terminate()
        for proc in (ui, board, collector):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
