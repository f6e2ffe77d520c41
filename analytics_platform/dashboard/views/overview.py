"""Overview: the KPIs against the period before, visitors over time, top, entry and exit pages."""

import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import change, current, duration, pct, stats

filters = current().filters
st.header(f"Overview · {filters.start:%d %b} – {filters.end:%d %b %Y}")
now = stats(Q.kpis(filters)).iloc[0]
before = stats(Q.kpis(filters.previous())).iloc[0]
cols = st.columns(6)
cols[0].metric("Visitors", f"{int(now.visitors):,}", change(now.visitors, before.visitors))
cols[1].metric("Sessions", f"{int(now.sessions):,}", change(now.sessions, before.sessions))
cols[2].metric("Pageviews", f"{int(now.pageviews):,}",
               change(now.pageviews, before.pageviews))
cols[3].metric("Bounce rate", pct(now.bounce_rate),
               change(now.bounce_rate, before.bounce_rate, points=True),
               delta_color="inverse")
cols[4].metric("Visit duration", duration(now.avg_duration_s),
               change(now.avg_duration_s, before.avg_duration_s))
cols[5].metric("Conversion rate", pct(now.conversion_rate),
               change(now.conversion_rate, before.conversion_rate, points=True))
st.caption(f"{int(now.conversions):,} sessions clicked “Book a call”. Changes compare with the "
           f"{(filters.end - filters.start).days + 1} days before.")
hourly = (filters.end - filters.start).days < 2
series = stats(Q.series(filters, hourly))
if series.empty:
    st.info("No sessions match these filters.")
else:
    fig = px.line(series, x="period", y=["visitors", "sessions", "pageviews"], markers=True,
                  labels={"period": "hour" if hourly else "day", "value": "", "variable": ""})
    fig.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="series")
left, mid, right = st.columns(3)
left.subheader("Top pages")
left.dataframe(stats(Q.top_pages(filters)), hide_index=True, width="stretch")
mid.subheader("Entry pages")
entry = stats(Q.entry_pages(filters))
mid.dataframe(entry, hide_index=True, width="stretch",
              column_config={"bounce_rate": st.column_config.NumberColumn(format="percent")})
right.subheader("Exit pages")
right.dataframe(stats(Q.exit_pages(filters)), hide_index=True, width="stretch")
