"""What a materialisation reports about the table it wrote, in the keys the Dagster UI shows:
``dagster/row_count`` and ``dagster/column_schema`` (every column and its type, from the Parquet
schema of the files just written, so the UI documents each table as it is)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq


def table_metadata(files: Sequence[str | Path], rows: int | None = None) -> dict[str, Any]:
    """Row count (``rows``, else from the files' footers) and column schema of ``files``; a run
    that wrote no file reports 0 rows and no schema."""
    if rows is None:
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    out: dict[str, Any] = {"dagster/row_count": int(rows)}
    if files:
        schema = pq.read_schema(files[0])
        out["dagster/column_schema"] = dg.MetadataValue.table_schema(dg.TableSchema(columns=[
            dg.TableColumn(f.name, str(f.type)) for f in schema
        ]))
    return out
