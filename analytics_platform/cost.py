"""The monthly AWS bill of the ingest stack, line by line: `analytics-platform cost`.

Prices come from ``prices_us_east_1.yaml`` (one file, with the date they were written down);
usage comes from the assumptions below, which the command prints with the bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analytics_platform import settings

PRICES = Path(__file__).with_name("prices_us_east_1.yaml")
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Assumptions:
    record_bytes: int = 650  # a stored raw record (measured on the simulator's output)
    events_per_request: float = 3.0  # the tracker batches (10 events or 5 s, or page hide)
    lambda_ms: float = 25.0  # billed duration of one request
    lambda_memory_mb: int = 256
    lambda_architecture: str = "arm64"
    gzip_ratio: float = 0.10  # stored size / raw size (measured: 0.09–0.11)
    buffer_seconds: int = 300  # Firehose's buffering interval: one object per interval
    log_bytes_per_request: int = 350  # START, END and REPORT lines of a Lambda invocation
    retention_months: float = 13.0  # raw/ kept 400 days: storage grows to 13 months of data
    sensor_seconds: int = settings.SENSOR_INTERVAL_S3  # the raw-lake sensor's tick on S3
    sensor_lists: int = settings.SENSOR_LOOKBACK_HOURS  # hour prefixes it lists a tick


@dataclass
class Bill:
    lines: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, item: str, usage: str, usd: float) -> None:
        self.lines.append((item, usage, usd))

    @property
    def total(self) -> float:
        return sum(u for _, _, u in self.lines)

    def to_text(self) -> str:
        width = max(len(i) for i, _, _ in self.lines)
        out = [f"{i:<{width}}  {usage:<46} ${usd:>9.2f}" for i, usage, usd in self.lines]
        out.append(f"{'total':<{width}}  {'':<46} ${self.total:>9.2f}")
        return "\n".join(out)


def monthly_bill(events: int, mode: str = "firehose", endpoint: str = "url",
                 a: Assumptions | None = None, prices: dict | None = None) -> Bill:
    """The monthly bill for ``events`` events a month."""
    if mode not in ("firehose", "kinesis"):
        raise ValueError("mode must be firehose or kinesis")
    if endpoint not in ("url", "http-api"):
        raise ValueError("endpoint must be url or http-api")
    a = a or Assumptions()
    p = prices or yaml.safe_load(PRICES.read_text())
    bill = Bill()
    requests = events / a.events_per_request

    if endpoint == "http-api":
        bill.add("API Gateway HTTP API", f"{requests:,.0f} requests",
                 requests / 1e6 * p["api_gateway_http"]["requests_per_million"])
    else:
        bill.add("Lambda Function URL", "no charge beyond Lambda", 0.0)
    gb_s = requests * a.lambda_ms / 1000 * a.lambda_memory_mb / 1024
    bill.add("Lambda requests", f"{requests:,.0f} requests",
             requests / 1e6 * p["lambda"]["requests_per_million"])
    bill.add("Lambda compute", f"{gb_s:,.0f} GB-s ({a.lambda_architecture})",
             gb_s * p["lambda"][f"gb_second_{a.lambda_architecture}"])

    if mode == "kinesis":
        k = p["kinesis_data_streams_provisioned"]
        bill.add("Kinesis shard", f"1 shard × {HOURS_PER_MONTH} h",
                 HOURS_PER_MONTH * k["shard_hour"])
        units = events * math.ceil(a.record_bytes / (k["put_payload_unit_kb"] * 1024))
        bill.add("Kinesis PUT payload units", f"{units:,.0f} units of 25 KB",
                 units / 1e6 * k["put_payload_units_per_million"])
    f = p["firehose_direct_put"]
    billed_kb = max(f["record_rounding_kb"],
                    math.ceil(a.record_bytes / 1024 / f["record_rounding_kb"])
                    * f["record_rounding_kb"])
    gb = events * billed_kb / 1024 / 1024
    bill.add("Firehose ingestion", f"{gb:,.2f} GB billed (each record rounded to 5 KB)",
             gb * f["per_gb"])

    s3 = p["s3_standard"]
    objects = 30 * 24 * 3600 / a.buffer_seconds
    bill.add("S3 PUT (Firehose objects)", f"{objects:,.0f} objects",
             objects / 1000 * s3["put_per_thousand"])
    stored_gb = events * a.record_bytes * a.gzip_ratio / 1e9 * a.retention_months
    bill.add("S3 storage (steady state)", f"{stored_gb:,.3f} GB over {a.retention_months:g} "
             "months", stored_gb * s3["storage_gb_month"])
    bill.add("S3 GET (pipeline reads)", f"{objects:,.0f} objects",
             objects / 1000 * s3["get_per_thousand"])
    # LIST is billed at the PUT rate, whatever the traffic: the sensor's cost floor.
    lists = 30 * 24 * 3600 / a.sensor_seconds * a.sensor_lists
    bill.add("S3 LIST (raw-lake sensor)", f"{lists:,.0f} requests (every {a.sensor_seconds} s)",
             lists / 1000 * s3["put_per_thousand"])

    logs_gb = requests * a.log_bytes_per_request / 1e9
    cw = p["cloudwatch_logs"]
    bill.add("CloudWatch Logs", f"{logs_gb:,.3f} GB ingested",
             logs_gb * cw["ingest_per_gb"] + logs_gb * cw["storage_gb_month"] * 0.5)
    return bill


def assumptions_text(a: Assumptions | None = None) -> str:
    a = a or Assumptions()
    p = yaml.safe_load(PRICES.read_text())
    return (f"Assumptions: {a.record_bytes} B a record, {a.events_per_request:g} events a "
            f"request, Lambda {a.lambda_ms:g} ms at {a.lambda_memory_mb} MB "
            f"({a.lambda_architecture}), gzip to {a.gzip_ratio:.0%}, one Firehose object every "
            f"{a.buffer_seconds} s, raw data kept {a.retention_months:g} months, the raw-lake "
            f"sensor listing {a.sensor_lists} hour prefixes every {a.sensor_seconds} s. "
            f"Prices: {p['region']}, written down on {p['read_on']} ({PRICES.name}).")
