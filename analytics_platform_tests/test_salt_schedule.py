"""The daily salt purge on AWS: infra/modules/ingest's EventBridge rule invokes the ingest Lambda
at 00:01 UTC, so a quiet site's salts go when they turn 48 hours old even with no request (the
handler's own purge runs only on a request, and S3's lifecycle expiry is asynchronous). Run
through the Lambda handler against moto's S3, as the other Lambda tests do."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from analytics_platform.ingest.core import IngestConfig, Ingestor
from analytics_platform.ingest.lambda_handler import handler
from analytics_platform.ingest.privacy import S3Salts, Salts
from analytics_platform_tests.test_ingest import MemorySink, http_api, rest_api

D = date(2026, 3, 2)
# When the schedule fires on day D: cron(1 0 * * ? *), some seconds into 00:01 UTC
FIRED_AT = datetime(2026, 3, 2, 0, 1, 17, tzinfo=UTC)


def scheduled_event(time: str = "2026-03-02T00:01:00Z") -> dict[str, Any]:
    """What EventBridge sends a target of a scheduled rule (the rule's default input)."""
    return {
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": time, "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/analytics-purge-salts"],
        "detail": {},
    }


def _day(d: date) -> str:
    return f"salts/{d.isoformat()}"


@pytest.fixture()
def salts(s3_bucket: str, moto_endpoint: str) -> tuple[S3Salts, Any]:
    """The salts bucket's store with the salts of D - 2, D - 1 and D, and a client to look."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    store = S3Salts(f"s3://{s3_bucket}/salts", s3)
    for back in (2, 1, 0):
        store.salt(D - timedelta(days=back))
    return store, s3


def keys(store: S3Salts, s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=store.bucket).get("Contents", [])]


class NoPipeline(Ingestor):
    """An Ingestor whose event pipeline must not run: the schedule only purges salts."""

    def handle(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the scheduled purge reached the event pipeline")


def ingestor(store: Any, sink: MemorySink | None = None, cls: type[Ingestor] = Ingestor,
             at: datetime = FIRED_AT) -> Ingestor:
    return cls(IngestConfig(("*",)), sink or MemorySink(), clock=lambda: at,
               salts=Salts(store))


@pytest.mark.s3
def test_the_schedule_deletes_the_salt_of_two_days_ago_without_a_request(
        salts: tuple[S3Salts, Any]) -> None:
    store, s3 = salts
    sink = MemorySink()
    out = handler(scheduled_event(), ingestor=ingestor(store, sink, NoPipeline))
    assert keys(store, s3) == [_day(D - timedelta(days=1)), _day(D)]
    assert out == {"purged": 1}
    assert sink.records == []


@pytest.mark.s3
def test_the_schedule_creates_no_salt(s3_bucket: str, moto_endpoint: str) -> None:
    """A quiet day: the purge must not create the day's salt (nothing hashes with it)."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    store = S3Salts(f"s3://{s3_bucket}/salts", s3)
    store.salt(D - timedelta(days=2))
    handler(scheduled_event(), ingestor=ingestor(store, cls=NoPipeline))
    assert keys(store, s3) == []


@pytest.mark.s3
@pytest.mark.parametrize("time", ["2026-03-09T00:01:00Z", "2026-02-20T00:01:00Z", None])
def test_the_day_purged_is_the_functions_today_whatever_the_event_says(
        salts: tuple[S3Salts, Any], time: str | None) -> None:
    """Anyone allowed to invoke the function could send the schedule's shape: the event's time
    (a week on, or gone) must not make it delete yesterday's or today's salt."""
    store, s3 = salts
    event = scheduled_event() if time is None else scheduled_event(time)
    if time is None:
        del event["time"]
    handler(event, ingestor=ingestor(store, cls=NoPipeline))
    assert keys(store, s3) == [_day(D - timedelta(days=1)), _day(D)]


@pytest.mark.s3
@pytest.mark.parametrize("request_event", [
    # a Function URL / HTTP API request whose body is the scheduled event
    http_api(scheduled_event()),
    # the same request with the schedule's keys beside its own (no endpoint sends that)
    {**http_api(scheduled_event()), "source": "aws.events", "detail-type": "Scheduled Event"},
    {**rest_api(scheduled_event()), "source": "aws.events", "detail-type": "Scheduled Event"},
], ids=["function_url_body", "function_url_top_level", "rest_api_top_level"])
def test_a_request_shaped_like_the_schedule_is_a_request(
        salts: tuple[S3Salts, Any], request_event: dict[str, Any]) -> None:
    """The request is answered as any request (an invalid event, 400) and purges nothing: on
    D + 1, when the function's clock is set, a purge would delete D - 2's and D - 1's salts."""
    store, s3 = salts
    sink = MemorySink()
    out = handler(request_event, ingestor=ingestor(store, sink, at=FIRED_AT + timedelta(days=1)))
    assert out["statusCode"] == 400 and json.loads(out["body"])
    assert keys(store, s3) == [_day(D - timedelta(days=back)) for back in (2, 1, 0)]
    assert sink.records == []


def test_a_failed_scheduled_purge_raises() -> None:
    """Nobody reads the answer of an asynchronous invocation: the purge's failure must be an
    invocation error, which Lambda retries and the ingest-errors alarm counts."""

    class Unreachable:
        def salt(self, day: date) -> bytes:
            raise AssertionError("the schedule creates no salt")

        def purge(self, today: date) -> int:
            raise ConnectionError("s3.us-east-1.amazonaws.com: timed out")

    with pytest.raises(ConnectionError):
        handler(scheduled_event(), ingestor=ingestor(Unreachable(), cls=NoPipeline))


def test_a_misconfigured_function_fails_the_scheduled_purge(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import analytics_platform.ingest.lambda_handler as lh

    monkeypatch.setattr(lh, "_INGESTOR", None)
    monkeypatch.setenv("ANALYTICS_SINK", "firehose")
    monkeypatch.setenv("ANALYTICS_FIREHOSE_STREAM", "analytics-raw")
    monkeypatch.setenv("ANALYTICS_SALT_URL", "/tmp/salts")  # not s3://: refused
    with pytest.raises(ValueError, match="ANALYTICS_SALT_URL"):
        lh.handler(scheduled_event())
