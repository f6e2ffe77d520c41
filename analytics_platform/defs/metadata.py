"""What a materialisation reports about the table it wrote, in the keys the Dagster UI shows:
``dagster/row_count`` and ``dagster/column_schema`` (every column and its type, from the Parquet
schema of the files just written, so the UI documents each table as it is); and, for a run over
several partitions, what each partition records (:func:`record_partitions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq


def table_metadata(files: Sequence[str | Path]) -> dict[str, Any]:
    """Row count (from the files' footers) and column schema of ``files``; a run that wrote no
    file reports 0 rows and no schema."""
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return {"dagster/row_count": int(rows), **column_schema(files[:1])}


def column_schema(files: Sequence[str | Path]) -> dict[str, Any]:
    """``dagster/column_schema`` of the first of ``files`` (nothing when there is none)."""
    if not files:
        return {}
    schema = pq.read_schema(files[0])
    return {"dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=[
        dg.TableColumn(f.name, str(f.type)) for f in schema
    ]))}


def record_partitions(context: dg.AssetExecutionContext, own: Mapping[str, Mapping[str, Any]],
                      run: Mapping[str, Any], asset_key: str | None = None) -> None:
    """Record each partition's own metadata (``own``, by partition key, in the run's order), and
    the run's summary (``run``: its totals under ``run_…`` keys, a preview, the column schema)
    on its last partition only.

    Dagster copies a run's MaterializeResult metadata to every partition it covers: each hour
    of a 771-hour backfill run recorded the run's totals, wrong for the hour, and a column schema
    and a preview with them, 12.4 KB an `events` partition written twice (issue 21,
    docs/BENCHMARKS.md). The UI shows an asset's latest materialisation, the last partition's:
    the run's summary and the columns are there."""
    keys = list(own)
    for key in keys:
        meta = {**own[key], **(run if key == keys[-1] else {})}
        if asset_key is None:
            context.add_asset_metadata(meta, partition_key=key)
        else:
            context.add_asset_metadata(meta, asset_key=asset_key, partition_key=key)
