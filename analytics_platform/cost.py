"""The monthly AWS bill of the whole stack, line by line: `analytics-platform cost`.

The ingest side (``monthly_bill``: Lambda, Firehose, the raw lake), the pipeline and the
dashboard for each design of ``infra/modules/pipeline`` (``pipeline_bill``), the runs the current
automation makes a day (``runs_per_day``), the time from an event to the dashboard
(``latency``), and the capacity model of a backfill on ECS (``backfill_table``).

Prices come from ``prices_us_east_1.yaml`` (one file, with the date they were written down and
the page of each); usage comes from the assumptions below, each with the measurement it comes
from, and the command prints them with the bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
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
    # raw/'s ObjectCreated notifications into SQS (the stack with the pipeline: infra/modules/
    # storage, notifications.tf; $ANALYTICS_RAW_QUEUE_URL). The sensor then lists an hour only
    # when a message names one of its objects (one LIST an object: at most one object lands per
    # tick), and every recent hour once per reconcile_seconds; a tick is one ReceiveMessage (a
    # long poll, billed as one request whether a message comes or not), an object is S3's
    # SendMessage and, on the next tick, one DeleteMessageBatch (defs/automation/sensors.py;
    # test_raw_notifications.py counts the messages on moto's SQS).
    raw_queue: bool = False
    reconcile_seconds: int = 3600
    # and the last week of hour folders, hourly on a listing alone, daily with the queue
    sweep_lists: int = settings.SENSOR_SWEEP_HOURS
    sweep_seconds: int = settings.SENSOR_SWEEP_SECONDS
    sweep_seconds_queue: int = settings.SENSOR_SWEEP_SECONDS_QUEUE
    # Reading one raw object is one GET (lake.py's local_paths: get_object; boto3's
    # download_file sent a HEAD first). Measured with `python bench/s3_requests.py` on
    # 2026-12-06: an `events` run of an hour of 21 objects sent 21 HEAD + 21 GET under raw/
    # with download_file, 21 GET and no HEAD after.
    requests_per_raw_read: int = 1
    # With CloudFront in front (ingest_cloudfront): what goes out to the browser per request (the
    # handler's answer, `{"accepted":3}`, with its and CloudFront's headers: ~250 B) and what
    # goes to the origin beyond the body (the forwarded headers of the origin request policy,
    # the origin secret and CloudFront's own: ~350 B); the body is counted at record_bytes an
    # event, the stored record, which is larger than what the tracker sends. Estimates, not
    # measured here (no CloudFront offline).
    cloudfront_answer_bytes: int = 250
    cloudfront_header_bytes: int = 350


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
                 a: Assumptions | None = None, prices: dict | None = None,
                 cloudfront: bool = False) -> Bill:
    """The monthly bill for ``events`` events a month (``cloudfront``: with a CloudFront
    distribution in front of the endpoint, infra's ``ingest_cloudfront``)."""
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
    if cloudfront:
        _cloudfront_lines(bill, events, requests, a, p["cloudfront"])
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
    # Firehose writes an object per buffer interval that received a request, none for an
    # interval without (as runs_per_day counts them): at 0 or 1,000 events a month, not 8,640.
    objects = min(30 * 24 * 3600 / a.buffer_seconds, requests)
    bill.add("S3 PUT (Firehose objects)", f"{objects:,.0f} objects",
             objects / 1000 * s3["put_per_thousand"])
    stored_gb = events * a.record_bytes * a.gzip_ratio / 1e9 * a.retention_months
    bill.add("S3 storage (steady state)", f"{stored_gb:,.3f} GB over {a.retention_months:g} "
             "months", stored_gb * s3["storage_gb_month"])
    reads = objects * a.requests_per_raw_read
    bill.add("S3 GET (pipeline reads)", f"{reads:,.0f} requests (one GET an object)",
             reads / 1000 * s3["get_per_thousand"])
    ticks = 30 * 24 * 3600 / a.sensor_seconds
    if a.raw_queue:
        sqs = ticks + 2 * objects
        bill.add("SQS (raw/ notifications)", f"{sqs:,.0f} requests (a poll every "
                 f"{a.sensor_seconds} s, 2 an object)",
                 sqs / 1e6 * p["sqs_standard"]["requests_per_million"])
        lists = (objects + 30 * 24 * 3600 / a.reconcile_seconds * a.sensor_lists
                 + 30 * 24 * 3600 / a.sweep_seconds_queue * a.sweep_lists)
        bill.add("S3 LIST (raw-lake sensor)", f"{lists:,.0f} requests (an object's hour; "
                 f"{a.sensor_lists} hours every {a.reconcile_seconds // 60} min; "
                 f"{a.sweep_lists} every {a.sweep_seconds_queue // 3600} h)",
                 lists / 1000 * s3["put_per_thousand"])
    else:
        # LIST is billed at the PUT rate, whatever the traffic: the sensor's cost floor.
        lists = ticks * a.sensor_lists + 30 * 24 * 3600 / a.sweep_seconds * a.sweep_lists
        bill.add("S3 LIST (raw-lake sensor)", f"{lists:,.0f} requests (every {a.sensor_seconds} "
                 f"s; {a.sweep_lists} hours every {a.sweep_seconds // 60} min)",
                 lists / 1000 * s3["put_per_thousand"])

    logs_gb = requests * a.log_bytes_per_request / 1e9
    cw = p["cloudwatch_logs"]
    bill.add("CloudWatch Logs", f"{logs_gb:,.3f} GB ingested",
             logs_gb * cw["ingest_per_gb"] + logs_gb * cw["storage_gb_month"] * 0.5)
    return bill


def _cloudfront_lines(bill: Bill, events: int, requests: float, a: Assumptions,
                      c: dict) -> None:
    """Requests and the transfer out to browsers, less the always-free allowance; the transfer
    to the origin (the events' bodies), which it does not cover. At 1M events: $0.36 at list
    prices, $0.02 with the allowance (docs/INGEST.md)."""
    free_requests, free_gb = c["free_requests_month"], c["free_data_out_gb_month"]
    bill.add("CloudFront requests", f"{requests:,.0f} HTTPS ({free_requests / 1e6:g}M a month "
             "free)", max(0.0, requests - free_requests) / 10_000 * c["https_requests_per_10k"])
    out_gb = requests * a.cloudfront_answer_bytes / 1e9
    bill.add("CloudFront out to browsers", f"{out_gb:,.2f} GB ({free_gb / 1000:g} TB a month free)",
             max(0.0, out_gb - free_gb) * c["data_out_internet_per_gb"])
    origin_gb = (events * a.record_bytes + requests * a.cloudfront_header_bytes) / 1e9
    bill.add("CloudFront out to the origin", f"{origin_gb:,.2f} GB (bodies and headers)",
             origin_gb * c["data_out_origin_per_gb"])


def assumptions_text(a: Assumptions | None = None) -> str:
    a = a or Assumptions()
    p = yaml.safe_load(PRICES.read_text())
    sensor = (f"the raw-lake sensor polling raw/'s notifications queue every {a.sensor_seconds} "
              f"s and listing {a.sensor_lists} hour prefixes every {a.reconcile_seconds // 60} "
              "min" if a.raw_queue else f"the raw-lake sensor listing {a.sensor_lists} hour "
              f"prefixes every {a.sensor_seconds} s")
    return (f"Assumptions: {a.record_bytes} B a record, {a.events_per_request:g} events a "
            f"request, Lambda {a.lambda_ms:g} ms at {a.lambda_memory_mb} MB "
            f"({a.lambda_architecture}), gzip to {a.gzip_ratio:.0%}, one Firehose object every "
            f"{a.buffer_seconds} s, raw data kept {a.retention_months:g} months, {sensor}. "
            f"Prices: {p['region']}, written down on {p['read_on']} ({PRICES.name}).")


# --- the pipeline and the dashboard -------------------------------------------------------------

SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class Design:
    """One way to run the pipeline and the dashboard in the account (infra/modules/pipeline)."""

    key: str
    title: str
    instance: str = "t4g.small"
    spot: bool = True
    ecs_runs: bool = False  # run_launcher = "ecs": every run a Fargate task
    # The machine's way out to AWS's APIs: IPv6 through an egress-only internet gateway (free;
    # every client on AWS's dual-stack endpoints, docs/DEPLOY.md), or a public IPv4 address
    # (public_ipv4 = true: $0.005 an hour, for a region or an agent without them).
    public_ipv4: bool = False


DESIGNS: dict[str, Design] = {d.key: d for d in (
    Design("machine", "`serve` on one t4g.small, Spot, IPv6 out (default)"),
    Design("machine-ipv4", "the same with a public IPv4 address", public_ipv4=True),
    Design("machine-on-demand", "`serve` on one t4g.small, on-demand", spot=False),
    Design("ecs", "`serve` on one t4g.small, Spot; every run a Fargate Spot task", ecs_runs=True),
)}


@dataclass(frozen=True)
class PipelineAssumptions:
    # The stack's settings with the pipeline in the account (infra/envs/prod): raw/'s new objects
    # are S3 notifications in an SQS queue, so a sensor tick costs one SQS request instead of
    # three LIST requests and the sensors tick every 10 s (their default with a queue); Firehose
    # then flushes every 220 s (300 s without the pipeline), the longest buffer that holds an
    # event → dashboard within 5 minutes at worst: 5 (tracker) + 220 + 5 (notification) + 10
    # (sensor tick) + 25 (`events` run) + 10 (automation tick) + 25 (the day's run) = 300 s (see
    # `latency`). Each Firehose object is an `events` run and its downstream runs, so a longer
    # buffer is fewer runs: 393 objects a day instead of 480 at the former 180-s buffer with 30-s
    # ticks (which were 3 LIST requests each: $1.30 a month whatever the traffic).
    buffer_seconds: int = 220
    sensor_seconds: int = settings.SENSOR_INTERVAL_LOCAL
    raw_queue: bool = True
    # S3 → SQS: AWS's documentation says notifications are "typically delivered in seconds but
    # can sometimes take a minute or longer"; 5 s is a planning figure (moto delivers at once, so
    # it is not measured here), and the hourly listing bounds a lost one.
    notification_seconds: float = 5.0
    tracker_batch_seconds: float = 5.0  # the tracker sends a batch every 5 s
    # Runs the automation makes (defs/automation), counted from its definitions and measured with
    # `python bench/runs.py` (the production daemon on a local raw lake, a Firehose object every
    # 45 s standing for 180 s, sensors every 5 s standing for 30 s): the raw-lake sensor asks for
    # an `events` run of an hour when its objects changed since the hour was last processed (one
    # per new object; none while a run of that hour is queued, at most one more after one in
    # progress); the hourly schedule only for an hour no run processed with its current objects
    # (an hour without objects: none while every hour has some); the downstream automation for
    # one `daily_job` run per `events` run, of the days the hour's sessions belong to (one; two
    # for the runs of the first hour after midnight UTC, whose sessions began the day before: at
    # most 20 of the day's 480, hence 1.05), and the all-history marts at most once every
    # ANALYTICS_HISTORY_INTERVAL_MINUTES (60, 10 in the compressed run). Measured: 16 objects
    # made 16 `events` runs, 16 day runs and 1 all-history run (2.06 runs an object), and no run
    # of the 4 hours backfilled just before; the automation before issue 17 §5, same run: 16
    # `events` runs, 25 day runs (3 days an hour, coalesced while busy on 2 loaded cores) and 8
    # all-history runs (3.06 an object), plus the 4 backfilled hours again (5.5 an object with
    # sensors every 30 s and an object every 90 s under `dagster dev`).
    schedule_runs_per_day: int = 24  # when no hour has objects; fewer as hours fill
    daily_runs_per_events_run: float = 1.05
    history_interval_minutes: float = settings.HISTORY_INTERVAL_MINUTES
    # One run is one process: Dagster, the definitions, the run's events. Measured here
    # (x86_64, `/usr/bin/time dagster asset materialize` on a 1M-events-a-month lake): 6.4–7.0
    # CPU-s for an events hour, 8.2 for a day's sessions and marts, 7.5 for the history marts,
    # 24–26 s of wall time each on 2 shared, busy cores; peak RSS 320–376 MB.
    run_cpu_seconds: float = 7.5
    run_wall_seconds: float = 25.0
    # What the processes of `serve` use between runs (daemon, sensors' ticks, webserver, code
    # server, dashboard): an estimate, a share of one vCPU.
    idle_vcpu: float = 0.05
    # Work beyond the fixed cost, per vCPU (docs/BENCHMARKS.md, recorded on this machine): the
    # events step 995,648 records in 9.85 s on 2 vCPU (measure 1); sessions and the daily marts
    # 58.9 s for the 9.8M events of a 30-day backfill on 2 vCPU (measure 2's step times); the
    # whole backfill through Dagster, every asset, 9,833,919 events in 196.4 s on 2 vCPU.
    events_per_vcpu_second: float = 50_500
    daily_events_per_vcpu_second: float = 83_000
    backfill_events_per_vcpu_second: float = 25_000
    # The lake in S3: measured on a 2-day simulated lake (36,032 events): events 55 B an event,
    # session_events 46, sessions 7, the marts ~1.
    lake_bytes_per_event: int = 110
    # S3 requests of one run beyond the raw objects it reads, counted on the wire by
    # `python bench/s3_requests.py --json counts.json` (a moto S3 server counting every request
    # by prefix; 3 days of Firehose objects at 1M events a month backfilled, then one new object
    # and the runs the automation makes for it), run on 2026-12-06 after storage.Lake.existing
    # and _Remote.fetch changed (a GET a file, no HEAD; S3 asked with GETs or one ranged LIST),
    # and again on 2026-12-07 after a day's run lists the late events of the two dates before it
    # too (+2 LISTs) and an `events` run reads its hour's previous file (+1 GET in a task).
    # Files written (PUT): an `events` run 1 (its hour; quarantine writes none when empty), a
    # day's run 15 (one per asset of `daily_job`: sessions, session_events and 13 daily marts;
    # test_cost holds it to the job's assets), a history run 3. LIST (billed as PUT): an
    # `events` run 4 (its raw hour twice: to read it and to record what it read; the lake
    # twice), a day's run 8 (9 in a task), a history run 3. On the machine (its lake cache
    # persists) a run downloads no lake file, but asks S3 for the partitions of its window it
    # does not hold, those never written included (Lake.existing: a GET each, a 404 when absent,
    # up to 12; more, one LIST of their key range): 6 GETs for an `events` run, none for a day's
    # run (its partitions are listed), none for a history run. DELETE (1 an `events` run) is free.
    files_per_events_run: int = 1
    files_per_daily_run: int = 15
    files_per_history_run: int = 3
    lists_per_events_run: int = 4
    lists_per_daily_run: int = 8
    lists_per_history_run: int = 3
    lake_gets_per_events_run: int = 6
    lake_gets_per_daily_run: int = 0
    # A run task starts with an empty cache (same bench, `task`): an `events` run 78 lake GETs
    # and 4 LISTs, a day's run 51 GETs and 9 LISTs, a history run 3 LISTs and a GET per day of
    # sessions it pulls (3 days: 3 GETs), 13 months of days at steady state. No HEAD.
    ecs_lake_gets_per_events_run: int = 78
    ecs_lake_gets_per_daily_run: int = 51
    ecs_lake_gets_per_history_day: int = 1
    ecs_lists_per_daily_run: int = 9
    # Logs: ~6 KB of run output per run (measured: 3.8–6.3 KB), plus ~40 lines of 150 B a minute
    # from the daemon and the sensors between runs at 30-s ticks, of which the daemon writes two a
    # tick of each of the two sensors ("Checking for new runs…", "No run requests…"): 32 lines a
    # minute and 4 a tick. The alarm's metric: one PutMetricData request per successful run
    # (defs/automation/housekeeping.py, `run_succeeded_metric`).
    log_bytes_per_run: int = 6_000
    log_line_bytes: int = 150
    idle_log_lines_per_minute: int = 32
    log_lines_per_tick: int = 4
    root_gb: int = 8
    data_gb: int = 10
    ecr_gb: float = 1.0  # the image (~0.5 GB compressed) and the layers of the previous one
    # Fargate bills from the start of the image pull, one minute at least.
    task_start_seconds: float = 40.0
    # Task sizes (vCPU, GB) from the jobs' `ecs/cpu` / `ecs/memory` tags (defs/automation).
    events_task: tuple[float, float] = (0.5, 2.0)
    daily_task: tuple[float, float] = (1.0, 4.0)
    history_task: tuple[float, float] = (1.0, 4.0)


@dataclass(frozen=True)
class Runs:
    objects: float  # raw objects Firehose writes a day
    sensor: float  # `events` runs the sensor asks for a day
    schedule: float
    daily: float
    history: float

    @property
    def events(self) -> float:
        return self.sensor + self.schedule

    @property
    def total(self) -> float:
        return self.events + self.daily + self.history

    def to_text(self) -> str:
        return (f"{self.total:,.0f} runs a day: {self.sensor:,.0f} `events` runs from the "
                f"raw-lake sensor (one per new Firehose object, {self.objects:,.0f} a day) + "
                f"{self.schedule:,.0f} from the hourly schedule (hours without objects); "
                f"{self.daily:,.0f} runs of the days those hours changed, and the all-history "
                f"marts {self.history:,.0f} times (at most hourly).")


def ingest_assumptions(p: PipelineAssumptions | None = None) -> Assumptions:
    """The ingest assumptions with the pipeline's Firehose buffer and sensor interval."""
    p = p or PipelineAssumptions()
    return replace(Assumptions(), buffer_seconds=p.buffer_seconds, sensor_seconds=p.sensor_seconds,
                   raw_queue=p.raw_queue)


def runs_per_day(events: int, p: PipelineAssumptions | None = None,
                 a: Assumptions | None = None) -> Runs:
    """The runs the automation makes a day at a steady ``events`` events a month."""
    p = p or PipelineAssumptions()
    a = a or ingest_assumptions(p)
    requests = events / DAYS_PER_MONTH / a.events_per_request
    # Firehose writes an object per buffer interval that received a request.
    objects = min(SECONDS_PER_DAY / a.buffer_seconds, requests)
    sensor = min(objects, SECONDS_PER_DAY / a.sensor_seconds)
    # the schedule runs only the hours no sensor run processed: those without objects
    schedule = max(0.0, p.schedule_runs_per_day - objects)
    n_events = sensor + schedule
    history = min(n_events, 24 * 60 / p.history_interval_minutes)
    return Runs(objects, sensor, schedule, n_events * p.daily_runs_per_events_run, history)


def latency(design: Design, p: PipelineAssumptions | None = None) -> tuple[float, float]:
    """Seconds from an event to the dashboard: (typical, worst). The tracker's batch, Firehose's
    buffer, the S3 notification (with the queue), the sensor's tick, the `events` run, the
    automation's tick, the day's run."""
    p = p or PipelineAssumptions()
    run = p.run_wall_seconds + (p.task_start_seconds if design.ecs_runs else 0)
    waits = (p.tracker_batch_seconds + p.buffer_seconds + 2 * p.sensor_seconds
             + (p.notification_seconds if p.raw_queue else 0.0))
    return waits / 2 + 2 * run, waits + 2 * run


def _cpu_seconds_per_day(events: int, runs: Runs, p: PipelineAssumptions) -> float:
    per_hour = events / DAYS_PER_MONTH / 24
    per_day = events / DAYS_PER_MONTH
    return (runs.events * (p.run_cpu_seconds + per_hour / p.events_per_vcpu_second)
            + runs.daily * (p.run_cpu_seconds + per_day / p.daily_events_per_vcpu_second)
            + runs.history * p.run_cpu_seconds)


def pipeline_bill(events: int, design: Design | str = "machine",
                  p: PipelineAssumptions | None = None, prices: dict | None = None) -> Bill:
    """The monthly bill of the pipeline and the dashboard for ``design``."""
    design = DESIGNS[design] if isinstance(design, str) else design
    p = p or PipelineAssumptions()
    pr = prices or yaml.safe_load(PRICES.read_text())
    a = ingest_assumptions(p)
    runs = runs_per_day(events, p, a)
    bill = Bill()
    hour = pr["ec2_on_demand_hour"][design.instance]
    if design.spot:
        hour *= 1 - pr["ec2_spot_discount"]
    market = f"Spot, {pr['ec2_spot_discount']:.0%} off" if design.spot else "on-demand"
    bill.add(f"EC2 {design.instance} ({market})", f"{HOURS_PER_MONTH} h × ${hour:.4f}",
             HOURS_PER_MONTH * hour)

    vcpus = pr["ec2_vcpus"][design.instance]
    run_cpu = 0.0 if design.ecs_runs else _cpu_seconds_per_day(events, runs, p)
    average = p.idle_vcpu + run_cpu / SECONDS_PER_DAY
    baseline = vcpus * pr["ec2_burst_baseline"].get(design.instance, 1.0)
    surplus = max(0.0, average - baseline)
    bill.add("EC2 CPU beyond the baseline", f"{average:.2f} vCPU on average, baseline "
             f"{baseline:.2f}", surplus * HOURS_PER_MONTH * pr["ec2_surplus_vcpu_hour"])
    if design.public_ipv4:
        bill.add("Public IPv4 address", f"{HOURS_PER_MONTH} h (the way out; no NAT gateway)",
                 HOURS_PER_MONTH * pr["public_ipv4_hour"])
    else:
        bill.add("IPv6 out (egress-only gateway)", "no public IPv4 address, no NAT gateway", 0.0)
    gb = p.root_gb + p.data_gb
    bill.add("EBS gp3", f"{gb} GB (root {p.root_gb}, data {p.data_gb})",
             gb * pr["ebs_gp3_gb_month"])

    if design.ecs_runs:
        f = pr["fargate_arm64"]
        discount = 1 - pr["fargate_spot_discount"]
        task_cost = 0.0
        task_seconds = 0.0
        per_hour = events / DAYS_PER_MONTH / 24
        per_day = events / DAYS_PER_MONTH
        for n, (vcpu, mem), work in (
                (runs.events, p.events_task, per_hour / p.events_per_vcpu_second),
                (runs.daily, p.daily_task, per_day / p.daily_events_per_vcpu_second),
                (runs.history, p.history_task, 0.0)):
            billed = max(60.0, p.task_start_seconds + p.run_wall_seconds + work / vcpu)
            task_seconds += n * billed
            task_cost += n * billed / 3600 * (vcpu * f["vcpu_hour"] + mem * f["gb_hour"]) * discount
        tasks = runs.total * DAYS_PER_MONTH
        task_hours = task_seconds * DAYS_PER_MONTH / 3600
        bill.add("Fargate Spot run tasks (arm64)", f"{tasks:,.0f} tasks, {task_hours:,.0f} "
                 "task-hours", task_cost * DAYS_PER_MONTH)
        bill.add("Public IPv4 (run tasks)", f"{task_hours:,.0f} h",
                 task_hours * pr["public_ipv4_hour"])

    s3 = pr["s3_standard"]
    stored = events * p.lake_bytes_per_event / 1e9 * a.retention_months
    bill.add("S3 lake storage (steady state)", f"{stored:,.3f} GB over {a.retention_months:g} "
             "months", stored * s3["storage_gb_month"])
    puts = (runs.events * p.files_per_events_run + runs.daily * p.files_per_daily_run
            + runs.history * p.files_per_history_run) * DAYS_PER_MONTH
    bill.add("S3 PUT (lake files)", f"{puts:,.0f} files written",
             puts / 1000 * s3["put_per_thousand"])
    # LIST is billed at the PUT rate (bench/s3_requests.py: 4 an `events` run, 6 a day's run, 7
    # in a task).
    daily_lists = p.ecs_lists_per_daily_run if design.ecs_runs else p.lists_per_daily_run
    lists = (runs.events * p.lists_per_events_run + runs.daily * daily_lists
             + runs.history * p.lists_per_history_run) * DAYS_PER_MONTH
    bill.add("S3 LIST (runs)", f"{lists:,.0f} requests", lists / 1000 * s3["put_per_thousand"])
    # Each `events` run reads every object of its hour so far (the ingest bill counts one read),
    # two requests an object; and asks S3 for the lake partitions of its window it does not hold.
    a_reads = a.requests_per_raw_read
    per_hour = runs.objects / 24
    rereads = max(0.0, per_hour * (per_hour + 1) / 2 - per_hour) * 24 * a_reads
    if design.ecs_runs:
        lake = (runs.events * p.ecs_lake_gets_per_events_run
                + runs.daily * p.ecs_lake_gets_per_daily_run
                + runs.history * p.ecs_lake_gets_per_history_day * a.retention_months
                * DAYS_PER_MONTH)
    else:
        lake = runs.events * p.lake_gets_per_events_run + runs.daily * p.lake_gets_per_daily_run
    bill.add("S3 GET (raw re-reads)", f"{rereads * DAYS_PER_MONTH:,.0f} requests",
             rereads * DAYS_PER_MONTH / 1000 * s3["get_per_thousand"])
    bill.add("S3 GET (lake" + (", empty task caches)" if design.ecs_runs else " partitions)"),
             f"{lake * DAYS_PER_MONTH:,.0f} requests",
             lake * DAYS_PER_MONTH / 1000 * s3["get_per_thousand"])

    idle_lines = (p.idle_log_lines_per_minute * 60 * 24
                  + p.log_lines_per_tick * SECONDS_PER_DAY / p.sensor_seconds)
    log_gb = ((runs.total * p.log_bytes_per_run + idle_lines * p.log_line_bytes)
              * DAYS_PER_MONTH / 1e9)
    cw = pr["cloudwatch_logs"]
    bill.add("CloudWatch Logs (pipeline)", f"{log_gb:,.3f} GB ingested",
             log_gb * cw["ingest_per_gb"] + log_gb * cw["storage_gb_month"] * 0.5)
    bill.add("CloudWatch alarm + its metric", "no successful run for N hours",
             pr["cloudwatch_alarm_month"] + pr["cloudwatch_custom_metric_month"])
    puts_metric = runs.total * DAYS_PER_MONTH
    bill.add("CloudWatch PutMetricData", f"{puts_metric:,.0f} requests (one a successful run)",
             puts_metric / 1000 * pr["cloudwatch_requests_per_thousand"])
    bill.add("ECR image storage", f"{p.ecr_gb:g} GB", p.ecr_gb * pr["ecr_storage_gb_month"])
    bill.add("Dashboard", "on the same machine, through SSM port forwarding", 0.0)
    return bill


def machine_cpu(events: int, design: Design | str = "machine",
                p: PipelineAssumptions | None = None) -> float:
    """Average vCPUs the machine needs (the idle processes and, without ECS, every run)."""
    design = DESIGNS[design] if isinstance(design, str) else design
    p = p or PipelineAssumptions()
    if design.ecs_runs:
        return p.idle_vcpu
    return p.idle_vcpu + _cpu_seconds_per_day(events, runs_per_day(events, p), p) / SECONDS_PER_DAY


SIZES = (100_000, 1_000_000, 10_000_000)


def stack_total(events: int, design: str | None, mode: str = "firehose", endpoint: str = "url",
                p: PipelineAssumptions | None = None, cloudfront: bool = False) -> float:
    """Ingest (+ the pipeline and dashboard of ``design``, unless None) a month."""
    p = p or PipelineAssumptions()
    if design is None:  # the pipeline elsewhere: Firehose at its own default buffer
        return monthly_bill(events, mode, endpoint, Assumptions(), cloudfront=cloudfront).total
    return (monthly_bill(events, mode, endpoint, ingest_assumptions(p), cloudfront=cloudfront).total
            + pipeline_bill(events, design, p).total)


def design_table(mode: str = "firehose", endpoint: str = "url",
                 p: PipelineAssumptions | None = None, cloudfront: bool = False) -> str:
    """The whole stack a month, per design, at 100k / 1M / 10M events (Markdown)."""
    p = p or PipelineAssumptions()
    out = ["| design | " + " | ".join(f"{n:,} events" for n in SIZES)
           + " | event → dashboard (typical / worst) |", "|---" + "|---:" * (len(SIZES) + 1) + "|"]
    out.append("| ingest only (the pipeline elsewhere; 300-s buffer) | "
               + " | ".join(f"${stack_total(n, None, mode, endpoint, p, cloudfront):,.2f}"
                            for n in SIZES)
               + " | — |")
    for d in DESIGNS.values():
        typical, worst = latency(d, p)
        out.append(f"| `{d.key}`: {d.title} | "
                   + " | ".join(f"${stack_total(n, d.key, mode, endpoint, p, cloudfront):,.2f}"
                                for n in SIZES)
                   + f" | {typical:.0f} s / {worst:.0f} s |")
    return "\n".join(out)


def alternatives_text(p: PipelineAssumptions | None = None, prices: dict | None = None) -> str:
    """What the design does not use, a month, so the choice shows in numbers."""
    pr = prices or yaml.safe_load(PRICES.read_text())
    spot = (pr["ec2_on_demand_hour"]["t4g.small"] * pr["ec2_spot_discount"] * HOURS_PER_MONTH)
    rows = [
        ("a public IPv4 address (pipeline_public_ipv4)", HOURS_PER_MONTH * pr["public_ipv4_hour"],
         "instead of IPv6 through an egress-only gateway", 0.0),
        ("NAT gateway (a private subnet's way out)", HOURS_PER_MONTH * pr["nat_gateway_hour"],
         "instead of IPv6 through an egress-only gateway", 0.0),
        ("6 interface endpoints (SSM, SSM/EC2 messages, ECR API, ECR images, Logs)",
         6 * HOURS_PER_MONTH * pr["interface_endpoint_hour"],
         "instead of IPv6 through an egress-only gateway", 0.0),
        ("RDS PostgreSQL db.t4g.micro, 20 GB, a Secrets Manager secret",
         HOURS_PER_MONTH * pr["rds_postgres_t4g_micro_hour"] + 20 * pr["rds_gp2_gb_month"]
         + pr["secrets_manager_secret_month"],
         "instead of SQLite (or PostgreSQL) on the data volume", 0.0),
        ("the machine on-demand", pr["ec2_on_demand_hour"]["t4g.small"] * HOURS_PER_MONTH,
         "instead of Spot", pr["ec2_on_demand_hour"]["t4g.small"] * HOURS_PER_MONTH - spot),
    ]
    width = max(len(r[0]) for r in rows)
    lines = ["Not taken (a month):"]
    for what, usd, instead, saved in rows:
        lines.append(f"  {what:<{width}}  ${usd:>6.2f}  {instead} (${saved:.2f})"
                     if saved else f"  {what:<{width}}  ${usd:>6.2f}  {instead}")
    return "\n".join(lines)


def stack_text(events: int, design: str = "machine", mode: str = "firehose",
               endpoint: str = "url", p: PipelineAssumptions | None = None,
               cloudfront: bool = False) -> str:
    """What `analytics-platform cost` prints: the bill line by line, the runs, the latency."""
    p = p or PipelineAssumptions()
    d = DESIGNS[design]
    a = ingest_assumptions(p)
    ingest = monthly_bill(events, mode, endpoint, a, cloudfront=cloudfront)
    pipe = pipeline_bill(events, d, p)
    lines = ingest.lines + pipe.lines
    width = max(len(i) for i, _, _ in lines)
    usage = max(len(u) for _, u, _ in lines)

    def block(title: str, bill: Bill) -> list[str]:
        out = [title]
        out += [f"  {i:<{width}}  {u:<{usage}}  ${usd:>7.2f}" for i, u, usd in bill.lines]
        out.append(f"  {'subtotal':<{width}}  {'':<{usage}}  ${bill.total:>7.2f}")
        return out

    typical, worst = latency(d, p)
    cpu = machine_cpu(events, d, p)
    behind = ", behind CloudFront" if cloudfront else ""
    out = [f"The whole stack at {events:,} events a month: ingest_mode={mode}, "
           f"endpoint={endpoint}{behind}; pipeline design `{design}`: {d.title}.", ""]
    out += block("Ingest (infra/modules/ingest, storage)", ingest)
    out += block("Pipeline and dashboard (infra/modules/pipeline)", pipe)
    out.append(f"  {'total':<{width}}  {'':<{usage}}  ${ingest.total + pipe.total:>7.2f}")
    out += ["", f"Runs: {runs_per_day(events, p).to_text()}",
            f"The machine: {cpu:.2f} vCPU on average of its "
            f"{yaml.safe_load(PRICES.read_text())['ec2_vcpus'][d.instance]}.",
            f"Event → dashboard: about {typical:.0f} s, at most {worst:.0f} s (tracker batch "
            f"{p.tracker_batch_seconds:g} s + Firehose buffer {p.buffer_seconds} s"
            + (f" + S3 notification {p.notification_seconds:g} s" if p.raw_queue else "")
            + f" + sensor tick "
            f"{p.sensor_seconds} s + `events` run + automation tick {p.sensor_seconds} s + the "
            f"day's run, {p.run_wall_seconds:g} s a run"
            + (f" + {p.task_start_seconds:g} s to start a task" if d.ecs_runs else "") + ").",
            "", "Every design, the whole stack a month:",
            design_table(mode, endpoint, p, cloudfront), "",
            alternatives_text(p), "", assumptions_text(a)]
    return "\n".join(out)


# --- the capacity model of a backfill (issue 17 §4) -------------------------------------------

BACKFILL_SIZES = (10_000_000, 100_000_000, 1_000_000_000)
BACKFILL_TASKS = (1, 10, 50)


def backfill_estimate(events_per_month: int, tasks: int, p: PipelineAssumptions | None = None,
                      prices: dict | None = None, task: tuple[float, float] = (1.0, 4.0),
                      spot: bool = True) -> tuple[float, float]:
    """(wall hours, USD) to backfill a year of ``events_per_month`` with ``tasks`` run tasks of
    ``task`` (vCPU, GB) at once, at the measured whole-pipeline rate per vCPU."""
    p = p or PipelineAssumptions()
    pr = prices or yaml.safe_load(PRICES.read_text())
    vcpu, mem = task
    vcpu_seconds = 12 * events_per_month / p.backfill_events_per_vcpu_second
    # each task pays its start once per run; a year in `tasks` slices
    task_seconds = vcpu_seconds / vcpu + tasks * (p.task_start_seconds + p.run_wall_seconds)
    wall_hours = task_seconds / tasks / 3600
    f = pr["fargate_arm64"]
    discount = (1 - pr["fargate_spot_discount"]) if spot else 1.0
    usd = task_seconds / 3600 * (vcpu * f["vcpu_hour"] + mem * f["gb_hour"]) * discount
    return wall_hours, usd


def machine_backfill_hours(events_per_month: int, instance: str,
                           p: PipelineAssumptions | None = None) -> float:
    p = p or PipelineAssumptions()
    vcpus = yaml.safe_load(PRICES.read_text())["ec2_vcpus"][instance]
    return 12 * events_per_month / p.backfill_events_per_vcpu_second / vcpus / 3600


def largest_steady_state(vcpus: float, p: PipelineAssumptions | None = None) -> int:
    """The most events a month (in steps of 1M) for which the runs of the current automation
    need at most ``vcpus`` on average on one machine."""
    p = p or PipelineAssumptions()
    n = 0
    while machine_cpu(n + 1_000_000, "machine", p) <= vcpus and n < 100_000_000_000:
        n += 1_000_000
    return n


def _duration(hours: float) -> str:
    return f"{hours * 60:,.0f} min" if hours < 1 else f"{hours:,.1f} h"


def backfill_text(p: PipelineAssumptions | None = None) -> str:
    """The capacity model: a year's backfill on ECS run tasks, and on one machine."""
    p = p or PipelineAssumptions()
    pr = yaml.safe_load(PRICES.read_text())
    head = "| events a month | a year | " + " | ".join(
        f"{t} task{'s' if t > 1 else ''} (wall, Fargate Spot)" for t in BACKFILL_TASKS) + \
        " | one t4g.small | one c7g.16xlarge (64 vCPU) |"
    out = [f"A year's backfill: the whole pipeline through Dagster at "
           f"{p.backfill_events_per_vcpu_second:,.0f} events/s per vCPU (docs/BENCHMARKS.md "
           f"measure 2: 9,833,919 events in 196.4 s on 2 vCPU); run tasks of 1 vCPU and 4 GB "
           f"(the day runs' `ecs/cpu`/`ecs/memory` tags), each paying "
           f"{p.task_start_seconds + p.run_wall_seconds:g} s to start; Fargate arm64 at "
           f"{pr['fargate_spot_discount']:.0%} off on Spot.", "", head,
           "|---:" * (len(BACKFILL_TASKS) + 4) + "|"]
    for n in BACKFILL_SIZES:
        cells = []
        for t in BACKFILL_TASKS:
            hours, usd = backfill_estimate(n, t, p, pr)
            cells.append(f"{_duration(hours)}, ${usd:,.2f}")
        small = machine_backfill_hours(n, "t4g.small", p)
        big = machine_backfill_hours(n, "c7g.16xlarge", p)
        big_usd = big * pr["ec2_on_demand_hour"]["c7g.16xlarge"]
        out.append(f"| {n:,} | {12 * n:,} | " + " | ".join(cells)
                   + f" | {_duration(small)} | {_duration(big)}, ${big_usd:,.2f} |")
    baseline = pr["ec2_vcpus"]["t4g.small"] * pr["ec2_burst_baseline"]["t4g.small"]
    at_baseline = largest_steady_state(baseline, p)
    at_full = largest_steady_state(pr["ec2_vcpus"]["t4g.small"], p)
    out += ["", f"One machine stops being enough: under the current automation a t4g.small's runs "
            f"stay within its CPU baseline ({baseline:.1f} vCPU, no surplus billed) up to about "
            f"{at_baseline:,} events a month, and need both its vCPUs at about {at_full:,} "
            f"(CPU only: a day's sessions are then {at_full / DAYS_PER_MONTH / 1e6:,.1f}M "
            f"events, which DuckDB spills to disk within 2 GiB; a bigger machine comes first). "
            f"A year's backfill of 100M events a month takes it "
            f"{machine_backfill_hours(100_000_000, 't4g.small', p) / 24:,.1f} days, of 1B "
            f"{machine_backfill_hours(1_000_000_000, 't4g.small', p) / 24:,.1f}: there the ECS "
            f"run launcher spreads the runs over Fargate tasks (bounded by the run queue's "
            f"limits) and the machine only schedules."]
    return "\n".join(out)
