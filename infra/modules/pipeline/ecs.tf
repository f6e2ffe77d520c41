# run_launcher = "ecs": every Dagster run is its own Fargate task from the same image (dagster-aws's
# EcsRunLauncher, configured by the ANALYTICS_ECS_* variables the machine's container gets), sized
# by the job's `ecs/cpu` and `ecs/memory` tags; the daemon's queue bounds how many run at once.
# Nothing here costs anything while no run is running.

resource "aws_ecs_cluster" "runs" {
  #checkov:skip=CKV_AWS_65:Container Insights bills per task metric; a run's logs and Dagster's own run history say what happened
  count = local.ecs ? 1 : 0
  name  = "${var.name}-pipeline"
  setting {
    name  = "containerInsights"
    value = "disabled"
  }
  tags = local.tags
}

resource "aws_ecs_cluster_capacity_providers" "runs" {
  count              = local.ecs ? 1 : 0
  cluster_name       = aws_ecs_cluster.runs[0].name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
  default_capacity_provider_strategy {
    capacity_provider = var.ecs_capacity_provider
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "runs" {
  #checkov:skip=CKV_AWS_158:the AWS-managed key is enough for run logs (they hold no personal data)
  #checkov:skip=CKV_AWS_338:kept as long as var.log_retention_days says; a year would cost more than it helps
  count             = local.ecs ? 1 : 0
  name              = "/${var.name}/pipeline/runs"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_ecs_task_definition" "run" {
  count                    = local.ecs ? 1 : 0
  family                   = local.task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.run_task_cpu
  memory                   = var.run_task_memory
  task_role_arn            = aws_iam_role.run_task[0].arn
  execution_role_arn       = aws_iam_role.run_execution[0].arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.architecture == "arm64" ? "ARM64" : "X86_64"
  }
  container_definitions = jsonencode([{
    name      = "run" # EcsRunLauncher's container_name
    image     = local.running ? local.image : "${aws_ecr_repository.pipeline.repository_url}:unset"
    essential = true
    # The run task has no data volume: its cache is the task's own disk, the lake is in S3.
    environment = [for k, v in merge(local.pipeline_environment, {
      ANALYTICS_DATA_DIR = "/tmp/analytics"
      DAGSTER_HOME       = "/tmp/analytics/dagster_home"
      }) : { name = k, value = v } if v != ""
    ]
    secrets = [
      { name = "DAGSTER_POSTGRES_PASSWORD", valueFrom = local.password_param_arn },
      { name = "DAGSTER_POSTGRES_HOST", valueFrom = aws_ssm_parameter.postgres_host[0].arn },
    ]
    readonlyRootFilesystem = false
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.runs[0].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "run"
      }
    }
  }])
  tags = local.tags
}
