"""Plausible's event API (``POST /api/event``, ingest/plausible.py): what Plausible's tracker sends
is mapped onto the contract and goes through its checks, scrub and enrichment.

The browser test runs Plausible's own tracker, the ``@plausible-analytics/tracker`` npm package
(installed by ``make`` from package.json; its ``plausible.js`` is a self-contained ES module,
loaded as it is: no bundler), in Debian's Chromium against the real collector, then the pipeline.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analytics_platform.contract import RAW_FIELD_NAMES, validate_raw_record
from analytics_platform.ingest.core import IngestConfig, Ingestor
from analytics_platform.ingest.lambda_handler import handler
from analytics_platform.ingest.privacy import LocalSalts, Salts, visitor_hash
from analytics_platform_tests import chromium
from analytics_platform_tests.test_browser import DESKTOP_UA, raw_records
from analytics_platform_tests.test_collector import collector_factory  # noqa: F401 (fixture)

NOW = datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
ORIGIN = "https://www.shop.example"
HEADERS = {"content-type": "text/plain", "user-agent": DESKTOP_UA, "origin": ORIGIN}
PEER = "203.0.113.9"
TRACKER = (Path(__file__).resolve().parent.parent / "node_modules" / "@plausible-analytics"
           / "tracker")


class MemorySink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def put(self, records: list[dict[str, Any]]) -> None:
        self.records += records


@pytest.fixture()
def salts(tmp_path: Path) -> Salts:
    return Salts(LocalSalts(tmp_path / "salts"))


@pytest.fixture()
def ingest(salts: Salts) -> tuple[Ingestor, MemorySink]:
    sink = MemorySink()
    return Ingestor(IngestConfig(("*",)), sink, clock=lambda: NOW, salts=salts), sink


def send(ing: Ingestor, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = ing.handle("POST", headers or HEADERS, raw, PEER, "/api/event").response
    ctype = r.headers["content-type"]
    return r.status, (r.body.decode() if ctype.startswith("text/plain") else json.loads(r.body))


# --- the mapping, one rule at a time ---------------------------------------------------------


def test_a_pageview_becomes_a_page_view_scrubbed_and_hashed(ingest, salts: Salts) -> None:
    ing, sink = ingest
    status, body = send(ing, {
        "n": "pageview", "v": 36, "d": "shop.example", "r": "https://news.example.org/item?id=7",
        "u": "https://www.shop.example/blog/post?utm_source=newsletter&utm_campaign=spring"
             "&email=ada@example.com#access_token=SECRET"})
    assert (status, body) == (202, "ok")
    [rec] = sink.records
    assert {k: rec[k] for k in ("event_type", "page_path", "page_host", "referrer",
                                "utm_source", "utm_campaign")} == {
        "event_type": "page_view", "page_path": "/blog/post", "page_host": "www.shop.example",
        "referrer": "https://news.example.org/item", "utm_source": "newsletter",
        "utm_campaign": "spring"}
    assert rec["session_id"] is None and rec["consent"] is False and "visitor_id" not in rec
    # the site without "www.", the peer's address, the raw User-Agent, the day's salt
    assert rec["visitor_hash"] == visitor_hash(salts.for_day(NOW.date()), "shop.example",
                                               ipaddress.ip_address(PEER), DESKTOP_UA)
    assert rec["event_ts"] == rec["ingest_ts"] == "2026-03-02T10:00:00.123Z"
    assert set(rec) <= set(RAW_FIELD_NAMES) and validate_raw_record(rec) == []
    text = json.dumps(rec)
    assert "ada@example.com" not in text and "SECRET" not in text and PEER not in text


def test_the_tracker_event_names_map_onto_the_contracts_types(ingest) -> None:
    ing, sink = ingest
    base = {"u": "https://shop.example/pricing", "d": "shop.example"}
    bodies = [
        # the tracker's payloads: the outbound link's href; the download's href cut at "?"
        {"n": "Outbound Link: Click",
         "p": {"url": "https://Ada:pw@Other.Example:8443/x/y?secret=1&utm_medium=m#top"}},
        {"n": "File Download", "p": {"url": "https://cdn.example/files/Report.2026.PDF#page=2"}},
        {"n": "File Download", "p": {"url": "/files/a.tar.gz", "campaign": "spring"}},
        {"n": "Tagged", "p": {"url": "https://other.example/x?secret=1&utm_medium=m"}},
        {"n": "Form: Submission"},
        {"n": "Signup", "p": {"tier": "pro", "seats": 3, "blank": "", "none": None},
         "$": {"amount": "15.99", "currency": "eur"}, "i": False},
        # the long names, when the short ones are null (Plausible's `n || name`)
        {"n": None, "name": 404, "u": None, "url": "https://shop.example/missing",
         "d": None, "domain": "shop.example"},
        {"n": "engagement", "sd": 80, "e": 5123},
        {"n": "engagement", "sd": "100"},
        {"n": "engagement", "sd": 10, "e": "1500"},
    ]
    for b in bodies:
        assert send(ing, base | b) == (202, "ok"), b
    got = [(r["event_type"], r["page_path"], r.get("props")) for r in sink.records]
    assert got == [
        ("outbound", "/pricing", {"host": "other.example"}),
        ("download", "/pricing", {"ext": "pdf", "file": "/files/Report.2026.PDF"}),
        ("download", "/pricing", {"ext": "gz", "file": "/files/a.tar.gz", "campaign": "spring"}),
        ("custom", "/pricing", {"name": "Tagged", "url": "https://other.example/x?utm_medium=m"}),
        ("form_submit", "/pricing", None),
        ("custom", "/pricing", {"name": "Signup", "tier": "pro", "seats": 3,
                                "revenue_amount": 15.99, "revenue_currency": "EUR"}),
        ("not_found", "/missing", None),
        ("scroll_depth", "/pricing", {"depth": 75}),
        ("engagement", "/pricing", {"seconds": 5}),
        ("scroll_depth", "/pricing", {"depth": 100}),
        ("engagement", "/pricing", {"seconds": 2}),
    ]
    assert len({r["visitor_hash"] for r in sink.records}) == 1
    assert all(validate_raw_record(r) == [] for r in sink.records)


def test_a_404_becomes_not_found_with_its_referring_page(ingest) -> None:
    """Plausible's 404 guide: `plausible("404", {props: {path: document.location.pathname}})`
    on the 404 page. The path is the missing page; a referrer on the same host is the page that
    linked to it (CONTRACT §2, as for the tracker's own not_found), another site's stays the
    referrer (not_found_daily counts its host)."""
    ing, sink = ingest
    base = {"n": "404", "v": 36, "d": "shop.example",
            "u": "https://www.shop.example/old-page?utm_source=x&email=ada@example.com#top"}
    bodies = [
        base | {"r": "https://www.shop.example/blog/post?id=7#c", "p": {"path": "/old-page"}},
        # a path other than u's (a site that redirects to its 404 page): the path is the page
        base | {"r": "https://other.example/links", "p": {"path": "/gone?token=SECRET"}},
        # without p.path (or blank, dropped as Plausible drops it): u's path; other props kept
        base | {"r": None, "p": {"path": " ", "section": "docs"}},
    ]
    for b in bodies:
        assert send(ing, b) == (202, "ok"), b
    got = [(r["event_type"], r["page_path"], r.get("props"), r.get("referrer"), r["utm_source"])
           for r in sink.records]
    assert got == [
        ("not_found", "/old-page", {"from": "/blog/post"}, "https://www.shop.example/blog/post",
         "x"),
        ("not_found", "/gone", None, "https://other.example/links", "x"),
        ("not_found", "/old-page", {"section": "docs"}, None, "x"),
    ]
    assert all(validate_raw_record(r) == [] for r in sink.records)
    assert "SECRET" not in json.dumps(sink.records) and "ada@" not in json.dumps(sink.records)


@pytest.mark.parametrize("via", ["collector", "lambda"])
def test_the_visitor_hash_is_the_sites_of_d_across_its_subdomains(tmp_path: Path,
                                                                    via: str) -> None:
    """Plausible hashes its domain (d), not the page's host: one browser moving between the
    subdomains of one site is one visitor there too, each page keeping its own page_host."""
    sink = MemorySink()
    salts = Salts(LocalSalts(tmp_path))
    ing = Ingestor(IngestConfig(("*",)), sink, clock=lambda: NOW, salts=salts)

    def post(body: dict[str, Any]) -> None:
        raw = json.dumps({"n": "pageview", "r": None} | body)
        if via == "collector":
            status = ing.handle("POST", HEADERS, raw.encode(), PEER, "/api/event").response.status
        else:
            status = handler({"version": "2.0", "rawPath": "/api/event", "headers": HEADERS,
                              "requestContext": {"http": {"method": "POST", "sourceIp": PEER}},
                              "body": raw, "isBase64Encoded": False},
                             ingestor=ing)["statusCode"]
        assert status == 202, body

    for u in ("https://shop.example/pricing", "https://www.shop.example/",
              "https://app.shop.example/signup"):
        post({"u": u, "d": "shop.example"})
    # d's first entry (a page reporting to two sites), its case and "www." not counted
    post({"u": "https://app.shop.example/", "d": " WWW.Shop.Example , other.example"})
    post({"u": "https://app.shop.example/", "domain": "shop.example", "d": None})
    # another site of d on the same host is another site: another visitor
    post({"u": "https://app.shop.example/", "d": "app.shop.example"})
    # without d, the page's host, as for the tracker's own events
    post({"u": "https://app.shop.example/"})
    salt = salts.for_day(NOW.date())

    def expected(site: str) -> str:
        return visitor_hash(salt, site, ipaddress.ip_address(PEER), DESKTOP_UA)

    assert [(r["page_host"], r["visitor_hash"]) for r in sink.records] == [
        ("shop.example", expected("shop.example")),
        ("www.shop.example", expected("shop.example")),
        ("app.shop.example", expected("shop.example")),
        ("app.shop.example", expected("shop.example")),
        ("app.shop.example", expected("shop.example")),
        ("app.shop.example", expected("app.shop.example")),
        ("app.shop.example", expected("app.shop.example")),
    ]
    assert expected("shop.example") != expected("app.shop.example")


@pytest.mark.parametrize(("text", "number"), [
    ("0.30000000000000004", 0.30000000000000004),  # more than 6 decimals
    ("1234567890123456.5", 1234567890123456.5),  # more than 15 integer digits
    ("0.1234567890123456789", 0.1234567890123456789),  # more digits than a double holds
    (" 15.99 ", 15.99), ("15", 15), ("-0.5", -0.5), ("1e3", 1e3), (".5", 0.5),
])
@pytest.mark.parametrize("via", ["collector", "lambda"])
def test_revenue_as_decimal_text_is_stored_as_the_same_number(tmp_path: Path, via: str,
                                                              text: str, number: Any) -> None:
    """Decimal text of any precision is an amount, stored as the JSON number of the same
    digits is: one record whichever way a site sends it."""
    sink = MemorySink()
    ing = Ingestor(IngestConfig(("*",)), sink, clock=lambda: NOW,
                   salts=Salts(LocalSalts(tmp_path)))
    for amount in (text, number):
        body = json.dumps({"n": "Purchase", "u": "https://shop.example/", "d": "shop.example",
                           "$": {"amount": amount, "currency": "EUR"}})
        if via == "collector":
            status = ing.handle("POST", HEADERS, body.encode(), PEER,
                                "/api/event").response.status
        else:
            status = handler({"version": "2.0", "rawPath": "/api/event", "headers": HEADERS,
                              "requestContext": {"http": {"method": "POST", "sourceIp": PEER}},
                              "body": body, "isBase64Encoded": False},
                             ingestor=ing)["statusCode"]
        assert status == 202, amount
    from_text, from_number = (json.dumps(r["props"]) for r in sink.records)
    assert from_text == from_number
    assert sink.records[0]["props"]["revenue_amount"] == number
    assert all(validate_raw_record(r) == [] for r in sink.records)


ENGAGEMENT = {"n": "engagement", "u": "https://shop.example/a", "d": "shop.example", "p": {},
              "v": 36}


@pytest.mark.parametrize(("sd", "e", "stored"), [
    # what Plausible's tracker 0.4.6 sends: e is the engaged milliseconds since its previous
    # send, the contract's engagement seconds since the previous engagement
    (100, 42000, [("scroll_depth", {"depth": 100}), ("engagement", {"seconds": 42})]),
    (10, 5123, [("engagement", {"seconds": 5})]),
    # whole seconds, rounded half up as Plausible's milliseconds come
    (10, 1499, [("engagement", {"seconds": 1})]),
    (10, 1500, [("engagement", {"seconds": 2})]),
    (0, "2500", [("engagement", {"seconds": 3})]),
    # more than a day visible: the contract's day, not a refusal of the whole body
    (50, 90_000_000, [("scroll_depth", {"depth": 50}), ("engagement", {"seconds": 86_400})]),
    # a scroll with e not an integer: the scroll alone, as before
    (75, -1, [("scroll_depth", {"depth": 75})]),
    (75, 1.5, [("scroll_depth", {"depth": 75})]),
])
@pytest.mark.parametrize("via", ["collector", "lambda"])
def test_engaged_time_becomes_an_engagement_event(tmp_path: Path, via: str, sd: Any, e: Any,
                                                  stored: list[Any]) -> None:
    sink = MemorySink()
    ing = Ingestor(IngestConfig(("*",)), sink, clock=lambda: NOW,
                   salts=Salts(LocalSalts(tmp_path)))
    body = json.dumps(ENGAGEMENT | {"sd": sd, "e": e})
    if via == "collector":
        prepared = ing.handle("POST", HEADERS, body.encode(), PEER, "/api/event")
        assert (prepared.response.status, prepared.response.body) == (202, b"ok")
        assert prepared.rejected_reasons == []
    else:
        resp = handler({"version": "2.0", "rawPath": "/api/event", "headers": HEADERS,
                        "requestContext": {"http": {"method": "POST", "sourceIp": PEER}},
                        "body": body, "isBase64Encoded": False}, ingestor=ing)
        assert (resp["statusCode"], resp["body"]) == (202, "ok")
    assert [(r["event_type"], r["props"]) for r in sink.records] == stored
    assert all(r["page_path"] == "/a" and validate_raw_record(r) == [] for r in sink.records)
    # two events of one body: two ids (the pipeline keeps one event per id), one visitor
    assert len({r["event_id"] for r in sink.records}) == len(sink.records)
    assert len({r["visitor_hash"] for r in sink.records}) == 1


def test_an_engagement_with_nothing_to_keep_is_answered_ok_and_stores_nothing(ingest) -> None:
    ing, sink = ingest
    for extra in ({"sd": 10, "e": 499}, {"sd": 10, "e": 0}, {"sd": 24}, {"e": 400}):
        prepared = ing.handle("POST", HEADERS, json.dumps(ENGAGEMENT | extra).encode(), PEER,
                              "/api/event")
        assert (prepared.response.status, prepared.response.body) == (202, b"ok"), extra
        assert prepared.rejected_reasons == ["not_stored:engagement"], extra
    assert sink.records == []


@pytest.mark.parametrize(("body", "reason", "key"), [
    (b"{not json", "invalid_json", "request"),
    (b"[]", "not_an_object", "request"),
    ({"u": "https://shop.example/", "d": "shop.example"}, "missing:n", "event_name"),
    ({"n": ["pageview"], "u": "https://shop.example/"}, "wrong_type:n", "event_name"),
    ({"n": "x" * 121, "u": "https://shop.example/"}, "too_long:n", "event_name"),
    ({"n": "pageview", "d": "shop.example"}, "missing:u", "url"),
    ({"n": "pageview", "u": 7}, "wrong_type:u", "url"),
    ({"n": "pageview", "u": "http://[::1/"}, "invalid:u", "url"),
    ({"n": "pageview", "u": "data:text/html,hi", "d": "x"}, "invalid:u", "url"),
    ({"n": "pageview", "u": "/no/host"}, "missing:d", "domain"),
    ({"n": "pageview", "u": "https://shop.example/", "d": "  "}, "empty:d", "domain"),
    ({"n": "pageview", "u": "https://shop.example/", "d": 1}, "wrong_type:d", "domain"),
    ({"n": "x", "u": "https://shop.example/", "p": ["a"]}, "wrong_type:p", "props"),
    ({"n": "x", "u": "https://shop.example/", "p": "{no"}, "wrong_type:p", "props"),
    ({"n": "x", "u": "https://shop.example/", "p": {"a": {"b": 1}}}, "props_bad_value:p.a",
     "props"),
    ({"n": "x", "u": "https://shop.example/", "p": {"name": "Ada"}}, "reserved_prop:p.name",
     "props"),
    ({"n": "x", "u": "https://shop.example/", "p": {str(i): "v" for i in range(20)}},
     "props_too_many_keys:props", "props"),
    ({"n": "x", "u": "https://shop.example/", "p": {"k": "v" * 513}}, "props_bad_value:props.k",
     "props"),
    ({"n": "x", "u": "https://shop.example/", "p": {"k" * 65: "v"}}, "props_bad_key:props",
     "props"),
    ({"n": "Outbound Link: Click", "u": "https://shop.example/"}, "missing:p.url", "props"),
    ({"n": "File Download", "u": "https://shop.example/", "p": {"url": 7}}, "wrong_type:p.url",
     "props"),
    ({"n": "Outbound Link: Click", "u": "https://shop.example/", "p": {"url": "/local"}},
     "invalid:p.url", "props"),
    ({"n": "File Download", "u": "https://shop.example/", "p": {"url": "https://x.example/a/"}},
     "invalid:p.url", "props"),
    ({"n": "File Download", "u": "https://shop.example/", "p": {"url": "http://[::1/a.pdf"}},
     "invalid:p.url", "props"),
    ({"n": "404", "u": "https://shop.example/", "p": {"path": 404}}, "wrong_type:p.path",
     "props"),
    ({"n": 404, "u": "https://shop.example/", "p": {"path": "missing"}}, "invalid:p.path",
     "props"),
    ({"n": "404", "u": "https://shop.example/", "p": {"path": "/" + "a" * 2048}},
     "too_long:page_path", "url"),
    ({"n": "x", "u": "https://shop.example/", "$": {"amount": "ten", "currency": "USD"}},
     "invalid:revenue", "revenue"),
    ({"n": "x", "u": "https://shop.example/", "revenue": {"amount": 1}}, "invalid:revenue",
     "revenue"),
    ({"n": "x", "u": "https://shop.example/", "$": {"amount": "1_000", "currency": "USD"}},
     "invalid:revenue", "revenue"),
    ({"n": "x", "u": "https://shop.example/", "$": {"amount": "NaN", "currency": "USD"}},
     "invalid:revenue", "revenue"),
    ({"n": "x", "u": "https://shop.example/", "$": {"amount": "1e400", "currency": "USD"}},
     "invalid:revenue", "revenue"),
    ({"n": "engagement", "u": "https://shop.example/", "sd": "deep"}, "invalid:sd",
     "event_name"),
    ({"n": "pageview", "u": "https://shop.example/" + "a" * 2048}, "too_long:page_path", "url"),
    ({"n": "pageview", "u": "https://shop.example/", "r": 5}, "wrong_type:referrer",
     "referrer"),
    ({"n": "pageview", "u": "https://shop.example/", "w": 99999}, "out_of_range:screen_width",
     "w"),
])
def test_refusals_name_their_reason_in_both_shapes(ingest, body: Any, reason: str,
                                                   key: str) -> None:
    ing, sink = ingest
    status, answer = send(ing, body)
    assert status == 400 and answer["reason"] == reason
    assert key in answer["errors"] and answer["errors"][key][0] == answer["message"]
    assert sink.records == []


def test_cors_and_media_types_are_those_of_v1_events(tmp_path: Path) -> None:
    ing = Ingestor(IngestConfig((ORIGIN,)), MemorySink(), clock=lambda: NOW,
                   salts=Salts(LocalSalts(tmp_path)))
    body = json.dumps({"n": "pageview", "u": f"{ORIGIN}/"}).encode()
    ok = ing.handle("POST", HEADERS, body, PEER, "/api/event").response
    assert ok.status == 202 and ok.headers["access-control-allow-origin"] == ORIGIN
    pre = ing.prepare("OPTIONS", {"origin": ORIGIN}, b"", None, "/api/event").response
    assert pre.status == 204 and pre.headers["access-control-allow-origin"] == ORIGIN
    other = ing.handle("POST", {**HEADERS, "origin": "https://evil.example"}, body, PEER,
                       "/api/event").response
    assert other.status == 403 and json.loads(other.body)["reason"] == "origin_not_allowed"
    form = ing.handle("POST", {**HEADERS, "content-type": "application/x-www-form-urlencoded"},
                      body, PEER, "/api/event").response
    assert form.status == 415 and json.loads(form.body)["reason"] == "unsupported_media_type"


@pytest.mark.parametrize("shape", ["function_url", "rest_api"])
def test_the_lambda_takes_the_same_path(tmp_path: Path, shape: str) -> None:
    sink = MemorySink()
    ing = Ingestor(IngestConfig(("*",)), sink, clock=lambda: NOW,
                   salts=Salts(LocalSalts(tmp_path)))
    body = json.dumps({"n": "Signup", "u": "https://shop.example/", "d": "shop.example"})
    if shape == "function_url":
        event = {"version": "2.0", "rawPath": "/api/event", "headers": HEADERS,
                 "requestContext": {"http": {"method": "POST", "sourceIp": PEER}},
                 "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}
    else:
        event = {"httpMethod": "POST", "path": "/prod/api/event", "body": body,
                 "headers": HEADERS, "requestContext": {"identity": {"sourceIp": PEER}}}
    resp = handler(event, ingestor=ing)
    assert (resp["statusCode"], resp["body"]) == (202, "ok")
    assert [r["props"] for r in sink.records] == [{"name": "Signup"}]
    resp = handler({**event, "body": "{}", "isBase64Encoded": False}, ingestor=ing)
    assert resp["statusCode"] == 400 and json.loads(resp["body"])["reason"] == "missing:n"


def test_every_reason_of_the_plausible_payload_is_in_the_contract() -> None:
    """The codes plausible.py can answer, read from its Violation(...) calls, are in CONTRACT
    §1's table (test_contract_doc.py does the same for contract.py's)."""
    import ast

    from analytics_platform.ingest import plausible

    tree = ast.parse(Path(plausible.__file__).read_text(encoding="utf-8"))
    codes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Violation":
            # a constant, or f"p.{k}": the key is the property's
            args = [a.value if isinstance(a, ast.Constant) else "p.<key>"
                    for a in node.args[:2]]
            codes.add(":".join(args))
    assert {"missing:n", "invalid:u", "props_bad_value:p.<key>", "not_an_object"} <= codes
    doc = (Path(__file__).resolve().parent.parent / "docs" / "CONTRACT.md").read_text()
    section = doc[doc.index("### Plausible's payload"):doc.index("## 2. The raw record")]
    assert [c for c in sorted(codes) if f"`{c}`" not in section] == []
    assert "`not_stored:engagement`" in section


def test_the_collector_serves_the_path(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    pre = httpx.options(f"{c.url}/api/event", headers={
        "origin": ORIGIN, "access-control-request-method": "POST"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == ORIGIN
    ok = httpx.post(f"{c.url}/api/event", headers=HEADERS, content=json.dumps(
        {"n": "pageview", "u": f"{ORIGIN}/a?utm_medium=email", "d": "shop.example"}))
    assert (ok.status_code, ok.text, ok.headers["access-control-allow-origin"]) == (
        202, "ok", ORIGIN)
    bad = httpx.post(f"{c.url}/api/event", headers=HEADERS, content=b'{"n": "pageview"}')
    assert bad.status_code == 400 and bad.json()["reason"] == "missing:u"
    get = httpx.get(f"{c.url}/api/event")
    assert get.status_code == 405 and get.json()["reason"] == "method_not_allowed"
    assert "POST /api/event" in httpx.get(c.url).json()["endpoints"]
    m = httpx.get(f"{c.url}/metrics").json()
    assert (m["accepted"], m["rejected"]) == (1, {"missing:u": 1})
    c.stop()
    [rec] = raw_records(c.data)
    assert (rec["event_type"], rec["page_path"], rec["utm_medium"]) == ("page_view", "/a",
                                                                        "email")


# --- any Plausible-shaped body: a 202 with a valid record, or a refusal with a reason -------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
_VALUES = st.recursive(_SCALARS, lambda c: st.one_of(st.lists(c, max_size=3),
                                                     st.dictionaries(st.text(max_size=8), c,
                                                                     max_size=3)), max_leaves=6)
_URLS = st.one_of(
    st.builds(lambda path, q: f"https://www.shop.example/{path}?{q}",
              st.text(max_size=30), st.sampled_from(["", "utm_source=x", "utm_term=" + "t" * 300,
                                                     "a=jamie@example.com"])),
    st.sampled_from(["data:,x", "http://[::1", "/relative", "app://login", ""]),
    st.text(max_size=30))
_PROPS = st.one_of(
    st.dictionaries(st.text(max_size=70), _VALUES, max_size=25),
    st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=600), max_size=4),
    st.builds(json.dumps, st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
    _VALUES)


_NAMES = st.sampled_from(["pageview", "engagement", "Outbound Link: Click", "File Download",
                          "Form: Submission", "404", "Signup", "x" * 121])
_GOOD_URLS = st.builds(lambda path, q: f"https://www.shop.example/{path}?{q}",
                       st.text(st.characters(codec="ascii"), max_size=20),
                       st.sampled_from(["", "utm_source=x", "a=jamie@example.com"]))
_GOOD_PROPS = st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k != "name"),
                              st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
                              max_size=4)


@st.composite
def plausible_bodies(draw: st.DrawFn) -> bytes:
    """Bodies of every shape, most of them like the tracker's (about half are stored)."""
    kind = draw(st.sampled_from(["tracker", "tracker", "tracker", "payload", "junk", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "junk":
        return json.dumps(draw(_VALUES)).encode()
    optional = {
        "n": st.one_of(_NAMES, _SCALARS), "name": _SCALARS, "u": st.one_of(_URLS, _SCALARS),
        "url": _URLS, "d": st.one_of(st.just("shop.example"), _SCALARS),
        "r": st.one_of(_URLS, _SCALARS), "p": _PROPS, "m": _PROPS, "$": _VALUES,
        "revenue": st.fixed_dictionaries({"amount": _SCALARS, "currency": _SCALARS}),
        "sd": _SCALARS, "e": _SCALARS, "w": _SCALARS, "h": _SCALARS, "i": _SCALARS,
    }
    keys = draw(st.lists(st.sampled_from(list(optional)), unique=True, max_size=8))
    body = {k: draw(optional[k]) for k in keys}
    if kind == "tracker":  # what the tracker sends, with one part perhaps replaced above
        body = {"n": draw(_NAMES), "u": draw(_GOOD_URLS), "d": "shop.example",
                "r": draw(st.one_of(st.none(), _GOOD_URLS)), "v": 36,
                "p": draw(_GOOD_PROPS) | draw(st.one_of(st.just({}), st.fixed_dictionaries(
                    {"url": st.one_of(_GOOD_URLS, _URLS, _SCALARS)}), st.fixed_dictionaries(
                    {"path": st.one_of(st.text(max_size=30).map("/".__add__), _SCALARS)}))),
                "sd": draw(st.integers(0, 120)),
                "e": draw(st.integers(0, 10**6)),
                **{k: body[k] for k in keys[:draw(st.integers(0, 1))]}}
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()))
    return raw.encode("utf-8", "surrogatepass")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible_bodies())
def test_any_plausible_body_is_stored_valid_or_refused_with_a_reason(tmp_path_factory,
                                                                     body: bytes) -> None:
    sink = MemorySink()
    ing = Ingestor(IngestConfig(("*",)), sink, clock=lambda: NOW,
                   salts=Salts(LocalSalts(tmp_path_factory.getbasetemp() / "hyp-salts")))
    r = ing.handle("POST", HEADERS, body, PEER, "/api/event").response
    assert r.status in (202, 400, 413)
    event(f"{r.status} {'stored' if sink.records else 'not stored'}")
    if r.status == 202:
        assert r.body == b"ok" and r.headers["content-type"].startswith("text/plain")
        # one event, or two from an engagement (a scroll milestone and engaged time)
        assert len(sink.records) <= 1 or [r["event_type"] for r in sink.records] == [
            "scroll_depth", "engagement"]
    else:
        answer = json.loads(r.body)
        assert answer["reason"] and answer["message"] and answer["errors"]
        assert sink.records == []
    for rec in sink.records:
        assert validate_raw_record(rec) == [] and set(rec) <= set(RAW_FIELD_NAMES)
        assert rec["visitor_hash"] and rec["session_id"] is None
        assert "jamie@example.com" not in json.dumps(rec, ensure_ascii=False)


# --- Plausible's own tracker in Chromium, against the collector, through the pipeline -------

SITE = "www.shop.example"
OTHER = "other.example"
HOME = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script type="module">
import {{ init, track }} from "/js/plausible.js";
init({{ domain: "shop.example", endpoint: "{endpoint}", outboundLinks: true,
        fileDownloads: true, formSubmissions: true, logging: false }});
window.statuses = [];
window.signup = () => track("Signup", {{ props: {{ tier: "pro" }},
  revenue: {{ amount: 15.99, currency: "EUR" }},
  callback: (r) => window.statuses.push(r && r.status) }});
window.toPricing = () => history.pushState({{}}, "", "/pricing");
</script></head><body>
<h1>Shop</h1><button id="signup" onclick="signup()">Sign up</button>
<button id="pricing" onclick="toPricing()">Pricing</button>
<a id="download" href="/files/report.pdf?session=abc">Report</a>
<a id="outbound" href="http://{other}/landing?secret=1">Partner</a>
<div style="height: 4000px"></div><p id="bottom">bottom</p>
</body></html>"""
CONTACT = """<!doctype html><html><head><meta charset="utf-8"><title>Contact</title>
<script type="module">
import {{ init }} from "/js/plausible.js";
init({{ domain: "shop.example", endpoint: "{endpoint}", formSubmissions: true,
        logging: false }});
</script></head><body><form id="f" action="/thanks" method="get">
<input name="topic" required><button id="send">Send</button></form></body></html>"""
# A 404 page with the snippet of Plausible's 404 guide (docs/404-error-pages-tracking).
MISSING = """<!doctype html><html><head><meta charset="utf-8"><title>Not found</title>
<script type="module">
import {{ init, track }} from "/js/plausible.js";
init({{ domain: "shop.example", endpoint: "{endpoint}", logging: false }});
window.plausible = track;
</script></head><body><h1>Not found</h1>
<script>document.addEventListener('DOMContentLoaded', function () {{
  plausible('404', {{ props: {{ path: document.location.pathname }} }}); }});</script>
</body></html>"""


def site_server(endpoint: str) -> ThreadingHTTPServer:
    """The shop's web server: its pages use Plausible's tracker as the package ships it."""
    tracker_js = (TRACKER / "plausible.js").read_bytes()

    class Site(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            ctype, extra, status = "text/html; charset=utf-8", {}, 200
            if path == "/js/plausible.js":
                ctype, body = "text/javascript", tracker_js
            elif path == "/files/report.pdf":
                ctype, body = "application/pdf", b"%PDF-1.4\n%%EOF\n"
                extra = {"content-disposition": 'attachment; filename="report.pdf"'}
            elif path in ("/contact", "/thanks"):
                body = CONTACT.format(endpoint=endpoint).encode()
            elif path == "/landing":  # the partner's site, which has no tracker
                body = b"<!doctype html><title>Partner</title><p>Welcome"
            elif path == "/old-offer":
                status, body = 404, MISSING.format(endpoint=endpoint).encode()
            else:  # "/" (and "/pricing", should the SPA be reloaded)
                body = HOME.format(endpoint=endpoint,
                                   other=f"{OTHER}:{self.server.server_address[1]}").encode()
            self.send_response(status)
            for k, v in {"content-type": ctype, "content-length": str(len(body)), **extra}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def accepted(url: str, counter: str = "accepted") -> int:
    return httpx.get(f"{url}/metrics").json()[counter]


def wait_for(url: str, n: int, timeout: float = 15, counter: str = "accepted") -> None:
    import time

    deadline = time.monotonic() + timeout
    while accepted(url, counter) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert accepted(url, counter) >= n


def shop_visit(collector: str, site_port: int) -> list[Any]:
    """Home (from a news site, with UTM tags), a custom event with revenue, an SPA navigation,
    a download, an outbound link, then the contact form, sent, and a link from the thank-you
    page to a page that is gone: each step waits until the collector has its event, so the
    records' order is the visit's (but for the 404 page's two)."""
    from playwright.sync_api import sync_playwright

    site = f"http://{SITE}:{site_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium.PATH, headless=True, args=[
            *chromium.ARGS, f"--user-agent={DESKTOP_UA}",
            # the shop and its partner are names for this machine's 127.0.0.1
            f"--host-resolver-rules=MAP {SITE} 127.0.0.1, MAP {OTHER} 127.0.0.1"])
        ctx = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 720},
                                  accept_downloads=True)
        # Plausible's tracker ignores a browser driven by automation (navigator.webdriver)
        # unless the page sets this flag, as Plausible's own tests do.
        ctx.add_init_script("window.__plausible = true")
        page = ctx.new_page()
        n = accepted(collector)
        page.goto(f"{site}/?utm_source=newsletter&utm_campaign=spring&email=ada@example.com",
                  referer="https://news.example.org/item?id=7")
        wait_for(collector, n := n + 1)  # pageview /
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(300)
        page.click("#signup")
        wait_for(collector, n := n + 1)  # Signup
        page.wait_for_function("window.statuses.length === 1")
        statuses = page.evaluate("window.statuses")
        page.evaluate("window.scrollTo(0, 0)")
        # the engagement of / (scrolled to 100 %; one record, or two with a second engaged),
        # then pageview /pricing: counted in requests, as the engagement's records vary
        sent = accepted(collector, "requests")
        page.click("#pricing")
        wait_for(collector, sent + 2, counter="requests")
        n = accepted(collector)
        with page.expect_download():
            page.click("#download")
        wait_for(collector, n := n + 1)  # File Download
        page.click("#outbound")
        page.wait_for_url(f"http://{OTHER}:{site_port}/landing?secret=1")
        # Outbound Link: Click, and the engagement of /pricing as the page goes away
        wait_for(collector, n := n + 1)
        page.goto(f"{site}/contact")
        page.wait_for_function("window.plausible && window.plausible.l === true")
        page.fill("input[name=topic]", "Our funnel")
        page.click("#send")  # Form: Submission, then the thank-you page's pageview
        page.wait_for_url("**/thanks?topic=Our+funnel")
        page.wait_for_function("window.plausible && window.plausible.l === true")
        wait_for(collector, n := n + 2)  # Form: Submission, pageview /thanks
        page.goto(f"{site}/old-offer", referer=f"{site}/thanks?topic=Our+funnel")
        wait_for(collector, n := n + 2)  # pageview /old-offer, 404
        page.wait_for_timeout(500)
        ctx.close()
        browser.close()
    return statuses


@pytest.mark.skipif(not chromium.available(), reason=chromium.MISSING)
@pytest.mark.skipif(not (TRACKER / "plausible.js").exists(),
                    reason="node_modules has no @plausible-analytics/tracker: run `make "
                           "node_modules/.installed` (npm ci from package-lock.json)")
def test_plausibles_tracker_in_chromium_lands_in_sessions(collector_factory) -> None:  # noqa: F811
    c = collector_factory(flush_seconds=0.5)
    site = site_server(f"{c.url}/api/event")
    try:
        port = site.server_address[1]
        statuses = shop_visit(c.url, port)
    finally:
        site.shutdown()
    assert statuses == [202]  # the tracker's callback saw our answer
    wait_for(c.url, 11)
    c.stop()

    records = raw_records(c.data)
    site = f"http://{SITE}:{port}"
    # engagement events come when the page is hidden or left: how many depends on the browser,
    # but the scroll to the bottom of / must be there, and engaged time only as whole seconds
    assert ("scroll_depth", "/", {"depth": 100}) in [
        (r["event_type"], r["page_path"], r.get("props")) for r in records]
    assert all(isinstance(r["props"]["seconds"], int) and r["props"]["seconds"] >= 1
               for r in records if r["event_type"] == "engagement")
    visit = [(r["event_type"], r["page_path"], r.get("props"))
             for r in records if r["event_type"] not in ("scroll_depth", "engagement")]
    assert visit[:-2] == [
        ("page_view", "/", None),
        ("custom", "/", {"name": "Signup", "tier": "pro", "revenue_amount": 15.99,
                         "revenue_currency": "EUR"}),
        ("page_view", "/pricing", None),
        ("download", "/pricing", {"ext": "pdf", "file": "/files/report.pdf"}),
        ("outbound", "/pricing", {"host": OTHER}),
        ("page_view", "/contact", None),
        ("form_submit", "/contact", None),
        ("page_view", "/thanks", None),
    ]
    # the 404 page's two requests, in either order: Plausible's "404" is our not_found, the
    # referring page from the same-host referrer, its query dropped
    assert sorted(visit[-2:]) == [("not_found", "/old-offer", {"from": "/thanks"}),
                                  ("page_view", "/old-offer", None)]
    first = records[0]
    assert (first["utm_source"], first["utm_campaign"], first["referrer"]) == (
        "newsletter", "spring", "https://news.example.org/item")
    assert all(r["page_host"] == SITE and r["user_agent"] == DESKTOP_UA for r in records)
    # nothing on the device, no id: one daily hash for the whole visit, made by the handler
    assert all(r["session_id"] is None and r["consent"] is False and "visitor_id" not in r
               for r in records)
    assert len({r["visitor_hash"] for r in records}) == 1
    assert all(validate_raw_record(r) == [] for r in records)
    text = json.dumps(records)
    for secret in ("ada@example.com", "secret=1", "session=abc", "id=7", "127.0.0.1",
                   "/landing"):
        assert secret not in text

    # …and through the pipeline: the visit's events, and one session
    import duckdb

    from analytics_platform_tests.topology import backfill_today

    backfill_today(c.data)
    con = duckdb.connect(str(c.data / "warehouse.duckdb"), read_only=True)
    events = con.execute("SELECT event_type, page_path FROM events").fetchall()
    columns = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
    outbound = con.execute("SELECT host, clicks FROM outbound_daily").fetchall()
    downloads = con.execute("SELECT ext, file, downloads FROM downloads_daily").fetchall()
    not_found = con.execute("SELECT page_path, referrer, hits FROM not_found_daily").fetchall()
    sessions = con.execute("SELECT * FROM sessions").fetchall()
    cols = [d[0] for d in con.description]
    con.close()
    assert (outbound, downloads) == ([(OTHER, 1)], [("pdf", "/files/report.pdf", 1)])
    assert not_found == [("/old-offer", "/thanks", 1)]
    assert sorted(events) == sorted((r["event_type"], r["page_path"]) for r in records)
    # no session id from Plausible's tracker: the pipeline makes the session from visitor_hash
    # (CONTRACT §4), which `events` keeps
    assert "visitor_hash" in columns
    [s] = [dict(zip(cols, row, strict=True)) for row in sessions]
    assert (s["pageviews"], s["events"], s["max_scroll_depth"]) == (5, len(records), 100)
    assert (s["entry_page"], s["exit_page"]) == ("/", "/old-offer")
    assert s["interactions"] == 1  # the form's submission
