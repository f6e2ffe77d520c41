"""Where the platform keeps its data, from environment variables (documented in README.md).

| variable | default |
|---|---|
| ``ANALYTICS_DATA_DIR`` | ``./data`` |
| ``ANALYTICS_RAW_URL`` | ``$ANALYTICS_DATA_DIR/raw`` (a folder, or ``s3://bucket/prefix``) |
| ``ANALYTICS_LAKE_URL`` | unset (local only); ``s3://bucket/prefix`` keeps the Parquet lake in S3 |
| ``AWS_ENDPOINT_URL`` | unset: AWS itself; set it for MinIO, moto or another S3-compatible store |
| ``ANALYTICS_DUCKDB_MEMORY`` | ``1GB``: DuckDB memory limit of a pipeline step (spills beyond) |
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
