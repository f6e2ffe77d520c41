# The bucket that holds the raw lake (raw/), Firehose's error output (errors/) and Athena's query
# results (athena-results/): private, encrypted, TLS only, with expiry so it never grows forever.
# With the pipeline, raw/'s new objects are notified to an SQS queue (notifications.tf).

resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_18:access logs would cost more than the events; CloudTrail data events are the audit option
  #checkov:skip=CKV_AWS_144:cross-region replication doubles the cost; raw events can be replayed from the tracker's side only briefly, by design
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) on purpose: a KMS key adds a monthly fee and per-request charges for no gain here
  #checkov:skip=CKV_AWS_21:objects are written once and expire; versioning would keep every expired object's cost
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  bucket = aws_s3_bucket.lake.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    id     = "expire-raw"
    status = "Enabled"
    filter {
      prefix = "raw/"
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "expire-errors"
    status = "Enabled"
    filter {
      prefix = "errors/"
    }
    expiration {
      days = var.error_retention_days
    }
  }

  rule {
    id     = "expire-athena-results"
    status = "Enabled"
    filter {
      prefix = "athena-results/"
    }
    expiration {
      days = var.athena_results_retention_days
    }
  }

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
