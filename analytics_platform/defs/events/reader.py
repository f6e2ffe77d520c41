"""Read raw objects into an Arrow table of lines, without a Python object per record.

Objects are decompressed on a thread pool, and their newlines found there with numpy (isal and
numpy release the GIL, so two cores work on two objects at once). A damaged object (truncated,
garbage after a member, a bad byte) is read as far as it decompresses: its complete records are
kept and the unreadable rest is reported, never fatal (CONTRACT §3.1). Each line *keeps its
newline*, so an object's Arrow column is its decompressed buffer itself with the line starts
as offsets: a million records cost a few vectorised passes and no copy of the text (joining
the objects' text first, and one boolean array the size of it, cost more in page faults than
the scan).

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
    """The lines of some raw objects: ``lines`` has columns obj (index into the objects given to
    :func:`read_lines`), pos (0-based line number in its object) and line (bytes, *with* its
    trailing ``\\n``; blank lines, empty or of JSON whitespace alone, are dropped)."""

    lines: pa.Table
    # objects (or their tails) that could not be decompressed: the object, the error, and the
    # line number the unreadable part starts at (the number of lines read before it)
    corrupt: list[tuple[RawObject, str, int]] = field(default_factory=list)
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


# Newlines are looked for in slices of this many bytes: the comparison's boolean array stays
# small and is reused, instead of one the size of the object.
_SCAN_BYTES = 1 << 22


@dataclass
class _Text:
    text: bytes
    ends: np.ndarray  # the position of every b"\n" in text (text ends with one)
    error: str | None = None  # why the rest of the object could not be read (None: all read)


_DECOMPRESS_ERRORS = (OSError, EOFError, ValueError, zlib.error)
_FEED = 1 << 16


def _recover(data: bytes) -> tuple[bytes, str]:
    """Everything that decompresses of a damaged object, member after member (Firehose writes
    one gzip member per object, a concatenation of several is valid gzip too), and why the rest
    could not be read. Only damaged objects come here (the fast path has failed on them), so
    plain zlib in 64 KiB pieces: a piece that fails is fed again byte by byte from a copy of the
    decompressor, so no byte that decompresses before the damage is lost."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        i = pos
        try:
            while i < len(data) and not d.eof:
                before = d.copy()
                try:
                    out.append(d.decompress(data[i : i + _FEED]))
                    i = min(i + _FEED, len(data))
                except zlib.error:
                    d = before
                    # raises at the damaged byte, with all that came before it kept
                    while not d.eof and i < len(data):
                        out.append(d.decompress(data[i : i + 1]))
                        i += 1
        except zlib.error as e:
            where = f"{i - pos:,} bytes into the gzip member at byte {pos:,}" if i > pos else (
                f"byte {pos:,} does not start a gzip member")
            return b"".join(out), f"{type(e).__name__}: {e} ({where})"
        if not d.eof:
            return b"".join(out), (f"EOFError: the object ends inside the gzip member at byte "
                                   f"{pos:,} (truncated)")
        pos = i - len(d.unused_data)
    return b"".join(out), "OSError: damaged gzip object (every member decompressed)"


def _decompress(data: bytes) -> _Text:
    """The object's text; for a damaged one, what could be read of it and the error
    (CONTRACT §3.1: every complete record of a damaged object is kept)."""
    error = None
    try:
        text = igzip.decompress(data)
    except _DECOMPRESS_ERRORS:
        text, error = _recover(data)
        error = error[:500]
    if text and not text.endswith(b"\n"):
        text += b"\n"  # the last record of an object may lack its newline (or be cut short)
    buf = np.frombuffer(text, dtype=np.uint8)
    ends = [np.flatnonzero(buf[i : i + _SCAN_BYTES] == 0x0A) + i
            for i in range(0, len(buf), _SCAN_BYTES)]
    return _Text(text, np.concatenate(ends) if ends else np.empty(0, np.int64), error)


# JSON's whitespace but the newline, which ends every line (RFC 8259 §2).
_JSON_SPACE = b" \t\r"


def _is_space(b: np.ndarray) -> np.ndarray:
    return (b == 0x20) | (b == 0x09) | (b == 0x0D)


_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="gunzip")
_SCHEMA = pa.schema({"obj": pa.int32(), "pos": pa.int64(), "line": pa.large_binary()})


def _lines(obj: int, t: _Text) -> pa.Table:
    """One object's lines: the decompressed buffer with the line starts as Arrow offsets."""
    ends = t.ends
    starts = np.r_[np.int64(0), ends[:-1] + 1]
    line_array = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(starts),
        [None, pa.py_buffer(np.r_[starts, np.int64(len(t.text))]), pa.py_buffer(t.text)])
    table = pa.table([pa.array(np.full(len(starts), obj, np.int32)),
                      pa.array(np.arange(len(starts), dtype=np.int64)), line_array],
                     schema=_SCHEMA)
    # Blank lines are no records (CONTRACT §2): empty ones, and those of JSON whitespace alone
    # (space, tab, CR; "   " or the "\r" of an extra CRLF), which the JSON parser would call
    # invalid_json. Filtered after numbering, so the other lines keep their `pos` (raw_pos
    # counts every line of the object). A whitespace-only line starts and ends with
    # whitespace, and a record almost never does (a CRLF record ends with "\r" but starts
    # with "{"): two comparisons per line, and only the lines that do both are looked at in
    # full, in Python.
    keep = ends > starts
    buf = np.frombuffer(t.text, dtype=np.uint8)
    # (an empty line's `last` is another line's newline, or the text's last byte for a first
    # line: it is dropped already)
    first, last = buf[starts], buf[ends - 1]
    maybe = np.flatnonzero(keep & _is_space(first) & _is_space(last))
    for i in maybe.tolist():
        if not t.text[starts[i] : ends[i]].strip(_JSON_SPACE):
            keep[i] = False
    return table if keep.all() else table.filter(pa.array(keep))


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
    tables: list[pa.Table] = []
    corrupt: list[tuple[RawObject, str, int]] = []
    for i, t in zip(indexes, texts, strict=True):
        if t.error is not None:
            corrupt.append((objects[i], t.error, len(t.ends)))
        if len(t.ends):
            tables.append(_lines(i, t))
    del texts
    table = pa.concat_tables(tables) if tables else _SCHEMA.empty_table()
    # DuckDB scans an Arrow table one record batch per thread: one big batch would leave every
    # core but one idle. Slices are views, nothing is copied.
    table = pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), _SCHEMA)
    return RawLines(table, corrupt, raw_bytes)


def objects_table(objects: list[RawObject]) -> pa.Table:
    """``raw_objects`` as records.sql joins it (``obj``, ``key``, ``raw_hour``): the pipeline's
    events step and the dashboard's Realtime read raw lines through the same SQL."""
    return pa.table({
        "obj": pa.array(range(len(objects)), pa.int32()),
        "key": pa.array([o.key for o in objects], pa.string()),
        "raw_hour": pa.array([o.hour.replace(tzinfo=None) for o in objects], pa.timestamp("us")),
    })
