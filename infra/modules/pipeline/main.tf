# The pipeline and the dashboard in the account: one small machine running
# `analytics-platform serve` (Dagster's code server, daemon and webserver, the dashboard) from the
# image in this module's ECR repository, in an Auto Scaling group of one (Spot by default) with a
# persistent data volume. Optionally (run_launcher = "ecs") every run is its own Fargate task.
#
# Why this shape (numbers in docs/DEPLOY.md and `analytics-platform cost`): at 1M events a month
# the whole pipeline is a few CPU-minutes an hour, so one t4g.small on Spot (~$4.90 a month) is
# the cheapest thing that keeps the schedule, the sensors and the automation running day and
# night. No NAT gateway (~$33 a month), no interface endpoints (~$7.30 a month each) and no public
# IPv4 address ($3.65 a month): the machine reaches AWS's APIs over IPv6 through a free
# egress-only internet gateway, every client on the services' dual-stack endpoints (the SSM
# agent, the AWS CLI and boto3, Docker's registry and log driver: user_data.sh.tftpl), and S3
# also through a free gateway endpoint. `public_ipv4 = true` is the fallback. No inbound port at
# all: the Dagster UI and the dashboard are reached through Systems Manager port forwarding,
# which authenticates with the caller's IAM identity.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
# Zones in name order, whatever their state today: the first one stays the first (AWS adds zones
# at the end), so the subnet and the data volume are never moved by a zone's passing trouble.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:only the first zone is used, and a zone added later comes after it; set var.availability_zone to pin it explicitly
  all_availability_zones = false
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  az        = coalesce(var.availability_zone, data.aws_availability_zones.available.names[0])
  ecs       = var.run_launcher == "ecs"
  # in the words of settings.run_launcher, which refuses anything else: "default" is "local"
  launcher = local.ecs ? "ecs" : "local"
  postgres = var.postgres || local.ecs
  running  = var.image_tag != ""
  image    = "${aws_ecr_repository.pipeline.repository_url}:${var.image_tag}"
  # IPv4 to the internet only for what needs it: the fallback, or run tasks (Fargate, public IP).
  ipv4_out = var.public_ipv4 || local.ecs
  # The machine pulls through ECR's dual-stack registry endpoint (<account>.dkr-ecr.<region>.on.aws)
  # unless it has a public IPv4 address.
  registry = (var.public_ipv4 ? split("/", aws_ecr_repository.pipeline.repository_url)[0]
  : "${split(".", aws_ecr_repository.pipeline.repository_url)[0]}.dkr-ecr.${local.region}.on.aws")
  machine_image    = "${local.registry}/${aws_ecr_repository.pipeline.name}:${var.image_tag}"
  metric_namespace = "${var.name}/pipeline"
  data_dir         = "/var/lib/analytics"
  # SSM parameters: the machine writes both at boot; Terraform never holds the password.
  param_prefix        = "/${var.name}/pipeline"
  password_param_name = "${local.param_prefix}/postgres-password"
  password_param_arn  = "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${local.password_param_name}"
  host_param_name     = "${local.param_prefix}/postgres-host"
  pipeline_environment = merge({
    ANALYTICS_RAW_URL       = "s3://${var.bucket}/raw"
    ANALYTICS_LAKE_URL      = "s3://${var.bucket}/lake"
    ANALYTICS_DATA_DIR      = local.data_dir
    AWS_REGION              = local.region
    AWS_DEFAULT_REGION      = local.region
    DAGSTER_HOME            = "${local.data_dir}/dagster_home"
    DAGSTER_POSTGRES_USER   = local.postgres ? "dagster" : ""
    DAGSTER_POSTGRES_DB     = local.postgres ? "dagster" : ""
    DAGSTER_POSTGRES_PORT   = local.postgres ? "5432" : ""
    ANALYTICS_RUN_LAUNCHER  = local.launcher
    ANALYTICS_DUCKDB_MEMORY = var.duckdb_memory
    # every successful run puts one RunSucceeded data point here: the alarm's metric
    ANALYTICS_METRIC_NAMESPACE = local.metric_namespace
    # botocore and the AWS CLI on the services' dual-stack (IPv4 and IPv6) endpoints
    AWS_USE_DUALSTACK_ENDPOINT = var.public_ipv4 ? "" : "true"
    # raw/'s new objects arrive as messages (storage module, notifications.tf): the raw-lake
    # sensor long-polls the queue and lists hour prefixes once an hour only
    ANALYTICS_RAW_QUEUE_URL = var.raw_queue_url
  }, var.environment)
  tags = merge(var.tags, { "analytics-pipeline" = var.name })
}

# --- network: one dual-stack subnet, IPv6 out only, no NAT gateway, no inbound rule -----------

resource "aws_vpc" "pipeline" {
  #checkov:skip=CKV2_AWS_11:flow logs would cost more than the machine's traffic is worth watching; no port is open
  cidr_block                       = var.vpc_cidr
  assign_generated_ipv6_cidr_block = true # Amazon's /56, free
  enable_dns_support               = true
  enable_dns_hostnames             = true
  tags                             = merge(local.tags, { Name = "${var.name}-pipeline" })
}

# The default security group of the VPC, emptied: nothing may use it by accident.
resource "aws_default_security_group" "pipeline" {
  vpc_id = aws_vpc.pipeline.id
  tags   = local.tags
}

# The way out: IPv6 through an egress-only internet gateway (free: connections go out, nothing
# comes in); IPv4 stays private (no public address, no NAT), but for the public_ipv4 fallback and
# the ECS run tasks, which go out through an internet gateway with a public IPv4 address.
resource "aws_egress_only_internet_gateway" "pipeline" {
  vpc_id = aws_vpc.pipeline.id
  tags   = local.tags
}

resource "aws_internet_gateway" "pipeline" {
  count  = local.ipv4_out ? 1 : 0
  vpc_id = aws_vpc.pipeline.id
  tags   = local.tags
}

resource "aws_subnet" "pipeline" {
  vpc_id                          = aws_vpc.pipeline.id
  cidr_block                      = cidrsubnet(var.vpc_cidr, 1, 0)
  ipv6_cidr_block                 = cidrsubnet(aws_vpc.pipeline.ipv6_cidr_block, 8, 0)
  assign_ipv6_address_on_creation = true
  availability_zone               = local.az
  map_public_ip_on_launch         = false
  tags                            = merge(local.tags, { Name = "${var.name}-pipeline" })
}

resource "aws_route_table" "pipeline" {
  vpc_id = aws_vpc.pipeline.id
  route {
    ipv6_cidr_block        = "::/0"
    egress_only_gateway_id = aws_egress_only_internet_gateway.pipeline.id
  }
  dynamic "route" {
    for_each = local.ipv4_out ? [1] : []
    content {
      cidr_block = "0.0.0.0/0"
      gateway_id = aws_internet_gateway.pipeline[0].id
    }
  }
  tags = local.tags
}

resource "aws_route_table_association" "pipeline" {
  subnet_id      = aws_subnet.pipeline.id
  route_table_id = aws_route_table.pipeline.id
}

# S3 through a gateway endpoint: free, and the lake's traffic stays off the internet.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.pipeline.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.pipeline.id]
  tags              = local.tags
}

resource "aws_security_group" "machine" {
  name        = "${var.name}-pipeline-machine"
  description = "The pipeline machine: no inbound rule (UI and dashboard through SSM port forwarding); HTTPS out to AWS APIs"
  vpc_id      = aws_vpc.pipeline.id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "machine_https" {
  security_group_id = aws_security_group.machine.id
  description       = "HTTPS over IPv4: S3 through the gateway endpoint (the OS packages, image layers, the lake)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "machine_https_ipv6" {
  security_group_id = aws_security_group.machine.id
  description       = "HTTPS over IPv6 to AWS's dual-stack endpoints (SSM, ECR, EC2, CloudWatch, S3)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv6         = "::/0"
}

# With the ECS run launcher: the run tasks reach Dagster's PostgreSQL on the machine, and nothing
# else reaches anything.
resource "aws_security_group" "runs" {
  count       = local.ecs ? 1 : 0
  name        = "${var.name}-pipeline-runs"
  description = "Dagster run tasks: no inbound rule; HTTPS out, and PostgreSQL on the pipeline machine"
  vpc_id      = aws_vpc.pipeline.id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "runs_https" {
  count             = local.ecs ? 1 : 0
  security_group_id = aws_security_group.runs[0].id
  description       = "HTTPS to AWS APIs (ECR, CloudWatch Logs, S3, SSM)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "runs_postgres" {
  count                        = local.ecs ? 1 : 0
  security_group_id            = aws_security_group.runs[0].id
  description                  = "Dagster's run storage on the pipeline machine"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.machine.id
}

resource "aws_vpc_security_group_ingress_rule" "machine_postgres_from_runs" {
  count                        = local.ecs ? 1 : 0
  security_group_id            = aws_security_group.machine.id
  description                  = "PostgreSQL from the Dagster run tasks only"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.runs[0].id
}

# --- the machine -------------------------------------------------------------------------------

data "aws_ssm_parameter" "ami" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}"
}

# Survives the machine: Dagster's history, the lake's local cache, the warehouse.
resource "aws_ebs_volume" "data" {
  #checkov:skip=CKV_AWS_189:the AWS-managed key is enough; a customer-managed key adds $1 a month for no gain here
  availability_zone = local.az
  size              = var.data_volume_gb
  type              = "gp3"
  encrypted         = true
  tags              = merge(local.tags, { Name = "${var.name}-pipeline-data" })
}

resource "aws_launch_template" "machine" {
  #checkov:skip=CKV_AWS_88:only with public_ipv4 = true (the fallback when IPv6 cannot reach a needed endpoint); its security group has no inbound rule
  name_prefix   = "${var.name}-pipeline-"
  image_id      = data.aws_ssm_parameter.ami.insecure_value
  instance_type = var.instance_type
  user_data = base64encode(templatefile("${path.module}/user_data.sh.tftpl", {
    region         = local.region
    image          = local.machine_image
    registry       = local.registry
    dualstack      = !var.public_ipv4
    volume_id      = aws_ebs_volume.data.id
    data_dir       = local.data_dir
    log_group      = aws_cloudwatch_log_group.serve.name
    postgres       = local.postgres
    vpc_cidr       = var.vpc_cidr
    password_param = local.password_param_name
    host_param     = local.host_param_name
    environment    = local.pipeline_environment
    ecs_environment = local.ecs ? {
      ANALYTICS_ECS_CLUSTER           = aws_ecs_cluster.runs[0].name
      ANALYTICS_ECS_TASK_DEFINITION   = aws_ecs_task_definition.run[0].family
      ANALYTICS_ECS_SUBNETS           = aws_subnet.pipeline.id
      ANALYTICS_ECS_SECURITY_GROUPS   = aws_security_group.runs[0].id
      ANALYTICS_ECS_CAPACITY_PROVIDER = var.ecs_capacity_provider
    } : {}
  }))

  iam_instance_profile {
    name = aws_iam_instance_profile.machine.name
  }

  network_interfaces {
    # The way out is the IPv6 address (egress only); a public IPv4 address only as the fallback.
    # The security group lets nothing in.
    associate_public_ip_address = var.public_ipv4
    ipv6_address_count          = 1
    security_groups             = [aws_security_group.machine.id]
    delete_on_termination       = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1 # the container runs on the host's network
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  dynamic "credit_specification" {
    for_each = startswith(var.instance_type, "t") ? [1] : []
    content {
      cpu_credits = var.cpu_credits
    }
  }

  monitoring {
    enabled = false # detailed monitoring is $2.10 a month; the alarm reads the pipeline's own metric
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-pipeline" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "machine" {
  name                = "${var.name}-pipeline"
  min_size            = local.running ? 1 : 0
  max_size            = local.running ? 1 : 0
  desired_capacity    = local.running ? 1 : 0
  vpc_zone_identifier = [aws_subnet.pipeline.id]
  health_check_type   = "EC2"
  capacity_rebalance  = false # a second machine could not attach the data volume anyway

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = var.spot ? 0 : 1
      on_demand_percentage_above_base_capacity = var.spot ? 0 : 100
      spot_allocation_strategy                 = "price-capacity-optimized"
    }
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.machine.id
        version            = aws_launch_template.machine.latest_version
      }
      override {
        instance_type = var.instance_type
      }
    }
  }

  # A new image tag or setting replaces the machine (one at a time: the data volume has one
  # owner).
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 0
    }
  }

  dynamic "tag" {
    for_each = local.tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

# --- the image ---------------------------------------------------------------------------------

resource "aws_ecr_repository" "pipeline" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS" # the AWS-managed key: no monthly key fee
  }
  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "pipeline" {
  repository = aws_ecr_repository.pipeline.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged layers of replaced images go after a day"
        selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 1 }
        action       = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the last ${var.image_retention_count} images"
        selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.image_retention_count }
        action       = { type = "expire" }
      },
    ]
  })
}

# Written by the machine at boot (its private address, for the run tasks); the password
# parameter next to it is created by the machine alone, so that no Terraform state holds it.
resource "aws_ssm_parameter" "postgres_host" {
  #checkov:skip=CKV2_AWS_34:a private IP address, not a secret (the password parameter is a SecureString)
  count = local.ecs ? 1 : 0
  name  = local.host_param_name
  type  = "String"
  value = "pending-first-boot"
  tags  = local.tags
  lifecycle {
    ignore_changes = [value]
  }
}
