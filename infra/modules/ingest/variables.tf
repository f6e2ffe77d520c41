variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the lake bucket (from the storage module)."
  type        = string
}

variable "ingest_mode" {
  description = "\"firehose\": Lambda → Firehose Direct PUT (cheapest). \"kinesis\": Lambda → Kinesis Data Stream → Firehose (24 h replay; a shard costs about $11 a month)."
  type        = string
  default     = "firehose"
  validation {
    condition     = contains(["firehose", "kinesis"], var.ingest_mode)
    error_message = "ingest_mode must be \"firehose\" or \"kinesis\"."
  }
}

variable "kinesis_draining" {
  description = "In kinesis mode: send new events to a Direct PUT Firehose while the stream is read until empty (24 h), then switch ingest_mode to \"firehose\". Turns the stream off without losing data."
  type        = bool
  default     = false
}

variable "endpoint" {
  description = "\"function_url\" (default, cheapest) or \"http_api\" (API Gateway HTTP API, with throttling)."
  type        = string
  default     = "function_url"
  validation {
    condition     = contains(["function_url", "http_api"], var.endpoint)
    error_message = "endpoint must be \"function_url\" or \"http_api\"."
  }
}

variable "allowed_origins" {
  description = "Origins allowed to send events, e.g. [\"https://www.example.com\"]."
  type        = list(string)
  validation {
    condition     = length(var.allowed_origins) > 0
    error_message = "Name at least one origin (your site), e.g. https://www.example.com."
  }
}

variable "lambda_zip" {
  description = "The handler's deployment zip: `analytics-platform build-lambda --out <path>`."
  type        = string
}

variable "lambda_runtime" {
  type    = string
  default = "python3.12"
}

variable "lambda_architecture" {
  description = "arm64 is about 20 % cheaper per GB-second; the zip is pure Python and runs on both."
  type        = string
  default     = "arm64"
}

variable "lambda_memory_mb" {
  type    = number
  default = 256
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the handler, which are also its upper bound: caps cost and abuse (10 is plenty for a site). null (default): no reservation, the bound is the account's concurrency quota. AWS keeps 100 executions unreserved, so reserving 10 needs a quota of at least 110; new accounts start lower (docs/DEPLOY.md)."
  type        = number
  default     = null
}

variable "throttle_rate" {
  description = "HTTP API only: steady requests per second."
  type        = number
  default     = 200
}

variable "throttle_burst" {
  description = "HTTP API only: burst of requests."
  type        = number
  default     = 400
}

variable "buffering_interval" {
  description = "Firehose buffering interval, seconds (60–900)."
  type        = number
  default     = 300
}

variable "buffering_size_mb" {
  description = "Firehose buffering size, MB (1–128): Firehose writes an object when this much has arrived or buffering_interval has passed."
  type        = number
  default     = 64
}

variable "log_retention_days" {
  type    = number
  default = 14
}

variable "alarm_actions" {
  description = "ARNs notified by the alarms (e.g. an SNS topic); empty: alarms only show in CloudWatch."
  type        = list(string)
  default     = []
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "cloudfront" {
  description = "Put a CloudFront distribution (price class 100) in front of the endpoint: the handler then takes each event's country from CloudFront-Viewer-Country instead of the browser's time zone (docs/INGEST.md, \"Country\"). Needs cloudfront_origin_secret. At 1M events a month: $0.36, or $0.02 within CloudFront's always-free allowance (docs/INGEST.md)."
  type        = bool
  default     = false
}

variable "cloudfront_origin_secret" {
  description = "With cloudfront: a random value of 32 to 128 characters (`openssl rand -hex 32`) that CloudFront adds to every request it forwards; the handler refuses requests without it, so nobody can reach the endpoint directly and set CloudFront's headers itself."
  type        = string
  default     = null
  sensitive   = true
  validation {
    condition     = var.cloudfront_origin_secret == null || can(regex("^[A-Za-z0-9_-]{32,128}$", var.cloudfront_origin_secret))
    error_message = "cloudfront_origin_secret: 32 to 128 letters, digits, - or _ (openssl rand -hex 32)."
  }
}
