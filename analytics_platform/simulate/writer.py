"""Write simulated traffic into the raw lake exactly as Firehose would (CONTRACT §2).

Records are what the ingest handler stores: scrubbed at the edge (ingest/privacy.py, applied to
each distinct page, title and referrer once), a consented visitor's ids, or for everyone else no
id and a ``visitor_hash`` of the UTC day of arrival (a keyed hash of a per-day salt and the
visitor, standing in for the handler's HMAC of address and browser).

Records are formatted by one DuckDB query per day of arrival (vectorised: no Python per event),
grouped into 5-minute buffers, gzipped and written as one object per buffer under the hour of the
buffer's oldest record. Python only touches whole objects.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from analytics_platform.contract import EVENT_TYPES, MAX_PROPS_VALUE_CHARS, SCHEMA_VERSION
from analytics_platform.ingest.country import country_of
from analytics_platform.ingest.privacy import scrub, scrub_url
from analytics_platform.lake import RawLake, gzip_object
from analytics_platform.simulate import model as m
from analytics_platform.simulate.traffic import US, Traffic

BUFFER_SECONDS = 300  # Firehose's default buffering interval

# One JSON line per delivery, fields in the contract's order (see contract.make_raw_record);
# absent optional fields are left out, not written as null. Low-cardinality parts arrive as
# pre-rendered JSON fragments (Arrow dictionaries), so this is pure concatenation; the input is
# already sorted and DuckDB keeps insertion order for a plain projection.
RECORD_SQL = """
SELECT
    '{"event_type":"' || event_type
    || '","event_id":"' || event_id
    || '","session_id":' || coalesce('"' || session_id || '"', 'null')
    || coalesce(',"visitor_id":"' || visitor_id || '"', '')
    || page_fragment
    || coalesce(referrer_fragment, '')
    || coalesce(utm_fragment, '')
    || screen_fragment
    || ',"event_ts":"' || strftime(make_timestamp(event_ts_us), '%Y-%m-%dT%H:%M:%S.%gZ') || '"'
    || CASE WHEN sent_ts_us >= 0
            THEN ',"sent_ts":"'
                 || strftime(make_timestamp(sent_ts_us), '%Y-%m-%dT%H:%M:%S.%gZ') || '"'
            ELSE '' END
    || coalesce(props_fragment, '')
    || ',"ingest_ts":"' || strftime(make_timestamp(ingest_us), '%Y-%m-%dT%H:%M:%S.%gZ')
    || '","user_agent":' || user_agent_json
    || ',"schema_version":' || $schema_version
    || coalesce(',"visitor_hash":"' || visitor_hash || '"', '')
    || ',"consent":' || CASE WHEN consent THEN 'true' ELSE 'false' END
    || coalesce(country_fragment, '') || '}' || chr(10) AS line
FROM chunk
"""


@dataclass
class WriteReport:
    objects: int
    records: int
    bytes_written: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


def uuid_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random version-4 UUID strings, made in bulk (no Python object per value)."""
    b = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    h = np.empty((n, 32), dtype=np.uint8)
    h[:, 0::2] = hexdigits[b >> 4]
    h[:, 1::2] = hexdigits[b & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, _UUID_HEX_POS] = h
    offsets = np.arange(0, (n + 1) * 36, 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.reshape(-1)))


_UUID_HEX_POS = [i for i in range(36) if i not in (8, 13, 18, 23)]
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit value of each 64-bit input (wrapping)."""
    x = x.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def visitor_hashes(seed: int, visitor: np.ndarray, ingest_us: np.ndarray) -> pa.Array:
    """16 hex digits per delivery: the same for one visitor on one UTC day of arrival, another
    the next day (a new salt), as the handler's ``visitor_hash``."""
    day = (ingest_us // (86400 * US)).astype(np.uint64)
    salt = _mix64(day ^ _mix64(np.full(len(day), seed, dtype=np.uint64)))
    b = _mix64(_mix64(visitor.astype(np.uint64) + np.uint64(1)) ^ salt).astype(">u8")
    b = b.view(np.uint8).reshape(-1, 8)
    h = np.empty((len(day), 16), dtype=np.uint8)
    h[:, 0::2] = _HEX[b >> 4]
    h[:, 1::2] = _HEX[b & 0x0F]
    offsets = np.arange(0, (len(day) + 1) * 16, 16, dtype=np.int32)
    return pa.StringArray.from_buffers(len(day), pa.py_buffer(offsets),
                                       pa.py_buffer(h.reshape(-1)))


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _dictionary(indices: np.ndarray, fragments: list[str | None]) -> pa.DictionaryArray:
    """A column of JSON fragments: ``indices`` into ``fragments`` (``None`` → null)."""
    # bool even when empty (a day cut at "until" a minute after midnight has no fragment:
    # np.array([]) is float, which "~" refuses)
    valid = np.array([f is not None for f in fragments], dtype=bool)
    idx = pa.array(indices.astype(np.int32), mask=~valid[indices])
    return pa.DictionaryArray.from_arrays(idx, pa.array([f or "" for f in fragments]))


def _fragments(traffic: Traffic) -> dict[str, np.ndarray | list[str | None]]:
    """Pre-rendered JSON for every value of the low-cardinality fields."""
    pages = [
        f',"page_path":{_json(scrub_url(p.path))},"page_host":{_json(m.SITE_HOST)},'
        f'"page_title":{_json(scrub(p.title))}'
        for p in m.PAGES
    ]
    # Referrer: the source's (landing page) or the previous page of the site (later pages).
    referrers = [
        f',"referrer":{_json(scrub_url(s.referrer))}' if s.referrer else None for s in m.SOURCES
    ] + [f',"referrer":{_json(scrub_url(m.SITE_ORIGIN + p.path))}' for p in m.PAGES]
    utm_cols = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
    utms = [
        "".join(f',"{c}":{_json(scrub(getattr(s, c)))}' for c in utm_cols if getattr(s, c))
        or None
        for s in m.SOURCES
    ]
    screens = [
        f',"screen_width":{w},"screen_height":{h}' for d in m.DEVICES for w, h in m.SCREENS[d]
    ]
    uas = [_json(ua) for d in m.DEVICES for ua in m.USER_AGENTS[d]] + [
        _json(ua) for ua in m.BOT_USER_AGENTS
    ]
    # CONTRACT §2: the country of each time zone (the handler's own mapping), on page views
    countries = []
    for zone in m.TIME_ZONES:
        c = country_of({"time_zone": zone}, {}, behind_cloudfront=False)
        countries.append(f',"country":"{c[0]}","country_source":"{c[1]}"' if c else None)
    return {"pages": pages, "referrers": referrers, "utms": utms, "screens": screens,
            "uas": uas, "countries": countries}


def _path_prop(path: str) -> str:
    """A path in props as the handler stores it (ingest/core.py's scrub_event)."""
    return scrub_url(scrub(path, max_chars=MAX_PROPS_VALUE_CHARS), max_chars=MAX_PROPS_VALUE_CHARS)


def _props(traffic: Traffic, etype: str, variant: int, prop: int) -> dict | None:
    """The props of an event of type ``etype``, variant and ``prop`` (the events' int column)."""
    exp = {"experiment": m.EXPERIMENT, "variant": m.VARIANTS[variant]}
    if etype == "page_view":
        return exp
    if etype == "cta_click":
        return {"cta": "book_call", **exp}
    if etype == "scroll_depth":
        return {"depth": prop}
    if etype in ("time_on_page", "engagement"):
        return {"seconds": prop}
    if etype in ("form_start", "form_submit"):
        return {"form": ("book_call", "contact")[prop]}
    if etype == "custom":
        return {"name": "video_play"}
    if etype == "outbound":
        return {"host": m.OUTBOUND_HOSTS[prop]}
    if etype == "download":
        path, ext = m.DOWNLOADS[prop]
        return {"ext": ext, "file": path}
    if etype == "not_found":  # the previous page of the site (its index + 1), if any
        return {"from": _path_prop(m.PAGES[prop - 1].path)} if prop else None
    if etype == "web_vitals":
        row = traffic.vitals[prop]
        return {k: (int(v) if k in ("lcp", "inp") else float(v))
                for k, v in zip(("lcp", "inp", "cls", "ttfb"), row, strict=True) if v == v}
    return None  # exit_intent


def delivery_table(traffic: Traffic, phase_us: int) -> pa.Table:
    """Every delivery with the columns RECORD_SQL formats, sorted as the objects hold them."""
    d, ev, s = traffic.deliveries, traffic.events, traffic.sessions
    rng = np.random.default_rng(traffic.config.seed + 2)
    bucket = (d["ingest_us"] - phase_us) // (BUFFER_SECONDS * US)
    order = np.lexsort((d["ingest_us"], bucket))
    e = d["event_idx"][order]
    sess = ev["session_idx"][e]
    f = _fragments(traffic)
    event_ids = uuid_strings(rng, len(ev["t_us"]))
    session_ids = uuid_strings(rng, len(s["start_us"]))
    n_vis = int(s["visitor_idx"].max()) + 1 if len(s["visitor_idx"]) else 0
    visitor_ids = uuid_strings(rng, n_vis)
    vis = s["visitor_idx"][sess]
    visitor_col = visitor_ids.take(pa.array(vis)).to_numpy(zero_copy_only=False)
    consent = s["consent"][sess]
    ingest_sorted = d["ingest_us"][order]
    prev = ev["prev_page_idx"][e].astype(np.int64)
    ref_idx = np.where(prev >= 0, len(m.SOURCES) + prev, s["source_idx"][sess])
    etype = ev["type"][e].astype(np.int64)
    variant = s["variant"][sess].astype(np.int64)
    prop = ev["prop"][e].astype(np.int64)
    # props: rendered once per distinct (type, variant, prop)
    base = 1 << 32
    key = (etype * 2 + variant) * base + prop
    uniq, inv = np.unique(key, return_inverse=True)
    props = [_props(traffic, EVENT_TYPES[int(k // base) // 2], int(k // base) % 2, int(k % base))
             for k in uniq]
    props_frag = [f',"props":{_json(p)}' if p else None for p in props]
    page_view = etype == EVENT_TYPES.index("page_view")
    zones = np.where(page_view, s["tz_idx"][sess], len(f["countries"]))
    return pa.table({
        "bucket": bucket[order],
        "ingest_us": d["ingest_us"][order],
        "event_type": pa.DictionaryArray.from_arrays(
            pa.array(etype.astype(np.int32)), pa.array(list(EVENT_TYPES))),
        "event_id": event_ids.take(pa.array(e)),
        "session_id": session_ids.take(pa.array(sess, mask=~consent)),
        "visitor_id": pa.array(visitor_col, mask=~consent, type=pa.string()),
        "visitor_hash": pc.if_else(pa.array(consent), None,
                                   visitor_hashes(traffic.config.seed, vis, ingest_sorted)),
        "consent": pa.array(consent),
        "page_fragment": _dictionary(ev["page_idx"][e], f["pages"]),
        "referrer_fragment": _dictionary(ref_idx, f["referrers"]),
        "utm_fragment": _dictionary(s["source_idx"][sess], f["utms"]),
        "screen_fragment": _dictionary(s["screen_idx"][sess], f["screens"]),
        "props_fragment": _dictionary(inv, props_frag),
        "country_fragment": _dictionary(zones, [*f["countries"], None]),
        "user_agent_json": _dictionary(s["ua_idx"][sess], f["uas"]),
        "event_ts_us": d["event_ts_us"][order],
        "sent_ts_us": d["sent_ts_us"][order],
    })


def _object_id(seed: int, bucket: int) -> str:
    return str(uuid.UUID(bytes=hashlib.md5(f"{seed}:{bucket}".encode()).digest(), version=4))


def _objects(
    buckets: np.ndarray, ingest: np.ndarray, lines: pa.Array
) -> Iterator[tuple[int, int, memoryview, int]]:
    """(bucket, oldest ingest µs, NDJSON bytes, record count) per buffer of sorted rows."""
    if len(buckets) == 0:
        return
    lines = lines.cast(pa.large_string())  # 64-bit offsets: a day can exceed 2 GiB of text
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)
    offsets = offsets[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(data_buf)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)]
    for s, e in zip(starts, ends, strict=True):
        yield int(buckets[s]), int(ingest[s]), data[offsets[s] : offsets[e]], int(e - s)


def write_traffic(
    traffic: Traffic, lake: RawLake, progress: bool = True, threads: int = 2
) -> WriteReport:
    """Format every delivery of ``traffic`` as a raw record and write the Firehose objects.

    Buffers are 5-minute windows with a seeded phase (Firehose's buffers are not aligned to the
    clock), so an object can straddle an hour: it belongs to the hour of its oldest record.
    """
    t0 = time.perf_counter()
    seed = traffic.config.seed
    phase_us = int(np.random.default_rng(seed + 1).integers(0, BUFFER_SECONDS)) * US
    table = delivery_table(traffic, phase_us)
    buckets = table.column("bucket").to_numpy()
    ingest = table.column("ingest_us").to_numpy()
    n = table.num_rows
    con = duckdb.connect()
    con.execute(f"SET threads TO {max(1, threads)}")
    per_day = 86400 // BUFFER_SECONDS
    # Format a day of arrivals at a time (a day boundary is a buffer boundary) to bound memory.
    day_of = buckets // per_day
    bounds = np.flatnonzero(np.r_[True, day_of[1:] != day_of[:-1], True]) if n else np.array([0])
    objects = written = nbytes = 0
    bar = tqdm(total=n, unit="rec", unit_scale=True, desc="writing raw lake", disable=not progress)

    def compress(item: tuple[int, int, memoryview, int]) -> tuple[int, int, bytes, int]:
        b, oldest_us, body, count = item
        return b, oldest_us, gzip_object(body), count

    # Compression runs in threads (it releases the GIL); writes stay in this thread, where many
    # small files are faster than from competing threads.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for lo, hi in itertools.pairwise(bounds):
            chunk = table.slice(lo, hi - lo)  # noqa: F841  (scanned by name below)
            lines = con.sql(RECORD_SQL, params={"schema_version": SCHEMA_VERSION}).to_arrow_table()
            col = lines.column("line").combine_chunks()
            for b, oldest_us, blob, count in pool.map(
                compress, _objects(buckets[lo:hi], ingest[lo:hi], col)
            ):
                oldest = datetime.fromtimestamp(oldest_us / US, UTC)
                # Simulated data can be made again: no fsync; the rename keeps it atomic.
                lake.write_records(oldest, blob, object_id=_object_id(seed, b), durable=False)
                objects += 1
                written += count
                nbytes += len(blob)
                bar.update(count)
    bar.close()
    con.close()
    return WriteReport(objects, written, nbytes, time.perf_counter() - t0)
