"""The scrubber that keeps e-mail and IP addresses out of every table (SPEC §3.5)."""

import pytest

from analytics_platform.duck import connect

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
