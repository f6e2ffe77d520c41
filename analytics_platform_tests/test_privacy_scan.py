"""The privacy manifest (docs/PRIVACY.md, "Every field stored") holds for a real run: simulated
traffic, hostile events sent through the real collector (an address in every text field, query
strings, the client's address in a trusted proxy header), an older record the pipeline must
quarantine; then the pipeline. Every raw object, every Parquet file of the lake and every table
of the warehouse is scanned for e-mail and IP addresses, query strings beyond UTM tags, raw user
agents, and any field or identifier the manifest does not list. The detectors below are written
for this test, independently of the scrub code they check."""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pytest

from analytics_platform.backfill import run_backfill
from analytics_platform.lake import open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.simulate import model as m
from analytics_platform.storage import STORE
from analytics_platform_tests.test_collector import Collector

ROOT = Path(__file__).resolve().parent.parent
CLIENT_IP = "198.51.100.23"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SECRETS = ["jamie.doe@example.org", "josé@exämple.com", "10.0.0.1", "2001:db8::7", "SECRET",
           "token"]

# --- the manifest ---------------------------------------------------------------------------


def manifest() -> tuple[dict[str, set[str]], set[str]]:
    """({place: its fields}, identifiers) from docs/PRIVACY.md's "Every field stored"."""
    text = (ROOT / "docs" / "PRIVACY.md").read_text()
    section = text[text.index("## Every field stored"):]
    section = section[:section.index("\n## ", 1)]
    places: dict[str, set[str]] = {}
    identifiers: set[str] = set()
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if not row.startswith("| `") or len(cells) < 2:
            continue
        names = re.findall(r"`([^`]+)`", cells[1])
        if cells[0].startswith("`identifiers`"):
            identifiers |= set(names)
        else:
            places[re.findall(r"`([^`]+)`", cells[0])[0]] = set(names)
    return places, identifiers


# --- detectors ------------------------------------------------------------------------------

EMAIL = re.compile(r"[^\s@()<>\"',;:/\\\[\]]+(?:@|%40|＠|&#64;)[^\s@()<>\"',;:/\\\[\]]+\.\w{2,}")
IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])")
IPV6_TOKEN = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%\w+)?")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
HEX16 = re.compile(r"[0-9a-f]{16}")
UTM = {"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"}


def addresses(text: str, *, user_agent: bool = False) -> list[str]:
    """E-mail and IP addresses in ``text`` (a user agent's version numbers are no IPv4)."""
    found = EMAIL.findall(text)
    if not user_agent:
        for cand in IPV4.findall(text):
            try:
                ipaddress.ip_address(cand)
                found.append(cand)
            except ValueError:
                pass
        for cand in IPV6_TOKEN.findall(text):
            core = cand.strip(".:").partition("%")[0]
            if core.count(":") >= 2 and any(c in "0123456789abcdefABCDEF" for c in core):
                try:
                    ipaddress.ip_address(core if "::" in core or core.count(":") == 7
                                         else "-")
                    found.append(cand)
                except ValueError:
                    pass
    return found


def queries(value: str) -> list[str]:
    """Query parameters other than UTM tags (and fragments) in a URL or path."""
    if "#" in value:
        return [value]
    _, q, query = value.partition("?")
    return [p for p in query.split("&") if p.partition("=")[0].lower() not in UTM] if q else []


# --- the run ----------------------------------------------------------------------------------


def hostile(**over: Any) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    ev = {"event_type": "page_view", "event_id": str(uuid.uuid4()),
          "page_path": "/signup?token=SECRET\n&x&utm_source=news",
          "page_host": "www.brightpath.example",
          "page_title": "Hi jamie.doe@example.org from 10.0.0.1.",
          "referrer": "https://user:pw@mail.example.com/inbox?u=josé@exämple.com#m",
          "utm_campaign": "2001:db8::7", "utm_content": "jamie.doe%40example.org",
          "event_ts": now, "props": {"note": "ip 10.0.0.1,2001:db8::7", "who": "josé@exämple.com"}}
    ev.update(over)
    return ev


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("scan") / "data"
    now = datetime.now(UTC)
    today = now.date()
    write_traffic(generate(SimConfig(days=1, visitors_per_day=150, start=today, seed=18,
                                     until=now)), open_raw_lake(data / "raw"), progress=False)
    c = Collector(data, 0.2, {"ANALYTICS_CLIENT_IP_HEADER": "x-forwarded-for",
                              "ANALYTICS_TRUSTED_PROXIES": "127.0.0.0/8"})
    try:
        sid, vid = str(uuid.uuid4()), str(uuid.uuid4())
        batches = [[hostile(), hostile(event_type="cta_click")],  # no consent: visitor_hash
                   [hostile(session_id=sid, visitor_id=vid)],  # consent: the tracker's ids
                   # refused: a props key that quotes an address in the reason, one that is
                   # over 64 characters once scrubbed ("(ip)" is longer than "::1")
                   [hostile(), hostile(props={"jamie.doe@example.org": [1]}),
                    hostile(props={"k" * 60 + " ::1": 1})]]
        answers = []
        for b in batches:
            r = httpx.post(f"{c.url}/v1/events", content=json.dumps(b), timeout=10,
                           headers={"content-type": "application/json", "user-agent": UA,
                                    "x-forwarded-for": f"{CLIENT_IP}, 127.0.0.1"})
            assert r.status_code == 202, r.text
            answers.append(r.text)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(
                r.get("page_path", "").startswith("/signup") for r in raw_records(data)) < 4:
            time.sleep(0.2)
        metrics = httpx.get(f"{c.url}/metrics", timeout=10).text
    finally:
        c.stop()
    # a record stored before the edge scrubbed (and breaking the contract): quarantined
    old = {"event_type": "page_view", "page_path": "/u/jamie.doe@example.org?t=SECRET",
           "session_id": str(uuid.uuid4()), "event_ts": "2026-01-01T00:00:00Z",
           "ingest_ts": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "user_agent": UA,
           "schema_version": 1}
    # and records the pipeline refuses whose reason or text would hold an address: a line that
    # is not UTF-8 (Latin-1), a props key in the reason, JSON escapes that hide a query string
    # (\u003f is ?) or join a control character's escape to an address (\u0001 and 10.0.0.1)
    bad = [b'{"event_type":"page_view","page_title":"caf\xe9 jamie.doe@example.org 10.0.0.1 '
           b'jos\xe9@ex\xe4mple.com","page_path":"/u?token=SECRET"}',
           json.dumps({**old, "event_id": str(uuid.uuid4()), "page_path": "/p",
                       "props": {"jamie.doe@example.org": [1]}}).encode(),
           b'{"event_type":"nope","page_path":"/a\\u003ftoken=SECRET","page_title":'
           b'"\\u000110.0.0.1 \\njamie.doe@example.org \\u0040example.org"}']
    lake = open_raw_lake(data / "raw")
    for oid, lines in (("before-the-edge", [json.dumps(old).encode()]), ("refused", bad)):
        lake.write_records(now - timedelta(minutes=5),
                           gzip.compress(b"".join(x + b"\n" for x in lines)), object_id=oid)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            run_backfill(today - timedelta(days=1), today, instance=instance,
                         log=lambda _: None)
    return {"data": data, "log": c.log, "answers": answers, "metrics": metrics}


# Objects the test writes itself, as stored before the edge scrubbed: what the pipeline's
# quarantine makes of them is scanned with the warehouse and the lake.
PRE_EDGE = ("before-the-edge", "refused")


def raw_records(data: Path) -> list[dict[str, Any]]:
    """The records the collector and the simulator wrote."""
    return [json.loads(line) for p in sorted((data / "raw").rglob("*.gz"))
            if not any(oid in p.name for oid in PRE_EDGE)
            for line in gzip.decompress(p.read_bytes()).splitlines() if line.strip()]


def test_the_raw_lake_holds_only_listed_fields_and_nothing_it_may_not(run: dict[str, Any]
                                                                      ) -> None:
    places, _ = manifest()
    records = raw_records(run["data"])
    mine = [r for r in records if r.get("page_path", "").startswith("/signup")]
    assert len(mine) == 4  # the collector's
    problems = []
    for r in records:
        extra = set(r) - places["raw"]
        if extra:
            problems.append(("field not in the manifest", extra))
        for k, v in r.items():
            text = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
            if k == "user_agent":
                problems += [(k, a) for a in addresses(text, user_agent=True)]
            else:
                problems += [(k, a) for a in addresses(text)]
            if k in ("page_path", "referrer"):
                problems += [(k, q) for q in queries(v)]
        if r.get("consent"):
            assert "visitor_hash" not in r and r["session_id"] and r["visitor_id"]
        elif "consent" in r:
            assert HEX16.fullmatch(r["visitor_hash"]) and r["session_id"] is None
            assert "visitor_id" not in r
    assert problems == []
    assert mine[0]["page_path"] == "/signup?utm_source=news"


def test_no_trace_of_the_client_address_anywhere(run: dict[str, Any]) -> None:
    ip = ipaddress.ip_address(CLIENT_IP)
    forms = [CLIENT_IP.encode(), ip.packed, ip.packed.hex().encode(), str(int(ip)).encode()]
    hits = [str(p) for p in run["data"].rglob("*") if p.is_file() and "salts" not in p.parts
            for blob in [gzip.decompress(p.read_bytes()) if p.suffix == ".gz"
                         else p.read_bytes()] if any(f in blob for f in forms)]
    assert hits == []
    assert CLIENT_IP not in run["log"].read_text()


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(name, qualified name) of every table and view, in any schema of the warehouse. The
    rows a view reads from the warehouse's own store (``_store.<table>_rows``, storage.py) are
    held to that table's manifest row: they are the same rows."""
    return [(t.removesuffix("_rows") if s == STORE else t, f'"{s}"."{t}"')
            for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 2, 1"
            ).fetchall()]


def _scan(con: duckdb.DuckDBPyConnection, source: str, columns: list[str]) -> list[Any]:
    """Addresses, query strings, raw user agents and unlisted identifiers in ``source``."""
    problems: list[Any] = []
    for col in columns:
        values = [v for (v,) in con.execute(
            f'SELECT DISTINCT CAST("{col}" AS VARCHAR) FROM {source} WHERE "{col}" IS NOT NULL'
        ).fetchall()]
        for v in values:
            problems += [(source, col, a) for a in addresses(v)]
            if "Mozilla/" in v or any(ua in v for ua in m.BOT_USER_AGENTS if len(ua) > 20):
                problems.append((source, col, "a raw user agent", v[:80]))
            if col in ("page_path", "entry_page", "exit_page", "path", "referrer_host") and (
                    "?" in v or "#" in v):
                problems.append((source, col, "a query string", v))
            if any(s in v for s in ("SECRET", "token=")):
                problems.append((source, col, "the secret query", v))
    return problems


def test_every_warehouse_table_holds_only_listed_columns_and_nothing_it_may_not(
        run: dict[str, Any]) -> None:
    places, identifiers = manifest()
    con = duckdb.connect(str(run["data"] / "warehouse.duckdb"), read_only=True)
    problems = []
    tables = _tables(con)
    assert {"events", "sessions", "quarantine", "kpis_daily"} <= {t for t, _ in tables}
    for t, qualified in tables:
        cols = [r[0] for r in con.execute(f"DESCRIBE {qualified}").fetchall()]
        if t not in places:
            problems.append((t, "table not in the manifest"))
            continue
        problems += [(t, c, "column not in the manifest") for c in cols if c not in places[t]]
        problems += _scan(con, qualified, cols)
        for c in cols:  # identifiers: only those the manifest names
            if c in identifiers:
                continue
            sample = [v for (v,) in con.execute(
                f'SELECT CAST("{c}" AS VARCHAR) FROM {qualified} WHERE "{c}" IS NOT NULL '
                "USING SAMPLE 200 ROWS").fetchall()]
            if any(UUID.search(v) or HEX16.fullmatch(v) for v in sample):
                problems.append((t, c, "an identifier the manifest does not list"))
    assert problems == []
    # the hostile events arrived, scrubbed
    paths = {r[0] for r in con.execute("SELECT page_path FROM events").fetchall()}
    assert "/signup" in paths
    titles = {r[0] for r in con.execute("SELECT page_title FROM events").fetchall()}
    assert "Hi (email) from (ip)." in titles
    con.close()


def test_every_parquet_file_of_the_lake(run: dict[str, Any]) -> None:
    places, _ = manifest()
    con = duckdb.connect()
    files = sorted((run["data"] / "lake").rglob("*.parquet"))
    assert files
    problems = []
    for f in files:
        table = f.relative_to(run["data"] / "lake").parts[0]
        source = f"read_parquet('{f}', hive_partitioning = false)"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        listed = places.get(table, set()) | places.get(f"lake/{table}", set())
        problems += [(table, c, "column not in the manifest") for c in cols if c not in listed]
        problems += _scan(con, source, cols)
    assert problems == []


def test_what_the_collector_answers_counts_and_logs_holds_no_address(run: dict[str, Any]
                                                                    ) -> None:
    """A refused props key is quoted in the answer's reason and in /metrics' counts by reason:
    scrubbed; the refusals are there (the test can fail)."""
    refused = json.loads(run["answers"][2])
    assert refused["accepted"] == 1 and refused["rejected"] == 2
    assert [e["reason"] for e in refused["errors"]] == ["props_bad_value:props.(email)",
                                                        "props_bad_key:props"]
    assert json.loads(run["metrics"])["rejected"] == {"props_bad_value:props.(email)": 1,
                                                      "props_bad_key:props": 1}
    # (the log's first line names the collector's own address: "Collector on http://127.0.0.1:…")
    log = run["log"].read_text().replace("http://127.0.0.1:", "http://localhost:")
    texts = {"answers": "\n".join(run["answers"]), "metrics": run["metrics"], "log": log}
    assert [(k, a) for k, t in texts.items() for a in addresses(t)] == []


def test_the_quarantine_keeps_refused_records_readable_and_scrubbed(run: dict[str, Any]
                                                                    ) -> None:
    con = duckdb.connect(str(run["data"] / "warehouse.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT reason, raw_text FROM quarantine "
                            "WHERE raw_key LIKE '%refused%'").fetchall())
    con.close()
    assert sorted(rows) == ["invalid_json:utf8", "props_bad_value:props.(email)",
                            "unknown_event_type:event_type"]
    # not UTF-8: decoded, each bad byte as U+FFFD, the addresses (one spelled with a lost
    # letter) replaced, the query cut
    assert rows["invalid_json:utf8"] == (
        '{"event_type":"page_view","page_title":"caf\ufffd (email) (ip) (email)",'
        '"page_path":"/u"}')
    assert rows["unknown_event_type:event_type"] == (
        '{"event_type":"nope","page_path":"/a","page_title":" (ip)  (email) (email)"}')
