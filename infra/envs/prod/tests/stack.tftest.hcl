# `terraform test` of the stack as a user applies it, with a mock AWS provider: the outputs the
# user needs (endpoint, ANALYTICS_RAW_URL, tracker snippet). Each module has its own tests.

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
  bucket_name     = "example-com-analytics"
  allowed_origins = ["https://www.example.com", "https://example.com"]
  lambda_zip      = "../../../dist/ingest-lambda.zip"
}

run "outputs_for_the_user" {
  command = apply

  assert {
    condition     = output.analytics_raw_url == "s3://example-com-analytics/raw"
    error_message = "ANALYTICS_RAW_URL for the pipeline."
  }
  assert {
    condition     = output.endpoint_url == "https://abc123.lambda-url.us-east-1.on.aws/v1/events"
    error_message = "The tracker posts to the Function URL's /v1/events."
  }
  assert {
    condition     = strcontains(output.tracker_snippet, "data-endpoint=\"https://abc123.lambda-url.us-east-1.on.aws/v1/events\"")
    error_message = "The snippet carries the endpoint."
  }
}

run "http_api_outputs" {
  command = apply
  variables {
    endpoint = "http_api"
  }

  assert {
    condition     = output.endpoint_url == "https://abc123.execute-api.us-east-1.amazonaws.com/v1/events"
    error_message = "The tracker posts to the HTTP API's /v1/events."
  }
}
