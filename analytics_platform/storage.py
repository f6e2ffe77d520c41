"""The transformed lake (Parquet per partition) and the warehouse that exposes it (CONTRACT §6).

Layout under ``$ANALYTICS_DATA_DIR``::

    lake/<table>/<partition>/part.parquet      one file per partition, replaced atomically
    lake/<table>/_published/<gen>/<partition>.parquet
                                               hard links: the snapshot a warehouse's views read
    lake/_tmp/                                 where files are written before the rename
    lake/_locks/                               the locks that order this machine's changes to a
                                               lake file kept in S3 (Lake._lock)
    warehouse.duckdb                           a view per table, swapped atomically: a hard
                                               link to .warehouse/<gen>.duckdb; the tables the
                                               dashboard reads on every request (NATIVE_TABLES)
                                               stored in it, the others read from the snapshot

(the folder names: ``layout.py``).

Why the warehouse is never opened for writing in place: DuckDB allows one writing process *or*
many reading processes on a file. If the pipeline kept ``warehouse.duckdb`` open for writing,
every dashboard or ``duckdb -readonly`` shell would fail with a lock error while a run is going,
and two concurrent runs would fail on each other (dagster issues #16248, #19068). So all
computing happens in in-memory DuckDB connections that write Parquet, and the warehouse file is
rebuilt beside a snapshot of the lake (hard links) and renamed over the old one after every run
that writes (:func:`publish_warehouse`). Readers that have the old file open keep reading it and
the old snapshot, whose files never change under them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from reflink_copy import reflink

from analytics_platform import layout, settings, sql
from analytics_platform.lake import parse_s3_url, s3_client
from analytics_platform.query import rollups
from analytics_platform.workers import Worker, run_jobs

_SAFE = re.compile(r"^[A-Za-z0-9_=\-:.]+$")
# How every lake file is written. zstd level 1: on a million-event hour it wrote 0.1 s faster
# than the default level 3, and the file came out no larger (43 MB against 44 MB).
PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 122880"
# Every column of a lake file is OPTIONAL (may hold NULL), whatever its rows hold: which columns
# are never NULL is the contract's to say (docs/CONTRACT.md), not the Parquet schema's. DuckDB
# marks a column REQUIRED when the statistics it has of the query show no NULL, so the mark
# depended on the data around the file: an hour's events file cleaned alone said page_title was
# REQUIRED, the same hour cleaned in a batch with an hour that had a record without one said
# OPTIONAL (other bytes for the same rows), and one day of the 30-day benchmark's session_events
# marked OPTIONAL 17 columns that the other 29 marked REQUIRED. A reader that takes the schema
# from one file (pyarrow.dataset) then declares `not null` a column that other files hold NULLs
# in. A CASE is a result DuckDB cannot prove non-NULL; it keeps the query's columns, names and
# order. Its cost is inside the noise (paired with the code before: the events step on 144
# hours 36.8-39.9 CPU-s both ways, the sessions step on 8 days 19.9-22.0 against 20.1-22.3;
# issue 21, docs/BENCHMARKS.md).
NULLABLE = "SELECT CASE WHEN COLUMNS(*) IS NOT NULL THEN COLUMNS(*) END FROM ({query})"
# Lake.existing: at most this many partitions missing from the local cache are asked for with a
# GET each; more are listed first (a LIST costs what 12.5 GETs do).
_PROBE_AT_MOST = 12
# Lake._lock: how many lock files the lake's files share (by a hash of their path). Bounded, so
# the lock files are never removed (removing a lock file someone holds breaks the lock); two
# files of one stripe only wait for each other's short critical sections.
_LOCK_STRIPES = 64
# The extended attribute that keeps, on a local file of a lake kept in S3, the ETag of the S3
# object it is a copy of (set before the file takes its place, so it is never another file's).
_ETAG_XATTR = "user.analytics_platform.s3_etag"


def _mark(path: Path, etag: str, mtime: float | None) -> None:
    """Record which S3 object ``path`` is a copy of: its ETag (an extended attribute, where the
    file system keeps them) and a modification time no older than the object's LastModified
    (what :meth:`Lake.pull` compares where there is no ETag). The ETag is what tells two
    versions apart: S3's LastModified has whole seconds, so a file replaced within the second
    it was pulled in by one of the same size looked the same by size and time (found in
    review: the reader kept the old rows). The listing a pull makes has every ETag: no
    request more. ``mtime`` None: the time is set later."""
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    # AttributeError: no xattr calls in this os module (macOS); OSError: not on this file
    # system. Size and time are then compared, as before.
    with suppress(AttributeError, OSError):
        os.setxattr(path, _ETAG_XATTR, etag.encode())


def _etag(path: Path) -> str | None:
    """The ETag :func:`_mark` kept on ``path``; None when there is none."""
    try:
        return os.getxattr(path, _ETAG_XATTR).decode()
    except (AttributeError, OSError):
        return None


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What tells that ``path`` was replaced or removed (inode, size, mtime_ns); None when
    absent. Not ctime: a publish's hard link to the file changes it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


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

    def push(self, src: Path, path: Path) -> str:
        """Put the file ``src`` at ``path``'s key; returns the object's ETag. One PUT whatever
        the size, as the cost model counts a file written (boto3's ``upload_file`` makes a file
        over 8 MB a multipart upload, three requests at least, answers no ETag, and raises its
        own error class, which is not botocore's)."""
        with open(src, "rb") as body:
            return self.client.put_object(Bucket=self.bucket, Key=self.key(path),
                                          Body=body)["ETag"]

    def delete(self, path: Path) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(path))

    def download(self, path: Path) -> tuple[Path, float] | None:
        """S3's copy of ``path``, downloaded into a file of its own under ``lake/_tmp`` with the
        ETag of the version it is (:func:`_mark`), and its LastModified, for the caller to move
        into place (and give it that time there) or remove; None if S3 has none. One GET
        (boto3's ``download_file`` sends a HEAD for the size first: two requests a file)."""
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key(path))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        tmp = self.root / layout.TMP / f"fetch-{uuid.uuid4().hex}.parquet"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            with got["Body"] as body, open(tmp, "wb") as out:
                shutil.copyfileobj(body, out, 1 << 20)
            # S3's time is given to the file once in place (Lake._fetch): an old time here
            # would make it a killed process's leftover to a publish (_prune_leftovers), which
            # removed it before it took its place (found in review)
            _mark(tmp, got["ETag"], None)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, got["LastModified"].timestamp()

    # Keys a LIST page returns (S3's maximum; a test lowers it to exercise the paging).
    page_keys = 1000

    def present(self, paths: list[Path]) -> set[Path]:
        """Which of ``paths`` S3 holds, from one listing of the key range they span (paged
        only until past the last of them): the keys from the first path's folder on, under the
        prefix all of them share."""
        keys = {self.key(p): p for p in paths}
        first, last = min(keys), max(keys)
        same = next((i for i, (a, b) in enumerate(zip(first, last, strict=False))
                     if a != b), len(first))
        prefix = first[:same]  # the characters they share: ``lake/events/hour=2026-03-``
        args = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_keys,
                # exclusive, and before the first key: its folder (``…/hour=…T13``)
                "StartAfter": first.rsplit("/", 1)[0]}
        found: set[Path] = set()
        while True:
            page = self.client.list_objects_v2(**args)
            for item in page.get("Contents", []):
                if item["Key"] > last:
                    return found
                if item["Key"] in keys:
                    found.add(keys[item["Key"]])
            if not page.get("IsTruncated"):
                return found
            args["ContinuationToken"] = page["NextContinuationToken"]

    def tables(self) -> list[str]:
        """The table folders of the lake in S3 (one delimited listing)."""
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            names += [p["Prefix"][len(self.prefix):].rstrip("/")
                      for p in page.get("CommonPrefixes", [])]
        return sorted(n for n in names if not n.startswith(("_", ".")))

    def listing(self, rel_prefix: str) -> dict[Path, tuple[int, float, str]]:
        """The Parquet files under ``rel_prefix``: their local path → (size, S3's LastModified
        as a POSIX timestamp, ETag)."""
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + rel_prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".parquet"):
                    out[self.root / item["Key"][len(self.prefix):]] = (
                        int(item["Size"]), item["LastModified"].timestamp(), item["ETag"])
        return out

    def list(self, rel_prefix: str) -> list[Path]:
        return list(self.listing(rel_prefix))


class Lake:
    """Parquet tables partitioned by folder under one root.

    With ``remote_url`` (``$ANALYTICS_LAKE_URL=s3://bucket/prefix``) every file written is also
    put to S3, which holds the durable lake; the local folder is then a cache that fills itself
    from S3 when a partition is read (DuckDB reads local files: no ``httpfs`` needed).

    The local copy is never ahead of S3, so that what S3 says can be taken from it: a file is
    put to S3 before it takes its place here (:meth:`write`), removed from S3 before it is here
    (:meth:`delete`). And what S3 said is never taken back over a change made here since:
    a file fetched (:meth:`_fetch`, under :meth:`pull`, :meth:`existing`, :meth:`files`) takes
    its place only if the local file is still the one it saw before asking S3. Two runs of one
    machine share its data folder (deploy/dagster.yaml runs two at once): found in review, a
    history run's pull of ``sessions`` while a daily run wrote it fetched the old day back over
    the new one, or removed a new day not yet uploaded. :meth:`_lock` orders these changes of
    one file between processes.
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
        fetched from S3 into the local cache when need be.

        Any partition missing here may have been written to S3 by another machine (an ECS run
        task, another pipeline host), so S3 is asked, never assumed. How, by price: a GET that
        finds nothing (404) is billed as a GET ($0.0004 per 1,000), a LIST as a PUT ($0.005 per
        1,000), 12.5 GETs. So up to _PROBE_AT_MOST missing partitions are asked for one GET each
        (the GET of a file that exists is its download); more, and one listing of their key
        range says which exist, and only those are fetched. Measured with
        ``bench/s3_requests.py`` (docs/BENCHMARKS.md): an ``events`` run on the pipeline
        machine sent 44 HEADs for partitions never written when each was asked on its own, a
        day's run 50; now 6 GETs and 2 LISTs, and 6 LISTs."""
        paths = [self.partition_path(table, p) for p in partitions]
        missing = [p for p in paths if not p.exists()]
        if self.remote is not None and missing:
            wanted = (missing if len(missing) <= _PROBE_AT_MOST
                      else sorted(self.remote.present(missing)))
            for p in wanted:
                self._fetch(p, None)
        return [str(p) for p in paths if p.exists()]

    def files(self, table: str, partition: str) -> list[str]:
        """Every file of one partition folder (the late-events store has several)."""
        folder = self.table_dir(table) / partition
        if self.remote is not None:
            local = set(folder.glob("*.parquet"))
            for p in self.remote.list(f"{table}/{partition}/"):
                if p not in local:
                    self._fetch(p, None)
        return sorted(str(p) for p in folder.glob("*.parquet"))

    def pull(self, table: str) -> int:
        """Make the local cache of ``table`` match S3 (new and replaced files fetched, deleted
        ones dropped); returns the number of files fetched. A reader's machine pulls every
        table (``lake-pull``), a history run ``sessions``, beside the runs that write it.

        A partition is replaced at the same key (a day run again), so a file is fetched again
        when its ETag differs from S3's (kept with it: :func:`_mark`); where there is none,
        when S3's copy differs in size or is newer than the one here, whose modification time
        is S3's LastModified (as ``aws s3 sync`` compares them). The listing is one moment of
        S3: a file that changed here since (a run of this machine wrote it: S3 has it) is not
        judged by it (:meth:`_fetch`). A file S3 did not list is asked for once more (a GET,
        billed as one: only for files deleted in S3, or written here during the listing), and
        goes only if S3 still has none."""
        if self.remote is None:
            return 0
        remote = self.remote.listing(f"{table}/")
        fetched = 0
        for p, (size, modified, etag) in remote.items():
            seen = _identity(p)
            if seen is not None:
                kept = _etag(p)
                if (kept == etag if kept is not None
                        else seen[1] == size and seen[2] / 1e9 >= modified):
                    continue
            fetched += self._fetch(p, seen)
        for p in self.table_dir(table).glob("*/*.parquet"):
            if p not in remote:
                fetched += self._fetch(p, _identity(p))
        return fetched

    @contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """Hold the lock of ``path`` (an exclusive ``flock`` on one of ``lake/_locks/``'s files,
        by a hash of its path) for one change of it: the S3 side and the local side of a write
        or a delete, or a fetched file taking its place. So a change here and S3 happen in the
        same order for one file whatever the processes, and a fetch cannot slip between the PUT
        and the rename of a write."""
        folder = self.root / layout.LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        stripe = zlib.crc32(path.relative_to(self.root).as_posix().encode()) % _LOCK_STRIPES
        fd = os.open(folder / f"{stripe:02d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def _fetch(self, path: Path, seen: tuple[int, int, int] | None) -> bool:
        """Make ``path`` S3's copy of it (one GET), or remove it if S3 has none, unless the file
        here changed since ``seen`` (its :func:`_identity` before S3 was asked; None: absent);
        True when a file was fetched.

        The GET is made without the lock (a download must not hold up this machine's writes),
        so its answer may be older than a file a run here wrote meanwhile: that run put its
        file to S3 before the rename, and a changed file here is as new as S3's was when it
        changed. It is kept, then; the answer is dropped (a later pull fetches what S3 may
        have had newer still)."""
        assert self.remote is not None
        downloaded = self.remote.download(path)
        if downloaded is None and seen is None:
            return False  # none here, none in S3
        got, modified = downloaded if downloaded is not None else (None, 0.0)
        try:
            with self._lock(path):
                if _identity(path) != seen:
                    return False
                if got is None:
                    path.unlink(missing_ok=True)
                    return False
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(got, path)
                os.utime(path, (modified, modified))  # what pull compares without an ETag
                return True
        finally:
            if got is not None:
                got.unlink(missing_ok=True)

    def delete(self, path: Path) -> None:
        """Remove one file of the lake, in S3 and then here (the local copy never holds a file
        S3 has no longer: a pull would take it for one S3 has not yet)."""
        if self.remote is None:
            path.unlink(missing_ok=True)
            return
        with self._lock(path):
            self.remote.delete(path)
            path.unlink(missing_ok=True)

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
        """:meth:`pull` every table the lake in S3 holds and every table that has files here
        (bookkeeping included); files fetched per table. A table whose last file was removed
        in S3 (``quarantine``, once a re-run of its hours cleared them) is no longer listed
        there, and its files here go too (found in review: they were published on and on). A
        LIST more for such a table, once: with its files gone it is no longer visited."""
        if self.remote is None:
            return {}
        here = {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(
            ("_", ".")) and self.has_data(p.name)} if self.root.exists() else set()
        return {table: self.pull(table) for table in sorted(set(self.remote.tables()) | here)}

    def remove(self, table: str, partition: str, name: str = "part") -> None:
        """Drop a partition's file (re-materialising an empty partition leaves nothing stale)."""
        self.delete(self.partition_path(table, partition, name))

    def write(self, con: duckdb.DuckDBPyConnection, query: str, table: str, partition: str,
              params: dict | None = None, name: str = "part") -> Path:
        """Run ``query`` and store its rows as the partition's Parquet file, atomically: the file
        is written under ``lake/_tmp`` and renamed into place, so a reader sees the old file or
        the new one, never half of one. Re-running replaces, never appends. Every column is
        written OPTIONAL (see NULLABLE).

        With the lake in S3 the file is put there first, then renamed into place, both under
        the file's lock (see the class): the copy here is never newer than S3's. A failed PUT
        leaves both as they were."""
        target = self.partition_path(table, partition, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.root / layout.TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{table}-{uuid.uuid4().hex}.parquet"
        try:
            con.execute(
                f"COPY ({NULLABLE.format(query=query)}) TO '{tmp}' ({PARQUET})",
                params or {},
            ).fetchall()
            if self.remote is None:
                os.replace(tmp, target)
            else:
                with self._lock(target):
                    etag = self.remote.push(tmp, target)
                    _mark(tmp, etag, time.time())  # S3 has it: no older than its LastModified
                    os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
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
# How long a superseded snapshot's links (the Parquet files its views read) are kept for the
# readers that opened it and may still be reading: an export or a query started just before a
# swap. A connection held open for longer sees its files go: reopen the warehouse. (The
# superseded warehouse file itself goes at once: a reader that has it open keeps it open.)
SNAPSHOT_RETENTION_SECONDS = 3600

# The tables the dashboard and the Stats API read on every request, stored in the warehouse file
# as native DuckDB tables (schema STORE, table ``<table>_rows``; the view ``<table>`` selects
# from it) instead of views over one Parquet file per day (issue #21, docs/BENCHMARKS.md): the
# Overview on 9.9M events took 0.55× the time of the views on the same machine, below ClickHouse
# (chDB) where the views were 1.4× above it; the views opened and read the footers of every
# daily file on every query. table → (its date column, which every row of a ``date=D``
# partition has equal to D, and what each day's rows are sorted by: the columns the dashboard
# filters on, as the ClickHouse tables of bench/clickhouse.py are ordered; sorted this way the
# top-pages query took 280 ms against 392 ms unsorted). Kept in step partition by partition:
# a publish re-stores only the days whose file changed (see _plan_store).
NATIVE_TABLES = {
    "sessions": ("session_date", "source, device_type, entry_page"),
    "session_events": ("session_date", "event_type, page_path"),
    "pages_daily": ("date", "page_path"),
}
STORE = rollups.STORE  # "_store"
# Which file each stored day came from (inode, size, mtime: a replaced partition is a new file).
_FILES = f"{STORE}.stored_files"
# A warehouse file whose free blocks (left by days stored again) pass this share of its blocks is
# not carried over: the next one is built afresh. So is one whose stored days this publish would
# mostly store again (their Parquet bytes, against every stored day's): a backfill over the whole
# history. Carried over, that file held both the old and the new rows (a deleted day's blocks
# are free only after the checkpoint, so the inserts cannot reuse them): the 30-day benchmark's
# 1.47 GB file became 2.93 GB, half of its blocks free, right at the rule above: the next
# publish stored every day again from nothing (one run), or carried it over and copied it (two
# runs; measured 2026-12-07, docs/BENCHMARKS.md).
_MAX_FREE_SHARE = 0.5


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
    out = str(folder)
    # os.scandir and string paths, not pathlib's glob: a table of 26,280 files (three years of
    # hours) linked in 0.34 s against 0.57 s on ext4, the link calls alone taking 0.15 s
    # (2026-12-07; bench/publish.py --links). Every publish links every table, whatever changed.
    with os.scandir(lake.table_dir(table)) as partitions:
        for part in partitions:
            if not part.is_dir():
                continue
            try:
                files = os.scandir(part.path)
            except FileNotFoundError:  # removed by a concurrent run since the listing
                continue
            with files:
                for f in files:
                    if not f.name.endswith(".parquet"):
                        continue
                    name = (f"{part.name}.parquet" if f.name == "part.parquet"
                            else f"{part.name}.{f.name}")
                    try:
                        os.link(f.path, f"{out}/{name}")
                    except FileNotFoundError:  # removed by a concurrent run since the listing
                        continue
    return str(folder / "*.parquet")


def _retire(root: Path, replaced_ino: int) -> None:
    """Remove the superseded warehouse file whose inode ``warehouse.duckdb`` had before the
    rename, at once: a reader that opened it holds it open (and the disk space with it) until it
    lets go, and nothing opens it by name again. A ``<gen>.retired`` marker keeps the moment
    for the retention of its links (:func:`_prune_snapshots`)."""
    for f in root.glob("*.duckdb"):
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        if st.st_ino == replaced_ino and st.st_nlink == 1:
            (root / f"{f.stem}.retired").touch()
            f.unlink(missing_ok=True)
            return


def _prune_snapshots(lake: Lake, keep: str) -> None:
    """Remove the snapshots superseded more than SNAPSHOT_RETENTION_SECONDS ago. A snapshot
    retired at its swap (:func:`_retire`) has a ``<gen>.retired`` marker from that moment;
    otherwise (a concurrent run swapped it out) its warehouse file has lost its second link,
    ``warehouse.duckdb``, which set the file's ctime: the moment it was superseded. (A snapshot
    never swapped in, after a crash, counts from its creation.)"""
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
    for m in root.glob("*.retired"):
        try:
            if now - m.stat().st_mtime >= SNAPSHOT_RETENTION_SECONDS:
                gone.append(m.stem)
        except FileNotFoundError:
            continue
    live = ({f.stem for f in root.glob("*.duckdb")} | {m.stem for m in root.glob("*.retired")}
            ) - set(gone)
    if lake.root.exists():
        for folder in lake.root.glob(f"*/{layout.PUBLISHED}/*"):
            stale = folder.name in gone or (
                folder.name not in live and folder.name != keep
                and now - folder.stat().st_mtime >= SNAPSHOT_RETENTION_SECONDS)
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
    for g in gone:
        (root / f"{g}.duckdb").unlink(missing_ok=True)
        (root / f"{g}.retired").unlink(missing_ok=True)
    # A publish killed (SIGKILL, the OOM killer) before its clean-up leaves its file's WAL, which
    # the lines above never looked at (found in review). A WAL is of no use without its file,
    # and a publish in progress has its file: the WALs of files gone (or going now) go.
    for wal in root.glob("*.duckdb.wal"):
        if not Path(str(wal).removesuffix(".wal")).exists():
            wal.unlink(missing_ok=True)


def _prune_leftovers(lake: Lake, keep: str) -> None:
    """Remove what a process killed mid-way leaves and nothing else removes, once older than
    SNAPSHOT_RETENTION_SECONDS (a running process keeps its own files younger: a write's or a
    download's file is written to until it is renamed): files under ``lake/_tmp`` (found in
    review: a write killed in its COPY left 94 MB there), and the link a publish makes of its
    new warehouse file before renaming it over ``warehouse.duckdb``, left by a publish killed
    in between (it keeps the file's second name, so :func:`_prune_snapshots` never counts the
    file superseded)."""
    cutoff = time.time() - SNAPSHOT_RETENTION_SECONDS
    tmp = lake.root / layout.TMP
    leftovers = list(tmp.iterdir()) if tmp.exists() else []
    leftovers += [p for p in lake.data_dir.glob(".warehouse-*.duckdb")
                  if p.name != f".warehouse-{keep}.duckdb"]
    for p in leftovers:
        try:
            if p.lstat().st_mtime >= cutoff:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except FileNotFoundError:  # another publish's clean-up got there first
            continue


def clone_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` (which must not exist) a clone of ``src`` where the file system makes them
    (XFS, the production data volume: infra/modules/pipeline; Btrfs; APFS), else a copy.

    A clone shares the file's blocks, and DuckDB's writes copy only those they change. The
    30-day backfill's 1.5 GB warehouse on XFS, a publish after a step that wrote nothing
    stored: 0.19 s (0.37 s, page cache dropped) and 1 MB more disk, against 1.75 s (2.09 s) and
    1.5 GB copied, while a reader held the old file (bench/publish.py, docs/BENCHMARKS.md).
    Elsewhere (ext4) it is ``shutil.copyfile``, not reflink-copy's ``reflink_or_copy``: that
    one's copy holds Python's GIL throughout. While it copied the 1.5 GB file, a thread of the
    same process that wakes every 5 ms ran 2 times in 0.38 s, against 74 during
    ``shutil.copyfile``."""
    try:
        reflink(src, dst)
    except OSError:  # no clone here (ext4, another device); reflink-copy sets no errno to tell
        shutil.copyfile(src, dst)


def _base(lake: Lake) -> Path | None:
    """The current warehouse file when it holds stored tables worth carrying over (cloning it,
    or copying it where the file system cannot clone, is far cheaper than storing them again:
    a copy of 1 GB takes 0.3 s), else None (the new file starts empty): no file, no store, a
    store with too many free blocks, or one whose days' files are mostly new (_MAX_FREE_SHARE)."""
    path = lake.warehouse_path
    if not path.exists():
        return None
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS base (READ_ONLY)", [str(path)])
        stored = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'base' "
                             "AND schema_name = ?", [STORE]).fetchall()[0][0]
        free, total = con.execute("SELECT free_blocks, total_blocks FROM pragma_database_size() "
                                  "WHERE database_name = 'base'").fetchall()[0]
        days = con.execute(f"SELECT table_name, day, ino, size, mtime_ns FROM base.{_FILES}"
                           ).fetchall() if stored else []
    except duckdb.Error:  # unreadable: start afresh
        return None
    finally:
        con.close()
    if not stored or free > _MAX_FREE_SHARE * total:
        return None
    replaced = sum(size for table, day, ino, size, mtime in days if _stat(
        lake.partition_path(table, f"{layout.DAY}={day}")) != (ino, size, mtime))
    return None if replaced > _MAX_FREE_SHARE * sum(d[3] for d in days) else path


def _stat(path: Path) -> tuple[int, int, int] | None:
    """What the store knows a day's file by (inode, size, mtime_ns): None when it is gone."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _drop_store(con: duckdb.DuckDBPyConnection, table: str) -> None:
    rollups.drop(con, table)
    con.execute(f"DROP TABLE IF EXISTS {STORE}.{table}_rows")
    con.execute(f"DELETE FROM {_FILES} WHERE table_name = ?", [table])


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


@dataclass(frozen=True)
class _Plan:
    """What :func:`_plan_store` decided for one stored table: its snapshot's day files, and
    which of them are stored now (new or changed since) and which days are gone."""

    table: str
    days: dict[str, Path]  # every day of the snapshot → its file (a link)
    stat: dict[str, tuple[int, int, int]]  # day → (inode, size, mtime_ns) of its file
    changed: list[str]
    gone: list[str]

    @property
    def rows(self) -> str:
        return f"{STORE}.{self.table}_rows"


def _plan_store(con: duckdb.DuckDBPyConnection, table: str, snapshot: Path) -> _Plan | None:
    """Bring the stored rows of ``table`` in step with the files of its snapshot folder (links:
    they do not change while read), all but the inserts: the days whose file is new, changed or
    gone are deleted, and the returned plan names the files whose rows :func:`_insert_days`
    inserts, each day sorted by NATIVE_TABLES' columns; unchanged days stay as they are. The
    whole table is stored again when its columns changed. None (and nothing stored) when the
    table is not one file per ``date=`` day whose rows all have that date: its view then reads
    the snapshot, as any other table's."""
    date_col, _ = NATIVE_TABLES[table]
    days: dict[str, Path] = {}
    for f in snapshot.glob("*.parquet"):
        found = re.fullmatch(rf"{layout.DAY}=(\d{{4}}-\d{{2}}-\d{{2}})\.parquet", f.name)
        if found is None:
            _drop_store(con, table)
            return None
        days[found.group(1)] = f
    now = {d: _stat(p) for d, p in days.items()}
    files = sql.literal_list(map(str, days.values()))
    columns = _columns(con, f"SELECT * FROM read_parquet({files}, union_by_name = true, "
                            "hive_partitioning = false)")
    if date_col not in {c for c, _ in columns}:
        _drop_store(con, table)
        return None
    rows = f"{STORE}.{table}_rows"
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND "
                         "table_name = ? AND database_name = current_database()",
                         [STORE, f"{table}_rows"]).fetchall()[0][0]
    if not exists or _columns(con, rows) != columns:  # its rollups go too: made again
        _drop_store(con, table)
        con.execute(f"CREATE TABLE {rows} AS SELECT * FROM read_parquet({files}, "
                    "union_by_name = true, hive_partitioning = false) LIMIT 0")
    known = {d: (ino, size, mtime) for d, ino, size, mtime in con.execute(
        f"SELECT day, ino, size, mtime_ns FROM {_FILES} WHERE table_name = ?",
        [table]).fetchall()}
    changed = sorted(d for d in now if known.get(d) != now[d])
    # every changed day's rows must have its date, or a day could not be told apart by it (no
    # store); only the date column is read (0.4 s for the recorded 30-day lake's files)
    for d in changed:
        other = con.execute(
            f"SELECT count(*) FROM read_parquet({sql.literal(str(days[d]))}, "
            f"hive_partitioning = false) WHERE {date_col} IS DISTINCT FROM $d::DATE",
            {"d": d}).fetchall()[0][0]
        if other:
            _drop_store(con, table)
            return None
    stale = sorted(set(known) - set(now)) + [d for d in changed if d in known]
    if stale:
        con.execute(f"DELETE FROM {rows} WHERE {date_col} IN (SELECT unnest($d)::DATE)",
                    {"d": stale})
        con.execute(f"DELETE FROM {_FILES} WHERE table_name = $t AND day IN (SELECT unnest($d))",
                    {"t": table, "d": stale})
    return _Plan(table, days, now, changed, sorted(set(known) - set(now)))


# How many cursors of the warehouse's database insert the changed days at once (each day one
# sorted INSERT; see _insert_days), with DuckDB's own threads (the machine's cores) shared.
STORE_WORKERS = 2


def _insert_days(con: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> None:
    """Insert the changed days of every plan, on STORE_WORKERS cursors of ``con``'s database
    (``con.cursor()``, one thread each: workers.run_jobs), each taking the next day (the largest
    files first, so no cursor is left with a big day at the end) and committing its days in one
    transaction of its own. Each day is one ``INSERT … SELECT … ORDER BY``: its rows stay
    contiguous and sorted in the table whichever cursor took it. The first error stops the
    others (their statement interrupted, no day started after it) and is raised here once they
    have stopped; their transactions roll back.

    Why two cursors: a day's sorted insert does not keep two cores busy (the publish from
    nothing on the recorded 30-day lake, one connection, quiet machine: 58.7 s, 87.9 CPU-s,
    1.50 cores); two days at a time can. ``session_events``' 30 days (14.6M rows) alone, quiet
    machine: 45.8 / 49.7 s → 37.4 / 34.9 s wall (−25 %), 70.8 / 77.6 → 73.3 / 68.0 CPU-s.
    Whole publishes from nothing on that lake, 6 alternating pairs with the one-connection
    store on a machine other work kept busy: at load 2–3, 71.5 s against 80.6 s (−11 %), 114.6
    against 117.7 CPU-s; at load 3–9, 119–233 s against 106–280 s, 109–129 against 104–122
    CPU-s (no core idle to gain there; CPU-s alike).
    An incremental publish of 2 changed days: no faster (one day a cursor), 0.3 GB more peak
    RSS (two sorts at once, within the database's one memory limit). A transaction per day
    (each cursor committing each day) instead of one per cursor: no faster (189 / 229 s, 111
    / 126 CPU-s, the same runs). Why DuckDB's threads left at the cores' count: with one
    thread a cursor, 28 of the 120 row groups of ``session_events``' 30 days held two days'
    rows (a day's rows are then no longer alone in the row groups a date filter reads); with
    two, every row group held one day (120 of 120 in a publish of this code)."""
    jobs = sorted(((plan.stat[d][1], plan, d) for plan in plans
                   for d in plan.changed), key=lambda j: (-j[0], j[1].table, j[2]))

    def insert(cur: duckdb.DuckDBPyConnection, job: tuple[int, _Plan, str]) -> None:
        _, plan, day = job
        src = f"read_parquet({sql.literal(str(plan.days[day]))}, hive_partitioning = false)"
        cur.execute(f"INSERT INTO {plan.rows} BY NAME SELECT * FROM {src} "
                    f"ORDER BY {NATIVE_TABLES[plan.table][1]}")

    def start(worker: int, stack: ExitStack) -> Worker:
        cur = con.cursor()
        cur.execute("BEGIN")
        return Worker(cur, lambda job: insert(cur, job), finish=lambda: cur.execute("COMMIT"))

    run_jobs(jobs, STORE_WORKERS, start, name="warehouse-store")


def publish_warehouse(lake: Lake) -> list[str]:
    """(Re)build ``warehouse.duckdb`` with a view per table of the lake (:meth:`Lake.tables`:
    a new mart is published as soon as it has a file; ``quarantine`` always), and swap it in.

    The views read a snapshot, never the live files: every file of the lake is hard-linked
    into ``<table>/_published/<gen>/`` first. A reader reading a view while the pipeline
    replaces one of its partitions failed about once in 60 reads before (DuckDB reads a Parquet
    file's footer, then opens the path again for its pages, by then another file:
    ``don't know what type:``); a snapshot's paths always hold the files they held. The tables
    of NATIVE_TABLES are stored in the file itself, from the same snapshot, and their views
    select from the stored rows: the new file starts as a copy of the current one and only the
    days whose file changed since are stored again, in three steps, each committed (the file is
    this publish's own until the rename and removed on any failure, so one transaction would
    add nothing): what each table keeps (:func:`_plan_store`: stale days deleted), the changed
    days of every stored table inserted on cursors of their own (:func:`_insert_days`), then
    which file each day came from, the rollups and the views. The new warehouse file is built
    beside its snapshot and hard-linked over ``warehouse.duckdb`` in one rename, so a reader
    opens the old file or the new one, whole; the old file is removed at once (a reader that
    has it open keeps it), its links after SNAPSHOT_RETENTION_SECONDS.

    Safe to call from concurrent runs: each builds its own snapshot and file from the lake as
    it found it, and the last rename wins (the next publish catches up with whatever a slower
    one saw).
    """
    lake.data_dir.mkdir(parents=True, exist_ok=True)
    root = snapshot_root(lake)
    root.mkdir(exist_ok=True)
    gen = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # sorts by time, unique
    target = root / f"{gen}.duckdb"
    link = lake.data_dir / f".warehouse-{gen}.duckdb"
    published: list[str] = []
    replaced = None
    try:
        base = _base(lake)
        if base is not None:
            clone_or_copy(base, target)
        # The oldest storage format that holds it, so any DuckDB reader from 1.0 on (the CLI,
        # DBeaver, older Python packages) can open the file. The file is this publish's own
        # until the rename below (removed on any failure), so it needs no single transaction:
        # three steps, each committed. Each day's sort within the pipeline's memory bound (one
        # database, one limit, whatever the cursors); no checkpoint before the last (the rows
        # are written to the file once, not through the WAL and again).
        con = duckdb.connect(str(target), config={
            "storage_compatibility_version": "v1.0.0",
            "memory_limit": settings.duckdb_memory_limit(),
            "temp_directory": str(lake.data_dir / ".duckdb_tmp"),
            "checkpoint_threshold": "1TB"})
        try:
            # 1. what each stored table keeps and what it stores again (stale days deleted)
            con.execute("BEGIN")
            for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                       "AND database_name = current_database()").fetchall():
                con.execute(f"DROP VIEW {view}")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {STORE}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {_FILES} (table_name VARCHAR, day VARCHAR, "
                        "ino UBIGINT, size UBIGINT, mtime_ns BIGINT)")
            tables = lake.tables()
            snapshots = {name: Path(_snapshot_table(lake, name, gen)).parent for name in tables}
            plans: dict[str, _Plan] = {}
            for name in tables:
                native = name in NATIVE_TABLES and not list(sql.DEFS.glob(
                    f"*/sql/{name}_view.sql"))  # a view of its own is not SELECT * of the files
                plan = _plan_store(con, name, snapshots[name]) if native else None
                if plan is not None:
                    plans[name] = plan
            for name in NATIVE_TABLES:
                if name not in tables:
                    _drop_store(con, name)
            con.execute("COMMIT")
            # 2. the changed days of every stored table, on cursors of their own
            _insert_days(con, list(plans.values()))
            # 3. which file each day came from, the rollups, the views
            con.execute("BEGIN")
            for plan in plans.values():
                for d in plan.changed:
                    con.execute(f"INSERT INTO {_FILES} VALUES ($t, $d, $i, $s, $m)",
                                {"t": plan.table, "d": d, "i": plan.stat[d][0],
                                 "s": plan.stat[d][1], "m": plan.stat[d][2]})
                rollups.refresh(con, plan.table, plan.rows, sorted(plan.days), plan.changed,
                                plan.gone)
            for name in tables:
                if name in plans:
                    body = f"SELECT * FROM {plans[name].rows}"
                    shutil.rmtree(snapshots[name], ignore_errors=True)  # the rows are in the file
                else:
                    body = view_sql(lake, name, str(snapshots[name] / "*.parquet"))
                con.execute(f"CREATE VIEW {name} AS {body}")
                published.append(name)
            for name in ALWAYS_PUBLISHED:
                body = empty_view_sql(name)
                if name not in tables and body is not None:
                    con.execute(f"CREATE VIEW {name} AS {body}")
                    published.append(name)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        replaced = lake.warehouse_path.stat().st_ino if lake.warehouse_path.exists() else None
        os.link(target, link)
        os.replace(link, lake.warehouse_path)
    except BaseException:
        target.unlink(missing_ok=True)  # never swapped in: nobody has it open
        raise
    finally:
        link.unlink(missing_ok=True)
        Path(f"{target}.wal").unlink(missing_ok=True)
    if replaced is not None:
        _retire(root, replaced)
    _prune_snapshots(lake, gen)
    _prune_leftovers(lake, gen)
    return sorted(published)


# The lakes whose publish is held until the end of the run in progress (None: publish at once).
_HELD: ContextVar[dict[Path, Lake] | None] = ContextVar("held_publishes", default=None)


def publish_after_step(lake: Lake) -> None:
    """What a step calls once it has written the lake: :func:`publish_warehouse` now, or, inside
    :func:`publish_once`, once when that ends."""
    held = _HELD.get()
    if held is None:
        publish_warehouse(lake)
    else:
        held[lake.data_dir] = lake


@contextmanager
def publish_once() -> Iterator[dict[Path, float]]:
    """Hold the publishes the steps run inside ask for, and publish each lake they wrote once
    at the end, whether the steps succeeded or not (what they wrote is in the lake either way);
    yields ``{data dir: seconds}`` of those publishes, filled when it ends.

    For runs of many steps in this process (``execute_in_process``: the CLI's backfill, around
    its three runs). Each publish builds a new warehouse file from a copy of the current one,
    which holds the stored tables: 2.3 s a step on the 30-day backfill's 1.5 GB file on ext4
    (copying it 0.7 s, dropping the one it replaces 0.5 s, opening and checkpointing the copy
    1.1 s), 17 daily marts × 2.3 s = 39 of the backfill's 553 s, to show states no one reads
    before the run ends (issue 21, docs/BENCHMARKS.md); 0.2 s where the file is cloned (XFS:
    bench/publish.py). A run launched by Dagster's daemon publishes after every step, so the
    dashboard follows the run as it goes."""
    held: dict[Path, Lake] = {}
    seconds: dict[Path, float] = {}
    token = _HELD.set(held)
    try:
        yield seconds
    finally:
        _HELD.reset(token)
        for root, lake in held.items():
            t0 = time.perf_counter()
            publish_warehouse(lake)
            seconds[root] = time.perf_counter() - t0
