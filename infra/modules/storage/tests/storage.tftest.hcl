# `terraform test` with a mock AWS provider: no cloud access, no credentials. Plans check the
# choices written in the configuration; an apply against the mock fills computed ARNs so the
# IAM policies can be checked for least privilege.

mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  bucket_name = "example-com-analytics"
}

run "private_and_expiring" {
  command = plan

  assert {
    condition     = alltrue([aws_s3_bucket_public_access_block.lake.block_public_acls, aws_s3_bucket_public_access_block.lake.block_public_policy, aws_s3_bucket_public_access_block.lake.ignore_public_acls, aws_s3_bucket_public_access_block.lake.restrict_public_buckets])
    error_message = "The bucket is private."
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.expiration[0].days if r.id == "expire-raw"]) == 400 && one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.expiration[0].days if r.id == "expire-errors"]) == 30
    error_message = "raw/ and errors/ expire."
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.abort_incomplete_multipart_upload[0].days_after_initiation if r.id == "abort-incomplete-multipart-uploads"]) == 1
    error_message = "Incomplete multipart uploads are aborted."
  }
}

run "tls_only_and_encrypted" {
  command = apply

  assert {
    condition     = jsondecode(aws_s3_bucket_policy.tls_only.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false" && jsondecode(aws_s3_bucket_policy.tls_only.policy).Statement[0].Effect == "Deny"
    error_message = "Requests without TLS are denied."
  }
  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.lake.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    error_message = "Objects are encrypted at rest."
  }
}
