"""The ingest handler's logic, independent of its host (AWS Lambda or the local collector).

``Ingestor.prepare`` turns one HTTP request into a response and the raw records to store: CORS
(origin allowlist, preflight), media type, body size, the event contract (CONTRACT §1), the scrub
of every stored text and the enrichment of CONTRACT §2 (``ingest_ts``, ``user_agent``,
``schema_version``, ``consent``, ``country`` from the time zone or CloudFront's header
(country.py), and ``visitor_hash`` for events without a session id). It reads
the ``Origin``, ``Content-Type`` and ``User-Agent`` headers (and ``CloudFront-Viewer-Country``
when configured as behind CloudFront, with the origin secret CloudFront adds when one is
configured), and the client's address (the peer,
or a configured header from a trusted proxy) only for ``visitor_hash``: the address is never
stored, logged or put in an error (privacy.py, docs/PRIVACY.md). The body is the contract's
(``/v1/events``) or Plausible's (``/api/event``, plausible.py: mapped onto the contract, then
the same steps). ``Ingestor.handle`` also hands
the records to a sink (Firehose, Kinesis, S3); the collector stores them in its own write-ahead
spool instead.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from analytics_platform.contract import (
    FIELDS,
    MAX_BODY_BYTES,
    MAX_PROPS_KEY_CHARS,
    MAX_PROPS_KEYS,
    MAX_PROPS_VALUE_CHARS,
    BodyResult,
    Violation,
    check_body,
    encode_json,
    format_timestamp,
    make_raw_record,
)
from analytics_platform.ingest import plausible
from analytics_platform.ingest.country import country_of
from analytics_platform.ingest.privacy import (
    ClientAddress,
    Salts,
    SaltUnavailable,
    salt_store,
    scrub,
    scrub_agent,
    scrub_props,
    scrub_url,
    utc_day,
    visitor_hash,
)

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "text/plain")  # text/plain: navigator.sendBeacon(string)
# The header CloudFront adds to every request it forwards to the origin (an origin custom
# header, infra/modules/ingest): its value is ANALYTICS_ORIGIN_SECRET.
ORIGIN_SECRET_HEADER = "x-analytics-origin-secret"
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
    """``allowed_origins``: exact origins (``https://www.example.com``) or ``*``.
    ``behind_cloudfront``: the endpoint is reached through CloudFront only, so its
    ``CloudFront-Viewer-Country`` header can be believed (country.py); otherwise it is ignored.
    ``origin_secret``: what CloudFront adds to each request it forwards (``ORIGIN_SECRET_HEADER``,
    infra/modules/ingest); a request without it did not come through CloudFront and is refused
    (403 ``not_through_cloudfront``), so no client can set CloudFront's headers itself."""

    allowed_origins: tuple[str, ...] = ("*",)
    max_body_bytes: int = MAX_BODY_BYTES
    behind_cloudfront: bool = False
    origin_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> IngestConfig:
        raw = os.environ.get("ANALYTICS_ALLOWED_ORIGINS", "*")
        cloudfront = os.environ.get("ANALYTICS_BEHIND_CLOUDFRONT", "").strip().lower()
        return cls(tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip()),
                   behind_cloudfront=cloudfront in ("1", "true", "yes"),
                   origin_secret=os.environ.get("ANALYTICS_ORIGIN_SECRET", "").strip() or None)

    def through_cdn(self, headers: Mapping[str, str]) -> bool:
        """The request carries the origin secret, or none is configured."""
        return self.origin_secret is None or hmac.compare_digest(
            headers.get(ORIGIN_SECRET_HEADER, "").encode(), self.origin_secret.encode())

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
_PATH_PROPS = {"download": ("file",), "not_found": ("from",)}
# A props value that is a URL: absolute, with a scheme ("https://…"), or a path ("/…", "//host/…")
# with a query or a fragment. Such a value keeps what page_path keeps (scrub_url), whatever the
# event type and the key: a tagged link's url or an outbound click's href kept its query
# ("?token=…") through /v1/events, while Plausible's /api/event cut it. Any other text is kept
# as it is ("Save 20%? Now #1", "a=1&b=2", "C#"): a question or a hash tag is no query.
_URL_VALUE = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.\-]*://|/[^?#]*[?#])")
_TEXT_FIELDS = ("page_host", "page_title", "utm_source", "utm_medium", "utm_campaign",
                "utm_content", "utm_term")


def scrub_event(event: dict[str, Any]) -> dict[str, Any]:
    """A valid event as it may be stored (CONTRACT §2): no e-mail or IP address in any text, no
    query parameter but UTM tags and no fragment in ``page_path`` / ``referrer`` and in a props
    value that is a URL (``_URL_VALUE``), no control or invisible characters; each value still
    within its limit."""
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
        # URLs first, on the text as sent: scrubbed first, "https://jamie:pw@x.com" would
        # become "https://jamie:(email)", which no longer reads as user:password@
        props = {k: scrub_url(v) if isinstance(v, str) and _URL_VALUE.match(v) else v
                 for k, v in props.items()}
        # keys are scrubbed like values ({"jamie@example.com": 1}); an event whose keys could
        # not be stored so was refused (refuse_unstorable)
        out["props"] = scrub_props(props, max_key_chars=MAX_PROPS_KEY_CHARS,
                                   max_value_chars=MAX_PROPS_VALUE_CHARS)
        # paths in props (a download's file, a 404's referring page) lose their query and
        # fragment like page_path (CONTRACT §2)
        for key in _PATH_PROPS.get(out["event_type"], ()):
            if isinstance(out["props"].get(key), str):
                out["props"][key] = scrub_url(out["props"][key],
                                              max_chars=MAX_PROPS_VALUE_CHARS) or "/"
    if out["event_type"] == "not_found":
        _referring_page(out)
    return out


def _referring_page(event: dict[str, Any]) -> None:
    """A 404's referring page (CONTRACT §2): without ``props.from``, the path of a ``referrer``
    on the page's own host (the tracker sends ``from`` only for an SPA's previous route; on a
    page load the referrer says it, and ``referrer`` itself is kept as a host only, §3.5)."""
    props = event.get("props") or {}
    ref = event.get("referrer")
    if "from" in props or not isinstance(ref, str) or len(props) >= MAX_PROPS_KEYS:
        return
    try:
        parts = urlsplit(ref)
        host = parts.hostname
    except ValueError:
        return
    if host and host == str(event.get("page_host") or "").lower():
        event["props"] = {**props, "from": scrub_url(parts.path, max_chars=MAX_PROPS_VALUE_CHARS)
                          or "/"}


def refuse_unstorable(result: BodyResult) -> None:
    """Refuse, as breaking CONTRACT §1 (``props_bad_key:props``), each event whose props keys
    cannot be stored once scrubbed (privacy.scrub_props: a key that becomes empty, longer than
    64 characters, or the same as another); then scrub the text of every refusal, which is
    answered, counted in /metrics and may be logged, and can quote a client's props key
    (``props_bad_value:props.jamie@example.com``)."""
    refused = {v.index for v in result.violations}
    # a batch's valid events are its indices that no violation names, in order
    places = iter(i for i in range(len(result.events) + len(refused)) if i not in refused)
    kept = []
    for e in result.events:
        at = next(places) if result.is_batch else None
        props = e.get("props")
        if isinstance(props, dict) and props and scrub_props(
                props, max_key_chars=MAX_PROPS_KEY_CHARS,
                max_value_chars=MAX_PROPS_VALUE_CHARS) is None:
            result.violations.append(Violation(
                "props_bad_key", "props", at, f"props keys must be 1 to {MAX_PROPS_KEY_CHARS} "
                "characters and distinct once e-mail and IP addresses are replaced"))
        else:
            kept.append(e)
    if len(kept) < len(result.events):
        result.events = kept
        result.violations.sort(key=lambda v: -1 if v.index is None else v.index)
        if not kept:
            result.status = 400
    result.violations = [_scrubbed(v) for v in result.violations]


def _scrubbed(v: Violation) -> Violation:
    if not v.field:
        return Violation(v.rule, v.field, v.index, scrub(v.message))
    # "props." stays itself: an address right after it would take it as its user part
    head, dot, key = v.field.partition(".")
    field = head + dot + scrub(key)
    return Violation(v.rule, field, v.index, scrub(v.message.replace(v.field, field)))


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
        if not self.config.through_cdn(headers):
            return Prepared(Response.json(403, {
                "reason": "not_through_cloudfront",
                "message": "this endpoint is reached through its CloudFront distribution"}), [],
                ["not_through_cloudfront"])
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
        refuse_unstorable(result)
        now = format_timestamp(arrived)
        agent = scrub_agent(headers.get("user-agent") or "")
        hashes: dict[str, str] = {}
        # the site the visitor hash is made with: Plausible's ``d`` when sent (as Plausible's own
        # hash: one visitor across the site's subdomains), else the page's host
        plausible_site = result.site if isinstance(result, plausible.PlausibleResult) else None

        def site_of(e: dict[str, Any]) -> str:
            return plausible_site or e.get("page_host") or ""

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
                host = site_of(e)
                if e.get("session_id") is None and host not in hashes:
                    hashes[host] = visitor_hash(salt, host, address, ua)
        # the country (CONTRACT §2): the CDN's header or the time zone, which is then dropped
        cloudfront = self.config.behind_cloudfront
        records = [make_raw_record(scrub_event(e), now, agent,
                                   hashes[site_of(e)]
                                   if e.get("session_id") is None else None,
                                   consent=e.get("visitor_id") is not None,
                                   country=country_of(e, headers, cloudfront))
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
