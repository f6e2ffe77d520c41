"""The ingest handler's logic, independent of its host (AWS Lambda or the local collector).

``Ingestor.prepare`` turns one HTTP request into a response and the raw records to store: CORS
(origin allowlist, preflight), media type, body size, the event contract (SPEC §1) and the
enrichment of SPEC §2 (``ingest_ts``, ``user_agent``, ``schema_version``). It never looks at the
client IP or any header but ``Origin``, ``Content-Type`` and ``User-Agent``, and stores none of
them but the user agent. ``Ingestor.handle`` also hands the records to a sink (Firehose, Kinesis,
S3); the collector stores them in its own write-ahead spool instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from analytics_platform.contract import (
    MAX_BODY_BYTES,
    check_body,
    encode_json,
    format_timestamp,
    make_raw_record,
)

JSON_TYPES = ("application/json", "text/plain")  # text/plain: navigator.sendBeacon(string)


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


class Ingestor:
    def __init__(self, config: IngestConfig | None = None, sink: Sink | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config or IngestConfig.from_env()
        self.sink = sink
        self.clock = clock

    def _cors(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.config.allows(origin):
            return {}
        return {"access-control-allow-origin": origin, "vary": "Origin"}

    def prepare(self, method: str, headers: Mapping[str, str], body: bytes) -> Prepared:
        """The response to one request and the records it asks to store (``headers`` keys are
        lower case)."""
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
            return Prepared(Response.json(413, {
                "reason": "body_too_large",
                "message": f"the body is over {self.config.max_body_bytes} bytes",
            }, cors), [], ["body_too_large"])
        result = check_body(body)
        now = format_timestamp(self.clock())
        agent = headers.get("user-agent")
        records = [make_raw_record(e, now, agent) for e in result.events]
        # one reason per refused event: its first
        first: dict[int | None, str] = {}
        for v in result.violations:
            first.setdefault(v.index, v.code)
        reasons = list(first.values())
        return Prepared(Response.json(result.status, result.response(), cors), records, reasons)

    def handle(self, method: str, headers: Mapping[str, str], body: bytes) -> Prepared:
        """``prepare``, then store the records in the sink: 503 when the sink fails."""
        prepared = self.prepare(method, headers, body)
        if prepared.records and self.sink is not None:
            try:
                self.sink.put(prepared.records)
            except SinkError as e:
                cors = self._cors(headers.get("origin"))
                return Prepared(Response.json(503, {"reason": "sink_unavailable",
                                                    "message": str(e)[:300]}, cors), [],
                                ["sink_unavailable"])
        return prepared
