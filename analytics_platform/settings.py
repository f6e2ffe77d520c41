"""Where the platform keeps its data, from environment variables (documented in README.md).

| variable | default |
|---|---|
| ``ANALYTICS_DATA_DIR`` | ``./data`` |
| ``ANALYTICS_RAW_URL`` | ``$ANALYTICS_DATA_DIR/raw`` (a folder, or ``s3://bucket/prefix``) |
| ``ANALYTICS_LAKE_URL`` | unset (local only); ``s3://bucket/prefix`` keeps the Parquet lake in S3 |
| ``AWS_ENDPOINT_URL`` | unset: AWS itself; set it for MinIO, moto or another S3-compatible store |
| ``ANALYTICS_DUCKDB_MEMORY`` | ``1GB``: DuckDB memory limit of a pipeline step (spills beyond) |
| ``ANALYTICS_SENSOR_INTERVAL_SECONDS`` | ``10`` on a local raw lake, ``30`` on S3 |
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``$ANALYTICS_DATA_DIR`` (default ``./data``), as an absolute path."""
    return Path(os.environ.get("ANALYTICS_DATA_DIR") or "data").expanduser().resolve()


def raw_url() -> str:
    """``$ANALYTICS_RAW_URL``, default ``$ANALYTICS_DATA_DIR/raw``."""
    return os.environ.get("ANALYTICS_RAW_URL") or str(data_dir() / "raw")


def lake_url() -> str | None:
    """``$ANALYTICS_LAKE_URL`` (``s3://bucket/prefix``) or None: where the Parquet lake is kept
    durably, besides its local cache under ``$ANALYTICS_DATA_DIR/lake``."""
    return os.environ.get("ANALYTICS_LAKE_URL") or None


def duckdb_memory_limit() -> str:
    """``$ANALYTICS_DUCKDB_MEMORY`` (default ``1GB``): what one pipeline step's DuckDB may hold
    in memory before it spills to ``$ANALYTICS_DATA_DIR/.duckdb_tmp``. With the step's own
    buffers this keeps a step under about 1.5 GB whatever the size of the partition."""
    return os.environ.get("ANALYTICS_DUCKDB_MEMORY") or "1GB"


SENSOR_INTERVAL_LOCAL = 10
SENSOR_INTERVAL_S3 = 30
SENSOR_LOOKBACK_HOURS = 3


def sensor_lookback_hours() -> int:
    """``$ANALYTICS_SENSOR_LOOKBACK_HOURS`` (default 3): hour folders the raw-lake sensor lists a
    tick (Firehose names an object after its oldest record, so an hour's folder stops changing
    a buffer interval after the hour ends; three hours leave room for retries)."""
    return int(os.environ.get("ANALYTICS_SENSOR_LOOKBACK_HOURS") or SENSOR_LOOKBACK_HOURS)


def sensor_interval_seconds() -> int:
    """``$ANALYTICS_SENSOR_INTERVAL_SECONDS``: how often the raw-lake and automation sensors
    tick. By default 10 s on a local raw lake (listing a folder is free, and each tick saved is
    seconds off the time from a visit to the warehouse) and 30 s on S3, where every tick costs
    LIST requests (three a tick: about $1.30 a month at 30 s, three times that at 10 s)."""
    value = os.environ.get("ANALYTICS_SENSOR_INTERVAL_SECONDS")
    if value:
        return int(value)
    return SENSOR_INTERVAL_S3 if raw_url().startswith("s3://") else SENSOR_INTERVAL_LOCAL
