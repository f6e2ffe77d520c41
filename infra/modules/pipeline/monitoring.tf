# Logs, and an alarm when no Dagster run has succeeded for var.no_success_alarm_hours hours.
#
# What the alarm counts is what the product already writes: every Dagster run logs its
# RUN_SUCCESS event (`… - RUN_SUCCESS - Finished execution of run for "events_job".`) on its
# console, which `serve` passes to the container's output and Docker's awslogs driver to the log
# group below (the run tasks' own log group with the ECS launcher). A metric filter turns each such
# line into one data point (metric filters are free; the metric is one custom metric). While the
# pipeline is alive no two clock hours in a row go without a success, even with no traffic (an
# hour with raw objects gets the sensor's run within it, an hour without the hourly schedule's run
# at :10 of the next), so hours without one mean the machine, the daemon or the runs are broken;
# no data at all (the machine is gone) counts as breaching. (The code also has a run-status
# sensor that puts the same metric with PutMetricData when ANALYTICS_METRIC_NAMESPACE is set:
# defs/automation/housekeeping.py, sturdier than matching log lines.)

resource "aws_cloudwatch_log_group" "serve" {
  #checkov:skip=CKV_AWS_158:the AWS-managed key is enough for the pipeline's logs (they hold no personal data)
  #checkov:skip=CKV_AWS_338:kept as long as var.log_retention_days says; a year would cost more than it helps
  name              = "/${var.name}/pipeline/serve"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

locals {
  metric_namespace = "${var.name}/pipeline"
  metric_name      = "RunSucceeded"
  success_log_groups = merge(
    { serve = aws_cloudwatch_log_group.serve.name },
    local.ecs ? { runs = aws_cloudwatch_log_group.runs[0].name } : {},
  )
}

resource "aws_cloudwatch_log_metric_filter" "run_success" {
  for_each       = local.success_log_groups
  name           = "${var.name}-pipeline-run-success-${each.key}"
  log_group_name = each.value
  pattern        = "\"RUN_SUCCESS\""
  metric_transformation {
    namespace = local.metric_namespace
    name      = local.metric_name
    value     = "1"
    unit      = "Count"
  }
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
