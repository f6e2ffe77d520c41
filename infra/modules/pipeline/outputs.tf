output "ecr_repository_url" {
  description = "Push the image here (docs/DEPLOY.md), then apply with image_tag set."
  value       = aws_ecr_repository.pipeline.repository_url
}

output "autoscaling_group" {
  value = aws_autoscaling_group.machine.name
}

output "instance_id_command" {
  description = "Prints the id of the running pipeline machine (for the SSM commands)."
  value       = "aws ec2 describe-instances --region ${local.region} --filters Name=tag:aws:autoscaling:groupName,Values=${aws_autoscaling_group.machine.name} Name=instance-state-name,Values=running --query 'Reservations[0].Instances[0].InstanceId' --output text"
}

output "port_forward_commands" {
  description = "Open the Dagster UI (3000) and the dashboard (8501) on this computer through Systems Manager (needs the Session Manager plugin; $ID from instance_id_command)."
  value = {
    dagster_ui = "aws ssm start-session --region ${local.region} --target $ID --document-name AWS-StartPortForwardingSession --parameters portNumber=3000,localPortNumber=3000"
    dashboard  = "aws ssm start-session --region ${local.region} --target $ID --document-name AWS-StartPortForwardingSession --parameters portNumber=8501,localPortNumber=8501"
  }
}

output "log_group" {
  value = aws_cloudwatch_log_group.serve.name
}

output "alarm" {
  value = aws_cloudwatch_metric_alarm.no_successful_run.alarm_name
}

output "postgres_password_parameter" {
  description = "Name of the SSM SecureString parameter the machine writes its generated PostgreSQL password into (the value is never in Terraform)."
  value       = local.postgres ? local.password_param_name : null
}

output "ecs_cluster" {
  value = local.ecs ? aws_ecs_cluster.runs[0].name : null
}

output "run_task_definition" {
  value = local.ecs ? aws_ecs_task_definition.run[0].family : null
}
