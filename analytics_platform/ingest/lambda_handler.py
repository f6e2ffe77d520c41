"""The AWS Lambda entry point: ``analytics_platform.ingest.lambda_handler.handler``.

Accepts API Gateway HTTP API (payload 2.0) and REST API (1.0) events and Lambda Function URL
events (same shape as 2.0). Configuration by environment: ``ANALYTICS_SINK`` and its target
(see sinks.sink_from_env), ``ANALYTICS_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

import base64
from typing import Any

from analytics_platform.ingest.core import IngestConfig, Ingestor

_INGESTOR: Ingestor | None = None


def _ingestor() -> Ingestor:
    # Built on the first request and kept for the life of the execution environment.
    global _INGESTOR
    if _INGESTOR is None:
        from analytics_platform.ingest.sinks import sink_from_env

        _INGESTOR = Ingestor(IngestConfig.from_env(), sink_from_env())
    return _INGESTOR


def parse_event(event: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """(method, lower-cased headers, body bytes) of an API Gateway / Function URL event."""
    method = (event.get("requestContext", {}).get("http", {}).get("method")
              or event.get("httpMethod") or "GET")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw)
        except (ValueError, TypeError):
            body = b"\x00invalid base64"
    else:
        body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    return method, headers, body


def handler(event: dict[str, Any], context: Any = None,
            ingestor: Ingestor | None = None) -> dict[str, Any]:
    method, headers, body = parse_event(event)
    result = (ingestor or _ingestor()).handle(method, headers, body)
    r = result.response
    return {"statusCode": r.status, "headers": r.headers, "body": r.body.decode(),
            "isBase64Encoded": False}
