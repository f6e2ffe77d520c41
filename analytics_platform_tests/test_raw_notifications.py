"""The raw-lake sensor on S3 event notifications in SQS ($ANALYTICS_RAW_QUEUE_URL), against moto's
server: the bucket notifies the queue as the stack configures it (infra/modules/storage), the
sensor asks for the runs the listing would, a message delivered twice or read by a tick that was
never committed asks for nothing more, and a lost notification is caught by the hourly listing."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import pytest

from analytics_platform.defs.automation.notifications import object_keys
from analytics_platform.lake import floor_hour, open_raw_lake, partition_key
from analytics_platform.resources import RawLakeResource

pytestmark = pytest.mark.s3


@functools.cache
def raw_lake_sensor() -> dg.SensorDefinition:
    from analytics_platform.definitions import defs

    return defs().resolve_sensor_def("raw_lake_sensor")  # 3 s to load: once


def tick(url: str, cursor: str | None, instance: dg.DagsterInstance | None = None
         ) -> tuple[list[tuple[str, str]], str | None]:
    sensor = raw_lake_sensor()
    ctx = dg.build_sensor_context(cursor=cursor, instance=instance,
                                  resources={"raw_lake": RawLakeResource(url=url)})
    result = sensor(ctx)
    runs = sorted((r.partition_key, r.run_key) for r in (result if isinstance(result, list)
                                                         else []))
    return runs, ctx.cursor


def in_queue(sqs, queue: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def test_sensor_on_notifications(s3_bucket: str, moto_endpoint: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue = sqs.create_queue(QueueName=f"{s3_bucket}-raw-objects",
                             Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"]
                                   )["Attributes"]["QueueArn"]
    boto3.client("s3", endpoint_url=moto_endpoint).put_bucket_notification_configuration(
        Bucket=s3_bucket, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}}}]})
    url = f"s3://{s3_bucket}/raw"
    lake = open_raw_lake(url)
    now = floor_hour(datetime.now(UTC))
    h0, h1 = now, now - timedelta(hours=1)
    monkeypatch.setenv("ANALYTICS_RAW_QUEUE_URL", queue)
    # a tick's long poll: 1 s here (5 s in production: half the 10-s interval), since every empty
    # tick below waits it out
    from analytics_platform.defs.automation import sensors

    monkeypatch.setattr(sensors, "QUEUE_WAIT_SECONDS", 1)

    with dg.instance_for_test() as instance:
        # the first tick lists the recent hours (nothing yet) and reads S3's test event
        runs, cursor = tick(url, None, instance)
        assert runs == []

        for i in range(3):
            lake.write_records(h1 + timedelta(minutes=i), b"x", object_id=f"h1-{i}")
        lake.write_records(h0, b"x", object_id="h0")
        boto3.client("s3", endpoint_url=moto_endpoint).put_object(
            Bucket=s3_bucket, Key="raw/not-an-hour.txt", Body=b"")  # notified, not a raw object
        runs, cursor1 = tick(url, cursor, instance)
        # exactly the runs the listing asks for, from the messages alone (the listing is an hour
        # away)
        monkeypatch.delenv("ANALYTICS_RAW_QUEUE_URL")
        listed, _ = tick(url, None)
        monkeypatch.setenv("ANALYTICS_RAW_QUEUE_URL", queue)
        assert runs == listed
        assert [k for k, _ in runs] == sorted([partition_key(h0), partition_key(h1)])
        # read, but kept until the tick that read them is committed (the next one deletes them)
        assert in_queue(sqs, queue) == 5
        assert len(json.loads(cursor1)["_delete"]) == 5

        # S3 delivers a message twice: the second asks for nothing, and both go
        body = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)
        assert "Messages" not in body  # every message is still invisible (read by the tick)
        lake.write_records(h0 + timedelta(minutes=1), b"y", object_id="h0-b")
        message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]
        assert object_keys(message["Body"], s3_bucket, "raw/")[0].endswith("h0-b.gz")
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"],
                                      VisibilityTimeout=0)
        sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
        runs, cursor2 = tick(url, cursor1, instance)
        assert [k for k, _ in runs] == [partition_key(h0)]
        again, cursor3 = tick(url, cursor2, instance)
        assert again == []
        assert in_queue(sqs, queue) == 0  # deleted once cursor2 was committed

        # a tick that reads a message but is never committed (the daemon died): the message
        # comes back and asks for the same run key, which the daemon starts once
        lake.write_records(h1 + timedelta(minutes=30), b"z", object_id="h1-late")
        lost, lost_cursor = tick(url, cursor3, instance)
        assert [k for k, _ in lost] == [partition_key(h1)]
        for handle in json.loads(lost_cursor)["_delete"]:
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle,
                                          VisibilityTimeout=0)
        retried, cursor4 = tick(url, cursor3, instance)
        assert retried == lost
        # and with that tick committed, the redelivered message asks for nothing more
        assert tick(url, cursor4, instance)[0] == []

        # a notification that never comes: nothing until the hourly listing finds the object
        lake.write_records(h0 + timedelta(minutes=2), b"w", object_id="h0-lost")
        sqs.purge_queue(QueueUrl=queue)
        quiet, cursor5 = tick(url, cursor4, instance)
        assert quiet == []
        state = json.loads(cursor5)
        state["_listed_at"] -= 3600
        found, _ = tick(url, json.dumps(state), instance)
        assert [k for k, _ in found] == [partition_key(h0)]


def test_only_raw_objects_of_the_bucket() -> None:
    def event(key: str, bucket: str = "b", name: str = "ObjectCreated:Put") -> str:
        return json.dumps({"Records": [{"eventName": name, "s3": {
            "bucket": {"name": bucket}, "object": {"key": key}}}]})

    key = "year=2026/month=02/day=01/hour=13/analytics-1-x.gz"
    # S3 URL-encodes the key in the notification
    assert object_keys(event("raw/" + key.replace("=", "%3D")), "b", "raw/") == [key]
    assert object_keys(event("raw/" + key, bucket="other"), "b", "raw/") == []
    assert object_keys(event("lake/" + key), "b", "raw/") == []
    assert object_keys(event("raw/" + key, name="ObjectRemoved:Delete"), "b", "raw/") == []
    assert object_keys(event("raw/errors/x.gz"), "b", "raw/") == []
    assert object_keys(json.dumps({"Event": "s3:TestEvent"}), "b", "raw/") == []
    # not an S3 event: left in the queue, for its dead-letter queue
    assert object_keys("not json", "b", "raw/") is None
    assert object_keys(json.dumps({"Records": [{"s3": {}}]}), "b", "raw/") is None


def test_a_queue_lets_the_sensors_tick_every_10_s(monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform import cost, settings

    monkeypatch.delenv("ANALYTICS_SENSOR_INTERVAL_SECONDS", raising=False)
    monkeypatch.setenv("ANALYTICS_RAW_URL", "s3://bucket/raw")
    monkeypatch.delenv("ANALYTICS_RAW_QUEUE_URL", raising=False)
    assert settings.sensor_interval_seconds() == 30  # each tick three LIST requests
    monkeypatch.setenv("ANALYTICS_RAW_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q")
    # one SQS request a tick: what the cost model prices for the stack
    assert settings.sensor_interval_seconds() == cost.PipelineAssumptions().sensor_seconds == 10
