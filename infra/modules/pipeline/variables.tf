variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "bucket" {
  description = "Name of the lake bucket (from the storage module): raw/ is read, lake/ is written."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the lake bucket (from the storage module)."
  type        = string
}

variable "raw_queue_url" {
  description = "The storage module's raw/ notifications queue (raw_queue_url): the raw-lake sensor long-polls it (ANALYTICS_RAW_QUEUE_URL) instead of listing hour prefixes every tick. Empty: it lists them (three LIST requests every 30 s)."
  type        = string
  default     = ""
  nullable    = false
}

variable "raw_queue_arn" {
  description = "ARN of that queue: the machine may receive and delete its messages, nothing else."
  type        = string
  default     = ""
  nullable    = false
}

variable "image_tag" {
  description = "Tag of the image pushed to this module's ECR repository (tags are immutable: push a new tag, e.g. the git commit, and apply again). Empty: the repository is created but no instance starts (the first apply, before the first push)."
  type        = string
  default     = ""
}

variable "instance_type" {
  description = "The one machine that runs `analytics-platform serve` (Graviton: the image must be built for linux/arm64). t4g.small (2 vCPU, 2 GiB) holds 1M events a month with room to spare; see `analytics-platform cost`."
  type        = string
  default     = "t4g.small"
}

variable "architecture" {
  description = "\"arm64\" (Graviton, default) or \"x86_64\": the AMI, the run tasks and the image must agree."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "spot" {
  description = "Run the machine on Spot capacity (about 60 % cheaper). An interruption costs a few minutes: the group starts a new machine, which re-attaches the same data volume, and Dagster's run monitoring retries the run that was cut."
  type        = bool
  default     = true
}

variable "cpu_credits" {
  description = "Burstable (t4g) credit mode: \"unlimited\" (bursts beyond the baseline are billed) or \"standard\" (throttled to the baseline when credits run out)."
  type        = string
  default     = "unlimited"
  validation {
    condition     = contains(["standard", "unlimited"], var.cpu_credits)
    error_message = "cpu_credits must be \"standard\" or \"unlimited\"."
  }
}

variable "root_volume_gb" {
  description = "Root volume (the OS and the image's layers)."
  type        = number
  default     = 8
}

variable "data_volume_gb" {
  description = "The persistent volume mounted at /var/lib/analytics: Dagster's run history (SQLite, or PostgreSQL's files), the local cache of the lake and the warehouse. It outlives the machine (Spot interruptions, instance refreshes)."
  type        = number
  default     = 10
}

variable "availability_zone" {
  description = "The zone of the subnet and of the data volume (they must be in the same zone). Default: the region's first zone."
  type        = string
  default     = null
}

variable "public_ipv4" {
  description = "Give the machine a public IPv4 address ($3.65 a month) instead of reaching AWS's APIs over IPv6 alone (an egress-only internet gateway, free; every client on the dual-stack endpoints: docs/DEPLOY.md). The fallback for a region or an SSM agent without dual-stack support."
  type        = bool
  default     = false
}

variable "vpc_cidr" {
  description = "The pipeline's own small VPC (one dual-stack subnet: private IPv4, IPv6 out through an egress-only gateway; no NAT gateway)."
  type        = string
  default     = "10.42.0.0/24"
}

variable "run_launcher" {
  description = "\"default\": every run is a process on the machine. \"ecs\": every run is its own ECS Fargate task (dagster-aws's EcsRunLauncher) from the same image, for backfills beyond one machine; Dagster's storage is then PostgreSQL on the machine, reachable from the run tasks only."
  type        = string
  default     = "default"
  validation {
    condition     = contains(["default", "ecs"], var.run_launcher)
    error_message = "run_launcher must be \"default\" or \"ecs\"."
  }
}

variable "postgres" {
  description = "Keep Dagster's storage in PostgreSQL on the machine instead of SQLite (always on with run_launcher = \"ecs\"). Its password is generated on the machine at first boot into an SSM SecureString parameter: never in Terraform's state, variables or outputs."
  type        = bool
  default     = false
}

variable "ecs_capacity_provider" {
  description = "Capacity provider of the run tasks: \"FARGATE_SPOT\" (default, about 70 % cheaper; an interrupted run is retried) or \"FARGATE\"."
  type        = string
  default     = "FARGATE_SPOT"
  validation {
    condition     = contains(["FARGATE", "FARGATE_SPOT"], var.ecs_capacity_provider)
    error_message = "ecs_capacity_provider must be \"FARGATE\" or \"FARGATE_SPOT\"."
  }
}

variable "run_task_cpu" {
  description = "Default vCPU units of a run task (1024 = 1 vCPU); a job's `ecs/cpu` tag overrides it."
  type        = number
  default     = 1024
}

variable "run_task_memory" {
  description = "Default memory (MiB) of a run task; a job's `ecs/memory` tag overrides it."
  type        = number
  default     = 2048
}

variable "environment" {
  description = "Extra environment for the pipeline (e.g. ANALYTICS_START_DATE, ANALYTICS_SENSOR_INTERVAL_SECONDS). No secrets here: they would be in the state and in the launch template."
  type        = map(string)
  default     = {}
}

variable "duckdb_memory" {
  description = "ANALYTICS_DUCKDB_MEMORY on the machine: one step's DuckDB memory before it spills to the data volume (sized for 2 GiB shared by every process of `serve`)."
  type        = string
  default     = "512MB"
}

variable "log_retention_days" {
  type    = number
  default = 14
}

variable "no_success_alarm_hours" {
  description = "Alarm when no Dagster run has succeeded for this many hours (while the pipeline is alive a run succeeds at least every second hour, even with no traffic)."
  type        = number
  default     = 3
  validation {
    condition     = var.no_success_alarm_hours >= 2 && var.no_success_alarm_hours <= 24
    error_message = "no_success_alarm_hours must be between 2 and 24 (an hour without traffic has its run at :10 of the next)."
  }
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified by the alarm."
  type        = list(string)
  default     = []
}

variable "image_retention_count" {
  description = "Tagged images kept in the ECR repository (older ones expire)."
  type        = number
  default     = 10
}

variable "force_destroy" {
  description = "Let `terraform destroy` remove the ECR repository with its images."
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = {}
}
