"""CONTRACT §1–2: every rule of the event contract, accepted and refused with its reason code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analytics_platform.contract import (
    EVENT_TYPES,
    FIELD_NAMES,
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    check_body,
    encode_record,
    encode_records,
    make_raw_record,
    parse_timestamp,
    validate_event,
)

UUID_A = "0b0f6c2e-5f0a-4c1e-9a9e-0d4b8f1e2a33"
UUID_B = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
UUID_C = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"


def good(**overrides: Any) -> dict[str, Any]:
    event = {
        "event_type": "page_view",
        "event_id": UUID_A,
        "session_id": UUID_B,
        "visitor_id": UUID_C,
        "page_path": "/blog/privacy-first-analytics",
        "page_host": "www.example.com",
        "page_title": "Privacy-first analytics",
        "referrer": "https://www.google.com/",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "utm_content": "hero",
        "utm_term": "analytics",
        "screen_width": 1920,
        "screen_height": 1080,
        "event_ts": "2026-02-01T12:00:00.000Z",
        "sent_ts": "2026-02-01T12:00:02.500Z",
        "props": {"experiment": "cta_copy", "variant": "control"},
    }
    for k, v in overrides.items():
        if v is _DROP:
            event.pop(k, None)
        else:
            event[k] = v
    return event


_DROP = object()


def codes(event: Any) -> list[str]:
    return [v.code for v in validate_event(event)]


def test_a_complete_event_is_valid() -> None:
    assert validate_event(good()) == []


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_every_event_type_is_accepted(etype: str) -> None:
    props = {
        "scroll_depth": {"depth": 75},
        "time_on_page": {"seconds": 180},
        "custom": {"name": "video_play"},
        "cta_click": {"cta": "book_call"},
        "form_start": {"form": "book_call"},
        "outbound": {"host": "github.com"},
        "download": {"ext": "pdf", "file": "/files/report.pdf"},
        "engagement": {"seconds": 42},
        "web_vitals": {"lcp": 1820.4, "inp": 96, "cls": 0.02, "ttfb": 310.7},
    }.get(etype, {})
    assert codes(good(event_type=etype, props=props)) == []


def test_only_required_fields_is_valid() -> None:
    minimal = {k: good()[k] for k in ("event_type", "event_id", "page_path", "event_ts")}
    assert validate_event(minimal) == []


@pytest.mark.parametrize("name", ["event_type", "event_id", "page_path", "event_ts"])
def test_each_required_field_is_required(name: str) -> None:
    assert codes(good(**{name: _DROP})) == [f"missing:{name}"]
    # null is the same as absent
    assert codes(good(**{name: None})) == [f"missing:{name}"]


@pytest.mark.parametrize(
    "name",
    ["session_id", "visitor_id", "page_host", "page_title", "referrer", "utm_source", "utm_medium",
     "utm_campaign", "utm_content", "utm_term", "screen_width", "screen_height", "sent_ts",
     "props", "time_zone"],
)
def test_optional_fields_may_be_absent_or_null(name: str) -> None:
    assert codes(good(**{name: _DROP})) == []
    assert codes(good(**{name: None})) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"event_type": "pageview"}, "unknown_event_type:event_type"),
        ({"event_type": "PAGE_VIEW"}, "unknown_event_type:event_type"),
        ({"event_type": 3}, "wrong_type:event_type"),
        ({"event_id": "not-a-uuid"}, "not_uuid:event_id"),
        ({"event_id": UUID_A + "0"}, "not_uuid:event_id"),
        ({"event_id": UUID_A.replace("-", "")}, "not_uuid:event_id"),
        ({"session_id": 12345}, "wrong_type:session_id"),
        ({"visitor_id": "abc"}, "not_uuid:visitor_id"),
        ({"page_path": ""}, "empty:page_path"),
        ({"page_path": "/" + "a" * 2048}, "too_long:page_path"),
        ({"page_title": "t" * 513}, "too_long:page_title"),
        ({"utm_source": "s" * 257}, "too_long:utm_source"),
        ({"utm_term": "s" * 257}, "too_long:utm_term"),
        ({"page_host": "h" * 254}, "too_long:page_host"),
        ({"referrer": "https://x.com/" + "r" * 4096}, "too_long:referrer"),
        ({"referrer": ["https://x.com"]}, "wrong_type:referrer"),
        ({"screen_width": -1}, "out_of_range:screen_width"),
        ({"screen_width": 20_001}, "out_of_range:screen_width"),
        ({"screen_height": 99_999}, "out_of_range:screen_height"),
        ({"screen_width": "1920"}, "wrong_type:screen_width"),  # numbers as strings
        ({"screen_width": 1920.5}, "wrong_type:screen_width"),
        ({"screen_width": True}, "wrong_type:screen_width"),
        ({"event_ts": "yesterday"}, "bad_timestamp:event_ts"),
        ({"event_ts": "2026-02-01 12:00:00"}, "bad_timestamp:event_ts"),
        ({"event_ts": "2026-02-01T12:00:00"}, "bad_timestamp:event_ts"),  # no zone
        ({"event_ts": "2026-02-30T12:00:00Z"}, "bad_timestamp:event_ts"),
        ({"event_ts": "2026-02-01T25:00:00Z"}, "bad_timestamp:event_ts"),
        ({"event_ts": 1769947200000}, "wrong_type:event_ts"),
        ({"sent_ts": "soon"}, "bad_timestamp:sent_ts"),
        ({"props": "depth=50"}, "wrong_type:props"),
        ({"props": [1, 2]}, "wrong_type:props"),
        ({"props": {"a": {"nested": 1}}}, "props_bad_value:props.a"),
        ({"props": {"a": [1]}}, "props_bad_value:props.a"),
        ({"props": {"a": None}}, "props_bad_value:props.a"),
        ({"props": {"a": "v" * 513}}, "props_bad_value:props.a"),
        ({"props": {"": 1}}, "props_bad_key:props"),
        ({"props": {"k" * 65: 1}}, "props_bad_key:props"),
        ({"props": {f"k{i}": i for i in range(21)}}, "props_too_many_keys:props"),
        ({"props": {"experiment": "x"}}, "props_experiment_without_variant:props"),
        ({"props": {"variant": "b"}}, "props_experiment_without_variant:props"),
        ({"event_type": "scroll_depth", "props": {}}, "props_missing:props.depth"),
        ({"event_type": "scroll_depth", "props": {"depth": 60}}, "props_invalid:props.depth"),
        ({"event_type": "scroll_depth", "props": {"depth": "50"}}, "props_invalid:props.depth"),
        ({"event_type": "time_on_page", "props": {"seconds": 45}}, "props_invalid:props.seconds"),
        ({"event_type": "custom", "props": {"name": ""}}, "props_invalid:props.name"),
        ({"event_type": "custom", "props": {"other": "x"}}, "props_missing:props.name"),
        # issue 19's events
        ({"time_zone": 1}, "wrong_type:time_zone"),
        ({"time_zone": "Z" * 65}, "too_long:time_zone"),
        ({"event_type": "outbound", "props": {}}, "props_missing:props.host"),
        ({"event_type": "outbound", "props": {"host": ""}}, "props_invalid:props.host"),
        ({"event_type": "outbound", "props": {"host": "a.com/path?q"}},
         "props_invalid:props.host"),  # the host only, never a path or query
        ({"event_type": "download", "props": {"file": "/a.pdf"}}, "props_missing:props.ext"),
        ({"event_type": "download", "props": {"ext": ".pdf"}}, "props_invalid:props.ext"),
        ({"event_type": "download", "props": {"ext": "x" * 17}}, "props_invalid:props.ext"),
        ({"event_type": "engagement", "props": {}}, "props_missing:props.seconds"),
        ({"event_type": "engagement", "props": {"seconds": -1}}, "props_invalid:props.seconds"),
        ({"event_type": "engagement", "props": {"seconds": 86_401}},
         "props_invalid:props.seconds"),
        ({"event_type": "engagement", "props": {"seconds": "12"}}, "props_invalid:props.seconds"),
        ({"event_type": "web_vitals", "props": {}}, "props_missing:props"),
        ({"event_type": "web_vitals", "props": {"lcp": "fast"}}, "props_invalid:props.lcp"),
        ({"event_type": "web_vitals", "props": {"inp": -5}}, "props_invalid:props.inp"),
        ({"event_type": "web_vitals", "props": {"cls": 1001}}, "props_invalid:props.cls"),
        ({"event_type": "web_vitals", "props": {"ttfb": 3_600_001}}, "props_invalid:props.ttfb"),
        ({"event_type": "web_vitals", "props": {"lcp": False}}, "props_invalid:props.lcp"),
    ],
)
def test_each_rule_is_refused_with_its_reason(overrides: dict[str, Any], expected: str) -> None:
    assert codes(good(**overrides)) == [expected]


def test_limits_are_inclusive() -> None:
    assert codes(good(page_path="/" + "a" * 2047, page_title="t" * 512, utm_source="s" * 256,
                      screen_width=0, screen_height=20_000)) == []
    assert codes(good(props={f"k{i}": i for i in range(19)} | {"experiment": "e",
                                                                 "variant": "v"})) == [
        "props_too_many_keys:props"
    ]
    assert codes(good(props={f"k{i}": i for i in range(20)})) == []


def test_unicode_counts_characters_not_bytes() -> None:
    # 2,048 characters of 3-byte UTF-8 are within the limit; 2,049 are not.
    assert codes(good(page_path="/" + "页" * 2047, page_title="🚀" * 512)) == []
    assert codes(good(page_path="/" + "页" * 2048)) == ["too_long:page_path"]
    assert codes(good(utm_campaign="été-" * 10, page_title="Ünïcödé ✓")) == []


def test_several_problems_are_all_reported_in_field_order() -> None:
    event = good(event_id="x", page_path=_DROP, screen_width="wide")
    assert codes(event) == ["not_uuid:event_id", "missing:page_path", "wrong_type:screen_width"]


def test_timestamps_accept_zones_and_fractions() -> None:
    assert parse_timestamp("2026-02-01T12:00:00Z") == datetime(2026, 2, 1, 12, tzinfo=UTC)
    assert parse_timestamp("2026-02-01T13:30:00.5+01:30") == datetime(
        2026, 2, 1, 12, 0, 0, 500000, tzinfo=UTC
    )
    assert parse_timestamp("2026-02-01T12:00:00.1234567Z") is None


# --- request bodies -----------------------------------------------------------------------


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_single_event_body() -> None:
    r = check_body(body(good()))
    assert r.status == 202 and len(r.events) == 1 and r.violations == []
    r = check_body(body(good(event_type="nope")))
    assert r.status == 400
    assert r.response()["errors"][0]["reason"] == "unknown_event_type:event_type"


def test_batch_keeps_good_events_and_reports_bad_ones_by_index() -> None:
    batch = [good(), good(event_id="bad"), good(), {"event_type": "page_view"}, "text"]
    r = check_body(body(batch))
    assert r.status == 202
    assert len(r.events) == 2
    bad = {(v.index, v.code) for v in r.violations}
    assert (1, "not_uuid:event_id") in bad
    assert (3, "missing:event_id") in bad
    assert (4, "not_an_object") in bad
    assert r.response()["rejected"] == 3


def test_batch_of_only_bad_events_is_400() -> None:
    r = check_body(body([good(event_id="x"), good(page_path="")]))
    assert r.status == 400 and r.events == []


def test_batch_limits() -> None:
    small = good(page_title=_DROP, referrer=_DROP, props=_DROP)
    assert check_body(body([small] * MAX_BATCH_EVENTS)).status == 202
    over = check_body(body([small] * (MAX_BATCH_EVENTS + 1)))
    assert over.status == 413 and over.violations[0].code == "batch_too_large"
    assert check_body(b"[]").violations[0].code == "empty_batch"


def test_body_size_limit() -> None:
    big = body(good(page_title=None, props={"k": "x" * 500}))
    assert len(big) < MAX_BODY_BYTES
    padded = big[:-1] + b" " * (MAX_BODY_BYTES - len(big)) + b"}"
    assert len(padded) == MAX_BODY_BYTES and check_body(padded).status == 202
    r = check_body(padded + b" ")
    assert r.status == 413 and r.violations[0].code == "body_too_large"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"nope", b'{"a":1}{"b":2}', b"\xff\xfe", b'{"page_path": "\\ud800"}'],
)
def test_not_json_is_refused(raw: bytes) -> None:
    r = check_body(raw)
    assert r.status == 400
    assert r.violations[0].code == "invalid_json"


def test_non_object_json_is_refused() -> None:
    for raw in (b"42", b'"page_view"', b"null", b"true"):
        r = check_body(raw)
        assert r.status == 400 and r.violations[0].code == "not_an_object"


# --- the raw record -------------------------------------------------------------------------


def test_raw_record_keeps_contract_fields_only() -> None:
    event = good(ip="203.0.113.9", cookie="sid=1", extra={"x": 1}, visitor_id=None)
    assert codes(event) == []  # extra fields are ignored...
    rec = make_raw_record(event, datetime(2026, 2, 1, 12, 0, 3, 123456, tzinfo=UTC), "UA/1.0")
    # ...and never stored; nulls are left out.
    assert "ip" not in rec and "cookie" not in rec and "extra" not in rec
    assert "visitor_id" not in rec
    assert rec["ingest_ts"] == "2026-02-01T12:00:03.123Z"
    assert rec["user_agent"] == "UA/1.0" and rec["schema_version"] == 1
    assert list(rec)[: len(FIELD_NAMES) - 2] == [n for n in FIELD_NAMES
                                                  if n not in ("visitor_id", "time_zone")]


def test_the_time_zone_is_never_stored() -> None:
    """CONTRACT §2: the time zone is finer than a country; only the country it maps to is kept."""
    rec = make_raw_record(good(time_zone="Europe/Paris"), datetime.now(UTC), "UA/1.0",
                          country=("FR", "time_zone"))
    assert "time_zone" not in rec
    assert (rec["country"], rec["country_source"]) == ("FR", "time_zone")


def test_encoded_records_are_newline_delimited_json() -> None:
    recs = [make_raw_record(good(page_title="é\n✓"), datetime.now(UTC), None) for _ in range(3)]
    blob = encode_records(recs)
    lines = blob.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert [orjson.loads(line) for line in lines[:-1]] == recs


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.dictionaries(st.sampled_from((*FIELD_NAMES, "other")), json_values, max_size=12),
        st.builds(lambda ov: good(**ov),
                  st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=3)),
    )
)
# an integer beyond 64 bits in props is valid JSON and a valid event: orjson cannot write it,
# the stored form falls back to the json module (contract.encode_json)
@example(good(props={"0": -9223372036854775809}))
def test_any_json_body_is_answered_and_only_valid_events_pass(value: Any) -> None:
    raw = json.dumps(value).encode()
    r = check_body(raw)  # never raises
    assert r.status in (202, 400, 413)
    for event in r.events:
        assert validate_event(event) == []
        rec = make_raw_record(event, datetime.now(UTC), "ua")
        assert set(rec) <= set(FIELD_NAMES) | {"ingest_ts", "user_agent", "schema_version"}
        assert json.loads(encode_record(rec)) == rec  # stored as the collector stores it


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not in RFC 8259")


def _json_module(body: bytes) -> tuple[str, Any]:
    """What a strict parse with the json module alone (the Lambda's) makes of ``body``."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_refuse)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates fail here
    except ValueError:
        return ("refused", None)
    return ("parsed", value)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: f"[{n}, 1.5]".encode()),
    st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNI\\ud8', max_size=24).map(str.encode),
    st.binary(max_size=24),
))
def test_fast_parse_answers_as_the_json_module(body: bytes) -> None:
    # The collector parses with orjson; it must accept, refuse and type exactly as the json
    # module does (integers beyond 64 bits stay integers, NaN and lone surrogates are refused).
    from analytics_platform.contract import loads_strict

    try:
        got: tuple[str, Any] = ("parsed", loads_strict(body))
    except ValueError:
        got = ("refused", None)
    want = _json_module(body)
    assert got[0] == want[0], body
    assert repr(got[1]) == repr(want[1]), body
