# Logs, and an alarm when no Dagster run has succeeded for var.no_success_alarm_hours hours.
#
# What the alarm counts is a metric the pipeline puts itself: with ANALYTICS_METRIC_NAMESPACE set
# (main.tf), the daemon's `run_succeeded_metric` run-status sensor
# (defs/automation/housekeeping.py) puts one `RunSucceeded` data point (Count 1) for every
# successful run, wherever the run ran (on the machine or in an ECS task: the sensor runs in the
# daemon), so the alarm depends on neither log lines nor their format. Its cost: the custom
# metric ($0.30 a month) and one PutMetricData request a run ($0.01 a thousand: `cost`). While
# the pipeline is alive no two clock hours in a row go without a success, even with no traffic
# (an hour with raw objects gets the sensor's run within it, an hour without the hourly
# schedule's run at :10 of the next), so hours without one mean the machine, the daemon or the
# runs are broken; no data at all (the machine is gone) counts as breaching.

resource "aws_cloudwatch_log_group" "serve" {
  #checkov:skip=CKV_AWS_158:the AWS-managed key is enough for the pipeline's logs (they hold no personal data)
  #checkov:skip=CKV_AWS_338:kept as long as var.log_retention_days says; a year would cost more than it helps
  name              = "/${var.name}/pipeline/serve"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

locals {
  metric_name = "RunSucceeded" # defs/automation/housekeeping.py
}

resource "aws_cloudwatch_metric_alarm" "no_successful_run" {
  alarm_name          = "${var.name}-pipeline-no-successful-run"
  alarm_description   = "No Dagster run has succeeded for ${var.no_success_alarm_hours} hour(s): while the pipeline is alive a run succeeds at least every second hour, even with no traffic. Look at the log group ${aws_cloudwatch_log_group.serve.name} and the Dagster UI (docs/DEPLOY.md)."
  namespace           = local.metric_namespace
  metric_name         = local.metric_name
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = var.no_success_alarm_hours
  datapoints_to_alarm = var.no_success_alarm_hours
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
