"""The cost model against figures computed by hand from the price file; docs/COSTS.md against
the command's output."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from analytics_platform import cost, settings
from analytics_platform.cli import main
from analytics_platform.cost import Assumptions, monthly_bill

PRICES = {
    "lambda": {"requests_per_million": 0.20, "gb_second_arm64": 0.0000133334,
               "gb_second_x86_64": 0.0000166667},
    "api_gateway_http": {"requests_per_million": 1.00},
    "firehose_direct_put": {"per_gb": 0.029, "record_rounding_kb": 5},
    "kinesis_data_streams_provisioned": {"shard_hour": 0.015,
                                         "put_payload_units_per_million": 0.014,
                                         "put_payload_unit_kb": 25},
    "s3_standard": {"storage_gb_month": 0.023, "put_per_thousand": 0.005,
                    "get_per_thousand": 0.0004},
    "cloudwatch_logs": {"ingest_per_gb": 0.50, "storage_gb_month": 0.03},
    "sqs_standard": {"requests_per_million": 0.40},
    "cloudfront": {"https_requests_per_10k": 0.0100, "data_out_internet_per_gb": 0.085,
                   "data_out_origin_per_gb": 0.020, "free_requests_month": 10_000_000,
                   "free_data_out_gb_month": 1000},
}


def line(bill, name: str) -> float:
    return next(usd for item, _, usd in bill.lines if item == name)


def test_firehose_mode_by_hand() -> None:
    a = Assumptions()
    b = monthly_bill(3_000_000, "firehose", "url", a, PRICES)
    requests = 1_000_000  # 3 events a request
    assert line(b, "Lambda requests") == pytest.approx(0.20)
    assert line(b, "Lambda compute") == pytest.approx(requests * 0.025 * 0.25 * 0.0000133334)
    # every 650-byte record is billed as 5 KB
    assert line(b, "Firehose ingestion") == pytest.approx(3_000_000 * 5 / 1024 / 1024 * 0.029)
    assert line(b, "S3 PUT (Firehose objects)") == pytest.approx(8640 / 1000 * 0.005)
    # 3 hour prefixes every 30 s, at the PUT/LIST rate: $1.30 a month; and the last week's 168
    # hour folders every hour: $0.60
    assert line(b, "S3 LIST (raw-lake sensor)") == pytest.approx(
        (3 * 86400 * 30 / 30 + 168 * 24 * 30) / 1000 * 0.005)
    assert "Kinesis shard" not in {i for i, _, _ in b.lines}
    assert b.total == pytest.approx(sum(u for _, _, u in b.lines))


def test_raw_notifications_replace_the_sensors_listing() -> None:
    """With raw/'s notifications in SQS (the stack with the pipeline) a tick is one SQS request,
    an object two more (S3's SendMessage, the sensor's DeleteMessageBatch) and one LIST of its
    hour; the recent hours are listed once an hour."""
    a = replace(Assumptions(), buffer_seconds=220, sensor_seconds=10, raw_queue=True)
    b = monthly_bill(1_000_000, "firehose", "url", a, PRICES)
    objects, ticks = 86400 * 30 / 220, 86400 * 30 / 10
    assert line(b, "SQS (raw/ notifications)") == pytest.approx((ticks + 2 * objects) / 1e6 * 0.40)
    assert line(b, "S3 LIST (raw-lake sensor)") == pytest.approx(
        (objects + 24 * 30 * 3 + 30 * 168) / 1000 * 0.005)  # the week's sweep daily
    listing = monthly_bill(1_000_000, "firehose", "url", replace(a, raw_queue=False), PRICES)
    # the listing every 10 s would be three times the $1.30 of a listing every 30 s
    assert line(listing, "S3 LIST (raw-lake sensor)") == pytest.approx(
        (3 * ticks + 168 * 24 * 30) / 1000 * 0.005)
    assert "SQS (raw/ notifications)" not in {i for i, _, _ in listing.lines}
    assert listing.total - b.total > 3.5


def test_kinesis_adds_a_shard_and_http_api_adds_requests() -> None:
    fh = monthly_bill(1_000_000, "firehose", "url", prices=PRICES)
    kin = monthly_bill(1_000_000, "kinesis", "url", prices=PRICES)
    api = monthly_bill(1_000_000, "firehose", "http-api", prices=PRICES)
    assert line(kin, "Kinesis shard") == pytest.approx(730 * 0.015)
    assert line(kin, "Kinesis PUT payload units") == pytest.approx(0.014)
    assert kin.total - fh.total == pytest.approx(730 * 0.015 + 0.014)
    assert api.total - fh.total == pytest.approx(1_000_000 / 3 / 1e6 * 1.00)


def test_cloudfront_by_hand() -> None:
    """docs/INGEST.md's figures at 1M events: $0.36 at list prices, $0.02 within the always-free
    allowance (requests and the transfer to browsers; not the transfer to the origin)."""
    plain = monthly_bill(1_000_000, "firehose", "url", prices=PRICES)
    cf = monthly_bill(1_000_000, "firehose", "url", prices=PRICES, cloudfront=True)
    assert not {i for i, _, _ in plain.lines if i.startswith("CloudFront")}
    requests = 1_000_000 / 3
    origin = (1_000_000 * 650 + requests * 350) / 1e9 * 0.020
    assert line(cf, "CloudFront requests") == 0 and line(cf, "CloudFront out to browsers") == 0
    assert line(cf, "CloudFront out to the origin") == pytest.approx(origin)
    assert cf.total - plain.total == pytest.approx(origin) and round(origin, 2) == 0.02
    no_free = {**PRICES, "cloudfront": {**PRICES["cloudfront"], "free_requests_month": 0,
                                        "free_data_out_gb_month": 0}}
    listed = monthly_bill(1_000_000, "firehose", "url", prices=no_free, cloudfront=True)
    assert listed.total - plain.total == pytest.approx(
        requests / 10_000 * 0.01 + requests * 250 / 1e9 * 0.085 + origin)
    assert round(listed.total - plain.total, 2) == 0.36
    # beyond the allowance: 100M events are 33.3M requests, of which 23.3M are billed
    big = monthly_bill(100_000_000, "firehose", "url", prices=PRICES, cloudfront=True)
    assert line(big, "CloudFront requests") == pytest.approx((1e8 / 3 - 1e7) / 10_000 * 0.01)
    # the whole stack's total moves by the origin transfer only (docs/COSTS.md shows the
    # command's output with --cloudfront, and without it the default total, unchanged)
    assert cost.stack_total(1_000_000, "machine", cloudfront=True) - cost.stack_total(
        1_000_000, "machine") == pytest.approx(origin)


def test_cli_prints_the_bill_and_its_assumptions() -> None:
    r = CliRunner().invoke(main, ["cost", "--events-per-month", "1000000", "--mode", "kinesis"])
    assert r.exit_code == 0, r.output
    assert "Kinesis shard" in r.output and "total" in r.output
    assert "Assumptions:" in r.output and "written down on" in r.output
    r = CliRunner().invoke(main, ["cost", "--events-per-month", "1", "--mode", "kafka"])
    assert r.exit_code == 2


# --- the whole stack: the pipeline and the dashboard (issue 17) ----------------------------------

ROOT = Path(__file__).resolve().parent.parent
STACK_PRICES = {
    **PRICES,
    "ec2_on_demand_hour": {"t4g.small": 0.0168}, "ec2_vcpus": {"t4g.small": 2},
    "ec2_burst_baseline": {"t4g.small": 0.20}, "ec2_surplus_vcpu_hour": 0.04,
    "ec2_spot_discount": 0.60, "public_ipv4_hour": 0.005, "ebs_gp3_gb_month": 0.08,
    "fargate_arm64": {"vcpu_hour": 0.03238, "gb_hour": 0.00356}, "fargate_spot_discount": 0.70,
    "cloudwatch_alarm_month": 0.10, "cloudwatch_custom_metric_month": 0.30,
    "cloudwatch_requests_per_thousand": 0.01, "ecr_storage_gb_month": 0.10,
}


def test_runs_a_day_counted_from_the_automation() -> None:
    p = cost.PipelineAssumptions(buffer_seconds=180, sensor_seconds=30,
                                 daily_runs_per_events_run=3, history_interval_minutes=60)
    r = cost.runs_per_day(1_000_000, p)
    # a Firehose object every 180 s (traffic fills every buffer), each seen by a 30-s sensor tick;
    # the schedule finds every hour processed; the all-history marts once an hour
    assert r.objects == 480 and r.sensor == 480 and r.schedule == 0
    assert r.daily == 480 * 3 and r.history == 24 and r.total == 480 * 4 + 24
    # an hour without objects is the schedule's: with none at all, one run an hour
    assert cost.runs_per_day(0, p).schedule == 24 and cost.runs_per_day(0, p).history == 24
    # a sensor slower than Firehose coalesces objects: one run per tick at most
    assert cost.runs_per_day(1_000_000, replace(p, sensor_seconds=600)).sensor == 144
    # 10k events a month: 111 requests a day, fewer than the buffer intervals
    assert cost.runs_per_day(10_000, p).objects == pytest.approx(10_000 / 30 / 3)


def test_machine_bill_by_hand() -> None:
    p = cost.PipelineAssumptions(buffer_seconds=180, sensor_seconds=30,
                                 daily_runs_per_events_run=3, history_interval_minutes=60)
    b = cost.pipeline_bill(1_000_000, "machine", p, STACK_PRICES)
    assert line(b, "EC2 t4g.small (Spot, 60% off)") == pytest.approx(730 * 0.0168 * 0.4)
    # IPv6 out: no public IPv4 address; the fallback design pays for one
    assert line(b, "IPv6 out (egress-only gateway)") == 0.0
    assert "Public IPv4 address" not in {i for i, _, _ in b.lines}
    ipv4 = cost.pipeline_bill(1_000_000, "machine-ipv4", p, STACK_PRICES)
    assert line(ipv4, "Public IPv4 address") == pytest.approx(730 * 0.005)
    assert ipv4.total - b.total == pytest.approx(730 * 0.005)
    assert line(b, "EBS gp3") == pytest.approx((8 + 10) * 0.08)
    # 480 events runs × 1 file, 1,440 day runs × 15, 24 history runs × 3, for 30 days
    assert line(b, "S3 PUT (lake files)") == pytest.approx(
        (480 + 1440 * 15 + 24 * 3) * 30 / 1000 * 0.005)
    # LIST: 4 an events run, 8 a day's run, 3 a history run (bench/s3_requests.py)
    assert line(b, "S3 LIST (runs)") == pytest.approx(
        (480 * 4 + 1440 * 8 + 24 * 3) * 30 / 1000 * 0.005)
    # 20 objects an hour: the k-th run of an hour reads k objects (one GET each), of which the
    # ingest bill counts the first read of each object
    assert line(b, "S3 GET (raw re-reads)") == pytest.approx(
        (20 * 21 / 2 - 20) * 24 * 30 / 1000 * 0.0004)
    # the lake: 6 GETs (404s) an events run for partitions never written, none a day's run
    assert line(b, "S3 GET (lake partitions)") == pytest.approx(480 * 6 * 30 / 1000 * 0.0004)
    assert line(b, "CloudWatch alarm + its metric") == pytest.approx(0.40)
    assert line(b, "CloudWatch PutMetricData") == pytest.approx((480 + 1440 + 24) * 30 * 0.01e-3)
    assert line(b, "Dashboard") == 0.0
    # 1,944 runs × 7.5 CPU-s + the work + 0.05 idle ≈ 0.22 vCPU: under the 0.40 baseline
    assert line(b, "EC2 CPU beyond the baseline") == 0.0
    busy = replace(p, run_cpu_seconds=40.0)  # 1,944 × 40 s ≈ 0.90 vCPU + 0.05
    surplus = cost.machine_cpu(1_000_000, "machine", busy) - 0.40
    assert surplus > 0.4
    assert line(cost.pipeline_bill(1_000_000, "machine", busy, STACK_PRICES),
                "EC2 CPU beyond the baseline") == pytest.approx(surplus * 730 * 0.04)
    assert b.total == pytest.approx(sum(u for _, _, u in b.lines))


def test_ecs_runs_are_billed_a_minute_at_least() -> None:
    p = cost.PipelineAssumptions(buffer_seconds=180, sensor_seconds=30,
                                 daily_runs_per_events_run=3, history_interval_minutes=60)
    b = cost.pipeline_bill(1_000_000, "ecs", p, STACK_PRICES)
    per_hour, per_day = 1_000_000 / 30 / 24, 1_000_000 / 30
    spot = 0.3 / 3600
    expected = 30 * (
        480 * max(60, 65 + per_hour / 50_500 / 0.5) * (0.5 * 0.03238 + 2 * 0.00356) * spot
        + 1440 * max(60, 65 + per_day / 83_000) * (0.03238 + 4 * 0.00356) * spot
        + 24 * 65 * (0.03238 + 4 * 0.00356) * spot)
    assert line(b, "Fargate Spot run tasks (arm64)") == pytest.approx(expected)
    # an empty cache a task: the lake's files are downloaded (78 GETs an events run, 51 a day's
    # run, one a day of the 13 months of sessions a history run pulls); a day's run lists once more
    assert line(b, "S3 GET (lake, empty task caches)") == pytest.approx(
        (480 * 78 + 1440 * 51 + 24 * 13 * 30) * 30 / 1000 * 0.0004)
    assert line(b, "S3 LIST (runs)") == pytest.approx(
        (480 * 4 + 1440 * 9 + 24 * 3) * 30 / 1000 * 0.005)
    # the machine no longer runs anything: its CPU is the idle processes'
    assert cost.machine_cpu(1_000_000, "ecs", p) == p.idle_vcpu


def test_event_to_dashboard_within_five_minutes() -> None:
    p = cost.PipelineAssumptions()
    typical, worst = cost.latency(cost.DESIGNS["machine"], p)
    # tracker batch, Firehose's buffer, the S3 notification, the sensor's and the automation's
    # ticks, the `events` run and the day's run: 5 + 220 + 5 + 2 × 10 + 2 × 25
    assert worst == 5 + p.buffer_seconds + 5 + 2 * p.sensor_seconds + 2 * p.run_wall_seconds
    assert worst <= 300 and typical < worst
    # the longest buffer that holds it: one more second would not
    assert cost.latency(cost.DESIGNS["machine"], replace(p, buffer_seconds=p.buffer_seconds + 1)
                        )[1] > 300
    # with Firehose's default 300-s buffer it would not hold
    assert cost.latency(cost.DESIGNS["machine"], replace(p, buffer_seconds=300))[1] > 300


def test_the_model_follows_the_stack_and_the_definitions() -> None:
    """The buffer, instance and volumes the model prices are the ones Terraform deploys, and the
    run sizes and days per hour the ones the definitions declare."""
    p = cost.PipelineAssumptions()
    prod = (ROOT / "infra/envs/prod/main.tf").read_text()
    assert f"var.enable_pipeline ? {p.buffer_seconds} : 300" in prod
    variables = (ROOT / "infra/modules/pipeline/variables.tf").read_text()

    def default(name: str) -> str:
        block = re.search(rf'variable "{name}" {{.*?\n}}', variables, re.S).group(0)
        return re.search(r"default\s*=\s*\"?([^\"\n]+)\"?", block).group(1)

    assert default("instance_type") == cost.DESIGNS["machine"].instance
    assert int(default("root_volume_gb")) == p.root_gb
    assert int(default("data_volume_gb")) == p.data_gb
    assert default("public_ipv4") == str(cost.DESIGNS["machine"].public_ipv4).lower()
    # with the pipeline the stack sends raw/'s notifications to a queue, whose URL the machine
    # gets, and the sensors then tick at their default with a queue
    assert "raw_notifications = var.enable_pipeline" in prod and p.raw_queue
    assert "ANALYTICS_RAW_QUEUE_URL = var.raw_queue_url" in (
        ROOT / "infra/modules/pipeline/main.tf").read_text()
    assert p.sensor_seconds == settings.SENSOR_INTERVAL_LOCAL

    from analytics_platform.defs.automation import daily_job, events_job, history_job

    for job, size in ((events_job, p.events_task), (daily_job, p.daily_task),
                      (history_job, p.history_task)):
        assert (float(job.tags["ecs/cpu"]) / 1024, float(job.tags["ecs/memory"]) / 1024) == size

    # a day's run writes one Parquet file per asset of daily_job (measured the same:
    # bench/s3_requests.py, 15 PUTs under lake/), a history run one per asset of history_job
    from analytics_platform.definitions import defs

    d = defs()
    assert len(d.resolve_job_def("daily_job").asset_layer.selected_asset_keys) == \
        p.files_per_daily_run
    assert len(d.resolve_job_def("history_job").asset_layer.selected_asset_keys) == \
        p.files_per_history_run


def test_backfill_capacity_model() -> None:
    p = cost.PipelineAssumptions()
    hours_1, usd_1 = cost.backfill_estimate(100_000_000, 1, p, STACK_PRICES)
    hours_50, usd_50 = cost.backfill_estimate(100_000_000, 50, p, STACK_PRICES)
    vcpu_s = 12 * 100_000_000 / 25_000
    assert hours_1 == pytest.approx((vcpu_s + 65) / 3600)
    assert hours_50 == pytest.approx((vcpu_s + 50 * 65) / 50 / 3600)
    # more tasks: the same work (plus a start each), in a fiftieth of the time
    assert usd_50 == pytest.approx((vcpu_s + 50 * 65) / 3600 * (0.03238 + 4 * 0.00356) * 0.3)
    assert usd_1 == pytest.approx((vcpu_s + 65) / 3600 * (0.03238 + 4 * 0.00356) * 0.3)
    # the machine's CPU need grows with traffic: a bound exists, above 10M events a month
    assert 10_000_000 < cost.largest_steady_state(0.4, p) < cost.largest_steady_state(2, p)
    assert cost.machine_cpu(cost.largest_steady_state(2, p) + 1_000_000, "machine", p) > 2


def test_cost_without_arguments_and_help() -> None:
    r = CliRunner().invoke(main, ["cost"])
    assert r.exit_code == 0, r.output
    assert "1,000,000 events a month" in r.output and "runs a day" in r.output
    assert "Event → dashboard" in r.output and "Not taken" in r.output
    help_text = CliRunner().invoke(main, ["cost", "--help"]).output
    for option in ("--events-per-month", "--design", "--mode", "--endpoint", "--buffer-seconds",
                   "--sensor-seconds", "--raw-listing", "--cloudfront", "--backfill"):
        assert option in help_text
    assert all(param.help for param in main.commands["cost"].params)


def test_costs_md_is_what_the_command_prints() -> None:
    """Every `$ analytics-platform cost …` block in docs/COSTS.md is the command's output."""
    doc = (ROOT / "docs" / "COSTS.md").read_text()
    blocks = re.findall(r"```\n\$ analytics-platform cost([^\n]*)\n(.*?)```", doc, re.S)
    assert len(blocks) >= 3
    for args, shown in blocks:
        r = CliRunner().invoke(main, ["cost", *args.split()])
        assert r.exit_code == 0, r.output
        assert shown.strip() == r.output.strip(), f"docs/COSTS.md is stale for `cost{args}`"
    # and the README cites the command's figure at a million events
    total = cost.stack_total(1_000_000, "machine")
    readme = (ROOT / "README.md").read_text()
    assert f"${total:.2f}" in readme and f"${cost.stack_total(1_000_000, None):.2f}" in readme
