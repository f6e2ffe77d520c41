# raw/'s new objects as S3 event notifications into an SQS queue, for the pipeline's raw-lake
# sensor (raw_notifications = true, set by envs/prod with the pipeline). The sensor long-polls the
# queue instead of listing three hour prefixes every 30 s: about 259,000 LIST requests a month
# ($1.30, whatever the traffic) become one SQS request a tick and one a Firehose object
# (`analytics-platform cost`, docs/COSTS.md). It still lists the recent hours once an hour, so a
# notification that never comes (S3 delivers them at least once, but a queue can be purged or a
# message can expire) costs at most an hour.

data "aws_caller_identity" "current" {
  count = var.raw_notifications ? 1 : 0
}

locals {
  queue_name = coalesce(var.raw_queue_name, "${var.bucket_name}-raw-objects")
}

# Messages the sensor could not read five times (a malformed body) end here, for a person to look
# at; the objects themselves are found by the hourly listing anyway.
resource "aws_sqs_queue" "raw_dlq" {
  count                     = var.raw_notifications ? 1 : 0
  name                      = "${local.queue_name}-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 14 * 24 * 3600 # the longest SQS keeps a message
  tags                      = var.tags
}

resource "aws_sqs_queue" "raw" {
  count = var.raw_notifications ? 1 : 0
  name  = local.queue_name
  # SSE with SQS-owned keys: free, and S3 can send to it (SSE-KMS would need a customer-managed
  # key whose policy lets S3 use it: $1 a month and a request fee).
  sqs_managed_sse_enabled = true
  # A message is deleted on the sensor's tick after the one that received it (once that tick's
  # cursor and run requests are committed); if that tick never comes, the message is delivered
  # again after this many seconds and asks for nothing new (the runs are keyed on the hour's
  # objects).
  visibility_timeout_seconds = var.raw_queue_visibility_seconds
  # Longer than a weekend of a stopped machine; beyond it the hourly listing covers the last
  # hours only, and a backfill the rest (docs/DEPLOY.md).
  message_retention_seconds = var.raw_queue_retention_seconds
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.raw_dlq[0].arn
    maxReceiveCount     = 5
  })
  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "raw_dlq" {
  count     = var.raw_notifications ? 1 : 0
  queue_url = aws_sqs_queue.raw_dlq[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.raw[0].arn]
  })
}

# Only S3, only for this bucket of this account, may send; and only over TLS. The pipeline's role
# gets its own permissions (receive and delete) from the pipeline module.
resource "aws_sqs_queue_policy" "raw" {
  count     = var.raw_notifications ? 1 : 0
  queue_url = aws_sqs_queue.raw[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "S3RawObjectCreated"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = ["sqs:SendMessage"]
        Resource  = [aws_sqs_queue.raw[0].arn]
        Condition = {
          ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.lake.arn }
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current[0].account_id }
        }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = ["sqs:*"]
        Resource  = [aws_sqs_queue.raw[0].arn]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

# One notification configuration per bucket, and this resource owns all of it: a notification
# added by hand (Snowflake's AUTO_REFRESH queue on lake/, say) would be removed on the next apply,
# so other consumers' queues come in through var.extra_queue_notifications. S3 checks that it may
# send to each queue when this is created, hence after the queue policy.
resource "aws_s3_bucket_notification" "lake" {
  count  = var.raw_notifications || length(var.extra_queue_notifications) > 0 ? 1 : 0
  bucket = aws_s3_bucket.lake.id

  dynamic "queue" {
    for_each = var.raw_notifications ? [1] : []
    content {
      id            = "raw-object-created"
      queue_arn     = aws_sqs_queue.raw[0].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = "raw/"
    }
  }

  dynamic "queue" {
    for_each = var.extra_queue_notifications
    content {
      id            = queue.value.id
      queue_arn     = queue.value.queue_arn
      events        = queue.value.events
      filter_prefix = queue.value.filter_prefix
      filter_suffix = queue.value.filter_suffix
    }
  }

  lifecycle {
    # S3 refuses two configurations whose prefixes overlap for the same events; say so at plan,
    # not halfway through an apply.
    precondition {
      condition     = !var.raw_notifications || alltrue([for n in var.extra_queue_notifications : !startswith("raw/", n.filter_prefix) && !startswith(n.filter_prefix, "raw/")])
      error_message = "An extra queue notification's filter_prefix overlaps raw/, which the pipeline's queue is notified of: give it a prefix outside raw/ (lake/, …)."
    }
  }
  depends_on = [aws_sqs_queue_policy.raw]
}
