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
    condition     = aws_kinesis_firehose_delivery_stream.raw["direct"].extended_s3_configuration[0].processing_configuration[0].processors[0].type == "AppendDelimiterToRecord"
    error_message = "A newline delimiter processor guards the record boundaries."
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
    condition     = aws_lambda_function.ingest.reserved_concurrent_executions == 10
    error_message = "Reserved concurrency bounds cost and abuse."
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
}

run "an_origin_is_required" {
  command = plan
  variables {
    allowed_origins = []
  }
  expect_failures = [var.allowed_origins]
}
