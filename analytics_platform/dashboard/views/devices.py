"""Devices: the filtered sessions by device type, browser, operating system and screen size,
against the period before (what devices_daily holds, counted with the filters)."""

import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import comparison, header, show_table, stats, with_change

filters = header("Devices")
st.caption("Each session counts once in each panel, for its first event's device, browser and "
           "operating system (from the user agent) and its screen-size class (from the "
           "screen's width in CSS pixels: mobile < 576 ≤ tablet < 992 ≤ laptop < 1440 ≤ "
           "desktop).")
TITLES = {"device_type": "Device type", "browser": "Browser", "os": "Operating system",
          "screen_class": "Screen size"}
total_before = None
cols = st.columns(2)
for i, (dim, title) in enumerate(TITLES.items()):
    now = stats(Q.devices(filters, dim))
    before = stats(Q.devices(filters.previous(), dim))
    total_before = before.sessions.sum() if total_before is None else total_before
    with cols[i % 2]:
        st.subheader(title)
        if now.empty:
            st.info("No sessions match these filters.")
            continue
        now["share"] = now.sessions / now.sessions.sum()
        fig = px.bar(now.head(8), x="sessions", y="value", orientation="h",
                     labels={"value": "", "sessions": "sessions"}, text=now.head(8).share.map(
                         lambda s: f"{s:.0%}"))
        fig.update_layout(height=60 + 28 * min(len(now), 8),
                          margin={"l": 0, "r": 0, "t": 10, "b": 0},
                          yaxis={"autorange": "reversed"})
        st.plotly_chart(fig, width="stretch", key=f"devices_{dim}")
        show_table(with_change(now, before, ["value"]).rename(columns={"value": dim}),
                   [dim, "sessions", "change", "share", "bounce_rate", "avg_duration_s",
                    "conversion_rate"], key=f"devices_table_{dim}")
st.caption("“vs before”: sessions against the period before. "
           + comparison(filters, total_before))
