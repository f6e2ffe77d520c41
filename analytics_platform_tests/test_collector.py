"""The local collector as a real server process: acknowledged events survive kill -9 and reach
the raw lake exactly once; a burst of concurrent requests loses nothing."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from analytics_platform_tests.test_contract import good

CLI = str(Path(sys.executable).with_name("analytics-platform"))
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_health(proc: subprocess.Popen, url: str, seconds: float = 30) -> bool:
    """Whether the server ``proc`` answers ``GET {url}/healthz`` with 200 within ``seconds``
    (False as soon as it exits)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


class Collector:
    """``analytics-platform collect`` as a child process; ``env`` adds to (``None`` removes from)
    its environment, ``preexec_fn`` runs in the child before it starts (resource limits)."""

    def __init__(self, data: Path, flush_seconds: float, env: dict[str, str | None] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.data, self.port = data, free_port()
        full = {**os.environ, "ANALYTICS_DATA_DIR": str(data)}
        full.pop("ANALYTICS_RAW_URL", None)
        for k, v in (env or {}).items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        # Output to a file, not a pipe: nobody reads a pipe while the test runs, and a full one
        # would block the collector's logging.
        self.log = data.parent / f"collector-{self.port}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [CLI, "collect", "--port", str(self.port), "--flush-seconds", str(flush_seconds)],
                env=full, stdout=out, stderr=subprocess.STDOUT, text=True,
                preexec_fn=preexec_fn)
        self.url = f"http://127.0.0.1:{self.port}"
        if answers_health(self.proc, self.url):
            return
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"the collector did not start (exit {self.proc.returncode}): "
                           f"{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


@pytest.fixture()
def collector_factory(tmp_path: Path) -> Iterator:
    started: list[Collector] = []

    def start(flush_seconds: float = 60.0, env: dict[str, str | None] | None = None,
              preexec_fn: Callable[[], None] | None = None) -> Collector:
        c = Collector(tmp_path / "data", flush_seconds, env, preexec_fn)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()


def lake_event_ids(data: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for p in (data / "raw").rglob("*.gz"):
        for line in gzip.decompress(p.read_bytes()).splitlines():
            ids[json.loads(line)["event_id"]] += 1
    return ids


def post(url: str, events: list[dict]) -> httpx.Response:
    return httpx.post(f"{url}/v1/events", content=json.dumps(events),
                      headers={"content-type": "application/json", "user-agent": UA}, timeout=10)


def test_acknowledged_events_survive_kill_9(collector_factory) -> None:
    c = collector_factory(flush_seconds=3600)  # nothing flushes before the kill
    acked = []
    for i in range(40):
        batch = [good(event_id=str(uuid.uuid4())) for _ in range(1 + i % 3)]
        r = post(c.url, batch)
        assert r.status_code == 202
        acked += [e["event_id"] for e in batch]
    assert lake_event_ids(c.data) == Counter()
    c.stop(signal.SIGKILL)
    assert list((c.data / "spool").glob("seg-*"))

    again = collector_factory(flush_seconds=3600)
    metrics = httpx.get(f"{again.url}/metrics").json()
    assert metrics["recovered_segments"] >= 1
    assert lake_event_ids(again.data) == Counter({i: 1 for i in acked})
    again.stop(signal.SIGKILL)  # recovery already flushed: a second crash changes nothing
    third = collector_factory(flush_seconds=3600)
    third.stop()
    assert lake_event_ids(third.data) == Counter({i: 1 for i in acked})


def test_a_burst_of_concurrent_requests_loses_nothing(collector_factory) -> None:
    c = collector_factory(flush_seconds=0.5)

    async def burst() -> list[tuple[int, list[str]]]:
        async with httpx.AsyncClient(base_url=c.url, timeout=30,
                                     limits=httpx.Limits(max_connections=64)) as client:
            async def one() -> tuple[int, list[str]]:
                batch = [good(event_id=str(uuid.uuid4())) for _ in range(5)]
                r = await client.post("/v1/events", content=json.dumps(batch),
                                      headers={"content-type": "application/json"})
                return r.status_code, [e["event_id"] for e in batch]

            return await asyncio.gather(*(one() for _ in range(400)))

    results = asyncio.run(burst())
    assert {s for s, _ in results} == {202}
    sent = [i for _, ids in results for i in ids]
    c.stop()  # graceful: flushes the spool
    assert lake_event_ids(c.data) == Counter({i: 1 for i in sent})
    assert not list((c.data / "spool").glob("seg-*"))


def test_health_metrics_tracker_and_demo_page(collector_factory) -> None:
    c = collector_factory(flush_seconds=0.2)
    assert post(c.url, [good(event_id=str(uuid.uuid4()))]).status_code == 202
    assert post(c.url, [good(event_id="bad")]).status_code == 400
    r = httpx.options(f"{c.url}/v1/events", headers={"origin": "https://site.example",
                                                     "access-control-request-method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://site.example"
    time.sleep(1.0)
    m = httpx.get(f"{c.url}/metrics").json()
    assert m["accepted"] == 1 and m["rejected"] == {"not_uuid:event_id": 1}
    assert m["flushed_objects"] >= 1 and m["flushed_records"] == 1
    js = httpx.get(f"{c.url}/analytics.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "data-endpoint" in httpx.get(f"{c.url}/demo").text
    c.stop()


def test_json_nested_too_deep_is_a_400_and_the_collector_carries_on(collector_factory) -> None:
    # deeper than orjson's 1,024 levels: the json module's fallback raised RecursionError,
    # answered 500 internal_error
    c = collector_factory(flush_seconds=0.2)
    r = httpx.post(f"{c.url}/v1/events", content=b"[" * 20000 + b"]" * 20000,
                   headers={"content-type": "application/json", "user-agent": UA}, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["reason"] == "invalid_json"
    assert post(c.url, [good(event_id=str(uuid.uuid4()))]).status_code == 202
    c.stop()


def test_metrics_stay_bounded_whatever_props_keys_clients_make_up(collector_factory) -> None:
    """A refusal's reason quotes the client's props key: 250 made-up keys give 200 labels in
    /metrics, and the other 50 refusals are still counted, together."""
    from analytics_platform.ingest.collector import MAX_REASON_LABELS, OTHER_REASONS

    c = collector_factory()
    for batch in range(5):
        events = [good(event_id=str(uuid.uuid4()), props={f"k{batch}x{i}": [1]})
                  for i in range(50)]
        assert post(c.url, events).status_code == 400
    assert post(c.url, [good(event_id=str(uuid.uuid4()), props={"k0x0": [1]})]
                ).status_code == 400
    rejected = httpx.get(f"{c.url}/metrics").json()["rejected"]
    assert len(rejected) == MAX_REASON_LABELS + 1 == 201
    assert rejected[OTHER_REASONS] == 250 - MAX_REASON_LABELS == 50
    assert rejected["props_bad_value:props.k0x0"] == 2  # a known label keeps counting
    assert sum(rejected.values()) == 251
    c.stop()


class _SlowLake:
    """A raw lake whose writes take a while, and that says when one has begun."""

    def __init__(self, root: Path) -> None:
        from analytics_platform.lake import open_raw_lake

        self.inner, self.began = open_raw_lake(root), asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    def write_records(self, *args: object, **kwargs: object) -> object:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.began.set)
        time.sleep(0.5)
        return self.inner.write_records(*args, **kwargs)


def test_stop_returns_only_once_a_flush_under_way_has_reached_the_lake(tmp_path: Path) -> None:
    """A shutdown that lands while the timed flush is writing a segment waits for that write:
    when stop() returns, every acknowledged record is in the raw lake (not left for the next
    start to recover)."""
    from analytics_platform.ingest.spool import Spool

    lake = _SlowLake(tmp_path / "raw")
    spool = Spool(tmp_path / "spool", lake, flush_seconds=0.05)  # type: ignore[arg-type]

    async def run() -> None:
        lake.loop = asyncio.get_running_loop()
        await spool.start()
        await spool.append(b'{"ingest_ts": "2026-03-02T10:00:00.000Z", "n": 1}\n')
        await lake.began.wait()  # the timed flush is writing the segment now
        await spool.stop()
        # looked at before the event loop closes (closing it waits for its worker threads)
        objects = list((tmp_path / "raw").rglob("*.gz"))
        assert [gzip.decompress(p.read_bytes()) for p in objects] == [
            b'{"ingest_ts": "2026-03-02T10:00:00.000Z", "n": 1}\n']
        assert list((tmp_path / "spool").glob("seg-*")) == []

    asyncio.run(run())


def test_a_second_collector_on_the_same_data_folder_refuses_to_start(tmp_path: Path) -> None:
    """Two collectors on one data folder took each other's open segment for a closed one and
    deleted it after flushing: of 100 events acknowledged by the first, 10 reached the lake.
    The second now refuses to start, saying why; the first loses nothing; and once the first
    is gone (kill -9: the kernel drops its lock) the next one starts and recovers its segment."""
    data = tmp_path / "data"
    first = Collector(data, 3600)
    try:
        acked = []
        for _ in range(20):
            batch = [good(event_id=str(uuid.uuid4()))]
            assert post(first.url, batch).status_code == 202
            acked += [e["event_id"] for e in batch]
        try:
            second = Collector(data, 0.2)  # would flush (and delete) the first one's segment
        except RuntimeError as e:
            assert "did not start" in str(e)
        else:
            second.proc.kill()
            second.proc.wait()
            pytest.fail("a second collector started on the same data folder")
        logs = sorted(tmp_path.glob("collector-*.log"), key=lambda p: p.stat().st_mtime)
        assert "another collector is running on the spool folder" in logs[-1].read_text()
        for _ in range(20):  # the first goes on as before
            batch = [good(event_id=str(uuid.uuid4()))]
            assert post(first.url, batch).status_code == 202
            acked += [e["event_id"] for e in batch]
        assert lake_event_ids(data) == Counter()  # nothing flushed (nor deleted) behind its back
        first.stop(signal.SIGKILL)
        after = Collector(data, 3600)  # the dead one's lock is free: recovery as usual
        after.stop()
        assert lake_event_ids(data) == Counter({i: 1 for i in acked})
    finally:
        if first.proc.poll() is None:
            first.proc.kill()


def _damaged(spool: Path, name: str, age_days: float) -> list[Path]:
    """A parked segment's two files (spool._park), last written ``age_days`` ago."""
    folder = spool / "damaged"
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{name}.ndjson", folder / f"{name}.reason.json"]
    files[0].write_bytes(b'{"event_id": "dam\n')
    files[1].write_text('{"lines": [{"line": 1, "reason": "invalid_json"}]}')
    then = time.time() - age_days * 86400
    for f in files:
        os.utime(f, (then, then))
    return files


def test_parked_lines_are_deleted_after_their_retention(tmp_path: Path) -> None:
    """Parked lines (spool/damaged/) are raw records as the handler made them: kept
    DAMAGED_KEEP_DAYS for someone to look at, then deleted (they were kept for ever)."""
    from analytics_platform.ingest.spool import DAMAGED_KEEP_DAYS, Spool
    from analytics_platform.lake import open_raw_lake

    spool = Spool(tmp_path / "spool", open_raw_lake(tmp_path / "raw"))
    assert spool.purge_damaged(time.time()) == 0  # no damaged/ folder yet
    old = _damaged(tmp_path / "spool", "seg-old", DAMAGED_KEEP_DAYS + 0.01)
    new = _damaged(tmp_path / "spool", "seg-new", DAMAGED_KEEP_DAYS - 0.01)
    leftover = tmp_path / "spool" / "damaged" / ".seg-old.ndjson.tmp"  # a crash mid-park
    leftover.write_bytes(b"x")
    os.utime(leftover, (0, 0))
    assert spool.purge_damaged(time.time()) == 3
    assert sorted(p.name for p in (tmp_path / "spool" / "damaged").iterdir()) == sorted(
        p.name for p in new)
    assert not any(p.exists() for p in old)
    # the clock decides, not the call: a day later the others are due too
    assert spool.purge_damaged(time.time() + 86400) == 2


def test_the_collector_deletes_expired_parked_lines_on_its_timer(collector_factory,
                                                                 tmp_path: Path) -> None:
    """The collector runs the retention on the timer that purges salts (at its start, then
    every minute), whether or not a request comes: 31 days is past the 30 of DAMAGED_KEEP_DAYS."""
    spool = tmp_path / "data" / "spool"
    old = _damaged(spool, "seg-old", 31)
    new = _damaged(spool, "seg-new", 1)
    c = collector_factory()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(p.exists() for p in old):
        time.sleep(0.1)
    c.stop()
    assert not any(p.exists() for p in old) and all(p.exists() for p in new)
