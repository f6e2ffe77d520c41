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

variable "extra_queue_notifications" {
  description = "Other SQS queues to notify of the bucket's objects, e.g. Snowflake's AUTO_REFRESH channel on lake/ (docs/QUERYING.md): { id, queue_arn, filter_prefix, optional filter_suffix, optional events (default created and removed objects) }. The bucket has one notification configuration, this module's, so a queue added outside Terraform is removed by the next apply: add it here. The queue's own policy must let S3 send to it. A prefix may not overlap raw/ while raw_notifications is on (S3 refuses two configurations for the same objects)."
  type = list(object({
    id            = string
    queue_arn     = string
    filter_prefix = string
    filter_suffix = optional(string)
    events        = optional(list(string), ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])
  }))
  default = []
  validation {
    condition     = alltrue([for n in var.extra_queue_notifications : can(regex("^arn:aws[a-z-]*:sqs:", n.queue_arn)) && alltrue([for e in n.events : startswith(e, "s3:")])])
    error_message = "Each extra queue notification needs an SQS queue ARN (arn:aws:sqs:…, not its URL) and S3 event types (s3:ObjectCreated:*, …)."
  }
}
