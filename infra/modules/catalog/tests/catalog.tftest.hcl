# `terraform test` with a mock AWS provider: no cloud access, no credentials. Plans check the
# choices written in the configuration; an apply against the mock fills computed ARNs so the
# IAM policies can be checked for least privilege.

mock_provider "aws" {
  source = "../../testing/aws"
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
