"""The scrubber that keeps e-mail and IP addresses out of every table (CONTRACT §3.5)."""

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics_platform.contract import encode_records, format_timestamp
from analytics_platform.dashboard.realtime import recent_activity
from analytics_platform.duck import connect
from analytics_platform.lake import open_raw_lake

CON = connect()


def scrub(text: str) -> str:
    return CON.execute("SELECT scrub($t)", {"t": text}).fetchall()[0][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/unsubscribe/jamie.doe@example.org", "/unsubscribe/(email)"),
        ("/confirm/jamie.doe%40example.co.uk/ok", "/confirm/(email)/ok"),
        ("Mail A.B+tag@sub.example.com now", "Mail (email) now"),
        ("/admin/192.168.0.7", "/admin/(ip)"),
        ("from 10.0.0.1 and 255.255.255.255", "from (ip) and (ip)"),
        ("host 2001:db8:85a3:0:0:8a2e:370:7334 here", "host (ip) here"),
        ("compressed 2001:db8::1 and ::1", "compressed (ip) and (ip)"),
        # issue 18: what a careful user found going through
        ("1.2.3.4,5.6.7.8 then 10.0.0.1.", "(ip),(ip) then (ip)."),
        ("josé@exämple.com jamie%2540x.org a&#64;b.de c＠d.fr", "(email) (email) (email) (email)"),
        ("fe80::1%eth0 ::ffff:192.0.2.1 [2001:db8::7]:443", "(ip) (ip) [(ip)]:443"),
        ("ja\u200bmie@example.com", "(email)"),
        ('{"note":"fe80::1ff:fe23:4567:890a"}', '{"note":"(ip)"}'),
    ],
)
def test_addresses_are_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    ["/blog/std::vector-explained", "Webinar at 10:30:00", "/v/1.2.3", "/release/2026.11.24.1.5",
     '{"experiment":"cta_copy","variant":"control"}', "/pricing", "Café @ the corner",
     "user@localhost", "/a/b:c/d", "version 300.1.1.1", "::", "Ünïcödé 12:30",
     "line one\nline two", "/p/v1.2.3.4.5"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_the_realtime_view_shows_only_cleaned_paths(tmp_path: Path) -> None:
    """The Realtime view reads raw records (older ones were not scrubbed at the edge): what it
    shows went through clean_path, and a visit without consent counts by its visitor_hash."""
    now = datetime.now(UTC)
    recs = [{"event_type": "page_view", "event_id": str(uuid.uuid4()), "session_id": None,
             "visitor_hash": "00000000000000aa", "page_path": path,
             "event_ts": format_timestamp(now), "ingest_ts": format_timestamp(now),
             "user_agent": "Mozilla/5.0", "schema_version": 1}
            for path in ("/signup?token=SECRET\n&x", "/u/jamie.doe@example.org", "/a#frag")]
    open_raw_lake(tmp_path).write_records(now, gzip.compress(encode_records(recs)))
    act = recent_activity(str(tmp_path), now + timedelta(seconds=1))
    assert (act.events, act.sessions, act.pageviews) == (3, 1, 3)
    assert sorted(act.top_pages.page_path) == ["/a", "/signup", "/u/(email)"]


# Encoded IP addresses in records that bypassed the edge (written to the raw lake by another
# tool): their dots and colons percent-encoded (up to three times, as the edge decodes) or
# character references. The edge decodes; the macro reads the encoded separators in place.
# test_privacy_edge.py holds the edge to both lists (what it stores, the macro keeps).
ENCODED = [
    ("/ip/1%2E2%2E3%2E4", "/ip/(ip)"),
    ("/ip6/2001%3Adb8%3A%3A1", "/ip6/(ip)"),
    ("t 1&#46;2&#46;3&#46;4", "t (ip)"),
    ("10%252E1%252E2%252E3", "(ip)"),
    ("192%2E168%2E1%2E1:80", "(ip):80"),
    ("a 1&#x2E;2&#X2e;3&period;4 b", "a (ip) b"),
    ("x 10%25252e0%25252e0%25252e1", "x (ip)"),
    ('{"addr":"192%2E168%2E1%2E1"}', '{"addr":"(ip)"}'),
    ("https://1%2E2%2E3%2E4/p", "https://(ip)/p"),
    ("ip=1%2E2%2E3%2E4&x=1", "ip=(ip)&x=1"),
    ("%2F10%2E0%2E0%2E1%2Fa", "%2F(ip)%2Fa"),
    ("1%2E2%2E3%2E4,5%2E6%2E7%2E8 and 9%2E9%2E9%2E9%2E", "(ip),(ip) and (ip)%2E"),
    ("%3A%3A1 then fe80%3A%3A1%20x", "(ip) then (ip)%20x"),
    ("2001&#58;db8&#x3a;&colon;7 ::ffff%3A10%2E0%2E0%2E1", "(ip) (ip)"),
]
# ...and what only looks like one: a version, a time, an escape that decodes to a digit or a dot
# beside the address (the edge, decoding, finds no address there either)
ENCODED_LOOK_ALIKES = [
    "/docs/v1%2E2%2E3", "1%2E2%2E3%2E4%2E5", "4%2E1%2E2%2E3%2E4", "v1&#46;2&#46;3",
    "%A1%2E2%2E3%2E4", "&%231%2E2%2E3%2E4", "1%2E2%2E3%2E4%25330", "1&#46;2&#46;3&#46;4&#53;&#54;",
    "1&period;2&period;3&period;4&period;5", "10%3A30", "std%3A%3Avector", "Save 20%25 now",
    "Tom &amp; Jerry: 1.2.3", "a%3Ab%3Ac", "%2E%2E%2F", "1%2E2%2E3%2E4%2E5%2E6",
]


@pytest.mark.parametrize(("text", "expected"), ENCODED)
def test_encoded_addresses_are_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize("text", ENCODED_LOOK_ALIKES)
def test_encoded_look_alikes_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_a_run_of_colons_costs_a_few_readings_not_one_per_pair(monkeypatch) -> None:
    """An IPv6 candidate is read with at most the last two colons around it as its own: found
    in review, every pair of leading and trailing colons was tried, so a User-Agent of 2,000
    colons (no field limit bounds it) took 12.8 s in the collector's event loop. Counted in
    address readings, not timed; the address inside is still found."""
    import ipaddress

    from analytics_platform.ingest import privacy

    calls = []
    real = ipaddress.ip_address

    def counted(text: str):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(privacy.ipaddress, "ip_address", counted)
    agent = "Mozilla/5.0 " + ":" * 200 + "1" + ":" * 200
    privacy.scrub_agent(agent)
    assert len(calls) <= 2 * 9, len(calls)
    calls.clear()
    assert privacy.scrub_agent("curl/8.0 (2001:db8::1)") == "curl/8.0 ((ip))"
