"""The event contract (CONTRACT §1–2): what a browser may send and what the ingest side stores.

This module is the only place where the rules are stated. Each rule is data (:data:`FIELDS`,
:data:`PROPS_RULES`, the limits below); :func:`validate_event` applies them in Python (the ingest
handler), and the pipeline's cleaning SQL is generated from the same data, so the two can never
drift apart. Every refusal carries a stable *reason code* (``rule:field``) that the handler returns
in its 400 body and the pipeline writes to ``quarantine.reason``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

try:  # the collector's environment has orjson; the Lambda's zip is the standard library only
    import orjson
except ImportError:  # pragma: no cover - exercised by the Lambda package test
    orjson = None

SCHEMA_VERSION = 1

EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "cta_click",
    "scroll_depth",
    "time_on_page",
    "form_start",
    "form_submit",
    "exit_intent",
    "custom",
    # issue 19: what Plausible and Umami report besides page views (CONTRACT §1)
    "outbound",
    "download",
    "not_found",
    "engagement",
    "web_vitals",
)

MAX_BATCH_EVENTS = 50
MAX_BODY_BYTES = 64 * 1024
MAX_PROPS_KEYS = 20
# Limits stated in CONTRACT §1, so that one event cannot carry a payload.
MAX_PROPS_KEY_CHARS = 64
MAX_PROPS_VALUE_CHARS = 512

# A session ends after this long without an event (CONTRACT §4): the tracker renews its
# session_id after it (analytics.js), and the pipeline cuts the events of one visitor_hash with
# it (defs/sessions). Written here once for the pipeline and the simulator.
SESSION_INACTIVITY_MINUTES = 30

SCROLL_DEPTHS: tuple[int, ...] = (25, 50, 75, 100)
TIME_MILESTONES: tuple[int, ...] = (30, 60, 180, 300)
# Engaged seconds in one `engagement` event: at most a day (a tab left visible overnight is
# still one event, not a payload).
MAX_ENGAGED_SECONDS = 86_400
# Web vitals (CONTRACT §1): LCP, INP and TTFB in milliseconds (an hour at most: beyond it, a clock
# jump rather than a page), CLS unitless (a layout shift score; the worst pages measure in
# single digits).
MAX_VITAL_MS = 3_600_000
MAX_CLS = 1_000
# A host as URL().hostname gives it (IPv6 literals in brackets), or an address host after the
# edge scrub (CONTRACT §2 stores `1.2.3.4` as `(ip)`, `[::1]` as `[(ip)]`): without the second
# form the pipeline would quarantine an outbound click the edge had accepted. A file extension.
HOST_PATTERN = r"(?:[A-Za-z0-9._:\[\]-]{1,253}|\[?\(ip\)\]?)"
EXT_PATTERN = r"[A-Za-z0-9]{1,16}"

# Patterns match the whole value (Python's re.fullmatch, DuckDB's regexp_full_match).
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# ISO-8601 with an explicit UTC designator or offset (naive times are ambiguous and refused),
# years 1970–2999, at most microseconds. Day-of-month validity (no 30 February) is checked by
# parsing.
TIMESTAMP_PATTERN = (
    r"(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
_UUID_RE = re.compile(UUID_PATTERN)
_TS_RE = re.compile(TIMESTAMP_PATTERN)

Kind = Literal["string", "uuid", "timestamp", "integer", "boolean", "props"]


@dataclass(frozen=True)
class Field:
    """One field of the client event (CONTRACT §1)."""

    name: str
    kind: Kind
    required: bool = False
    max_chars: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    allowed: tuple[str, ...] | None = None


FIELDS: tuple[Field, ...] = (
    Field("event_type", "string", required=True, allowed=EVENT_TYPES),
    Field("event_id", "uuid", required=True),
    # Optional since issue 18: without consent the tracker sends no id, and the pipeline makes
    # sessions from the handler's visitor_hash (CONTRACT §2, §4).
    Field("session_id", "uuid"),
    Field("visitor_id", "uuid"),
    Field("page_path", "string", required=True, max_chars=2048),
    # CONTRACT §1 bounds these two: a DNS name is at most 253 characters, and browsers cut
    # document.referrer at 4,096.
    Field("page_host", "string", max_chars=253),
    Field("page_title", "string", max_chars=512),
    Field("referrer", "string", max_chars=4096),
    Field("utm_source", "string", max_chars=256),
    Field("utm_medium", "string", max_chars=256),
    Field("utm_campaign", "string", max_chars=256),
    Field("utm_content", "string", max_chars=256),
    Field("utm_term", "string", max_chars=256),
    Field("screen_width", "integer", min_value=0, max_value=20_000),
    Field("screen_height", "integer", min_value=0, max_value=20_000),
    Field("event_ts", "timestamp", required=True),
    Field("sent_ts", "timestamp"),
    Field("props", "props"),
    # The browser's IANA time zone (Intl.DateTimeFormat().resolvedOptions().timeZone): never
    # stored, the handler maps it to a country and drops it (CONTRACT §2; ingest/country.py).
    # The longest IANA name is 32 characters.
    Field("time_zone", "string", max_chars=64),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)

# Fields the ingest side adds to every stored record (CONTRACT §2); a reader checks them after the
# client fields.
RAW_FIELDS: tuple[Field, ...] = (
    Field("ingest_ts", "timestamp", required=True),
    Field("user_agent", "string"),
    Field("schema_version", "integer", required=True, min_value=SCHEMA_VERSION,
          max_value=SCHEMA_VERSION),
    # Optional: records stored before issue 18 have neither.
    Field("visitor_hash", "string", max_chars=16),  # ingest/privacy.py: the day's keyed hash
    Field("consent", "boolean"),  # the event came with the tracker's consented visitor_id
    # issue 19: the country (ISO 3166-1 alpha-2, never a region or city) and where it came from,
    # `cloudfront` or `time_zone` (ingest/country.py); records stored before have neither.
    Field("country", "string", max_chars=2),
    Field("country_source", "string", max_chars=10),
)
RAW_EXTRA_FIELDS: tuple[str, ...] = tuple(f.name for f in RAW_FIELDS)


@dataclass(frozen=True)
class OneOf:
    """A rule across fields of a stored record: at least one of ``fields`` is present (not
    ``null``), else the record is refused as ``rule:field``."""

    fields: tuple[str, ...]
    rule: str
    field: str
    message: str


# Checked after every field's own rules (CONTRACT §2).
RECORD_RULES: tuple[OneOf, ...] = (
    # a session comes from the tracker's session_id, or is made from the handler's visitor_hash:
    # a record with neither could only be a session of its own
    OneOf(("session_id", "visitor_hash"), "missing", "session_id",
          "a stored record needs a session_id or a visitor_hash"),
)
RAW_FIELD_NAMES: tuple[str, ...] = FIELD_NAMES + RAW_EXTRA_FIELDS
# Client fields read by the handler and never stored (CONTRACT §2): the time zone is finer than
# a country, so only the country it maps to is kept.
NOT_STORED: tuple[str, ...] = ("time_zone",)
STORED_FIELD_NAMES: tuple[str, ...] = tuple(n for n in FIELD_NAMES if n not in NOT_STORED)


@dataclass(frozen=True)
class PropsRule:
    """A rule on one key of ``props`` for one event type."""

    event_type: str
    key: str
    required: bool
    allowed_numbers: tuple[int, ...] | None = None
    number_range: tuple[int, int] | None = None  # a number between the two (inclusive)
    pattern: str | None = None  # a string matching it whole
    # none of the three: any non-empty string


PROPS_RULES: tuple[PropsRule, ...] = (
    PropsRule("scroll_depth", "depth", required=True, allowed_numbers=SCROLL_DEPTHS),
    PropsRule("time_on_page", "seconds", required=True, allowed_numbers=TIME_MILESTONES),
    PropsRule("custom", "name", required=True),
    PropsRule("outbound", "host", required=True, pattern=HOST_PATTERN),
    PropsRule("download", "ext", required=True, pattern=EXT_PATTERN),
    PropsRule("engagement", "seconds", required=True, number_range=(0, MAX_ENGAGED_SECONDS)),
    PropsRule("web_vitals", "lcp", required=False, number_range=(0, MAX_VITAL_MS)),
    PropsRule("web_vitals", "inp", required=False, number_range=(0, MAX_VITAL_MS)),
    PropsRule("web_vitals", "cls", required=False, number_range=(0, MAX_CLS)),
    PropsRule("web_vitals", "ttfb", required=False, number_range=(0, MAX_VITAL_MS)),
)


@dataclass(frozen=True)
class PropsOneOf:
    """At least one of ``keys`` in the props of ``event_type`` (``props_missing:props``),
    checked after the keys' own rules."""

    event_type: str
    keys: tuple[str, ...]


PROPS_ONE_OF: tuple[PropsOneOf, ...] = (PropsOneOf("web_vitals", ("lcp", "inp", "cls", "ttfb")),)


@dataclass(frozen=True)
class Violation:
    """Why one event (or the whole body) was refused."""

    rule: str
    field: str | None = None
    index: int | None = None
    message: str = ""

    @property
    def code(self) -> str:
        """The stable reason code, e.g. ``too_long:page_path``."""
        return f"{self.rule}:{self.field}" if self.field else self.rule

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.code, "rule": self.rule, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.index is not None:
            out["index"] = self.index
        return out


def parse_timestamp(value: str) -> datetime | None:
    """Parse a contract timestamp to an aware UTC datetime, or None if it breaks the format."""
    if not isinstance(value, str) or not _TS_RE.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def format_timestamp(ts: datetime) -> str:
    """The contract's timestamp text: ISO-8601 UTC with milliseconds and ``Z``."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _is_int(value: Any) -> bool:
    # JSON has one number type; bool is an int subclass in Python but not a number in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_field(f: Field, value: Any) -> Violation | None:
    if f.kind in ("string", "uuid", "timestamp"):
        if not isinstance(value, str):
            return Violation("wrong_type", f.name, message=f"{f.name} must be a string")
        if f.required and value == "":
            return Violation("empty", f.name, message=f"{f.name} must not be empty")
        if f.max_chars is not None and len(value) > f.max_chars:
            return Violation(
                "too_long", f.name, message=f"{f.name} is longer than {f.max_chars} characters"
            )
        if f.allowed is not None and value not in f.allowed:
            return Violation(
                "unknown_event_type",
                f.name,
                message=f"{f.name} must be one of {', '.join(f.allowed)}",
            )
        if f.kind == "uuid" and not _UUID_RE.fullmatch(value):
            return Violation("not_uuid", f.name, message=f"{f.name} must be a UUID")
        if f.kind == "timestamp" and parse_timestamp(value) is None:
            return Violation(
                "bad_timestamp",
                f.name,
                message=(
                    f"{f.name} must be ISO-8601 with Z or an offset, "
                    "e.g. 2026-02-01T12:00:00.000Z"
                ),
            )
        return None
    if f.kind == "integer":
        if not _is_int(value):
            return Violation("wrong_type", f.name, message=f"{f.name} must be an integer")
        if not (f.min_value <= value <= f.max_value):  # type: ignore[operator]
            return Violation(
                "out_of_range",
                f.name,
                message=f"{f.name} must be between {f.min_value} and {f.max_value}",
            )
        return None
    if f.kind == "boolean":
        if not isinstance(value, bool):
            return Violation("wrong_type", f.name, message=f"{f.name} must be true or false")
        return None
    if f.kind == "props":
        return None  # checked by _check_props, which knows the event type
    raise AssertionError(f.kind)


def _check_props(event_type: str, props: Any) -> Violation | None:
    if not isinstance(props, dict):
        return Violation("wrong_type", "props", message="props must be an object")
    if len(props) > MAX_PROPS_KEYS:
        return Violation(
            "props_too_many_keys", "props", message=f"props has more than {MAX_PROPS_KEYS} keys"
        )
    if any(key == "" or len(key) > MAX_PROPS_KEY_CHARS for key in props):
        return Violation(
            "props_bad_key",
            "props",
            message=f"props keys must be 1 to {MAX_PROPS_KEY_CHARS} characters",
        )
    for key, value in props.items():
        flat = isinstance(value, (str, bool)) or (
            isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
        )
        if not flat or (isinstance(value, str) and len(value) > MAX_PROPS_VALUE_CHARS):
            return Violation(
                "props_bad_value",
                f"props.{key}",
                message=(
                    f"props.{key} must be a string (≤ {MAX_PROPS_VALUE_CHARS} characters), "
                    "a number or a boolean"
                ),
            )
    for rule in PROPS_RULES:
        if rule.event_type != event_type:
            continue
        value = props.get(rule.key)
        if value is None:
            if rule.required:
                return Violation(
                    "props_missing",
                    f"props.{rule.key}",
                    message=f"{event_type} needs props.{rule.key}",
                )
            continue
        is_number = _is_int(value) or isinstance(value, float)
        if rule.allowed_numbers is not None:
            if not is_number or value not in rule.allowed_numbers:
                return Violation(
                    "props_invalid",
                    f"props.{rule.key}",
                    message=f"props.{rule.key} must be one of {rule.allowed_numbers}",
                )
        elif rule.number_range is not None:
            lo, hi = rule.number_range
            if not is_number or not lo <= value <= hi:
                return Violation(
                    "props_invalid",
                    f"props.{rule.key}",
                    message=f"props.{rule.key} must be a number from {lo} to {hi}",
                )
        elif rule.pattern is not None:
            if not isinstance(value, str) or not re.fullmatch(rule.pattern, value):
                return Violation(
                    "props_invalid",
                    f"props.{rule.key}",
                    message=f"props.{rule.key} must match {rule.pattern}",
                )
        elif not isinstance(value, str) or value == "":
            return Violation(
                "props_invalid",
                f"props.{rule.key}",
                message=f"props.{rule.key} must be a non-empty string",
            )
    for one in PROPS_ONE_OF:
        if one.event_type == event_type and all(props.get(k) is None for k in one.keys):
            return Violation(
                "props_missing",
                "props",
                message=f"{event_type} needs at least one of "
                + ", ".join(f"props.{k}" for k in one.keys),
            )
    if ("experiment" in props) != ("variant" in props):
        return Violation(
            "props_experiment_without_variant",
            "props",
            message="props.experiment and props.variant go together",
        )
    return None


def _check_fields(fields: tuple[Field, ...], record: dict[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    for f in fields:
        value = record.get(f.name)
        if value is None:
            if f.required:
                out.append(Violation("missing", f.name, message=f"{f.name} is required"))
            continue
        v = _check_field(f, value)
        if v is not None:
            out.append(v)
    return out


def validate_event(event: Any) -> list[Violation]:
    """Every rule of CONTRACT §1 that ``event`` breaks, in the order of :data:`FIELDS`.

    An empty list means the event is valid. ``null`` counts as absent for optional fields (many
    trackers send it); unknown fields are ignored (and never stored, see :func:`make_raw_record`).
    """
    if not isinstance(event, dict):
        return [Violation("not_an_object", message="an event must be a JSON object")]
    out = _check_fields(FIELDS, event)
    if not any(v.field == "event_type" for v in out):
        # Absent props still break the rules of event types that need a key (scroll_depth…).
        props = event.get("props")
        v = _check_props(str(event["event_type"]), {} if props is None else props)
        if v is not None:
            out.append(v)
    return out


def validate_raw_record(record: Any) -> list[Violation]:
    """Every rule a stored record breaks: the client event's, then the ingest fields'."""
    out = validate_event(record)
    if isinstance(record, dict):
        out += _check_fields(RAW_FIELDS, record)
        out += [Violation(r.rule, r.field, message=r.message) for r in RECORD_RULES
                if all(record.get(f) is None for f in r.fields)]
    return out


@dataclass
class BodyResult:
    """The outcome of checking one request body: the valid events and the refused ones."""

    status: int
    events: list[dict[str, Any]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    is_batch: bool = False

    def response(self) -> dict[str, Any]:
        """The JSON body the ingest endpoint answers with."""
        out: dict[str, Any] = {"accepted": len(self.events)}
        if self.violations:
            out["rejected"] = len({v.index for v in self.violations}) if self.is_batch else 1
            out["errors"] = [v.to_dict() for v in self.violations]
        return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# A run of 19+ digits may be an integer beyond 64 bits, which orjson reads as a float; the json
# module keeps it an int (a 20-digit screen_width is "out_of_range", not "wrong_type").
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads_strict(body: bytes) -> Any:
    """Parse JSON as RFC 8259 has it: UTF-8, no NaN/Infinity, no lone surrogate escapes (which
    could never be written back out as UTF-8). Raises ValueError."""
    if orjson is not None and not _LONG_DIGITS.search(body):
        # orjson is strict already (it refuses all three) and 3-4× faster; anything it refuses
        # goes through the json module below, so the two paths answer alike.
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
        encode_json(value)  # lone surrogates fail here
    except RecursionError:
        # nesting deeper than orjson's 1,024 levels is deeper than the json module goes too: a
        # client's bad body (400 invalid_json), not the server's failure
        raise ValueError("JSON nested too deep") from None
    return value


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (the stored form of a record)."""
    if orjson is not None:
        try:
            # orjson writes the same JSON as the json module (a float may be spelled otherwise:
            # 1e-7, not 1e-07), 5-10× faster on the collector's hot path; it refuses integers
            # beyond 64 bits, which the json module takes.
            return orjson.dumps(value)
        except TypeError:
            pass  # (a lone surrogate lands here too, and fails below as a ValueError)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check_body(body: bytes) -> BodyResult:
    """Check a request body: one event or a batch (CONTRACT §1).

    Status 202 when at least one event is valid (a batch with bad events keeps the good ones and
    reports the bad ones by index), 400 when none is, 413 over the size or count limit.
    """
    if len(body) > MAX_BODY_BYTES:
        return BodyResult(
            413,
            violations=[
                Violation("body_too_large", message=f"the body is over {MAX_BODY_BYTES} bytes")
            ],
        )
    try:
        parsed = loads_strict(body)
    except ValueError:
        return BodyResult(400, violations=[Violation("invalid_json", message="body is not JSON")])
    if isinstance(parsed, list):
        if not parsed:
            return BodyResult(
                400, violations=[Violation("empty_batch", message="the batch has no events")]
            )
        if len(parsed) > MAX_BATCH_EVENTS:
            return BodyResult(
                413,
                violations=[
                    Violation(
                        "batch_too_large",
                        message=f"a batch holds at most {MAX_BATCH_EVENTS} events",
                    )
                ],
                is_batch=True,
            )
        result = BodyResult(202, is_batch=True)
        for i, event in enumerate(parsed):
            problems = validate_event(event)
            if problems:
                result.violations.extend(
                    Violation(v.rule, v.field, i, v.message) for v in problems
                )
            else:
                result.events.append(event)
        if not result.events:
            result.status = 400
        return result
    problems = validate_event(parsed)
    if problems:
        return BodyResult(400, violations=problems)
    return BodyResult(202, events=[parsed])


def make_raw_record(
    event: Mapping[str, Any], ingest_ts: datetime | str, user_agent: str | None,
    visitor_hash: str | None = None, consent: bool | None = None,
    country: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The record stored for one *valid* event (CONTRACT §2): its contract fields plus ingest
    fields.

    ``ingest_ts`` may be given already formatted (a batch formats its arrival time once).
    Unknown fields and ``null`` values are dropped, but ``session_id`` is always there: ``null``
    says the pipeline makes the session (from ``visitor_hash``). The handler gives ``consent``
    (whether the event came with a visitor id: the tracker sends one only with consent) and,
    for an event without a session id, ``visitor_hash``. No IP address, cookie or other header
    is ever added. ``country``: ``(code, source)`` (ingest/country.py); the event's
    ``time_zone`` is never stored (:data:`NOT_STORED`).
    """
    record = {name: event[name] for name in STORED_FIELD_NAMES if event.get(name) is not None}
    record.setdefault("session_id", None)
    record["ingest_ts"] = (ingest_ts if isinstance(ingest_ts, str)
                           else format_timestamp(ingest_ts))
    record["user_agent"] = user_agent or ""
    record["schema_version"] = SCHEMA_VERSION
    if visitor_hash is not None:
        record["visitor_hash"] = visitor_hash
    if consent is not None:
        record["consent"] = consent
    if country is not None:
        record["country"], record["country_source"] = country
    return record


def encode_record(record: Mapping[str, Any]) -> bytes:
    """A record as stored: one JSON object followed by ``\\n`` (CONTRACT §2)."""
    return encode_json(record) + b"\n"


def encode_records(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(encode_record(r) for r in records)
