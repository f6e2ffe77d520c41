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

run "lake_tables_projected" {
  command = plan

  assert {
    condition     = length(aws_glue_catalog_table.lake) == length(jsondecode(file("lake_tables.json")).tables) && alltrue([for n in ["events", "quarantine", "sessions", "session_events", "kpis_daily", "pages_daily", "attribution_daily", "funnel_daily", "attribution_touch", "cohort_retention", "experiments"] : contains(keys(aws_glue_catalog_table.lake), n)])
    error_message = "A Glue table for every table of lake_tables.json: events, sessions and every mart."
  }
  assert {
    condition     = alltrue([for t in aws_glue_catalog_table.lake : t.parameters["classification"] == "parquet" && endswith(t.storage_descriptor[0].ser_de_info[0].serialization_library, "ParquetHiveSerDe")])
    error_message = "The lake tables read Parquet."
  }
  assert {
    condition     = aws_glue_catalog_table.lake["events"].parameters["projection.enabled"] == "true" && aws_glue_catalog_table.lake["events"].parameters["projection.hour.type"] == "date" && aws_glue_catalog_table.lake["events"].parameters["projection.hour.format"] == "yyyy-MM-dd'T'HH" && aws_glue_catalog_table.lake["events"].parameters["projection.hour.interval.unit"] == "HOURS" && aws_glue_catalog_table.lake["events"].parameters["projection.hour.range"] == "2026-01-01T00,NOW"
    error_message = "Hourly tables: hour=yyyy-MM-ddTHH projected hour by hour, from the start date to now."
  }
  assert {
    condition     = aws_glue_catalog_table.lake["events"].parameters["storage.location.template"] == "s3://example-com-analytics/lake/events/hour=$${hour}/" && aws_glue_catalog_table.lake["events"].partition_keys[0].name == "hour" && aws_glue_catalog_table.lake["events"].partition_keys[0].type == "string"
    error_message = "events: partition key hour (string), under ANALYTICS_LAKE_URL's events/hour=…/."
  }
  assert {
    condition     = alltrue([for n in ["sessions", "session_events", "kpis_daily", "pages_daily", "attribution_daily", "funnel_daily"] : aws_glue_catalog_table.lake[n].parameters["projection.enabled"] == "true" && aws_glue_catalog_table.lake[n].parameters["projection.date.format"] == "yyyy-MM-dd" && aws_glue_catalog_table.lake[n].parameters["projection.date.interval.unit"] == "DAYS" && aws_glue_catalog_table.lake[n].parameters["storage.location.template"] == "s3://example-com-analytics/lake/${n}/date=$${date}/" && aws_glue_catalog_table.lake[n].partition_keys[0].type == "date"])
    error_message = "Daily tables: date=yyyy-MM-dd projected day by day, key of type date."
  }
  assert {
    condition     = !contains([for c in aws_glue_catalog_table.lake["kpis_daily"].storage_descriptor[0].columns : c.name], "date") && contains([for c in aws_glue_catalog_table.lake["kpis_daily"].storage_descriptor[0].columns : c.name], "visitors")
    error_message = "A file column named like the partition key is the key, not a second column."
  }
  assert {
    condition     = alltrue([for n in ["attribution_touch", "cohort_retention", "experiments"] : length(aws_glue_catalog_table.lake[n].partition_keys) == 0 && !contains(keys(aws_glue_catalog_table.lake[n].parameters), "projection.enabled") && aws_glue_catalog_table.lake[n].storage_descriptor[0].location == "s3://example-com-analytics/lake/${n}/all/"])
    error_message = "All-history marts: no partition, the location is their all/ folder."
  }
  assert {
    condition     = alltrue([for t in aws_glue_catalog_table.lake : t.database_name == "analytics_analytics"])
    error_message = "Every lake table in the stack's Glue database."
  }
}

run "lake_prefix_and_start_date" {
  command = plan
  variables {
    lake_prefix     = "/warehouse/lake/"
    lake_start_date = "2025-06-01"
  }

  assert {
    condition     = aws_glue_catalog_table.lake["sessions"].parameters["storage.location.template"] == "s3://example-com-analytics/warehouse/lake/sessions/date=$${date}/" && aws_glue_catalog_table.lake["sessions"].parameters["projection.date.range"] == "2025-06-01,NOW"
    error_message = "The lake prefix and the first projected day follow the variables."
  }
}

run "start_date_must_be_a_date" {
  command = plan
  variables {
    lake_start_date = "2025-6-1"
  }
  expect_failures = [var.lake_start_date]
}
