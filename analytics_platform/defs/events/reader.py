"""Read raw objects into an Arrow table of lines, without a Python object per record.

Objects are decompressed on a thread pool (isal releases the GIL, so two cores decompress two
objects at once; an object that cannot be decompressed is reported, never fatal). Their bytes
are joined and the lines found with numpy; each line *keeps its newline*, so the Arrow column
is the joined buffer itself with line starts as offsets: a million records cost a few
vectorised passes and no copy of the text.

Large hours are read in chunks (:func:`chunks`) so that memory follows the chunk size, not the
size of the hour.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from isal import igzip

from analytics_platform.lake import RawLake, RawObject

# Compressed bytes per chunk. NDJSON events inflate about sixfold, so a chunk holds roughly
# 150 MB of text (~200k records): big enough that statement overheads vanish, small enough that
# the `events` asset stays well under 1.5 GB on a million-record hour.
CHUNK_GZ_BYTES = 24 * 1024 * 1024
BATCH_ROWS = 16_384


@dataclass
class RawLines:
    """The lines of some raw objects: ``lines`` has columns obj (index into ``objects``), pos
    (0-based line number in its object) and line (bytes, *with* its trailing ``\\n``; blank
    lines are dropped)."""

    objects: list[RawObject]
    lines: pa.Table
    corrupt: list[tuple[RawObject, str]] = field(default_factory=list)
    raw_bytes: int = 0


def chunks(objects: list[RawObject], max_gz_bytes: int = CHUNK_GZ_BYTES) -> Iterator[list[int]]:
    """Indexes of ``objects`` in consecutive groups of at most ``max_gz_bytes`` (an object
    larger than that is a group of its own)."""
    group: list[int] = []
    size = 0
    for i, o in enumerate(objects):
        if group and size + o.size > max_gz_bytes:
            yield group
            group, size = [], 0
        group.append(i)
        size += o.size
    if group:
        yield group


def _decompress(data: bytes) -> bytes | str:
    # Firehose writes one gzip member per object; a truncated or garbled object raises.
    try:
        text = igzip.decompress(data)
    except (OSError, EOFError, ValueError, zlib.error) as e:
        return f"{type(e).__name__}: {e}"[:500]
    if text and not text.endswith(b"\n"):
        text += b"\n"  # the last record of an object may lack its newline
    return text


_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="gunzip")


def read_lines(lake: RawLake, objects: list[RawObject], indexes: list[int] | None = None,
               ) -> RawLines:
    """Decompress and split ``objects`` (or those of them at ``indexes``; ``obj`` in the
    result is then the index into ``objects``)."""
    indexes = list(range(len(objects))) if indexes is None else indexes
    chosen = [objects[i] for i in indexes]
    with lake.local_paths(chosen) as paths:
        datas = [p.read_bytes() for p in paths]
    raw_bytes = sum(map(len, datas))
    texts = list(_POOL.map(_decompress, datas))
    del datas
    chunks_: list[bytes] = []
    obj_of_chunk: list[int] = []
    corrupt: list[tuple[RawObject, str]] = []
    for i, text in zip(indexes, texts, strict=True):
        if isinstance(text, str):
            corrupt.append((objects[i], text))
        elif text:
            chunks_.append(text)
            obj_of_chunk.append(i)
    del texts
    blob = chunks_[0] if len(chunks_) == 1 else b"".join(chunks_)
    sizes = np.fromiter((len(c) for c in chunks_), dtype=np.int64, count=len(chunks_))
    del chunks_
    buf = np.frombuffer(blob, dtype=np.uint8)
    ends = np.flatnonzero(buf == 0x0A)  # positions of '\n'; every chunk ends with one
    starts = np.r_[0, ends[:-1] + 1].astype(np.int64) if len(ends) else np.empty(0, np.int64)
    # Which object each line comes from, and its line number inside that object.
    chunk_of_line = np.searchsorted(np.cumsum(sizes), starts, side="right")
    obj = np.asarray(obj_of_chunk, dtype=np.int32)[chunk_of_line]
    first_line_of_chunk = np.searchsorted(chunk_of_line, np.arange(len(sizes)), side="left")
    pos = np.arange(len(ends)) - first_line_of_chunk[chunk_of_line]
    # Lines are back to back in the buffer, newline included, so the line starts are Arrow's
    # offsets as they are. Blank lines are no records ("\r\n" endings are left to the JSON
    # parser, which allows them).
    offsets = np.r_[starts, len(buf)].astype(np.int64)
    line_array = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(blob)])
    table = pa.table({"obj": pa.array(obj, pa.int32()), "pos": pa.array(pos, pa.int64()),
                      "line": line_array})
    keep = ends > starts
    if not keep.all():
        table = table.filter(pa.array(keep))
    # DuckDB scans an Arrow table one record batch per thread: one big batch would leave every
    # core but one idle. Slices are views, nothing is copied.
    table = pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), table.schema)
    return RawLines(objects, table, corrupt, raw_bytes)
