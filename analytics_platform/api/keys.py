"""API keys: made by ``analytics-platform api-key create NAME``, shown once, stored hashed in
``$ANALYTICS_DATA_DIR/api_keys.json`` (mode 0600), and a per-key rate limit.

Why SHA-256 and not scrypt: a key is 256 random bits (``secrets.token_urlsafe(32)``), so its
hash cannot be reversed by guessing, however fast the hash; a slow hash (scrypt, bcrypt) is what
protects *low-entropy* secrets such as passwords, which these are not. And every request checks
its key: scrypt at its usual cost (~50 ms and 16 MB per check) would add that to every answer
and make unauthenticated requests a way to burn the server's CPU. SHA-256 checks in a
microsecond. A stolen file gives no key, and a key is found by its hash, so no comparison runs
over a secret's bytes.

Changes (``create``, ``revoke``) hold an exclusive ``flock`` on ``api_keys.json.lock`` from the
read to the replace: two CLI processes at once each wrote back what they had read, so a create
undid a revoke, and concurrent creates lost keys. The file is written to a temporary file,
fsynced, renamed over the old one, and the folder fsynced: a crash leaves the old file or the
new one, never an empty one. A file that cannot be read anyway (emptied, edited by hand) is an
error that names it (``KeyFileError``): the API answers 503, the CLI says which file.

Keys are never logged: the file holds hashes, ``list`` shows a name, an id and the key's first
characters, and the server logs no request headers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

KEYS_FILE = "api_keys.json"
PREFIX = "ap_"  # tells an analytics-platform key from other secrets (and secret scanners)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyFileError(ValueError):
    """The key file exists but cannot be read as a list of keys."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    shown: str  # the key's first characters, to recognise it in a list
    sha256: str
    created: str
    revoked: str | None = None


class KeyStore:
    """The key file; re-read when it changes on disk, so a key revoked by the CLI stops working
    at the next request of a running server."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}

    def _read(self) -> list[ApiKey]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        try:
            return [ApiKey(**k) for k in json.loads(text)["keys"]]
        except (ValueError, KeyError, TypeError) as e:  # not JSON, no "keys", wrong fields
            raise KeyFileError(
                f"the API key file {self.path} cannot be read ({type(e).__name__}: {e}); "
                "restore it from a backup, or move it away and make new keys") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across processes for a whole read-change-write (a lock file beside the
        key file: the key file itself is replaced by each write, so a lock on it would be a
        lock on a file that is no longer the key file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # drops the lock

    def _write(self, keys: list[ApiKey]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"keys": [asdict(k) for k in keys]}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())  # the data on disk before the rename makes it the file
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself on disk
        finally:
            os.close(folder)

    def create(self, name: str) -> tuple[ApiKey, str]:
        """A new key named ``name``: the record and the secret (shown once, never stored)."""
        name = name.strip()
        if not name:
            raise ValueError("a key needs a name")
        with self._locked():
            keys = self._read()
            if any(k.name == name and k.revoked is None for k in keys):
                raise ValueError(f"an active key is already named {name!r}")
            secret = PREFIX + secrets.token_urlsafe(32)
            key = ApiKey(uuid.uuid4().hex[:12], name, secret[:7], hash_key(secret),
                         datetime.now(UTC).isoformat(timespec="seconds"))
            self._write([*keys, key])
        return key, secret

    def list(self) -> list[ApiKey]:
        return self._read()

    def revoke(self, name_or_id: str) -> ApiKey:
        with self._locked():
            keys = self._read()
            hits = [k for k in keys if k.revoked is None and name_or_id in (k.name, k.id)]
            if not hits:
                raise ValueError(f"no active key named or with the id {name_or_id!r}")
            now = datetime.now(UTC).isoformat(timespec="seconds")
            revoked = {k.id for k in hits}
            self._write([ApiKey(**{**asdict(k), "revoked": now}) if k.id in revoked else k
                         for k in keys])
        return hits[0]

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None; raises ``KeyFileError`` while the
        file cannot be read (and reads it again at the next call: nothing stale is kept)."""
        try:
            st = self.path.stat()
            seen: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                self._by_hash, self._seen = {}, None  # no key from a file that failed to read
                self._by_hash = {k.sha256: k for k in self._read() if k.revoked is None}
                self._seen = seen
            return self._by_hash.get(hash_key(secret))


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_hour`` an hour
    (Plausible's default: 600 an hour)."""

    def __init__(self, per_hour: float = 600, burst: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_hour / 3600.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id → (tokens, when)
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float | None:
        """None if the request may go, else the seconds until it may (Retry-After)."""
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return None
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else 3600.0
