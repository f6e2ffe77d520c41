"""Overview: the KPIs against the period before, visitors over time, top, entry and exit pages."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import (
    change,
    comparison,
    current,
    duration,
    header,
    pct,
    provisional_days,
    query,
    show_table,
    stats,
)
from analytics_platform.query.stats import time_labels
from analytics_platform.text import plural

filters = header("Overview")
now = stats(Q.kpis(filters)).iloc[0]
before = stats(Q.kpis(filters.previous())).iloc[0]
before_sessions = int(before.sessions)
if not before_sessions:  # nothing to compare with: no arrows at all, rather than "+inf"
    before = before * float("nan")
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
st.caption(f"{plural(int(now.conversions), 'session')} clicked “Book a call”. "
           + comparison(filters, before_sessions))
hourly = filters.days < 2
series = stats(Q.series(filters, hourly))
if series.empty:
    st.info("No sessions match these filters.")
else:
    # The query has a row per bucket with sessions only: every bucket of the range, 0 where
    # none started, or the line would be drawn straight across a day or hour without any.
    # Not past the current hour: the hours to come have no sessions *yet* (one that has
    # some all the same, a clock ahead, is kept).
    today = datetime.now(UTC).replace(tzinfo=None)
    buckets = pd.DatetimeIndex(pd.to_datetime(
        time_labels("time:hour" if hourly else "time:day", filters.start, filters.end)),
        name="period")
    buckets = buckets[(buckets <= today) | buckets.isin(series.period)]
    series = series.set_index("period").reindex(buckets, fill_value=0).reset_index()
    fig = px.line(series, x="period", y=["visitors", "sessions", "pageviews"], markers=True,
                  labels={"period": "hour (UTC)" if hourly else "day", "value": "",
                          "variable": ""})
    # what may still change: every day whose window for late events is open (CONTRACT §4),
    # shaded from its start to now (or the range's end)
    late = provisional_days(filters.start, filters.end)
    if late:
        fig.add_vrect(x0=datetime.combine(late[0], datetime.min.time()),
                      x1=min(today, datetime.combine(filters.end + timedelta(days=1),
                                                     datetime.min.time())),
                      fillcolor="grey", opacity=0.15, line_width=0,
                      annotation_text="provisional", annotation_position="top left")
    fig.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="series")
# two tables a row: three side by side cut their numbers off at 1440 px
left, right = st.columns(2)
# A site whose sessions have no page view (custom events only, or none in these dates) gets
# a sentence, not three tables of headers alone.
NO_PAGE_VIEW = "No page view in these dates and filters."
with left:
    st.subheader("Top pages")
    top = stats(Q.top_pages(filters))
    if top.empty:
        st.info(NO_PAGE_VIEW)
    else:
        if "engagement_daily" in current().warehouse.tables:  # an older warehouse has none
            engaged = query(*Q.report(filters, "engagement"))
            top = top.merge(engaged[["page_path", "avg_engaged_s"]], on="page_path",
                            how="left")
        show_table(top, key="top_pages")
        if "avg_engaged_s" in top.columns:
            st.caption("Engaged time: seconds the page was visible (not a tab in the "
                       "background), per session that had it, on average.")
with right:
    st.subheader("Entry pages")
    entry = stats(Q.entry_pages(filters))
    if entry.empty:
        st.info(NO_PAGE_VIEW)
    else:
        show_table(entry, key="entry_pages")
left, _ = st.columns(2)
with left:
    st.subheader("Exit pages")
    exit_ = stats(Q.exit_pages(filters))
    if exit_.empty:
        st.info(NO_PAGE_VIEW)
    else:
        show_table(exit_, key="exit_pages")
