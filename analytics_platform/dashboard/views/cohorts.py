"""Cohorts: weekly retention of the visitors whose first session falls in the dates and
matches the filters, with the weeks not over yet marked."""

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import consent_coverage, current, header, query

frame = current()
filters = header("Cohorts · weekly retention")
st.caption("Visitors whose first session ever falls in these dates and matches the filters "
           "(acquired from that source, on that device…), grouped by the week (Monday) of "
           "that session; each cell is the share of them seen again that many weeks later, in "
           "any session.")
coverage = consent_coverage()
if coverage:
    st.caption(coverage)
cohorts = query(*Q.cohorts(filters))
if cohorts.empty:
    st.info("No consented visitor had a first session in these dates with these filters.")
else:
    cohorts["cohort_week"] = pd.to_datetime(cohorts.cohort_week).dt.date
    last = frame.last_day  # the last day with data: its week is not over unless a Sunday
    first = frame.first_day

    def partial(week: object, offset: int) -> bool:
        """The week of that cell is not over in the data."""
        return week + timedelta(weeks=int(offset), days=6) > last

    grid = cohorts.pivot(index="cohort_week", columns="week_offset", values="retention")
    # the mart has a row only where someone came back: a week the data covers with no one back
    # is 0 %, not blank; weeks after the data's last one stay blank (NaN). Every offset up to
    # the first cohort's last is a column, even one where no cohort had anyone back.
    span = (last - min(grid.index)).days // 7
    grid = grid.reindex(columns=range(max(span, int(max(grid.columns))) + 1))
    for w in grid.index:
        began = [o for o in grid.columns if w + timedelta(weeks=int(o)) <= last]
        grid.loc[w, began] = grid.loc[w, began].fillna(0.0)
    marks = pd.DataFrame([[partial(w, o) for o in grid.columns] for w in grid.index],
                         index=grid.index, columns=grid.columns)
    text = [[("" if pd.isna(v) else f"{v:.0%}" + ("*" if m else ""))
             for v, m in zip(row, mrow, strict=True)]
            for row, mrow in zip(grid.values, marks.values, strict=True)]
    sizes = cohorts.groupby("cohort_week").cohort_size.first()
    labels = [f"{d:%Y-%m-%d} ({sizes[d]:,})" for d in grid.index]
    fig = go.Figure(go.Heatmap(
        z=grid.values, x=[str(int(c)) for c in grid.columns], y=labels, text=text,
        texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": "retention", "tickformat": ".0%"},
        hovertemplate="cohort %{y}<br>%{x} weeks later: %{z:.1%}<extra></extra>"))
    fig.update_layout(height=140 + 40 * len(grid), margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      xaxis={"title": "weeks later", "type": "category"},
                      yaxis={"title": "cohort (visitors)", "autorange": "reversed"})
    st.plotly_chart(fig, width="stretch", key="cohorts")
    sunday = last + timedelta(days=6 - last.weekday())
    notes = []
    if marks.values.any():
        notes.append(f"\\* a partial week: the data ends on {last:%a %d %b} (that week ends "
                     f"{sunday:%a %d %b}), so its share will still grow; it is not a drop in "
                     "retention.")
    begin = max(filters.start, first)
    if begin.weekday():
        notes.append(f"The first cohort holds visitors first seen from {begin:%a %d %b} only "
                     "(the dates or the data begin mid-week).")
    st.caption(" ".join(notes) or "Every week shown is complete.")
