"""Cohorts: weekly retention of visitors by the week of their first session."""

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import consent_coverage, current, query

st.header("Cohorts · weekly retention")
st.caption("Visitors grouped by the week (Monday) of their first session; each cell is the "
           "share seen again that many weeks later (all history).")
coverage = consent_coverage()
if coverage:
    st.caption(coverage)
cohorts = query(Q.COHORTS) if "cohort_retention" in current().warehouse.tables else pd.DataFrame()
if cohorts.empty:
    st.info("No cohorts yet.")
else:
    grid = cohorts.pivot(index="cohort_week", columns="week_offset", values="retention")
    grid.index = [f"{d:%Y-%m-%d} ({n:,})" for d, n in
                  cohorts.groupby("cohort_week").cohort_size.first().items()]
    fig = px.imshow(grid, text_auto=".0%", color_continuous_scale="Blues", aspect="auto",
                    labels={"x": "weeks later", "y": "cohort (visitors)", "color": "retention"})
    fig.update_layout(height=120 + 40 * len(grid), margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="cohorts")
