output "database" {
  value = aws_glue_catalog_database.analytics.name
}

output "table" {
  value = aws_glue_catalog_table.raw_events.name
}

output "workgroup" {
  value = aws_athena_workgroup.analytics.name
}

output "lake_tables" {
  description = "The Glue tables over the Parquet lake (one per warehouse table)."
  value       = sort(keys(aws_glue_catalog_table.lake))
}

output "lake_location" {
  description = "The lake prefix the tables read (ANALYTICS_LAKE_URL)."
  value       = local.lake_root
}
