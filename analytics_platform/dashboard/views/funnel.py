"""Funnels: sessions reaching each step of every funnel in funnels.yaml, against the period
before."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import comparison, header, query, show_table

filters = header("Funnels")
st.caption("Sessions reaching each step, in order (a step counts when it happens at or "
           "after the previous one), of the sessions the filters keep. Funnels are defined in "
           "funnels.yaml.")


def funnel_steps(f: Q.Filters) -> dict[str, pd.DataFrame]:
    """Each funnel's steps: from funnel_daily when only dates are chosen (the mart is per
    day), else counted over the filtered sessions with the mart's own SQL."""
    if f.only_dates():
        rows = query(Q.FUNNEL, {"start": f.start, "end": f.end})
        return {name: d for name, d in rows.groupby("funnel", sort=False)}
    return {name: query(sql, params, setup) for name, sql, params, setup in Q.funnels(f)}


shown = False
previous = funnel_steps(filters.previous())
for name, steps in funnel_steps(filters).items():
    steps = steps.sort_values("step").reset_index(drop=True)
    before = previous.get(name, pd.DataFrame(columns=["step", "sessions"]))
    if steps.empty or not steps.sessions.iloc[0]:
        continue
    shown = True
    st.subheader(name)
    first = steps.sessions.iloc[0]
    steps["of first step"] = steps.sessions / first
    steps["of previous step"] = steps.sessions / steps.sessions.shift(1).fillna(first).replace(
        0, float("nan"))
    prev = before.set_index("step").sessions if len(before) else pd.Series(dtype=float)
    prev_first = prev.get(1, 0)
    steps["before"] = [prev.get(k, 0) / prev_first if prev_first else float("nan")
                       for k in steps.step]
    steps["change"] = steps["of first step"] - steps["before"]
    fig = go.Figure(go.Funnel(y=steps.step_name, x=steps.sessions,
                              textinfo="value+percent initial"))
    fig.update_layout(height=360, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key=f"funnel_{name}")
    show_table(steps.rename(columns={"change": "change_pts"}).assign(
        change_pts=lambda d: d.change_pts * 100),
        ["step", "step_name", "sessions", "of first step", "of previous step", "change_pts"],
        key=f"funnel_table_{name}")
    st.caption("“Change pts”: the share of the first step reaching the step, in percentage "
               "points against the period before. "
               + comparison(filters, prev_first))
if not shown:
    st.info("No session of these days and filters reached a funnel's first step.")
