# `terraform test` with a mock AWS provider: no cloud access, no credentials. Plans check the
# choices written in the configuration; an apply against the mock fills computed ARNs so the
# IAM policies can be checked for least privilege.

mock_provider "aws" {
  source = "../../testing/aws"

  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects"
      id  = "https://sqs.us-east-1.amazonaws.com/123456789012/example-com-analytics-raw-objects"
      url = "https://sqs.us-east-1.amazonaws.com/123456789012/example-com-analytics-raw-objects"
    }
  }
}

override_resource {
  target = aws_sqs_queue.raw_dlq
  values = {
    arn = "arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects-dlq"
    id  = "https://sqs.us-east-1.amazonaws.com/123456789012/example-com-analytics-raw-objects-dlq"
  }
}

variables {
  bucket_name = "example-com-analytics"
}

run "private_and_expiring" {
  command = plan

  assert {
    condition     = alltrue([aws_s3_bucket_public_access_block.lake.block_public_acls, aws_s3_bucket_public_access_block.lake.block_public_policy, aws_s3_bucket_public_access_block.lake.ignore_public_acls, aws_s3_bucket_public_access_block.lake.restrict_public_buckets])
    error_message = "The bucket is private."
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.expiration[0].days if r.id == "expire-raw"]) == 400 && one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.expiration[0].days if r.id == "expire-errors"]) == 30
    error_message = "raw/ and errors/ expire."
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.abort_incomplete_multipart_upload[0].days_after_initiation if r.id == "abort-incomplete-multipart-uploads"]) == 1
    error_message = "Incomplete multipart uploads are aborted."
  }
}

run "tls_only_and_encrypted" {
  command = apply

  assert {
    condition     = jsondecode(aws_s3_bucket_policy.tls_only.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false" && jsondecode(aws_s3_bucket_policy.tls_only.policy).Statement[0].Effect == "Deny"
    error_message = "Requests without TLS are denied."
  }
  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.lake.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    error_message = "Objects are encrypted at rest."
  }
}

run "no_notifications_without_a_consumer" {
  command = plan

  assert {
    condition     = length(aws_s3_bucket_notification.lake) == 0 && length(aws_sqs_queue.raw) == 0 && output.raw_queue_url == null && output.notification_queue_arns == []
    error_message = "Without raw_notifications (no pipeline in the account) there is no queue and no notification."
  }
}

run "raw_notifications_into_sqs" {
  command = apply
  variables {
    raw_notifications = true
  }

  assert {
    condition = [for q in aws_s3_bucket_notification.lake[0].queue : {
      arn    = q.queue_arn, events = q.events, prefix = q.filter_prefix }] == [{
      arn    = "arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects"
      events = toset(["s3:ObjectCreated:*"]), prefix = "raw/"
    }]
    error_message = "raw/'s new objects, and only those, are notified to the queue."
  }
  assert {
    condition     = aws_sqs_queue.raw[0].sqs_managed_sse_enabled && aws_sqs_queue.raw_dlq[0].sqs_managed_sse_enabled
    error_message = "Both queues are encrypted at rest."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.raw[0].redrive_policy) == { deadLetterTargetArn = "arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects-dlq", maxReceiveCount = 5 }
    error_message = "A message read five times without being deleted goes to the dead-letter queue."
  }
  assert {
    condition     = aws_sqs_queue.raw[0].message_retention_seconds == 345600 && aws_sqs_queue.raw_dlq[0].message_retention_seconds == 1209600 && aws_sqs_queue.raw[0].visibility_timeout_seconds == 300
    error_message = "Retention: 4 days in the queue, 14 in the dead-letter queue; a received message is hidden 300 s."
  }
  assert {
    condition = jsondecode(aws_sqs_queue_policy.raw[0].policy).Statement[0] == {
      Sid    = "S3RawObjectCreated", Effect = "Allow", Principal = { Service = "s3.amazonaws.com" }
      Action = ["sqs:SendMessage"], Resource = ["arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects"]
      Condition = {
        ArnEquals    = { "aws:SourceArn" = "arn:aws:s3:::example-com-analytics" }
        StringEquals = { "aws:SourceAccount" = "123456789012" }
      }
    }
    error_message = "Only S3, for this bucket of this account, may send to the queue."
  }
  assert {
    condition     = length(jsondecode(aws_sqs_queue_policy.raw[0].policy).Statement) == 2 && jsondecode(aws_sqs_queue_policy.raw[0].policy).Statement[1].Effect == "Deny" && jsondecode(aws_sqs_queue_policy.raw[0].policy).Statement[1].Condition.Bool["aws:SecureTransport"] == "false"
    error_message = "Nothing else is allowed by the queue's policy, and requests without TLS are denied."
  }
  assert {
    condition     = output.raw_queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/example-com-analytics-raw-objects"
    error_message = "The queue's URL is an output (ANALYTICS_RAW_QUEUE_URL)."
  }
}

# --- other consumers' queues (extra_queue_notifications), e.g. Snowflake's AUTO_REFRESH ---------
# A bucket has one notification configuration, which aws_s3_bucket_notification owns whole: a
# queue added by hand is removed on the next apply, so the stack's resource carries them too.

run "extra_queue_notifications_next_to_raw" {
  command = apply
  variables {
    raw_notifications = true
    extra_queue_notifications = [{
      id            = "snowflake-lake"
      queue_arn     = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"
      filter_prefix = "lake/"
    }]
  }

  assert {
    condition = [for q in aws_s3_bucket_notification.lake[0].queue : {
      id     = q.id, arn = q.queue_arn, events = q.events, prefix = q.filter_prefix }] == [{
      id     = "raw-object-created", arn = "arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects"
      events = toset(["s3:ObjectCreated:*"]), prefix = "raw/"
      }, {
      id     = "snowflake-lake", arn = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"
      events = toset(["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]), prefix = "lake/"
    }]
    error_message = "The bucket's one notification configuration holds raw/'s queue and the extra one (created and removed objects by default: the pipeline replaces and deletes lake files)."
  }
  assert {
    condition     = output.notification_queue_arns == ["arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects", "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"]
    error_message = "The queues the bucket notifies are an output."
  }
}

run "extra_queue_notifications_without_the_pipeline" {
  command = plan
  variables {
    extra_queue_notifications = [{
      id            = "snowflake-kpis"
      queue_arn     = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"
      filter_prefix = "lake/kpis_daily/"
      events        = ["s3:ObjectCreated:*"]
    }]
  }

  assert {
    condition     = length(aws_sqs_queue.raw) == 0 && [for q in aws_s3_bucket_notification.lake[0].queue : { id = q.id, prefix = q.filter_prefix, events = q.events }] == [{ id = "snowflake-kpis", prefix = "lake/kpis_daily/", events = toset(["s3:ObjectCreated:*"]) }]
    error_message = "An extra notification alone: no raw/ queue, the configuration holds just that one."
  }
}

run "an_extra_notification_cannot_overlap_raw" {
  command = plan
  variables {
    raw_notifications = true
    extra_queue_notifications = [{
      id            = "everything"
      queue_arn     = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"
      filter_prefix = ""
    }]
  }
  expect_failures = [aws_s3_bucket_notification.lake]
}

run "an_extra_notification_needs_a_queue_arn" {
  command = plan
  variables {
    extra_queue_notifications = [{
      id            = "snowflake-lake"
      queue_arn     = "https://sqs.us-east-1.amazonaws.com/999999999999/sf-snowpipe"
      filter_prefix = "lake/"
    }]
  }
  expect_failures = [var.extra_queue_notifications]
}
