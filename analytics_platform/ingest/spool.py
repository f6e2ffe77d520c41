"""The collector's write-ahead spool: acknowledged records are on disk before the 2xx, and reach
the raw lake exactly once, even across ``kill -9``, a full disk or a raw lake that refuses writes
for a while.

- Requests append their records to the current segment file. A single writer task takes every
  append waiting, writes them in one ``write`` loop + ``fsync`` (group commit) and only then
  lets the requests answer: an acknowledged record is durable. A write that cannot complete (a
  full disk, a file-size limit, an I/O error) fails those requests (the collector answers 503),
  is cut back out of the segment (so no partial or unacknowledged line stays in it), and the
  next write starts a new segment.
- One flusher task, every ``flush_seconds`` (or once the segment passes ``flush_bytes``), closes
  the current segment and writes every closed segment to the raw lake as one Firehose-shaped
  object each, then deletes it. The object's name derives from the segment's, so flushing the
  same segment again (after a crash between the write and the delete, or a retry) replaces the
  object instead of duplicating it. A failed flush is logged, counted and retried with backoff;
  the segments wait on disk meanwhile (``SpoolHealth`` says so).
- One collector per spool folder: ``start`` takes an exclusive ``flock`` on ``.lock`` in it and
  refuses to start (``SpoolBusy``) while another process holds it. Every segment in the folder is
  then this process's or a dead one's, so flushing "every segment but the current one" never
  takes another live collector's open segment (two collectors on one folder deleted each other's
  open segment, losing acknowledged events). The kernel drops the lock when its holder dies, even
  by ``kill -9``: the next collector starts and recovers what it left.
- An object's name is the segment's id and its oldest ``ingest_ts`` (the minimum over its lines,
  not the first line: a clock stepped back makes a later line older), computed the same way for
  this process's segments and for recovered ones, so a flush cut short after the lake write
  and redone by the next process replaces the object instead of writing a second one.
- On start, segments left by a previous process are flushed first. Their lines are checked one
  by one: a trailing partial line (a write cut short, never acknowledged) is dropped, and a line
  that cannot be read (damage on disk) is parked in ``damaged/`` with its reason, never silently
  and never in the way of the lines after it; parked lines are deleted ``DAMAGED_KEEP_DAYS``
  after they were parked (``purge_damaged``, on the collector's timer).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from analytics_platform.contract import parse_timestamp
from analytics_platform.lake import RawLake, gzip_object

log = logging.getLogger("analytics_platform.collector")

# The wait after the n-th failed flush in a row: RETRY_FIRST * 2**(n-1) seconds, at most
# RETRY_MAX (and never longer than the flush interval would be at first).
RETRY_FIRST = 1.0
RETRY_MAX = 60.0
# Parked lines (damaged/) are raw records as the handler made them (scrubbed; a user agent, a
# visitor_hash): kept this long for someone to look at, then deleted by the collector's
# housekeeping timer (they used to be kept for ever). 30 days, as Firehose keeps the records it
# could not deliver, the same kind of record on AWS (errors/, error_retention_days,
# infra/modules/storage).
DAMAGED_KEEP_DAYS = 30


def describe_error(e: BaseException) -> str:
    """A short reason for an error that is safe to show to anyone: its kind and code, never its
    message (which may name files, folders or buckets)."""
    code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") \
        else None
    if code:
        return f"{type(e).__name__}: {code}"
    if isinstance(e, OSError) and e.errno in errno.errorcode:
        return f"{type(e).__name__}: {errno.errorcode[e.errno]}"
    return type(e).__name__


class SpoolBusy(RuntimeError):
    """Another live process holds the spool folder."""


class SegmentUnreadable(OSError):
    """A spool segment that cannot be read (an I/O error): retried, and the others go on."""


@dataclass
class SpoolStats:
    flushed_objects: int = 0
    flushed_records: int = 0
    recovered_segments: int = 0
    parked_segments: int = 0
    parked_lines: int = 0
    dropped_partial_lines: int = 0
    write_failures: int = 0
    flush_failures: int = 0


@dataclass
class SpoolHealth:
    """What the spool knows of its own state, for /healthz and /metrics."""

    last_write_error: str | None = None  # set while the last write to the spool failed
    flush_error: str | None = None  # the reason, while flushes fail
    failing_flushes: int = 0  # in a row
    flush_failing_since: float | None = None  # time.time()
    last_flush_at: float | None = None  # the last successful flush


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` and fsync it, or raise ``OSError``: os.write may write
    less than asked (a file-size limit, a disk filling up), so the rest is written again."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, "no byte written")
        view = view[written:]
    os.fsync(fd)


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based, in the segment
    reason: str


class Spool:
    def __init__(self, folder: Path, lake: RawLake, flush_seconds: float = 10.0,
                 flush_bytes: int = 8 * 1024 * 1024) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lake = lake
        self.flush_seconds = flush_seconds
        self.flush_bytes = flush_bytes
        self.stats = SpoolStats()
        self.health = SpoolHealth()
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] | None = None
        self._segment: Path | None = None
        self._fd: int | None = None
        self._size = 0
        self._lock_fd: int | None = None  # the flock on .lock, held while running
        self._parked: set[str] = set()
        self._writer_task: asyncio.Task[None] | None = None
        self._flusher_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # the current segment is big enough to flush
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()  # the current segment: writes, and closing it

    @property
    def damaged_folder(self) -> Path:
        return self.folder / "damaged"

    def acquire(self) -> None:
        """Take the spool folder for this process (idempotent); raises ``SpoolBusy`` if another
        live process has it."""
        if self._lock_fd is not None:
            return
        path = self.folder / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(
                f"another collector is running on the spool folder {self.folder} (it holds "
                f"{path}); run one collector per data folder, or give this one its own "
                "ANALYTICS_DATA_DIR") from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the only descriptor drops the flock
            self._lock_fd = None

    # --- segments --------------------------------------------------------------------------

    def _open_segment(self) -> None:
        name = f"seg-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.ndjson"
        self._fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment, self._size = self.folder / name, 0

    def _close_segment(self) -> Path | None:
        seg, fd, size = self._segment, self._fd, self._size
        self._segment, self._fd, self._size = None, None, 0
        if fd is not None:
            os.close(fd)
        if seg is not None and size == 0:
            seg.unlink(missing_ok=True)  # nothing acknowledged in it
            return None
        return seg

    def _closed_segments(self) -> list[Path]:
        current = self._segment.name if self._segment is not None else None
        return sorted(p for p in self.folder.glob("seg-*.ndjson") if p.name != current)

    @staticmethod
    def _object_id(segment: Path) -> str:
        try:
            return str(uuid.UUID(segment.stem.rsplit("-", 1)[-1]))
        except ValueError:  # a segment not named by this code: still one stable name
            return str(uuid.uuid5(uuid.NAMESPACE_URL, segment.name))

    @staticmethod
    def _check_lines(data: bytes) -> tuple[bytes, bytes, list[_Line], datetime | None]:
        """(readable lines, unreadable lines, why each is unreadable, the oldest ``ingest_ts``)
        of complete lines. Runs on every segment, this process's and recovered ones alike: the
        oldest ``ingest_ts`` names the lake object, and a second way of finding it (the first
        line's, on the running collector's path) named the same segment differently after a
        clock step back, so its re-flush on recovery duplicated it. Each distinct timestamp text
        is parsed once (a request's records share one)."""
        good: list[bytes] = []
        bad: list[bytes] = []
        why: list[_Line] = []
        oldest: datetime | None = None
        parsed: dict[str, datetime | None] = {}
        for n, line in enumerate(data.splitlines(keepends=True), 1):
            try:
                value: Any = orjson.loads(line)
            except orjson.JSONDecodeError:
                reason = "invalid_json"
            else:
                if not isinstance(value, dict):
                    reason = "not_an_object"
                elif not isinstance(value.get("ingest_ts"), str):
                    reason = "no_ingest_ts"
                else:
                    text = value["ingest_ts"]
                    if text not in parsed:
                        parsed[text] = parse_timestamp(text)
                    ts = parsed[text]
                    if ts is None:  # parse_timestamp answers None for a malformed one
                        reason = "bad_ingest_ts"
                    else:
                        good.append(line)
                        oldest = ts if oldest is None or ts < oldest else oldest
                        continue
            bad.append(line)
            why.append(_Line(n, reason))
        return b"".join(good), b"".join(bad), why, oldest

    def _park(self, segment: Path, bad: bytes, why: list[_Line]) -> None:
        """Keep the unreadable lines of ``segment`` in ``damaged/`` with their reasons (written
        atomically; writing the same again after a crash replaces them)."""
        self.damaged_folder.mkdir(exist_ok=True)
        reason = {"segment": segment.name, "parked_at": datetime.now(UTC).isoformat(),
                  "lines": [{"line": w.number, "reason": w.reason} for w in why]}
        for suffix, content in ((".ndjson", bad), (".reason.json", orjson.dumps(reason))):
            target = self.damaged_folder / (segment.stem + suffix)
            tmp = target.with_name("." + target.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        if segment.name not in self._parked:  # a retry after a failed lake write parks again
            self._parked.add(segment.name)
            self.stats.parked_segments += 1
            self.stats.parked_lines += len(why)
        log.warning("spool: parked %d unreadable line(s) of %s in %s (%s)", len(why),
                    segment.name, self.damaged_folder,
                    ", ".join(f"line {w.number}: {w.reason}" for w in why[:5]))

    def purge_damaged(self, now: float) -> int:
        """Delete what ``damaged/`` holds that was last written more than ``DAMAGED_KEEP_DAYS``
        before ``now`` (``time.time()``): parked lines, their reasons, and the temporary file of
        a park a crash cut short. Returns how many files went."""
        cutoff = now - DAMAGED_KEEP_DAYS * 86400
        gone = 0
        with contextlib.suppress(FileNotFoundError):
            for p in self.damaged_folder.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if p.is_file() and p.stat().st_mtime < cutoff:
                        p.unlink()
                        gone += 1
        return gone

    def flush_segment(self, segment: Path) -> int:
        """Write one closed segment to the raw lake and delete it; returns its record count.
        Its lines are checked one by one (unreadable ones parked), and the object is named by
        the oldest ``ingest_ts`` among them."""
        try:
            data = segment.read_bytes()
        except OSError as e:
            raise SegmentUnreadable(e.errno, f"cannot read {segment.name}: {e}") from e
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a write cut short: never acknowledged
            self.stats.dropped_partial_lines += 1
            log.warning("spool: dropped a partial last line (%d bytes, never acknowledged) of %s",
                        len(data) - end, segment.name)
        data = data[:end]
        oldest = None
        if data:
            data, bad, why, oldest = self._check_lines(data)
            if why:
                self._park(segment, bad, why)
        if data:
            assert oldest is not None
            self.lake.write_records(oldest, gzip_object(data), object_id=self._object_id(segment))
            self.stats.flushed_objects += 1
            self.stats.flushed_records += data.count(b"\n")
        segment.unlink()
        return data.count(b"\n")

    def recover(self) -> int:
        """Flush the segments a previous process left behind (before serving). Raises if the
        raw lake refuses a write or a segment cannot be read: the flusher then retries."""
        self.acquire()  # never another live collector's segments
        n = 0
        unreadable: SegmentUnreadable | None = None
        for seg in self._closed_segments():
            try:
                n += self.flush_segment(seg)
            except SegmentUnreadable as e:  # as in flush(): the others go on
                unreadable = unreadable or e
                continue
            self.stats.recovered_segments += 1
        if unreadable is not None:
            raise unreadable
        return n

    def pending_bytes(self) -> int:
        total = 0
        for p in self.folder.glob("seg-*.ndjson"):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    def pending_segments(self) -> int:
        return sum(1 for _ in self.folder.glob("seg-*.ndjson"))

    # --- the writer and the flusher ----------------------------------------------------------

    async def start(self) -> None:
        self.acquire()  # before recovery: the segments in the folder must not be a live one's
        try:
            await asyncio.to_thread(self.recover)
        except Exception as e:  # the lake is down: serve anyway, the flusher retries
            self._flush_failed(e)
        self._queue = asyncio.Queue()
        self._writer_task = asyncio.create_task(self._writer())
        self._flusher_task = asyncio.create_task(self._flusher())

    async def append(self, data: bytes) -> None:
        """Returns once ``data`` (complete lines) is on disk; raises ``OSError`` if it cannot
        be, and then none of it is in the spool."""
        assert self._queue is not None, "the spool is not started"
        if self._stopping.is_set():
            raise OSError(errno.ESHUTDOWN, "the spool is stopping")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((data, fut))
        await fut

    def _write_durably(self, blob: bytes) -> None:
        if self._fd is None:
            self._open_segment()
        fd, start = self._fd, self._size
        assert fd is not None
        try:
            _write_all(fd, blob)
        except OSError:
            # Not acknowledged: cut it back out, so the segment holds only whole, acknowledged
            # lines, and start a new segment (this one may sit at a size limit).
            try:
                os.ftruncate(fd, start)
                os.fsync(fd)
            except OSError:
                pass  # a partial last line left behind is dropped when the segment is flushed
            self._size = start
            self._close_segment()
            raise
        self._size += len(blob)

    async def _writer(self) -> None:
        assert self._queue is not None
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            async with self._lock:
                try:
                    await asyncio.to_thread(self._write_durably, b"".join(d for d, _ in items))
                except Exception as e:
                    self.stats.write_failures += 1
                    self.health.last_write_error = describe_error(e)
                    log.error("spool: a write failed, %d request(s) answered 503: %s",
                              len(items), e)
                    for _, fut in items:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                self.health.last_write_error = None
                big = self._size >= self.flush_bytes
            for _, fut in items:
                if not fut.done():
                    fut.set_result(None)
            if big:
                self._wake.set()

    def retry_delay(self) -> float:
        n = self.health.failing_flushes
        return min(RETRY_MAX, min(RETRY_FIRST, self.flush_seconds) * 2 ** max(n - 1, 0))

    async def _flusher(self) -> None:
        while not self._stopping.is_set():
            if self.health.failing_flushes:
                # backing off: only stopping cuts the wait short (not a segment filling up)
                event, wait = self._stopping, self.retry_delay()
            else:
                event, wait = self._wake, self.flush_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait)
            if self._stopping.is_set():
                return  # stop() flushes once more itself
            self._wake.clear()
            await self._flush_logged()
            if self.health.last_write_error:
                await self._probe_writes()

    # What a probe writes: a request body's worth (the collector's bound on a body is 64 KiB).
    PROBE_BYTES = 64 * 1024

    async def _probe_writes(self) -> None:
        """Clear the write error once the spool's file system takes a request's worth again.
        Only a write cleared it, and writes come from requests: an idle collector stayed
        ``failing`` (503 on /healthz) after its disk had room again (found in review: the
        image's health check and any router sending traffic by it then never sent the request
        that would have told)."""
        probe = self.folder / ".probe"

        def write() -> None:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, bytes(self.PROBE_BYTES))
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)

        async with self._lock:  # not beside a request's write: they share the room
            try:
                await asyncio.to_thread(write)
            except OSError:
                return
            if self.health.last_write_error:
                log.warning("spool: the spool's file system takes writes again")
            self.health.last_write_error = None

    async def _flush_logged(self) -> bool:
        try:
            await self.flush()
        except Exception as e:
            self._flush_failed(e)
            return False
        if self.health.failing_flushes:
            log.warning("spool: flushing to the raw lake works again after %d failure(s)",
                        self.health.failing_flushes)
        self.health.flush_error = None
        self.health.failing_flushes = 0
        self.health.flush_failing_since = None
        self.health.last_flush_at = time.time()
        return True

    def _flush_failed(self, e: BaseException) -> None:
        self.stats.flush_failures += 1
        self.health.failing_flushes += 1
        self.health.flush_error = (
            f"spool_segment_unreadable: {errno.errorcode.get(e.errno or 0, 'EIO')}"
            if isinstance(e, SegmentUnreadable) else f"raw_lake_write_failed: {describe_error(e)}")
        if self.health.flush_failing_since is None:
            self.health.flush_failing_since = time.time()
        log.error("spool: a flush to the raw lake failed (%d in a row; next try in %.1f s; "
                  "%d segment(s) wait in the spool): %r", self.health.failing_flushes,
                  self.retry_delay(), self.pending_segments(), e)

    async def flush(self) -> None:
        """Close the current segment, then write every closed segment to the lake, oldest
        first; raises if one fails (it and the rest stay for the next try). A segment that
        cannot be read does not hold back the others."""
        async with self._lock:
            self._close_segment()
            segments = self._closed_segments()
        unreadable: SegmentUnreadable | None = None
        for seg in segments:
            try:
                await asyncio.to_thread(self.flush_segment, seg)
            except SegmentUnreadable as e:  # this segment's trouble: go on with the others
                unreadable = unreadable or e
            # anything else (the lake refusing writes) stops here: the others would fail alike
        if unreadable is not None:
            raise unreadable

    def flusher_running(self) -> bool:
        return self._flusher_task is not None and not self._flusher_task.done()

    async def stop(self) -> None:
        """Graceful shutdown: stop taking appends, write what is waiting, flush."""
        self._stopping.set()  # appends from now on fail (503): none waits for a gone writer
        if self._queue is not None:
            while not self._queue.empty():
                await asyncio.sleep(0.01)
        # Under the lock: a write under way finishes first (cancelled mid-write, its thread would
        # go on writing to a segment file that the flush below closes).
        async with self._lock:
            if self._writer_task is not None:
                self._writer_task.cancel()
        self._wake.set()
        # The flusher is not cancelled: a flush under way finishes (cancelled, it would leave
        # its closed segment for the next start, or write it after stop returned).
        await asyncio.gather(*(t for t in (self._writer_task, self._flusher_task) if t),
                             return_exceptions=True)
        if not await self._flush_logged():
            log.error("spool: stopping with %d segment(s) not flushed; the next start "
                      "delivers them", self.pending_segments())
        self.release()
