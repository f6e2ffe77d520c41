"""API keys and the API server's limits, with real processes: key changes raced from several
processes lose nothing, a key file that cannot be read is a clear error (503 from the API, a
message from the CLI), and the server bounds what a slow or silent client may hold."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from analytics_platform.api.keys import KeyStore
from analytics_platform_tests.test_collector import CLI, answers_health, free_port
from analytics_platform_tests.test_ingest_faults import read_response

# --- raced changes ------------------------------------------------------------------------------


def _create(path: Path, name: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = KeyStore(path)
    barrier.wait()  # every process reads the file at about the same moment
    store.create(name)


def _revoke(path: Path, name: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = KeyStore(path)
    barrier.wait()
    store.revoke(name)


def test_concurrent_creates_and_a_revoke_lose_nothing(tmp_path: Path) -> None:
    """Eight processes at once, twenty times: seven create a key each, one revokes a key made
    before. Without a lock each wrote back the file it had read: creates lost keys (87 of 160)
    and a create put a revoked key back."""
    ctx = multiprocessing.get_context("fork")
    path = tmp_path / "api_keys.json"
    for trial in range(20):
        path.unlink(missing_ok=True)
        KeyStore(path).create("victim")
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_create, args=(path, f"k{i}", barrier)) for i in range(7)]
        procs.append(ctx.Process(target=_revoke, args=(path, "victim", barrier)))
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        keys = {k.name: k for k in KeyStore(path).list()}
        assert sorted(keys) == sorted(["victim"] + [f"k{i}" for i in range(7)]), trial
        assert keys["victim"].revoked is not None, trial
        assert all(k.revoked is None for n, k in keys.items() if n != "victim")
    assert (path.stat().st_mode & 0o777) == 0o600


def test_concurrent_cli_creates_keep_every_key(tmp_path: Path) -> None:
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(tmp_path)}
    procs = [subprocess.Popen([CLI, "api-key", "create", f"cli{i}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    secrets = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8
    store = KeyStore(tmp_path / "api_keys.json")
    assert sorted(k.name for k in store.list()) == sorted(f"cli{i}" for i in range(8))
    assert all(store.verify(s) is not None for s in secrets)  # each printed key works


# --- the API server ------------------------------------------------------------------------------


class Api:
    """``analytics-platform api`` as a child process."""

    def __init__(self, data: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data / f"api-{self.port}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [CLI, "api", "--port", str(self.port)],
                env={**os.environ, "ANALYTICS_DATA_DIR": str(data), **(env or {})},
                stdout=out, stderr=subprocess.STDOUT)
        if answers_health(self.proc, self.url):
            return
        self.stop()
        raise RuntimeError(f"the API did not start: {self.log.read_text()[-3000:]}")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=15)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture()
def api_factory(tmp_path: Path) -> Iterator:
    started: list[Api] = []

    def start(env: dict[str, str] | None = None) -> Api:
        started.append(Api(tmp_path, env))
        return started[-1]

    yield start
    for a in started:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()


def test_the_api_cuts_off_slow_and_silent_clients(api_factory, tmp_path: Path) -> None:
    """A head never finished, a body never finished and a connection that says nothing were
    all held open for ever (45 s and counting); each now gets a 408 in the API's error shape
    and is closed."""
    _, secret = KeyStore(tmp_path / "api_keys.json").create("me")
    api = api_factory({"ANALYTICS_API_HEADER_SECONDS": "1", "ANALYTICS_API_BODY_SECONDS": "1"})
    head = api.connect()
    head.sendall(b"POST /api/v2/query HTTP/1.1\r\nhost: x\r\n")
    body = api.connect()
    body.sendall(b"POST /api/v2/query HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
                 + secret.encode() + b"\r\ncontent-length: 100\r\n\r\n{")
    silent = api.connect()
    t0 = time.monotonic()
    for s in (head, body, silent):
        with s:
            status, _, payload = read_response(s)
            assert status == 408 and list(json.loads(payload)) == ["error"]
            assert s.recv(1) == b""  # closed
    assert time.monotonic() - t0 < 10


def test_the_api_bounds_its_connections(api_factory) -> None:
    """Past the limit a new connection is answered 503 (the API's error shape, Retry-After)
    and closed at once; once the others go, requests are served again."""
    api = api_factory({"ANALYTICS_API_MAX_CONNECTIONS": "8",
                       "ANALYTICS_API_HEADER_SECONDS": "60"})
    held = [api.connect() for _ in range(8)]
    time.sleep(0.5)  # the server has taken them
    over = [api.connect() for _ in range(20)]
    try:
        for s in over:
            status, headers, payload = read_response(s)
            assert status == 503 and "connection limit" in json.loads(payload)["error"]
            assert headers["retry-after"] and s.recv(1) == b""
    finally:
        for s in held + over:
            s.close()
    deadline = time.monotonic() + 10
    while httpx.get(f"{api.url}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


# --- a key file that cannot be read --------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "{}", '{"keys": [1]}', "{\"keys\": ["],
                         ids=["empty", "no-keys", "bad-entry", "truncated"])
def test_an_unreadable_key_file_is_a_503_and_a_clear_cli_error(api_factory, tmp_path: Path,
                                                               content: str) -> None:
    path = tmp_path / "api_keys.json"
    _, secret = KeyStore(path).create("me")
    good = path.read_text()
    api = api_factory()
    auth = {"authorization": f"Bearer {secret}"}
    ok = httpx.post(f"{api.url}/api/v2/query", headers=auth, json={}, timeout=10)
    assert ok.status_code == 503 and "warehouse" in ok.json()["error"]  # past the key check
    path.write_text(content)
    for headers in (auth, {"authorization": "Bearer ap_someone_else"}):
        r = httpx.post(f"{api.url}/api/v2/query", headers=headers, json={}, timeout=10)
        assert r.status_code == 503, r.text  # was 500
        assert "key file" in r.json()["error"]
    assert "cannot be read" in api.log.read_text()
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(tmp_path)}
    for args in (["list"], ["create", "other"], ["revoke", "me"]):
        run = subprocess.run([CLI, "api-key", *args], env=env, capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 1, (args, run.stdout, run.stderr)
        assert str(path) in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert path.read_text() == content  # never overwritten: its revocations would be lost
    path.write_text(good)  # fixed: served again without a restart
    again = httpx.post(f"{api.url}/api/v2/query", headers=auth, json={}, timeout=10)
    assert again.status_code == 503 and "warehouse" in again.json()["error"]


def test_the_api_starts_on_an_unreadable_key_file(api_factory, tmp_path: Path) -> None:
    """`analytics-platform api` on a key file it cannot read starts all the same, says so, and
    answers 503 until the file is mended (it exited with a traceback: under `serve`, restarted
    for ever)."""
    path = tmp_path / "api_keys.json"
    _, secret = KeyStore(path).create("me")
    good = path.read_text()
    path.write_text("{")
    api = api_factory()
    assert "Every request will get 503" in api.log.read_text()
    auth = {"authorization": f"Bearer {secret}"}
    r = httpx.post(f"{api.url}/api/v2/query", headers=auth, json={}, timeout=10)
    assert r.status_code == 503 and "key file" in r.json()["error"]
    path.write_text(good)
    again = httpx.post(f"{api.url}/api/v2/query", headers=auth, json={}, timeout=10)
    assert again.status_code == 503 and "warehouse" in again.json()["error"]  # past the keys
