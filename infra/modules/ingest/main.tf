# The ingest side: an HTTPS endpoint (Lambda Function URL, or API Gateway HTTP API) in front of
# the handler Lambda, which forwards accepted records to Firehose, straight (ingest_mode =
# "firehose", the cheapest) or through a Kinesis stream (ingest_mode = "kinesis", for replay).
# Firehose writes gzip objects to raw/year=/month=/day=/hour=/.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  kinesis = var.ingest_mode == "kinesis"
  # While draining (kinesis mode only), the Lambda already writes to a Direct PUT stream and the
  # Kinesis stream is only read until it is empty: switch ingest_mode to "firehose" afterwards.
  direct_put    = !local.kinesis || var.kinesis_draining
  function_name = "${var.name}-ingest"
  raw_prefix    = "raw/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
  error_prefix  = "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
  firehose_streams = merge(
    local.direct_put ? { direct = { name = "${var.name}-raw", source = null } } : {},
    local.kinesis ? { from_stream = { name = "${var.name}-raw-from-stream", source = aws_kinesis_stream.events[0].arn } } : {},
  )
  firehose_target = aws_kinesis_firehose_delivery_stream.raw[local.direct_put ? "direct" : "from_stream"]
  account         = data.aws_caller_identity.current.account_id
  # Behind CloudFront (var.cloudfront): the country from its viewer-country header, the
  # visitor_hash's address from its viewer-address header (the Lambda's sourceIp is then an edge's),
  # both believed because a request without the origin secret is refused (CONTRACT §2,
  # docs/PRIVACY.md "The client's address").
  cloudfront_env = var.cloudfront ? {
    ANALYTICS_BEHIND_CLOUDFRONT = "true"
    ANALYTICS_ORIGIN_SECRET     = var.cloudfront_origin_secret
    ANALYTICS_CLIENT_IP_HEADER  = "cloudfront-viewer-address"
    ANALYTICS_TRUSTED_PROXIES   = "0.0.0.0/0,::/0"
  } : {}
}

# --- Kinesis (kinesis mode only) -------------------------------------------------------------

resource "aws_kinesis_stream" "events" {
  count            = local.kinesis ? 1 : 0
  name             = "${var.name}-events"
  shard_count      = 1
  retention_period = 24
  encryption_type  = "KMS"
  kms_key_id       = "alias/aws/kinesis"
  stream_mode_details {
    stream_mode = "PROVISIONED"
  }
  tags = var.tags
}

# --- Firehose ----------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_158:the AWS-managed key is enough for delivery error logs
  #checkov:skip=CKV_AWS_338:error logs are kept as long as var.log_retention_days says; a year would cost more than it helps
  name              = "/aws/kinesisfirehose/${var.name}-raw"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

resource "aws_iam_role" "firehose" {
  name = "${var.name}-firehose"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "firehose.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = local.account } }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "firehose" {
  name = "deliver-to-s3"
  role = aws_iam_role.firehose.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "Bucket"
        Effect   = "Allow"
        Action   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
        Resource = [var.bucket_arn]
      },
      {
        Sid      = "RawAndErrorPrefixes"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = ["${var.bucket_arn}/raw/*", "${var.bucket_arn}/errors/*"]
      },
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.firehose.arn}:log-stream:*"]
      },
      ], local.kinesis ? [{
        Sid      = "ReadTheStream"
        Effect   = "Allow"
        Action   = ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
        Resource = [aws_kinesis_stream.events[0].arn]
    }] : [])
  })
}

# Direct PUT (firehose mode, and kinesis mode while draining) and/or the reader of the stream
# (kinesis mode): the same delivery to S3 either way.
resource "aws_kinesis_firehose_delivery_stream" "raw" {
  #checkov:skip=CKV_AWS_240:Direct PUT streams are encrypted with the AWS-owned key; a Kinesis-sourced one by its source stream (KMS)
  #checkov:skip=CKV_AWS_241:a customer-managed key adds a monthly fee and per-request charges for no gain here
  for_each    = local.firehose_streams
  name        = each.value.name
  destination = "extended_s3"

  dynamic "server_side_encryption" {
    for_each = each.value.source == null ? [1] : []
    content {
      enabled  = true
      key_type = "AWS_OWNED_CMK"
    }
  }

  dynamic "kinesis_source_configuration" {
    for_each = each.value.source == null ? [] : [each.value.source]
    content {
      kinesis_stream_arn = kinesis_source_configuration.value
      role_arn           = aws_iam_role.firehose.arn
    }
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = var.bucket_arn
    prefix              = local.raw_prefix
    error_output_prefix = local.error_prefix
    buffering_interval  = var.buffering_interval
    buffering_size      = var.buffering_size_mb
    compression_format  = "GZIP"
    # No AppendDelimiterToRecord processor: the handler already ends every record with "\n"
    # (contract.encode_record), so a second delimiter would follow each record with a blank
    # line, which Athena's JSON SerDe reads as a row of NULLs in raw_events.

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
  }
  tags = var.tags
}

# --- the daily salts of visitor_hash (docs/PRIVACY.md) ----------------------------------------
# A bucket of its own: only the handler can read a salt (with it, a day's hashes could be
# matched against guessed addresses), nothing is versioned (a deleted salt must be gone), and
# every object expires one day after its creation, which S3 rounds up to the next midnight UTC.
# That expiry is asynchronous (S3 removes an expired object some time later, and may serve it
# until then), so it is only a backstop: the handler deletes the salts older than yesterday
# itself, on requests and on the daily schedule below, which needs none.

resource "aws_s3_bucket" "salts" {
  #checkov:skip=CKV_AWS_18:access logs of a few reads a day would outlive the salts they describe
  #checkov:skip=CKV_AWS_144:a salt must not be copied anywhere: replication would defeat its expiry
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256): a KMS key adds a monthly fee for 32-byte objects that live two days
  #checkov:skip=CKV_AWS_21:no versioning on purpose: a deleted salt must not survive as a noncurrent version
  #checkov:skip=CKV2_AWS_62:nothing consumes S3 event notifications
  bucket_prefix = "${var.name}-salts-"
  force_destroy = true
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "salts" {
  bucket = aws_s3_bucket.salts.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "salts" {
  bucket                  = aws_s3_bucket.salts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "salts" {
  bucket = aws_s3_bucket.salts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_policy" "salts_tls_only" {
  bucket = aws_s3_bucket.salts.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.salts.arn, "${aws_s3_bucket.salts.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.salts]
}

resource "aws_s3_bucket_lifecycle_configuration" "salts" {
  bucket = aws_s3_bucket.salts.id
  rule {
    id     = "expire-salts"
    status = "Enabled"
    filter {
      prefix = "salts/"
    }
    expiration {
      days = 1
    }
  }
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# --- the handler Lambda ------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_158:the AWS-managed key is enough for handler logs (they hold no personal data)
  #checkov:skip=CKV_AWS_338:kept as long as var.log_retention_days says; a year would cost more than it helps
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "lambda" {
  name = "${var.name}-ingest-lambda"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "lambda" {
  name = "forward-events"
  role = aws_iam_role.lambda.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
      },
      local.direct_put ? {
        Sid      = "PutToFirehose"
        Effect   = "Allow"
        Action   = ["firehose:PutRecordBatch"]
        Resource = [aws_kinesis_firehose_delivery_stream.raw["direct"].arn]
        } : {
        Sid      = "PutToKinesis"
        Effect   = "Allow"
        Action   = ["kinesis:PutRecords"]
        Resource = [aws_kinesis_stream.events[0].arn]
      },
      {
        Sid      = "DailySalts"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["${aws_s3_bucket.salts.arn}/salts/*"]
      },
      {
        Sid       = "ListSaltsToPurge"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [aws_s3_bucket.salts.arn]
        Condition = { StringLike = { "s3:prefix" = ["salts/*"] } }
      },
    ]
  })
}

resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_117:a public endpoint that only reaches AWS APIs needs no VPC (a NAT gateway would cost more than everything else)
  #checkov:skip=CKV_AWS_116:a failed request is retried by the tracker; the only asynchronous invocation, the daily salt purge, carries no data: Lambda retries it, the errors alarm reports it, and any later purge does the same work
  #checkov:skip=CKV_AWS_173:stream names, and with var.cloudfront the origin secret, which is only a guard against bypassing CloudFront (no data behind it): the AWS-managed key is enough
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the user may not have; the zip is reproducible instead
  function_name                  = local.function_name
  role                           = aws_iam_role.lambda.arn
  runtime                        = var.lambda_runtime
  architectures                  = [var.lambda_architecture]
  handler                        = "analytics_platform.ingest.lambda_handler.handler"
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  memory_size                    = var.lambda_memory_mb
  timeout                        = 10
  reserved_concurrent_executions = var.reserved_concurrency

  tracing_config {
    mode = "PassThrough"
  }

  environment {
    variables = merge({
      ANALYTICS_SINK            = local.direct_put ? "firehose" : "kinesis"
      ANALYTICS_FIREHOSE_STREAM = local.direct_put ? aws_kinesis_firehose_delivery_stream.raw["direct"].name : ""
      ANALYTICS_KINESIS_STREAM  = local.direct_put ? "" : aws_kinesis_stream.events[0].name
      ANALYTICS_ALLOWED_ORIGINS = join(",", var.allowed_origins)
      ANALYTICS_SALT_URL        = "s3://${aws_s3_bucket.salts.id}/salts"
    }, local.cloudfront_env)
  }

  depends_on = [aws_cloudwatch_log_group.lambda]
  tags       = var.tags
}

# --- the daily salt purge ----------------------------------------------------------------------
# A salt must be gone once its day began 48 hours ago (docs/PRIVACY.md), but the handler purges
# only when a request comes, and a quiet site may get none for days. So a scheduled rule invokes
# it every day at 00:01 UTC, traffic or not: the handler recognises EventBridge's Scheduled
# Event and only deletes the salts expired on its own UTC day (lambda_handler.is_scheduled_purge).
# 00:01, not 00:00: the rule fires at some second of its minute, and a minute's margin keeps the
# function's clock on the new day, when the day before yesterday's salt has expired.
# A scheduled rule rather than EventBridge Scheduler: the rule needs no IAM role, only the
# resource-policy statement below, scoped to the rule's ARN (Scheduler needs a role it assumes,
# with lambda:InvokeFunction on the function). Scheduled rules cost nothing; the invocation a
# day is within Lambda's free tier.

resource "aws_cloudwatch_event_rule" "purge_salts" {
  name                = "${var.name}-purge-salts"
  description         = "Invokes ${local.function_name} daily to delete the expired visitor_hash salts (docs/PRIVACY.md)"
  schedule_expression = "cron(1 0 * * ? *)"
  state               = "ENABLED"
  tags                = var.tags
}

# No input: the handler gets EventBridge's own event (source "aws.events", detail-type "Scheduled
# Event"), a shape no request can take.
resource "aws_cloudwatch_event_target" "purge_salts" {
  rule      = aws_cloudwatch_event_rule.purge_salts.name
  target_id = "ingest"
  arn       = aws_lambda_function.ingest.arn
}

resource "aws_lambda_permission" "purge_salts" {
  statement_id  = "DailySaltPurge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ingest.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.purge_salts.arn
}

# --- the endpoint: a Function URL (default) or an HTTP API -----------------------------------

resource "aws_lambda_function_url" "ingest" {
  #checkov:skip=CKV_AWS_258:the endpoint is public by nature (browsers post to it); abuse is bounded by the handler's concurrency (var.reserved_concurrency, else the account's quota)
  count              = var.endpoint == "function_url" ? 1 : 0
  function_name      = aws_lambda_function.ingest.function_name
  authorization_type = "NONE"
  cors {
    allow_origins = var.allowed_origins
    allow_methods = ["POST"]
    allow_headers = ["content-type"]
    max_age       = 86400
  }
}

# Public Function URLs need both permissions (AWS, October 2025).
resource "aws_lambda_permission" "url_invoke_function_url" {
  #checkov:skip=CKV_AWS_301:browsers post anonymously: the endpoint is public by design, bounded by the handler's concurrency
  count                  = var.endpoint == "function_url" ? 1 : 0
  statement_id           = "PublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.ingest.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "url_invoke_function" {
  #checkov:skip=CKV_AWS_364:AWS requires lambda:InvokeFunction for public Function URLs; provider 5.x cannot yet scope it to the URL
  #checkov:skip=CKV_AWS_301:idem: public by design, bounded by the handler's concurrency
  count         = var.endpoint == "function_url" ? 1 : 0
  statement_id  = "PublicFunctionUrlInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ingest.function_name
  principal     = "*"
}

resource "aws_apigatewayv2_api" "ingest" {
  count         = var.endpoint == "http_api" ? 1 : 0
  name          = "${var.name}-ingest"
  protocol_type = "HTTP"
  cors_configuration {
    allow_origins = var.allowed_origins
    allow_methods = ["POST", "OPTIONS"]
    allow_headers = ["content-type"]
    max_age       = 86400
  }
  tags = var.tags
}

resource "aws_apigatewayv2_integration" "ingest" {
  count                  = var.endpoint == "http_api" ? 1 : 0
  api_id                 = aws_apigatewayv2_api.ingest[0].id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.ingest.invoke_arn
  payload_format_version = "2.0"
}

# Our tracker posts to /v1/events; Plausible's tracker to /api/event (docs/INGEST.md, "Switching
# from Plausible"): both reach the same handler, which tells them apart by path.
resource "aws_apigatewayv2_route" "events" {
  #checkov:skip=CKV_AWS_309:browsers post anonymously; the contract, CORS and throttling guard it
  for_each  = var.endpoint == "http_api" ? toset(["POST /v1/events", "POST /api/event"]) : toset([])
  api_id    = aws_apigatewayv2_api.ingest[0].id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.ingest[0].id}"
}

resource "aws_apigatewayv2_stage" "default" {
  #checkov:skip=CKV_AWS_76:access logs would log every visitor's request; the handler logs what matters
  count       = var.endpoint == "http_api" ? 1 : 0
  api_id      = aws_apigatewayv2_api.ingest[0].id
  name        = "$default"
  auto_deploy = true
  default_route_settings {
    throttling_burst_limit = var.throttle_burst
    throttling_rate_limit  = var.throttle_rate
  }
  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  count         = var.endpoint == "http_api" ? 1 : 0
  statement_id  = "HttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ingest.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.ingest[0].execution_arn}/*/POST/*"
}

# --- optional CloudFront in front of the endpoint (var.cloudfront) ---------------------------
# For the country only (CONTRACT §2): CloudFront computes CloudFront-Viewer-Country from the
# address it sees, and the origin gets the country, never the address for it. Nothing is cached.

# AWS's managed "CachingDisabled" cache policy (its ID is the same in every account): every event
# goes to the handler, and the cache key holds no header, cookie or query string.
locals {
  caching_disabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  origin_domain = var.endpoint == "function_url" ? (
    try(split("/", aws_lambda_function_url.ingest[0].function_url)[2], null)) : (
  try(trimprefix(aws_apigatewayv2_api.ingest[0].api_endpoint, "https://"), null))
}

# What reaches the handler: the headers it reads and no other. Country and address come from
# CloudFront (a viewer cannot set CloudFront-* headers); Origin, Content-Type and User-Agent are
# the viewer's, which the handler needs (CORS allowlist, media type, the stored user agent and
# the bot filter; CloudFront would replace User-Agent with "Amazon CloudFront"); the two
# Access-Control-Request-* only for a CORS preflight. No cookie, no query string (the endpoint
# reads the path and the body alone).
resource "aws_cloudfront_origin_request_policy" "ingest" {
  count   = var.cloudfront ? 1 : 0
  name    = "${var.name}-ingest"
  comment = "The ingest handler's headers and CloudFront's viewer country; no cookie, no query"
  cookies_config {
    cookie_behavior = "none"
  }
  query_strings_config {
    query_string_behavior = "none"
  }
  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["CloudFront-Viewer-Country", "CloudFront-Viewer-Address", "Origin", "Content-Type",
      "User-Agent", "Access-Control-Request-Method", "Access-Control-Request-Headers"]
    }
  }
}

resource "aws_cloudfront_distribution" "ingest" {
  #checkov:skip=CKV_AWS_68:a WAF web ACL costs $5 a month plus $0.60 per million requests, more than the whole ingest side; the handler's concurrency bounds abuse
  #checkov:skip=CKV2_AWS_47:idem: no WAF (no Java behind it either: the handler is Python)
  #checkov:skip=CKV_AWS_86:access logs would hold every visitor's IP address, which this project never stores (docs/PRIVACY.md)
  #checkov:skip=CKV_AWS_174:the default *.cloudfront.net certificate cannot set a minimum TLS version; a custom domain's ACM certificate can (TLSv1.2_2021)
  #checkov:skip=CKV2_AWS_42:idem: the default certificate, until you add your own domain
  #checkov:skip=CKV_AWS_310:one origin: a failover origin would be a second copy of the same Lambda
  #checkov:skip=CKV_AWS_305:an API, not a site: there is no root object to serve
  #checkov:skip=CKV2_AWS_32:the answers are JSON to the tracker, no page: the handler sets its own CORS headers
  #checkov:skip=CKV_AWS_374:events come from every country: counting them is the point
  count       = var.cloudfront ? 1 : 0
  enabled     = true
  comment     = "${var.name} ingest: the viewer's country without its address"
  price_class = "PriceClass_100"
  # IPv4 only: CloudFront-Viewer-Address writes an IPv6 viewer as "2001:db8::1:443" (no
  # brackets), which cannot be told from an address, so the hash would change with the port.
  is_ipv6_enabled = false
  http_version    = "http2and3"

  origin {
    origin_id   = "ingest"
    domain_name = local.origin_domain
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
    custom_header {
      name  = "x-analytics-origin-secret"
      value = var.cloudfront_origin_secret
    }
  }

  default_cache_behavior {
    target_origin_id         = "ingest"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = local.caching_disabled
    origin_request_policy_id = aws_cloudfront_origin_request_policy.ingest[0].id
    compress                 = false
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }

  lifecycle {
    precondition {
      condition     = var.cloudfront_origin_secret != null
      error_message = "cloudfront = true needs cloudfront_origin_secret (openssl rand -hex 32)."
    }
  }
  tags = var.tags
}

# --- alarms ------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "firehose_freshness" {
  alarm_name          = "${var.name}-firehose-data-freshness"
  alarm_description   = "Records wait in Firehose longer than two buffering intervals."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.DataFreshness"
  dimensions          = { DeliveryStreamName = local.firehose_target.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.buffering_interval * 2
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

# The handler catches what goes wrong and answers it (500 internal_error, 503 sink_unavailable
# when Firehose or Kinesis refuses the records): that is a successful invocation, so Lambda's Errors
# metric stays at 0 even while every request fails. This alarm counts the 5xx answers where the
# endpoint counts them: the Function URL (AWS/Lambda Url5xxCount, which also counts crashes and
# timeouts) or the HTTP API (AWS/ApiGateway 5xx). No requests, no data: not an alarm.
locals {
  http_5xx = var.endpoint == "function_url" ? {
    namespace  = "AWS/Lambda"
    metric     = "Url5xxCount"
    dimensions = { FunctionName = aws_lambda_function.ingest.function_name }
    } : {
    namespace  = "AWS/ApiGateway"
    metric     = "5xx"
    dimensions = { ApiId = aws_apigatewayv2_api.ingest[0].id }
  }
}

resource "aws_cloudwatch_metric_alarm" "ingest_5xx" {
  alarm_name          = "${var.name}-ingest-5xx"
  alarm_description   = "The ingest endpoint answered 5xx: events not stored (the tracker keeps them and sends them again). 503 sink_unavailable: Firehose or Kinesis refused the records (a wrong or missing stream, throttling, permissions); 503 salt_unavailable: the salts bucket; 500: a fault in the handler or a crash. The handler's log says which."
  namespace           = local.http_5xx.namespace
  metric_name         = local.http_5xx.metric
  dimensions          = local.http_5xx.dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

# Invocation errors: the handler crashed, timed out or could not start (an import error, a bad
# zip), which the handler's own answers never show; or the daily salt purge failed (it raises).
resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name          = "${var.name}-ingest-errors"
  alarm_description   = "The ingest handler crashed, timed out or could not start (a Lambda invocation error), or its daily salt purge failed (expired salts may outlive 48 hours: Lambda retries it twice). Answers the handler itself gives (500, 503) are counted by the ingest-5xx alarm."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.ingest.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  alarm_name          = "${var.name}-ingest-throttles"
  alarm_description   = "Requests were throttled: the handler reached its concurrency (reserved_concurrency, or the account's quota). Raise it if the traffic is real."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.ingest.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
