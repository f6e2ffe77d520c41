"""The ingest handler's logic, independent of its host (AWS Lambda or the local collector).

``Ingestor.prepare`` turns one HTTP request into a response and the raw records to store: CORS
(origin allowlist, preflight), media type, body size, the event contract (CONTRACT §1), the scrub
of every stored text and the enrichment of CONTRACT §2 (``ingest_ts``, ``user_agent``,
``schema_version``, ``consent``, and ``visitor_hash`` for events without a session id). It reads
the ``Origin``, ``Content-Type`` and ``User-Agent`` headers, and the client's address (the peer,
or a configured header from a trusted proxy) only for ``visitor_hash``: the address is never
stored, logged or put in an error (privacy.py, docs/PRIVACY.md). The body is the contract's
(``/v1/events``) or Plausible's (``/api/event``, plausible.py: mapped onto the contract, then
the same steps). ``Ingestor.handle`` also hands
the records to a sink (Firehose, Kinesis, S3); the collector stores them in its own write-ahead
spool instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from analytics_platform.contract import (
    FIELDS,
    MAX_BODY_BYTES,
    MAX_PROPS_VALUE_CHARS,
    check_body,
    encode_json,
    format_timestamp,
    make_raw_record,
)
from analytics_platform.ingest import plausible
from analytics_platform.ingest.privacy import (
    ClientAddress,
    Salts,
    SaltUnavailable,
    salt_store,
    scrub,
    scrub_emails,
    scrub_url,
    utc_day,
    visitor_hash,
)

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "text/plain")  # text/plain: navigator.sendBeacon(string)
EVENTS_PATH = "/v1/events"  # the contract's endpoint (CONTRACT §1)
# The paths the handler answers: the contract's, and Plausible's event API (plausible.py), whose
# bodies become contract events and go through the same checks, scrub and enrichment.
PATHS = (EVENTS_PATH, plausible.PATH)


class SinkError(Exception):
    """The records could not be stored; the client should retry (HTTP 503)."""


class Sink(Protocol):
    def put(self, records: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class IngestConfig:
    """``allowed_origins``: exact origins (``https://www.example.com``) or ``*``."""

    allowed_origins: tuple[str, ...] = ("*",)
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls) -> IngestConfig:
        raw = os.environ.get("ANALYTICS_ALLOWED_ORIGINS", "*")
        return cls(tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip()))

    def allows(self, origin: str | None) -> bool:
        return origin is None or "*" in self.allowed_origins or origin in self.allowed_origins


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, {"content-type": "application/json", **(headers or {})},
                   encode_json(payload))


@dataclass
class Prepared:
    response: Response
    records: list[dict[str, Any]]
    rejected_reasons: list[str]


_MAX_CHARS = {f.name: f.max_chars for f in FIELDS}
_URL_FIELDS = ("page_path", "referrer")
_TEXT_FIELDS = ("page_host", "page_title", "utm_source", "utm_medium", "utm_campaign",
                "utm_content", "utm_term")


def _scrub_value(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    # a value of invisible characters only would become "", which props.name may not be (nor
    # a key: 1 to 64 characters)
    return scrub(v, max_chars=MAX_PROPS_VALUE_CHARS) or ("(blank)" if v else v)


def scrub_event(event: dict[str, Any]) -> dict[str, Any]:
    """A valid event as it may be stored (CONTRACT §2): no e-mail or IP address in any text, no
    query parameter but UTM tags and no fragment in ``page_path`` / ``referrer``, no control or
    invisible characters; each value still within its limit."""
    out = dict(event)
    for name in _URL_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = scrub_url(out[name], max_chars=_MAX_CHARS[name])
    if out["page_path"] == "":  # "?token=…" alone: nothing of it may be kept
        out["page_path"] = "/"
    for name in _TEXT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = scrub(out[name], max_chars=_MAX_CHARS[name])
    props = out.get("props")
    if isinstance(props, dict) and props:
        # a key is scrubbed too ({"jamie@example.com": 1}); the required keys never change
        out["props"] = {_scrub_value(k): _scrub_value(v) for k, v in props.items()}
    return out


class Ingestor:
    """``salts`` (the day's salt for ``visitor_hash``) and ``client_address`` (where the
    client's address comes from) default to the environment: ``ANALYTICS_SALT_URL`` (a folder or
    ``s3://bucket/prefix``; else ``default_salt_dir``, else ``$ANALYTICS_DATA_DIR/salts``),
    ``ANALYTICS_CLIENT_IP_HEADER`` and ``ANALYTICS_TRUSTED_PROXIES``."""

    def __init__(self, config: IngestConfig | None = None, sink: Sink | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 salts: Salts | None = None, client_address: ClientAddress | None = None,
                 default_salt_dir: str | None = None) -> None:
        self.config = config or IngestConfig.from_env()
        self.sink = sink
        self.clock = clock
        self.client_address = client_address or ClientAddress.from_env()
        self._salts = salts
        self._default_salt_dir = default_salt_dir

    @property
    def salts(self) -> Salts:
        """Built on first use: a request that carries session ids never needs one."""
        if self._salts is None:
            url = (os.environ.get("ANALYTICS_SALT_URL") or self._default_salt_dir
                   or os.path.join(os.environ.get("ANALYTICS_DATA_DIR", "data"), "salts"))
            self._salts = Salts(salt_store(url))
        return self._salts

    def _cors(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.config.allows(origin):
            return {}
        return {"access-control-allow-origin": origin, "vary": "Origin"}

    def refuse(self, headers: Mapping[str, str], status: int, reason: str, message: str,
               extra: dict[str, str] | None = None) -> Prepared:
        """A request refused before its body is looked at (size, time, a failure of the host):
        a JSON reason, with the CORS headers the browser needs to read it."""
        return Prepared(Response.json(status, {"reason": reason, "message": message},
                                      {**self._cors(headers.get("origin")), **(extra or {})}),
                        [], [reason])

    def prepare(self, method: str, headers: Mapping[str, str], body: bytes,
                peer: str | None = None, path: str = EVENTS_PATH) -> Prepared:
        """The response to one request and the records it asks to store (``headers`` keys are
        lower case; ``peer`` is the connection's remote address, used for ``visitor_hash``
        only). ``path``: ``/v1/events`` (the contract's body) or ``/api/event`` (Plausible's,
        answered as Plausible answers)."""
        origin = headers.get("origin")
        method = method.upper()
        if method == "OPTIONS":
            if not self.config.allows(origin):
                return Prepared(Response.json(403, {"reason": "origin_not_allowed"}), [],
                                ["origin_not_allowed"])
            return Prepared(Response(204, {
                **self._cors(origin),
                "access-control-allow-methods": "POST, OPTIONS",
                "access-control-allow-headers": "content-type",
                "access-control-max-age": "86400",
            }), [], [])
        cors = self._cors(origin)
        if method != "POST":
            return Prepared(Response.json(405, {"reason": "method_not_allowed"},
                                          {**cors, "allow": "POST, OPTIONS"}), [],
                            ["method_not_allowed"])
        if not self.config.allows(origin):
            return Prepared(Response.json(403, {"reason": "origin_not_allowed"}), [],
                            ["origin_not_allowed"])
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in JSON_TYPES:
            return Prepared(Response.json(415, {
                "reason": "unsupported_media_type",
                "message": "send application/json (or text/plain from sendBeacon)",
            }, cors), [], ["unsupported_media_type"])
        if len(body) > self.config.max_body_bytes:
            return self.too_large(headers)
        arrived = self.clock()
        result = (plausible.check_body(body, arrived) if path == plausible.PATH
                  else check_body(body))
        now = format_timestamp(arrived)
        agent = scrub_emails(headers.get("user-agent") or "")
        hashes: dict[str, str] = {}
        if any(e.get("session_id") is None for e in result.events):
            try:
                salt = self.salts.for_day(utc_day(arrived))
            except SaltUnavailable as e:
                log.error("ingest: the day's salt is unavailable: %s", e)
                return self.refuse(headers, 503, "salt_unavailable",
                                   "the events could not be stored; send them again",
                                   {"retry-after": "1"})
            address = self.client_address.resolve(peer, headers)
            # the raw User-Agent header, as a browser sends it on every request of the visit
            ua = headers.get("user-agent") or ""
            for e in result.events:
                host = e.get("page_host") or ""
                if e.get("session_id") is None and host not in hashes:
                    hashes[host] = visitor_hash(salt, host, address, ua)
        records = [make_raw_record(scrub_event(e), now, agent,
                                   hashes[e.get("page_host") or ""]
                                   if e.get("session_id") is None else None,
                                   consent=e.get("visitor_id") is not None)
                   for e in result.events]
        # one reason per refused event: its first
        first: dict[int | None, str] = {}
        for v in result.violations:
            first.setdefault(v.index, v.code)
        reasons = list(first.values())
        if isinstance(result, plausible.PlausibleResult):
            status, ctype, payload = plausible.answer(result)
            if result.dropped:  # valid, nothing to store: counted like a refusal
                reasons.append(result.dropped)
            return Prepared(Response(status, {"content-type": ctype, **cors}, payload),
                            records, reasons)
        return Prepared(Response.json(result.status, result.response(), cors), records, reasons)

    def too_large(self, headers: Mapping[str, str]) -> Prepared:
        return self.refuse(headers, 413, "body_too_large",
                           f"the body is over {self.config.max_body_bytes} bytes")

    def handle(self, method: str, headers: Mapping[str, str], body: bytes,
               peer: str | None = None, path: str = EVENTS_PATH) -> Prepared:
        """``prepare``, then store the records in the sink: 503 when the sink fails."""
        prepared = self.prepare(method, headers, body, peer, path)
        if prepared.records and self.sink is not None:
            try:
                self.sink.put(prepared.records)
            except Exception as e:  # SinkError, or anything else: nothing is stored either way
                # the detail (stream, bucket, endpoint) goes to the log, not to the client
                log.error("ingest: %d record(s) not stored: %r", len(prepared.records), e)
                return self.refuse(headers, 503, "sink_unavailable",
                                   "the events could not be stored; send them again",
                                   {"retry-after": "1"})
        return prepared
