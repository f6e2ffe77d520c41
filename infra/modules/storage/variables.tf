variable "bucket_name" {
  description = "Name of the bucket (globally unique)."
  type        = string
}

variable "raw_retention_days" {
  description = "Days raw event objects (raw/) are kept."
  type        = number
  default     = 400
}

variable "error_retention_days" {
  description = "Days Firehose's error output (errors/) is kept."
  type        = number
  default     = 30
}

variable "athena_results_retention_days" {
  description = "Days Athena query results (athena-results/) are kept."
  type        = number
  default     = 7
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds objects."
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "raw_notifications" {
  description = "Send raw/'s ObjectCreated notifications to an SQS queue (notifications.tf) for the pipeline's raw-lake sensor, which then lists hour prefixes once an hour instead of every tick. Only useful with a consumer: envs/prod sets it with enable_pipeline."
  type        = bool
  default     = false
}

variable "raw_queue_name" {
  description = "Name of the notifications queue (its dead-letter queue adds -dlq). Default: <bucket_name>-raw-objects."
  type        = string
  default     = null
}

variable "raw_queue_visibility_seconds" {
  description = "How long a received notification stays hidden: the sensor deletes it on its next tick (10 s later); if that tick never comes, it is delivered again after this."
  type        = number
  default     = 300
}

variable "raw_queue_retention_seconds" {
  description = "How long an unread notification is kept (4 days by default; at most 14)."
  type        = number
  default     = 345600
  validation {
    condition     = var.raw_queue_retention_seconds >= 3600 && var.raw_queue_retention_seconds <= 1209600
    error_message = "raw_queue_retention_seconds must be between 3600 and 1209600 (14 days)."
  }
}
