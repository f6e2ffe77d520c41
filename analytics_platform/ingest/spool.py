"""The collector's write-ahead spool: acknowledged records are on disk before the 2xx, and reach
the raw lake exactly once, even across ``kill -9``.

- Requests append their records to the current segment file. A single writer task takes every
  append waiting, writes them in one ``write`` + ``fsync`` (group commit) and only then lets the
  requests answer: an acknowledged record is durable.
- Every ``flush_seconds`` (or once the segment passes ``flush_bytes``) the segment is closed,
  gzipped and written to the raw lake as one Firehose-shaped object, then deleted. The object's
  name derives from the segment's, so flushing the same segment again (after a crash between
  the write and the delete) replaces the object instead of duplicating it.
- On start, segments left by a previous process are flushed first; a trailing partial line (a
  write cut short, never acknowledged) is dropped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from analytics_platform.contract import parse_timestamp
from analytics_platform.lake import RawLake, gzip_object


@dataclass
class SpoolStats:
    flushed_objects: int = 0
    flushed_records: int = 0
    recovered_segments: int = 0


class Spool:
    def __init__(self, folder: Path, lake: RawLake, flush_seconds: float = 10.0,
                 flush_bytes: int = 8 * 1024 * 1024) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lake = lake
        self.flush_seconds = flush_seconds
        self.flush_bytes = flush_bytes
        self.stats = SpoolStats()
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] | None = None
        self._segment: Path | None = None
        self._fd: int | None = None
        self._size = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._flushes: set[asyncio.Task[None]] = set()  # size-triggered, running
        self._lock = asyncio.Lock()

    # --- segments --------------------------------------------------------------------------

    def _open_segment(self) -> None:
        name = f"seg-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.ndjson"
        self._segment = self.folder / name
        self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0

    def _close_segment(self) -> Path | None:
        seg, fd = self._segment, self._fd
        self._segment, self._fd, self._size = None, None, 0
        if fd is not None:
            os.close(fd)
        return seg

    def flush_segment(self, segment: Path) -> int:
        """Write one closed segment to the raw lake and delete it; returns its record count."""
        data = segment.read_bytes()
        end = data.rfind(b"\n") + 1
        data = data[:end]  # a partial last line was never acknowledged
        if data:
            first = orjson.loads(data[: data.find(b"\n")])
            oldest = parse_timestamp(first["ingest_ts"])
            object_id = str(uuid.UUID(segment.stem.rsplit("-", 1)[-1]))
            self.lake.write_records(oldest, gzip_object(data), object_id=object_id)
            self.stats.flushed_objects += 1
            self.stats.flushed_records += data.count(b"\n")
        segment.unlink()
        return data.count(b"\n")

    def recover(self) -> int:
        """Flush the segments a previous process left behind (before serving)."""
        n = 0
        for seg in sorted(self.folder.glob("seg-*.ndjson")):
            n += self.flush_segment(seg)
            self.stats.recovered_segments += 1
        return n

    def pending_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("seg-*.ndjson"))

    # --- the writer and the flusher ----------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.recover)
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._writer()), asyncio.create_task(self._flusher())]

    async def append(self, data: bytes) -> None:
        """Returns once ``data`` (complete lines) is on disk."""
        assert self._queue is not None, "the spool is not started"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((data, fut))
        await fut

    def _write_durably(self, blob: bytes) -> None:
        if self._fd is None:
            self._open_segment()
        os.write(self._fd, blob)  # type: ignore[arg-type]
        os.fsync(self._fd)  # type: ignore[arg-type]
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
                    for _, fut in items:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                big = self._size >= self.flush_bytes
            for _, fut in items:
                if not fut.done():
                    fut.set_result(None)
            if big:
                # in the background: appends go on into a new segment meanwhile
                self._flush_in_background()

    def _flush_in_background(self) -> asyncio.Task[None]:
        task = asyncio.create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        return task

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            # Shielded: stop() cancels this loop, and a cancelled flush would leave its closed
            # segment on disk (a queued write dropped, or one still running after stop returned)
            # for the next start to recover; stop() waits for it instead.
            await asyncio.shield(self._flush_in_background())

    async def flush(self) -> None:
        """Close the current segment and write it to the lake."""
        async with self._lock:
            seg = self._close_segment()
        if seg is not None:
            await asyncio.to_thread(self.flush_segment, seg)

    async def stop(self) -> None:
        """Graceful shutdown: stop taking appends, write what is waiting, flush."""
        if self._queue is not None:
            while not self._queue.empty():
                await asyncio.sleep(0.01)
        # Under the lock: a write under way finishes first (cancelled mid-write, its thread would
        # go on writing to a segment file that the flush below closes).
        async with self._lock:
            for t in self._tasks:
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush()
