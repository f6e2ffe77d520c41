"""The `events` cleaning written the straightforward pandas way: the alternative the `events`
asset is measured against (bench/events_hour.py).

Same input (the gzip NDJSON objects of one raw hour), same rules (the contract's
``validate_raw_record``, record by record), same cleaning (clock correction, query strings and
addresses scrubbed, referrer host, user agents parsed once per distinct value, bots dropped,
one row per event_id, earliest arrival first), same output (one zstd Parquet file sorted by ts).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd

from analytics_platform.contract import validate_raw_record
from analytics_platform.defs.events.user_agents import classify

EMAIL = r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
IPV4 = (r"(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}"
        r"(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?![0-9.])")
REFERRER_HOST = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#:]+)"
TEXT = ["page_path", "page_host", "page_title", "utm_source", "utm_medium", "utm_campaign",
        "utm_content", "utm_term", "props"]


def _scrub(s: pd.Series) -> pd.Series:
    return (s.str.replace(EMAIL, "(email)", regex=True)
             .str.replace(IPV4, "(ip)", regex=True))


def clean_hour(objects: list[tuple[str, Path]], out: Path) -> dict[str, int]:
    """Clean the objects ``(key, path)`` of one hour into ``out``; returns the counts."""
    records, keys, positions = [], [], []
    quarantined = 0
    for key, path in objects:
        try:
            text = gzip.decompress(path.read_bytes())
        except (OSError, EOFError):
            quarantined += 1
            continue
        for pos, line in enumerate(text.split(b"\n")):
            if not line.strip():
                continue
            pieces = re.sub(rb"}{", b"}\n{", line).split(b"\n") if b"}{" in line else [line]
            for sub, piece in enumerate(pieces):
                try:
                    record = json.loads(piece)
                except ValueError:
                    quarantined += 1
                    continue
                if validate_raw_record(record):
                    quarantined += 1
                    continue
                records.append(record)
                keys.append(key)
                positions.append(pos * 1000 + (sub + 1 if len(pieces) > 1 else 0))
    df = pd.DataFrame.from_records(records)
    df["raw_key"], df["raw_pos"] = keys, positions
    for col in ("event_ts", "sent_ts", "ingest_ts"):
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    skew = df["sent_ts"] - df["event_ts"]
    df["ts"] = (df["ingest_ts"] - skew).where(
        df["sent_ts"].notna() & (skew >= pd.Timedelta(0)),
        df[["event_ts", "ingest_ts"]].min(axis=1))
    agents = df["user_agent"].fillna("")
    parsed = {ua: classify(ua) for ua in agents.unique()}
    df["is_bot"] = agents.map(lambda ua: parsed[ua][0])
    df["browser"] = agents.map(lambda ua: parsed[ua][1])
    df["os"] = agents.map(lambda ua: parsed[ua][2])
    df["device_type"] = agents.map(lambda ua: parsed[ua][3])
    bots = int(df["is_bot"].sum())
    df = df[~df["is_bot"]].copy()
    df["visitor_id"] = df["visitor_id"].fillna(df["session_id"])
    df["page_path"] = df["page_path"].str.replace(r"[?#].*$", "", regex=True)
    df["page_host"] = df["page_host"].str.lower()
    df["props"] = df["props"].map(lambda p: json.dumps(p) if isinstance(p, dict) else None)
    df["referrer_host"] = (df["referrer"].str.extract(REFERRER_HOST, expand=False)
                           .str.lower().str.replace(r"^www\.", "", regex=True))
    for col in [*TEXT, "referrer_host"]:
        if col in df:
            df[col] = _scrub(df[col])
    df = (df.sort_values(["event_id", "ingest_ts", "event_ts", "raw_key", "raw_pos"])
            .drop_duplicates("event_id")
            .sort_values(["ts", "event_id"])
            .drop(columns=["referrer", "user_agent", "is_bot", "sent_ts", "schema_version"]))
    df.to_parquet(out, compression="zstd", index=False)
    return {"records": len(records) + quarantined, "events": len(df), "bots": bots,
            "quarantined": quarantined}
