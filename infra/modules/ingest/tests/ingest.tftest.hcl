# `terraform test` with a mock AWS provider: no cloud access, no credentials. Plans check the
# choices written in the configuration; an apply against the mock fills computed ARNs so the
# IAM policies can be checked for least privilege.

mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  name            = "analytics"
  bucket_arn      = "arn:aws:s3:::example-com-analytics"
  allowed_origins = ["https://www.example.com", "https://example.com"]
  lambda_zip      = "../../../dist/ingest-lambda.zip"
}

run "firehose_mode_plan" {
  command = plan

  assert {
    condition     = aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].prefix == "raw/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    error_message = "Firehose must write the raw lake's hour layout."
  }
  assert {
    condition     = startswith(aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].error_output_prefix, "errors/!{firehose:error-output-type}/")
    error_message = "The error output prefix must name the error type."
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].buffering_interval == 300 && aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].buffering_size == 64
    error_message = "Default buffering: 300 s / 64 MB."
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].compression_format == "GZIP"
    error_message = "Raw objects are gzip."
  }
  assert {
    condition     = length(flatten([for c in aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].processing_configuration : [for p in c.processors : p.type if c.enabled]])) == 0
    error_message = "No Firehose processor: the handler ends every record with a newline, and an AppendDelimiterToRecord after it would add a blank line, an all-NULL row in Athena's raw_events."
  }
  assert {
    condition     = length(aws_kinesis_stream.events) == 0 && keys(aws_kinesis_firehose_delivery_stream.raw) == ["direct"]
    error_message = "firehose mode has no Kinesis stream (no $11 shard)."
  }
  assert {
    condition     = aws_lambda_function.ingest.environment[0].variables["ANALYTICS_SINK"] == "firehose"
    error_message = "The handler writes to Firehose Direct PUT."
  }
  assert {
    condition     = toset(aws_lambda_function_url.ingest[0].cors[0].allow_origins) == toset(["https://www.example.com", "https://example.com"])
    error_message = "CORS allows exactly the configured origins."
  }
  assert {
    condition     = aws_lambda_function.ingest.environment[0].variables["ANALYTICS_ALLOWED_ORIGINS"] == "https://www.example.com,https://example.com"
    error_message = "The handler enforces the same allowlist."
  }
  assert {
    condition     = coalesce(aws_lambda_function.ingest.reserved_concurrent_executions, -1) == -1
    error_message = "No reserved concurrency by default (unset, AWS's -1): reserving any fails on an account whose concurrency quota is under 110, as new accounts' is."
  }
  assert {
    condition     = aws_lambda_permission.url_invoke_function_url[0].action == "lambda:InvokeFunctionUrl" && aws_lambda_permission.url_invoke_function[0].action == "lambda:InvokeFunction"
    error_message = "A public Function URL needs both lambda:InvokeFunctionUrl and lambda:InvokeFunction."
  }
  assert {
    condition     = aws_cloudwatch_log_group.lambda.retention_in_days == 14 && aws_cloudwatch_log_group.firehose.retention_in_days == 14
    error_message = "Log retention is set."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.firehose_freshness.metric_name == "DeliveryToS3.DataFreshness" && aws_cloudwatch_metric_alarm.lambda_errors.metric_name == "Errors" && aws_cloudwatch_metric_alarm.lambda_throttles.metric_name == "Throttles"
    error_message = "Alarms on Firehose freshness and Lambda errors and throttles."
  }
  assert {
    condition = {
      namespace  = aws_cloudwatch_metric_alarm.ingest_5xx.namespace, metric = aws_cloudwatch_metric_alarm.ingest_5xx.metric_name
      dimensions = aws_cloudwatch_metric_alarm.ingest_5xx.dimensions, statistic = aws_cloudwatch_metric_alarm.ingest_5xx.statistic
      threshold  = aws_cloudwatch_metric_alarm.ingest_5xx.threshold, comparison = aws_cloudwatch_metric_alarm.ingest_5xx.comparison_operator
      } == {
      namespace = "AWS/Lambda", metric = "Url5xxCount", dimensions = tomap({ FunctionName = "analytics-ingest" }), statistic = "Sum"
      threshold = 0, comparison = "GreaterThanThreshold"
    }
    error_message = "An alarm on the Function URL's 5xx answers: the handler answers 500 or 503 (sink_unavailable) without an invocation error, so the Errors alarm stays silent while every request fails."
  }
  assert {
    condition     = length(aws_cloudfront_distribution.ingest) == 0 && length(aws_cloudfront_origin_request_policy.ingest) == 0
    error_message = "CloudFront is off by default."
  }
  assert {
    condition     = length(setintersection(keys(aws_lambda_function.ingest.environment[0].variables), ["ANALYTICS_BEHIND_CLOUDFRONT", "ANALYTICS_ORIGIN_SECRET", "ANALYTICS_CLIENT_IP_HEADER", "ANALYTICS_TRUSTED_PROXIES"])) == 0
    error_message = "Without CloudFront the handler ignores CloudFront's headers and hashes the connection's address."
  }
}

run "firehose_mode_least_privilege" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.lambda.policy).Statement[1] == {
      Sid      = "PutToFirehose", Effect = "Allow", Action = ["firehose:PutRecordBatch"]
      Resource = ["arn:aws:firehose:us-east-1:123456789012:deliverystream/analytics-raw"]
    }
    error_message = "The Lambda may only put records to its one Firehose stream."
  }
  assert {
    condition = alltrue(flatten([
      for p in [aws_iam_role_policy.lambda.policy, aws_iam_role_policy.firehose.policy] : [
        for s in jsondecode(p).Statement : [for x in concat(s.Action, s.Resource) : !strcontains(x, "*") || endswith(x, "/*") || endswith(x, ":*")]
      ]
    ]))
    error_message = "No wildcard action, and no wildcard resource beyond a prefix of one resource."
  }
  assert {
    condition     = toset(jsondecode(aws_iam_role_policy.firehose.policy).Statement[1].Resource) == toset(["arn:aws:s3:::example-com-analytics/raw/*", "arn:aws:s3:::example-com-analytics/errors/*"])
    error_message = "Firehose writes only under raw/ and errors/ of its bucket."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.lambda.policy).Statement[2].Resource == ["${aws_s3_bucket.salts.arn}/salts/*"] && jsondecode(aws_iam_role_policy.lambda.policy).Statement[3].Action == ["s3:ListBucket"]
    error_message = "The Lambda reads, creates and deletes the salts under salts/ of its own bucket, nothing else there."
  }
  assert {
    condition     = aws_lambda_function.ingest.environment[0].variables["ANALYTICS_SALT_URL"] == "s3://${aws_s3_bucket.salts.id}/salts"
    error_message = "The handler finds the salts in its bucket."
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.salts.rule : r.expiration[0].days if r.id == "expire-salts"]) == 1
    error_message = "Salts expire one day after creation (S3 rounds to the next midnight UTC: at most 48 hours)."
  }
}

run "kinesis_mode" {
  command = apply
  variables {
    ingest_mode = "kinesis"
  }

  assert {
    condition     = length(aws_kinesis_stream.events) == 1 && keys(aws_kinesis_firehose_delivery_stream.raw) == ["from_stream"]
    error_message = "kinesis mode: Lambda → stream → Firehose."
  }
  assert {
    condition     = aws_lambda_function.ingest.environment[0].variables["ANALYTICS_SINK"] == "kinesis"
    error_message = "The handler writes to Kinesis."
  }
  assert {
    condition = jsondecode(aws_iam_role_policy.lambda.policy).Statement[1] == {
      Sid      = "PutToKinesis", Effect = "Allow", Action = ["kinesis:PutRecords"]
      Resource = ["arn:aws:kinesis:us-east-1:123456789012:stream/analytics-events"]
    }
    error_message = "The Lambda may only put records to its one stream."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.firehose.policy).Statement[3].Resource == ["arn:aws:kinesis:us-east-1:123456789012:stream/analytics-events"]
    error_message = "Firehose reads only its one stream."
  }
  assert {
    condition     = length(flatten([for c in aws_kinesis_firehose_delivery_stream.raw["from_stream"].extended_s3_configuration[0].processing_configuration : [for p in c.processors : p.type if c.enabled]])) == 0
    error_message = "No processor on the stream's reader either: its records already end with the handler's newline."
  }
}

run "kinesis_draining" {
  command = plan
  variables {
    ingest_mode      = "kinesis"
    kinesis_draining = true
  }

  assert {
    condition     = length(aws_kinesis_stream.events) == 1 && keys(aws_kinesis_firehose_delivery_stream.raw) == ["direct", "from_stream"]
    error_message = "Draining keeps the stream and its reader while new events go Direct PUT."
  }
  assert {
    condition     = aws_lambda_function.ingest.environment[0].variables["ANALYTICS_SINK"] == "firehose"
    error_message = "While draining, the handler writes Direct PUT."
  }
}

run "http_api_endpoint" {
  command = plan
  variables {
    endpoint = "http_api"
  }

  assert {
    condition     = length(aws_lambda_function_url.ingest) == 0 && length(aws_apigatewayv2_api.ingest) == 1
    error_message = "http_api replaces the Function URL."
  }
  assert {
    condition     = toset(aws_apigatewayv2_api.ingest[0].cors_configuration[0].allow_origins) == toset(["https://www.example.com", "https://example.com"])
    error_message = "CORS allows exactly the configured origins."
  }
  assert {
    condition     = aws_apigatewayv2_stage.default[0].default_route_settings[0].throttling_rate_limit == 200
    error_message = "The HTTP API is throttled."
  }
  assert {
    condition     = toset(keys(aws_apigatewayv2_route.events)) == toset(["POST /v1/events", "POST /api/event"])
    error_message = "Two routes: POST /v1/events (our tracker) and POST /api/event (Plausible's)."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.ingest_5xx.namespace == "AWS/ApiGateway" && aws_cloudwatch_metric_alarm.ingest_5xx.metric_name == "5xx" && keys(aws_cloudwatch_metric_alarm.ingest_5xx.dimensions) == tolist(["ApiId"])
    error_message = "With the HTTP API, the 5xx alarm counts the API's 5xx answers (AWS/ApiGateway 5xx by ApiId)."
  }
}

run "reserved_concurrency_when_asked" {
  command = plan
  variables {
    reserved_concurrency = 10
  }

  assert {
    condition     = aws_lambda_function.ingest.reserved_concurrent_executions == 10
    error_message = "reserved_concurrency reserves that many executions: a bound on cost and abuse."
  }
}

run "an_origin_is_required" {
  command = plan
  variables {
    allowed_origins = []
  }
  expect_failures = [var.allowed_origins]
}

# --- CloudFront in front of the endpoint (var.cloudfront) --------------------------------------

override_resource {
  target = aws_cloudfront_distribution.ingest
  values = { domain_name = "d111111abcdef8.cloudfront.net" }
}

run "cloudfront" {
  command = apply
  variables {
    cloudfront               = true
    cloudfront_origin_secret = "0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = aws_cloudfront_distribution.ingest[0].price_class == "PriceClass_100"
    error_message = "Price class 100 (North America, Europe, Israel): the cheapest."
  }
  assert {
    condition     = one(aws_cloudfront_distribution.ingest[0].origin).domain_name == "abc123.lambda-url.us-east-1.on.aws" && one(aws_cloudfront_distribution.ingest[0].origin).custom_origin_config[0].origin_protocol_policy == "https-only"
    error_message = "The origin is the Function URL, over HTTPS."
  }
  assert {
    condition     = one(aws_cloudfront_distribution.ingest[0].origin).custom_header == toset([{ name = "x-analytics-origin-secret", value = "0123456789abcdef0123456789abcdef" }])
    error_message = "CloudFront adds the origin secret, the header the handler checks (core.ORIGIN_SECRET_HEADER)."
  }
  assert {
    condition     = aws_cloudfront_origin_request_policy.ingest[0].cookies_config[0].cookie_behavior == "none" && aws_cloudfront_origin_request_policy.ingest[0].query_strings_config[0].query_string_behavior == "none"
    error_message = "No cookie and no query string reach the handler."
  }
  assert {
    condition = aws_cloudfront_origin_request_policy.ingest[0].headers_config[0].header_behavior == "whitelist" && toset(aws_cloudfront_origin_request_policy.ingest[0].headers_config[0].headers[0].items) == toset([
      "CloudFront-Viewer-Country", "CloudFront-Viewer-Address", "Origin", "Content-Type", "User-Agent",
    "Access-Control-Request-Method", "Access-Control-Request-Headers"])
    error_message = "Exactly the headers the handler reads, and CloudFront's viewer country and address: no Cookie, Referer, X-Forwarded-For or CloudFront-Viewer-City."
  }
  assert {
    condition     = aws_cloudfront_distribution.ingest[0].default_cache_behavior[0].cache_policy_id == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad" && aws_cloudfront_distribution.ingest[0].default_cache_behavior[0].origin_request_policy_id == aws_cloudfront_origin_request_policy.ingest[0].id
    error_message = "Nothing is cached (Managed-CachingDisabled); the origin request policy above applies."
  }
  assert {
    condition     = contains(aws_cloudfront_distribution.ingest[0].default_cache_behavior[0].allowed_methods, "POST") && aws_cloudfront_distribution.ingest[0].default_cache_behavior[0].viewer_protocol_policy == "https-only"
    error_message = "Browsers POST events over HTTPS."
  }
  assert {
    condition     = aws_cloudfront_distribution.ingest[0].is_ipv6_enabled == false
    error_message = "IPv4 only: CloudFront-Viewer-Address of an IPv6 viewer cannot be parsed without ambiguity."
  }
  assert {
    condition = { for k, v in aws_lambda_function.ingest.environment[0].variables : k => v if contains(["ANALYTICS_BEHIND_CLOUDFRONT", "ANALYTICS_ORIGIN_SECRET", "ANALYTICS_CLIENT_IP_HEADER", "ANALYTICS_TRUSTED_PROXIES"], k) } == {
      ANALYTICS_BEHIND_CLOUDFRONT = "true", ANALYTICS_ORIGIN_SECRET = "0123456789abcdef0123456789abcdef",
    ANALYTICS_CLIENT_IP_HEADER = "cloudfront-viewer-address", ANALYTICS_TRUSTED_PROXIES = "0.0.0.0/0,::/0" }
    error_message = "The handler believes CloudFront's country and address, and refuses requests without the secret."
  }
  assert {
    condition     = output.endpoint_url == "https://d111111abcdef8.cloudfront.net/v1/events"
    error_message = "The tracker posts to CloudFront."
  }
}

run "cloudfront_over_the_http_api" {
  command = apply
  variables {
    endpoint                 = "http_api"
    cloudfront               = true
    cloudfront_origin_secret = "0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = one(aws_cloudfront_distribution.ingest[0].origin).domain_name == "abc123.execute-api.us-east-1.amazonaws.com"
    error_message = "The origin is the HTTP API's domain."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.ingest_5xx.dimensions == tomap({ ApiId = aws_apigatewayv2_api.ingest[0].id })
    error_message = "The 5xx alarm watches this HTTP API."
  }
}

run "cloudfront_needs_the_origin_secret" {
  command = plan
  variables {
    cloudfront = true
  }
  expect_failures = [aws_cloudfront_distribution.ingest]
}

run "a_short_origin_secret_is_refused" {
  command = plan
  variables {
    cloudfront               = true
    cloudfront_origin_secret = "short"
  }
  expect_failures = [var.cloudfront_origin_secret]
}

# --- the daily salt purge (docs/PRIVACY.md, "Salts") -------------------------------------------

override_resource {
  target = aws_cloudwatch_event_rule.purge_salts
  values = { arn = "arn:aws:events:us-east-1:123456789012:rule/analytics-purge-salts" }
}

run "salts_are_purged_daily_without_traffic" {
  command = apply

  assert {
    condition     = aws_cloudwatch_event_rule.purge_salts.schedule_expression == "cron(1 0 * * ? *)" && aws_cloudwatch_event_rule.purge_salts.state == "ENABLED"
    error_message = "A rule invokes the handler every day at 00:01 UTC: a salt goes when it turns 48 hours old even if no request comes (S3's lifecycle expiry is asynchronous)."
  }
  assert {
    condition     = aws_cloudwatch_event_target.purge_salts.rule == aws_cloudwatch_event_rule.purge_salts.name && aws_cloudwatch_event_target.purge_salts.arn == aws_lambda_function.ingest.arn
    error_message = "The rule's target is the ingest handler."
  }
  assert {
    condition     = aws_cloudwatch_event_target.purge_salts.input == null && aws_cloudwatch_event_target.purge_salts.input_path == null && length(aws_cloudwatch_event_target.purge_salts.input_transformer) == 0
    error_message = "The handler gets EventBridge's own Scheduled Event (source aws.events), which it recognises: no input replaces it."
  }
  assert {
    condition = {
      action     = aws_lambda_permission.purge_salts.action, principal = aws_lambda_permission.purge_salts.principal
      source_arn = aws_lambda_permission.purge_salts.source_arn, function_name = aws_lambda_permission.purge_salts.function_name
      } == {
      action     = "lambda:InvokeFunction", principal = "events.amazonaws.com"
      source_arn = "arn:aws:events:us-east-1:123456789012:rule/analytics-purge-salts", function_name = "analytics-ingest"
    }
    error_message = "EventBridge may invoke the handler for this one rule only (no IAM role: a resource policy statement scoped to the rule's ARN)."
  }
}
