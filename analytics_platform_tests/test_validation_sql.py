"""The pipeline's SQL validation and the ingest handler's Python validation agree, rule for rule."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics_platform.contract import (
    FIELD_NAMES,
    RAW_FIELD_NAMES,
    make_raw_record,
    validate_event,
    validate_raw_record,
)
from analytics_platform.defs.events.validation import validated_sql
from analytics_platform_tests.test_contract import UUID_A, good

CON = duckdb.connect()
SQL = f"SELECT reason FROM ({validated_sql('(SELECT $line::VARCHAR AS text)')})"


def sql_reason(line: str) -> str | None:
    return CON.execute(SQL, {"line": line}).fetchone()[0]


def py_reason(value: Any) -> str | None:
    v = validate_event(value)
    return v[0].code if v else None


scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", UUID_A, "2026-02-01T12:00:00Z", "2026-02-30T12:00:00Z",
                       "2026-02-01T12:00:00.1234567Z", "1969-12-31T23:59:59Z",
                       "2026-02-01T12:00:00+24:00", "page_view", "scroll_depth", "custom",
                       "time_on_page", "x" * 300, "pdf", "example.org", "[::1]", "a b",
                       0.1, 2500.5, 3_600_001, -0.0, "页" * 2049, "e\u0301" * 1100])
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(st.text(max_size=5), c, max_size=4), max_leaves=8)
props = st.dictionaries(
    st.sampled_from(["depth", "seconds", "name", "experiment", "variant", "cta", "", "k" * 65,
                     "host", "ext", "lcp", "inp", "cls", "ttfb"])
    | st.text(max_size=8),
    values, max_size=6,
) | st.dictionaries(st.text(max_size=3), st.integers(0, 9), min_size=19, max_size=22)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=4),
    st.sampled_from(["page_view", "scroll_depth", "time_on_page", "custom", "cta_click",
                     "outbound", "download", "not_found", "engagement", "web_vitals"]),
    props | st.none(),
)
@example({"event_ts": "2026-02-30T12:00:00Z"}, "page_view", None)
@example({}, "scroll_depth", {"depth": 50.0})
@example({}, "scroll_depth", {"depth": True})
@example({}, "page_view", {"a": [1], "": 2})
@example({"screen_width": 1920.0}, "page_view", None)
@example({}, "web_vitals", {"lcp": None, "cls": 0.05})
@example({}, "web_vitals", {"ttfb": 3_600_000.5})
@example({}, "outbound", {"host": "[2001:db8::1]"})
@example({}, "outbound", {"host": "(ip)"})
@example({}, "outbound", {"host": "[(ip)]"})
@example({}, "outbound", {"host": "x(ip)"})
@example({}, "download", {"ext": "PDF", "file": "/a.pdf"})
@example({"time_zone": "Europe/Paris"}, "engagement", {"seconds": 86_400})
def test_sql_and_python_give_the_same_first_reason(
    overrides: dict[str, Any], etype: str, p: dict[str, Any] | None
) -> None:
    event = good(event_type=etype, props=p if p is not None else {
        "depth": 50, "seconds": 60, "name": "n", "host": "example.org", "ext": "pdf", "lcp": 1.5})
    event.update(overrides)
    line = json.dumps(event, ensure_ascii=False)
    assert sql_reason(line) == py_reason(event), line


@pytest.mark.parametrize("line", ["", "{", "[1,2]", "42", '"x"', "null", '{"a":1}{"b":2}'])
def test_not_json_or_not_an_object(line: str) -> None:
    expected = "invalid_json" if line in ("", "{", '{"a":1}{"b":2}') else "not_an_object"
    assert sql_reason(line) == expected


def _boundary_events() -> list[dict[str, Any]]:
    """Each limit of the contract at, just under and just over its edge."""
    from analytics_platform.contract import FIELDS, PROPS_RULES

    out = []
    for f in FIELDS:
        if f.max_chars:
            for n in (f.max_chars - 1, f.max_chars, f.max_chars + 1):
                out.append(good(**{f.name: "/" + "é" * (n - 1)}))
        if f.kind == "integer":
            for v in (f.min_value - 1, f.min_value, f.max_value, f.max_value + 1):
                out.append(good(**{f.name: v}))
        out.append(good(**{f.name: None}))
        out.append(good(**{f.name: ""}))
    for r in PROPS_RULES:
        edges = (r.number_range[0] - 0.001, *r.number_range, r.number_range[1] + 0.001,
                 r.number_range[1] + 1) if r.number_range else ()
        for v in (*(r.allowed_numbers or ()), *edges, 1, 0, "50", None, "", "x", 50.5, "a.b",
                  "x" * 254, "é", True):
            out.append(good(event_type=r.event_type, props={r.key: v}))
        out.append(good(event_type=r.event_type, props=None))
    for n in (19, 20, 21):
        out.append(good(props={f"k{i}": i for i in range(n)}))
    for n in (64, 65):
        out.append(good(props={"k" * n: 1}))
    for n in (512, 513):
        out.append(good(props={"k": "v" * n}))
    return out


@pytest.mark.parametrize("event", _boundary_events())
def test_sql_and_python_agree_at_every_limit(event: dict[str, Any]) -> None:
    line = json.dumps(event, ensure_ascii=False)
    assert sql_reason(line) == py_reason(event), line


RAW_SQL = f"SELECT reason FROM ({validated_sql('(SELECT $line::VARCHAR AS text)', raw=True)})"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(RAW_FIELD_NAMES), values, max_size=4), st.booleans())
@example({"consent": "true"}, False)
@example({"consent": 1}, True)
@example({}, True)  # neither session_id nor visitor_hash: missing:session_id
@example({"visitor_hash": "00000000000000ab"}, True)
@example({"visitor_hash": None, "session_id": None}, False)
@example({"visitor_hash": 7}, True)
def test_stored_records_too(overrides: dict[str, Any], anonymous: bool) -> None:
    """The ingest fields of a stored record (the consent boolean, visitor_hash) and the rule
    across two fields (a session_id or a visitor_hash): SQL and Python agree."""
    record = make_raw_record(good(), "2026-02-01T12:00:01.000Z", "Mozilla/5.0", consent=True)
    if anonymous:  # as the handler stores an event without consent, less its hash
        record.update(session_id=None, consent=False)
        record.pop("visitor_id", None)
    record.update(overrides)
    line = json.dumps(record, ensure_ascii=False)
    problems = validate_raw_record(record)
    want = problems[0].code if problems else None
    assert CON.execute(RAW_SQL, {"line": line}).fetchone()[0] == want, line
