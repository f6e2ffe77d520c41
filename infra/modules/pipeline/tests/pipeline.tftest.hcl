# `terraform test` of the pipeline module with a mock AWS provider: no inbound port anywhere, the
# IAM actions and resources of the machine and of the run tasks, the password never in Terraform,
# the alarm on runs that stopped succeeding, the image repository.

mock_provider "aws" {
  source = "../../testing/aws"

  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b"] }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_ssm_parameter" {
    defaults = { insecure_value = "ami-0123456789abcdef0", value = "ami-0123456789abcdef0" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:us-east-1:123456789012:repository/analytics"
      repository_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/analytics"
    }
  }
  mock_resource "aws_vpc" {
    defaults = { ipv6_cidr_block = "2600:1f18:1234:5600::/56" }
  }
  mock_resource "aws_ebs_volume" {
    defaults = { arn = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0", id = "vol-0123456789abcdef0" }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:cluster/analytics-pipeline" }
  }
  mock_resource "aws_ssm_parameter" {
    defaults = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/analytics/pipeline/postgres-host" }
  }
}

variables {
  name       = "analytics"
  bucket     = "example-com-analytics"
  bucket_arn = "arn:aws:s3:::example-com-analytics"
  image_tag  = "abc1234"
}

run "one_machine_no_inbound_port" {
  command = apply

  assert {
    condition     = length(aws_security_group.runs) == 0 && length(aws_vpc_security_group_ingress_rule.machine_postgres_from_runs) == 0
    error_message = "The default design has no inbound rule at all (UI and dashboard through SSM port forwarding)."
  }
  assert {
    condition     = length(aws_security_group.machine.ingress) == 0
    error_message = "No inline inbound rule on the machine's security group."
  }
  assert {
    condition     = aws_vpc_security_group_egress_rule.machine_https.from_port == 443 && aws_vpc_security_group_egress_rule.machine_https.to_port == 443
    error_message = "The machine only goes out on HTTPS."
  }
  assert {
    condition     = length(aws_default_security_group.pipeline.ingress) == 0 && length(aws_default_security_group.pipeline.egress) == 0
    error_message = "The VPC's default security group is emptied."
  }
  assert {
    condition     = !aws_subnet.pipeline.map_public_ip_on_launch && aws_launch_template.machine.network_interfaces[0].associate_public_ip_address == "false" && aws_launch_template.machine.network_interfaces[0].ipv6_address_count == 1
    error_message = "No public IPv4 address: the machine goes out over IPv6."
  }
  assert {
    condition     = length(aws_internet_gateway.pipeline) == 0 && [for r in aws_route_table.pipeline.route : r.ipv6_cidr_block if r.egress_only_gateway_id == aws_egress_only_internet_gateway.pipeline.id] == ["::/0"] && length([for r in aws_route_table.pipeline.route : r if r.cidr_block == "0.0.0.0/0"]) == 0
    error_message = "The only route out is IPv6 through the egress-only gateway (nothing can come in); no IPv4 route to the internet."
  }
  assert {
    condition     = aws_vpc_security_group_egress_rule.machine_https_ipv6.cidr_ipv6 == "::/0" && aws_vpc_security_group_egress_rule.machine_https_ipv6.from_port == 443 && aws_vpc_security_group_egress_rule.machine_https_ipv6.to_port == 443
    error_message = "HTTPS out over IPv6 only."
  }
  assert {
    condition = alltrue([for line in [
      "export AWS_USE_DUALSTACK_ENDPOINT=true",
      "AWS_USE_DUALSTACK_ENDPOINT=true\n",
      "[\"UseDualStackEndpoint\"] = True",
      "docker login --username AWS --password-stdin '123456789012.dkr-ecr.us-east-1.on.aws'",
      "--log-opt awslogs-endpoint=https://logs.$REGION.api.aws",
    ] : strcontains(base64decode(aws_launch_template.machine.user_data), line)])
    error_message = "Every client on the dual-stack endpoints: the CLI, boto3 in the container, the SSM agent, Docker's registry login and log driver."
  }
  assert {
    condition     = aws_launch_template.machine.metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 only."
  }
  assert {
    condition     = aws_autoscaling_group.machine.min_size == 1 && aws_autoscaling_group.machine.max_size == 1 && aws_autoscaling_group.machine.mixed_instances_policy[0].instances_distribution[0].on_demand_percentage_above_base_capacity == 0
    error_message = "One Spot machine in a group of one."
  }
  assert {
    condition     = aws_ebs_volume.data.encrypted && aws_ebs_volume.data.availability_zone == aws_subnet.pipeline.availability_zone && aws_launch_template.machine.block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "Encrypted volumes; the data volume in the subnet's zone."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.machine.user_data), "'123456789012.dkr-ecr.us-east-1.on.aws/analytics:abc1234' serve")
    error_message = "The machine runs `analytics-platform serve` from the pushed image."
  }
  assert {
    condition = alltrue([for line in [
      "ANALYTICS_RAW_URL=s3://example-com-analytics/raw",
      "ANALYTICS_LAKE_URL=s3://example-com-analytics/lake",
      "ANALYTICS_DATA_DIR=/var/lib/analytics",
    ] : strcontains(base64decode(aws_launch_template.machine.user_data), line)])
    error_message = "The pipeline reads raw/ and keeps the lake under lake/ of the same bucket."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.machine.user_data), "ANALYTICS_RUN_LAUNCHER=local\n")
    error_message = "run_launcher = \"default\" is the settings' `local` (serve refuses any other word)."
  }
  assert {
    condition     = !strcontains(base64decode(aws_launch_template.machine.user_data), "DAGSTER_POSTGRES") && !strcontains(base64decode(aws_launch_template.machine.user_data), "postgresql15-server")
    error_message = "SQLite by default: no PostgreSQL."
  }
  assert {
    condition     = output.postgres_password_parameter == null && output.ecs_cluster == null
    error_message = "No password and no cluster in the default design."
  }
}

run "least_privilege" {
  command = apply

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if startswith(s.Action[0], "s3:")] == [
      {
        Sid       = "ListRawAndLake", Effect = "Allow", Action = ["s3:ListBucket"], Resource = ["arn:aws:s3:::example-com-analytics"]
        Condition = { StringLike = { "s3:prefix" = ["raw/", "raw/*", "lake/", "lake/*"] } }
      },
      { Sid = "ReadRaw", Effect = "Allow", Action = ["s3:GetObject"], Resource = ["arn:aws:s3:::example-com-analytics/raw/*"] },
      {
        Sid      = "ReadWriteLake", Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        Resource = ["arn:aws:s3:::example-com-analytics/lake/*"]
      },
    ]
    error_message = "The bucket: list raw/ and lake/, read raw/, read and write lake/; nothing else."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement :
    alltrue([for a in s.Action : !strcontains(a, "*")])])
    error_message = "No wildcard action."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s.Action if contains(s.Resource, "*")])) == toset([
      "ecr:GetAuthorizationToken", "ec2:DescribeVolumes", "cloudwatch:PutMetricData", "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    ])
    error_message = "Resource \"*\" only for the actions AWS cannot scope to a resource."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if s.Sid == "PutRunMetric"]).Condition == { StringEquals = { "cloudwatch:namespace" = "analytics/pipeline" } }
    error_message = "The machine puts metric data in the pipeline's namespace only."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s.Resource if s.Sid == "EcrPull"]) == ["arn:aws:ecr:us-east-1:123456789012:repository/analytics"]
    error_message = "The machine pulls from its one repository."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if s.Sid == "AttachTheDataVolume"]).Condition == { StringEquals = { "aws:ResourceTag/analytics-pipeline" = "analytics" } }
    error_message = "The data volume is attached only to a machine of this pipeline."
  }
  assert {
    condition     = length([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if startswith(s.Action[0], "ssm:Get") || startswith(s.Action[0], "ecs:") || s.Action[0] == "iam:PassRole"]) == 0
    error_message = "Without PostgreSQL or the ECS launcher: no parameter, no ECS, no PassRole."
  }
}

run "ecs_run_launcher" {
  command = apply
  variables {
    run_launcher = "ecs"
  }

  assert {
    condition     = [for s in aws_ecs_cluster_capacity_providers.runs[0].default_capacity_provider_strategy : s.capacity_provider] == ["FARGATE_SPOT"]
    error_message = "Run tasks on Fargate Spot by default."
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.machine_postgres_from_runs[0].from_port == 5432 && aws_vpc_security_group_ingress_rule.machine_postgres_from_runs[0].referenced_security_group_id == aws_security_group.runs[0].id && aws_vpc_security_group_ingress_rule.machine_postgres_from_runs[0].cidr_ipv4 == null
    error_message = "The only inbound rule: PostgreSQL from the run tasks' security group, no address range."
  }
  assert {
    condition     = length(aws_security_group.machine.ingress) == 0 && length(aws_security_group.runs[0].ingress) == 0
    error_message = "No inline inbound rule on either security group."
  }
  assert {
    condition = one([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if s.Sid == "LaunchRunTasks"]) == {
      Sid       = "LaunchRunTasks", Effect = "Allow", Action = ["ecs:RunTask"]
      Resource  = ["arn:aws:ecs:us-east-1:123456789012:task-definition/analytics-run:*"]
      Condition = { ArnEquals = { "ecs:cluster" = "arn:aws:ecs:us-east-1:123456789012:cluster/analytics-pipeline" } }
    }
    error_message = "RunTask only for the run task family, only in the pipeline's cluster."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if s.Sid == "PassTheRunRoles"]).Condition == { StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" } }
    error_message = "PassRole only to ECS tasks."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if s.Sid == "WatchAndStopRunTasks"]).Resource == ["arn:aws:ecs:us-east-1:123456789012:task/analytics-pipeline/*"]
    error_message = "The machine watches and stops the tasks of its cluster only."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.run_task[0].policy).Statement == [for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if startswith(s.Action[0], "s3:")]
    error_message = "A run task has the lake's permissions and nothing else."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.run_execution[0].policy).Statement : s if s.Sid == "PostgresParameters"]).Resource[0] == "arn:aws:ssm:us-east-1:123456789012:parameter/analytics/pipeline/postgres-password"
    error_message = "ECS reads the password parameter into the run task's environment."
  }
  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.run[0].container_definitions) : [for s in c.secrets : s.name]][0] == ["DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_HOST"] && length([for e in jsondecode(aws_ecs_task_definition.run[0].container_definitions)[0].environment : e if strcontains(e.name, "PASSWORD")]) == 0
    error_message = "The password reaches the run task as an ECS secret, never as a plain value."
  }
  assert {
    condition     = aws_ecs_task_definition.run[0].runtime_platform[0].cpu_architecture == "ARM64" && jsondecode(aws_ecs_task_definition.run[0].container_definitions)[0].name == "run"
    error_message = "Graviton run tasks, container named as EcsRunLauncher expects."
  }
  assert {
    condition     = aws_ssm_parameter.postgres_host[0].type == "String" && output.postgres_password_parameter == "/analytics/pipeline/postgres-password"
    error_message = "Terraform manages only the host parameter (String); the password parameter is the machine's, by name only."
  }
  assert {
    condition = alltrue([for line in ["ANALYTICS_ECS_CLUSTER=analytics-pipeline", "ANALYTICS_ECS_TASK_DEFINITION=analytics-run", "ANALYTICS_RUN_LAUNCHER=ecs", "DAGSTER_POSTGRES_USER=dagster", "--type SecureString"] :
    strcontains(base64decode(aws_launch_template.machine.user_data), line)])
    error_message = "The machine generates the password into SSM and tells `serve` about the cluster."
  }
  assert {
    condition     = length(aws_internet_gateway.pipeline) == 1 && length([for r in aws_route_table.pipeline.route : r if r.cidr_block == "0.0.0.0/0"]) == 1 && aws_launch_template.machine.network_interfaces[0].associate_public_ip_address == "false"
    error_message = "The run tasks (public IPv4 on Fargate) go out through an internet gateway; the machine still has no public address."
  }
  assert {
    condition     = length([for s in jsondecode(aws_iam_role_policy.run_task[0].policy).Statement : s if s.Action[0] == "cloudwatch:PutMetricData"]) == 0
    error_message = "The metric is put by the daemon on the machine (a run-status sensor), never by a run task."
  }
}

run "alarm_logs_and_image" {
  command = plan
  variables {
    no_success_alarm_hours = 4
    alarm_actions          = ["arn:aws:sns:us-east-1:123456789012:ops"]
  }

  assert {
    condition = (aws_cloudwatch_metric_alarm.no_successful_run.metric_name == "RunSucceeded"
      && aws_cloudwatch_metric_alarm.no_successful_run.namespace == "analytics/pipeline"
      && strcontains(base64decode(aws_launch_template.machine.user_data), "ANALYTICS_METRIC_NAMESPACE=analytics/pipeline\n")
      && aws_cloudwatch_metric_alarm.no_successful_run.period * aws_cloudwatch_metric_alarm.no_successful_run.evaluation_periods == 4 * 3600
      && aws_cloudwatch_metric_alarm.no_successful_run.comparison_operator == "LessThanThreshold"
    && aws_cloudwatch_metric_alarm.no_successful_run.threshold == 1)
    error_message = "The alarm fires when the RunSucceeded data points the pipeline puts (ANALYTICS_METRIC_NAMESPACE, defs/automation/housekeeping.py) add up to nothing for N hours."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.no_successful_run.treat_missing_data == "breaching" && aws_cloudwatch_metric_alarm.no_successful_run.alarm_actions == toset(["arn:aws:sns:us-east-1:123456789012:ops"])
    error_message = "No data (the machine is gone) is an alarm too, sent to the given topic."
  }
  assert {
    condition     = aws_cloudwatch_log_group.serve.retention_in_days == 14
    error_message = "Log retention is set."
  }
  assert {
    condition     = aws_ecr_repository.pipeline.image_scanning_configuration[0].scan_on_push && aws_ecr_repository.pipeline.image_tag_mutability == "IMMUTABLE"
    error_message = "Images are scanned on push, tags immutable."
  }
  assert {
    condition     = [for r in jsondecode(aws_ecr_lifecycle_policy.pipeline.policy).rules : r.selection.countType] == ["sinceImagePushed", "imageCountMoreThan"]
    error_message = "Old images expire."
  }
}

run "no_machine_before_the_first_push" {
  command = plan
  variables {
    image_tag = ""
  }

  assert {
    condition     = aws_autoscaling_group.machine.desired_capacity == 0 && aws_autoscaling_group.machine.max_size == 0
    error_message = "Without an image tag the repository exists and no machine starts."
  }
}

run "public_ipv4_fallback" {
  command = plan
  variables {
    public_ipv4 = true
  }

  assert {
    condition     = aws_launch_template.machine.network_interfaces[0].associate_public_ip_address == "true" && length(aws_internet_gateway.pipeline) == 1
    error_message = "public_ipv4 = true: a public IPv4 address through an internet gateway."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.machine.user_data), "'123456789012.dkr.ecr.us-east-1.amazonaws.com/analytics:abc1234' serve") && !strcontains(base64decode(aws_launch_template.machine.user_data), "DUALSTACK")
    error_message = "Over IPv4 the machine uses the usual endpoints."
  }
}

run "raw_notifications_queue" {
  command = apply
  variables {
    raw_queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/example-com-analytics-raw-objects"
    raw_queue_arn = "arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects"
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if startswith(s.Action[0], "sqs:")] == [{
      Sid      = "ReadRawNotifications", Effect = "Allow", Action = ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
      Resource = ["arn:aws:sqs:us-east-1:123456789012:example-com-analytics-raw-objects"]
    }]
    error_message = "The machine may receive and delete the raw/ notifications of its one queue, nothing else of SQS."
  }
  assert {
    condition     = strcontains(base64decode(aws_launch_template.machine.user_data), "ANALYTICS_RAW_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/example-com-analytics-raw-objects")
    error_message = "The queue's URL is in the pipeline's environment."
  }
}

run "no_queue_no_sqs" {
  command = apply

  assert {
    condition     = length([for s in jsondecode(aws_iam_role_policy.machine.policy).Statement : s if startswith(s.Action[0], "sqs:")]) == 0 && !strcontains(base64decode(aws_launch_template.machine.user_data), "ANALYTICS_RAW_QUEUE_URL")
    error_message = "Without a queue: no SQS permission, no queue setting (the sensor lists hour prefixes)."
  }
}
