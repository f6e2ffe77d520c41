# `terraform test` of the stack as a user applies it, with a mock AWS provider: the outputs the
# user needs (endpoint, ANALYTICS_RAW_URL, tracker snippet). Each module has its own tests.

mock_provider "aws" {
  source = "../../testing/aws"

  # for the pipeline module (enable_pipeline)
  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b"] }
  }
  mock_resource "aws_vpc" {
    defaults = { ipv6_cidr_block = "2600:1f18:1234:5600::/56" }
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

run "pipeline_off_by_default" {
  command = plan

  assert {
    condition     = length(module.pipeline) == 0 && output.pipeline == null
    error_message = "The pipeline is opt-in: nothing of it without enable_pipeline."
  }
}

run "pipeline_opt_in" {
  command = apply
  variables {
    enable_pipeline    = true
    pipeline_image_tag = "abc1234"
  }

  assert {
    condition     = length(module.pipeline) == 1 && strcontains(output.pipeline.port_forward_commands.dashboard, "portNumber=8501")
    error_message = "enable_pipeline adds the pipeline and says how to reach the dashboard."
  }
  assert {
    condition     = module.storage.raw_queue_url != null && module.storage.raw_queue_arn != null
    error_message = "With the pipeline: raw/ notifications into an SQS queue, for its sensor."
  }
}

# A queue of another consumer (Snowflake's AUTO_REFRESH channel) on the lake: the stack passes it
# to the storage module, whose notification configuration (the bucket's only one) includes it.
run "extra_queue_notifications" {
  command = plan
  variables {
    extra_queue_notifications = [{
      id            = "snowflake-lake"
      queue_arn     = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"
      filter_prefix = "lake/"
    }]
  }

  assert {
    condition     = module.storage.notification_queue_arns == ["arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-AIDAEXAMPLE-abc"]
    error_message = "extra_queue_notifications reaches the bucket's notification configuration."
  }
}

# The module's own tests check the distribution and the handler's environment; here, that the stack
# passes both variables (the module refuses cloudfront without a secret, so the plan proves it).
# A plan with the domain overridden: 6 s here against 14 s for a mock apply.
run "cloudfront_opt_in" {
  command = plan
  override_resource {
    target          = module.ingest.aws_cloudfront_distribution.ingest
    values          = { domain_name = "d111111abcdef8.cloudfront.net" }
    override_during = plan
  }
  variables {
    ingest_cloudfront               = true
    ingest_cloudfront_origin_secret = "0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = output.endpoint_url == "https://d111111abcdef8.cloudfront.net/v1/events"
    error_message = "With ingest_cloudfront the tracker posts to CloudFront."
  }
  assert {
    condition     = strcontains(output.tracker_snippet, "data-endpoint=\"https://d111111abcdef8.cloudfront.net/v1/events\"")
    error_message = "The snippet carries CloudFront's endpoint."
  }
}

run "cloudfront_needs_its_secret" {
  command = plan
  variables {
    ingest_cloudfront = true
  }
  expect_failures = [var.ingest_cloudfront_origin_secret]
}

run "cloudfront_refuses_a_short_secret" {
  command = plan
  variables {
    ingest_cloudfront               = true
    ingest_cloudfront_origin_secret = "0123456789abcdef"
  }
  expect_failures = [var.ingest_cloudfront_origin_secret]
}
