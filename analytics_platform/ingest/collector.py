"""The local collector (the embedded default): the ingest handler behind a real ASGI server.

    analytics-platform collect --port 8000

``POST /v1/events`` runs the same ``Ingestor`` as the Lambda and stores accepted records in the
write-ahead spool (spool.py), which flushes them to the raw lake in Firehose's layout. It is
served straight on ASGI; the preflight and the other routes by Starlette.
``GET /analytics.js`` serves the tracker, ``GET /demo`` a page that uses it, ``GET /healthz``
and ``GET /metrics`` the collector's state and counters.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from analytics_platform.contract import encode_json, encode_records
from analytics_platform.ingest.core import IngestConfig, Ingestor
from analytics_platform.ingest.spool import Spool
from analytics_platform.lake import RawLake

TRACKER_DIR = Path(__file__).resolve().parent.parent / "tracker"


def create_app(lake: RawLake, spool_dir: Path, config: IngestConfig | None = None,
               flush_seconds: float = 10.0, flush_bytes: int = 8 * 1024 * 1024) -> Callable:
    ingestor = Ingestor(config or IngestConfig.from_env())
    spool = Spool(spool_dir, lake, flush_seconds, flush_bytes)
    counters: Counter[str] = Counter()
    rejected: Counter[str] = Counter()

    async def handle_events(method: str, headers: dict[str, str], body: bytes
                            ) -> tuple[int, dict[str, str], bytes]:
        prepared = ingestor.prepare(method, headers, body)
        for reason in prepared.rejected_reasons:
            rejected[reason] += 1
        r = prepared.response
        if prepared.records:
            try:
                await spool.append(encode_records(prepared.records))
            except OSError as e:
                counters["spool_errors"] += 1
                return 503, {**r.headers, "content-type": "application/json"}, encode_json(
                    {"reason": "spool_unavailable", "message": str(e)[:200]})
            counters["accepted"] += len(prepared.records)
        counters["requests"] += 1
        return r.status, r.headers, r.body

    async def events(request: Request) -> Response:
        status, headers, body = await handle_events(
            request.method, {k.lower(): v for k, v in request.headers.items()},
            await request.body())
        return Response(body, status_code=status, headers=headers)

    async def tracker(_: Request) -> Response:
        return FileResponse(TRACKER_DIR / "analytics.js", media_type="application/javascript",
                            headers={"cache-control": "public, max-age=300"})

    async def demo(_: Request) -> Response:
        return HTMLResponse((TRACKER_DIR / "demo.html").read_text())

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "raw_lake": lake.url})

    async def metrics(_: Request) -> Response:
        return JSONResponse({
            "requests": counters["requests"],
            "accepted": counters["accepted"],
            "rejected": dict(rejected),
            "spool_errors": counters["spool_errors"],
            "flushed_objects": spool.stats.flushed_objects,
            "flushed_records": spool.stats.flushed_records,
            "recovered_segments": spool.stats.recovered_segments,
            "spool_pending_bytes": spool.pending_bytes(),
        })

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):
        await spool.start()
        try:
            yield
        finally:
            await spool.stop()  # graceful shutdown flushes what is spooled

    app = Starlette(routes=[
        Route("/v1/events", events, methods=["POST", "OPTIONS"]),
        Route("/analytics.js", tracker, methods=["GET"]),
        Route("/demo", demo, methods=["GET"]),
        Route("/demo/{page:path}", demo, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.spool = spool

    async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
        # The hot path, POST /v1/events, straight on ASGI: Starlette's middleware and routing
        # were ~30 % of the collector's CPU on batches (py-spy). Everything else goes to `app`.
        if scope["type"] != "http" or scope["path"] != "/v1/events" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        status, out_headers, body = await handle_events("POST", headers, b"".join(chunks))
        await send({"type": "http.response.start", "status": status, "headers": [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in {**out_headers, "content-length": str(len(body))}.items()]})
        await send({"type": "http.response.body", "body": body})

    asgi.state = app.state  # type: ignore[attr-defined]
    return asgi
