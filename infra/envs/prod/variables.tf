variable "region" {
  type    = string
  default = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "analytics"
}

variable "bucket_name" {
  description = "The lake bucket (globally unique), e.g. \"example-com-analytics\"."
  type        = string
}

variable "allowed_origins" {
  description = "Your site's origins, e.g. [\"https://www.example.com\", \"https://example.com\"]."
  type        = list(string)
}

variable "lambda_zip" {
  description = "Built by `analytics-platform build-lambda` (default path from the repository root)."
  type        = string
  default     = "../../../dist/ingest-lambda.zip"
}

variable "ingest_mode" {
  type    = string
  default = "firehose"
}

variable "kinesis_draining" {
  type    = bool
  default = false
}

variable "endpoint" {
  type    = string
  default = "function_url"
}

variable "ingest_cloudfront" {
  description = "Put CloudFront (price class 100) in front of the endpoint, for each event's country from CloudFront-Viewer-Country instead of the browser's time zone; endpoint_url then points at CloudFront. Needs ingest_cloudfront_origin_secret. At 1M events a month: $0.36 list, $0.02 within CloudFront's always-free allowance (`analytics-platform cost --cloudfront`, docs/INGEST.md)."
  type        = bool
  default     = false
}

variable "ingest_cloudfront_origin_secret" {
  description = "With ingest_cloudfront: 32 to 128 letters, digits, - or _ (`openssl rand -hex 32`), which CloudFront adds to every request; the handler refuses requests without it. Keep it out of terraform.tfvars in git: TF_VAR_ingest_cloudfront_origin_secret."
  type        = string
  default     = null
  sensitive   = true
  validation {
    condition     = !var.ingest_cloudfront || can(regex("^[A-Za-z0-9_-]{32,128}$", var.ingest_cloudfront_origin_secret))
    error_message = "ingest_cloudfront = true needs ingest_cloudfront_origin_secret: 32 to 128 letters, digits, - or _ (openssl rand -hex 32)."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and the most allowed to) the ingest handler, e.g. 10: a bound on cost and abuse. null (default): none, the account's concurrency quota bounds it. Reserving needs a quota of at least 100 + this (`aws lambda get-account-settings`), which new accounts do not have (docs/DEPLOY.md)."
  type        = number
  default     = null
}

variable "buffering_interval" {
  description = "Firehose's buffering interval (s). Default: 300, or 220 with enable_pipeline (raw/ notifications into SQS, sensors every 10 s), so that an event reaches the dashboard within 5 minutes (`analytics-platform cost`)."
  type        = number
  default     = null
}

variable "buffering_size_mb" {
  type    = number
  default = 64
}

variable "raw_retention_days" {
  type    = number
  default = 400
}

variable "error_retention_days" {
  type    = number
  default = 30
}

variable "log_retention_days" {
  type    = number
  default = 14
}

variable "alarm_actions" {
  type    = list(string)
  default = []
}

variable "force_destroy" {
  description = "Let `terraform destroy` remove the bucket with its data."
  type        = bool
  default     = false
}

# --- the pipeline and the dashboard in the account (modules/pipeline): off unless asked for ------

variable "enable_pipeline" {
  description = "Run the pipeline and the dashboard in the account: one small Spot machine running `analytics-platform serve` from your image in ECR (docs/DEPLOY.md §4). Off: the pipeline runs wherever you run it."
  type        = bool
  default     = false
}

variable "pipeline_image_tag" {
  description = "The image tag pushed to the pipeline's ECR repository (output pipeline.ecr_repository_url). Empty on the first apply: the repository is created, no machine starts."
  type        = string
  default     = ""
}

variable "pipeline_instance_type" {
  type    = string
  default = "t4g.small"
}

variable "pipeline_spot" {
  type    = bool
  default = true
}

variable "pipeline_public_ipv4" {
  description = "Give the pipeline machine a public IPv4 address ($3.65 a month) instead of reaching AWS's APIs over IPv6 alone (docs/DEPLOY.md)."
  type        = bool
  default     = false
}

variable "pipeline_run_launcher" {
  description = "\"default\" (runs are processes on the machine) or \"ecs\" (each run a Fargate task, for big backfills)."
  type        = string
  default     = "default"
}

variable "pipeline_data_volume_gb" {
  description = "The pipeline machine's persistent data volume (Dagster's run history, the lake's cache, the warehouse), in GB."
  type        = number
  default     = 10
}

variable "pipeline_no_success_alarm_hours" {
  description = "Alarm when no Dagster run has succeeded for this many hours (2 to 24)."
  type        = number
  default     = 3
}

variable "pipeline_environment" {
  description = "Extra environment for the pipeline, e.g. { ANALYTICS_START_DATE = \"2026-11-01\" }. No secrets."
  type        = map(string)
  default     = {}
}

variable "lake_start_date" {
  description = "First day the Glue tables over the Parquet lake project partitions from (YYYY-MM-DD): your ANALYTICS_START_DATE."
  type        = string
  default     = "2026-01-01"
}

variable "bytes_scanned_cutoff" {
  description = "Athena cancels a query of the workgroup that would scan more than this many bytes (10 GB ≈ $0.05)."
  type        = number
  default     = 10737418240
}

variable "extra_queue_notifications" {
  description = "SQS queues of other consumers to notify of the bucket's objects, e.g. Snowflake's AUTO_REFRESH channel on lake/ (docs/QUERYING.md): [{ id, queue_arn, filter_prefix, optional filter_suffix, optional events }]. A notification added to the bucket outside Terraform is removed by the next apply; put it here."
  type = list(object({
    id            = string
    queue_arn     = string
    filter_prefix = string
    filter_suffix = optional(string)
    events        = optional(list(string), ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])
  }))
  default = []
}
