"""The AWS Lambda entry point: ``analytics_platform.ingest.lambda_handler.handler``.

Accepts API Gateway HTTP API (payload 2.0) and REST API (1.0) events and Lambda Function URL
events (same shape as 2.0), on the contract's path and on Plausible's ``/api/event``
(``request_path``). Configuration by environment: ``ANALYTICS_SINK`` and its target
(see sinks.sink_from_env), ``ANALYTICS_ALLOWED_ORIGINS``, ``ANALYTICS_SALT_URL`` (required: an
``s3://`` location shared by every instance, so that all hash a day with the same salt),
``ANALYTICS_CLIENT_IP_HEADER`` / ``ANALYTICS_TRUSTED_PROXIES`` (behind CloudFront or another
proxy; by default the client's address is the request context's ``sourceIp``).

Also invoked once a day, at 00:01 UTC, by an EventBridge scheduled rule (infra/modules/ingest):
that event only purges the expired salts (see ``is_scheduled_purge``), so that a salt goes when it
is 48 hours old even on a site that gets no request (docs/PRIVACY.md, "Salts").
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from analytics_platform.ingest.core import EVENTS_PATH, IngestConfig, Ingestor, Response
from analytics_platform.ingest.plausible import PATH as PLAUSIBLE_PATH
from analytics_platform.ingest.privacy import scrub_logs, utc_day

log = logging.getLogger(__name__)

_INGESTOR: Ingestor | None = None


def _ingestor() -> Ingestor:
    # Built on the first request and kept for the life of the execution environment.
    global _INGESTOR
    if _INGESTOR is None:
        import os

        scrub_logs()  # the runtime's log handler: an exception's message may quote a request

        from analytics_platform.ingest.privacy import S3Salts, Salts
        from analytics_platform.ingest.sinks import sink_from_env

        salt_url = os.environ.get("ANALYTICS_SALT_URL", "")
        if not salt_url.startswith("s3://"):
            # a folder would be one instance's own: two instances, two salts for one day
            raise ValueError("ANALYTICS_SALT_URL must be s3://bucket/prefix")
        _INGESTOR = Ingestor(IngestConfig.from_env(), sink_from_env(),
                             salts=Salts(S3Salts(salt_url)))
    return _INGESTOR


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def parse_event(event: Any) -> tuple[str, dict[str, str], bytes]:
    """(method, lower-cased headers, body bytes) of an API Gateway / Function URL event. Parts
    that are missing or of the wrong type count as absent: the Ingestor then answers the
    request with its reason (a 405, a 415, an invalid body), never an exception."""
    event = _mapping(event)
    http = _mapping(_mapping(event.get("requestContext")).get("http"))
    method = http.get("method") or event.get("httpMethod") or "GET"
    headers = {str(k).lower(): str(v) for k, v in _mapping(event.get("headers")).items()
               if v is not None}
    # REST API (1.0) events repeat the headers as lists; take one when only the list has it
    for k, values in _mapping(event.get("multiValueHeaders")).items():
        if str(k).lower() not in headers and isinstance(values, list) and values:
            headers[str(k).lower()] = str(values[0])
    raw = event.get("body")
    if not isinstance(raw, str):
        raw = ""  # None (no body), or something no integration sends: an empty body
    if event.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(raw, validate=True)
        except (ValueError, TypeError):
            body = b"\x00invalid base64"
    else:
        body = raw.encode("utf-8", "surrogatepass")
    return str(method), headers, body


def source_ip(event: Any) -> str | None:
    """The connection's address as API Gateway or the Function URL saw it (``requestContext``
    ``http.sourceIp`` in payload 2.0, ``identity.sourceIp`` in 1.0); used for visitor_hash only."""
    ctx = _mapping(_mapping(event).get("requestContext"))
    ip = (_mapping(ctx.get("http")).get("sourceIp")
          or _mapping(ctx.get("identity")).get("sourceIp"))
    return ip if isinstance(ip, str) else None


def request_path(event: Any) -> str:
    """Which body the request carries: Plausible's (``/api/event``, whatever stage or prefix
    comes before it) or the contract's (every other path, as before Plausible's was taken)."""
    event = _mapping(event)
    path = (event.get("rawPath") or _mapping(_mapping(event.get("requestContext")).get("http"))
            .get("path") or event.get("path"))
    if isinstance(path, str) and path.rstrip("/").endswith(PLAUSIBLE_PATH):
        return PLAUSIBLE_PATH
    return EVENTS_PATH


# Keys of the events that carry a request: API Gateway (1.0, 2.0) and Function URL events always
# have a requestContext, and the request's own bytes arrive in "headers" and "body" (a string),
# so no request can set a top-level key. None of them is in EventBridge's scheduled event.
_REQUEST_KEYS = frozenset(("requestContext", "headers", "multiValueHeaders", "body",
                           "isBase64Encoded", "httpMethod", "rawPath", "path"))


def is_scheduled_purge(event: Any) -> bool:
    """Whether ``event`` is the daily schedule's (EventBridge: ``source`` ``aws.events``,
    ``detail-type`` ``Scheduled Event``), not a request. A request whose body, or even whose
    event, holds those keys beside its own is still a request (``_REQUEST_KEYS``)."""
    return (isinstance(event, dict) and event.get("source") == "aws.events"
            and event.get("detail-type") == "Scheduled Event"
            and not _REQUEST_KEYS.intersection(event))


def purge_salts(ing: Ingestor) -> dict[str, Any]:
    """Delete the salts that have expired on the function's UTC day, from the bucket and from
    this instance's memory; nothing else (no salt is created, no event stored). The day is the
    function's clock's, never the event's ``time``: whoever may invoke the function (the
    Function URL's permission lets any principal call it directly) can only make it do what
    every request already does every 10 minutes."""
    purged = ing.salts.purge(utc_day(ing.clock()))
    log.info("ingest: scheduled purge deleted %d expired salt(s)", purged)
    return {"purged": purged}


def _answer(r: Response) -> dict[str, Any]:
    return {"statusCode": r.status, "headers": r.headers, "body": r.body.decode(),
            "isBase64Encoded": False}


def handler(event: dict[str, Any], context: Any = None,
            ingestor: Ingestor | None = None) -> dict[str, Any]:
    """Every request gets a JSON answer with a reason, whatever fails: a Lambda that raises
    answers a bare 502 (Function URL, HTTP API) or 500 that the tracker cannot read.
    The daily schedule's event is no request: nobody reads its answer (the invocation is
    asynchronous), so a failure to purge raises, which Lambda retries (twice) and counts in its
    Errors metric (the ingest-errors alarm)."""
    if is_scheduled_purge(event):
        return purge_salts(ingestor or _ingestor())
    try:
        ing = ingestor or _ingestor()
    except Exception:
        log.exception("ingest: the function is misconfigured")
        return _answer(Response.json(500, {
            "reason": "misconfigured", "message": "the ingest function is misconfigured"}))
    try:
        method, headers, body = parse_event(event)
        return _answer(ing.handle(method, headers, body, source_ip(event),
                                  request_path(event)).response)
    except Exception:
        log.exception("ingest: internal error")
        return _answer(Response.json(500, {
            "reason": "internal_error", "message": "the ingest function failed; send it again"}))
