"""Issue 21: the faster statements write the same as the simple ones.

The events step checks props and scrubs them, and cleans the page and source texts, once per
distinct value, and writes the same files however the hours are batched (below); the
`sessions` step's statements are held to a simple one in test_fast_sessions.py.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics_platform import duck, layout, sql
from analytics_platform.defs.events import assets, validation
from analytics_platform.defs.events.assets import CLEANED_TEXTS
from analytics_platform.duck import connect
from analytics_platform.lake import RawLake, open_raw_lake
from analytics_platform.storage import Lake
from analytics_platform_tests.raw_events import event, iso

# The events step checks the props rules, and scrubs props, once per distinct (event type, props
# type, props text), cleans the page and source texts once per distinct text, and joins the
# results back to the records (validation.validated_sql); it reads the fields' texts with
# json_transform, and scrub_props keeps a props text it would only write again without a scrub
# by the cheaper branch (duck.py). The simple way, one evaluation per record with the list of
# texts, every field's own cleaning and scrub_props's scrubbing rewrite, is written out below
# from the same generated pieces.
SIMPLE_SCRUB_PROPS = f"""
CREATE OR REPLACE MACRO simple_scrub_props(p) AS CASE
    WHEN p IS NULL OR NOT (contains(p, '\\') OR regexp_matches(p, {duck._sql(duck._MAYBE)})) THEN p
    WHEN try_cast(try_cast(p AS JSON) AS MAP(VARCHAR, JSON)) IS NULL THEN scrub(p)
    ELSE {duck._props_rewritten(scrubbed=True)} END"""
SIMPLE_TEXTS = {
    "page_path": "clean_path(s_page_path)",
    "page_host": "scrub(lower(s_page_host))",
    "page_title": "scrub(s_page_title)",
    "referrer": r"""nullif(scrub(regexp_replace(lower(regexp_extract(s_referrer,
        '^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#:]+)', 1)), '^www\.', '')), '')""",
    **{f: f"scrub(s_{f})" for f in ("utm_source", "utm_medium", "utm_campaign", "utm_content",
                                     "utm_term")},
}
KEPT = [f.name for f in validation.EXTRACTED if f.name != "props"]


def simple_reasons_and_props(source: str) -> str:
    return f"""
    WITH parsed AS (SELECT *, coalesce(json_valid(text), false) AS is_json FROM {source}),
    extracted AS (
        SELECT *, CASE WHEN is_json THEN json_type(text, {validation._PATHS}) END AS t,
               CASE WHEN is_json THEN json_extract_string(text, {validation._PATHS}) END AS s
        FROM parsed),
    typed AS (
        SELECT *, {validation.typed_columns_sql()},
               CASE WHEN t_props = 'OBJECT' THEN s_props::JSON END AS p FROM extracted),
    mapped AS (SELECT *, try_cast(p AS MAP(VARCHAR, JSON)) AS pm FROM typed)
    SELECT n, {validation.reason_sql(raw=True)} AS reason,
           simple_scrub_props(CASE WHEN t_props = 'OBJECT' THEN s_props END) AS props,
           {", ".join(f"{e} AS {f}" for f, e in SIMPLE_TEXTS.items())},
           CASE WHEN {validation.reason_sql(raw=True)} IS NULL
                THEN [{", ".join(f"s_{f}" for f in KEPT)}] END AS texts
    FROM mapped"""


def _tricky_lines() -> list[str]:
    """Records whose props repeat, differ only by event type, hold addresses or escapes, break
    a rule or are no object; among good records of other kinds and lines that are no JSON."""
    base = {"event_id": "7d3c3a4e-3b8e-4f0a-9c1e-2f6d7a8b9c0d", "page_path": "/a",
            "event_ts": "2026-03-02T12:00:00Z", "ingest_ts": "2026-03-02T12:00:01Z",
            "session_id": "1c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f", "schema_version": 1}
    props: list[object] = [
        None, {}, [], "x", 3, {"depth": 50}, {"depth": 50.0}, {"depth": 33}, {"seconds": 30},
        {"seconds": 86_400}, {"seconds": -1}, {"name": "signup"}, {"name": ""},
        {"host": "example.org"}, {"host": "[2001:db8::1]"}, {"host": "a b"}, {"ext": "pdf"},
        {"ext": "p.df"}, {"lcp": 2500, "cls": 0.05}, {"ttfb": 841.3}, {"cls": 1001},
        {"lcp": None}, {"experiment": "e"}, {"experiment": "e", "variant": "b"},
        {"email": "jamie@example.com", "ip": "10.1.2.3"}, {"jamie@example.com": 1},
        {"v": "1.2.3.4,5.6.7.8"}, {"note": "a\nb\u0001c", "x": "\u00011.2.3.4"},
        {"k" * 65: 1}, {"": 1}, {"nested": {"a": 1}}, {"list": [1]}, {"long": "x" * 513},
        {f"k{i}": i for i in range(21)}, {"ipv6": "fe80::1%eth0", "t": "10:30"},
    ]
    props += [  # as the tracker writes them, compact: the cheaper branch keeps the same text
        {"lcp": 2500, "cls": 0.05, "ttfb": 841.3}, {"cls": 1.50, "lcp": 1e300},
        {"nested": {"a": "10.1.2.3"}, "cls": 0.5}, {"k" * 65: 0.5, "j": "x"},
        {"q": 'say "10.1.2.3" or "jamie@example.com"', "cls": 0.5},
    ]
    # page and source texts, as sent: queries, addresses, upper case, ports, user parts
    texts = {
        "page_path": ["/account", "/a?email=jamie@example.com", "/b#x", "/signup?t=S\n&x",
                      "/users/jamie@example.com/x", "/ip/10.0.0.1", "/caf\u00e9", ""],
        "page_host": ["WWW.Example.ORG", "example.org", "10.1.2.3", "[::1]", "Ex\u200bample.org"],
        "page_title": ["Hi jamie@example.com", "v1.2.3", "Caf\u00e9", "a\u200bb@example.org",
                       "10:30"],
        "referrer": ["https://www.Google.com/search?q=x", "http://u:pw@evil.example:8080/p",
                     "android-app://com.x", "not a url", "https://10.0.0.1/",
                     "HTTPS://WWW.EXAMPLE.ORG", "https://jamie@example.com@x.org/"],
        "utm_source": ["newsletter", "jamie@example.com", "fe80::1"],
        "utm_campaign": ["spring", "10:30", "a%40b.org"],
        "utm_term": ["x", "2001:db8::1"],
    }
    lines: list[str] = []
    for i in range(40):  # many rows, so that a vector mixes kinds and selections are sparse
        for event_type in ("page_view", "scroll_depth", "time_on_page", "custom", "outbound",
                           "download", "engagement", "web_vitals", "nope"):
            for j, p in enumerate(props):
                record = {**base, "event_type": event_type}
                for k, (field, values) in enumerate(texts.items()):
                    if (i + j + k) % 3:
                        record[field] = values[(i * 7 + j + k) % len(values)]
                if p is not None:
                    record["props"] = p
                if (i + j) % 7 == 0:
                    record["props_cls"] = 0.1 * i  # an unknown field, ignored
                compact = (",", ":") if j >= len(props) - 5 else None
                lines.append(json.dumps(record, ensure_ascii=(i + j) % 2 == 0,
                                        separators=compact))
        # web vitals whose numbers are all different, as in real traffic
        lines.append(json.dumps({**base, "event_type": "web_vitals",
                                 "props": {"lcp": 1000 + i, "cls": i / 1000, "ttfb": i + 0.5}}))
    lines += ["{", "[1,2]", "null", '{"a":1}{"b":2}', '{"props":{"a":1,"a":"x@y.org"},'
              '"event_type":"custom"}']
    return lines


def test_props_checked_once_per_distinct_value_agree_with_every_record() -> None:
    con = connect()
    con.execute(SIMPLE_SCRUB_PROPS)
    lines = _tricky_lines()
    source = "(SELECT unnest($lines) AS text, generate_subscripts($lines, 1) AS n)"
    fast = validation.validated_sql(source, raw=True,
                                    per_props={"props": "scrub_props(p_text)"},
                                    per_text=(CLEANED_TEXTS,
                                              f"scrub({sql.load('events/clean_text')})"))
    cleaned = ", ".join(f"nullif(clean_{f}, '')" if f == "referrer" else f"clean_{f}"
                        for f in CLEANED_TEXTS)
    got = con.execute(f"SELECT n, reason, props, {cleaned}, CASE WHEN reason IS NULL THEN "
                      f"[{', '.join(f's_{f}' for f in KEPT)}] END FROM ({fast}) ORDER BY n",
                      {"lines": lines}).fetchall()
    want = con.execute(f"SELECT * FROM ({simple_reasons_and_props(source)}) ORDER BY n",
                       {"lines": lines}).fetchall()
    assert len(got) == len(want) == len(lines)
    for g, w in zip(got, want, strict=True):
        assert g == w
    # the sample reaches every kind of outcome the joins carry, and scrub_props keeps a text,
    # writes one again without a scrub (a key cut to 64 characters) and scrubs one
    reasons = {r for r, *_ in (row[1:] for row in got)}
    props = con.execute(
        "SELECT p, scrub_props(p) FROM (SELECT DISTINCT CASE WHEN json_type(l, '$.props') = "
        "'OBJECT' THEN json_extract_string(l, '$.props') END AS p "
        "FROM (SELECT unnest($lines) AS l) WHERE json_valid(l))", {"lines": lines}).fetchall()
    assert any(a == b for a, b in props if a is not None)
    assert any(a != b and "(email)" not in b and "(ip)" not in b for a, b in props
               if a is not None)
    cleaned_texts = {v for row in got for v in row[3:3 + len(CLEANED_TEXTS)] if v is not None}
    assert {"/account", "/a", "example.org", "google.com", "evil.example"} <= cleaned_texts
    assert {"(email)", "(ip)"} <= {w for v in cleaned_texts
                                   for w in re.findall(r"\(email\)|\(ip\)", v)}
    # the events step scrubs a cleaned text later, once per batch, only where
    # duck.scrub_maybe_sql says scrub could change it: where it does not, scrub keeps the text
    cut = con.execute(
        "SELECT clean, scrub(clean), coalesce(" + duck.scrub_maybe_sql("clean") + ", false) "
        "FROM (SELECT DISTINCT " + sql.load("events/clean_text") + " AS clean FROM ("
        "SELECT f.field, json_extract_string(l, '$.' || f.field) AS v FROM "
        "(SELECT unnest($lines) AS l) JOIN (SELECT unnest($fields) AS field) f ON true "
        "WHERE json_valid(l)))", {"lines": lines, "fields": list(CLEANED_TEXTS)}).fetchall()
    assert all(a == b for a, b, maybe in cut if not maybe)
    assert sum(a != b for a, b, _ in cut) >= 5 and ("example.org", "example.org", False) in cut
    assert {None, "wrong_type:props", "props_bad_value:props.nested", "props_too_many_keys:props",
            "props_invalid:props.depth", "props_missing:props.name",
            "props_experiment_without_variant:props", "unknown_event_type:event_type",
            "invalid_json"} <= reasons, reasons
    assert any(p is not None and "(email)" in p for _, r, p, *_ in got if r is None)
    assert any(p is not None and "(ip)" in p for _, r, p, *_ in got if r is None)


# Batching: the events step cleans several raw hours in one pass (assets.BATCH_BYTES,
# BATCH_HOURS); how the hours fall into batches must not change a byte of what it writes, an
# hour cleaned alone included. (Until 2026-12-07 several hours went through a temp table of their
# events and an hour alone did not, and the Parquet schemas of the two marked browser, os and
# device_type REQUIRED in one and OPTIONAL in the other: DuckDB decides from the statistics it has.
# Later still, an hour's file marked screen_width REQUIRED when cleaned alone and OPTIONAL when
# batched with an hour that had a record without one: every column is now OPTIONAL,
# storage.NULLABLE.)
DAY = datetime(2026, 3, 5, tzinfo=UTC)


def _raw_hours(raw: RawLake, hours: int, per_hour: int, refused_every: int = 1
               ) -> list[datetime]:
    """Raw hours in two objects each: events on time, late ones (their ts one to three days
    earlier, several sharing a ts), copies of an event in the same and in the next hour, and
    records that break the contract, in every ``refused_every``-th hour (with 2, an odd hour has
    none: a refused record's fields are NULL, so its events have NULL in no column that every
    record holds). Every event has a screen width but one of the first hour's."""
    out = []
    for h in range(hours):
        hour = DAY + timedelta(hours=h)
        lines = []
        for i in range(per_hour):
            n = h * per_hour + i
            late = i % 4 == 0
            ts = (hour - timedelta(days=1 + i % 3, seconds=i % 7 * 61) if late
                  else hour + timedelta(seconds=(i * 37) % 3600))
            e = event(n, n % 97, ts, hour + timedelta(seconds=i) - ts)
            if h or i != 5:
                e["screen_width"] = 1280 + i % 3
            lines.append(json.dumps(e))
            if i % 50 == 0:  # a retried beacon, in this hour and in the next
                lines.append(json.dumps(e))
                if h + 1 < hours:
                    e = {**e, "ingest_ts": iso(hour + timedelta(hours=1, seconds=i))}
                    lines.append(json.dumps(e))
            if i % 60 == 0 and h % refused_every == 0:
                lines += ['{"event_type": "page_view"', json.dumps({**e, "event_type": "nope"})]
        half = len(lines) // 2
        for k, part in enumerate((lines[:half], lines[half:])):
            raw.write_records(hour, gzip.compress("".join(x + "\n" for x in part).encode()),
                              object_id=f"o{k}")
        out.append(hour)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_batching_hours_differently_writes_the_same_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = open_raw_lake(tmp_path / "raw")
    # many hours of few records: DuckDB's partitioned COPY lost the ORDER BY of late_events.sql on
    # these (455 of their 6,400 rows out of order), not on fewer, larger hours
    hours = _raw_hours(raw, hours=32, per_hour=200, refused_every=2)
    written, counted, parallel = {}, {}, []
    # the quarters are cleaned by the two workers at once (assets.WORKERS), each in its own
    # connection; the whole in the caller's connection
    monkeypatch.setattr(assets, "_in_parallel",
                        lambda *a, _real=assets._in_parallel: parallel.append(1) or _real(*a))
    for name, batch_hours in (("quarters", len(hours) // 4), ("all", len(hours)), ("one", 1)):
        monkeypatch.setattr(assets, "BATCH_HOURS", batch_hours)
        lake = Lake(tmp_path / name, remote_url="")
        reported: list = []
        stats = assets.process_hours(connect(), raw, lake, hours, 4, reported.extend)
        assert sorted(s.hour for s in reported) == [s.hour for s in stats] == hours
        written[name], counted[name] = _files(lake.root), [vars(s) for s in stats]
    assert parallel == [1, 1]  # the quarters and the hours one by one
    assert counted["quarters"] == counted["all"] == counted["one"]
    tables = {f.split("/")[0] for f in written["all"]}
    assert tables == {"events", "quarantine", "late_events"}, tables
    assert sum(s.late_events for s in stats) > 0 and sum(s.quarantined for s in stats) > 0
    assert sum(s.duplicates for s in stats) > 0
    for name in ("quarters", "one"):
        assert written[name].keys() == written["all"].keys()
        differ = [f for f in written["all"] if written[name][f] != written["all"][f]]
        assert not differ, (name, differ)
    # whatever the rows: every column OPTIONAL (screen_width has a NULL in the first hour only)
    con = connect()
    every = sql.literal_list(str(lake.root / f) for f in written["all"])
    marks = con.execute(f"SELECT repetition_type, count(*) FROM parquet_schema({every}) "
                        "WHERE name <> 'duckdb_schema' GROUP BY ALL").fetchall()
    assert marks and {m for m, _ in marks} == {"OPTIONAL"}, marks
    assert con.execute(
        f"SELECT count(*) FILTER (screen_width IS NULL), count(*) FROM read_parquet("
        f"{sql.literal_list(str(lake.root / f) for f in written['all'] if f.startswith('events/'))}"
        ")").fetchall()[0] == (1, sum(s.events for s in stats))
    # and each late_events file is in its stated order, (ts, event_id), with ties on ts
    files = sql.literal_list(str(lake.root / f) for f in written["all"]
                             if f.startswith("late_events/"))
    unsorted, ties = con.execute(f"""
        SELECT count(*) FILTER (WHERE prev_ts > ts OR prev_ts = ts AND prev_id >= event_id),
               count(*) FILTER (WHERE prev_ts = ts)
        FROM (SELECT ts, event_id, lag(ts) OVER w AS prev_ts, lag(event_id) OVER w AS prev_id
              FROM read_parquet({files}, filename = true, file_row_number = true)
              WINDOW w AS (PARTITION BY filename ORDER BY file_row_number))""").fetchone()
    assert (unsorted, ties > 0) == (0, True)


def test_a_failing_worker_fails_the_hours_and_stops_the_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that fails (its hour's folder cannot be made: a file is in the way) fails
    process_hours with its own error, once both workers have stopped, and no batch starts after
    it."""
    raw = open_raw_lake(tmp_path / "raw")
    hours = _raw_hours(raw, hours=16, per_hour=100)
    monkeypatch.setattr(assets, "BATCH_HOURS", 2)  # 8 batches for the two workers
    lake = Lake(tmp_path / "out", remote_url="")
    blocked = lake.partition_path("events", layout.hour_folder(hours[5])).parent
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    with pytest.raises(FileExistsError, match=re.escape(blocked.name)):
        assets.process_hours(connect(), raw, lake, hours, 4)
    assert not lake.partition_path("events", layout.hour_folder(hours[-1])).exists()


def test_a_stopped_run_stops_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster stops a run by raising in its thread, here while it waits for the workers (in
    ``progress``): they are interrupted and waited for, and start no batch after it."""
    raw = open_raw_lake(tmp_path / "raw")
    hours = _raw_hours(raw, hours=16, per_hour=100)
    monkeypatch.setattr(assets, "BATCH_HOURS", 2)
    lake = Lake(tmp_path / "out", remote_url="")

    class Stopped(BaseException):
        pass

    def stop(batch: list) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        assets.process_hours(connect(), raw, lake, hours, 4, stop)
    assert not [t for t in threading.enumerate() if t.name.startswith("events-worker")]
    assert not lake.partition_path("events", layout.hour_folder(hours[-1])).exists()


# The events step keeps a props text as it is, without calling scrub_props, when
# duck.props_kept_sql says scrub_props would only write it again the same (0.26-0.32 -> 0.155
# CPU-s per 195k-record chunk of measure 1's hour). Held to the macro itself: on props that
# reach each of its branches, "kept" must mean scrub_props(p) = p. (The step asks it only of an
# object's text: JSON, which json() needs.)
KEPT_CANDIDATES = [
    '{}', '{"cls":0.025}', '{"cls": 0.025}', '{"lcp":2500,"cls":1.50,"ttfb":841.3}',
    '{"lcp":2500,"cls":1.5,"ttfb":841.3}', '{"a":1e300}', '{"a":1E5}', '{"a":-0}', '{"a":1.0}',
    '{"a":12345678901234567890}',
    '{"a":true,"b":null,"c":[1,"x"],"d":{"e":"f"}}', '{"n":{"ip":"10.1.2.3"}}',
    '{"a":1,"a":2}', '{"a":"x","a":"jamie@example.com"}', '{"a":"x@y.org"}',
    '{"jamie@example.com":1}', '{"v":"1.2.3.4"}', '{"t":"10:30"}', '{"h":"fe80::1"}',
    '{"a":"a%40b.org"}', '{"a":"&#64;"}', '{"a":"a\\nb"}', '{"a":"\\u0040"}', '{"a":"\\/"}',
    '{"café":"naïve"}', '{"a":"ja\u200bmie"}', '{"a":"\u2028\u007f"}', '{"a":"/x/y"}',
    '{"' + "k" * 64 + '":1}', '{"' + "k" * 65 + '":1}', '{"a":"' + "x" * 65 + '"}',
    '{"' + "k" * 65 + '":0.5,"j":"x"}', '{"q":"say \\"10.1.2.3\\""}', '[1]', '"x"', '3',
    '{"a":"x" }', '{ "a":"x"}',
]


def test_props_kept_only_where_scrub_props_keeps_them() -> None:
    con = connect()
    kept = duck.props_kept_sql("p", "try_cast(try_cast(p AS JSON) AS MAP(VARCHAR, JSON))")
    rows = con.execute(f"SELECT p, {kept}, scrub_props(p) FROM unnest($ps) t(p)",
                       {"ps": KEPT_CANDIDATES}).fetchall()
    assert len(rows) == len(KEPT_CANDIDATES)
    for p, is_kept, scrubbed in rows:
        if is_kept:
            assert scrubbed == p, p
    # it keeps the common case (compact numbers, as the tracker writes web vitals) and passes on
    # to the macro what the macro changes
    by_text = {p: bool(k) for p, k, _ in rows}
    assert by_text['{"cls":0.025}'] and by_text['{"lcp":2500,"cls":1.5,"ttfb":841.3}']
    assert not any(by_text[p] for p, _, s in rows if s != p)


def test_refused_texts_read_again_are_the_texts_carried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events step leaves every record's text out of the validation's stage and reads the
    refused records' texts again after each chunk (refused_texts.sql). Carrying the text through
    the stage, as before, must write the same quarantine (and events) files: bad JSON, an unknown
    event type, bytes that are not UTF-8, records glued together, an address in props."""
    raw = open_raw_lake(tmp_path / "raw")
    hours = _raw_hours(raw, hours=3, per_hour=150)
    good = event(90_000, 1, hours[1] + timedelta(minutes=5), timedelta(seconds=2))
    glued = (json.dumps(good) + json.dumps({**good, "event_id": "glued-2", "event_type": "x"}))
    bad = [b'{"event_type": "page_view", "page": "caf\xe9"}', glued.encode(),
           json.dumps({**good, "event_id": "p1", "props": {"mail": "me@example.org", "n": []}})
           .encode(), b"[1, 2]", b"not json at all"]
    raw.write_records(hours[1], gzip.compress(b"".join(x + b"\n" for x in bad)), object_id="bad")

    def carried_checked() -> str:
        monkeypatch.setattr(assets, "validated_sql", lambda *a, **k: validation.validated_sql(
            *a, **{**k, "keep_text": True}))
        text = assets._checked_sql.__wrapped__()
        monkeypatch.undo()
        text, n = re.subn(r"NULL::VARCHAR AS text, line,",
                          "CASE WHEN reason IS NOT NULL THEN text END AS text, line,", text)
        text, m = re.subn(r"CASE WHEN line IS NOT NULL THEN 'invalid_json:utf8'",
                          "CASE WHEN text IS NULL THEN 'invalid_json:utf8'", text)
        assert (n, m) == (1, 1), "checked.sql no longer leaves the text out as this test undoes"
        return text

    carried = carried_checked()
    written = {}
    for name in ("read again", "carried"):
        if name == "carried":
            monkeypatch.setattr(assets, "_checked_sql", lambda: carried)
            monkeypatch.setattr(assets, "_refused_texts_sql",
                                lambda: "UPDATE checked SET text = text WHERE false")
        lake = Lake(tmp_path / name.replace(" ", "_"), remote_url="")
        stats = assets.process_hours(connect(), raw, lake, hours, 4)
        written[name] = _files(lake.root)
    assert sum(s.quarantined for s in stats) >= 10
    quarantine = [f for f in written["carried"] if f.startswith("quarantine/")]
    texts = connect().execute(
        f"SELECT count(*), count(raw_text) FROM read_parquet("
        f"{sql.literal_list(str(lake.root / f) for f in quarantine)})").fetchone()
    assert texts[0] >= 10 and texts[1] == texts[0]
    assert written["read again"] == written["carried"]


def test_props_and_texts_scrubbed_once_per_batch_write_what_scrubbing_every_chunk_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events step leaves scrub_props and scrub out of each chunk's statement and scrubs the
    props and the page and source texts that need it once per batch, after its chunks
    (props_scrubbed.sql, texts_scrubbed.sql), and skips quarantine.sql for a batch that refused
    nothing. Scrubbing every distinct props and text with the macros in each chunk's statement,
    and running quarantine.sql for every batch, as before, must write the same files: batches
    of two hours (with refused records) and of one (without; an hour alone is written straight
    from events.sql), an object a chunk, props and texts with addresses and escapes, repeated
    across chunks and hours, among kept ones (a referrer whose host the scrub empties)."""
    raw = open_raw_lake(tmp_path / "raw")
    hours = [DAY + timedelta(hours=h) for h in range(3)]
    props = [{"note": "jamie@example.com", "ip": "10.1.2.3"}, {"a": "x\ny", "v": "1.2.3.4"},
             {"cls": 0.025, "lcp": 2500}, {"h": "fe80::1", "t": "10:30"}, {}]
    texts = [{"page_path": "/u/jamie@example.com?x=1", "referrer": "https://10.0.0.1/a"},
             {"page_title": "v1.2.3 of 10:30", "utm_term": "fe80::1", "page_host": "Ex.COM"},
             {"referrer": "https://\u200b/x"}, {"utm_campaign": "a%40b.org"},
             {"page_path": "/docs/v1.2", "utm_content": "x@y.org"}, {}]
    for h, hour in enumerate(hours):
        for k in range(2):  # the same props in two chunks of the hour, the second's compact
            lines = [json.dumps({**event(10_000 + h * 100 + k * 10 + i, 5, hour, timedelta(0)),
                                 "props": p, **texts[(i + h) % len(texts)]},
                                separators=(",", ":") if k else None)
                     for i, p in enumerate(props)]
            if h < 2:
                lines.append('{"event_type": "page_view"')  # a refused record
            raw.write_records(hour, gzip.compress("".join(x + "\n" for x in lines).encode()),
                              object_id=f"props{k}")
    monkeypatch.setattr(assets, "BATCH_HOURS", 2)
    monkeypatch.setattr(assets, "WORKER_CHUNK_GZ_BYTES", 1)

    def run(name: str) -> Lake:
        lake = Lake(tmp_path / name.replace(" ", "_"), remote_url="")
        stats = assets.process_hours(connect(), raw, lake, hours, 4)
        written[name], counted[name] = _files(lake.root), [vars(s) for s in stats]
        return lake

    written: dict[str, dict[str, bytes]] = {}
    counted: dict[str, list[dict]] = {}
    load = sql.load
    lake = run("per batch")
    monkeypatch.setattr(assets, "PROPS_CHECKED",
                        {"props_text": "scrub_props(p_text)", "props_unscrubbed": "false"})
    monkeypatch.setattr(assets, "TEXTS_CHECKED", ("texts_unscrubbed", "false"))
    clean = sql.load("events/clean_text")
    monkeypatch.setattr(sql, "load", lambda name, **kw: (
        f"scrub({clean})" if name == "events/clean_text" else load(name, **kw)))
    every_chunk = assets._checked_sql.__wrapped__()
    monkeypatch.setattr(sql, "load", load)
    monkeypatch.setattr(assets, "_checked_sql", lambda: every_chunk)
    quarantine = assets._quarantine
    monkeypatch.setattr(assets, "_quarantine",
                        lambda con, corrupt: quarantine(con, corrupt, skip_empty=False))
    run("every chunk")
    assert counted["per batch"] == counted["every chunk"]
    assert [s["quarantined"] for s in counted["per batch"]] == [2, 2, 0]
    assert written["per batch"].keys() == written["every chunk"].keys()
    assert written["per batch"] == written["every chunk"]
    # the props were scrubbed, in both of the batches, and the kept ones kept
    kept = connect().execute(
        f"SELECT list(DISTINCT props ORDER BY props), count(DISTINCT raw_hour) FILTER "
        f"(WHERE props LIKE '%(email)%') FROM read_parquet("
        f"{sql.literal_list(str(lake.root / f) for f in written['per batch'] if 'events/' in f)}"
        f") WHERE props IS NOT NULL").fetchone()
    assert kept[1] == 3, kept
    assert '{"cls":0.025,"lcp":2500}' in kept[0] and not any("jamie" in p for p in kept[0])
    # and the texts, with a referrer's host emptied by the scrub left NULL
    got = connect().execute(
        f"SELECT list(DISTINCT page_path ORDER BY page_path), "
        f"list(DISTINCT referrer_host ORDER BY referrer_host), count(*) FILTER (WHERE "
        f"utm_term = '(ip)' AND page_title = 'v1.2.3 of 10:30') FROM read_parquet("
        f"{sql.literal_list(str(lake.root / f) for f in written['per batch'] if 'events/' in f)})"
        ).fetchone()
    assert got[0] == ["/docs/v1.2", "/p0", "/p1", "/p2", "/u/(email)"], got
    assert got[1] == ["(ip)", None] and got[2] >= 3, got


def test_a_cursor_has_the_pipelines_session_settings() -> None:
    """A cursor of a pipeline connection (duck.cursor: the daily marts' days on two workers) is
    set to UTC itself: DuckDB's own cursor does not inherit SET, and shows the machine's zone
    (``Etc/UTC`` here, anything elsewhere). Macros are the database's, temp views the cursor's."""
    con = connect()
    con.execute("CREATE TEMP VIEW mine AS SELECT 1")
    cur = duck.cursor(con)
    assert cur.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    assert cur.execute("SELECT utc('2026-03-02T10:00:00+02:00')").fetchone() == (
        datetime(2026, 3, 2, 8, 0),)
    assert not cur.execute("SELECT * FROM duckdb_views() WHERE view_name = 'mine'").fetchall()
