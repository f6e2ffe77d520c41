"""The local collector (the embedded default): the ingest handler behind a real ASGI server.

    analytics-platform collect --port 8000

``POST /v1/events`` runs the same ``Ingestor`` as the Lambda and stores accepted records in the
write-ahead spool (spool.py), which flushes them to the raw lake in Firehose's layout; so does
``POST /api/event``, Plausible's event API (plausible.py), for sites that keep Plausible's tracker.
Both are served straight on ASGI; the preflight and the other routes by Starlette.
``GET /`` lists the endpoints, ``GET /analytics.js`` serves the tracker, ``GET /demo`` a page
that uses it, ``GET /healthz`` and ``GET /metrics`` the collector's state and counters.

Every refusal is JSON with a ``reason``. What a client may cost is bounded (``CollectorLimits``):
the body (64 KiB, refused from its ``Content-Length`` or as soon as it passes the limit, never
buffered whole), the time to send the request head and the body, and the open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from analytics_platform.contract import encode_json, encode_records
from analytics_platform.ingest.core import PATHS, IngestConfig, Ingestor, Prepared
from analytics_platform.ingest.privacy import scrub_logs, utc_day
from analytics_platform.ingest.spool import Spool, SpoolBusy, describe_error
from analytics_platform.lake import RawLake

TRACKER_DIR = Path(__file__).resolve().parent.parent / "tracker"
log = logging.getLogger("analytics_platform.collector")

ENDPOINTS = {
    "POST /v1/events": "events from the tracker (JSON, one event or a batch of up to 50)",
    "OPTIONS /v1/events": "CORS preflight",
    "POST /api/event": "events from Plausible's tracker (its event API; answers 202 ok)",
    "OPTIONS /api/event": "CORS preflight",
    "GET /analytics.js": "the tracker",
    "GET /demo": "a small site that uses the tracker",
    "GET /healthz": "ok / degraded / failing, with the reason",
    "GET /metrics": "counters: requests, accepted, rejected by reason, flushes, spool backlog",
}
REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
# The housekeeping timer: expired salts (at most 48 hours after their day began) and parked
# spool lines past their retention (spool.DAMAGED_KEEP_DAYS) are deleted at start, then this
# often, with or without requests.
SALT_PURGE_SECONDS = 60.0


@dataclass(frozen=True)
class CollectorLimits:
    """What one client may cost the collector. From the environment:
    ``ANALYTICS_COLLECTOR_BODY_SECONDS`` (10), ``ANALYTICS_COLLECTOR_HEADER_SECONDS`` (10),
    ``ANALYTICS_COLLECTOR_MAX_CONNECTIONS`` (512)."""

    # A 64 KiB body takes ~10 s at 50 kbit/s (a poor mobile link); half-sent bodies used to be
    # held open for 20 s and more.
    body_seconds: float = 10.0
    # From the connection's opening (or the end of its previous response) to a complete head.
    header_seconds: float = 10.0
    # Each connection may hold up to ~130 KiB (its body plus uvicorn's read buffer), so 512 cost
    # at most ~65 MB; more are answered 503 (JSON, Retry-After) and closed.
    max_connections: int = 512

    @classmethod
    def from_env(cls, prefix: str = "ANALYTICS_COLLECTOR_") -> CollectorLimits:
        """``prefix`` lets another server on the same protocol (the API: ``ANALYTICS_API_``)
        have its own settings."""
        env = os.environ.get
        return cls(float(env(f"{prefix}BODY_SECONDS", cls.body_seconds)),
                   float(env(f"{prefix}HEADER_SECONDS", cls.header_seconds)),
                   int(env(f"{prefix}MAX_CONNECTIONS", cls.max_connections)))


def _json_error(status: int, reason: str, message: str,
                headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"reason": reason, "message": message}, status_code=status,
                        headers=dict(headers or {}))


MAX_REASON_LABELS = 200  # the contract's rules × fields are ~120; the rest are props keys
OTHER_REASONS = "(other reasons)"


def create_app(lake: RawLake, spool_dir: Path, config: IngestConfig | None = None,
               flush_seconds: float = 10.0, flush_bytes: int = 8 * 1024 * 1024,
               limits: CollectorLimits | None = None) -> Callable:
    # salts beside the spool, under the data folder, unless ANALYTICS_SALT_URL says otherwise
    ingestor = Ingestor(config or IngestConfig.from_env(),
                        default_salt_dir=str(Path(spool_dir).parent / "salts"))
    limits = limits or CollectorLimits.from_env()
    spool = Spool(spool_dir, lake, flush_seconds, flush_bytes)
    counters: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    max_body = ingestor.config.max_body_bytes
    closing = {"connection": "close"}  # the rest of a refused body is never read

    async def read_body(headers: dict[str, str], receive: Callable
                        ) -> bytes | Prepared | None:
        """The request body, a refusal, or None if the client went away."""
        declared = headers.get("content-length", "")  # the HTTP parser refuses a bad one
        if declared.isdigit() and int(declared) > max_body:
            return ingestor.too_large(headers)  # before reading any of it
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(limits.body_seconds):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > max_body:  # chunked, no length: refused as soon as it is over
                        return ingestor.too_large(headers)
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            return ingestor.refuse(headers, 408, "body_timeout",
                                   f"the body took over {limits.body_seconds:g} s", closing)
        return b"".join(chunks)

    async def handle_events(method: str, headers: dict[str, str], body: bytes,
                            peer: str | None = None, path: str = PATHS[0]) -> Prepared:
        prepared = ingestor.prepare(method, headers, body, peer, path)
        if prepared.records:
            try:
                await spool.append(encode_records(prepared.records))
            except OSError as e:
                counters["spool_errors"] += 1
                return ingestor.refuse(headers, 503, "spool_unavailable",
                                       f"the event could not be stored ({describe_error(e)}); "
                                       "send it again", {"retry-after": "1"})
            counters["accepted"] += len(prepared.records)
        return prepared

    def count(prepared: Prepared) -> None:
        counters["requests"] += 1
        for reason in prepared.rejected_reasons:
            # A reason can name a client's props key (``props_bad_value:props.<key>``), so the
            # set of labels is the clients' to grow: past MAX_REASON_LABELS distinct labels the
            # new ones are counted together, and the collector's memory stays bounded.
            if reason not in rejected and len(rejected) >= MAX_REASON_LABELS:
                reason = OTHER_REASONS
            rejected[reason] += 1

    async def events(request: Request) -> Response:  # OPTIONS (preflight)
        headers = {k.lower(): v for k, v in request.headers.items()}
        prepared = await handle_events(request.method, headers, b"", None, request.url.path)
        count(prepared)
        r = prepared.response
        return Response(r.body, status_code=r.status, headers=r.headers)

    async def index(_: Request) -> Response:
        return JSONResponse({"service": "analytics-platform collector", "endpoints": ENDPOINTS})

    async def tracker(_: Request) -> Response:
        return FileResponse(TRACKER_DIR / "analytics.js", media_type="application/javascript",
                            headers={"cache-control": "public, max-age=300"})

    async def demo(_: Request) -> Response:
        return HTMLResponse((TRACKER_DIR / "demo.html").read_text())

    def health() -> tuple[str, str | None]:
        h = spool.health
        if not spool.flusher_running():
            return "failing", "flusher_stopped"
        if h.last_write_error:
            return "failing", f"spool_write_failed: {h.last_write_error}"
        if h.flush_error:
            return "degraded", h.flush_error
        return "ok", None

    async def healthz(_: Request) -> Response:
        # No paths, no URLs: the state and the reason (an error's kind, never its message).
        status, reason = health()
        h, now = spool.health, time.time()
        body: dict[str, Any] = {
            "status": status,
            "raw_lake": "s3" if lake.url.startswith("s3://") else "local",
            "spool_pending_segments": spool.pending_segments(),
            "spool_pending_bytes": spool.pending_bytes(),
            "last_flush_seconds_ago": (round(now - h.last_flush_at, 1)
                                       if h.last_flush_at else None),
            "parked_lines": spool.stats.parked_lines,
        }
        if reason:
            body["reason"] = reason
        if h.flush_failing_since is not None:
            body["failing_flushes"] = h.failing_flushes
            body["failing_for_seconds"] = round(now - h.flush_failing_since, 1)
        return JSONResponse(body, status_code=503 if status == "failing" else 200)

    async def metrics(_: Request) -> Response:
        s = spool.stats
        return JSONResponse({
            "status": health()[0],
            "requests": counters["requests"],
            "accepted": counters["accepted"],
            "rejected": dict(rejected),
            "spool_errors": counters["spool_errors"],
            "refused_connections": counters["refused_connections"],
            "header_timeouts": counters["header_timeouts"],
            "malformed_requests": counters["malformed_requests"],
            "internal_errors": counters["internal_errors"],
            "flushed_objects": s.flushed_objects,
            "flushed_records": s.flushed_records,
            "flush_failures": s.flush_failures,
            "failing_flushes": spool.health.failing_flushes,
            "recovered_segments": s.recovered_segments,
            "parked_segments": s.parked_segments,
            "parked_lines": s.parked_lines,
            "dropped_partial_lines": s.dropped_partial_lines,
            "spool_pending_segments": spool.pending_segments(),
            "spool_pending_bytes": spool.pending_bytes(),
        })

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _json_error(exc.status_code, REASONS.get(exc.status_code, f"http_{exc.status_code}"),
                           exc.detail, exc.headers)

    async def server_error(_: Request, exc: Exception) -> Response:
        counters["internal_errors"] += 1
        log.error("collector: internal error", exc_info=exc)
        return _json_error(500, "internal_error", "the collector failed; send it again")

    async def housekeeping() -> None:
        # Requests purge salts too, but a salt must not outlive its 48 hours on a quiet
        # collector; nothing else would ever delete parked spool lines.
        while True:
            try:
                await asyncio.to_thread(ingestor.salts.purge, utc_day(ingestor.clock()))
            except Exception as e:
                log.error("collector: purging expired salts failed: %s", describe_error(e))
            try:
                await asyncio.to_thread(spool.purge_damaged, time.time())
            except OSError as e:
                log.error("collector: deleting expired parked spool lines failed: %s",
                          describe_error(e))
            await asyncio.sleep(SALT_PURGE_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):
        await spool.start()
        purger = asyncio.create_task(housekeeping())
        try:
            yield
        finally:
            purger.cancel()
            await spool.stop()  # graceful shutdown flushes what is spooled

    app = Starlette(routes=[
        Route("/", index, methods=["GET"]),
        Route("/v1/events", events, methods=["POST", "OPTIONS"]),
        Route("/api/event", events, methods=["POST", "OPTIONS"]),
        Route("/analytics.js", tracker, methods=["GET"]),
        Route("/demo", demo, methods=["GET"]),
        Route("/demo/{page:path}", demo, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ], lifespan=lifespan, exception_handlers={HTTPException: http_error, 500: server_error})
    app.state.spool = spool

    async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
        # The hot path, POST /v1/events (and /api/event), straight on ASGI: Starlette's
        # middleware and routing were ~30 % of the collector's CPU on batches (py-spy).
        # Everything else goes to `app`.
        if scope["type"] != "http" or scope["path"] not in PATHS or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        try:
            body = await read_body(headers, receive)
            if body is None:
                return
            client = scope.get("client")  # (host, port) of the TCP peer: for visitor_hash only
            prepared = body if isinstance(body, Prepared) else await handle_events(
                "POST", headers, body, client[0] if client else None, scope["path"])
        except Exception as e:
            counters["internal_errors"] += 1
            log.error("collector: internal error on POST %s", scope["path"], exc_info=e)
            prepared = ingestor.refuse(headers, 500, "internal_error",
                                       "the collector failed; send it again", closing)
        count(prepared)
        r = prepared.response
        await send({"type": "http.response.start", "status": r.status, "headers": [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in {**r.headers, "content-length": str(len(r.body))}.items()]})
        await send({"type": "http.response.body", "body": r.body})

    asgi.state = app.state  # type: ignore[attr-defined]
    asgi.limits = limits  # type: ignore[attr-defined]
    asgi.counters = counters  # type: ignore[attr-defined]
    return asgi


def _raw_response(status: int, phrase: str, payload: dict[str, str],
                  extra: Mapping[str, str] | None = None) -> bytes:
    body = encode_json(payload)
    head = [f"HTTP/1.1 {status} {phrase}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close",
            *(f"{k}: {v}" for k, v in (extra or {}).items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _collector_error(reason: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message}


def guarded_protocol(limits: CollectorLimits, counters: Counter[str],
                     error_body: Callable[[str, str], dict[str, str]] = _collector_error,
                     server: str = "collector") -> type:
    """uvicorn's httptools protocol with two bounds it lacks: the time to send a request head
    (uvicorn waits for ever on a connection that opens and says nothing, or says it slowly) and
    the number of open connections (uvicorn's own ``limit_concurrency`` answers in plain text);
    and a JSON answer to a request its parser refuses. ``error_body(reason, message)`` is the
    JSON of those answers, in the shape of the server's other errors (the API's is
    ``{"error": …}``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                # Answered and closed now, not when (if ever) a request comes: an over-limit
                # connection that stays silent would otherwise hold its socket until the head
                # timeout, and enough of them exhaust the process's file descriptors, so that
                # accept() fails and a normal client gets no answer at all.
                counters["refused_connections"] += 1
                transport.write(_raw_response(503, "Service Unavailable", error_body(
                    "too_many_connections",
                    f"the {server} is at its connection limit; send it again"),
                    {"retry-after": "1"}))
                transport.close()  # connection_lost takes it out of self.connections
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(limits.header_seconds, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._arm()  # the next request's head, on a kept-alive connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            # a request the HTTP parser refuses: uvicorn answers it in plain text
            counters["malformed_requests"] += 1
            self.transport.write(_raw_response(400, "Bad Request", error_body(
                "malformed_request", msg)))
            self.transport.close()

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or (self.cycle is not None
                                               and not self.cycle.response_complete):
                return
            counters["header_timeouts"] += 1
            self.transport.write(_raw_response(408, "Request Timeout", error_body(
                "header_timeout", f"the request head took over {limits.header_seconds:g} s")))
            self.transport.close()

    return GuardedProtocol


def serve(app: Callable, host: str, port: int) -> None:
    """Run ``app`` (from ``create_app``) on uvicorn with its limits."""
    import uvicorn

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # Before listening: a second collector on this data folder would take the first one's
        # open segment for its own and delete it (spool.py), so it does not start at all.
        app.state.spool.acquire()  # type: ignore[attr-defined]
    except SpoolBusy as e:
        log.error("collector: not starting: %s", e)
        raise SystemExit(f"collector: not starting: {e}") from None
    protocol = guarded_protocol(app.limits, app.counters)  # type: ignore[attr-defined]
    # No proxy headers from uvicorn: which header may name the client (for visitor_hash only)
    # is the Ingestor's configuration, trusted proxies only (ANALYTICS_CLIENT_IP_HEADER).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=10, proxy_headers=False, http=protocol)
    scrub_logs()  # an exception's message may quote a request (docs/PRIVACY.md)
    uvicorn.Server(config).run()
