"""Realtime: the last 30 minutes from the newest raw objects, refreshed every 10 s."""

from datetime import UTC, datetime, timedelta

import plotly.express as px
import streamlit as st

from analytics_platform import settings
from analytics_platform.dashboard.realtime import recent_activity

st.header("Realtime · last 30 minutes")


@st.fragment(run_every=timedelta(seconds=10))
def live() -> None:
    act = recent_activity(settings.raw_url(), datetime.now(UTC))
    c1, c2, c3 = st.columns(3)
    c1.metric("Events", f"{act.events:,}")
    c2.metric("Active sessions", f"{act.sessions:,}")
    c3.metric("Pageviews", f"{act.pageviews:,}")
    if act.per_minute.empty:
        st.info("Nothing in the last 30 minutes. Open the collector's demo page "
                "(http://127.0.0.1:8000/demo) and click around.")
    else:
        fig = px.bar(act.per_minute, x="minute", y="events")
        fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key="realtime_chart")
        st.dataframe(act.top_pages, hide_index=True, width="stretch")
    st.caption(f"From the newest raw objects in {settings.raw_url()}, refreshed every 10 s; "
               f"updated {datetime.now(UTC):%H:%M:%S} UTC.")


live()
