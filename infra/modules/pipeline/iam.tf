# Least privilege: the pipeline reads raw/ and writes lake/ of its one bucket, and nothing else
# of it; the machine adds what it needs to run (its image, its logs, its data volume, Systems
# Manager sessions, its two parameters) and, with the ECS run launcher, starting and stopping its
# own run tasks.

locals {
  bucket_arn = var.bucket_arn
  # The lake's data, for the machine and for the run tasks alike.
  lake_statements = [
    {
      Sid       = "ListRawAndLake"
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = [local.bucket_arn]
      Condition = { StringLike = { "s3:prefix" = ["raw/", "raw/*", "lake/", "lake/*"] } }
    },
    {
      Sid      = "ReadRaw"
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = ["${local.bucket_arn}/raw/*"]
    },
    {
      Sid      = "ReadWriteLake"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
      Resource = ["${local.bucket_arn}/lake/*"]
    },
  ]
  ecr_pull_statements = [
    {
      Sid      = "EcrLogin"
      Effect   = "Allow"
      Action   = ["ecr:GetAuthorizationToken"] # not scoped to a resource by AWS
      Resource = ["*"]
    },
    {
      Sid      = "EcrPull"
      Effect   = "Allow"
      Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      Resource = [aws_ecr_repository.pipeline.arn]
    },
  ]
  instance_arns = "arn:${local.partition}:ec2:${local.region}:${local.account}:instance/*"
  task_family   = "${var.name}-run"
}

# --- the machine -------------------------------------------------------------------------------

resource "aws_iam_role" "machine" {
  name = "${var.name}-pipeline-machine"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_instance_profile" "machine" {
  name = "${var.name}-pipeline-machine"
  role = aws_iam_role.machine.name
  tags = local.tags
}

resource "aws_iam_role_policy" "machine" {
  name = "pipeline-machine"
  role = aws_iam_role.machine.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.lake_statements, local.ecr_pull_statements, [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.serve.arn}:*"]
      },
      {
        # The data volume follows the machine: attach it at boot (only to a machine of this
        # pipeline, only this volume).
        Sid       = "AttachTheDataVolume"
        Effect    = "Allow"
        Action    = ["ec2:AttachVolume"]
        Resource  = [aws_ebs_volume.data.arn, local.instance_arns]
        Condition = { StringEquals = { "aws:ResourceTag/analytics-pipeline" = var.name } }
      },
      {
        Sid      = "WaitForTheDataVolume"
        Effect   = "Allow"
        Action   = ["ec2:DescribeVolumes"] # not scoped to a resource by AWS
        Resource = ["*"]
      },
      {
        # The alarm's metric: one RunSucceeded data point per successful run, in the pipeline's
        # own namespace only (PutMetricData has no resource; the namespace is its condition key).
        Sid       = "PutRunMetric"
        Effect    = "Allow"
        Action    = ["cloudwatch:PutMetricData"]
        Resource  = ["*"]
        Condition = { StringEquals = { "cloudwatch:namespace" = local.metric_namespace } }
      },
      {
        # Session Manager (the only way in: port forwarding to the UI and the dashboard).
        # AmazonSSMManagedInstanceCore would also let the machine read every parameter.
        Sid      = "SessionManagerAgent"
        Effect   = "Allow"
        Action   = ["ssm:UpdateInstanceInformation"]
        Resource = [local.instance_arns]
      },
      {
        Sid      = "SessionManagerChannels"
        Effect   = "Allow"
        Action   = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"] # not scoped to a resource by AWS
        Resource = ["*"]
      },
      ], jsondecode(local.postgres ? jsonencode([{
        # Generated at first boot if missing, read at every boot; the host is written for the run
        # tasks. SecureString with the AWS-managed aws/ssm key, whose policy lets SSM use it.
        Sid      = "PostgresParameters"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter", "ssm:PutParameter"]
        Resource = [local.password_param_arn, "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${local.host_param_name}"]
        }]) : "[]"), jsondecode(var.raw_queue_arn != "" ? jsonencode([{
        # The raw-lake sensor (in the code server on the machine; never in a run task): receive
        # raw/'s notifications and delete them once handled. Nothing may send to it but S3.
        Sid      = "ReadRawNotifications"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
        Resource = [var.raw_queue_arn]
        }]) : "[]"), jsondecode(local.ecs ? jsonencode([
        {
          Sid       = "LaunchRunTasks"
          Effect    = "Allow"
          Action    = ["ecs:RunTask"]
          Resource  = ["arn:${local.partition}:ecs:${local.region}:${local.account}:task-definition/${local.task_family}:*"]
          Condition = { ArnEquals = { "ecs:cluster" = aws_ecs_cluster.runs[0].arn } }
        },
        {
          Sid      = "WatchAndStopRunTasks"
          Effect   = "Allow"
          Action   = ["ecs:DescribeTasks", "ecs:StopTask"]
          Resource = ["arn:${local.partition}:ecs:${local.region}:${local.account}:task/${aws_ecs_cluster.runs[0].name}/*"]
        },
        {
          Sid       = "TagRunTasksAtLaunch"
          Effect    = "Allow"
          Action    = ["ecs:TagResource"]
          Resource  = ["arn:${local.partition}:ecs:${local.region}:${local.account}:task/${aws_ecs_cluster.runs[0].name}/*"]
          Condition = { StringEquals = { "ecs:CreateAction" = "RunTask" } }
        },
        {
          Sid      = "ReadTheRunTaskDefinition"
          Effect   = "Allow"
          Action   = ["ecs:DescribeTaskDefinition"] # not scoped to a resource by AWS
          Resource = ["*"]
        },
        {
          Sid       = "PassTheRunRoles"
          Effect    = "Allow"
          Action    = ["iam:PassRole"]
          Resource  = [aws_iam_role.run_task[0].arn, aws_iam_role.run_execution[0].arn]
          Condition = { StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" } }
        },
        {
          Sid      = "ReadRunLogs"
          Effect   = "Allow"
          Action   = ["logs:GetLogEvents"]
          Resource = ["${aws_cloudwatch_log_group.runs[0].arn}:*"]
        },
    ]) : "[]"))
  })
}

# --- the run tasks (run_launcher = "ecs") ------------------------------------------------------

# Both run-task roles (the task's own and ECS's execution role) are assumed by ECS tasks of
# this account only.
locals {
  ecs_tasks_assume_role = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role" "run_task" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-pipeline-run"
  assume_role_policy = local.ecs_tasks_assume_role
  tags               = local.tags
}

# A run task does what a run on the machine does to the lake, and nothing else.
resource "aws_iam_role_policy" "run_task" {
  count  = local.ecs ? 1 : 0
  name   = "pipeline-run"
  role   = aws_iam_role.run_task[0].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.lake_statements })
}

# ECS itself, to start a run task: pull the image, create its log stream, read the two
# parameters into its environment.
resource "aws_iam_role" "run_execution" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-pipeline-run-execution"
  assume_role_policy = local.ecs_tasks_assume_role
  tags               = local.tags
}

resource "aws_iam_role_policy" "run_execution" {
  count = local.ecs ? 1 : 0
  name  = "start-run-task"
  role  = aws_iam_role.run_execution[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.ecr_pull_statements, [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.runs[0].arn}:*"]
      },
      {
        Sid      = "PostgresParameters"
        Effect   = "Allow"
        Action   = ["ssm:GetParameters"]
        Resource = [local.password_param_arn, aws_ssm_parameter.postgres_host[0].arn]
      },
    ])
  })
}
