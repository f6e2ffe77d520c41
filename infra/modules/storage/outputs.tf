output "bucket" {
  value = aws_s3_bucket.lake.id
}

output "bucket_arn" {
  value = aws_s3_bucket.lake.arn
}

output "raw_queue_url" {
  description = "The raw/ notifications queue (ANALYTICS_RAW_QUEUE_URL), or null without raw_notifications."
  value       = var.raw_notifications ? aws_sqs_queue.raw[0].url : null
}

output "raw_queue_arn" {
  value = var.raw_notifications ? aws_sqs_queue.raw[0].arn : null
}

output "notification_queue_arns" {
  description = "Every queue the bucket notifies of its objects: raw/'s (raw_notifications), then extra_queue_notifications."
  value       = concat(var.raw_notifications ? [aws_sqs_queue.raw[0].arn] : [], [for n in var.extra_queue_notifications : n.queue_arn])
}
