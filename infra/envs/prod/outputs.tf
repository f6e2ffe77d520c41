output "endpoint_url" {
  description = "Where the tracker posts events."
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
