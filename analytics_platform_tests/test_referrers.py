"""Attribution from the referer-parser database: its own test cases, run through the pipeline's
host extraction and the sessions SQL's ref_map join (both read from the pipeline's SQL files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

import analytics_platform
from analytics_platform.config import ConfigError, load_referrers

PKG = Path(analytics_platform.__file__).parent
CASES = Path(__file__).parent / "data" / "referer-tests.json"

# The database's categories as CONTRACT §4's mediums (written here, not imported, to check the
# loader's own mapping).
MEDIUM = {"search": "organic", "social": "social", "email": "email", "chatbot": "referral",
          "paid": "referral", "unknown": "referral"}

# Measured on commit b70173e's 118 cases: 115 agree on (source, medium), 117 on the medium.
# The 3 that differ are host+path rules the pipeline cannot see, events keeping the referrer's
# host only: google.fr/imgres is "Google Images" in the database and google here, bing.com/
# images/search "Bing Images" and bing (organic in both), and orange.fr/webmail "Orange
# Webmail" (email), where the host webmail1m.orange.fr alone is a referral.
AGREEMENT_FLOOR = 115 / 118
MEDIUM_AGREEMENT_FLOOR = 117 / 118


def _sql_between_parens(text: str, start: int) -> str:
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise AssertionError("unbalanced SQL")


def pipeline_sql() -> tuple[str, str]:
    """(the referrer-host regex of the events SQL, the ref_map CTE of the sessions SQL)."""
    # the events step cleans every page and source text in one expression (clean_text.sql)
    clean = (PKG / "defs/events/sql/clean_text.sql").read_text()
    host = re.search(r"WHEN 'referrer' THEN regexp_replace\(lower\(regexp_extract\(v,"
                     r"\s*'((?:[^']|'')*)',\s*1\)\), '\^www\\\.', ''\)", clean)
    assert host, "clean_text.sql no longer extracts the referrer's host as this test expects"
    sessions = (PKG / "defs/sessions/sql/sessions.sql").read_text()
    at = sessions.find("ref_map AS (")
    assert at >= 0, "sessions.sql has no ref_map CTE"
    return host.group(1), _sql_between_parens(sessions, sessions.index("(", at))


def attribute_hosts(referrers: list[str], extra: Path | None = None
                    ) -> list[tuple[str, str, str]]:
    """(referrer_host, source, medium) the pipeline gives a landing page with each referrer."""
    host_re, ref_map = pipeline_sql()
    con = duckdb.connect()
    con.register("referrers", load_referrers(extra))
    con.execute("CREATE TABLE refs AS SELECT * FROM (SELECT unnest(?) AS referrer, "
                "generate_subscripts(?, 1) AS n)", [referrers, referrers])
    rows = con.execute(f"""
        WITH touches AS (
            SELECT n, nullif(regexp_replace(lower(regexp_extract(referrer, '{host_re}', 1)),
                                            '^www\\.', ''), '') AS referrer_host
            FROM refs),
        ref_map AS ({ref_map})
        SELECT t.referrer_host, coalesce(m.source, t.referrer_host),
               coalesce(m.medium, 'referral')
        FROM touches t LEFT JOIN ref_map m ON m.host = t.referrer_host ORDER BY n""").fetchall()
    return [tuple(r) for r in rows]


def attribute(referrers: list[str], extra: Path | None = None) -> list[tuple[str, str]]:
    """(source, medium) the pipeline gives a landing page with each referrer (CONTRACT §4,
    step 2)."""
    return [(s, m) for _, s, m in attribute_hosts(referrers, extra)]


def expected(case: dict, host: str) -> tuple[str, str]:
    """What the database says: its source (lowercase, without "!") and medium; for a referrer
    it does not know, CONTRACT §4's fallback (the host, a referral)."""
    if not case["known"]:
        return host, "referral"
    return " ".join(case["source"].replace("!", "").lower().split()), MEDIUM[case["medium"]]


def test_agreement_with_the_databases_own_cases() -> None:
    cases = json.loads(CASES.read_text())
    assert len(cases) >= 100
    got = attribute_hosts([c["uri"] for c in cases])
    same = same_medium = 0
    differ = []
    for case, (host, source, medium) in zip(cases, got, strict=True):
        want = expected(case, host)
        same += (source, medium) == want
        same_medium += medium == want[1]
        if (source, medium) != want:
            differ.append((case["spec"], case["uri"][:60], want, (source, medium)))
    print(f"referer-parser test cases: {same}/{len(cases)} agree, "
          f"{same_medium}/{len(cases)} on the medium", *differ, sep="\n  ")
    assert same / len(cases) >= AGREEMENT_FLOOR, differ
    assert same_medium / len(cases) >= MEDIUM_AGREEMENT_FLOOR, differ


def test_gmail_and_google_docs_are_not_google_search() -> None:
    got = attribute([
        "https://mail.google.com/mail/u/0/",
        "android-app://com.google.android.gm",
        "https://docs.google.com/document/d/abc/edit",
        "https://www.google.com/",
        "https://www.google.co.uk/",
        "android-app://com.google.android.googlequicksearchbox/https/www.google.com",
        "https://t.co/AbC", "https://x.com/someone", "https://search.yahoo.com/",
        "https://news.ycombinator.com/item?id=1", "https://outlook.live.com/mail/0/",
        "https://someblog.dev/post",
    ])
    assert got == [
        ("gmail", "email"), ("gmail", "email"), ("google", "referral"),
        ("google", "organic"), ("google", "organic"), ("google", "organic"),
        ("twitter", "social"), ("twitter", "social"), ("yahoo", "organic"),
        ("hacker news", "social"), ("outlook.com", "email"),
        ("someblog.dev", "referral"),
    ]


def test_users_file_is_on_top(tmp_path: Path) -> None:
    extra = tmp_path / "mine.csv"
    extra.write_text("# mine\npattern,source,medium\nmail.google.com,newsletter,email\n"
                     "google.*,google-any,organic\npartner.example,partner,referral\n")
    got = attribute(["https://mail.google.com/", "https://www.google.de/",
                     "https://shop.partner.example/x", "https://www.bing.com/"], extra)
    assert got == [("newsletter", "email"), ("google-any", "organic"),
                   ("partner", "referral"), ("bing", "organic")]


def test_bad_users_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("host,source,medium\nx.com,x,social\n")
    with pytest.raises(ConfigError, match="header"):
        load_referrers(bad)
    bad.write_text("pattern,source,medium\nx.com,,social\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_referrers(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_referrers(tmp_path / "missing.csv")


def test_table_shape() -> None:
    t = load_referrers()
    assert t.column_names == ["pattern", "regex", "source", "medium", "priority"]
    assert set(t.column("medium").to_pylist()) == {"organic", "social", "email", "referral"}
    assert t.num_rows > 1500  # the database's ~1,700 hosts, not a hand-written table
    patterns = t.column("pattern").to_pylist()
    assert not [p for p in patterns if p.startswith("www.") or "/" in p]


@pytest.mark.parametrize(("referrer_host", "page_host", "own"), [
    ("brightpath.example", "www.brightpath.example", True),
    ("brightpath.example", "BrightPath.example", True),
    ("blog.brightpath.example", "www.brightpath.example", True),   # a subdomain of the site
    ("notbrightpath.example", "brightpath.example", False),        # not a label boundary
    ("brightpath.example", "shop.brightpath.example", False),      # the parent is another site
    ("ab.example", "a_.example", False),   # "_" is a host's character, not a wildcard
    ("news.ycombinator.com", "www.brightpath.example", False),
    ("brightpath.example", None, False),
])
def test_self_referral_is_the_site_or_a_subdomain_of_it(referrer_host: str, page_host: str | None,
                                                        own: bool) -> None:
    """CONTRACT §4's self-referral, the one macro the sessions mart and the traffic alert's top
    source both attribute with."""
    from analytics_platform import duck

    with duck.connect() as con:
        got = con.execute("SELECT self_referral(?, ?)", [referrer_host, page_host]).fetchone()[0]
    assert got is own
