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
