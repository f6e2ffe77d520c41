"""The pipeline's DuckDB connections: in memory, UTC, with the shared macros.

Never the warehouse file (see storage.py for why).
"""

import duckdb

from analytics_platform.contract import MAX_PROPS_KEY_CHARS
from analytics_platform.ingest.privacy import _FORMAT, _MARKS
from analytics_platform.settings import data_dir, duckdb_memory_limit

# The scrub macro (CONTRACT §3.5): e-mail and IP addresses never reach a table. The edge scrubs
# every record before it is stored (ingest/privacy.py, the stronger of the two: it decodes, and
# checks IPv6 candidates with the ipaddress module); this macro is the warehouse's own guarantee
# for records stored before that, and whatever it would replace the edge has replaced already
# (property-tested in test_privacy_edge.py). RE2 has no look-around, so a boundary is a character
# the match consumes; two addresses sharing one separator ("1.2.3.4,5.6.7.8") are caught by a
# second pass, which is enough: an address skipped by the first pass has replaced neighbours.
_FORMAT_RE2 = "".join(f"\\x{{{ord(c):x}}}" if c != "-" else "-" for c in _FORMAT)
_MARKS_RE2 = "".join(f"\\x{{{ord(c):x}}}" if c != "-" else "-" for c in _MARKS)
_AT = r"(?:@|\x{ff20}|\x{fe6b}|%(?:25){0,2}40|&#0*64;|&#[xX]0*40;|&commat;)"
# The user part may be empty: what stands before the @ may be no part of it ("q"@x.org), as at
# the edge (privacy.py's need_local). U+FFFD stands for a character lost in decoding (a line that
# is not UTF-8, shown in the quarantine), which may have been a letter of the address.
_EMAIL = (rf"[\pL\pM\pN._%+\-\x{{fffd}}]*{_AT}[\pL\pN{_MARKS_RE2}\-\x{{fffd}}]+"
          rf"(?:\.[\pL\pN{_MARKS_RE2}\-\x{{fffd}}]+)*\.(?:\pL{{2,}}|xn--[0-9a-z\-]+)")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
_IPV4 = (rf"(^|[^0-9.]|^\.|[^0-9]\.)(?:{_OCTET}\.){{3}}{_OCTET}($|[^0-9.]|\.$|\.[^0-9])")
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = (
    r"(^|[^0-9A-Za-z_:.%])(?:"
    rf"::[fF]{{4}}:(?:{_OCTET}\.){{3}}{_OCTET}"  # IPv4-mapped
    rf"|{_H}(?::{_H}){{3,7}}"  # four or more groups (not "std::vector", not "10:30")
    rf"|{_H}(?::{_H})*::(?:{_H}(?::{_H})*)?"  # "::" with groups before it
    rf"|::{_H}(?::{_H}){{0,6}}"  # "::1"
    r")(?:%[0-9A-Za-z_~\-]+)?"  # a zone id
    r"($|[^0-9A-Za-z_:.%]|\.$|\.[^0-9A-Za-z_:.%])"
)
# An IP address whose dots or colons are percent-encoded (up to three times, as the edge
# decodes) or character references: "1%2E2%2E3%2E4", "2001%3Adb8%3A%3A1", "1&#46;2&#46;3&#46;4", in
# a record another tool wrote to the raw lake (the edge decodes and finds them). Decoding in the
# macro was measured and not taken (docs/PRIVACY.md): these passes read the separators in place.
# What stands around such an address is read as the edge reads it once decoded, or the macro
# would replace what the edge keeps, and the edge's output must be the macro's fixed point
# (test_privacy_edge.py). Before it: no letter, digit, ".", "%", "&", "#" or ";" (each may be
# part of an escape that decodes to a digit or a dot: "%A1" is one character, "&#49;" and
# "&sup1" are "1"), but an encoded space, "/" or "="; after it: no "%" or "&" but an encoded
# space, "/", "=", "?", "#" (and ":" after IPv4), no "&#", "&p", "&%" or "&amp;" (after IPv6
# no "&" and a letter) ("1%2E2%2E3%2E4%2E5" is a version, "…4&#53;&#54;" is "…456", and so are
# "…4&%2346;5" and "…4&amp;#46;5", which the edge decodes to a character reference: found in
# the diff's review; RE2 has no look-ahead, so "&amp;" is spelt out letter by letter). On texts
# of encoded addresses among escapes, the macro changed 234 of 20,000 as the edge stored them, most
# where an edge pass left an address beside its replacement (privacy.py now runs its passes again),
# the rest after ":" (IPv6) or behind a hex letter, "x" or "&sup"; now 0 of 220,000. What these
# boundaries miss ("ip1%2E2%2E3%2E4") the edge finds: records the collector or the Lambda stored
# have been through it. Cost, measured with bench/scrub.py against HEAD's macro: 0.104 -> 0.120 s
# per million values (three runs, +0.011 to +0.016), and 24 -> 28 ms of CPU to bind a statement
# holding one scrub.
_ENC_DOT = r"(?:%(?:25){0,2}2[eE]|&#0*46;|&#[xX]0*2[eE];|&period;)"
_DOT = rf"(?:\.|{_ENC_DOT})"
_COLON = r"(?::|%(?:25){0,2}3[aA]|&#0*58;|&#[xX]0*3[aA];|&colon;)"
_ENC_SEP = r"%(?:25){0,2}(?:20|2[fF]|3[dD])"  # " ", "/", "=", encoded
_ENC_END = r"%(?:25){0,2}(?:2[03fF]|3[dDfF])"  # and "?", "#"
_IPV4_ENC = (rf"(^|[^0-9A-Za-z.%&#;]|{_ENC_SEP})(?:{_OCTET}{_DOT}){{3}}{_OCTET}"
             rf"($|[^0-9.%&]|\.$|\.[^0-9.%&]|{_ENC_DOT}$|{_ENC_DOT}[^0-9.%&]|&$"
             r"|&[^#p%a]|&a$|&a[^m]|&am$|&am[^p]|&amp$|&amp[^;]"
             rf"|{_ENC_END}|%(?:25){{0,2}}3[aA])")  # ":" too, after an IPv4 address
_IPV6_ENC = (
    rf"(^|[^0-9A-Za-z_:.%&#;]|{_ENC_SEP})(?:"
    rf"{_COLON}{_COLON}[fF]{{4}}{_COLON}(?:{_OCTET}{_DOT}){{3}}{_OCTET}"
    rf"|{_H}(?:{_COLON}{_H}){{3,7}}"
    rf"|{_H}(?:{_COLON}{_H})*{_COLON}{_COLON}(?:{_H}(?:{_COLON}{_H})*)?"
    rf"|{_COLON}{_COLON}{_H}(?:{_COLON}{_H}){{0,6}}"
    rf")($|[^0-9A-Za-z_:.%&]|\.$|\.[^0-9A-Za-z_:.%&]|&$|&[^#A-Za-z%]|{_ENC_END})"
)
# Almost no value holds an address, and every address holds a "." (IPv4, an e-mail's domain) or
# a ":" (IPv6), a "%" or a "&" (encoded, above), or is written with characters beyond ASCII (＠, a
# zero-width space): five string scans, far cheaper than a regex call, pass the values that can.
# A regex then finds what the passes could replace (an at sign in any form, a digit-dot-digit, a
# colon between hex digits or two colons, an encoded dot or colon, a format character), and only
# those values run the passes they need: a version number runs the IPv4 passes only, a value with
# a "%" or a "&" the encoded ones too. Measured with bench/scrub.py (a million values, a tenth of
# them slow-path look-alikes such as "v1.2.3" or "10:30", 0.5 % with an address), see
# docs/BENCHMARKS.md. Control characters (Cc) are no part of an address and separate it from
# its neighbours as any punctuation does: they are left as they are (the edge removes them).
_MAYBE = (r"[@\x{ff20}\x{fe6b}]|%(?:25)*40|&#|&commat;|[0-9]\.[0-9]|[0-9A-Fa-f]:[0-9A-Fa-f]|::"
          rf"|%(?:25)*(?:2[eE]|3[aA])|&period;|&colon;|[{_FORMAT_RE2}]")
_SCAN = "(contains({x}, '.') OR contains({x}, ':') OR contains({x}, '%') OR contains({x}, '&') " \
        "OR strlen({x}) <> length({x}))"


def _sql(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def scrub_maybe_sql(x: str) -> str:
    """SQL: false or NULL only when ``scrub(x)`` is ``x`` itself: the scans and the prefilter
    (_MAYBE) of scrub's first two branches, without its passes, whose expansion (a dozen
    regular expressions) costs ~40 ms to plan and compile in every statement that holds it
    (test_fast_paths.py holds the two together)."""
    return f"({_SCAN.format(x=x)} AND regexp_matches({x}, {_sql(_MAYBE)}))"


# An e-mail address with format characters inside it (ja\u200bmie@…): they join its letters, as
# at the edge (privacy.py's _JOIN).
_EMAIL_JOINED = (rf"[\pL\pM\pN._%+\-\x{{fffd}}{_FORMAT_RE2}]*{_AT}"
                 rf"[\pL\pN{_MARKS_RE2}\-\x{{fffd}}{_FORMAT_RE2}]+"
                 rf"(?:\.[\pL\pN{_MARKS_RE2}\-\x{{fffd}}{_FORMAT_RE2}]+)*\.(?:\pL{{2,}}|xn--[0-9a-z\-]+)")


def _passes(x: str, *, visible: bool, emails: bool, ipv6: bool, encoded: bool = False) -> str:
    """The replacements a value needs, innermost first (``encoded``: a value with a "%" or a
    "&", which may hold an encoded IP address)."""
    if visible:
        # Format characters join the letters of an e-mail address, and separate an IP address
        # from what is around it (G\u200b::1), as at the edge (privacy.py): so e-mail
        # addresses first, then a run beside a character an IP address is made of is a space,
        # any other run goes.
        if emails:
            x = f"regexp_replace({x}, {_sql(_EMAIL_JOINED)}, '(email)', 'g')"
        x = (f"regexp_replace(regexp_replace({x}, '([0-9A-Fa-f.:])[{_FORMAT_RE2}]+|"
             rf"[{_FORMAT_RE2}]+([0-9A-Fa-f.:])', '\1 \2', 'g'), '[{_FORMAT_RE2}]+', '', 'g')")
    if emails:
        x = f"regexp_replace({x}, {_sql(_EMAIL)}, '(email)', 'g')"
    # each twice: two addresses sharing one separator ("1.2.3.4,5.6.7.8", see above)
    for pattern in (((_IPV6, _IPV6) if ipv6 else ()) + ((_IPV6_ENC,) * 2 if encoded else ())
                    + (_IPV4, _IPV4) + ((_IPV4_ENC,) * 2 if encoded else ())):
        x = f"regexp_replace({x}, {_sql(pattern)}, '\\1(ip)\\2', 'g')"
    return x


_SCRUB = f"""
CREATE OR REPLACE MACRO scrub(x) AS CASE
    WHEN NOT {_SCAN.format(x="x")} THEN x
    WHEN NOT regexp_matches(x, {_sql(_MAYBE)}) THEN x
    WHEN strlen(x) <> length(x)
        THEN {_passes("x", visible=True, emails=True, ipv6=True, encoded=True)}
    WHEN contains(x, '@') OR contains(x, '%') OR contains(x, '&')
        THEN {_passes("x", visible=False, emails=True, ipv6=True, encoded=True)}
    WHEN contains(x, ':') THEN {_passes("x", visible=False, emails=False, ipv6=True)}
    ELSE {_passes("x", visible=False, emails=False, ipv6=False)} END;
"""

# props (a JSON object as text) scrubbed key by key and value by value, decoded (CONTRACT §3.5):
# the JSON text holds escapes ("\njamie@example.com", "\u00011.2.3.4"), next to which the
# macro on the text would take the escape's letter or digits as part of an address, or leave
# "\(email)", which is no JSON. So a text that holds an escape, or an address, is taken apart
# and written again: keys and strings scrubbed, a key cut to 64 characters (CONTRACT §1's
# limit; the edge refuses such an event, a record stored before it is kept). Most props hold
# neither, and the text is kept as it is.
_UTF8 = ("[0-7][0-9A-F]|C[2-9A-F][89AB][0-9A-F]|D[0-9A-F][89AB][0-9A-F]"
         "|E0[AB][0-9A-F][89AB][0-9A-F]|E[1-9A-CEF](?:[89AB][0-9A-F]){2}|ED[89][0-9A-F][89AB][0-9A-F]"
         "|F0[9AB][0-9A-F](?:[89AB][0-9A-F]){2}|F[1-3](?:[89AB][0-9A-F]){3}"
         "|F48[0-9A-F](?:[89AB][0-9A-F]){2}")


def _props_rewritten(scrubbed: bool) -> str:
    """props (``p``, a JSON object as text) written again key by key, each key cut to
    CONTRACT §1's limit, with its keys and top-level strings scrubbed if ``scrubbed``."""
    def sc(x: str) -> str:
        return f"scrub({x})" if scrubbed else x
    return rf"""'{{' || array_to_string(list_transform(
        map_entries(CAST(CAST(p AS JSON) AS MAP(VARCHAR, JSON))),
        lambda e: to_json(left({sc("e.key")}, {MAX_PROPS_KEY_CHARS})) || ':' ||
             CASE WHEN json_type(e.value) = 'VARCHAR'
                  THEN to_json({sc("json_extract_string(e.value, '$')")})
                  ELSE CAST(e.value AS VARCHAR) END), ',') || '}}'"""


def props_strings_maybe_sql(p: str) -> str:
    """SQL: true when a key or string of ``p`` (props as JSON text without a backslash) matches
    scrub's prefilter (_MAYBE), i.e. when scrubbing its keys and strings could change one; numbers
    and the rest are left out. scrub_props's third branch and :func:`props_kept_sql` share it."""
    return (f"regexp_matches(array_to_string(regexp_extract_all({p}, '\"[^\"]*\"'), ' '), "
            f"{_sql(_MAYBE)})")


def props_kept_sql(p: str, pm: str) -> str:
    """SQL: true only when ``scrub_props(p)`` is ``p`` itself, for ``p`` JSON text (``json``
    fails on other text); ``pm`` is ``p`` cast to
    ``MAP(VARCHAR, JSON)`` (NULL unless a JSON object). That is scrub_props's third branch (no
    backslash, no key or string its prefilter passes) on a text already in the form that branch
    writes (``json(p) = p``: minified, as DuckDB writes it) with no quoted run longer than a key
    may be (the branch cuts keys). Measured on measure 1's hour (2026-12-06, events on its
    ~1M records): the chunk's 27k distinct props took the rewrite, 0.26-0.32 CPU-s per
    195k-record chunk; with this test first, 0.155 (test_fast_paths.py holds it to the macro)."""
    return (f"({pm} IS NOT NULL AND NOT contains({p}, '\\') AND json({p}) = {p} "
            f"AND NOT regexp_matches({p}, '\"[^\"]{{{MAX_PROPS_KEY_CHARS + 1},}}\"') "
            f"AND NOT {props_strings_maybe_sql(p)})")


# The third branch is the second's result when scrub would change no key and no string: scrub
# keeps every text its prefilter (_MAYBE) does not match, and without a backslash every key and
# string of the text is one of its quoted runs, so the prefilter run over those runs (with
# numbers and the rest left out) passes every props the rewriting could change. Web vitals'
# numbers ("cls":0.025) match the prefilter on the whole text: 26.5k of the 27k distinct props
# of a chunk of measure 1's hour (195k records) took the scrubbing rewrite, which ran a scrub per
# key and per value inside a lambda (1.06-1.5 CPU-s); the third branch takes them without a
# scrub (0.34), the same texts (test_fast_paths.py).
_SCRUB_PROPS = rf"""
CREATE OR REPLACE MACRO scrub_props(p) AS CASE
    WHEN p IS NULL OR NOT (contains(p, '\') OR regexp_matches(p, {_sql(_MAYBE)})) THEN p
    WHEN try_cast(try_cast(p AS JSON) AS MAP(VARCHAR, JSON)) IS NULL THEN scrub(p)
    WHEN NOT contains(p, '\') AND NOT {props_strings_maybe_sql("p")}
        THEN {_props_rewritten(scrubbed=False)}
    ELSE {_props_rewritten(scrubbed=True)} END;
-- Bytes that are not UTF-8 as text (the quarantine shows such a line): each byte that is no
-- part of a valid UTF-8 sequence becomes U+FFFD, the rest is decoded. On the hex digits, two
-- at a time: a valid sequence is kept, any other byte marked (g…h), then replaced.
CREATE OR REPLACE MACRO utf8_lossy(b) AS decode(unhex(regexp_replace(replace(
    regexp_replace(hex(b), '({_UTF8})|([0-9A-F]{{2}})', '\1g\2h', 'g'), 'gh', ''),
    'g[0-9A-F]{{2}}h', 'EFBFBD', 'g')));
"""

# The macros every pipeline statement may use.
MACROS = _SCRUB + _SCRUB_PROPS + r"""
-- A timestamp text as naive UTC: the instant's microseconds read as a TIMESTAMP, which is what
-- AT TIME ZONE 'UTC' gives, at 0.03 CPU-s for the three timestamps of 195k records against 0.08
-- (NULL, not year 9999, for "infinity", which the contract's rules refuse anyway).
CREATE OR REPLACE MACRO utc(x) AS make_timestamp(epoch_us(try_cast(x AS TIMESTAMPTZ)));
-- A page path as kept (CONTRACT §3.5): cut at the first "?" or "#", whatever follows it (a line
-- break included: "/signup?token=SECRET\n&x" is "/signup"), then scrubbed. The Realtime view
-- shows raw records through it too (the events step cuts, then scrubs with its other texts).
CREATE OR REPLACE MACRO path_only(p) AS regexp_replace(p, '(?s)[?#].*$', '');
CREATE OR REPLACE MACRO clean_path(p) AS scrub(path_only(p));
-- A referrer from the site itself (CONTRACT §4): the page's host without "www.", or a subdomain
-- of it (referrer_host has "www." cut already); such a session is direct. The sessions mart and
-- the traffic alert's top source both attribute with it.
CREATE OR REPLACE MACRO self_referral(referrer_host, page_host) AS coalesce(
    referrer_host = regexp_replace(lower(page_host), '^www\.', '')
    OR ends_with(referrer_host, '.' || regexp_replace(lower(page_host), '^www\.', '')), false);
-- Who a visitor is (CONTRACT §3.6): the consented visitor_id; without consent the day's
-- visitor_hash; a record from before issue 18 with neither is a visitor of its own session.
CREATE OR REPLACE MACRO visitor_of(visitor_id, visitor_hash, session_id) AS
    coalesce(visitor_id, visitor_hash, session_id);
-- The id of a session made from a visitor_hash (CONTRACT §4): the MD5 of the hash and the
-- session's first event_id, written as a UUID, so a rerun gives the same id.
CREATE OR REPLACE MACRO hash_session_id(visitor_hash, first_event_id) AS
    CAST(CAST(md5(visitor_hash || first_event_id) AS UUID) AS VARCHAR);
-- The dashboard and the marts count distinct visitors on this 64-bit key of a visitor (visitor_of
-- above: the visitor_id, or the day's visitor_hash), the first 8 bytes of
-- its MD5 (an integer hashes and compares far faster than 36 characters; MD5 is the same in every
-- DuckDB version, so partitions written years apart agree; a collision among 10M visitors has
-- odds of about 1 in 370,000).
CREATE OR REPLACE MACRO visitor_key(visitor_id) AS md5_number_upper(visitor_id);
-- The last raw hour of day d's session window (partitions.session_window, which a test holds this
-- to): d + 1 day + late_arrival_hours (CONTRACT §4).
CREATE OR REPLACE MACRO window_end(d, late_hours) AS
    CAST(d AS DATE) + INTERVAL 1 DAY + to_hours(CAST(late_hours AS BIGINT));
-- The one definition of a late event (CONTRACT §4): it arrived (raw_hour) after the window of
-- the day of its own ts, when that day's sessions were already final. The events and sessions
-- assets both count late events with it.
CREATE OR REPLACE MACRO is_late(ts, late_hours, raw_hour) AS
    raw_hour > window_end(CAST(ts AS DATE), late_hours);
"""


# What each connection to the database sets for itself: a cursor does not inherit it (it shows
# the machine's own time zone), while the macros are the database's.
_SESSION = "SET TimeZone = 'UTC'"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the pipeline's macros (never the warehouse file: see storage),
    bounded in memory (``ANALYTICS_DUCKDB_MEMORY``): beyond it, DuckDB spills to disk."""
    con = duckdb.connect(config={
        "memory_limit": duckdb_memory_limit(),
        "temp_directory": str(data_dir() / ".duckdb_tmp"),
        # Rows are ordered explicitly where order matters; not keeping insertion order lets
        # DuckDB stream large writes instead of buffering them.
        "preserve_insertion_order": False,
    })
    con.execute(_SESSION)
    con.execute(MACROS)
    return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new connection to ``con``'s database (one memory limit, the same macros), with the
    pipeline's session settings; its temp tables and views are its own."""
    cur = con.cursor()
    cur.execute(_SESSION)
    return cur


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """``con``'s memory limit in bytes (DuckDB shows it as, e.g., "953.6 MiB")."""
    shown = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, unit = shown.split()
    return int(float(number) * _UNITS[unit])
