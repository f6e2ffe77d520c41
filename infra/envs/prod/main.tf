# The whole ingest side in your own account: `terraform apply` here (see infra/README.md).

module "storage" {
  source               = "../../modules/storage"
  bucket_name          = var.bucket_name
  raw_retention_days   = var.raw_retention_days
  error_retention_days = var.error_retention_days
  force_destroy        = var.force_destroy
  # raw/'s new objects → SQS, for the pipeline's raw-lake sensor (none without a pipeline here)
  raw_notifications = var.enable_pipeline
  # other consumers' queues (Snowflake's AUTO_REFRESH, docs/QUERYING.md): the bucket has one
  # notification configuration, the storage module's
  extra_queue_notifications = var.extra_queue_notifications
}

module "ingest" {
  source               = "../../modules/ingest"
  name                 = var.name
  bucket_arn           = module.storage.bucket_arn
  ingest_mode          = var.ingest_mode
  kinesis_draining     = var.kinesis_draining
  endpoint             = var.endpoint
  allowed_origins      = var.allowed_origins
  lambda_zip           = var.lambda_zip
  reserved_concurrency = var.reserved_concurrency
  buffering_interval   = coalesce(var.buffering_interval, var.enable_pipeline ? 220 : 300)
  buffering_size_mb    = var.buffering_size_mb
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions
  # CloudFront in front of the endpoint: each event's country from CloudFront (docs/INGEST.md)
  cloudfront               = var.ingest_cloudfront
  cloudfront_origin_secret = var.ingest_cloudfront_origin_secret
}

module "catalog" {
  source               = "../../modules/catalog"
  name                 = var.name
  bucket               = module.storage.bucket
  lake_start_date      = var.lake_start_date
  bytes_scanned_cutoff = var.bytes_scanned_cutoff
}

module "pipeline" {
  source        = "../../modules/pipeline"
  count         = var.enable_pipeline ? 1 : 0
  name          = var.name
  bucket        = module.storage.bucket
  bucket_arn    = module.storage.bucket_arn
  raw_queue_url = module.storage.raw_queue_url
  raw_queue_arn = module.storage.raw_queue_arn
  image_tag     = var.pipeline_image_tag
  instance_type = var.pipeline_instance_type
  spot          = var.pipeline_spot
  public_ipv4   = var.pipeline_public_ipv4
  run_launcher  = var.pipeline_run_launcher
  environment   = var.pipeline_environment
  # the module's own defaults when not set (10 GB, 3 hours)
  data_volume_gb         = var.pipeline_data_volume_gb
  no_success_alarm_hours = var.pipeline_no_success_alarm_hours
  alarm_actions          = var.alarm_actions
  force_destroy          = var.force_destroy
}
