"""An independent, deliberately plain implementation of CONTRACT §3–5, record by record in Python.

It shares nothing with the pipeline's SQL: it reads the raw objects itself, validates with the
contract's Python validator, recognises bots by the simulator's own list of bot user agents, and
attributes sessions with the labels the simulator intended for each traffic source. Tests
compare the warehouse with what this computes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from analytics_platform.contract import parse_timestamp, validate_raw_record
from analytics_platform.lake import hour_of_key
from analytics_platform.simulate import model as m

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(@|%40)[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
IPV4 = re.compile(r"(?<![0-9.])((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}"
                  r"(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?![0-9.])")


def scrub(text: str) -> str:
    return IPV4.sub("(ip)", EMAIL.sub("(email)", text))


@dataclass
class Oracle:
    bot_agents: set[str]
    # (referrer, utm_source) of a landing page → (source, medium, campaign) it must get
    attribution: dict[tuple[str | None, str | None], tuple[str, str, str]]
    quarantine: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id → event
    bots: int = 0

    @classmethod
    def for_simulation(cls, extra_bots: set[str] | None = None,
                       extra_attribution: dict | None = None) -> Oracle:
        attribution: dict[tuple[str | None, str | None], tuple[str, str, str]] = {}
        for s in m.SOURCES:
            # the simulator stores a referrer as the handler does: without its query (none of
            # theirs has UTM tags) or fragment
            ref = re.split(r"[?#]", s.referrer)[0] if s.referrer else None
            attribution[(ref, s.utm_source)] = (s.expect_source, s.expect_medium,
                                                s.expect_campaign)
        attribution.update(extra_attribution or {})
        return cls(set(m.BOT_USER_AGENTS) | {""} | (extra_bots or set()), attribution)

    # --- §3 cleaning -------------------------------------------------------------------------

    def read_lake(self, root: Path, first_hour: datetime | None = None,
                  last_hour: datetime | None = None) -> None:
        """Every object of the lake, or of the raw hours ``first_hour``…``last_hour``."""
        for path in sorted(root.rglob("*.gz")):
            key = path.relative_to(root).as_posix()
            hour = hour_of_key(key)
            if (first_hour and hour < first_hour) or (last_hour and hour > last_hour):
                continue
            text, damaged = readable(path.read_bytes())
            if damaged:  # what decompressed is read; the rest is one quarantined row
                self.quarantine.append((key, "corrupt_object"))
            for pos, line in enumerate(text.split(b"\n")):
                if not line.strip():
                    continue
                for sub, record in self._records(line):
                    self._take(key, pos * 1000 + sub, record)

    def _records(self, line: bytes) -> list[tuple[int, Any]]:
        try:
            return [(0, json.loads(line.decode("utf-8")))]
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return [(0, _Bad("invalid_json:utf8"))]
        pieces = _split_glued(text.rstrip("\n"))
        if len(pieces) == 1:
            return [(0, _Bad("invalid_json"))]
        out = []
        for i, piece in enumerate(pieces, 1):
            try:
                out.append((i, json.loads(piece)))
            except json.JSONDecodeError:
                out.append((i, _Bad("invalid_json")))
        return out

    def _take(self, key: str, pos: int, record: Any) -> None:
        if isinstance(record, _Bad):
            self.quarantine.append((key, record.reason))
            return
        problems = validate_raw_record(record)
        if problems:
            self.quarantine.append((key, problems[0].code))
            return
        if record.get("user_agent", "") in self.bot_agents:
            self.bots += 1
            return
        ev = parse_timestamp(record["event_ts"])
        ingest = parse_timestamp(record["ingest_ts"])
        sent = parse_timestamp(record["sent_ts"]) if "sent_ts" in record else None
        ts = ingest - (sent - ev) if sent is not None and sent >= ev else min(ev, ingest)
        order = (ingest, ev, key, pos)
        current = self.events.get(record["event_id"])
        if current is not None and current["_order"] <= order:
            return
        props = record.get("props") or {}
        self.events[record["event_id"]] = {
            "_order": order,
            "event_id": record["event_id"],
            "event_type": record["event_type"],
            "ts": ts,
            "session_id": record.get("session_id"),
            "visitor_id": record.get("visitor_id"),
            "visitor_hash": record.get("visitor_hash"),
            "page_path": scrub(re.split(r"[?#]", record["page_path"])[0]),
            "page_host": record.get("page_host"),
            "referrer": record.get("referrer"),
            "utm_source": record.get("utm_source"),
            "utm_medium": record.get("utm_medium"),
            "utm_campaign": record.get("utm_campaign"),
            "props": props,
            "user_agent": record.get("user_agent"),
            "screen_width": record.get("screen_width"),
            "country": record.get("country"),
            "country_source": record.get("country_source"),
        }

    # --- §4 sessions -------------------------------------------------------------------------

    def session_of(self) -> dict[str, str]:
        """event_id → its session (CONTRACT §4): the tracker's session_id; for an event without
        one, the session cut from its visitor_hash's events in (ts, event_id) order wherever
        more than 30 minutes pass between two, named by the UUID of the MD5 of the hash and
        the session's first event_id."""
        out: dict[str, str] = {}
        by_hash: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in self.events.values():
            if e["session_id"] is not None:
                out[e["event_id"]] = e["session_id"]
            else:
                by_hash[e["visitor_hash"]].append(e)
        for h, evs in by_hash.items():
            evs.sort(key=lambda e: (e["ts"], e["event_id"]))
            sid = ""
            for i, e in enumerate(evs):
                if i == 0 or e["ts"] - evs[i - 1]["ts"] > timedelta(minutes=30):
                    sid = str(uuid.UUID(hashlib.md5((h + e["event_id"]).encode()).hexdigest()))
                out[e["event_id"]] = sid
        return out

    def session_rows(self, days: set[date]) -> list[dict[str, Any]]:
        """The sessions that start on ``days`` (CONTRACT §4): a session's events dated D start
        a session on D unless it has an event in the 27 hours before D's midnight (it began
        earlier, or continues a session that did); the session holds its events dated D and
        D + 1. Written day by day from that rule, with no window in sight."""
        by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
        session_of = self.session_of()
        for e in self.events.values():
            by_session[session_of[e["event_id"]]].append(e)
        rows = []
        for sid, all_events in by_session.items():
            for day in sorted(days):
                midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
                dated = [e for e in all_events if e["ts"].astimezone(UTC).date() == day]
                if not dated:
                    continue
                if any(midnight - timedelta(hours=27) <= e["ts"] < midnight
                       for e in all_events):
                    continue
                until = midnight + timedelta(days=2)
                evs = [e for e in all_events if midnight <= e["ts"] < until]
                rows.append(self._session(sid, evs))
        return rows

    def sessions(self, days: set[date]) -> dict[str, dict[str, Any]]:
        """:meth:`session_rows` by session_id (one row each in these tests)."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.session_rows(days):
            assert row["session_id"] not in out, row["session_id"]
            out[row["session_id"]] = row
        return out

    def _session(self, sid: str, evs: list[dict[str, Any]]) -> dict[str, Any]:
        evs.sort(key=lambda e: (e["ts"], e["event_id"]))
        start, end = evs[0]["ts"], evs[-1]["ts"]
        views = [e for e in evs if e["event_type"] == "page_view"]
        last_view = (sorted(views, key=lambda e: (-e["ts"].timestamp(), e["event_id"]))[0]
                     if views else None)
        scroll = [e["props"]["depth"] for e in evs if e["event_type"] == "scroll_depth"]
        seconds = [e["props"]["seconds"] for e in evs if e["event_type"] == "time_on_page"]
        inter = sum(e["event_type"] in ("cta_click", "form_start", "form_submit")
                    for e in evs)
        exp = next((e for e in evs if "experiment" in e["props"]), None)
        touch = views[0] if views else evs[0]
        source, medium, campaign = self.attribute(touch)
        # who the visitor is: the consented visitor_id, else the day's visitor_hash, else (a
        # record from before either existed) the session itself
        visitor = evs[0]["visitor_id"] or evs[0]["visitor_hash"] or sid
        for e in evs:
            e["visitor"] = e["visitor_id"] or e["visitor_hash"] or sid
        return {
            "session_id": sid,
            "session_start": start,
            "session_end": end,
            "session_date": start.date(),
            "duration_s": (end - start).total_seconds(),
            "visitor_id": evs[0]["visitor_id"],
            "visitor_hash": evs[0]["visitor_hash"],
            "visitor": visitor,
            # the first 8 bytes of the MD5, little-endian (DuckDB's md5_number_upper)
            "visitor_key": int.from_bytes(hashlib.md5(visitor.encode()).digest()[:8], "little"),
            "events": len(evs),
            "pageviews": len(views),
            "entry_page": views[0]["page_path"] if views else None,
            "exit_page": last_view["page_path"] if last_view else None,
            "max_scroll_depth": max(scroll, default=0),
            "max_time_on_page": max(seconds, default=0),
            "interactions": inter,
            "is_bounce": len(views) == 1 and inter == 0,
            "converted": any(e["event_type"] == "cta_click" for e in evs),
            "source": source,
            "medium": medium,
            "campaign": campaign,
            "experiment": exp["props"]["experiment"] if exp else None,
            "variant": exp["props"]["variant"] if exp else None,
            "country": next((e["country"] for e in evs if e["country"]), None),
            "country_source": next((e["country_source"] for e in evs if e["country"]), None),
            "_events": evs,
        }

    def attribute(self, touch: dict[str, Any]) -> tuple[str, str, str]:
        utm = (touch["utm_source"] or "").strip() or None
        key = (touch["referrer"], touch["utm_source"] if utm else None)
        if key in self.attribution:
            return self.attribution[key]
        if utm:
            return (utm.lower(), (touch["utm_medium"] or "(none)").lower(),
                    touch["utm_campaign"] or "(none)")
        # a session that starts inside a visit (cut from a visitor_hash's events at midnight):
        # its referrer is the site itself, a self-referral, so direct (CONTRACT §4)
        ref_host = (touch["referrer"] or "").split("/")[2:3]
        own = (touch["page_host"] or "").lower().removeprefix("www.")
        if ref_host and own and ref_host[0].lower().removeprefix("www.") in (own,):
            return ("(direct)", "(none)", "(none)")
        raise KeyError(f"the test gave no expected attribution for {key}")


def readable(data: bytes) -> tuple[bytes, bool]:
    """The text of a gzip object, and whether it is damaged: a damaged object gives what zlib
    decompresses of it, member after member, fed one byte at a time (all before the damage)."""
    try:
        return gzip.decompress(data), False
    except (OSError, EOFError, zlib.error):
        pass
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        i = pos
        try:
            while i < len(data) and not d.eof:
                out.append(d.decompress(data[i : i + 1]))
                i += 1
        except zlib.error:
            break
        if not d.eof:
            break
        pos = i
    return b"".join(out), True


def _split_glued(text: str) -> list[str]:
    """Records written back to back: cut at every "}{" that is not inside a JSON string (a
    character walk that follows quotes and backslash escapes)."""
    pieces, start, in_string, escaped = [], 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{" and i > 0 and text[i - 1] == "}":
            pieces.append(text[start:i])
            start = i
    return [*pieces, text[start:]]


class _Bad:
    def __init__(self, reason: str) -> None:
        self.reason = reason


# --- §5 marts, from the oracle's sessions ------------------------------------------------------


def kpis(sessions: dict[str, dict]) -> dict[date, dict[str, float]]:
    by_day: dict[date, list[dict]] = defaultdict(list)
    for s in sessions.values():
        by_day[s["session_date"]].append(s)
    return {
        d: {
            "visitors": len({s["visitor"] for s in ss}),
            "sessions": len(ss),
            "consented_sessions": sum(s["visitor_id"] is not None for s in ss),
            "pageviews": sum(s["pageviews"] for s in ss),
            "events": sum(s["events"] for s in ss),
            "bounce_rate": sum(s["is_bounce"] for s in ss) / len(ss),
            "avg_duration_s": sum(s["duration_s"] for s in ss) / len(ss),
            "conversions": sum(s["converted"] for s in ss),
            "conversion_rate": sum(s["converted"] for s in ss) / len(ss),
        }
        for d, ss in by_day.items()
    }


def pages(sessions: dict[str, dict]) -> dict[tuple[date, str], dict[str, float]]:
    acc: dict[tuple[date, str], dict] = defaultdict(
        lambda: {"pageviews": 0, "visitors": set(), "entries": 0, "exits": 0, "depths": {}})
    for s in sessions.values():
        d = s["session_date"]
        for e in s["_events"]:
            if e["event_type"] == "page_view":
                a = acc[(d, e["page_path"])]
                a["pageviews"] += 1
                a["visitors"].add(e["visitor"])
                a["depths"].setdefault(s["session_id"], 0)
        for e in s["_events"]:
            if e["event_type"] == "scroll_depth" and (d, e["page_path"]) in acc:
                depths = acc[(d, e["page_path"])]["depths"]
                if s["session_id"] in depths:
                    depths[s["session_id"]] = max(depths[s["session_id"]], e["props"]["depth"])
        if s["entry_page"] is not None:
            acc[(d, s["entry_page"])]["entries"] += 1
            acc[(d, s["exit_page"])]["exits"] += 1
    return {
        k: {"pageviews": a["pageviews"], "visitors": len(a["visitors"]), "entries": a["entries"],
            "exits": a["exits"],
            "avg_max_scroll_depth": sum(a["depths"].values()) / len(a["depths"])}
        for k, a in acc.items()
    }


def attribution_daily(sessions: dict[str, dict]) -> dict[tuple, dict[str, float]]:
    acc: dict[tuple, list[dict]] = defaultdict(list)
    for s in sessions.values():
        acc[(s["session_date"], s["source"], s["medium"], s["campaign"])].append(s)
    return {
        k: {"sessions": len(ss), "visitors": len({s["visitor"] for s in ss}),
            "pageviews": sum(s["pageviews"] for s in ss),
            "bounces": sum(s["is_bounce"] for s in ss),
            "conversions": sum(s["converted"] for s in ss),
            "conversion_rate": sum(s["converted"] for s in ss) / len(ss)}
        for k, ss in acc.items()
    }


BOOK_CALL = [
    lambda e: e["event_type"] == "page_view",
    lambda e: e["event_type"] == "scroll_depth" and e["props"].get("depth", 0) >= 50,
    lambda e: e["event_type"] == "cta_click",
    lambda e: e["event_type"] == "form_start",
    lambda e: e["event_type"] == "form_submit",
]


def funnel(sessions: dict[str, dict]) -> dict[tuple[date, int], int]:
    out: dict[tuple[date, int], int] = defaultdict(int)
    for s in sessions.values():
        t = None
        for k, matches in enumerate(BOOK_CALL, 1):
            times = [e["ts"] for e in s["_events"] if matches(e) and (t is None or e["ts"] >= t)]
            if not times:
                break
            t = min(times)
            out[(s["session_date"], k)] += 1
        for k in range(1, len(BOOK_CALL) + 1):
            out.setdefault((s["session_date"], k), 0)
    return dict(out)


def experiments(sessions: dict[str, dict]) -> dict[tuple[str, str], dict[str, float]]:
    acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in sessions.values():
        if s["experiment"] is not None:
            acc[(s["experiment"], s["variant"])][0] += 1
            acc[(s["experiment"], s["variant"])][1] += s["converted"]
    out = {}
    for (exp, var), (n, c) in acc.items():
        names = sorted(v for (e, v) in acc if e == exp)
        base = "control" if "control" in names else names[0]
        n0, c0 = acc[(exp, base)]
        row = {"sessions": n, "conversions": c, "conversion_rate": c / n, "lift": None,
               "p_value": None}
        if var != base:
            row["lift"] = (c / n) / (c0 / n0) - 1
            p = (c + c0) / (n + n0)
            z = (c / n - c0 / n0) / math.sqrt(p * (1 - p) * (1 / n + 1 / n0))
            row["p_value"] = math.erfc(abs(z) / math.sqrt(2))
        out[(exp, var)] = row
    return out


def attribution_touch(sessions: dict[str, dict]) -> dict[tuple, tuple[int, int]]:
    """Consented visitors only: without consent no visitor is seen again."""
    by_visitor: dict[str, list[dict]] = defaultdict(list)
    for s in sessions.values():
        if s["visitor_id"] is not None:
            by_visitor[s["visitor_id"]].append(s)
    first: dict[tuple, int] = defaultdict(int)
    last: dict[tuple, int] = defaultdict(int)
    for ss in by_visitor.values():
        ss.sort(key=lambda s: (s["session_start"], s["session_id"]))
        conv = [s for s in ss if s["converted"]]
        if not conv:
            continue
        first[(ss[0]["source"], ss[0]["medium"], ss[0]["campaign"])] += 1
        last[(conv[0]["source"], conv[0]["medium"], conv[0]["campaign"])] += 1
    return {k: (first.get(k, 0), last.get(k, 0)) for k in set(first) | set(last)}


def cohorts(sessions: dict[str, dict]) -> dict[tuple[date, int], tuple[int, int]]:
    """Consented visitors only: without consent a visitor is new every day."""
    sessions = {k: s for k, s in sessions.items() if s["visitor_id"] is not None}
    firsts: dict[str, date] = {}
    for s in sessions.values():
        d = s["session_date"]
        if s["visitor_id"] not in firsts or d < firsts[s["visitor_id"]]:
            firsts[s["visitor_id"]] = d

    def monday(d: date) -> date:
        return d - timedelta(days=d.weekday())

    size: dict[date, int] = defaultdict(int)
    for d in firsts.values():
        size[monday(d)] += 1
    active: dict[tuple[date, int], set[str]] = defaultdict(set)
    for s in sessions.values():
        c = monday(firsts[s["visitor_id"]])
        active[(c, (monday(s["session_date"]) - c).days // 7)].add(s["visitor_id"])
    return {k: (size[k[0]], len(v)) for k, v in active.items()}


def utc(d: datetime) -> datetime:
    return d.astimezone(UTC).replace(tzinfo=None)


# --- issue 19's marts: devices, goals, journeys -------------------------------------------------

# What each user agent the simulator sends is, written out by hand in the order of
# model.USER_AGENTS (browser and OS as ua-parser's families name them; the device type is the
# list the simulator drew the agent from). The oracle runs no user-agent parser.
UA_FAMILIES: dict[str, tuple[tuple[str, str], ...]] = {
    "desktop": (("Chrome", "Windows"), ("Chrome", "Mac OS X"), ("Safari", "Mac OS X"),
                ("Firefox", "Windows"), ("Edge", "Windows"), ("Firefox", "Linux")),
    "mobile": (("Mobile Safari", "iOS"), ("Chrome Mobile", "Android"),
               ("Samsung Internet", "Android")),
    "tablet": (("Mobile Safari", "iOS"), ("Chrome", "Android")),
}


def device_of(user_agent: str) -> tuple[str, str, str]:
    """(device_type, browser, os) of one of the simulator's user agents."""
    for device, agents in m.USER_AGENTS.items():
        if user_agent in agents:
            browser, os_ = UA_FAMILIES[device][agents.index(user_agent)]
            return device, browser, os_
    raise KeyError(f"the oracle does not know the user agent {user_agent!r}")


def screen_class(width: int | None) -> str:
    """CONTRACT §5's classes of screen.width (CSS pixels)."""
    if not width:
        return "(unknown)"
    return ("mobile" if width < 576 else "tablet" if width < 992
            else "laptop" if width < 1440 else "desktop")


def devices(sessions: dict[str, dict]) -> dict[tuple[date, str, str], dict[str, float]]:
    """devices_daily: per day, dimension and value, from each session's first event."""
    acc: dict[tuple[date, str, str], list[dict]] = defaultdict(list)
    for s in sessions.values():
        first = s["_events"][0]
        device, browser, os_ = device_of(first["user_agent"])
        for dim, value in (("device_type", device), ("browser", browser), ("os", os_),
                           ("screen_class", screen_class(first["screen_width"]))):
            acc[(s["session_date"], dim, value)].append(s)
    return {
        k: {"visitors": len({s["visitor"] for s in ss}), "sessions": len(ss),
            "pageviews": sum(s["pageviews"] for s in ss),
            "bounces": sum(s["is_bounce"] for s in ss),
            "bounce_rate": sum(s["is_bounce"] for s in ss) / len(ss),
            "avg_duration_s": sum(s["duration_s"] for s in ss) / len(ss),
            "conversions": sum(s["converted"] for s in ss),
            "conversion_rate": sum(s["converted"] for s in ss) / len(ss)}
        for k, ss in acc.items()
    }


def goals(sessions: dict[str, dict], wanted: dict[str, Any]) -> dict[tuple, dict[str, float]]:
    """goals_daily: ``wanted`` maps a goal's name to the predicate an event must meet."""
    acc: dict[tuple, list[tuple[dict, int]]] = defaultdict(list)
    for s in sessions.values():
        for name, matches in wanted.items():
            hits = sum(1 for e in s["_events"] if matches(e))
            acc[(s["session_date"], name, s["source"], s["medium"], s["campaign"])].append(
                (s, hits))
    out = {}
    for k, rows in acc.items():
        conv = [s for s, hits in rows if hits]
        out[k] = {"sessions": len(rows), "visitors": len({s["visitor"] for s, _ in rows}),
                  "conversions": len(conv),
                  "converted_visitors": len({s["visitor"] for s in conv}),
                  "events": sum(hits for _, hits in rows),
                  "conversion_rate": len(conv) / len(rows)}
    return out


def journey(s: dict[str, Any]) -> list[str]:
    """A session's pages in order, a page repeated right after itself counting once."""
    pages: list[str] = []
    for e in s["_events"]:  # in (ts, event_id) order
        if e["event_type"] == "page_view" and (not pages or pages[-1] != e["page_path"]):
            pages.append(e["page_path"])
    return pages


def journeys(sessions: dict[str, dict], k: int) -> dict[tuple[date, tuple[str, ...]],
                                                         tuple[int, int]]:
    """journeys_daily: (sessions, visitors) of each day's path of 2–5 pages from the entry
    page taken by at least ``k`` distinct visitors."""
    acc: dict[tuple[date, tuple[str, ...]], list[dict]] = defaultdict(list)
    for s in sessions.values():
        pages = journey(s)
        for n in range(2, min(len(pages), 5) + 1):
            acc[(s["session_date"], tuple(pages[:n]))].append(s)
    out = {}
    for key, ss in acc.items():
        visitors = len({s["visitor"] for s in ss})
        if visitors >= k:
            out[key] = (len(ss), visitors)
    return out


# --- issue 19: countries, outbound links, downloads, 404s, web vitals, engaged time ----------

def countries(sessions: dict[str, dict]) -> dict[tuple[date, str, str], dict[str, float]]:
    """countries_daily: per day, the session's country (its first event that has one) and
    where it came from."""
    acc: dict[tuple[date, str, str], list[dict]] = defaultdict(list)
    for s in sessions.values():
        known = s["country"] is not None
        acc[(s["session_date"], s["country"] if known else "(unknown)",
             s["country_source"] if known else "(unknown)")].append(s)
    return {k: {"visitors": len({s["visitor"] for s in ss}), "sessions": len(ss),
                "pageviews": sum(s["pageviews"] for s in ss),
                "bounces": sum(s["is_bounce"] for s in ss),
                "conversions": sum(s["converted"] for s in ss)}
            for k, ss in acc.items()}


def _events_of(sessions: dict[str, dict], event_type: str) -> Iterator[tuple[dict, dict]]:
    for s in sessions.values():
        for e in s["_events"]:
            if e["event_type"] == event_type:
                yield s, e


def _counted(acc: dict[tuple, list[tuple[dict, dict]]], n: str) -> dict[tuple, dict[str, int]]:
    return {k: {n: len(rows), "sessions": len({s["session_id"] for s, _ in rows}),
                "visitors": len({e["visitor"] for _, e in rows})}
            for k, rows in acc.items()}


def outbound(sessions: dict[str, dict]) -> dict[tuple[date, str], dict[str, int]]:
    """outbound_daily: clicks per day and host."""
    acc: dict[tuple, list] = defaultdict(list)
    for s, e in _events_of(sessions, "outbound"):
        acc[(s["session_date"], e["props"]["host"].lower())].append((s, e))
    return _counted(acc, "clicks")


def downloads(sessions: dict[str, dict]) -> dict[tuple[date, str, str], dict[str, int]]:
    """downloads_daily: per day, extension and file."""
    acc: dict[tuple, list] = defaultdict(list)
    for s, e in _events_of(sessions, "download"):
        acc[(s["session_date"], e["props"]["ext"].lower(),
             e["props"].get("file", "(unknown)"))].append((s, e))
    return _counted(acc, "downloads")


def referrer_host(url: str | None) -> str | None:
    """The referrer's host as CONTRACT §3.5 keeps it (lower case, no port, no www.)."""
    if not url or "://" not in url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    return scrub(host) or None


def not_found(sessions: dict[str, dict]) -> dict[tuple[date, str, str], dict[str, int]]:
    """not_found_daily: per day, missing page and where the visitor came from."""
    acc: dict[tuple, list] = defaultdict(list)
    for s, e in _events_of(sessions, "not_found"):
        ref = e["props"].get("from") or referrer_host(e["referrer"]) or "(direct)"
        acc[(s["session_date"], e["page_path"], ref)].append((s, e))
    return _counted(acc, "hits")


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = int(h)
    return xs[lo] + (h - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])


# web.dev's "good" thresholds
GOOD = {"lcp": 2500, "inp": 200, "cls": 0.1, "ttfb": 800}


def web_vitals(sessions: dict[str, dict]) -> dict[tuple[date, str], dict[str, Any]]:
    """web_vitals_daily: per day and page, p75 and the share of good samples of each metric."""
    acc: dict[tuple, list[dict]] = defaultdict(list)
    for s, e in _events_of(sessions, "web_vitals"):
        acc[(s["session_date"], e["page_path"])].append(e["props"])
    out = {}
    for k, samples in acc.items():
        row: dict[str, Any] = {"samples": len(samples)}
        for metric, good in GOOD.items():
            xs = [p[metric] for p in samples if metric in p]
            row[f"{metric}_samples"] = len(xs)
            row[f"{metric}_p75"] = percentile(xs, 0.75)
            row[f"{metric}_good"] = sum(x <= good for x in xs) / len(xs) if xs else None
        out[k] = row
    return out


def engagement(sessions: dict[str, dict]) -> dict[tuple[date, str], dict[str, float]]:
    """engagement_daily: per day and page, each session's summed engaged seconds there."""
    per: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for s, e in _events_of(sessions, "engagement"):
        per[(s["session_date"], e["page_path"])][s["session_id"]].append(e)
    out = {}
    for k, by_session in per.items():
        totals = [sum(e["props"]["seconds"] for e in evs) for evs in by_session.values()]
        out[k] = {"sessions": len(totals),
                  "visitors": len({evs[0]["visitor"] for evs in by_session.values()}),
                  "total_engaged_s": sum(totals), "avg_engaged_s": sum(totals) / len(totals),
                  "median_engaged_s": percentile(totals, 0.5)}
    return out
