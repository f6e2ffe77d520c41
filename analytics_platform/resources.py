"""Dagster resources: where the raw lake and the transformed lake live, and pipeline settings.

Every field defaults to :mod:`analytics_platform.settings` (README.md, "Configuration"), so the
same definitions run on a laptop (local folders) and against S3 without code changes; the code
location binds the variables that are set with ``dg.EnvVar`` (``defs/resources.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from analytics_platform import settings
from analytics_platform.lake import RawLake, open_raw_lake
from analytics_platform.storage import Lake

# Both lakes are dagster-aws S3Resources with a URL: the S3 client of an s3:// lake is
# S3Resource.get_client(), configured by its fields (endpoint_url, region_name, max_attempts,
# profile_name…), which the UI shows; unset, boto3's own configuration applies
# ($AWS_ENDPOINT_URL, the credentials chain). Inherited rather than nested: a nested resource
# makes its parent a context-managed one, which `dg.build_sensor_context(resources=…)` then
# refuses outside a `with` block. (Outside Dagster — the CLI, the dashboard, the Lambda — the
# lakes use lake.s3_client(), plain boto3 configured the same way.)


class _S3Lake(S3Resource):
    def get_object_to_set_on_execution_context(self) -> Any:
        # the lake resource itself in `context.resources`, not the boto3 client S3Resource gives
        return self


class RawLakeResource(_S3Lake):
    """The raw lake the pipeline reads: a folder or ``s3://bucket/prefix``."""

    url: str | None = Field(
        default=None, description="Default: $ANALYTICS_RAW_URL, else $ANALYTICS_DATA_DIR/raw."
    )

    def open(self) -> RawLake:
        url = self.url or settings.raw_url()
        if url.startswith("s3://"):
            return open_raw_lake(url, client=self.get_client())
        return open_raw_lake(url)


class LakeResource(_S3Lake):
    """The transformed lake (Parquet) and the warehouse file, under ``$ANALYTICS_DATA_DIR``."""

    data_dir: str | None = Field(default=None, description="Default: $ANALYTICS_DATA_DIR.")
    url: str | None = Field(
        default=None, description="Keep the lake in S3 too (s3://bucket/prefix). Default: "
        "$ANALYTICS_LAKE_URL, else local only.")

    def open(self) -> Lake:
        url = self.url or settings.lake_url()
        return Lake(self.data_dir or None, url or "", client=self.get_client() if url else None)


class PipelineSettings(dg.ConfigurableResource):
    """How the pipeline counts (CONTRACT §3–5) and when it warns."""

    late_arrival_hours: int = Field(
        default_factory=settings.late_arrival_hours,
        description="A day's sessions are final once raw hours up to day + 1 day + this many "
        "hours are processed (CONTRACT §4; the window: partitions.session_window).",
    )
    quarantine_warn_share: float = Field(
        default_factory=settings.quarantine_warn_share,
        description="Warn when more than this share of an hour's records is quarantined "
        "($ANALYTICS_QUARANTINE_WARN_SHARE).",
    )
    freshness_hours: float = Field(
        default_factory=settings.freshness_hours,
        description="Warn when the newest processed event is older than this "
        "($ANALYTICS_FRESHNESS_HOURS).",
    )
    anomaly_threshold: float = Field(
        default=5.0,
        description="Warn when an hour's volume is this many robust standard deviations "
        "(1.4826 × MAD) from the median of the same hour over the trailing 7 days.",
    )
    funnels_file: str | None = Field(
        default_factory=settings.funnels_file,
        description="YAML file of funnels. Default: the book_call funnel shipped with the package.",
    )
    goals_file: str | None = Field(
        default_factory=settings.goals_file,
        description="YAML file of goals. Default: the goals shipped with the package.",
    )
    journey_min_visitors: int = Field(
        default_factory=settings.journey_min_visitors,
        description="k of journeys_daily: a day's path of pages seen by fewer distinct visitors "
        "is not published (CONTRACT §5).",
    )
    referrers_file: str | None = Field(
        default_factory=settings.referrers_file,
        description="Extra referrer table (CSV: pattern,source,medium) added to the shipped one.",
    )

    def goals_path(self) -> Path:
        return Path(self.goals_file) if self.goals_file else Path(__file__).with_name("goals.yaml")

    def funnels_path(self) -> Path:
        return Path(self.funnels_file) if self.funnels_file else Path(__file__).with_name(
            "funnels.yaml"
        )
