"""The ingest handler through HTTP-shaped Lambda events, and its sinks against moto's server."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_platform.contract import RAW_FIELD_NAMES, validate_raw_record
from analytics_platform.ingest.core import IngestConfig, Ingestor, SinkError
from analytics_platform.ingest.lambda_handler import handler
from analytics_platform.ingest.sinks import FirehoseSink, KinesisSink, S3Sink, sink_from_env
from analytics_platform.lake import open_raw_lake
from analytics_platform_tests.test_contract import good

NOW = datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class MemorySink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def put(self, records: list[dict[str, Any]]) -> None:
        self.records += records


def ingestor(origins: tuple[str, ...] = ("https://www.example.com",)) -> tuple[Ingestor,
                                                                               MemorySink]:
    sink = MemorySink()
    return Ingestor(IngestConfig(origins), sink, clock=lambda: NOW), sink


def http_api(body: Any, method: str = "POST", headers: dict | None = None,
             b64: bool = False) -> dict[str, Any]:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    raw = raw.encode() if isinstance(raw, str) else raw
    try:
        raw.decode()
    except UnicodeDecodeError:
        b64 = True  # API Gateway passes bodies that are not UTF-8 base64-encoded
    return {
        "version": "2.0", "rawPath": "/v1/events",
        "headers": {"content-type": "application/json", "user-agent": UA,
                    "origin": "https://www.example.com", "x-forwarded-for": "203.0.113.9",
                    "cookie": "sid=secret", **(headers or {})},
        "requestContext": {"http": {"method": method, "sourceIp": "203.0.113.9"}},
        "body": base64.b64encode(raw).decode() if b64 else raw.decode(),
        "isBase64Encoded": b64,
    }


def rest_api(body: Any) -> dict[str, Any]:
    return {"httpMethod": "POST", "path": "/v1/events", "body": json.dumps(body),
            "headers": {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA},
            "requestContext": {"identity": {"sourceIp": "203.0.113.9"}}, "isBase64Encoded": False}


def test_a_valid_event_is_stored_enriched_and_nothing_else() -> None:
    ing, sink = ingestor()
    resp = handler(http_api(good(extra="dropped")), ingestor=ing)
    assert resp["statusCode"] == 202 and json.loads(resp["body"]) == {"accepted": 1}
    assert resp["headers"]["access-control-allow-origin"] == "https://www.example.com"
    [rec] = sink.records
    assert rec["ingest_ts"] == "2026-03-02T10:00:00.123Z"
    assert rec["user_agent"] == UA and rec["schema_version"] == 1
    assert set(rec) <= set(RAW_FIELD_NAMES) and "extra" not in rec
    text = json.dumps(sink.records)
    assert "203.0.113.9" not in text and "secret" not in text


@pytest.mark.parametrize("event", [rest_api(good()), http_api(good(), b64=True)])
def test_rest_api_and_base64_function_url_events(event: dict[str, Any]) -> None:
    ing, sink = ingestor(("*",))
    assert handler(event, ingestor=ing)["statusCode"] == 202
    assert len(sink.records) == 1


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (good(event_type="click"), 400, "unknown_event_type:event_type"),
        (good(event_id="nope"), 400, "not_uuid:event_id"),
        (good(page_path="/" + "x" * 2048), 400, "too_long:page_path"),
        (good(screen_width="1920"), 400, "wrong_type:screen_width"),
        (good(props={"a": {"b": 1}}), 400, "props_bad_value:props.a"),
        ("{not json", 400, "invalid_json"),
        ([], 400, "empty_batch"),
        ([good()] * 51, 413, "batch_too_large"),
    ],
)
def test_rules_answer_with_their_reason(body: Any, status: int, reason: str) -> None:
    ing, sink = ingestor()
    resp = handler(http_api(body), ingestor=ing)
    assert resp["statusCode"] == status
    assert json.loads(resp["body"])["errors"][0]["reason"] == reason
    assert sink.records == []


def test_json_nested_deeper_than_the_parsers_go_is_invalid_json_not_a_crash() -> None:
    # 20,000 levels (40 KB, under the size limit): orjson refuses past 1,024 and the json
    # module's fallback then hit Python's recursion limit, which was a 500 internal_error.
    ing, sink = ingestor()
    for body in (b"[" * 20000 + b"]" * 20000, b'{"a":' * 5000 + b"1" + b"}" * 5000):
        resp = handler(http_api(body), ingestor=ing)
        assert resp["statusCode"] == 400, resp
        assert json.loads(resp["body"])["errors"][0]["reason"] == "invalid_json"
    assert sink.records == []


def test_a_batch_stores_the_good_and_names_the_bad_by_index() -> None:
    ing, sink = ingestor()
    batch = [good(), good(event_id=str(uuid.uuid4()), page_path=""),
             good(event_id=str(uuid.uuid4()))]
    resp = handler(http_api(batch), ingestor=ing)
    body = json.loads(resp["body"])
    assert resp["statusCode"] == 202 and body["accepted"] == 2 and body["rejected"] == 1
    assert body["errors"] == [{"reason": "empty:page_path", "rule": "empty",
                               "field": "page_path", "index": 1,
                               "message": "page_path must not be empty"}]
    assert len(sink.records) == 2


def test_size_and_media_type() -> None:
    ing, _ = ingestor()
    big = json.dumps(good(page_title="x" * 500)).encode() + b" " * 70_000
    assert handler(http_api(big), ingestor=ing)["statusCode"] == 413
    resp = handler(http_api(good(), headers={"content-type": "application/x-www-form-urlencoded"}),
                   ingestor=ing)
    assert resp["statusCode"] == 415
    assert json.loads(resp["body"])["reason"] == "unsupported_media_type"
    resp = handler(http_api(good(), headers={"content-type": "text/plain;charset=UTF-8"}),
                   ingestor=ing)
    assert resp["statusCode"] == 202  # navigator.sendBeacon
    assert handler(http_api(good(), method="GET"), ingestor=ing)["statusCode"] == 405


def test_cors_allowlist_and_preflight() -> None:
    ing, sink = ingestor(("https://www.example.com", "https://example.com"))
    pre = handler(http_api("", method="OPTIONS", headers={"origin": "https://example.com"}),
                  ingestor=ing)
    assert pre["statusCode"] == 204
    assert pre["headers"]["access-control-allow-origin"] == "https://example.com"
    assert "POST" in pre["headers"]["access-control-allow-methods"]
    assert pre["headers"]["access-control-allow-headers"] == "content-type"
    evil = {"origin": "https://evil.example.net"}
    assert handler(http_api("", method="OPTIONS", headers=evil), ingestor=ing)["statusCode"] == 403
    resp = handler(http_api(good(), headers=evil), ingestor=ing)
    assert resp["statusCode"] == 403 and "access-control-allow-origin" not in resp["headers"]
    assert sink.records == []


def test_a_failing_sink_is_a_503_the_client_retries() -> None:
    class Broken:
        def put(self, records: list[dict]) -> None:
            raise SinkError("firehose down")

    resp = handler(http_api(good()), ingestor=Ingestor(IngestConfig(("*",)), Broken()))
    assert resp["statusCode"] == 503 and json.loads(resp["body"])["reason"] == "sink_unavailable"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda c: st.lists(c, max_size=4)
                              | st.dictionaries(st.text(max_size=12), c, max_size=6),
                              max_leaves=15).map(lambda v: json.dumps(v).encode())),
       st.booleans())
def test_arbitrary_bodies_never_raise_and_never_store_a_bad_record(body: bytes, b64: bool) -> None:
    ing, sink = ingestor(("*",))
    resp = handler(http_api(body, b64=b64), ingestor=ing)
    assert resp["statusCode"] in (202, 400, 413)
    json.loads(resp["body"])
    for rec in sink.records:
        assert validate_raw_record(rec) == []


# --- sinks against moto's server ------------------------------------------------------------


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def records(n: int) -> list[dict[str, Any]]:
    ing, sink = ingestor(("*",))
    ing.handle("POST", {"content-type": "application/json", "user-agent": UA},
               json.dumps([good(event_id=str(uuid.uuid4())) for _ in range(n)]).encode())
    return sink.records


@pytest.mark.s3
def test_firehose_sink_delivers_newline_delimited_records(moto_endpoint: str, s3_bucket: str
                                                          ) -> None:
    fh = client("firehose", moto_endpoint)
    name = f"events-{uuid.uuid4().hex[:8]}"
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN":
            f"arn:aws:s3:::{s3_bucket}", "Prefix": "raw/", "CompressionFormat": "UNCOMPRESSED"})
    sent = records(7)
    FirehoseSink(name, fh).put(sent)
    s3 = client("s3", moto_endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    body = b"".join(s3.get_object(Bucket=s3_bucket, Key=k)["Body"].read() for k in keys)
    assert body.count(b"\n") == 7 and body.endswith(b"\n")
    assert [json.loads(x) for x in body.splitlines()] == sent


@pytest.mark.s3
def test_kinesis_sink_partitions_by_session(moto_endpoint: str) -> None:
    kin = client("kinesis", moto_endpoint)
    name = f"events-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=name, ShardCount=1)
    sent = records(5)
    KinesisSink(name, kin).put(sent)
    shard = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"][0]["ShardId"]
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kin.get_records(ShardIterator=it)["Records"]
    assert [json.loads(r["Data"]) for r in got] == sent
    assert all(r["Data"].endswith(b"\n") for r in got)
    assert {r["PartitionKey"] for r in got} == {s["session_id"] for s in sent}


@pytest.mark.s3
@pytest.mark.parametrize("service", ["firehose", "kinesis"])
def test_only_the_refused_records_are_sent_again(moto_endpoint: str, s3_bucket: str,
                                                 service: str) -> None:
    """The real endpoint answers; a botocore hook marks records 1 and 3 of the first answer as
    refused (as AWS does under throttling), and the sink must resend exactly those."""
    c = client(service, moto_endpoint)
    name = f"events-{uuid.uuid4().hex[:8]}"
    if service == "firehose":
        c.create_delivery_stream(
            DeliveryStreamName=name, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{s3_bucket}"})
        op, items, failed_key, count_key = "PutRecordBatch", "Records", "RequestResponses", \
            "FailedPutCount"
    else:
        c.create_stream(StreamName=name, ShardCount=1)
        op, items, failed_key, count_key = "PutRecords", "Records", "Records", "FailedRecordCount"
    calls: list[list[bytes]] = []

    def capture(params: dict, **_: Any) -> None:
        calls.append([r["Data"] for r in params[items]])

    def refuse_first(parsed: dict, **_: Any) -> None:
        if len(calls) == 1:
            for i in (1, 3):
                parsed[failed_key][i] = {"ErrorCode": "ServiceUnavailableException",
                                         "ErrorMessage": "Slow down."}
            parsed[count_key] = 2

    c.meta.events.register(f"provide-client-params.{service}.{op}", capture)
    c.meta.events.register(f"after-call.{service}.{op}", refuse_first)
    sent = records(5)
    sink = FirehoseSink(name, c) if service == "firehose" else KinesisSink(name, c)
    sink.put(sent)
    assert len(calls) == 2
    assert calls[1] == [calls[0][1], calls[0][3]]

    def always(parsed: dict, **_: Any) -> None:
        parsed[failed_key][0] = {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}
        parsed[count_key] = 1

    c.meta.events.register(f"after-call.{service}.{op}", always)
    with pytest.raises(SinkError, match="still refused"):
        sink.put(records(2))


@pytest.mark.s3
def test_s3_sink_writes_the_raw_lake_layout(s3_bucket: str) -> None:
    sent = records(3)
    S3Sink(f"s3://{s3_bucket}/raw").put(sent)
    lake = open_raw_lake(f"s3://{s3_bucket}/raw")
    [obj] = lake.list_hour(NOW)
    assert obj.key.startswith("year=2026/month=03/day=02/hour=10/analytics-1-2026-03-02-10-00-00-")
    assert [json.loads(x) for x in gzip.decompress(lake.read(obj.key)).splitlines()] == sent


def test_sink_configuration_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_SINK", "kafka")
    with pytest.raises(ValueError, match="use firehose, kinesis or s3"):
        sink_from_env()
    monkeypatch.setenv("ANALYTICS_SINK", "firehose")
    monkeypatch.delenv("ANALYTICS_FIREHOSE_STREAM", raising=False)
    with pytest.raises(ValueError, match="needs ANALYTICS_FIREHOSE_STREAM"):
        sink_from_env()


def test_the_lambda_zip_is_self_contained_and_reproducible(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from analytics_platform.cli import main

    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    for out in (a, b):
        result = CliRunner().invoke(main, ["build-lambda", "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        names = z.namelist()
        z.extractall(tmp_path / "pkg")
    assert "analytics_platform/ingest/lambda_handler.py" in names
    assert not any("dagster" in n or "defs/" in n for n in names)
    # Only the standard library on the path (-S: no site-packages), as a bare runtime.
    script = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from analytics_platform.ingest.lambda_handler import handler;"
        "from analytics_platform.ingest.core import Ingestor, IngestConfig;"
        "import analytics_platform.ingest.sinks;"
        "stored = [];"
        "sink = type('S', (), {'put': lambda self, r: stored.extend(r)})();"
        "ev = {'requestContext': {'http': {'method': 'POST'}},"
        " 'headers': {'content-type': 'application/json'}, 'body': sys.argv[2]};"
        "r = handler(ev, ingestor=Ingestor(IngestConfig(('*',)), sink));"
        "print(r['statusCode'], len(stored))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", script, str(tmp_path / "pkg"),
                          json.dumps(good())], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["202", "1"]


# --- the Lambda handler: whatever the event, a JSON answer --------------------------------------

_HEADER_NAMES = st.sampled_from(["content-type", "Content-Type", "CONTENT-TYPE", "origin",
                                 "Origin", "user-agent", "User-Agent", "x-forwarded-for",
                                 "cookie", "content-length"])
_HEADER_VALUES = st.one_of(st.sampled_from(["application/json", "text/plain;charset=UTF-8",
                                            "https://www.example.com", UA, "",
                                            "application/x-www-form-urlencoded"]),
                           st.text(max_size=30), st.none(), st.integers())
_METHODS = st.one_of(st.sampled_from(["POST", "post", "OPTIONS", "GET", "PUT", "DELETE", "HEAD",
                                      "PATCH", ""]), st.text(max_size=8), st.none(),
                     st.integers())
_BODIES = st.one_of(
    st.builds(lambda n: json.dumps([good(event_id=str(uuid.uuid4())) for _ in range(n)]),
              st.integers(0, 3)),
    st.text(max_size=200), st.none(), st.integers(), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


@st.composite
def lambda_events(draw: st.DrawFn) -> dict[str, Any]:
    """Events as a Function URL, an HTTP API (payload 2.0) and a REST API (payload 1.0) send
    them, with the parts a client or a misconfigured integration can leave out or get wrong."""
    shape = draw(st.sampled_from(["function_url", "http_api_v2", "rest_v1", "junk"]))
    headers = draw(st.one_of(st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=6),
                             st.none(), st.just([]), st.just("x")))
    body = draw(_BODIES)
    b64 = draw(st.one_of(st.booleans(), st.none(), st.just("true")))
    if b64 is True and isinstance(body, str) and draw(st.booleans()):
        body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
    method = draw(_METHODS)
    event: dict[str, Any] = {"body": body, "isBase64Encoded": b64, "headers": headers}
    if shape in ("function_url", "http_api_v2"):
        event |= {"version": "2.0", "rawPath": "/v1/events", "routeKey": (
            "$default" if shape == "function_url" else "POST /v1/events"),
            "requestContext": draw(st.one_of(
                st.fixed_dictionaries({"http": st.fixed_dictionaries({"method": _METHODS})}),
                st.just({"http": None}), st.none(), st.just({}), st.just("x")))}
        if method is not None and isinstance(event["requestContext"], dict) \
                and isinstance(event["requestContext"].get("http"), dict):
            event["requestContext"]["http"]["method"] = method
    elif shape == "rest_v1":
        event |= {"version": "1.0", "resource": "/v1/events", "path": "/v1/events",
                  "httpMethod": method, "multiValueHeaders": None,
                  "requestContext": draw(st.one_of(st.just({"identity": {}}), st.none()))}
    else:
        event = draw(st.one_of(st.dictionaries(st.text(max_size=10), _HEADER_VALUES,
                                               max_size=4), st.just({})))
    if event:
        for key in draw(st.lists(st.sampled_from(list(event)), max_size=2, unique=True)):
            del event[key]
    return event


@settings(max_examples=400, deadline=None)
@given(lambda_events())
def test_every_lambda_event_gets_a_json_answer(event: dict[str, Any]) -> None:
    ing, sink = ingestor(("*",))
    resp = handler(event, ingestor=ing)
    assert set(resp) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert resp["statusCode"] in (202, 204, 400, 405, 413, 415)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in resp["headers"].items())
    if resp["statusCode"] != 204:
        assert resp["headers"]["content-type"] == "application/json"
        payload = json.loads(resp["body"])
        assert resp["statusCode"] == 202 or payload.get("reason") or payload["errors"]
    for rec in sink.records:
        assert validate_raw_record(rec) == []


def test_a_failure_anywhere_in_the_lambda_is_a_json_reason(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A sink failing with something other than its own error (a connection error, a bug), and
    a misconfigured function: a JSON reason each time, never an exception (a bare 502)."""
    import analytics_platform.ingest.lambda_handler as lh

    class Crashing:
        def put(self, records: list[dict]) -> None:
            raise ConnectionResetError("firehose.us-east-1.amazonaws.com: reset by peer")

    resp = handler(http_api(good()), ingestor=Ingestor(IngestConfig(("*",)), Crashing()))
    assert resp["statusCode"] == 503
    assert json.loads(resp["body"])["reason"] == "sink_unavailable"
    assert "amazonaws" not in resp["body"]  # the detail goes to the log, not to the client

    class Broken(Ingestor):
        def prepare(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

    resp = handler(http_api(good()), ingestor=Broken(IngestConfig(("*",))))
    assert resp["statusCode"] == 500 and json.loads(resp["body"])["reason"] == "internal_error"

    monkeypatch.setattr(lh, "_INGESTOR", None)
    monkeypatch.setenv("ANALYTICS_SINK", "kafka")
    resp = lh.handler(http_api(good()))
    assert resp["statusCode"] == 500 and json.loads(resp["body"])["reason"] == "misconfigured"
    assert resp["headers"]["content-type"] == "application/json"
