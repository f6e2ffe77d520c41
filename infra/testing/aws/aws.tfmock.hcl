# Mock values for the AWS provider in every `terraform test` of infra/ (mock_provider "aws"
# { source = ... }): fixed ARNs and URLs, so that plans and mock applies can be checked.

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
mock_resource "aws_cloudwatch_event_rule" {
  defaults = { arn = "arn:aws:events:us-east-1:123456789012:rule/analytics-purge-salts" }
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
