"""What every view of the dashboard shares: the page config, the warehouse, the frame drawn
before a view (the "no data yet" and "rebuild" notices, the sidebar's date range and filters),
the cached query and the formatting of numbers.

The entrypoint (``app.py``) calls :func:`draw` before it runs the chosen view, so the sidebar
widgets belong to the entrypoint, not to a view: Streamlit keeps a widget's value across pages
only when it is drawn by the entrypoint (a widget drawn in a page gets an id of that page), and
the chosen dates and filters must stay as they are when the reader goes from Overview to Sources.
A view reads what the frame prepared with :func:`current`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from analytics_platform import settings
from analytics_platform.dashboard import queries as Q
from analytics_platform.query.stats import Query

_FRAME = "_frame"  # the session-state key of this run's Frame


@dataclass(frozen=True)
class View:
    """One page of the dashboard and what the frame prepares for it."""

    file: str  # beside this module, in views/
    title: str
    needs_data: bool = True  # a filled warehouse (Realtime reads the raw lake instead)
    needs_current_sessions: bool = True  # sessions with visitor_key (the playground does not)
    filtered: bool = True  # draws the sidebar's dates and filters

    def page(self) -> st.Page:
        return st.Page(Path(__file__).parent / "views" / self.file, title=self.title)


@dataclass
class Frame:
    """What a view gets from the frame: the data folder, its warehouse, the filters chosen
    (``None`` for views without them)."""

    data: Path
    warehouse: Q.Warehouse
    filters: Q.Filters | None


def set_page_config() -> None:
    st.set_page_config(page_title="Analytics", page_icon="📈", layout="wide")


def warehouse_path() -> Path:
    return settings.data_dir() / "warehouse.duckdb"


def draw(view: View) -> Frame:
    """Draw what comes before ``view`` (stopping the run, with how to fix it, when the
    warehouse cannot serve it) and keep it for :func:`current`."""
    data = settings.data_dir()
    wh = Q.Warehouse(warehouse_path())
    if view.needs_data and not wh.ready:
        st.info(
            "**No data yet.** The warehouse is empty or has no sessions. Fill it with two weeks "
            "of simulated traffic:\n\n```sh\nmake demo\n```\n\nor, step by step:\n\n```sh\n"
            "analytics-platform simulate --days 14\nanalytics-platform backfill --from "
            "YYYY-MM-DD --to YYYY-MM-DD\n```"
        )
        st.stop()
    if view.needs_data and view.needs_current_sessions and wh.outdated:
        st.warning(
            "**The sessions were built by an older version** (they have no `visitor_key`). "
            "Rebuild them once, for every day you have:\n\n```sh\nanalytics-platform backfill "
            "--from YYYY-MM-DD --to YYYY-MM-DD\n```"
        )
        st.stop()
    f = Frame(data, wh, sidebar_filters(wh) if view.filtered else None)
    st.session_state[_FRAME] = f
    return f


def current() -> Frame:
    """The frame the entrypoint drew for this run (:func:`draw`)."""
    return st.session_state[_FRAME]


def sidebar_filters(wh: Q.Warehouse) -> Q.Filters:
    """The date range (the last 14 days of the warehouse by default), sources, page, devices."""
    lo, hi = wh.row(Q.RANGE)
    first_default = max(lo, hi - timedelta(days=13))
    picked = st.sidebar.date_input("Dates (UTC)", value=(first_default, hi), min_value=lo,
                                   max_value=hi, key="dates")
    start, end = (picked if isinstance(picked, tuple) and len(picked) == 2
                  else (first_default, hi))
    sources, devices, pages = (list(x) if x is not None else [] for x in query(Q.CHOICES).iloc[0])
    chosen_sources = st.sidebar.multiselect("Source", sources, key="sources")
    page = st.sidebar.selectbox("Page", ["All pages", *pages], key="page")
    chosen_devices = st.sidebar.multiselect("Device", devices, key="devices")
    return Q.Filters(start, end, tuple(chosen_sources), tuple(chosen_devices),
                     None if page == "All pages" else page)


@st.cache_data(ttl=30, show_spinner=False)
def _cached_df(path: str, sql: str, params: tuple) -> pd.DataFrame:
    return Q.Warehouse(Path(path)).df(sql, dict(params))


def query(sql: str, params: tuple = ()) -> pd.DataFrame:
    """``sql`` on the warehouse, cached for 30 s: the page stays quick on millions of events,
    and new data shows soon."""
    return _cached_df(str(warehouse_path()), sql, params)


@st.cache_data(ttl=30, show_spinner=False)
def _cached_table(path: str, q: Query) -> pd.DataFrame:
    return Q.table(Q.Warehouse(Path(path)), q)


def stats(q: Query) -> pd.DataFrame:
    """A panel's query through the query layer the API shares (``Q.kpis(filters)`` …), with
    the dashboard's column names, cached for 30 s like :func:`query`."""
    return _cached_table(str(warehouse_path()), q)


def frozen(f: Q.Filters, keys: tuple[str, ...] | None = None) -> tuple:
    """The filters as query parameters, hashable (for the cache); ``keys`` keeps only those."""
    items = f.params()
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in items.items()
                 if keys is None or k in keys)


def pct(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.1%}"


def change(now: float | None, before: float | None, points: bool = False) -> str | None:
    """A metric's delta against the period before: relative, or in percentage points."""
    if now is None or before is None or pd.isna(now) or pd.isna(before):
        return None
    if points:
        return f"{(now - before) * 100:+.1f} pts"
    return f"{(now - before) / before:+.1%}" if before else None


def duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    m, s = divmod(round(seconds), 60)
    return f"{m}m {s:02d}s"


def consent_coverage() -> str:
    """The caption of a view that counts consented visitors only (cohorts, retention, first
    touch): how much of the traffic that is, over all history (CONTRACT §4–5)."""
    if "kpis_daily" not in current().warehouse.tables:
        return ""
    try:
        row = query(Q.CONSENT_COVERAGE)
    except duckdb.Error:  # a warehouse written before kpis_daily had consented_sessions
        return ""
    if row.empty or not row.sessions.iloc[0]:
        return ""
    consented, sessions = int(row.consented_sessions.iloc[0]), int(row.sessions.iloc[0])
    return (f"Counts consented visitors only: {consented / sessions:.0%} of sessions "
            f"({consented:,} of {sessions:,}, all history) had a consented visitor id; the "
            "others cannot be recognised on a later day (docs/PRIVACY.md).")
