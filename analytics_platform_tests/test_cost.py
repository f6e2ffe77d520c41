"""The cost model against figures computed by hand from the price file."""

import pytest
from click.testing import CliRunner

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
    # 3 hour prefixes every 30 s, at the PUT/LIST rate: $1.30 a month
    assert line(b, "S3 LIST (raw-lake sensor)") == pytest.approx(3 * 86400 * 30 / 30 / 1000 * 0.005)
    assert "Kinesis shard" not in {i for i, _, _ in b.lines}
    assert b.total == pytest.approx(sum(u for _, _, u in b.lines))


def test_kinesis_adds_a_shard_and_http_api_adds_requests() -> None:
    fh = monthly_bill(1_000_000, "firehose", "url", prices=PRICES)
    kin = monthly_bill(1_000_000, "kinesis", "url", prices=PRICES)
    api = monthly_bill(1_000_000, "firehose", "http-api", prices=PRICES)
    assert line(kin, "Kinesis shard") == pytest.approx(730 * 0.015)
    assert line(kin, "Kinesis PUT payload units") == pytest.approx(0.014)
    assert kin.total - fh.total == pytest.approx(730 * 0.015 + 0.014)
    assert api.total - fh.total == pytest.approx(1_000_000 / 3 / 1e6 * 1.00)


def test_cli_prints_the_bill_and_its_assumptions() -> None:
    r = CliRunner().invoke(main, ["cost", "--events-per-month", "1000000", "--mode", "kinesis"])
    assert r.exit_code == 0, r.output
    assert "Kinesis shard" in r.output and "total" in r.output
    assert "Assumptions:" in r.output and "written down on" in r.output
    r = CliRunner().invoke(main, ["cost", "--events-per-month", "1", "--mode", "kafka"])
    assert r.exit_code == 2
