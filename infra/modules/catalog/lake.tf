# The Parquet lake the pipeline writes (ANALYTICS_LAKE_URL = s3://<bucket>/<lake_prefix>), as
# Glue tables. One table per table the warehouse publishes, with the columns of
# lake_tables.json, the one place they are written down; analytics_platform_tests/
# test_lake_catalog.py holds that file, and this plan, to the Parquet schema of a real backfill.
#
# Partitions are projected from the folder names (analytics_platform/layout.py) for Athena: no
# crawler to run or pay for, no partition to register after each run, and a new hour or day is
# queryable as soon as its file lands. Projection is Athena's alone: Spark through the Glue
# catalog and Redshift Spectrum read the partitions registered in Glue, and nothing here
# registers any, so to them a partitioned table is empty until `MSCK REPAIR TABLE` or
# `ALTER TABLE … ADD PARTITION` registers its folders (docs/QUERYING.md); Athena ignores
# registered partitions of a projected table, so doing that changes nothing for it.
#   hour=2026-02-01T13  hourly tables (events, quarantine): key `hour`, string, hour projection
#   date=2026-02-01     daily tables (sessions, session_events, daily marts): key `date`, date
#   all                 all-history marts: one file, no partition

locals {
  lake_tables = jsondecode(file("${path.module}/lake_tables.json")).tables
  lake_root   = "s3://${var.bucket}/${trim(var.lake_prefix, "/")}"

  # How each partition folder is projected. `hour` stays a string, as DuckDB's views show it and
  # because a Hive partition key cannot be a timestamp with this format; `date` is a real date
  # (the daily marts' own `date` column is a date, and the partition key replaces it).
  lake_partitions = {
    hour = {
      type   = "string"
      format = "yyyy-MM-dd'T'HH"
      start  = "${var.lake_start_date}T00"
      unit   = "HOURS"
    }
    date = {
      type   = "date"
      format = "yyyy-MM-dd"
      start  = var.lake_start_date
      unit   = "DAYS"
    }
  }
}

resource "aws_glue_catalog_table" "lake" {
  for_each = local.lake_tables

  name          = each.key
  database_name = aws_glue_catalog_database.analytics.name
  table_type    = "EXTERNAL_TABLE"
  description   = "analytics-platform lake: ${each.key} (docs/CONTRACT.md, docs/QUERYING.md)"

  parameters = merge(
    { classification = "parquet", EXTERNAL = "TRUE" },
    each.value.partition == "all" ? {} : {
      "projection.enabled"                               = "true"
      "projection.${each.value.partition}.type"          = "date"
      "projection.${each.value.partition}.format"        = local.lake_partitions[each.value.partition].format
      "projection.${each.value.partition}.range"         = "${local.lake_partitions[each.value.partition].start},NOW"
      "projection.${each.value.partition}.interval"      = "1"
      "projection.${each.value.partition}.interval.unit" = local.lake_partitions[each.value.partition].unit
      "storage.location.template"                        = "${local.lake_root}/${each.key}/${each.value.partition}=$${${each.value.partition}}/"
    },
  )

  dynamic "partition_keys" {
    for_each = each.value.partition == "all" ? [] : [each.value.partition]
    content {
      name = partition_keys.value
      type = local.lake_partitions[partition_keys.value].type
    }
  }

  storage_descriptor {
    # The all-history marts live in <table>/all/: point at that folder itself.
    location      = "${local.lake_root}/${each.key}/${each.value.partition == "all" ? "all/" : ""}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    # A file column named like the partition key (the daily marts' `date`) is the key itself:
    # Hive allows a name once, and its value is the folder's. The types are those Athena reads
    # the files' columns as; `visitor_key` (INT64 annotated UINT_64 in the files) is `bigint`:
    # Trino's Parquet reader reads an integer-annotated INT64 as bigint, and fails the query if
    # the table says decimal(20,0), the type Spark gives UINT64, since it reads a long decimal
    # only from a DECIMAL-annotated column. Keys past 2^63 come out negative, one to one.
    dynamic "columns" {
      for_each = [for c in each.value.columns : c if c[0] != each.value.partition]
      content {
        name = columns.value[0]
        type = columns.value[1]
      }
    }
  }
}
