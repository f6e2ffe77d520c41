"""Funnels: sessions reaching each step of every funnel in funnels.yaml."""

import plotly.graph_objects as go
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import current, frozen, query

st.header("Funnels")
st.caption("Sessions reaching each step, in order (a step counts when it happens at or "
           "after the previous one). Funnels are defined in funnels.yaml.")
funnel = query(Q.FUNNEL, frozen(current().filters, ("start", "end")))
if funnel.empty:
    st.info("No funnel data for these days.")
for name, steps in funnel.groupby("funnel", sort=True):
    st.subheader(name)
    steps = steps.sort_values("step").reset_index(drop=True)
    first = steps.sessions.iloc[0] or 1
    steps["of first step"] = steps.sessions / first
    steps["of previous step"] = steps.sessions / steps.sessions.shift(1).fillna(
        steps.sessions.iloc[0]).replace(0, 1)
    fig = go.Figure(go.Funnel(y=steps.step_name, x=steps.sessions,
                              textinfo="value+percent initial"))
    fig.update_layout(height=360, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key=f"funnel_{name}")
    st.dataframe(steps[["step", "step_name", "sessions", "of first step",
                        "of previous step"]], hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="percent")
                                for c in ("of first step", "of previous step")})
