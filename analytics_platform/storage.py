"""The transformed lake (Parquet per partition) and the warehouse that exposes it (CONTRACT §6).

Layout under ``$ANALYTICS_DATA_DIR``::

    lake/<table>/<partition>/part.parquet      one file per partition, replaced atomically
    lake/<table>/_published/<gen>/<partition>.parquet
                                               hard links: the snapshot a warehouse's views read
    lake/_tmp/                                 where files are written before the rename
    warehouse.duckdb                           views only (no data), swapped atomically: a hard
                                               link to .warehouse/<gen>.duckdb

(the folder names: ``layout.py``).

Why the warehouse holds only views and is never opened for writing in place: DuckDB allows one
writing process *or* many reading processes on a file. If the pipeline kept ``warehouse.duckdb``
open for writing, every dashboard or ``duckdb -readonly`` shell would fail with a lock error while
a run is going, and two concurrent runs would fail on each other (dagster issues #16248, #19068).
So all computing happens in in-memory DuckDB connections that write Parquet, and the warehouse
file is rebuilt beside a snapshot of the lake (hard links) and renamed over the old one after
every run that writes (:func:`publish_warehouse`). Readers that have the old file open keep
reading the old snapshot, whose files never change under them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform import layout, settings, sql
from analytics_platform.lake import parse_s3_url, s3_client

_SAFE = re.compile(r"^[A-Za-z0-9_=\-:.]+$")
# How every lake file is written. zstd level 1: on a million-event hour it wrote 0.1 s faster
# than the default level 3, and the file came out no larger (43 MB against 44 MB).
PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 122880"


class _Remote:
    """The durable copy of the lake in S3 (``$ANALYTICS_LAKE_URL``): one object per partition
    file, at the same relative key. A PUT is atomic, so readers never see half a file."""

    def __init__(self, url: str, root: Path, client: Any | None = None) -> None:
        if not url.startswith("s3://"):
            raise ValueError(f"ANALYTICS_LAKE_URL must be s3://bucket/prefix, not {url!r}")
        self.bucket, self.prefix = parse_s3_url(url)
        self.root = root
        self.client = client or s3_client()

    def key(self, path: Path) -> str:
        return self.prefix + path.relative_to(self.root).as_posix()

    def push(self, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self.key(path))

    def delete(self, path: Path) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(path))

    def fetch(self, path: Path) -> bool:
        """Download one file into the local cache (atomically); False if S3 has none."""
        tmp = self.root / "_tmp" / f"fetch-{uuid.uuid4().hex}.parquet"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self.key(path), str(tmp))
        except Exception as e:  # botocore ClientError 404
            if "404" in str(e) or "Not Found" in str(e) or "NoSuchKey" in str(e):
                return False
            raise
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
        return True

    def tables(self) -> list[str]:
        """The table folders of the lake in S3 (one delimited listing)."""
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            names += [p["Prefix"][len(self.prefix):].rstrip("/")
                      for p in page.get("CommonPrefixes", [])]
        return sorted(n for n in names if not n.startswith(("_", ".")))

    def list(self, rel_prefix: str) -> list[Path]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + rel_prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".parquet"):
                    out.append(self.root / item["Key"][len(self.prefix):])
        return out


class Lake:
    """Parquet tables partitioned by folder under one root.

    With ``remote_url`` (``$ANALYTICS_LAKE_URL=s3://bucket/prefix``) every file written is also
    put to S3, which holds the durable lake; the local folder is then a cache that fills itself
    from S3 when a partition is read (DuckDB reads local files: no ``httpfs`` needed).
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None,
                 remote_url: str | None = None, client: Any | None = None) -> None:
        """``remote_url`` None: ``$ANALYTICS_LAKE_URL``; ``""``: local only. ``client``: the S3
        client of the remote (default: boto3's)."""
        self.data_dir = Path(data_dir).resolve() if data_dir else settings.data_dir()
        self.root = self.data_dir / "lake"
        self.warehouse_path = self.data_dir / "warehouse.duckdb"
        url = remote_url if remote_url is not None else settings.lake_url()
        self.remote = _Remote(url, self.root, client) if url else None

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def partition_path(self, table: str, partition: str, name: str = "part") -> Path:
        """``lake/<table>/<partition>/<name>.parquet``; ``partition`` like
        ``hour=2026-02-01T13``."""
        for part in (table, partition, name):
            if not _SAFE.match(part) or ".." in part:
                raise ValueError(f"bad table or partition name: {table!r} {partition!r} {name!r}")
        return self.root / table / partition / f"{name}.parquet"

    def glob(self, table: str) -> str:
        return str(self.root / table / "*" / "*.parquet")

    def existing(self, table: str, partitions: Iterable[str]) -> list[str]:
        """The files of ``partitions`` that exist (a partition never materialised has none),
        fetched from S3 into the local cache when need be."""
        out = []
        for p in (self.partition_path(table, p) for p in partitions):
            if p.exists() or (self.remote is not None and self.remote.fetch(p)):
                out.append(str(p))
        return out

    def files(self, table: str, partition: str) -> list[str]:
        """Every file of one partition folder (the late-events store has several)."""
        folder = self.table_dir(table) / partition
        local = set(folder.glob("*.parquet"))
        if self.remote is not None:
            for p in self.remote.list(f"{table}/{partition}/"):
                if p not in local and self.remote.fetch(p):
                    local.add(p)
        return sorted(str(p) for p in local)

    def pull(self, table: str) -> int:
        """Make the local cache of ``table`` match S3 (new files fetched, deleted ones
        dropped); returns the number of files fetched."""
        if self.remote is None:
            return 0
        remote = set(self.remote.list(f"{table}/"))
        fetched = sum(self.remote.fetch(p) for p in remote if not p.exists())
        for p in self.table_dir(table).glob("*/*.parquet"):
            if p not in remote:
                p.unlink()
        return fetched

    def delete(self, path: Path) -> None:
        """Remove one file of the lake, here and in S3."""
        path.unlink(missing_ok=True)
        if self.remote is not None:
            self.remote.delete(path)

    def named(self, table: str, names: set[str]) -> list[Path]:
        """Files of ``table`` (in any partition folder) whose name is in ``names``, here or in
        S3 (one listing)."""
        found = {p for p in self.table_dir(table).glob("*/*.parquet") if p.name in names}
        if self.remote is not None:
            found |= {p for p in self.remote.list(f"{table}/") if p.name in names}
        return sorted(found)

    def has_data(self, table: str) -> bool:
        return any(self.table_dir(table).glob("*/*.parquet"))

    def tables(self) -> list[str]:
        """The tables of the local lake that have data (what the warehouse publishes); the
        pipeline's own bookkeeping (``layout.INTERNAL``) excluded."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and layout.is_table(p.name) and self.has_data(p.name))

    def pull_all(self) -> dict[str, int]:
        """:meth:`pull` every table the lake in S3 holds (bookkeeping included); files fetched
        per table."""
        if self.remote is None:
            return {}
        return {table: self.pull(table) for table in self.remote.tables()}

    def write_partitioned(
        self,
        con: duckdb.DuckDBPyConnection,
        query: str,
        by: list[str],
        target: Callable[[dict[str, str]], Path],
        params: dict | None = None,
    ) -> list[Path]:
        """Write ``query`` split by the columns ``by`` in one pass, then move each partition's
        file to ``target(values)`` with an atomic rename. Returns the files written."""
        tmp = self.root / "_tmp" / uuid.uuid4().hex
        tmp.parent.mkdir(parents=True, exist_ok=True)
        cols = ", ".join(by)
        try:
            con.execute(
                f"COPY ({query}) TO '{tmp}' ({PARQUET}, PARTITION_BY ({cols}))",
                params or {},
            ).fetchall()
            written = []
            folders = {p.parent for p in tmp.rglob("*.parquet")}
            for folder in sorted(folders):
                values = layout.folder_values(folder.relative_to(tmp).parts)
                dest = target(values)
                dest.parent.mkdir(parents=True, exist_ok=True)
                files = sorted(folder.glob("*.parquet"))
                if len(files) == 1:
                    os.replace(files[0], dest)
                else:  # several writer threads: merge into one file first
                    merged = tmp / f"{uuid.uuid4().hex}.merged"
                    con.execute(f"COPY (SELECT * FROM read_parquet("
                                f"{sql.literal_list(map(str, files))}, hive_partitioning = false))"
                                f" TO '{merged}' ({PARQUET})").fetchall()
                    os.replace(merged, dest)
                if self.remote is not None:
                    self.remote.push(dest)
                written.append(dest)
            return written
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def remove(self, table: str, partition: str, name: str = "part") -> None:
        """Drop a partition's file (re-materialising an empty partition leaves nothing stale)."""
        self.delete(self.partition_path(table, partition, name))

    def write(self, con: duckdb.DuckDBPyConnection, query: str, table: str, partition: str,
              params: dict | None = None, name: str = "part") -> Path:
        """Run ``query`` and store its rows as the partition's Parquet file, atomically: the file
        is written under ``lake/_tmp`` and renamed into place, so a reader sees the old file or
        the new one, never half of one. Re-running replaces, never appends."""
        target = self.partition_path(table, partition, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.root / "_tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{table}-{uuid.uuid4().hex}.parquet"
        try:
            con.execute(
                f"COPY ({query}) TO '{tmp}' ({PARQUET})",
                params or {},
            ).fetchall()
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        if self.remote is not None:
            self.remote.push(target)
        return target


def markdown_table(columns: list[str], rows: list[tuple[Any, ...]], more: int = 0) -> str:
    """A markdown table for a materialisation's metadata (``more``: rows left out)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    if more:
        lines.append(f"\n… and {more:,} more")
    return "\n".join(lines)


def markdown_preview(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None,
                     limit: int = 20) -> str:
    """The first rows of ``query`` as a markdown table."""
    cur = con.execute(f"SELECT * FROM ({query}) LIMIT {int(limit)}", params or {})
    return markdown_table([d[0] for d in cur.description], cur.fetchall())


# Which copy of an event counts when it arrived more than once: the earliest arrival, then the
# earlier device time, then the object and line it came in (CONTRACT §3.4). Every de-duplication of
# events (the events asset, sessions, the `events` view) orders by it.
FIRST_COPY_ORDER = "ingest_ts, event_ts, raw_key, raw_pos"

def view_sql(lake: Lake, table: str, files_glob: str | None = None) -> str:
    """The body of the warehouse's view of ``table``: every Parquet file of the table (or of
    ``files_glob``: the snapshot :func:`publish_warehouse` made), unless a
    ``defs/<domain>/sql/<table>_view.sql`` says otherwise (``events``: copies of an event that
    arrived in different hours are removed there, CONTRACT §3.4). Views take no parameters, so
    the glob is a literal. Partition folders are not read as columns (``hive_partitioning``
    off): a view shows the files' columns, the contract's, and no text ``hour`` or ``date``."""
    custom = sorted(sql.DEFS.glob(f"*/sql/{table}_view.sql"))
    files = sql.literal(files_glob or lake.glob(table))
    if custom:
        name = f"{custom[0].parent.parent.name}/{table}_view"
        extra = {"first_copy_order": FIRST_COPY_ORDER} if "first_copy_order" in (
            sql.placeholders(name)) else {}
        return sql.load(name, files=files, **extra)
    return f"SELECT * FROM read_parquet({files}, union_by_name = true, hive_partitioning = false)"


def empty_view_sql(table: str) -> str | None:
    """The view of ``table`` before it has a file, when ``defs/<domain>/sql/<table>_empty.sql``
    gives one (its columns, no rows): ``quarantine``, which a healthy lake may never write."""
    found = sorted(sql.DEFS.glob(f"*/sql/{table}_empty.sql"))
    return sql.load(f"{found[0].parent.parent.name}/{table}_empty") if found else None


# Tables whose view exists, empty, before their first file (see empty_view_sql).
ALWAYS_PUBLISHED = ("quarantine",)
# How long a superseded snapshot (a warehouse file and the links its views read) is kept for the
# readers that opened it and may still be reading: an export or a query started just before
# a swap. A connection held open for longer sees its files go: reopen the warehouse.
SNAPSHOT_RETENTION_SECONDS = 3600


def snapshot_root(lake: Lake) -> Path:
    """Where the warehouse files of the snapshots live (``warehouse.duckdb`` is a hard link to
    the current one)."""
    return lake.data_dir / ".warehouse"


def _snapshot_table(lake: Lake, table: str, gen: str) -> str:
    """Hard-link every file of ``table`` into ``<table>/_published/<gen>/`` (one link per
    partition, ``<partition>.parquet``): the glob of the view. A link is a name for the file
    as it is now; replacing the partition later gives the path a new file, never this one."""
    folder = lake.table_dir(table) / layout.PUBLISHED / gen
    folder.mkdir(parents=True, exist_ok=True)
    for f in lake.table_dir(table).glob("*/*.parquet"):
        name = f"{f.parent.name}.parquet" if f.stem == "part" else f"{f.parent.name}.{f.name}"
        try:
            os.link(f, folder / name)
        except FileNotFoundError:  # removed by a concurrent run since the listing
            continue
    return str(folder / "*.parquet")


def _prune_snapshots(lake: Lake, keep: str) -> None:
    """Remove the snapshots superseded more than SNAPSHOT_RETENTION_SECONDS ago. A snapshot's
    warehouse file has a second link, ``warehouse.duckdb``, while it is current; the rename of
    its successor over that name drops the link, which sets the file's ctime: the moment it was
    superseded. (A snapshot never swapped in, after a crash, counts from its creation.)"""
    now = time.time()
    root = snapshot_root(lake)
    gone = []
    for f in root.glob("*.duckdb"):
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        if f.stem != keep and st.st_nlink == 1 and now - st.st_ctime >= (
                SNAPSHOT_RETENTION_SECONDS):
            gone.append(f.stem)
    live = {f.stem for f in root.glob("*.duckdb")} - set(gone)
    if lake.root.exists():
        for folder in lake.root.glob(f"*/{layout.PUBLISHED}/*"):
            stale = folder.name in gone or (
                folder.name not in live and folder.name != keep
                and now - folder.stat().st_mtime >= SNAPSHOT_RETENTION_SECONDS)
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
    for g in gone:
        (root / f"{g}.duckdb").unlink(missing_ok=True)


def publish_warehouse(lake: Lake) -> list[str]:
    """(Re)build ``warehouse.duckdb`` with a view per table of the lake (:meth:`Lake.tables`:
    a new mart is published as soon as it has a file; ``quarantine`` always), and swap it in.

    The views read a snapshot, never the live files: every file of the lake is hard-linked
    into ``<table>/_published/<gen>/`` first. A reader reading a view while the pipeline
    replaces one of its partitions failed about once in 60 reads before (DuckDB reads a Parquet
    file's footer, then opens the path again for its pages, by then another file:
    ``don't know what type:``); a snapshot's paths always hold the files they held. The new
    warehouse file is built beside its snapshot and hard-linked over ``warehouse.duckdb`` in
    one rename, so a reader opens the old file or the new one, whole. Superseded snapshots are
    removed after SNAPSHOT_RETENTION_SECONDS.

    Safe to call from concurrent runs: each builds its own snapshot and file, and the last
    rename wins; all of them describe the same views.
    """
    lake.data_dir.mkdir(parents=True, exist_ok=True)
    root = snapshot_root(lake)
    root.mkdir(exist_ok=True)
    gen = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # sorts by time, unique
    target = root / f"{gen}.duckdb"
    link = lake.data_dir / f".warehouse-{gen}.duckdb"
    published = []
    try:
        # Views only, in the oldest storage format that holds them, so any DuckDB reader from
        # 1.0 on (the CLI, DBeaver, older Python packages) can open the file.
        con = duckdb.connect(str(target), config={"storage_compatibility_version": "v1.0.0"})
        try:
            tables = lake.tables()
            for name in tables:
                glob = _snapshot_table(lake, name, gen)
                con.execute(f"CREATE VIEW {name} AS {view_sql(lake, name, glob)}")
                published.append(name)
            for name in ALWAYS_PUBLISHED:
                body = empty_view_sql(name)
                if name not in tables and body is not None:
                    con.execute(f"CREATE VIEW {name} AS {body}")
                    published.append(name)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.link(target, link)
        os.replace(link, lake.warehouse_path)
    finally:
        link.unlink(missing_ok=True)
        Path(f"{target}.wal").unlink(missing_ok=True)
    _prune_snapshots(lake, gen)
    return sorted(published)
