"""Where the ingest handler sends accepted records: Firehose, Kinesis, or S3 directly.

Each record is one JSON object followed by ``\\n`` (CONTRACT §2, ``contract.encode_record``).
Firehose and Kinesis accept a batch and may refuse some of its records (``FailedPutCount``):
only those are sent again, with a short backoff, a bounded number of times; what still fails raises
``SinkError`` so the client retries.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from typing import Any

from analytics_platform.contract import encode_record as encode
from analytics_platform.contract import encode_records, parse_timestamp
from analytics_platform.ingest.core import SinkError

MAX_ATTEMPTS = 4


def _retry_failed(send: Callable[[list[Any]], list[bool]], entries: list[Any], what: str,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Call ``send`` (which returns, per entry, whether it failed) until nothing fails."""
    pending = entries
    for attempt in range(MAX_ATTEMPTS):
        failed = send(pending)
        pending = [e for e, bad in zip(pending, failed, strict=True) if bad]
        if not pending:
            return
        sleep(0.05 * 2**attempt)
    raise SinkError(f"{what}: {len(pending)} record(s) still refused after {MAX_ATTEMPTS} tries")


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _BatchSink:
    """A stream API that takes up to 500 records a call and may refuse some of them."""

    service = ""
    operation = ""
    stream_param = ""
    failed_count = ""
    per_record = ""

    def __init__(self, stream: str, client: Any | None = None) -> None:
        import boto3

        self.stream = stream
        self.client = client or boto3.client(self.service)

    def entry(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"Data": encode(record)}

    def put(self, records: list[dict[str, Any]]) -> None:
        call = getattr(self.client, self.operation)
        what = f"{self.service} {self.stream}"

        def send(batch: list[dict]) -> list[bool]:
            try:
                resp = call(**{self.stream_param: self.stream, "Records": batch})
            except Exception as e:  # botocore ClientError, connection errors
                raise SinkError(f"{what}: {e}") from e
            if not resp.get(self.failed_count):
                return [False] * len(batch)
            return ["ErrorCode" in r for r in resp[self.per_record]]

        for chunk in _chunks([self.entry(r) for r in records], 500):
            _retry_failed(send, chunk, what)


class FirehoseSink(_BatchSink):
    """Firehose Direct PUT (``PutRecordBatch``)."""

    service, operation, stream_param = "firehose", "put_record_batch", "DeliveryStreamName"
    failed_count, per_record = "FailedPutCount", "RequestResponses"


class KinesisSink(_BatchSink):
    """Kinesis Data Streams (``PutRecords``), partitioned by session (or, without one, by
    visitor hash: the pipeline makes its sessions) so that a session's events stay in order on
    one shard."""

    service, operation, stream_param = "kinesis", "put_records", "StreamName"
    failed_count, per_record = "FailedRecordCount", "Records"

    def entry(self, record: dict[str, Any]) -> dict[str, Any]:
        key = record.get("session_id") or record.get("visitor_hash") or record["event_id"]
        return {"Data": encode(record), "PartitionKey": key}


class S3Sink:
    """One gzip object per request, straight into the raw lake's layout (no Firehose)."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        from analytics_platform.lake import open_raw_lake

        self.lake = open_raw_lake(url, client=client)

    def put(self, records: list[dict[str, Any]]) -> None:
        body = gzip.compress(encode_records(records))
        oldest = min(parse_timestamp(r["ingest_ts"]) for r in records)
        try:
            self.lake.write_records(oldest, body)
        except Exception as e:
            raise SinkError(f"s3 {self.lake.url}: {e}") from e


def sink_from_env() -> FirehoseSink | KinesisSink | S3Sink:
    """The sink ``ANALYTICS_SINK`` names (``firehose``, ``kinesis`` or ``s3``) with its target:
    ``ANALYTICS_FIREHOSE_STREAM``, ``ANALYTICS_KINESIS_STREAM`` or ``ANALYTICS_RAW_URL``."""
    kind = os.environ.get("ANALYTICS_SINK", "firehose").lower()
    needs = {"firehose": "ANALYTICS_FIREHOSE_STREAM", "kinesis": "ANALYTICS_KINESIS_STREAM",
             "s3": "ANALYTICS_RAW_URL"}
    if kind not in needs:
        raise ValueError(f"ANALYTICS_SINK={kind!r}: use firehose, kinesis or s3")
    target = os.environ.get(needs[kind])
    if not target:
        raise ValueError(f"ANALYTICS_SINK={kind} needs {needs[kind]}")
    if kind == "firehose":
        return FirehoseSink(target)
    if kind == "kinesis":
        return KinesisSink(target)
    return S3Sink(target)
