"""The last 30 minutes, straight from the newest raw objects (not the marts), without the
visits the pipeline will drop as bots (its own detector, CONTRACT §3.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa

from analytics_platform import sql
from analytics_platform.defs.events.reader import objects_table, read_lines
from analytics_platform.defs.events.user_agents import detect_bots
from analytics_platform.duck import connect
from analytics_platform.lake import hours_between, open_raw_lake

WINDOW = timedelta(minutes=30)
# Objects are named after their oldest record, so an object that holds the last 30 minutes was
# started at most a Firehose buffer (up to 15 minutes) before.
SLACK = timedelta(minutes=15)

# Raw records, read as the pipeline reads them: its reader's lines (reader.py) and its
# records.sql, which splits records written back to back on one line ("}{") that a
# newline-delimited reader drops as one invalid line, though the pipeline counts each. Page
# paths go through the pipeline's own cleaning (duck.py's clean_path: no query string, no
# address) before anything is shown; a visit is its session_id, or without consent its
# visitor_hash (the pipeline's sessions come later). A piece that is not JSON is left out.
ACTIVITY_SQL = f"""
WITH records AS ({sql.load("events/records", lines="raw_lines")}),
parsed AS (
    -- NULL, not an error, for a piece that is not JSON, wherever DuckDB evaluates a filter
    SELECT CASE WHEN json_valid(text) THEN text::JSON END AS j FROM records
),
recent AS (
    SELECT j->>'event_type' AS event_type, j->>'event_id' AS event_id,
           j->>'session_id' AS session_id, j->>'visitor_hash' AS visitor_hash,
           j->>'page_path' AS page_path, j->>'ingest_ts' AS ingest_ts,
           j->>'user_agent' AS user_agent
    FROM parsed WHERE j IS NOT NULL
)
SELECT event_type, event_id, coalesce(session_id, visitor_hash) AS visit,
       clean_path(page_path) AS page_path, ingest_ts, coalesce(user_agent, '') AS user_agent
FROM (SELECT DISTINCT ON (event_id) * FROM recent
      WHERE try_cast(ingest_ts AS TIMESTAMPTZ) >= $since
        AND try_cast(ingest_ts AS TIMESTAMPTZ) < $until)
"""


@dataclass
class Activity:
    events: int
    sessions: int
    pageviews: int
    per_minute: pd.DataFrame  # every minute of the window up to now, 0 where nothing came
    top_pages: pd.DataFrame
    bot_events: int = 0  # left out: the pipeline drops them as bots


def recent_activity(raw_url: str, now: datetime) -> Activity:
    """Events, active sessions and pageviews of the last 30 minutes, without bots (what the
    pipeline's bot detector would drop), per minute up to ``now``."""
    lake = open_raw_lake(raw_url)
    since = now - WINDOW
    objects = [o for h in hours_between(since - SLACK, now) for o in lake.list_hour(h)
               if o.last_modified >= since - SLACK]
    minutes = pd.date_range(pd.Timestamp(since).floor("min"), pd.Timestamp(now).floor("min"),
                            freq="min", tz="UTC", name="minute")
    empty = Activity(0, 0, 0, pd.DataFrame({"minute": minutes, "events": 0}),
                     pd.DataFrame(columns=["page_path", "pageviews"]))
    if not objects:
        return empty
    raw = read_lines(lake, objects)  # a damaged object: what decompresses of it, as the pipeline
    con = connect()  # UTC and the pipeline's macros (clean_path), its memory bound
    con.register("raw_lines", raw.lines)
    con.register("raw_objects", objects_table(objects))
    # up to the end of now's minute, the series' last: a record that arrived after ``now`` (the
    # view asked about a past moment, or a collector's clock ahead of this one) is in neither
    until = pd.Timestamp(now).floor("min").to_pydatetime() + timedelta(minutes=1)
    df = con.execute(ACTIVITY_SQL, {"since": since, "until": until}).df()
    con.close()
    if df.empty:
        return empty
    agents = df.user_agent.drop_duplicates()
    bots = set(agents[detect_bots(pa.array(agents, pa.string())).to_numpy(
        zero_copy_only=False)])
    is_bot = df.user_agent.isin(bots)
    bot_events, df = int(is_bot.sum()), df[~is_bot]
    df = df.assign(minute=pd.to_datetime(df.ingest_ts, utc=True).dt.floor("min"))
    views = df[df.event_type == "page_view"]
    per_minute = df.groupby("minute").size().reindex(minutes, fill_value=0)
    return Activity(
        events=len(df),
        sessions=df.visit.nunique(),
        pageviews=len(views),
        per_minute=per_minute.rename("events").reset_index(),
        top_pages=views.groupby("page_path", as_index=False).size()
        .rename(columns={"size": "pageviews"}).sort_values("pageviews", ascending=False)
        .head(10),
        bot_events=bot_events,
    )
