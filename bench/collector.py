"""The local collector on loopback, from one client process: throughput and latency of single
and batched posts, latency at a fixed 1,000 requests/s, and the time from a request to its
record on disk (raw lake) with the default flush settings.

    python bench/collector.py [--requests 4000] [--concurrency 16] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # analytics_platform_tests.chromium
sys.path.insert(0, str(ROOT / "bench"))

from report import section  # noqa: E402

CLI = str(Path(sys.executable).with_name("analytics-platform"))


def event() -> dict:
    return {"event_type": "page_view", "event_id": str(uuid.uuid4()),
            "session_id": str(uuid.uuid4()), "page_path": "/pricing",
            "page_host": "www.example.com",
            "event_ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data: Path, flush_seconds: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data)}
    env.pop("ANALYTICS_RAW_URL", None)
    proc = subprocess.Popen([CLI, "collect", "--port", str(port), "--flush-seconds",
                             str(flush_seconds)], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("collector did not start")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def load(url: str, requests: int, per_request: int, concurrency: int,
               rate: float | None = None) -> dict[str, float]:
    """``concurrency`` keep-alive HTTP/1.1 connections from this one process. A minimal client
    on raw asyncio streams: httpx's own overhead (about 1 ms a request) would be measured
    otherwise. Bodies are made before the clock starts."""
    port = int(url.rsplit(":", 1)[1])
    bodies = [json.dumps([event() for _ in range(per_request)] if per_request > 1
                         else event()).encode() for _ in range(requests)]
    lat: list[float] = []
    next_i = 0

    async def worker(t_start: float) -> None:
        nonlocal next_i
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while next_i < requests:
            i = next_i
            next_i += 1
            if rate:
                await asyncio.sleep(max(0.0, t_start + i / rate - time.perf_counter()))
            body = bodies[i]
            t0 = time.perf_counter()
            writer.write(b"POST /v1/events HTTP/1.1\r\nHost: bench\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            assert status == 202, head
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(t0) for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    return {"events_per_s": requests * per_request / seconds, "requests_per_s": requests / seconds,
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3}


def to_disk(url: str, data: Path, samples: int) -> list[float]:
    """Seconds from a 202 to the event being in a raw-lake object."""
    out = []
    for _ in range(samples):
        ev = event()
        t0 = time.perf_counter()
        httpx.post(f"{url}/v1/events", content=json.dumps(ev),
                   headers={"content-type": "application/json"})
        while True:
            found = any(ev["event_id"].encode() in gzip.decompress(p.read_bytes())
                        for p in (data / "raw").rglob("*.gz"))
            if found:
                out.append(time.perf_counter() - t0)
                break
            time.sleep(0.05)
        time.sleep(1.7)  # land at different points of the flush cycle
    return out


def click_to_disk(url: str, data: Path, samples: int) -> list[float]:
    """Seconds from a click on the demo page's CTA (Chromium) to its record in the raw lake:
    the tracker's batching (5 s, or at once when the page is hidden) plus the collector's flush."""
    from playwright.sync_api import sync_playwright

    from analytics_platform_tests import chromium

    out = []
    with sync_playwright() as p:
        browser = chromium.launch(p)
        for _ in range(samples):
            page = browser.new_page(user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/"
                                    "537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
            page.goto(f"{url}/demo")
            page.wait_for_function("window.analytics !== undefined")
            t0 = time.perf_counter()
            page.click("#cta")
            session = page.evaluate("JSON.parse(localStorage.getItem('_an_s')).id")
            while True:
                hit = False
                for f in (data / "raw").rglob("*.gz"):
                    for line in gzip.decompress(f.read_bytes()).splitlines():
                        r = json.loads(line)
                        hit |= r["session_id"] == session and r["event_type"] == "cta_click"
                if hit:
                    out.append(time.perf_counter() - t0)
                    break
                time.sleep(0.1)
            page.close()
            time.sleep(1.3)
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--disk-samples", type=int, default=5)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-collector-", dir=ROOT))
    rows = []
    try:
        proc, url = start(folder / "a", flush_seconds=10)
        try:
            single = asyncio.run(load(url, args.requests, 1, args.concurrency))
            batch = asyncio.run(load(url, args.requests // 4, 20, args.concurrency))
            paced = asyncio.run(load(url, 5000, 1, 64, rate=1000))
            disk = to_disk(url, folder / "a", args.disk_samples)
            from analytics_platform_tests import chromium

            click = click_to_disk(url, folder / "a", args.disk_samples) if (
                chromium.available()) else []
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        rows = [
            (f"single-event posts ({args.requests:,}, {args.concurrency} in flight)",
             f"{single['events_per_s']:,.0f} events/s",
             f"p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms"),
            (f"batches of 20 ({args.requests // 4:,} posts, {args.concurrency} in flight)",
             f"{batch['events_per_s']:,.0f} events/s",
             f"p50 {batch['p50_ms']:.1f} ms, p99 {batch['p99_ms']:.1f} ms"),
            ("single-event posts paced at 1,000 requests/s (5 s)",
             f"{paced['requests_per_s']:,.0f} requests/s",
             f"p50 {paced['p50_ms']:.1f} ms, p99 {paced['p99_ms']:.1f} ms"),
            (f"202 → record in the raw lake (default flush 10 s, {len(disk)} samples)",
             f"median {statistics.median(disk):.1f} s", f"max {max(disk):.1f} s"),
        ]
        if click:
            rows.append((f"click in Chromium → its record in the raw lake (tracker batch 5 s + "
                         f"flush 10 s, {len(click)} samples)",
                         f"median {statistics.median(click):.1f} s", f"max {max(click):.1f} s"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    section("Collector on loopback, one client process (keep-alive HTTP/1.1 on asyncio "
            "streams).", "| measure | throughput | latency |",
            [f"| {a} | {b} | {c} |" for a, b, c in rows], args.record)


if __name__ == "__main__":
    main()
