output "endpoint_url" {
  description = "Where the tracker posts events (through CloudFront when var.cloudfront)."
  value = var.cloudfront ? "https://${aws_cloudfront_distribution.ingest[0].domain_name}/v1/events" : (
    var.endpoint == "function_url" ? "${trimsuffix(aws_lambda_function_url.ingest[0].function_url, "/")}/v1/events" : (
  "${aws_apigatewayv2_api.ingest[0].api_endpoint}/v1/events"))
}

output "function_name" {
  value = aws_lambda_function.ingest.function_name
}

output "firehose_name" {
  value = local.firehose_target.name
}

output "kinesis_stream_name" {
  value = local.kinesis ? aws_kinesis_stream.events[0].name : null
}
