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
