"""Dagster resources: where the raw lake and the transformed lake live, and pipeline settings.

Every field defaults to the environment (README.md, "Configuration"), so the same definitions run
on a laptop (local folders) and against S3 without code changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from analytics_platform import settings
from analytics_platform.lake import RawLake, open_raw_lake
from analytics_platform.storage import Lake


class RawLakeResource(dg.ConfigurableResource):
    """The raw lake the pipeline reads: a folder or ``s3://bucket/prefix``."""

    url: str | None = Field(
        default=None, description="Default: $ANALYTICS_RAW_URL, else $ANALYTICS_DATA_DIR/raw."
    )
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint. Default: $AWS_ENDPOINT_URL."
    )

    def open(self) -> RawLake:
        url = self.url or settings.raw_url()
        if url.startswith("s3://"):
            from analytics_platform.lake import s3_client

            return open_raw_lake(url, client=s3_client(self.endpoint_url))
        return open_raw_lake(url)


class LakeResource(dg.ConfigurableResource):
    """The transformed lake (Parquet) and the warehouse file, under ``$ANALYTICS_DATA_DIR``."""

    data_dir: str | None = Field(default=None, description="Default: $ANALYTICS_DATA_DIR.")
    url: str | None = Field(
        default=None, description="Keep the lake in S3 too (s3://bucket/prefix). Default: "
        "$ANALYTICS_LAKE_URL, else local only.")

    def open(self) -> Lake:
        return Lake(self.data_dir or None, self.url)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


class PipelineSettings(dg.ConfigurableResource):
    """How the pipeline counts (SPEC §3–5) and when it warns."""

    late_arrival_hours: int = Field(
        default_factory=lambda: _env_int("ANALYTICS_LATE_ARRIVAL_HOURS", 24),
        description="A day's sessions are final once raw hours up to day + 1 day + this many "
        "hours are processed (SPEC §4).",
    )
    session_lookback_hours: int = Field(
        default=3,
        description="Raw hours before midnight read for a day's sessions, so a session that "
        "began the day before is recognised as such.",
    )
    quarantine_warn_share: float = Field(
        default_factory=lambda: _env_float("ANALYTICS_QUARANTINE_WARN_SHARE", 0.01),
        description="Warn when more than this share of an hour's records is quarantined.",
    )
    freshness_hours: float = Field(
        default_factory=lambda: _env_float("ANALYTICS_FRESHNESS_HOURS", 3.0),
        description="Warn when the newest processed event is older than this.",
    )
    anomaly_threshold: float = Field(
        default=5.0,
        description="Warn when an hour's volume is this many robust standard deviations "
        "(1.4826 × MAD) from the median of the same hour over the trailing 7 days.",
    )
    funnels_file: str | None = Field(
        default_factory=lambda: os.environ.get("ANALYTICS_FUNNELS_FILE") or None,
        description="YAML file of funnels. Default: the book_call funnel shipped with the package.",
    )
    referrers_file: str | None = Field(
        default_factory=lambda: os.environ.get("ANALYTICS_REFERRERS_FILE") or None,
        description="Extra referrer table (CSV: pattern,source,medium) added to the shipped one.",
    )

    def funnels_path(self) -> Path:
        return Path(self.funnels_file) if self.funnels_file else Path(__file__).with_name(
            "funnels.yaml"
        )
