"""Sources: sessions and conversions by source / medium / campaign, and first vs last touch."""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import consent_coverage, current, query, stats

frame = current()
st.header("Sources")
src = stats(Q.sources(frame.filters))
if src.empty:
    st.info("No sessions match these filters.")
else:
    by_source = src.groupby("source", as_index=False)[["sessions", "conversions"]].sum()
    by_source["conversion_rate"] = by_source.conversions / by_source.sessions
    fig = px.bar(by_source.sort_values("sessions", ascending=False).head(12), x="source",
                 y="sessions", color="conversion_rate", color_continuous_scale="Blues",
                 labels={"conversion_rate": "conversion rate"})
    fig.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="sources_chart")
    st.dataframe(src, hide_index=True, width="stretch", column_config={
        "conversion_rate": st.column_config.NumberColumn("conversion rate", format="percent")})
st.subheader("First touch vs last touch")
st.caption("Each converting visitor counts once for the source of their first session ever "
           "and once for the session in which they converted (all history).")
coverage = consent_coverage()
if coverage:
    st.caption(coverage)
touch = query(Q.TOUCH) if "attribution_touch" in frame.warehouse.tables else pd.DataFrame()
if not touch.empty:
    top = touch.head(10).assign(label=lambda d: d.source + " / " + d.medium)
    fig = go.Figure([
        go.Bar(name="first touch", x=top.label, y=top.first_touch_conversions),
        go.Bar(name="last touch", x=top.label, y=top.last_touch_conversions),
    ])
    fig.update_layout(barmode="group", height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="touch_chart")
    st.dataframe(touch, hide_index=True, width="stretch")
