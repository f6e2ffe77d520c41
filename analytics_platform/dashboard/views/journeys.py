"""Journeys: the most common paths of 2–5 pages from an entry page, as a Sankey diagram, from
journeys_daily only (its k threshold, CONTRACT §5)."""

import plotly.graph_objects as go
import streamlit as st

from analytics_platform import settings
from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import header, missing_mart, query, show_table
from analytics_platform.text import plural

BRANCHES = 8  # the most taken next pages drawn from each page of a path

filters = header("Journeys")
k = settings.journey_min_visitors()
st.caption(f"**Privacy:** a path is shown only if at least k = {k} different visitors took it "
           "on one day (`ANALYTICS_JOURNEY_MIN_VISITORS`): a path fewer people took is never "
           "published, so it cannot single anyone out. A range's count is the sum of its days' "
           "published counts, so rare paths are missing and the counts are lower bounds. A "
           "reload of the same page counts once.")
if not missing_mart("journeys_daily"):
    entries = query(Q.JOURNEY_ENTRIES, {"start": filters.start, "end": filters.end})
    if entries.empty:
        st.info(f"No path of these days was taken by {k} visitors or more.")
    else:
        counts = entries.set_index("entry_page").sessions
        entry = st.selectbox("Entry page", list(entries.entry_page), key="journey_entry",
                             format_func=lambda p: f"{p} ({plural(int(counts[p]), 'session')})")
        paths = query(Q.JOURNEYS, {"start": filters.start, "end": filters.end, "entry": entry})
        paths["node"] = paths.path.map(tuple)
        paths["parent"] = paths.node.map(lambda p: p[:-1])
        # a tree: a node is a path prefix (the same page after different paths is two nodes,
        # so a flow never joins sessions that came different ways)
        keep = {(entry,)}
        for steps in range(2, 6):
            level = paths[(paths.steps == steps) & paths.parent.isin(keep)]
            top = level.sort_values("sessions", ascending=False).groupby("parent").head(BRANCHES)
            keep |= set(top.node)
        shown = paths[paths.node.isin(keep)]
        # one column per step, whatever the path's length; in a column, each page under the
        # page it came from, most taken first, spaced by its sessions
        size = dict(zip(shown.node, shown.sessions, strict=True))
        size[(entry,)] = sum(v for p, v in size.items() if len(p) == 2)
        y: dict[tuple, float] = {(entry,): 0.5}
        for depth in range(2, 6):
            column = sorted((p for p in keep if len(p) == depth),
                            key=lambda p: (y[p[:-1]], -size[p]))
            below = 0.0
            for p in column:
                y[p] = min(0.999, max(0.001, (below + size[p] / 2) / size[(entry,)]))
                below += size[p]
        nodes = sorted(keep, key=lambda p: (len(p), y[p]))
        index = {p: i for i, p in enumerate(nodes)}
        fig = go.Figure(go.Sankey(
            arrangement="snap",
            node={"label": [p[-1] for p in nodes], "pad": 12, "thickness": 14,
                  "x": [0.001 + 0.998 * (len(p) - 1) / 4 for p in nodes],
                  "y": [y[p] for p in nodes]},
            link={"source": [index[p] for p in shown.parent],
                  "target": [index[p] for p in shown.node],
                  "value": list(shown.sessions)}))
        fig.update_layout(height=520, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key="journeys_sankey")
        st.caption(f"Up to {BRANCHES} next pages from each page, most taken first; a link's "
                   "width is the sessions whose visit began with that path.")
        table = paths.assign(path=paths.path.map(" → ".join)).sort_values(
            ["sessions", "steps"], ascending=[False, True])
        show_table(table, ["path", "steps", "sessions"], key="journeys_table")
