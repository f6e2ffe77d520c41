"""The raw lake (CONTRACT §2): gzip objects of raw records under ``year=/month=/day=/hour=/``.

One small interface, :class:`RawLake`, with two implementations: a local folder (the embedded
default) and S3 (any S3-compatible endpoint). The mapping between an object key, its hourly folder
and the Dagster hourly partition key lives here and nowhere else.

Keys are relative to the lake root (the ``ANALYTICS_RAW_URL``), e.g.
``year=2026/month=02/day=01/hour=13/analytics-1-2026-02-01-13-05-00-<uuid>.gz``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Dagster's HourlyPartitionsDefinition key format.
PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
DEFAULT_STREAM = "analytics"
DEFAULT_STREAM_VERSION = 1

_HOUR_DIR_RE = re.compile(r"^year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/")


def floor_hour(ts: datetime) -> datetime:
    """The UTC hour that holds ``ts``."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_prefix(hour: datetime) -> str:
    """The folder of one hourly partition, relative to the lake root (ends in ``/``)."""
    h = floor_hour(hour)
    return f"year={h:%Y}/month={h:%m}/day={h:%d}/hour={h:%H}/"


def hour_of_key(key: str) -> datetime:
    """The hourly partition an object key belongs to (from its folder, not its name)."""
    m = _HOUR_DIR_RE.match(key)
    if not m:
        raise ValueError(f"not a raw-lake object key (expected year=/month=/day=/hour=/…): {key!r}")
    y, mo, d, h = (int(x) for x in m.groups())
    return datetime(y, mo, d, h, tzinfo=UTC)


def partition_key(hour: datetime) -> str:
    """The Dagster hourly partition key of an hour, e.g. ``2026-02-01-13:00``."""
    return floor_hour(hour).strftime(PARTITION_KEY_FORMAT)


def hour_of_partition_key(key: str) -> datetime:
    """Inverse of :func:`partition_key`."""
    return datetime.strptime(key, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)


def object_key(
    oldest_arrival: datetime,
    object_id: str | None = None,
    stream: str = DEFAULT_STREAM,
    version: int = DEFAULT_STREAM_VERSION,
) -> str:
    """A Firehose-shaped key: the folder and name both come from the oldest record's arrival."""
    ts = oldest_arrival.astimezone(UTC)
    object_id = object_id or str(uuid.uuid4())
    return f"{hour_prefix(ts)}{stream}-{version}-{ts:%Y-%m-%d-%H-%M-%S}-{object_id}.gz"


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every hour from ``start``'s hour up to and including ``end``'s hour."""
    h, last = floor_hour(start), floor_hour(end)
    out = []
    while h <= last:
        out.append(h)
        h += timedelta(hours=1)
    return out


@dataclass(frozen=True)
class RawObject:
    """One object of the raw lake."""

    key: str
    size: int
    last_modified: datetime

    @property
    def hour(self) -> datetime:
        return hour_of_key(self.key)


class RawLake(ABC):
    """Read and write the raw lake of one deployment."""

    url: str

    @abstractmethod
    def list_hour(self, hour: datetime) -> list[RawObject]:
        """Every complete object of one hourly partition, sorted by key."""

    @abstractmethod
    def has_objects(self) -> bool:
        """Whether any object is stored, in any hour (one LIST of one key at most)."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The bytes of one object, as stored (gzip)."""

    @abstractmethod
    def write(self, key: str, data: bytes, *, durable: bool = True) -> RawObject:
        """Store one object atomically: a reader sees all of it or nothing. ``durable=False``
        skips waiting for the disk (still atomic), for data that can be made again."""

    @abstractmethod
    def local_paths(self, objects: list[RawObject]) -> AbstractContextManager[list[Path]]:
        """A context giving local files that hold ``objects`` (downloaded to a temporary folder
        if need be), so a reader such as DuckDB can scan them all at once."""

    def write_records(
        self,
        oldest_arrival: datetime,
        gzip_data: bytes,
        object_id: str | None = None,
        *,
        durable: bool = True,
    ) -> RawObject:
        """Store one Firehose-shaped object whose oldest record arrived at ``oldest_arrival``."""
        return self.write(object_key(oldest_arrival, object_id), gzip_data, durable=durable)


class LocalRawLake(RawLake):
    """The raw lake in a local folder (the embedded default).

    Writes go to a hidden temporary file in the target folder and are renamed into place, which is
    atomic on POSIX; listing skips hidden files, so readers never see a partial object.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise ValueError(f"key escapes the lake root: {key!r}")
        return p

    def has_objects(self) -> bool:
        # the objects' layout (year=/month=/day=/hour=/name), hidden files being writes under
        # way (list_hour skips them too)
        return any(not p.name.startswith(".") and p.is_file()
                   for p in self.root.glob("year=*/month=*/day=*/hour=*/*"))

    def list_hour(self, hour: datetime) -> list[RawObject]:
        prefix = hour_prefix(hour)
        folder = self.root / prefix
        out = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        for e in entries:
            if e.name.startswith(".") or not e.is_file():
                continue
            st = e.stat()
            out.append(
                RawObject(prefix + e.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
            )
        return sorted(out, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write(self, key: str, data: bytes, *, durable: bool = True) -> RawObject:
        hour_of_key(key)  # refuse keys outside the layout
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        st = target.stat()
        return RawObject(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    @contextmanager
    def local_paths(self, objects: list[RawObject]) -> Iterator[list[Path]]:
        yield [self._path(o.key) for o in objects]


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; ``endpoint_url``, else boto3's own ``AWS_ENDPOINT_URL``, selects an
    S3-compatible endpoint such as MinIO or moto (boto3 reads the variable itself, as it reads
    the credentials: nothing here reads the environment)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix/``); the prefix is ``""`` or ends
    in ``/``."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


class S3RawLake(RawLake):
    """The raw lake in S3 at ``s3://bucket/prefix``. A PUT is atomic: S3 never shows half an
    object."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}"
        self.client = client or s3_client()

    def has_objects(self) -> bool:
        page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + "year=",
                                           MaxKeys=1)
        return bool(page.get("KeyCount"))

    def list_hour(self, hour: datetime) -> list[RawObject]:
        prefix = self.prefix + hour_prefix(hour)
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                out.append(RawObject(key, int(item["Size"]), item["LastModified"]))
        return sorted(out, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()

    def write(self, key: str, data: bytes, *, durable: bool = True) -> RawObject:
        hour_of_key(key)  # an acknowledged PUT is durable in S3 whatever ``durable`` says
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType="application/gzip"
        )
        return RawObject(key, len(data), datetime.now(UTC))

    @contextmanager
    def local_paths(self, objects: list[RawObject]) -> Iterator[list[Path]]:
        # Downloads are I/O bound: a few threads hide the per-request latency.
        with tempfile.TemporaryDirectory(prefix="analytics-raw-") as tmp:
            paths = [Path(tmp) / f"{i:06d}.gz" for i in range(len(objects))]

            def fetch(i: int) -> None:
                # One GET: boto3's download_file sends a HEAD for the size first, two requests
                # an object (bench/s3_requests.py counted 21 HEADs + 21 GETs per events run).
                body = self.client.get_object(Bucket=self.bucket,
                                              Key=self.prefix + objects[i].key)["Body"]
                with body, open(paths[i], "wb") as out:
                    shutil.copyfileobj(body, out, 1 << 20)

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(fetch, range(len(objects))))
            yield paths


# isal's igzip level 2: on 8 MB of records 11 ms against zlib level 6's 96 ms (level 9's 252),
# for objects about 18 % larger than level 6 makes.
GZIP_LEVEL = 2


def gzip_object(data: bytes | memoryview) -> bytes:
    """The bytes of a raw-lake object holding ``data`` (NDJSON): gzip, without a timestamp in
    its header, so the same records always make the same object."""
    from isal import igzip  # imported here: the Lambda's zip (standard library) never calls it

    return igzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def open_raw_lake(url: str | os.PathLike[str], client: Any | None = None) -> RawLake:
    """The raw lake at ``url``: ``s3://bucket/prefix`` or a local folder."""
    url = str(url)
    if url.startswith("s3://"):
        return S3RawLake(url, client=client)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported raw lake URL {url!r}: use a folder or s3://bucket/prefix")
    return LocalRawLake(url.removeprefix("file://"))
