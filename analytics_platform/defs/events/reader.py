"""Read one raw hour into an Arrow table of lines, without a Python object per record.

Objects are decompressed one by one (an object that cannot be decompressed is reported, never
fatal); their bytes are joined and split on ``\\n`` with numpy, so a million records cost a few
vectorised passes, not a million Python strings.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from isal import igzip

from analytics_platform.lake import RawLake, RawObject


@dataclass
class RawHour:
    """The lines of one raw hour: ``lines`` has columns obj (index into ``objects``), pos
    (0-based line number in its object) and line (bytes, no newline)."""

    objects: list[RawObject]
    lines: pa.Table
    corrupt: list[tuple[RawObject, str]] = field(default_factory=list)
    raw_bytes: int = 0


def _decompress(data: bytes) -> bytes:
    # Firehose writes one gzip member per object; a truncated or garbled object raises.
    return igzip.decompress(data)


def read_hour(lake: RawLake, objects: list[RawObject]) -> RawHour:
    """Decompress and split every object of one raw hour."""
    chunks: list[bytes] = []
    obj_of_chunk: list[int] = []
    corrupt: list[tuple[RawObject, str]] = []
    raw_bytes = 0
    with lake.local_paths(objects) as paths:
        for i, (obj, path) in enumerate(zip(objects, paths, strict=True)):
            data = path.read_bytes()
            raw_bytes += len(data)
            try:
                text = _decompress(data)
            except (OSError, EOFError, ValueError, zlib.error) as e:
                corrupt.append((obj, f"{type(e).__name__}: {e}"[:500]))
                continue
            if text and not text.endswith(b"\n"):
                text += b"\n"  # the last record of an object may lack its newline
            chunks.append(text)
            obj_of_chunk.append(i)
    blob = b"".join(chunks)
    buf = np.frombuffer(blob, dtype=np.uint8)
    ends = np.flatnonzero(buf == 0x0A)  # positions of '\n'
    starts = np.r_[0, ends[:-1] + 1] if len(ends) else np.empty(0, dtype=np.int64)
    # Which object each line comes from, and its line number inside that object.
    sizes = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    bounds = np.cumsum(sizes)
    chunk_of_line = np.searchsorted(bounds, starts, side="right")
    obj = np.asarray(obj_of_chunk, dtype=np.int32)[chunk_of_line] if len(ends) else np.empty(
        0, dtype=np.int32
    )
    first_line_of_chunk = np.searchsorted(chunk_of_line, np.arange(len(chunks)), side="left")
    pos = np.arange(len(ends)) - first_line_of_chunk[chunk_of_line] if len(ends) else np.empty(
        0, dtype=np.int64
    )
    # Blank lines are no records ("\r\n" endings are left to the JSON parser, which allows them).
    keep = ends > starts
    starts, ends, obj, pos = starts[keep], ends[keep], obj[keep], pos[keep]
    # Arrow wants the lines back to back: drop the newlines, and the offsets are the running sum
    # of the line lengths.
    compact = buf[buf != 0x0A]
    offsets = np.r_[0, np.cumsum(ends - starts)].astype(np.int64)
    line_array = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(compact)]
    )
    table = pa.table({
        "obj": pa.array(obj, pa.int32()),
        "pos": pa.array(pos, pa.int64()),
        "line": line_array,
    })
    return RawHour(objects, table, corrupt, raw_bytes)

