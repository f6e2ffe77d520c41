# Query the raw events at any scale with Athena: a Glue table over raw/ whose partitions are
# projected from the key layout (no crawler, no partition maintenance), and a workgroup with a
# results location and a per-query scan limit.

resource "aws_glue_catalog_database" "analytics" {
  name = replace("${var.name}_analytics", "-", "_")
}

resource "aws_glue_catalog_table" "raw_events" {
  name          = "raw_events"
  database_name = aws_glue_catalog_database.analytics.name
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "classification"            = "json"
    "projection.enabled"        = "true"
    "projection.year.type"      = "integer"
    "projection.year.range"     = "2024,2100"
    "projection.year.digits"    = "4"
    "projection.month.type"     = "integer"
    "projection.month.range"    = "1,12"
    "projection.month.digits"   = "2"
    "projection.day.type"       = "integer"
    "projection.day.range"      = "1,31"
    "projection.day.digits"     = "2"
    "projection.hour.type"      = "integer"
    "projection.hour.range"     = "0,23"
    "projection.hour.digits"    = "2"
    "storage.location.template" = "s3://${var.bucket}/raw/year=$${year}/month=$${month}/day=$${day}/hour=$${hour}/"
  }

  partition_keys {
    name = "year"
    type = "string"
  }
  partition_keys {
    name = "month"
    type = "string"
  }
  partition_keys {
    name = "day"
    type = "string"
  }
  partition_keys {
    name = "hour"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${var.bucket}/raw/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters            = { "ignore.malformed.json" = "true" }
    }

    # The stored raw record of CONTRACT §2, in analytics_platform/contract.py's order: the client's
    # fields the handler keeps (STORED_FIELD_NAMES), then those it adds (RAW_FIELDS). Ids and
    # times stay the text the handler wrote. A list, not a map, so `SELECT *` keeps that order;
    # analytics_platform_tests/test_lake_catalog.py holds the plan's columns to contract.py.
    dynamic "columns" {
      for_each = [
        ["event_type", "string"], ["event_id", "string"], ["session_id", "string"],
        ["visitor_id", "string"], ["page_path", "string"], ["page_host", "string"],
        ["page_title", "string"], ["referrer", "string"], ["utm_source", "string"],
        ["utm_medium", "string"], ["utm_campaign", "string"], ["utm_content", "string"],
        ["utm_term", "string"], ["screen_width", "int"], ["screen_height", "int"],
        ["event_ts", "string"], ["sent_ts", "string"], ["props", "map<string,string>"],
        ["ingest_ts", "string"], ["user_agent", "string"], ["schema_version", "int"],
        ["visitor_hash", "string"], ["consent", "boolean"], ["country", "string"],
        ["country_source", "string"],
      ]
      content {
        name = columns.value[0]
        type = columns.value[1]
      }
    }
  }
}

resource "aws_athena_workgroup" "analytics" {
  name          = "${var.name}-analytics"
  force_destroy = true
  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff
    result_configuration {
      output_location = "s3://${var.bucket}/athena-results/"
      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
  tags = var.tags
}
