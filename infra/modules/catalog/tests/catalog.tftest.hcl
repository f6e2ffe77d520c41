# `terraform test` with a mock AWS provider: no cloud access, no credentials. Plans check the
# choices written in the configuration; an apply against the mock fills computed ARNs so the
# IAM policies can be checked for least privilege.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::example-com-analytics", id = "example-com-analytics" }
  }
  mock_resource "aws_kinesis_firehose_delivery_stream" {
    defaults = { arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/analytics-raw" }
  }
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws:kinesis:us-east-1:123456789012:stream/analytics-events" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/analytics-ingest" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/analytics" }
  }
  mock_resource "aws_lambda_function" {
    defaults = {
      arn        = "arn:aws:lambda:us-east-1:123456789012:function:analytics-ingest"
      invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/analytics/invocations"
    }
  }
  mock_resource "aws_lambda_function_url" {
    defaults = { function_url = "https://abc123.lambda-url.us-east-1.on.aws/" }
  }
  mock_resource "aws_apigatewayv2_api" {
    defaults = {
      api_endpoint  = "https://abc123.execute-api.us-east-1.amazonaws.com"
      execution_arn = "arn:aws:execute-api:us-east-1:123456789012:abc123"
    }
  }
}
variables {
  name   = "analytics"
  bucket = "example-com-analytics"
}

run "projection_and_workgroup" {
  command = plan

  assert {
    condition     = aws_glue_catalog_table.raw_events.parameters["projection.enabled"] == "true" && aws_glue_catalog_table.raw_events.parameters["projection.month.digits"] == "2" && aws_glue_catalog_table.raw_events.parameters["projection.hour.range"] == "0,23"
    error_message = "Partition projection over year/month/day/hour, zero-padded."
  }
  assert {
    condition     = aws_glue_catalog_table.raw_events.parameters["storage.location.template"] == "s3://example-com-analytics/raw/year=$${year}/month=$${month}/day=$${day}/hour=$${hour}/"
    error_message = "The projection template matches Firehose's prefix."
  }
  assert {
    condition     = aws_athena_workgroup.analytics.configuration[0].bytes_scanned_cutoff_per_query == 10737418240
    error_message = "Athena queries are capped."
  }
  assert {
    condition     = aws_athena_workgroup.analytics.configuration[0].result_configuration[0].output_location == "s3://example-com-analytics/athena-results/"
    error_message = "Query results go to the bucket's athena-results/ prefix."
  }
}
