"""The raw lake's new objects as S3 event notifications in an SQS queue
(``$ANALYTICS_RAW_QUEUE_URL``; the stack's ``infra/modules/storage/notifications.tf``), for the
raw-lake sensor in place of listing hour folders every tick.

Listing three hour prefixes every 30 s is 259,200 LIST requests a month ($1.30, whatever the
traffic); the queue costs one ReceiveMessage a tick and one SendMessage and one delete a Firehose
object, about $0.10 a month at a tick every 10 s (``analytics-platform cost``).

S3 delivers a notification at least once: a message may come twice, and one read but not deleted
comes back after the queue's visibility timeout. Both are harmless to the sensor, which asks for
a run of an hour only when the hour's objects differ from what it last asked for or what the
hour's latest materialisation recorded, under a run key made of those objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from analytics_platform.lake import hour_of_key

# SQS's limits: at most 10 messages a ReceiveMessage or a DeleteMessageBatch, a long poll of at
# most 20 s.
BATCH = 10
MAX_WAIT_SECONDS = 20


def sqs_client() -> Any:
    """A boto3 SQS client, configured as boto3 configures itself (``AWS_ENDPOINT_URL``, the
    region, the credentials chain, ``AWS_USE_DUALSTACK_ENDPOINT``: the pipeline machine reaches
    SQS over IPv6 at ``sqs.<region>.api.aws``)."""
    import boto3

    return boto3.client("sqs")


def object_keys(body: str, bucket: str, prefix: str) -> list[str] | None:
    """The raw-lake keys (relative to the lake's root, as :func:`lake.hour_of_key` takes them) of
    the objects an S3 event notification says were created in ``bucket`` under ``prefix``; []
    for S3's test event and for objects that are not raw-lake objects; None when ``body`` is not
    an S3 event at all (left in the queue: it goes to the dead-letter queue after a few reads)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("Event") == "s3:TestEvent":  # sent once when the notification is configured
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        return None
    keys = []
    for r in records:
        try:
            if not str(r["eventName"]).startswith("ObjectCreated:"):
                continue
            if r["s3"]["bucket"]["name"] != bucket:
                continue
            key = unquote_plus(r["s3"]["object"]["key"])  # S3 URL-encodes the key (`+` a space)
        except (KeyError, TypeError):
            return None
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):]
        try:
            hour_of_key(key)  # the folder of an hourly partition, or not a raw-lake object
        except ValueError:
            continue
        keys.append(key)
    return keys


@dataclass
class Received:
    """One tick's messages: the keys of the objects they announce, and the receipt handles of
    every message understood (to delete once the tick that read them is committed)."""

    keys: list[str] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)


class RawNotifications:
    """The queue of the raw lake at ``s3://bucket/prefix``."""

    def __init__(self, queue_url: str, bucket: str, prefix: str, client: Any | None = None
                 ) -> None:
        self.queue_url, self.bucket, self.prefix = queue_url, bucket, prefix
        self.client = client or sqs_client()

    def receive(self, wait_seconds: int, max_batches: int = 5) -> Received:
        """Long-polls up to ``wait_seconds`` for the first batch (it returns as soon as a message
        is there), then takes what is already waiting, ten at a time, at most ``max_batches``
        batches (a tick's worth: at a million events a month a message comes every few minutes)."""
        out = Received()
        wait = max(0, min(MAX_WAIT_SECONDS, wait_seconds))
        for _ in range(max_batches):
            messages = self.client.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait,
            ).get("Messages", [])
            for m in messages:
                keys = object_keys(m["Body"], self.bucket, self.prefix)
                if keys is not None:
                    out.keys += keys
                    out.handles.append(m["ReceiptHandle"])
            if len(messages) < BATCH:
                break
            wait = 0
        return out

    def delete(self, handles: list[str]) -> list[str]:
        """Deletes the messages of ``handles``; returns the handles SQS refused (an expired one:
        that message comes again, and asks for nothing new)."""
        failed = []
        for i in range(0, len(handles), BATCH):
            chunk = handles[i:i + BATCH]
            r = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)])
            failed += [chunk[int(f["Id"])] for f in r.get("Failed", [])]
        return failed
