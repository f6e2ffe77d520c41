output "endpoint_url" {
  description = "Where the tracker posts events (CloudFront's domain with ingest_cloudfront)."
  value       = module.ingest.endpoint_url
}

output "bucket" {
  value = module.storage.bucket
}

output "analytics_raw_url" {
  description = "Give this to the pipeline: ANALYTICS_RAW_URL."
  value       = "s3://${module.storage.bucket}/raw"
}

output "tracker_snippet" {
  description = "Paste into every page (serve analytics.js from your site or a CDN)."
  value       = "<script src=\"/analytics.js\" data-endpoint=\"${module.ingest.endpoint_url}\" defer></script>"
}

output "athena" {
  value = "Athena workgroup ${module.catalog.workgroup}: SELECT * FROM ${module.catalog.database}.${module.catalog.table} WHERE year = '2026' AND month = '02' LIMIT 10"
}

output "lake_catalog" {
  description = "The Glue tables over the Parquet lake (docs/QUERYING.md): Athena reads what the dashboard reads; Spark and Redshift Spectrum once partitions are registered."
  value = {
    database  = module.catalog.database
    workgroup = module.catalog.workgroup
    location  = module.catalog.lake_location
    tables    = module.catalog.lake_tables
    example   = "SELECT * FROM ${module.catalog.database}.kpis_daily WHERE \"date\" >= current_date - INTERVAL '7' DAY ORDER BY \"date\""
  }
}

output "pipeline" {
  description = "With enable_pipeline: where to push the image, and how to reach the Dagster UI and the dashboard (docs/DEPLOY.md §4)."
  value = var.enable_pipeline ? {
    ecr_repository_url    = module.pipeline[0].ecr_repository_url
    instance_id_command   = module.pipeline[0].instance_id_command
    port_forward_commands = module.pipeline[0].port_forward_commands
    log_group             = module.pipeline[0].log_group
    alarm                 = module.pipeline[0].alarm
  } : null
}
