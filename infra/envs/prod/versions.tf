terraform {
  required_version = ">= 1.7"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { project = "analytics-platform", stack = var.name }
  }
}
