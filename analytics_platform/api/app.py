"""The read-only HTTP API (ASGI, Starlette on uvicorn, like the collector):

    analytics-platform api --port 8010

- ``POST /api/v2/query``: Plausible's Stats API v2 (``api/v2.py``), counted by the query layer
  the dashboard uses (``analytics_platform/query/``).
- ``GET /api/v1/export?table=…&from=…&to=…&format=csv|parquet|ndjson``: a table, streamed.
- ``GET /api/openapi.json``: the OpenAPI document (``api/openapi.py``); ``GET /healthz``.

Every request to the first two needs ``Authorization: Bearer <key>`` (``api-key create``) and
passes the key's rate limit; errors are Plausible's shape, ``{"error": "…"}``. Read-only by
construction: no route writes, and the warehouse is attached read-only. Request headers (and so
keys) are never logged.

Served like the collector (``ingest/collector.py``'s guarded protocol): a request head must
arrive within ``ANALYTICS_API_HEADER_SECONDS`` (10) and a query's body within
``ANALYTICS_API_BODY_SECONDS`` (10), else 408; past ``ANALYTICS_API_MAX_CONNECTIONS`` (512)
open connections a new one is answered 503 and closed at once. Plain uvicorn held a silent or
half-sent connection for ever, so a few hundred exhausted the process's file descriptors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from analytics_platform import settings
from analytics_platform.api import v2
from analytics_platform.api.keys import ApiKey, KeyFileError, KeyStore, RateLimiter
from analytics_platform.api.openapi import document
from analytics_platform.ingest.collector import CollectorLimits, guarded_protocol
from analytics_platform.query import export as exports
from analytics_platform.query.handwritten import load
from analytics_platform.query.stats import QueryError, run
from analytics_platform.query.warehouse import Warehouse

log = logging.getLogger("analytics_platform.api")
MAX_BODY = 64 * 1024
ENV_PREFIX = "ANALYTICS_API_"  # ANALYTICS_API_HEADER_SECONDS, _BODY_SECONDS, _MAX_CONNECTIONS


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def raw_lake_has_objects(url: str) -> bool | None:
    """Whether the raw lake at ``url`` holds any object (one LIST of a key at most: S3's
    ``MaxKeys=1``, or the first file found in a local folder); None when it cannot be asked
    (S3 refused, no credentials). What a warehouse without sessions is told depends on it: to
    wait for the pipeline when events came (bots only, or its first hour), how to get data
    when none did. The dashboard asks it too (``dashboard/frame.py``)."""
    from analytics_platform.lake import open_raw_lake

    try:
        return open_raw_lake(url).has_objects()
    except Exception:  # any: this is a hint, never a reason to fail the answer it goes in
        log.warning("cannot tell whether the raw lake %s holds objects", url, exc_info=True)
        return None


def no_sessions_yet(raw_url: str, schedule_minute: int) -> str:
    """Why the warehouse has no sessions, and what to do, by what the raw lake holds."""
    when = (f"the pipeline counts a new raw object within minutes, and every hour at the "
            f"latest at :{schedule_minute:02d} past the next. Events from bots and quarantined "
            "events are dropped, so traffic of bots alone makes no session.")
    received = raw_lake_has_objects(raw_url)
    if received:
        return "The warehouse has no sessions yet, but events have been received: " + when
    if received is None:  # the raw lake could not be listed (logged)
        return "The warehouse has no sessions yet; once events have been received, " + when
    return ("The warehouse has no sessions yet, and no event has been received: point the "
            "tracker at the collector (docs/INGEST.md); sessions follow within minutes.")


def create_app(data_dir: Path, keys: KeyStore | None = None,
               limiter: RateLimiter | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Starlette:
    """The API on ``data_dir``'s warehouse; ``now`` (UTC) is what relative date ranges
    (``7d``, ``month``…) count back from."""
    keys = keys or KeyStore(data_dir / "api_keys.json")
    limiter = limiter or RateLimiter()
    body_seconds = CollectorLimits.from_env(ENV_PREFIX).body_seconds
    warehouse_path = data_dir / "warehouse.duckdb"
    spool = data_dir / ".export_tmp"
    # the raw lake of this data folder (settings.raw_url() is $ANALYTICS_DATA_DIR's)
    raw_url = (settings.raw_url() if settings.is_set("ANALYTICS_RAW_URL")
               else str(data_dir / "raw"))

    opened: dict[tuple[int, int], Warehouse] = {}

    def warehouse() -> Warehouse | None:
        """The warehouse, if it has sessions; its list of views is asked again only when the
        pipeline swaps in a new file (asking on every request cost a query each time)."""
        try:
            st = warehouse_path.stat()
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns)
        if key not in opened:
            opened.clear()
            opened[key] = Warehouse(warehouse_path)
        wh = opened[key]
        return wh if {"sessions", "session_events"} <= wh.tables else None

    def authorize(request: Request) -> ApiKey | Response:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return error(401, "Missing API key. Please use a valid API key as a Bearer Token "
                              "(analytics-platform api-key create NAME).")
        try:
            key = keys.verify(secret.strip())
        except KeyFileError as e:
            # No key can be checked: refuse every request, say so, and never 500. The next
            # request reads the file again, so fixing it needs no restart.
            log.error("%s", e)
            return error(503, "The server cannot read its API key file; the server's log says "
                              "why.", {"retry-after": "30"})
        if key is None:
            return error(401, "Invalid API key. Please make sure you're using a valid API key "
                              "that has not been revoked.")
        wait = limiter.take(key.id)
        if wait is not None:
            return error(429, f"Too many API requests. This key is limited to "
                              f"{limiter.rate * 3600:g} requests per hour (bursts of "
                              f"{limiter.burst}); retry in {wait:.0f} s.",
                         {"retry-after": str(max(1, round(wait + 0.5)))})
        return key

    async def query(request: Request) -> Response:
        key = authorize(request)
        if isinstance(key, Response):
            return key
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return error(413, f"The query is over {MAX_BODY // 1024} KiB.")
        # read piece by piece, and no further than MAX_BODY: a chunked body declares no
        # length, and request.body() would hold all of it in memory before any check
        # ... and within body_seconds: a client that announces a body and sends part of it
        # would hold the connection (and a descriptor) for ever
        chunks, size = [], 0
        try:
            async with asyncio.timeout(body_seconds):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BODY:
                        return error(413, f"The query is over {MAX_BODY // 1024} KiB.")
                    chunks.append(chunk)
        except TimeoutError:
            return error(408, f"The query's body took over {body_seconds:g} s.",
                         {"connection": "close"})
        try:
            payload = json.loads(b"".join(chunks))
        except RecursionError:  # arrays nested thousands deep: deeper than the parser goes
            return error(400, "Invalid request: the body's JSON is nested too deeply.")
        except ValueError:
            return error(400, "Invalid request: the body is not JSON.")
        wh = warehouse()
        if wh is None:
            # not "run a backfill first": on a deployment the pipeline runs, and the events
            # may be there already (bots only, or its first hour)
            message = await run_in_threadpool(no_sessions_yet, raw_url,
                                              settings.schedule_minute())
            return error(503, message, {"retry-after": "60"})

        def first_day() -> date | None:
            return wh.row(load("range"))[0]

        def answer() -> dict[str, Any]:
            parsed = v2.parse(payload, now(), first_day)
            return v2.response(parsed, run(wh, parsed.query))

        try:
            return JSONResponse(await run_in_threadpool(answer))
        except QueryError as e:
            return error(400, str(e))
        except duckdb.InvalidInputException as e:  # e.g. a regular expression RE2 refuses
            return error(400, f"Invalid query: {str(e).splitlines()[0]}")
        except duckdb.Error:
            log.exception("query failed (key %s)", key.id)
            return error(500, "The query failed; the server's log says why.")

    async def export(request: Request) -> Response:
        key = authorize(request)
        if isinstance(key, Response):
            return key
        args = request.query_params
        table, fmt = args.get("table", ""), args.get("format", "csv")
        try:
            first = date.fromisoformat(args["from"]) if args.get("from") else None
            last = date.fromisoformat(args["to"]) if args.get("to") else None
        except ValueError:
            return error(400, "from and to are dates like 2026-02-01.")
        if fmt not in exports.FORMATS:
            return error(400, f"Unknown format '{fmt}': one of {', '.join(exports.FORMATS)}.")
        if table not in exports.TABLES:
            return error(400, f"Unknown table '{table}': one of {', '.join(exports.TABLES)}.")
        spool.mkdir(parents=True, exist_ok=True)
        out = spool / f"{uuid.uuid4().hex}.{fmt}"
        try:
            await run_in_threadpool(exports.export, warehouse_path, table, first, last, fmt,
                                    out)
        except exports.NotPublished as e:  # the server's state, not the request's fault
            return error(503, str(e), {"retry-after": "300"})
        except exports.ExportError as e:
            return error(400, str(e))
        # the days asked for, and only those: events_2026-03-01_2026-03-31, sessions_from_2026-03-01
        days = (f"_{first}_{last}" if first and last else f"_from_{first}" if first
                else f"_to_{last}" if last else "")
        name = f"{table}{days}.{fmt}"
        # deleted once streamed, or after the response when the client left before it began
        return StreamingResponse(exports.chunks(out), media_type=exports.FORMATS[fmt][1],
                                 headers={"content-disposition": f'attachment; filename="{name}"',
                                          "content-length": str(out.stat().st_size)},
                                 background=BackgroundTask(out.unlink, missing_ok=True))

    async def openapi(_: Request) -> Response:
        return JSONResponse(document())

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "warehouse": warehouse_path.exists()})

    async def not_found(_: Request, __: Exception) -> Response:
        return error(404, "Not found. The API answers POST /api/v2/query, GET /api/v1/export, "
                          "GET /api/openapi.json and GET /healthz.")

    async def not_allowed(_: Request, __: Exception) -> Response:
        return error(405, "Method not allowed: this API is read-only.")

    return Starlette(routes=[
        Route("/api/v2/query", query, methods=["POST"]),
        Route("/api/v1/export", export, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ], exception_handlers={404: not_found, 405: not_allowed})


def access_log(app: Callable) -> Callable:
    """The access log: method, path, status and milliseconds, never a header nor the query
    string (uvicorn's own log prints the query string, where a client may have put its key)."""

    async def logged(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        t0 = time.perf_counter()
        status = [0]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            log.info("%s %s %d %.0f ms", scope["method"], scope["path"], status[0],
                     (time.perf_counter() - t0) * 1000)

    return logged


def serve(app: Starlette, host: str, port: int) -> None:
    """Run ``app`` on uvicorn, with :func:`access_log` in place of uvicorn's, on the collector's
    guarded protocol (head timeout, connection cap), its answers in the API's error shape."""
    import uvicorn

    from analytics_platform.ingest.privacy import scrub_logs

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counters: Counter[str] = Counter()
    protocol = guarded_protocol(CollectorLimits.from_env(ENV_PREFIX), counters,
                                lambda _reason, message: {"error": message}, "API")
    config = uvicorn.Config(access_log(app), host=host, port=port, log_level="info",
                            access_log=False, timeout_graceful_shutdown=10,
                            proxy_headers=False, http=protocol)
    scrub_logs()  # a path or an exception's message may quote a request (docs/PRIVACY.md)
    uvicorn.Server(config).run()
