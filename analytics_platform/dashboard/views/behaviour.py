"""Behaviour: what visitors did beyond page views: the links to other sites they followed
(outbound_daily), the files they downloaded (downloads_daily) and the pages the site marked as
not found, with the page that linked to them (not_found_daily), against the period before."""

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import (
    comparison,
    header,
    missing_mart,
    query,
    show_table,
    stats,
    with_change,
)

filters = header("Behaviour")
st.caption("Counted from the tracker's own events (CONTRACT §1): a click on a link to another "
           "site (its host only, never the path or query), a click on a file of a listed type, "
           "a page the site marks as not found. A session counts once per row however often "
           "it clicked.")


def rows(name: str, keys: list[str]) -> pd.DataFrame:
    """The report's rows, with the change of its count (the column after ``keys``)."""
    now = query(*Q.report(filters, name))
    before = query(*Q.report(filters.previous(), name))
    return with_change(now, before, keys, col=now.columns[len(keys)])


def bars(df: pd.DataFrame, x: str, y: str, label: str, key: str) -> None:
    """A horizontal bar per row, the largest on top, as tall as its rows need."""
    fig = px.bar(df, x=x, y=y, orientation="h", labels={y: "", x: label})
    fig.update_layout(height=60 + 26 * len(df), margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      yaxis={"autorange": "reversed"})
    st.plotly_chart(fig, width="stretch", key=key)


if not any(missing_mart(m) for m in ("outbound_daily", "downloads_daily", "not_found_daily")):
    left, right = st.columns(2)
    with left:
        st.subheader("Outbound links")
        links = rows("outbound", ["host"])
        if links.empty:
            st.info("No clicks on links to other sites in these sessions.")
        else:
            bars(links.head(10), "clicks", "host", "clicks", "outbound_chart")
            show_table(links, ["host", "clicks", "change", "sessions"], key="outbound_table")
    with right:
        st.subheader("Downloads")
        files = rows("downloads", ["ext", "file"])
        if files.empty:
            st.info("No downloads in these sessions.")
        else:
            by_type = files.groupby("ext", as_index=False).downloads.sum().sort_values(
                "downloads", ascending=False)
            bars(by_type, "downloads", "ext", "downloads by file type", "downloads_chart")
            show_table(files, ["file", "ext", "downloads", "change", "sessions"],
                       key="downloads_table")
    st.subheader("Pages not found (404)")
    missing = rows("not_found", ["page_path", "referrer"])
    if missing.empty:
        st.info("No page marked as not found was visited in these sessions.")
    else:
        st.caption("“Linked from”: the page of this site whose link led there (fix the link), "
                   "else the other site's host, else (direct): typed or bookmarked.")
        show_table(missing, ["page_path", "referrer", "hits", "change", "sessions"],
                   key="not_found_table")
    before_sessions = stats(Q.kpis(filters.previous())).sessions.iloc[0]
    st.caption("“vs before”: clicks, downloads or hits against the period before. "
               + comparison(filters, before_sessions))
