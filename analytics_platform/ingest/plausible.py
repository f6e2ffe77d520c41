"""Plausible's event API, ``POST /api/event``: sites on Plausible switch by changing one URL.

Plausible's official tracker (the ``@plausible-analytics/tracker`` npm package, and the script it
shares its code with) sends one JSON object per request, as ``text/plain``: ``n`` (the event's
name), ``u`` (``location.href``), ``d`` (the site's domain), ``r`` (``document.referrer`` or
``null``), ``p`` (custom properties), ``$`` (revenue), ``i`` (``false``: not interactive), ``h``
(hash routing), ``v`` (the script's version); its ``engagement`` events add ``sd`` (the deepest
scroll, in %) and ``e`` (engaged milliseconds since the last one). Plausible's server also takes
the long names (``name``, ``url``, ``domain``, ``referrer``, ``props``/``meta``/``m``,
``revenue``, ``hashMode``). This module turns such a body into the events of CONTRACT §1 (the
mapping is CONTRACT §1 "Plausible's payload"), which the ingest handler (core.py) then checks,
scrubs and enriches exactly like the tracker's own: ``visitor_hash`` from the day's salt, the
site, the address and the user agent, since Plausible's tracker stores nothing on the device and
sends no id. It answers as Plausible does: ``202 ok`` (text) when stored, else a JSON refusal
with a ``reason`` and Plausible's ``errors`` map.

Standard library only: it is part of the Lambda's zip (package.py).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from analytics_platform.contract import (
    MAX_ENGAGED_SECONDS,
    MAX_PROPS_VALUE_CHARS,
    SCROLL_DEPTHS,
    BodyResult,
    Violation,
    encode_json,
    format_timestamp,
    loads_strict,
    validate_event,
)
from analytics_platform.ingest.privacy import scrub_url

PATH = "/api/event"
# Plausible's own limit on a name (Ingestion.Request: validate_length(:event_name, max: 120)).
MAX_NAME_CHARS = 120
# Event names with a type of their own in the contract; every other name is a `custom` event
# whose props.name is the name (a goal...). "404" is the name Plausible's guide has a 404 page
# send, with the missing path in p.path: `plausible("404", {props: {path:
# document.location.pathname}})` (its tracker has no 404 code of its own).
EVENT_TYPES = {"pageview": "page_view", "Form: Submission": "form_submit",
               "Outbound Link: Click": "outbound", "File Download": "download",
               "404": "not_found"}
# The last segment's extension of a download's path: CONTRACT §1's rule on props.ext (Plausible's
# tracker sends a "File Download" only for a link whose href, cut at "?", ends in one of its
# file types).
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,16})$")
ENGAGEMENT = "engagement"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# Plausible's payload keys as its 400 answer names them (its changeset's fields).
ERROR_KEYS = {"n": "event_name", "u": "url", "d": "domain", "p": "props", "revenue": "revenue",
              "sd": "event_name", "page_path": "url", "page_host": "url", "referrer": "referrer",
              "screen_width": "w", "props": "props"}
_CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217's shape; Plausible checks its own list
# decimal text of any length and precision (ASCII digits only: Decimal also takes "1_000" and
# other scripts' digits, which no amount is written with)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MISSING = object()


@dataclass
class PlausibleResult(BodyResult):
    """``check_body``'s outcome; ``dropped``: why a valid body stored nothing (an engagement
    event with neither a scroll milestone nor a second engaged), answered ``202 ok`` as
    Plausible answers a dropped event."""

    dropped: str | None = None
    # the site the visitor hash is made with: ``d``'s (site_of), None without one
    site: str | None = None


def _first(body: dict[str, Any], *keys: str) -> Any:
    """Plausible's ``body["n"] || body["name"]``: the first key whose value is not null/false."""
    for k in keys:
        v = body.get(k)
        if v is not None and v is not False:
            return v
    return _MISSING if all(k not in body for k in keys) else None


def _json_object(value: Any) -> Any:
    """Plausible takes ``p`` and ``revenue`` as objects or as JSON text of an object."""
    if isinstance(value, str):
        try:
            return loads_strict(value.encode("utf-8", "surrogatepass"))
        except ValueError:
            return _MISSING
    return value


def _props(raw: Any) -> dict[str, Any] | Violation:
    if raw is _MISSING or raw is None:
        return {}
    value = _json_object(raw)
    if not isinstance(value, dict):
        return Violation("wrong_type", "p", message="p (props) must be an object of strings")
    out: dict[str, Any] = {}
    for k, v in value.items():
        # Plausible drops empty values and nulls (an optional property left blank): so do we
        if v is None or (isinstance(v, str) and v.strip() == ""):
            continue
        if isinstance(v, (list, dict)):  # Plausible drops these silently; a reason is better
            return Violation("props_bad_value", f"p.{k}",
                             message=f"p.{k} must be a string, a number or a boolean")
        out[k] = v
    return out


def _link(event_type: str, url: Any) -> dict[str, str] | Violation:
    """The props of an ``outbound`` or ``download`` event from the link Plausible's tracker sends
    in ``p.url`` (``Outbound Link: Click``: the link's ``href``; ``File Download``: the ``href``
    cut at ``?``): the host alone, or the file's extension and path; the rest of the URL (path,
    query, fragment of an outbound link; the file's host) is not kept (CONTRACT §1)."""
    if url is None:
        return Violation("missing", "p.url", message="p.url (the link) is required")
    if not isinstance(url, str):
        return Violation("wrong_type", "p.url", message="p.url must be a string")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if event_type == "outbound":
        if not host:
            return Violation("invalid", "p.url", message="p.url must be a URL with a host")
        return {"host": host}
    ext = _EXTENSION.search(parts.path.rsplit("/", 1)[-1]) if parts else None
    if not ext:
        return Violation("invalid", "p.url", message=(
            "p.url must be a file's URL, its name ending in an extension (.pdf)"))
    return {"ext": ext.group(1).lower(), "file": parts.path}


def _missing_path(path: Any) -> str | Violation | None:
    """A ``404``'s ``p.path`` (the missing page, ``document.location.pathname`` in Plausible's
    guide), which becomes ``page_path``; None without one (``u``'s path is then the page)."""
    if path is None:
        return None
    if not isinstance(path, str):
        return Violation("wrong_type", "p.path", message="p.path must be a string")
    if not path.startswith("/"):
        return Violation("invalid", "p.path", message=(
            "p.path must be the missing page's path, starting with / "
            "(document.location.pathname)"))
    return path


def _revenue(raw: Any) -> dict[str, Any] | Violation:
    if raw is _MISSING or raw is None:
        return {}
    value = _json_object(raw)
    bad = Violation("invalid", "revenue", message=(
        'revenue must be {"amount": a number or decimal text, "currency": an ISO 4217 code}'))
    if not isinstance(value, dict):
        return bad
    amount, currency = value.get("amount"), value.get("currency")
    if isinstance(amount, str):
        amount = _amount_of_text(amount)
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        return bad
    if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency.strip().upper())):
        return bad
    return {"revenue_amount": amount, "revenue_currency": currency.strip().upper()}


def _amount_of_text(text: str) -> int | float | None:
    """Decimal text as the number the same digits sent as a JSON number are stored as (an
    integer, else the nearest double), so ``"0.30000000000000004"`` and
    ``0.30000000000000004`` make the same record; None when it is not a number, or none a
    record can hold (beyond a double's range)."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    if _INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return None
    number = float(Decimal(text))  # correctly rounded, whatever the digits' count
    return number if math.isfinite(number) else None


def _scroll(raw: Any) -> int | None:
    """Plausible's ``sd``: an integer (or integer text) from 0, over 100 counting as 100."""
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,6}", raw):
        raw = int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return min(raw, 100)
    return None


def site_of(body: dict[str, Any]) -> str | None:
    """The site of ``d`` for the visitor hash, as Plausible's own hash takes its domain: the
    first of a comma-separated list (a page reporting to several sites), lower case, without
    ``www.``. So one visitor moving between subdomains of one site (``shop.example``,
    ``app.shop.example``) is one visitor, while ``page_host`` keeps each page's host. None
    without a usable ``d``: then the page's host is the site, as for our tracker's events."""
    domain = _first(body, "d", "domain")
    if not isinstance(domain, str):
        return None
    first = domain.split(",")[0].strip().lower().rstrip(".")
    first = first[4:] if first.startswith("www.") else first
    return first or None


def _engaged_ms(raw: Any) -> int | None:
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,12}", raw):
        raw = int(raw)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else None


def _engaged_seconds(ms: int | None) -> int:
    """Plausible's ``e`` (engaged milliseconds since its previous send; it resets after each) as
    the contract's ``engagement`` ``props.seconds``, the same difference: whole seconds as our
    tracker counts them (analytics.js), rounded half up so that a page view's sum stays
    unbiased, at most the contract's day (MAX_ENGAGED_SECONDS: a tab left visible overnight is
    one long engagement, not an invalid one). 0 when there is nothing to store: our tracker
    sends no engagement of 0 seconds either."""
    if ms is None:
        return 0
    return min((ms + 500) // 1000, MAX_ENGAGED_SECONDS)


def to_events(body: Any, arrived: datetime) -> list[dict[str, Any]] | Violation | str:
    """One Plausible body → its contract events (not yet validated: one, or two for an
    ``engagement`` with both a scroll milestone and engaged time), a refusal, or the reason a
    valid body stores nothing."""
    if not isinstance(body, dict):
        return Violation("not_an_object", message="a Plausible event is one JSON object")
    name = _first(body, "n", "name")
    if name is _MISSING or name is None:
        return Violation("missing", "n", message="n (the event's name) is required")
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # Plausible takes integer names ("404" sent as a number)
    if not isinstance(name, str):
        return Violation("wrong_type", "n", message="n must be a string")
    if name.strip() == "":
        return Violation("empty", "n", message="n must not be empty")
    if len(name) > MAX_NAME_CHARS:
        return Violation("too_long", "n", message=f"n is longer than {MAX_NAME_CHARS} characters")

    url = _first(body, "u", "url")
    if url is _MISSING or url is None:
        return Violation("missing", "u", message="u (the page's URL) is required")
    if not isinstance(url, str):
        return Violation("wrong_type", "u", message="u must be a string")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname  # lower case; None without one ("app:login")
    except ValueError:  # "http://[::1": an unclosed IPv6 literal
        return Violation("invalid", "u", message="u must be a URL")
    if parts.scheme.lower() == "data":
        return Violation("invalid", "u", message="u: the data: scheme is not allowed")

    domain = _first(body, "d", "domain")
    if domain is not _MISSING and domain is not None:
        # checked as Plausible checks it; not stored (page_host is u's), but the visitor hash's
        # site (site_of)
        if not isinstance(domain, str):
            return Violation("wrong_type", "d", message="d must be a string")
        if domain.strip() == "":
            return Violation("empty", "d", message="d must not be empty")
    elif not host:
        return Violation("missing", "d", message="d is required when u has no host")

    props = _props(_first(body, "m", "meta", "p", "props"))
    if isinstance(props, Violation):
        return props
    revenue = _revenue(_first(body, "revenue", "$"))
    if isinstance(revenue, Violation):
        return revenue

    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),  # Plausible's tracker sends none and never resends
        "page_path": parts.path or "/",
        # Plausible's payload has no time of its own: the event happened when it arrived
        "event_ts": format_timestamp(arrived),
    }
    if host:
        event["page_host"] = host
    referrer = _first(body, "r", "referrer")
    if referrer is not _MISSING:
        event["referrer"] = referrer  # a non-string is the contract's wrong_type:referrer
    for key, value in parse_qsl(parts.query):
        if key in UTM_FIELDS and key not in event and value:
            event[key] = value
    if body.get("w") is not None:  # the older script's window width
        event["screen_width"] = body["w"]

    if name == ENGAGEMENT:
        depth, ms = _scroll(body.get("sd")), _engaged_ms(body.get("e"))
        if depth is None and ms is None:
            return Violation("invalid", "sd", message=(
                "an engagement event needs an integer sd (scroll %) or e (milliseconds)"))
        reached = [d for d in SCROLL_DEPTHS if depth is not None and d <= depth]
        seconds = _engaged_seconds(ms)
        events = []
        if reached:
            events.append(event | {"event_type": "scroll_depth",
                                   "props": {"depth": reached[-1]}})
        if seconds:
            # the same body's second event: its id is derived from the body's, so the pair is
            # fixed per body and the two never share an id (the pipeline keeps one event per
            # event_id)
            events.append(event | {
                "event_id": str(uuid.uuid5(uuid.UUID(event["event_id"]), ENGAGEMENT)),
                "event_type": "engagement", "props": {"seconds": seconds}})
        # a scroll under 25 % and under half a second engaged: nothing the contract keeps
        return events or "not_stored:engagement"

    event_type = EVENT_TYPES.get(name, "custom")
    if event_type in ("outbound", "download"):
        link = _link(event_type, props.pop("url", None))
        if isinstance(link, Violation):
            return link
        props = link | {k: v for k, v in props.items() if k not in link}
    elif event_type == "not_found":
        # the missing page (CONTRACT §1, "Plausible's payload"); its referring page, props.from,
        # is the handler's, from a referrer on the same host, as after the tracker's own
        # not_found on a page load (core.scrub_event)
        path = _missing_path(props.pop("path", None))
        if isinstance(path, Violation):
            return path
        if path is not None:
            event["page_path"] = path
    if event_type not in ("outbound", "download") and isinstance(props.get("url"), str):
        # a tagged link's URL: scrubbed as page_path and referrer are (no query but UTM tags,
        # no fragment, no user:password@)
        props["url"] = scrub_url(props["url"], max_chars=MAX_PROPS_VALUE_CHARS)
    if event_type == "custom":
        if "name" in props:
            return Violation("reserved_prop", "p.name", message=(
                "p.name: here props.name holds the event's name (CONTRACT §1, custom); "
                "rename the property"))
        props = {"name": name, **props}
    props |= revenue
    if props:
        event["props"] = props
    event["event_type"] = event_type
    return [event]


def check_body(body: bytes, arrived: datetime) -> PlausibleResult:
    """A Plausible request body → the event to store, through CONTRACT §1's rules."""
    try:
        parsed = loads_strict(body)
    except ValueError:
        return PlausibleResult(400, violations=[
            Violation("invalid_json", message="body is not JSON")])
    events = to_events(parsed, arrived)
    if isinstance(events, Violation):
        return PlausibleResult(400, violations=[events])
    if isinstance(events, str):
        return PlausibleResult(202, dropped=events)
    # one body is stored whole or refused whole, as Plausible answers it with one status
    problems = [v for e in events for v in validate_event(e)]
    if problems:
        return PlausibleResult(400, violations=problems)
    return PlausibleResult(202, events=events, site=site_of(parsed))


def answer(result: PlausibleResult) -> tuple[int, str, bytes]:
    """(status, content type, body) as Plausible answers: ``202 ok`` in text; a refusal as JSON
    with our ``reason`` (the first rule broken, CONTRACT §1's codes), every ``reasons``, and
    Plausible's ``errors`` ({field: [message]})."""
    if result.status == 202:
        return 202, "text/plain; charset=utf-8", b"ok"
    errors: dict[str, list[str]] = {}
    for v in result.violations:
        key = ERROR_KEYS.get((v.field or "request").split(".")[0], v.field or "request")
        errors.setdefault(key, []).append(v.message)
    first = result.violations[0]
    payload = {"reason": first.code, "message": first.message,
               "reasons": [v.code for v in result.violations], "errors": errors}
    return result.status, "application/json", encode_json(payload)
