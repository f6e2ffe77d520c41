output "database" {
  value = aws_glue_catalog_database.analytics.name
}

output "table" {
  value = aws_glue_catalog_table.raw_events.name
}

output "workgroup" {
  value = aws_athena_workgroup.analytics.name
}
