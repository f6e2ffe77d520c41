"""The ``analytics-platform`` command line."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

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
              help="First day (UTC), e.g. 2026-02-01. Default: --days days before today, so the "
                   "traffic ends yesterday.")
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

    start = start or (datetime.now(UTC) - timedelta(days=days)).date()
    url = raw_url or settings.raw_url()
    lake = open_raw_lake(url)
    cfg = SimConfig(days=days, visitors_per_day=visitors_per_day, start=start, seed=seed,
                    one_hour=one_hour)
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


if __name__ == "__main__":
    main()
