"""Realtime: the last 30 minutes from the newest raw objects, refreshed every 10 s."""

from datetime import UTC, datetime, timedelta

import plotly.express as px
import streamlit as st

from analytics_platform import settings
from analytics_platform.dashboard.frame import header, show_table
from analytics_platform.dashboard.realtime import WINDOW, recent_activity

header("Realtime · last 30 minutes")


@st.fragment(run_every=timedelta(seconds=10))
def live() -> None:
    now = datetime.now(UTC)
    act = recent_activity(settings.raw_url(), now)
    c1, c2, c3 = st.columns(3)
    c1.metric("Events", f"{act.events:,}")
    c2.metric("Active sessions", f"{act.sessions:,}")
    c3.metric("Pageviews", f"{act.pageviews:,}")
    if not act.events:
        st.info("Nothing in the last 30 minutes. Open the collector's demo page "
                "(http://127.0.0.1:8000/demo) and click around.")
    fig = px.bar(act.per_minute, x="minute", y="events",
                 labels={"minute": "minute (UTC)", "events": "events"})
    fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      xaxis_range=[now - WINDOW, now])
    st.plotly_chart(fig, width="stretch", key="realtime_chart")
    if act.events:
        show_table(act.top_pages, key="realtime_pages")
    bots = (f" Left out as bots, as the pipeline will drop them: {act.bot_events:,} "
            f"event{'s' if act.bot_events != 1 else ''}." if act.bot_events else
            " Bots are left out, as the pipeline will drop them.")
    st.caption(f"From the newest raw objects in {settings.raw_url()}, refreshed every 10 s; "
               f"updated {now:%H:%M:%S} UTC. Raw events, before sessions are built: an active "
               "session is a session id (or, without consent, a visitor hash) seen in the "
               "window." + bots)


live()
