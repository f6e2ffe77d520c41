"""Goals: conversions and conversion rate per goal of goals.yaml, and per source, against the
period before."""

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import comparison, header, missing_mart, query, show_table
from analytics_platform.query.stats import configured_goals

filters = header("Goals")
st.caption("A session converts on a goal when one of its events completes it (goals.yaml: an "
           "event type, optionally a page or a property). Conversion rate: converted sessions "
           "/ sessions.")


def goal_rows(f: Q.Filters) -> pd.DataFrame:
    """Per goal and source; from goals_daily when only its own filters are set."""
    if set(f.chosen()) <= Q.GOALS_MART_FILTERS:
        return query(*Q.goals_from_mart(f))
    return query(*Q.goals(f))


if not missing_mart("goals_daily"):
    now, before = goal_rows(filters), goal_rows(filters.previous())
    order = {g: i for i, g in enumerate(configured_goals())}
    if now.empty:
        st.info("No sessions match these filters.")
    else:
        def per_goal(df: pd.DataFrame) -> pd.DataFrame:
            g = df.groupby("goal", as_index=False)[["sessions", "conversions", "events"]].sum()
            g["conversion_rate"] = g.conversions / g.sessions
            return g

        goals = per_goal(now)
        goals = goals.sort_values("goal", key=lambda s: s.map(lambda g: order.get(g, 99)))
        prev = per_goal(before).set_index("goal").conversion_rate if len(before) else {}
        goals["change_pts"] = [(r - prev[g]) * 100 if g in prev else float("nan")
                               for g, r in zip(goals.goal, goals.conversion_rate, strict=True)]
        fig = px.bar(goals, x="conversion_rate", y="goal", orientation="h",
                     text=goals.conversion_rate.map(lambda r: f"{r:.1%}"),
                     labels={"conversion_rate": "conversion rate", "goal": ""})
        fig.update_layout(height=80 + 36 * len(goals), margin={"l": 0, "r": 0, "t": 10, "b": 0},
                          xaxis_tickformat=".0%", yaxis={"autorange": "reversed"})
        st.plotly_chart(fig, width="stretch", key="goals_chart")
        show_table(goals, ["goal", "conversions", "conversion_rate", "change_pts", "sessions",
                           "events"], key="goals_table")
        st.caption("“vs before (pts)”: the conversion rate against the period before, in "
                   "percentage points. " + comparison(filters, before.sessions.sum()
                                                      / max(len(order), 1)))
        st.subheader("By source")
        goal = st.selectbox("Goal", list(goals.goal), key="goal_by_source")
        rows = now[now.goal == goal].sort_values(["conversions", "sessions"],
                                                 ascending=False)
        show_table(rows, ["source", "sessions", "conversions", "conversion_rate"],
                   key="goals_by_source")
