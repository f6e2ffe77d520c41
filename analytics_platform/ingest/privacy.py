"""Privacy at the edge (docs/PRIVACY.md): the day's salt, the visitor hash, the client's address
and the scrub of every stored text. Standard library only (it runs in the Lambda's zip).

Without consent the tracker keeps nothing on the device and sends no id: the handler derives
``visitor_hash`` = HMAC-SHA256(key = the UTC day's random salt, message = site host, client
address, user agent), cut to 16 hex digits. The address is used in memory for that hash and for
nothing else: it is never stored, logged, counted or put in an error. Salts are random per UTC day
and destroyed 48 hours after their day began (at the next purge: the collector's one-minute
timer, the Lambda's daily scheduled run at 00:01 UTC), so a hash can be linked neither across
days nor, once its salt is gone, back to an address.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import ipaddress
import os
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote_plus

SALT_BYTES = 32
# 64 bits: the pipeline counts distinct visitors on a 64-bit key anyway (duck.py's visitor_key),
# so more bits would buy nothing; at 10 million visitors a day on one site the odds of any two
# sharing a hash are about 1 in 370,000 (n²/2⁶⁵), while 32 bits would merge ~11,600 pairs.
# The salt, not the length, is what keeps the hash from being reversed.
HASH_HEX = 16
# A salt is used on its own UTC day and kept through the next one, so that an instance whose
# clock is a little behind still finds the salt the others use; then it is deleted: a salt lives
# 48 hours from the start of its day, and until the next purge (a minute or two).
KEEP_DAYS = 2
# LocalSalts writes a salt under ``.tmp-<uuid>`` and hard-links it to its day's name, then
# unlinks the temporary name: a crash in between leaves a second name of the day's salt, which
# the purge removes once it is older than this. Creating a salt (32 bytes, an fsync) takes
# milliseconds, so a temporary file a minute old is no other process's salt being created, and
# the collector's one-minute purge timer removes a stale one within two minutes: long before its
# salt's 48 hours are up.
TMP_STALE_SECONDS = 60.0


class SaltUnavailable(Exception):
    """The day's salt could not be read or created (the request is answered 503, retried)."""


class SaltStore(Protocol):
    def salt(self, day: date) -> bytes: ...

    def purge(self, today: date) -> int: ...


def _expired(day: date, today: date) -> bool:
    return day <= today - timedelta(days=KEEP_DAYS)


class LocalSalts:
    """One file per UTC day, ``<folder>/YYYY-MM-DD`` (32 random bytes, mode 0600), created
    atomically: written under a temporary name, then hard-linked to its name, which fails if
    another process got there first (then that one's salt is read and used)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def salt(self, day: date) -> bytes:
        path = self.folder / day.isoformat()
        with contextlib.suppress(FileNotFoundError):
            return self._read(path)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(SALT_BYTES))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return self._read(path)

    @staticmethod
    def _read(path: Path) -> bytes:
        value = path.read_bytes()
        if len(value) != SALT_BYTES:
            raise SaltUnavailable(f"salt file {path.name} holds {len(value)} bytes")
        return value

    def purge(self, today: date) -> int:
        """Delete the expired days' salts, and temporary names a crash left (TMP_STALE_SECONDS);
        returns how many files went."""
        gone = 0
        stale_before = time.time() - TMP_STALE_SECONDS
        with contextlib.suppress(FileNotFoundError):
            for p in self.folder.iterdir():
                if p.name.startswith(".tmp-"):
                    with contextlib.suppress(FileNotFoundError):
                        if p.stat().st_mtime < stale_before:
                            p.unlink()
                            gone += 1
                    continue
                try:
                    day = date.fromisoformat(p.name)
                except ValueError:
                    continue
                if _expired(day, today):
                    p.unlink(missing_ok=True)
                    gone += 1
        return gone


class S3Salts:
    """One object per UTC day, ``s3://bucket/prefix/YYYY-MM-DD``. Created with a conditional
    PUT (``If-None-Match: *``): of two instances creating the same day's salt at once, one
    wins and the other reads the winner's, so no two instances ever hash a day with different
    salts. The bucket's lifecycle rule expires what a purge missed (infra/modules/ingest)."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def _get(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        if len(body) != SALT_BYTES:
            raise SaltUnavailable(f"salt object {key} holds {len(body)} bytes")
        return body

    def salt(self, day: date) -> bytes:
        key = f"{self.prefix}{day.isoformat()}"
        found = self._get(key)
        if found is not None:
            return found
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=os.urandom(SALT_BYTES),
                                   IfNoneMatch="*")
        except self.client.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            # 412: another instance created it first; 409: it is creating it right now
            if code not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise
        found = self._get(key)
        if found is None:
            raise SaltUnavailable(f"salt object {key} vanished after it was created")
        return found

    def purge(self, today: date) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                       Prefix=self.prefix)
        old = []
        for page in pages:
            for obj in page.get("Contents", []):
                try:
                    day = date.fromisoformat(obj["Key"][len(self.prefix):])
                except ValueError:
                    continue
                if _expired(day, today):
                    old.append({"Key": obj["Key"]})
        for i in range(0, len(old), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": old[i:i + 1000]})
        return len(old)


def salt_store(url: str) -> SaltStore:
    """``s3://bucket/prefix`` or a local folder."""
    return S3Salts(url) if url.startswith("s3://") else LocalSalts(Path(url))


class Salts:
    """Today's salt, cached in memory (one read or create per instance and day); the store is
    purged of expired salts when the day changes and at most every ``purge_seconds``, and the
    cache forgets a salt whose day has expired when the store is purged (on a quiet collector the
    last day's salt stayed in memory, after its file was gone, until the next request)."""

    def __init__(self, store: SaltStore, purge_seconds: float = 600.0,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.store = store
        self.purge_seconds = purge_seconds
        self._monotonic = monotonic or time.monotonic
        # (day, salt) as one value: a request reads it once, so a purge on the timer's thread
        # cannot leave it a day with no salt
        self._cached: tuple[date, bytes] | None = None
        self._purged_at: float | None = None
        self._lock = threading.Lock()

    def for_day(self, day: date) -> bytes:
        cached = self._cached
        if cached is None or cached[0] != day:
            with self._lock:
                cached = self._cached
                if cached is None or cached[0] != day:
                    try:
                        salt = self.store.salt(day)
                    except SaltUnavailable:
                        raise
                    except Exception as e:  # a storage error; the detail names no visitor
                        raise SaltUnavailable(f"{type(e).__name__}: {e}") from e
                    cached = self._cached = (day, salt)
                    self._purged_at = None
        self._maybe_purge(day)
        return cached[1]

    def _forget_expired(self, today: date) -> None:
        """Drop the cached salt if its day has expired on ``today``. (The bytes object is
        freed, not overwritten: Python cannot zero an immutable value.)"""
        with self._lock:
            if self._cached is not None and _expired(self._cached[0], today):
                self._cached = None

    def _maybe_purge(self, today: date) -> None:
        now = self._monotonic()
        if self._purged_at is not None and now - self._purged_at < self.purge_seconds:
            return
        self._purged_at = now
        self._forget_expired(today)
        # a failed purge is retried later; the lifecycle rule (S3) is the backstop
        with contextlib.suppress(Exception):
            self.store.purge(today)

    def purge(self, today: date) -> int:
        """Delete expired salts now, from the store and from memory (the collector calls it
        on a timer: with no traffic)."""
        self._forget_expired(today)
        return self.store.purge(today)


# --- the client's address --------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: str | None) -> Address | None:
    """An IP address from a peer or header value (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``,
    ``fe80::1%eth0``, ``::ffff:1.2.3.4``), canonical: IPv4-mapped IPv6 as IPv4, no zone id.
    None when it is not one (never an exception: its message would hold the value)."""
    if not value:
        return None
    v = value.strip().strip('"')
    if v.startswith("["):
        v = v[1:].partition("]")[0]
    elif v.count(":") == 1:  # IPv4 with a port
        v = v.partition(":")[0]
    v = v.partition("%")[0]
    try:
        ip = ipaddress.ip_address(v)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class ClientAddress:
    """Where the client's address comes from. Without ``header`` (the default): the connection's
    peer (the collector's TCP peer; the Lambda's ``requestContext`` source IP). With ``header``
    (``x-forwarded-for``, ``cloudfront-viewer-address``, ``x-real-ip``…): that header, but only
    when the peer is one of ``trusted`` (CIDRs); a list is read from the right, skipping the
    trusted proxies, so a client cannot choose its own address by sending the header."""

    header: str | None = None
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientAddress:
        env = os.environ if env is None else env
        header = env.get("ANALYTICS_CLIENT_IP_HEADER", "").strip().lower() or None
        nets = tuple(ipaddress.ip_network(c.strip(), strict=False)
                     for c in env.get("ANALYTICS_TRUSTED_PROXIES", "").split(",") if c.strip())
        if header and not nets:
            raise ValueError("ANALYTICS_CLIENT_IP_HEADER needs ANALYTICS_TRUSTED_PROXIES (the "
                             "CIDRs of the proxies allowed to set it)")
        return cls(header, nets)

    def _trusted(self, ip: Address) -> bool:
        return any(ip.version == n.version and ip in n for n in self.trusted)

    def resolve(self, peer: str | None, headers: Mapping[str, str]) -> Address | None:
        ip = parse_address(peer)
        if self.header is None or ip is None or not self._trusted(ip):
            return ip
        hops = [parse_address(h) for h in headers.get(self.header, "").split(",")]
        hops = [h for h in hops if h is not None]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else ip


def site_host(host: str | None) -> str:
    """The site's host as the hash sees it: lower case, without ``www.`` (as CONTRACT §4 tells
    a self-referral)."""
    h = (host or "").strip().lower().rstrip(".")
    return h[4:] if h.startswith("www.") else h


def visitor_hash(salt: bytes, host: str, address: Address | None, user_agent: str) -> str:
    """HMAC-SHA256 of (site host, client address, user agent) keyed with the day's salt, as 16
    hex digits. NUL separates the parts (no part can hold one: hosts and addresses never do,
    and a header cannot)."""
    msg = "\x00".join((site_host(host), str(address) if address else "", user_agent))
    return hmac.new(salt, msg.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()[:HASH_HEX]


def utc_day(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


# --- the scrub -------------------------------------------------------------------------------

# Every control (Cc) and format (Cf) character of Unicode 15: line breaks cut a path's regex,
# zero-width and bidi characters hide an address from any pattern. A control becomes a space (a
# tab or line break separates words). A run of format characters is both: it joins the letters of
# an e-mail address (ja\u200bmie@…) and separates an IP address from its neighbours
# (1.2.3.4\u200b5.6.7.8, ::1\u200bG). So while addresses are looked for it is _JOIN, a character
# that the e-mail patterns take as part of an address and the IP patterns as a separator; then it
# is removed, or becomes a space where it stands between two characters an IP address or a
# replacement is made of (so that removing it cannot make a new address: 1.2.3\u200b.4).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]+")
_FORMAT = ("\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd"
    "\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f")
_FORMAT_RE = re.compile(f"[{_FORMAT}]+")
_JOIN = "\x1f"  # a control character: none is left once controls are spaces
_JOIN_SEP = re.compile(f"(?<=[0-9A-Fa-f.:)]){_JOIN}(?=[0-9A-Fa-f.:(])")


def _marked(text: str) -> str:
    """``text`` with controls as spaces and each run of format characters as ``_JOIN``."""
    if text.isascii() and text.isprintable():  # most values: two C-speed checks
        return text
    return _FORMAT_RE.sub(_JOIN, _CONTROL.sub(" ", text))


def _unmarked(text: str) -> str:
    return _JOIN_SEP.sub(" ", text).replace(_JOIN, "") if _JOIN in text else text


def _visible(text: str) -> str:
    """``text`` without control or format characters (see above)."""
    return _unmarked(_marked(text))


# The pipeline's SQL macro (duck.py, CONTRACT §3.5), as Python (the e-mail patterns with _JOIN):
# whatever it would replace, the edge replaces first, so the raw lake never holds what the
# warehouse may not.
_SQL_LOCAL = re.compile(rf"[A-Za-z0-9._%+\-{_JOIN}]+")
_SQL_DOMAIN = re.compile(rf"[A-Za-z0-9\-{_JOIN}]+(?:\.[A-Za-z0-9\-{_JOIN}]+)*"
                         rf"\.[A-Za-z{_JOIN}]{{2,}}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0?[0-9]?[0-9])"
_SQL_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){3,7}|[0-9A-Fa-f]{1,4}"
    r"(?::[0-9A-Fa-f]{1,4})*::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?)(?![0-9A-Za-z:])")

# Stronger: any letter in the local part and the domain (josé@exämple.com), combining marks;
# the local part stops at / = ? & so that a path keeps what precedes the address.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# U+FFFD (a character lost in decoding) may have been a letter of the address: it counts as one.
_LOCAL = re.compile(rf"[\w{_MARKS}{_JOIN}\ufffd.%+\-!#$'*^`{{|}}~]+")
_DOMAIN = re.compile(rf"[\w{_MARKS}{_JOIN}\ufffd\-]+(?:\.[\w{_MARKS}{_JOIN}\ufffd\-]+)*"
                     rf"\.(?:(?:[^\W\d_]|{_JOIN}){{2,}}|xn--[0-9a-z\-]+)", re.IGNORECASE)
_AT = re.compile(r"@|%40")
# How far back a local part is looked for (RFC 5321 allows 64 characters; encoded, three times
# that): bounds the work on long runs of text, where a regex would backtrack quadratically.
_LOCAL_MAX = 256
# IPv4 not inside a longer dotted run of numbers (a version such as 1.2.3.4.5), but also second
# in "1.2.3.4,5.6.7.8" and ending a sentence ("10.0.0.1.").
_IPV4 = re.compile(rf"(?<![0-9])(?<![0-9]\.){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9])(?!\.[0-9])")
# IPv6 candidates (with an IPv4 tail or a zone id), each checked by the ipaddress module.
_IPV6 = re.compile(r"(?<![0-9A-Za-z_:.%])[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
                   r"(?:%[0-9A-Za-z_.~\-]+)?(?![0-9A-Za-z_])")
# Nothing can hold an address without one of these: most values skip the patterns.
_MAYBE = re.compile(r"[@%&]|[0-9]\.[0-9]|[0-9A-Fa-f]?:[0-9A-Fa-f:]")

EMAIL_MARK, IP_MARK = "(email)", "(ip)"


def _ipv6(m: re.Match[str]) -> str:
    cand = m.group(0)
    if not any(c in "0123456789abcdefABCDEF" for c in cand.partition("%")[0]):
        return cand  # "::" alone, or punctuation
    # What may stand around an address: a full stop or colons after it ("64:ff9b:::" is
    # "64:ff9b::" and ":"), colons before it (":::1" is ":" and "::1"). Longest reading first.
    leads = len(cand) - len(cand.lstrip(":"))
    trails = len(cand) - len(cand.rstrip(".:"))
    # An address begins with at most "::" and ends with at most "::", so only the last two
    # leading and trailing marks can be its own: at most 9 readings. Every pair was tried, a
    # number that grows with the square of a run of colons: a 4 KB User-Agent of them (which
    # no field limit bounds) held the collector's event loop for 89 s (found in review).
    for lead, trail in sorted(((a, b) for a in range(max(0, leads - 2), leads + 1)
                               for b in range(max(0, trails - 2), trails + 1)), key=sum):
        core = cand[lead:len(cand) - trail]
        try:
            ipaddress.ip_address(core)
        except ValueError:
            continue
        return cand[:lead] + IP_MARK + cand[len(cand) - trail:]
    return cand


def _emails(text: str, local: re.Pattern[str], domain: re.Pattern[str],
            need_local: bool = True) -> str:
    """Each ``@`` (or ``%40``) with the longest local part before it and a domain after it,
    replaced; left to right, never overlapping (the spans a leftmost regex would find).
    Without ``need_local``, ``@domain`` alone is replaced too (``=@example.com``: an RFC 5322
    local part may hold characters that the scrub leaves outside it)."""
    out, done = [], 0
    for at in _AT.finditer(text):
        if at.start() < done:
            continue
        lo = max(done, at.start() - _LOCAL_MAX)
        m = local.match(text[lo:at.start()][::-1])
        d = domain.match(text, at.end())
        if (m is None and need_local) or d is None:
            continue
        start = at.start() - (m.end() if m else 0)
        out += [text[done:start], EMAIL_MARK]
        done = d.end()
    return "".join(out) + text[done:] if out else text


def _replace_once(text: str) -> str:
    text = _emails(text, _SQL_LOCAL, _SQL_DOMAIN)
    text = _emails(text, _LOCAL, _DOMAIN, need_local=False)
    text = _IPV6.sub(_ipv6, text)  # first: a zone id or an IPv4 tail goes with its address
    text = _IPV4.sub(IP_MARK, text)
    return _SQL_IPV6.sub(IP_MARK, text)


# A pass can leave an address beside its replacement that no pass saw before: the IPv6 pass that
# runs last replaces "255::" in "0.250.249.255.255::", and "0.250.249.255." is then an IPv4
# address before "(ip)"; the IPv4 pass makes "::11E(ip)" of "::11E199.25.100.99", and "::11E"
# is then an IPv6 one. The pipeline's macro (duck.py, before its encoded passes too) found
# such addresses in what the edge stored: in 98 of 20,000 texts of addresses among escapes and
# digits (2026-12), 0 once the passes run again. So they run again until nothing changes: on a
# text without an address once, as before; with one, a second time (a title with an address:
# 5.3 -> 7.8 µs). Each round that changes the text replaces an address by a mark; _ROUNDS
# bounds the rounds whatever the text.
_ROUNDS = 4


def _replace(text: str) -> str:
    for _ in range(_ROUNDS):
        out = _replace_once(text)
        if out == text:
            break
        text = out
    return text


def _decoded(text: str) -> list[str]:
    """The text as a reader would see it: percent-, plus- and HTML-decoded (up to three times:
    %2540 is %40 is @), as is and in compatibility form (＠ is @)."""
    out = text
    for _ in range(3):
        nxt = html.unescape(unquote_plus(out))
        if nxt == out:
            break
        out = nxt
    out = _marked(out)
    return [out, _marked(unicodedata.normalize("NFKC", out))]


def _scrub_marked(text: str) -> str:
    if _MAYBE.search(text) or not text.isascii():  # ＠ (fullwidth), １.２.３.４…
        out = _replace(text)
        for decoded in _decoded(out):
            if decoded != out and _replace(decoded) != decoded:
                out = _replace(decoded)
                break
        text = out
    return text


def _found(text: str) -> int:
    return text.count(EMAIL_MARK) + text.count(IP_MARK)


def scrub(text: str, *, max_chars: int | None = None) -> str:
    """``text`` without e-mail or IP addresses (replaced by ``(email)`` / ``(ip)``) nor
    invisible characters. An address only seen once the text is decoded (``jamie%2540x.org``,
    ``&#64;``, ``＠``) is found there, and the text is then stored decoded. Cut to ``max_chars``
    (a replacement can be longer than what it replaces)."""
    text = _marked(text)
    out = _scrub_marked(text)
    if _JOIN in text:  # an IP address split by an invisible character (192.168.1\u200b.1)
        joined = _scrub_marked(text.replace(_JOIN, ""))
        if _found(joined) > _found(out):
            out = joined
    out = _unmarked(out)
    return out if max_chars is None else out[:max_chars]


def scrub_emails(text: str) -> str:
    """Only e-mail addresses."""
    if "@" not in text and "%40" not in text:
        return text
    return _emails(_emails(text, _SQL_LOCAL, _SQL_DOMAIN), _LOCAL, _DOMAIN, need_local=False)


# An IPv4 address in a user agent: one that starts the text or follows white space, a bracket
# or a separator ("(jamie@x.org; 10.9.8.7)", ", 192.168.0.1"). Version numbers look like IPv4
# addresses and stand after "/" or "rv:" ("Chrome/131.0.0.0", "rv:1.8.1.20", "Build/6.0.1_0.223.
# 0.064"): of the 22,399 distinct agents of the bot tests' corpora, any IPv4 look-alike changed
# 46, this rule 3 (a version after a space: "YunOs 1.0.0.3"), none of which is parsed differently
# (browser, OS, device, bot). IPv6 addresses (checked by the ipaddress module) changed none.
_AGENT_IPV4 = re.compile(rf"(?<![^\s(\[;,=]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9])(?!\.[0-9])")


def scrub_agent(text: str) -> str:
    """The ``User-Agent`` header as it may be stored: e-mail and IP addresses replaced, its
    version numbers kept (``_AGENT_IPV4``): the pipeline reads them to tell browsers and bots."""
    text = scrub_emails(text)
    if ":" in text:
        text = _SQL_IPV6.sub(IP_MARK, _IPV6.sub(_ipv6, text))
    return _AGENT_IPV4.sub(IP_MARK, text)


UTM_KEYS = frozenset(("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"))


def scrub_url(value: str, *, max_chars: int | None = None) -> str:
    """A path or URL without its fragment, its user:password@ and any query parameter but the
    UTM tags, then :func:`scrub`. The query is found by the first ``?`` whatever follows it (a
    line break included)."""
    value = value.partition("#")[0]
    base, q, query = value.partition("?")
    if not base.isprintable():  # "/signup\n?token=…": the line break is no part of the path
        base = _visible(base).rstrip()
    scheme, sep, rest = base.partition("://") if "@" in base else ("", "", "")
    if sep and "@" in rest.partition("/")[0]:
        base = f"{scheme}://{rest.partition('/')[0].rpartition('@')[2]}" + (
            "/" + rest.partition("/")[2] if "/" in rest else "")
    kept = [p for p in re.split(r"[&;]", query)
            if unquote_plus(p.partition("=")[0]).strip().lower() in UTM_KEYS] if q else []
    return scrub(base + ("?" + "&".join(kept) if kept else ""), max_chars=max_chars)


def scrub_props(props: Mapping[str, Any], *, max_key_chars: int,
                max_value_chars: int) -> dict[str, Any] | None:
    """``props`` as it may be stored (CONTRACT §2): every key and string value scrubbed, a value
    cut to ``max_value_chars``. None when the keys cannot be stored as they are once scrubbed: a
    key that becomes empty or longer than ``max_key_chars`` (``"x" * 60 + " ::1"``: "(ip)" is
    longer than "::1"), or two keys that become one (``{"a@b.cc": 1, "c@d.ee": 2}``, or a key
    that becomes a required one: ``"na\\u200bme"``): the handler refuses the event
    (``props_bad_key:props``) rather than cut a key or drop a value."""
    out: dict[str, Any] = {}
    for k, v in props.items():
        key = scrub(k)
        if not key or len(key) > max_key_chars or key in out:
            return None
        # a string value of invisible characters only would become "", which props.name may
        # not be
        out[key] = (scrub(v, max_chars=max_value_chars) or ("(blank)" if v else v)
                    if isinstance(v, str) else v)
    return out


class ScrubbingFilter:
    """A logging filter (on a handler) that scrubs each line and its traceback's text: whatever
    an exception's message quoted of a request (a value, a key) leaves the process without an
    e-mail or IP address."""

    def filter(self, record: Any) -> bool:
        import logging

        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def scrub_logs(loggers: tuple[str, ...] = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
               ) -> None:
    """Put a :class:`ScrubbingFilter` on every handler of ``loggers`` (the root's, and uvicorn's,
    which do not propagate), once each. The collector, the API and the Lambda call it once
    their logging is configured."""
    import logging

    for name in loggers:
        for h in logging.getLogger(name).handlers:
            if not any(isinstance(f, ScrubbingFilter) for f in h.filters):
                h.addFilter(ScrubbingFilter())
