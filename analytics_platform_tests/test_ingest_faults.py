"""The collector under real faults: oversized, slow and half-sent requests, too many connections,
a file-size limit and a full file system under the spool, damaged spool segments, a raw lake
(local or S3) that refuses writes for a while. What is measured each time: acknowledged (2xx)
events lost = 0, counted in the raw lake after recovery."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from analytics_platform.contract import encode_records
from analytics_platform.ingest.core import IngestConfig, Ingestor
from analytics_platform_tests.test_collector import (
    UA,
    collector_factory,  # noqa: F401  (a fixture)
    lake_event_ids,
    post,
)
from analytics_platform_tests.test_contract import good

LIMIT = 64 * 1024


def batch(n: int) -> list[dict[str, Any]]:
    return [good(event_id=str(uuid.uuid4())) for _ in range(n)]


def send_batches(url: str, rounds: int, size: int = 3) -> tuple[list[str], Counter[int]]:
    """Post ``rounds`` batches; the event ids the collector acknowledged, and the statuses."""
    acked: list[str] = []
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(rounds):
            events = batch(size)
            r = client.post("/v1/events", content=json.dumps(events),
                            headers={"content-type": "application/json", "user-agent": UA})
            statuses[r.status_code] += 1
            if 200 <= r.status_code < 300:
                acked += [e["event_id"] for e in events]
            else:
                assert r.headers["content-type"] == "application/json"
                assert r.json()["reason"]
    return acked, statuses


def figures(record: Callable[[str, object], None], acked: list[str], statuses: Counter[int],
            found: Counter[str], flush_failures: int | None = None) -> None:
    """The figures of a fault test, in the JUnit report (``--junitxml``)."""
    record("acknowledged", len(acked))
    record("refused_503", statuses[503])
    record("acknowledged_lost", len(set(acked) - set(found)))
    record("duplicated", sum(n - 1 for n in found.values()))
    if flush_failures is not None:
        record("flush_failures", flush_failures)


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s: {check.__doc__ or check}")
        time.sleep(0.1)


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/healthz", timeout=5).json()


# --- raw HTTP, for what a well-behaved client never sends -------------------------------------


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=15)
    return s


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (the server closes the connection or sends content-length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    n = int(headers.get("content-length", "-1"))
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def request_head(content_length: int | None) -> bytes:
    length = (f"content-length: {content_length}\r\n" if content_length is not None
              else "transfer-encoding: chunked\r\n")
    return (f"POST /v1/events HTTP/1.1\r\nhost: collector\r\ncontent-type: application/json\r\n"
            f"{length}\r\n").encode()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def stream_body(s: socket.socket, total: int, chunked: bool) -> int:
    """Send up to ``total`` bytes of body in 1 MiB pieces, stopping as soon as the server has
    answered (or closed); returns the bytes sent."""
    piece = b" " * (1 << 20)
    sent = 0
    while sent < total:
        if select.select([s], [], [], 0)[0]:
            break  # the answer is there: the server stopped reading
        data = piece[: total - sent]
        try:
            s.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        except OSError:  # reset by the server, which refused the rest
            break
        sent += len(data)
    if sent == total and chunked:
        s.sendall(b"0\r\n\r\n")
    return sent


# --- the request body ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_300_mb_post_is_refused_without_being_read(collector_factory, chunked: bool) -> None:  # noqa: F811
    """A body over 64 KiB is refused from its Content-Length before any of it is read, and a
    chunked one (no length) as soon as it passes the limit: the collector's memory does not grow
    with the body (it went from 35 MB to 335 MB on this 300 MB POST)."""
    c = collector_factory()
    before = rss_kib(c.proc.pid)
    with connect(c.url) as s:
        s.sendall(request_head(None if chunked else 300_000_000))
        sent = stream_body(s, 300_000_000, chunked)
        status, headers, body = read_response(s)
    assert status == 413 and headers["content-type"] == "application/json"
    assert json.loads(body)["reason"] == "body_too_large"
    assert sent < 300_000_000
    peak = rss_kib(c.proc.pid, "VmHWM")  # the process's peak resident memory
    assert peak - before < 32 * 1024, (before, peak)
    assert post(c.url, batch(2)).status_code == 202  # and it goes on serving
    m = httpx.get(f"{c.url}/metrics").json()
    assert m["rejected"] == {"body_too_large": 1}


def test_a_body_of_exactly_the_limit_is_read(collector_factory) -> None:  # noqa: F811
    c = collector_factory()
    events = batch(1)
    body = json.dumps(events).encode()
    body += b" " * (LIMIT - len(body))
    for chunked in (False, True):
        with connect(c.url) as s:
            s.sendall(request_head(None if chunked else len(body)))
            s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body)
            status, _, _ = read_response(s)
        assert status == 202


def test_a_half_sent_body_is_cut_off(collector_factory) -> None:  # noqa: F811
    """A client that announces 1,000 bytes and sends 100 gets a 408 after the body time limit,
    and the connection is closed (half-sent bodies stayed open for 20 s and more)."""
    c = collector_factory(env={"ANALYTICS_COLLECTOR_BODY_SECONDS": "1"})
    with connect(c.url) as s:
        s.sendall(request_head(1000) + b"[" + b" " * 99)
        status, headers, body = read_response(s)
        assert status == 408 and json.loads(body)["reason"] == "body_timeout"
        assert headers.get("connection") == "close"
        assert s.recv(1) == b""  # closed


def test_a_request_head_that_never_ends_is_cut_off(collector_factory) -> None:  # noqa: F811
    c = collector_factory(env={"ANALYTICS_COLLECTOR_HEADER_SECONDS": "1"})
    with connect(c.url) as s:
        s.sendall(b"POST /v1/events HTTP/1.1\r\nhost: collector\r\n")  # and nothing more
        status, _, body = read_response(s)
        assert status == 408 and json.loads(body)["reason"] == "header_timeout"
        assert s.recv(1) == b""


def test_connections_are_bounded(collector_factory) -> None:  # noqa: F811
    """Past the connection limit a new connection is answered 503 (JSON, with Retry-After) and
    closed; once the idle ones go, requests are served again."""
    c = collector_factory(env={"ANALYTICS_COLLECTOR_MAX_CONNECTIONS": "8",
                               "ANALYTICS_COLLECTOR_HEADER_SECONDS": "60"})
    idle = [connect(c.url) for _ in range(8)]
    for s in idle:
        s.sendall(b"POST /v1/events HTTP/1.1\r\n")
    answers: list[httpx.Response] = []

    def refused() -> bool:  # once the server has taken the 8 idle connections
        answers.append(post(c.url, batch(1)))
        return answers[-1].status_code == 503

    wait_for(refused, 10)
    r = answers[-1]
    assert r.json()["reason"] == "too_many_connections"
    assert r.headers["retry-after"]
    for s in idle:
        s.close()
    wait_for(lambda: post(c.url, batch(1)).status_code == 202, 10)
    assert httpx.get(f"{c.url}/metrics").json()["refused_connections"] >= 1


# --- the spool's disk -------------------------------------------------------------------------


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec; Python ignores SIGXFSZ itself
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_under_the_spool_loses_no_acknowledged_event(
        collector_factory, record_property: Callable[[str, object], None]) -> None:  # noqa: F811
    """RLIMIT_FSIZE in the collector's process (a full disk for the segment being written):
    writes are cut short, then refused. A short write used to be acknowledged (206 answered 202,
    205 reached the lake); now a write that cannot complete answers 503 and is cut back out of
    the segment, and every 2xx is in the lake exactly once."""
    c = collector_factory(flush_seconds=3600, preexec_fn=_limit_file_size(20_000))
    acked, statuses = send_batches(c.url, 150)
    assert statuses[202] and statuses[503], statuses  # the fault happened
    m = httpx.get(f"{c.url}/metrics").json()
    assert m["spool_errors"] == statuses[503]
    c.stop()  # flushes (the lake's objects are gzip, under the limit)
    found = lake_event_ids(c.data)
    figures(record_property, acked, statuses, found)
    assert found == Counter({i: 1 for i in acked})
    assert not list((c.data / "spool").glob("seg-*"))


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[None]:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(where)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_file_system_under_the_spool_loses_no_acknowledged_event(
        collector_factory, tmp_path: Path,  # noqa: F811
        record_property: Callable[[str, object], None]) -> None:
    """The spool on a 128 KiB tmpfs that really fills up: 503s while it is full, 202s again once
    the flusher has moved segments to the lake (on another file system)."""
    with small_tmpfs(tmp_path / "data" / "spool", "128k"):
        c = collector_factory(flush_seconds=0.3)
        acked, statuses = send_batches(c.url, 1500, size=10)
        assert statuses[202] and statuses[503], statuses
        c.stop()
        found = lake_event_ids(c.data)
        figures(record_property, acked, statuses, found)
        assert found == Counter({i: 1 for i in acked})


# --- damaged spool segments ---------------------------------------------------------------------


def raw_lines(n: int) -> tuple[bytes, list[str]]:
    events = batch(n)
    prepared = Ingestor(IngestConfig(("*",))).prepare(
        "POST", {"content-type": "application/json", "user-agent": UA},
        json.dumps(events).encode())
    return encode_records(prepared.records), [e["event_id"] for e in events]


def test_a_damaged_spool_segment_is_parked_and_the_rest_delivered(
        collector_factory, tmp_path: Path,  # noqa: F811
        record_property: Callable[[str, object], None]) -> None:
    """Segments a crashed process left: the first with a damaged first line (it stopped the
    collector from starting, exit 3, and the segments after it were never recovered), one with
    a damaged line in the middle and a torn last line, one intact, one with an unexpected name.
    The collector starts, delivers every readable record and parks the rest with a reason."""
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    a, ids_a = raw_lines(3)
    b1, ids_b1 = raw_lines(2)
    b2, ids_b2 = raw_lines(2)
    c_, ids_c = raw_lines(4)
    d, ids_d = raw_lines(1)
    (spool / f"seg-20260302T100000-{uuid.uuid4().hex}.ndjson").write_bytes(
        b'\x00\x00\x00{"event_id": "dam' + b"\n" + a)
    (spool / f"seg-20260302T100001-{uuid.uuid4().hex}.ndjson").write_bytes(
        b1 + b'{"not": "a record"}\n' + b"[1, 2]\n" + b2 + b'{"event_id": "torn')
    (spool / f"seg-20260302T100002-{uuid.uuid4().hex}.ndjson").write_bytes(c_)
    (spool / "seg-odd-name.ndjson").write_bytes(d)

    col = collector_factory()
    expected = Counter({i: 1 for i in ids_a + ids_b1 + ids_b2 + ids_c + ids_d})
    assert lake_event_ids(col.data) == expected
    m = httpx.get(f"{col.url}/metrics").json()
    record_property("records_delivered", sum(expected.values()))
    record_property("lines_parked", m["parked_lines"])
    assert m["parked_lines"] == 3 and m["parked_segments"] == 2
    assert m["recovered_segments"] == 4
    parked = sorted((spool / "damaged").glob("*.ndjson"))
    assert len(parked) == 2
    assert b"".join(p.read_bytes() for p in parked).count(b"\n") == 3
    reasons = [json.loads(p.with_suffix(".reason.json").read_text()) for p in parked]
    assert sorted(x["reason"] for r in reasons for x in r["lines"]) == [
        "invalid_json", "no_ingest_ts", "not_an_object"]
    assert health(col.url)["parked_lines"] == 3
    col.stop()
    assert "parked" in col.log.read_text()
    again = collector_factory()  # parked lines are not delivered again, nor parked twice
    again.stop()
    assert lake_event_ids(again.data) == expected
    assert len(list((spool / "damaged").glob("*.ndjson"))) == 2


# --- the raw lake refusing writes for a while -----------------------------------------------------


def test_an_unwritable_lake_folder_degrades_health_then_recovers(
        collector_factory, record_property: Callable[[str, object], None]) -> None:  # noqa: F811
    """The lake's folder replaced by a file (chmod does not stop root): each timed flush fails.
    The flusher used to stop at the first failure, silently, while /healthz said ok. Now it
    retries with backoff, /healthz says degraded with the reason (and no path), /metrics counts
    the failures, and once the folder can be written again everything acknowledged arrives."""
    c = collector_factory(flush_seconds=0.2)
    raw = c.data / "raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text("not a folder")
    acked, statuses = send_batches(c.url, 20)
    assert statuses == Counter({202: 20})
    wait_for(lambda: health(c.url)["status"] == "degraded")
    h = health(c.url)
    assert h["reason"].startswith("raw_lake_write_failed")
    assert str(c.data) not in json.dumps(h)
    more, _ = send_batches(c.url, 5)  # still accepting into the spool meanwhile
    # the flusher keeps retrying (with backoff: the second try comes about a second later)
    wait_for(lambda: httpx.get(f"{c.url}/metrics").json()["flush_failures"] >= 2)
    m = httpx.get(f"{c.url}/metrics").json()
    assert m["flush_failures"] >= 2 and m["spool_pending_bytes"] > 0
    raw.unlink()
    wait_for(lambda: health(c.url)["status"] == "ok")
    assert lake_event_ids(c.data) == Counter({i: 1 for i in acked + more})
    c.stop()
    assert "flush" in c.log.read_text()
    found = lake_event_ids(c.data)
    figures(record_property, acked + more, statuses, found, m["flush_failures"])
    assert found == Counter({i: 1 for i in acked + more})


def s3_event_ids(bucket: str, endpoint: str) -> Counter[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    ids: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
            for line in body.splitlines():
                ids[json.loads(line)["event_id"]] += 1
    return ids


@pytest.mark.s3
def test_s3_refusing_puts_for_a_while_loses_nothing(
        collector_factory, moto_endpoint: str,  # noqa: F811
        record_property: Callable[[str, object], None]) -> None:
    """The raw lake on moto's S3 server; the bucket is deleted (every PUT fails: NoSuchBucket)
    and created again a few seconds later."""
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    c = collector_factory(flush_seconds=0.2, env={
        "ANALYTICS_RAW_URL": f"s3://{bucket}/raw", "AWS_ENDPOINT_URL": moto_endpoint})
    first, _ = send_batches(c.url, 5)
    wait_for(lambda: sum(s3_event_ids(bucket, moto_endpoint).values()) == len(first))
    saved = s3_event_ids(bucket, moto_endpoint)
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=o["Key"])
    s3.delete_bucket(Bucket=bucket)
    acked, statuses = send_batches(c.url, 20)
    assert statuses == Counter({202: 20})
    wait_for(lambda: health(c.url)["status"] == "degraded")
    assert "NoSuchBucket" in health(c.url)["reason"]
    s3.create_bucket(Bucket=bucket)
    wait_for(lambda: health(c.url)["status"] == "ok")
    failures = httpx.get(f"{c.url}/metrics").json()["flush_failures"]
    c.stop()
    found = s3_event_ids(bucket, moto_endpoint)
    figures(record_property, acked, statuses, found, failures)
    assert found == Counter({i: 1 for i in acked})
    assert saved == Counter({i: 1 for i in first})


# --- every answer is JSON with a reason -----------------------------------------------------------


def test_every_error_answers_json_with_a_reason_and_root_lists_endpoints(collector_factory  # noqa: F811
                                                                          ) -> None:
    c = collector_factory()
    cases = [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/v1/events", 405, "method_not_allowed"),
        ("PUT", "/v1/events", 405, "method_not_allowed"),
        ("POST", "/healthz", 405, "method_not_allowed"),
        ("DELETE", "/analytics.js", 405, "method_not_allowed"),
    ]
    for method, path, status, reason in cases:
        r = httpx.request(method, f"{c.url}{path}")
        assert (r.status_code, r.headers["content-type"]) == (status, "application/json"), path
        assert r.json()["reason"] == reason
    for raw in (b"POST /v1/events HTTP/1.1\r\nhost: c\r\ncontent-length: x\r\n\r\n[]",
                b"NOT HTTP AT ALL\r\n\r\n"):
        with connect(c.url) as s:
            s.sendall(raw)
            status, headers, body = read_response(s)
        assert (status, headers["content-type"]) == (400, "application/json")
        assert json.loads(body)["reason"] == "malformed_request"
    root = httpx.get(f"{c.url}/")
    assert root.status_code == 200
    endpoints = root.json()["endpoints"]
    assert {"POST /v1/events", "GET /analytics.js", "GET /demo", "GET /healthz",
            "GET /metrics"} <= set(endpoints)
    h = health(c.url)
    assert h["status"] == "ok" and str(c.data) not in json.dumps(h)
    assert not any("/" in str(v) for v in h.values() if isinstance(v, str))


def test_a_spool_that_cannot_be_written_answers_503_json(collector_factory) -> None:  # noqa: F811
    """The spool folder removed and replaced by a file under a running collector: appends fail,
    the answer is a 503 with a reason (no path), /healthz says failing; once the folder is back,
    202 again and health ok."""
    c = collector_factory(flush_seconds=3600)
    spool = c.data / "spool"
    shutil.rmtree(spool)
    spool.write_text("not a folder")
    r = post(c.url, batch(1))
    assert r.status_code == 503 and r.json()["reason"] == "spool_unavailable"
    assert str(c.data) not in r.text and "retry-after" in r.headers
    hr = httpx.get(f"{c.url}/healthz")
    assert hr.status_code == 503 and hr.json()["status"] == "failing"
    assert str(c.data) not in hr.text
    spool.unlink()
    spool.mkdir()
    ok = batch(1)
    assert post(c.url, ok).status_code == 202
    assert health(c.url)["status"] == "ok"
    c.stop()
    assert lake_event_ids(c.data) == Counter({ok[0]["event_id"]: 1})


def test_a_segment_that_cannot_be_read_does_not_hold_back_the_others(collector_factory,  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """A segment whose read fails (here a folder where a segment file should be: EISDIR, which
    holds as root) is retried and reported; the segments after it are delivered meanwhile."""
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    (spool / f"seg-20260302T100000-{uuid.uuid4().hex}.ndjson").mkdir()
    data, ids = raw_lines(3)
    (spool / f"seg-20260302T100001-{uuid.uuid4().hex}.ndjson").write_bytes(data)
    c = collector_factory(flush_seconds=0.2)
    assert lake_event_ids(c.data) == Counter({i: 1 for i in ids})
    wait_for(lambda: health(c.url)["status"] == "degraded")
    assert health(c.url)["reason"] == "spool_segment_unreadable: EISDIR"
    c.stop(signal.SIGKILL)


def test_idle_connections_over_the_limit_are_answered_and_closed_at_once(
        collector_factory) -> None:  # noqa: F811
    """300 connections that say nothing, with a limit of 16 and 128 file descriptors: the ones
    over the limit used to be held open until they sent a request, so the descriptors ran out
    and a normal POST got no answer. Now each is answered 503 (JSON) and closed at once, the
    collector holds at most its limit, and a normal request gets a JSON 503, not a failure."""

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    c = collector_factory(env={"ANALYTICS_COLLECTOR_MAX_CONNECTIONS": "16",
                               "ANALYTICS_COLLECTOR_HEADER_SECONDS": "60"},
                          preexec_fn=few_descriptors)
    socks = [connect(c.url) for _ in range(300)]
    try:
        time.sleep(1.0)
        held, refused = 0, 0
        for s in socks:
            s.settimeout(0.2)
            try:
                status, headers, body = read_response(s)
            except TimeoutError:
                held += 1  # nothing said: the server still holds it
                continue
            except (ConnectionError, OSError):
                continue  # reset: closed too, without an answer
            assert status == 503 and json.loads(body)["reason"] == "too_many_connections"
            assert headers["retry-after"] and headers["connection"] == "close"
            assert s.recv(1) == b""  # and closed
            refused += 1
        assert held <= 16, held
        assert refused >= 300 - 16 - 10, refused  # a few may be reset before their answer
        r = post(c.url, batch(1))  # the limit still holds: a clear 503, not a dead socket
        assert r.status_code == 503 and r.json()["reason"] == "too_many_connections"
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: post(c.url, batch(1)).status_code == 202, 10)


def _crash_after_the_lake_write(spool_dir: Path, lake_dir: Path) -> None:
    """In a child process: two requests whose ingest_ts goes back across an hour (NTP stepping
    the clock back), then a flush that SIGKILLs the process after the lake write and before the
    segment's delete."""
    import asyncio
    import os

    from analytics_platform.ingest.spool import Spool
    from analytics_platform.lake import LocalRawLake

    class CrashingLake(LocalRawLake):
        def write_records(self, *args: Any, **kwargs: Any) -> Any:
            out = super().write_records(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
            return out

    async def run() -> None:
        spool = Spool(spool_dir, CrashingLake(lake_dir), flush_seconds=3600)
        await spool.start()
        await spool.append(b'{"event_id":"e1","ingest_ts":"2026-12-07T10:00:01.000Z"}\n')
        await spool.append(b'{"event_id":"e2","ingest_ts":"2026-12-07T09:59:59.000Z"}\n')
        await spool.flush()

    asyncio.run(run())


def test_a_clock_step_back_and_a_kill_mid_flush_duplicate_nothing(tmp_path: Path) -> None:
    """The running collector named a segment's object by its first line's ingest_ts, recovery
    by the oldest: after a kill between the lake write and the delete, recovery wrote the same
    records again under another name (every event twice)."""
    import multiprocessing

    from analytics_platform.ingest.spool import Spool
    from analytics_platform.lake import LocalRawLake

    spool_dir, lake_dir = tmp_path / "spool", tmp_path / "raw"
    child = multiprocessing.get_context("fork").Process(
        target=_crash_after_the_lake_write, args=(spool_dir, lake_dir))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert list(spool_dir.glob("seg-*.ndjson"))  # the delete never happened
    assert Spool(spool_dir, LocalRawLake(lake_dir)).recover() == 2
    objects = [p.relative_to(lake_dir).as_posix() for p in lake_dir.rglob("*.gz")]
    assert len(objects) == 1 and objects[0].startswith(
        "year=2026/month=12/day=07/hour=09/analytics-1-2026-12-07-09-59-59-"), objects
    ids = Counter(json.loads(line)["event_id"] for p in lake_dir.rglob("*.gz")
                  for line in gzip.decompress(p.read_bytes()).splitlines())
    assert ids == Counter({"e1": 1, "e2": 1})


def test_an_idle_collector_is_healthy_again_once_its_disk_has_room(
        collector_factory, tmp_path: Path) -> None:  # noqa: F811
    """The spool's file system full (a file beside the spool takes the room): requests get 503
    and /healthz says failing. Once the room is back, /healthz says ok again without any request
    (found in review: only a request's write cleared it, so an idle collector stayed failing,
    and whatever routes traffic by /healthz never sent that request)."""
    spool = tmp_path / "data" / "spool"
    with small_tmpfs(spool, "256k"):
        c = collector_factory(flush_seconds=0.3)
        filler = spool / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):  # all the room there is
            while os.write(fd, bytes(4096)):
                pass
        os.close(fd)
        _acked, statuses = send_batches(c.url, 20, size=10)
        assert statuses[503], statuses
        got = httpx.get(f"{c.url}/healthz")
        assert got.status_code == 503 and "spool_write_failed" in got.text, got.text
        filler.unlink()
        deadline = time.monotonic() + 10
        while (got := httpx.get(f"{c.url}/healthz")).status_code != 200:
            assert time.monotonic() < deadline, got.text
            time.sleep(0.2)
        assert got.json()["status"] == "ok", got.text
        c.stop()
