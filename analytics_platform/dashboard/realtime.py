"""The last 30 minutes, straight from the newest raw objects (not the marts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from analytics_platform.duck import MACROS
from analytics_platform.lake import hours_between, open_raw_lake

WINDOW = timedelta(minutes=30)
# Objects are named after their oldest record, so an object that holds the last 30 minutes was
# started at most a Firehose buffer (up to 15 minutes) before.
SLACK = timedelta(minutes=15)

# Raw records, so page paths go through the pipeline's own cleaning (duck.py's clean_path: no
# query string, no address) before anything is shown; a visit is its session_id, or without
# consent its visitor_hash (the pipeline's sessions come later).
ACTIVITY_SQL = """
WITH recent AS (
    SELECT * FROM read_json($files, format = 'newline_delimited', compression = 'gzip',
                            columns = {event_type: 'VARCHAR', event_id: 'VARCHAR',
                                       session_id: 'VARCHAR', visitor_hash: 'VARCHAR',
                                       page_path: 'VARCHAR', ingest_ts: 'VARCHAR'},
                            ignore_errors = true)
    WHERE try_cast(ingest_ts AS TIMESTAMPTZ) >= $since
)
SELECT event_type, event_id, coalesce(session_id, visitor_hash) AS visit,
       clean_path(page_path) AS page_path, ingest_ts
FROM (SELECT DISTINCT ON (event_id) * FROM recent)
"""


@dataclass
class Activity:
    events: int
    sessions: int
    pageviews: int
    per_minute: pd.DataFrame
    top_pages: pd.DataFrame


def recent_activity(raw_url: str, now: datetime) -> Activity:
    """Events, active sessions and pageviews of the last 30 minutes (bots included: the raw
    lake has not been cleaned yet)."""
    lake = open_raw_lake(raw_url)
    since = now - WINDOW
    objects = [o for h in hours_between(since - SLACK, now) for o in lake.list_hour(h)
               if o.last_modified >= since - SLACK]
    empty = Activity(0, 0, 0, pd.DataFrame(columns=["minute", "events"]),
                     pd.DataFrame(columns=["page_path", "pageviews"]))
    if not objects:
        return empty
    with lake.local_paths(objects) as paths:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(MACROS)
        df = con.execute(ACTIVITY_SQL, {"files": [str(p) for p in paths], "since": since}).df()
        con.close()
    if df.empty:
        return empty
    df["minute"] = pd.to_datetime(df.ingest_ts, utc=True).dt.floor("min")
    views = df[df.event_type == "page_view"]
    return Activity(
        events=len(df),
        sessions=df.visit.nunique(),
        pageviews=len(views),
        per_minute=df.groupby("minute", as_index=False).size().rename(columns={"size": "events"}),
        top_pages=views.groupby("page_path", as_index=False).size()
        .rename(columns={"size": "pageviews"}).sort_values("pageviews", ascending=False)
        .head(10),
    )
