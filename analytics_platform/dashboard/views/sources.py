"""Sources: sessions and conversions by source / medium / campaign against the period before,
and first vs last touch of the visitors who converted."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import (
    comparison,
    consent_coverage,
    current,
    header,
    query,
    show_table,
    stats,
    with_change,
)

frame = current()
filters = header("Sources")
src = stats(Q.sources(filters))
before = stats(Q.sources(filters.previous()))
if src.empty:
    st.info("No sessions match these filters.")
else:
    by_source = src.groupby("source", as_index=False)[["sessions", "conversions"]].sum()
    by_source["conversion_rate"] = by_source.conversions / by_source.sessions
    # the scale starts at a mid blue, not white: a source that never converted stays visible
    fig = px.bar(by_source.sort_values("sessions", ascending=False).head(12), x="source",
                 y="sessions", color="conversion_rate",
                 color_continuous_scale=px.colors.sequential.Blues[3:],
                 labels={"conversion_rate": "conversion rate", "sessions": "sessions",
                         "source": "source"})
    fig.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      coloraxis_colorbar={"tickformat": ".0%"})
    fig.update_traces(hovertemplate="%{x}<br>%{y:,} sessions<br>%{marker.color:.1%} converted"
                                    "<extra></extra>")
    st.plotly_chart(fig, width="stretch", key="sources_chart")
    table = with_change(src, before, ["source", "medium", "campaign"])
    show_table(table, ["source", "medium", "campaign", "sessions", "change", "visitors",
                       "conversions", "conversion_rate"], key="sources_table")
    st.caption("“vs before”: sessions against the same source / medium / campaign in the "
               "period before. " + comparison(filters, before.sessions.sum()))
st.subheader("First touch vs last touch")
st.caption("The visitors whose first conversion happened in these dates, in a session that "
           "matches the filters: each counts once for the source of their first session ever "
           "(first touch, whatever its date) and once for that converting session (last "
           "touch).")
coverage = consent_coverage()
if coverage:
    st.caption(coverage)
touch = query(*Q.touch(filters))
if touch.empty:
    st.info("No consented visitor converted in these dates with these filters.")
else:
    top = touch.head(10).assign(label=lambda d: d.source + " / " + d.medium)
    fig = go.Figure([
        go.Bar(name="first touch", x=top.label, y=top.first_touch_conversions),
        go.Bar(name="last touch", x=top.label, y=top.last_touch_conversions),
    ])
    fig.update_layout(barmode="group", height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      yaxis_title="converting visitors")
    st.plotly_chart(fig, width="stretch", key="touch_chart")
    show_table(touch, key="touch_table")
