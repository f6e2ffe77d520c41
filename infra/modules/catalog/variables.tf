variable "name" {
  type = string
}

variable "bucket" {
  description = "The lake bucket's name."
  type        = string
}

variable "bytes_scanned_cutoff" {
  description = "Athena cancels a query that would scan more than this many bytes (10 GB ≈ $0.05)."
  type        = number
  default     = 10737418240
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "lake_prefix" {
  description = "Where the pipeline keeps the Parquet lake in the bucket (ANALYTICS_LAKE_URL = s3://<bucket>/<lake_prefix>)."
  type        = string
  default     = "lake"
}

variable "lake_start_date" {
  description = "First day the lake's partitions are projected from (YYYY-MM-DD): ANALYTICS_START_DATE, or the first day you backfilled."
  type        = string
  default     = "2026-01-01"
  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}$", var.lake_start_date))
    error_message = "lake_start_date is a date: YYYY-MM-DD."
  }
}
