"""Where the ingest handler sends accepted records: Firehose, Kinesis, or S3 directly.

Each record is one JSON object followed by ``\\n`` (SPEC §2, ``contract.encode_record``). Firehose
and Kinesis accept a batch and may refuse some of its records (``FailedPutCount``): only those
are sent again, with a short backoff, a bounded number of times; what still fails raises
``SinkError`` so the client retries.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from analytics_platform.contract import encode_record as encode
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


class FirehoseSink:
    """Firehose Direct PUT (``PutRecordBatch``: at most 500 records a call)."""

    def __init__(self, stream: str, client: Any | None = None) -> None:
        import boto3

        self.stream = stream
        self.client = client or boto3.client("firehose")

    def put(self, records: list[dict[str, Any]]) -> None:
        entries = [{"Data": encode(r)} for r in records]

        def send(batch: list[dict]) -> list[bool]:
            try:
                resp = self.client.put_record_batch(DeliveryStreamName=self.stream,
                                                    Records=batch)
            except Exception as e:  # botocore ClientError, connection errors
                raise SinkError(f"firehose {self.stream}: {e}") from e
            if not resp.get("FailedPutCount"):
                return [False] * len(batch)
            return ["ErrorCode" in r for r in resp["RequestResponses"]]

        for chunk in _chunks(entries, 500):
            _retry_failed(send, chunk, f"firehose {self.stream}")


class KinesisSink:
    """Kinesis Data Streams (``PutRecords``: at most 500 records a call), partitioned by
    session so a session's events stay in order on one shard."""

    def __init__(self, stream: str, client: Any | None = None) -> None:
        import boto3

        self.stream = stream
        self.client = client or boto3.client("kinesis")

    def put(self, records: list[dict[str, Any]]) -> None:
        entries = [{"Data": encode(r), "PartitionKey": r["session_id"]} for r in records]

        def send(batch: list[dict]) -> list[bool]:
            try:
                resp = self.client.put_records(StreamName=self.stream, Records=batch)
            except Exception as e:
                raise SinkError(f"kinesis {self.stream}: {e}") from e
            if not resp.get("FailedRecordCount"):
                return [False] * len(batch)
            return ["ErrorCode" in r for r in resp["Records"]]

        for chunk in _chunks(entries, 500):
            _retry_failed(send, chunk, f"kinesis {self.stream}")


class S3Sink:
    """One gzip object per request, straight into the raw lake's layout (no Firehose)."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        from analytics_platform.lake import open_raw_lake

        self.lake = open_raw_lake(url, client=client)

    def put(self, records: list[dict[str, Any]]) -> None:
        body = gzip.compress(b"".join(encode(r) for r in records))
        oldest = min(datetime.fromisoformat(r["ingest_ts"].replace("Z", "+00:00"))
                     for r in records)
        try:
            self.lake.write_records(oldest.astimezone(UTC), body)
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
