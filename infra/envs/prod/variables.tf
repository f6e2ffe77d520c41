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

variable "reserved_concurrency" {
  type    = number
  default = 10
}

variable "buffering_interval" {
  type    = number
  default = 300
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
