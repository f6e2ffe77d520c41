"""What every view of the dashboard shares: the page config, the warehouse, the frame drawn
before a view (the "no data yet" and "rebuild" notices, the sidebar's date range and filters,
kept in the page's address), the cached query, the header that says what is counted, and the
formatting of numbers and tables.

The entrypoint (``app.py``) calls :func:`draw` before it runs the chosen view, so the sidebar
widgets belong to the entrypoint, not to a view: Streamlit keeps a widget's value across pages
only when it is drawn by the entrypoint (a widget drawn in a page gets an id of that page), and
the chosen dates and filters must stay as they are when the reader goes from Overview to Sources.
They are drawn on every view, even one they do not apply to (Streamlit forgets the value of a
widget a run does not draw), and written to the address (``?from=…&to=…&source=…``) on every
run, so a view can be bookmarked and shared; an address opened later sets them (see
:func:`keep_address` and :func:`sidebar_filters` for why a click during the first run cannot
lose them). A view says
which filters it cannot honour and why (:attr:`View.off`): the frame clears those before the
view sees them and shows them as off, with the reason, beside the others. A view reads what the
frame prepared with :func:`current`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from analytics_platform import settings
from analytics_platform.dashboard import queries as Q
from analytics_platform.query.stats import Query, configured_goals, freeze

_FRAME = "_frame"  # the session-state key of this run's Frame
_ADDRESS = "_address"  # the query parameters the session opened with (keep_address)
_CHOSEN = "_chosen"  # the sidebar's values by widget key: the session's own record of them
_IGNORED = "_ignored"  # what the address asked for that the warehouse cannot apply
DATES = "dates"  # the date range, in View.off (the other keys: Q.FILTERS' field names)
ALL_FILTERS = frozenset({DATES, *(name for name, _, _ in Q.FILTERS)})
ANY_PAGE, ANY_GOAL = "All pages", "Any (no goal filter)"


@dataclass(frozen=True)
class View:
    """One page of the dashboard and what the frame prepares for it."""

    file: str  # beside this module, in views/
    title: str
    needs_data: bool = True  # a filled warehouse (Realtime reads the raw lake instead)
    needs_current_sessions: bool = True  # sessions with visitor_key (the playground does not)
    # filters (Q.FILTERS' field names, or DATES) this view cannot honour → why
    off: dict[str, str] = field(default_factory=dict)

    def page(self) -> st.Page:
        return st.Page(Path(__file__).parent / "views" / self.file, title=self.title)


def all_off(reason: str) -> dict[str, str]:
    return {name: reason for name in ALL_FILTERS}


@dataclass
class Frame:
    """What a view gets from the frame: the data folder, its warehouse, the filters that apply
    to it (``None`` when the warehouse has no sessions yet), all the filters chosen, and the
    warehouse's first and last session dates."""

    data: Path
    warehouse: Q.Warehouse
    filters: Q.Filters | None
    view: View
    chosen: Q.Filters | None = None
    first_day: date | None = None
    last_day: date | None = None


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
        st.info(no_data_yet())
        st.stop()
    if view.needs_data and view.needs_current_sessions and wh.outdated:
        st.warning(
            "**The sessions were built by an older version** (they have no `visitor_key`). "
            "Rebuild them once, for every day you have:\n\n```sh\nanalytics-platform backfill "
            "--from YYYY-MM-DD --to YYYY-MM-DD\n```"
        )
        st.stop()
    f = Frame(data, wh, None, view)
    if wh.ready:
        f.first_day, f.last_day = wh.row(Q.RANGE)
        f.chosen = sidebar_filters(wh, view, f.first_day, f.last_day)
        f.filters = f.chosen.without(set(view.off) - {DATES})
    st.session_state[_FRAME] = f
    return f


@st.cache_data(ttl=30, show_spinner=False)
def _raw_has_objects(url: str) -> bool | None:
    # imported here: only a dashboard without sessions asks (the API's module and its imports)
    from analytics_platform.api.app import raw_lake_has_objects

    return raw_lake_has_objects(url)


def no_data_yet() -> str:
    """What a view says when the warehouse has no sessions: that events came and when the
    pipeline counts them, when the raw lake holds some (bots only, or the first hour of a
    deployment); how to get data when it holds none. Simulated traffic (``make demo``,
    ``simulate``) is offered only then: written into a deployment's raw lake it would be
    counted as its visitors."""
    url = settings.raw_url()
    received = _raw_has_objects(url)
    when = (f"With the pipeline running (`analytics-platform serve`), a new raw object is "
            f"counted within minutes, and every hour at the latest at "
            f":{settings.schedule_minute():02d} past the next. Events from bots and quarantined "
            "events (CONTRACT §3) are dropped, so traffic of bots alone makes no session. "
            "Realtime shows what arrived in the last 30 minutes.")
    if received:
        return ("**No sessions yet, but events have been received** (in `" + url + "`). "
                + when)
    if received is None:  # the lake could not be listed (the log says why): no advice to
        # write simulated traffic into what may be a deployment's lake
        return ("**No sessions yet.** Whether events have been received is unknown: the raw "
                "lake `" + url + "` could not be listed. " + when)
    return (
        "**No data yet.** The warehouse is empty or has no sessions, and no event has been "
        "received. Point the tracker at the collector (docs/INGEST.md), or try the dashboard "
        "on two weeks of simulated traffic in a folder of its own (not a deployment's raw "
        "lake: they would be counted as visits):\n\n```sh\nmake demo\n```\n\nor, step by "
        "step:\n\n```sh\nanalytics-platform simulate --days 14\nanalytics-platform backfill "
        "--from YYYY-MM-DD --to YYYY-MM-DD\n```")


def current() -> Frame:
    """The frame the entrypoint drew for this run (:func:`draw`)."""
    return st.session_state[_FRAME]


# --- the sidebar's filters, in the address --------------------------------------------------------

def has_column(table: str, column: str) -> bool:
    """Whether the warehouse's ``table`` has ``column`` (a newer pipeline adds columns)."""
    cols = query("SELECT column_name FROM duckdb_columns() WHERE table_name = $t",
                 {"t": table})
    return column in set(cols.column_name)


NO_PAGE_VIEW = "no page view of it in this warehouse"
TOP_PAGES_HELP = ("Sessions that viewed the page. The list holds the 200 most viewed pages; type "
                  "any other page's path (e.g. /blog/post) to filter on it.")


def page_viewed(page: str) -> bool:
    """Whether the warehouse has a page view of ``page`` (in pages_daily, which the choices'
    pages come from, so a page of the list and a page checked here mean the same). Asked only
    for a page the 200 choices lack, so a page view costs no query more (issue 21)."""
    return bool(query("SELECT count(*) > 0 AS viewed FROM pages_daily WHERE page_path = $p",
                      {"p": page}).viewed.iloc[0])


def _asked_pages() -> list[str]:
    """The pages this run may filter on: the page widget's value (the reader's choice, typed
    or picked, or the kept one), the kept one, or on a session's first run the address's."""
    if _CHOSEN in st.session_state:
        asked = [st.session_state.get("page"), st.session_state[_CHOSEN].get("page")]
    else:
        keep_address()
        asked = list(st.session_state[_ADDRESS].get("page", []))
    return list(dict.fromkeys(p for p in asked if isinstance(p, str) and p != ANY_PAGE))


COUNTRY_MISSING = ("Not in this warehouse yet: its sessions have no country (CONTRACT §4); "
                   "backfill with the current version to add it.")
NO_COUNTRY_YET = ("No session has a country yet: it comes from the visitor's time zone (the "
                  "tracker sends it; Plausible's /api/event does not) or CloudFront's header "
                  "(CONTRACT §2).")


def keep_address() -> None:
    """Keep the query parameters the session opened with, once, before the navigation is drawn.

    A click on the navigation starts a run of the new page at once (Streamlit's
    ``runner.fastReruns``), beside the run under way, which stops at its next ``st`` call
    (every ``st.session_state`` access is one), and with an address Streamlit has emptied (it
    carries only parameters bound to widgets). A click before the first run's sidebar had read
    the address lost a shared link's dates and filters (test_dashboard's held-run test shows
    it). Nothing can be clicked before the navigation is drawn, so the address kept here is
    there for whichever run draws the sidebar.
    """
    if _ADDRESS not in st.session_state:
        qp = st.query_params
        st.session_state[_ADDRESS] = {k: qp.get_all(k) for k in qp}


def _from_address(address: dict[str, list[str]], lo: date, hi: date,
                  options: dict[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """The sidebar's values an address (query parameter → values) sets, by widget key, and
    what it asks for that cannot be used, to be said."""
    one = {k: v[-1] for k, v in address.items() if v}
    values: dict[str, Any] = {}
    ignored = []
    try:
        start = date.fromisoformat(one["from"]) if "from" in one else None
        end = date.fromisoformat(one["to"]) if "to" in one else None
    except ValueError:
        ignored.append(f"dates {one.get('from')} – {one.get('to')} (not YYYY-MM-DD)")
        start = end = None
    if start or end:
        start, end = max(lo, start or lo), min(hi, end or hi)
        if start <= end:
            values[DATES] = (start, end)
        else:
            ignored.append(f"dates {one.get('from')} – {one.get('to')} (no data then)")
    for name, param, label in Q.FILTERS:
        asked = address.get(param, [])
        known = [v for v in asked if v in options[name]]
        # a page is among the options when it has a page view at all (sidebar_filters), so
        # one that is not has none: say that, not that it is missing from a list of choices
        why = ("this warehouse has no country yet" if name == "countries" and not options[name]
               else NO_PAGE_VIEW if name == "page" else "not in this warehouse")
        ignored += [f"{label.lower()} “{v}” ({why})" for v in asked if v not in options[name]]
        if known:
            values[name] = known[0] if name in ("page", "goal") else known
    return values, ignored


def _valid(key: str, value: Any, lo: date, hi: date, opts: dict[str, list[str]]) -> Any:
    """``value`` as the widget ``key`` can show it now: the warehouse's range and the options
    can change under a session (a backfill, a file swapped in)."""
    if key == DATES:
        return tuple(min(hi, max(lo, d)) for d in value)
    if key == "page":
        return value if value in opts["page"] else ANY_PAGE
    if key == "goal":
        return value if value in opts["goal"] else ANY_GOAL
    return [v for v in value if v in opts[key]]


def _kept_values(lo: date, hi: date, opts: dict[str, list[str]]) -> dict[str, Any]:
    """The sidebar's values this session chose, by widget key, kept in plain session state and
    written into the widgets before they are drawn, on every run.

    The widgets' own state is not enough. A run interrupted by a click (see
    :func:`keep_address`) may have set a widget's value without the browser ever getting it:
    the next run drew the widget with its old value, not re-sent, so the browser showed "no
    device" beside a page filtered on desktop, and sent that back with the next click, which
    dropped the filter (CI's browser test: Overview kept ``device=desktop``, Sources did not).
    Written on every run, the value goes with every widget drawn.

    A value the browser sends that differs from the kept one is the reader's change, taken on;
    compared at every run, not in an ``on_change`` callback, which a click can cut off too.
    The kept values are written whole, in one write, so a run stopped part way leaves them
    as they were (or not set: the next run sets them from the kept address)."""
    if _CHOSEN not in st.session_state:
        keep_address()
        values, ignored = _from_address(st.session_state[_ADDRESS], lo, hi, opts)
        st.session_state[_IGNORED] = ignored
        st.session_state[_CHOSEN] = {
            DATES: (max(lo, hi - timedelta(days=13)), hi), "page": ANY_PAGE, "goal": ANY_GOAL,
            **{name: [] for name, _, _ in Q.FILTERS if name not in ("page", "goal")},
            **values}
    kept: dict[str, Any] = dict(st.session_state[_CHOSEN])
    for key in kept:
        if key in st.session_state and st.session_state[key] != kept[key]:
            kept[key] = st.session_state[key]
        kept[key] = _valid(key, kept[key], lo, hi, opts)
    st.session_state[_CHOSEN] = kept
    for key, value in kept.items():
        st.session_state[key] = value
    return kept


def _listed(value: Any) -> list[str]:
    """A list column's value as a list: [] for NULL, which pandas gives as None or pd.NA (the
    choices' SQL coalesces its lists, but a warehouse's query is not the only way here: a
    NULL here stopped every page of a small site, TypeError: 'NAType' object is not iterable)."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return []
    return [v for v in value if isinstance(v, str)]


def sidebar_filters(wh: Q.Warehouse, view: View, lo: date, hi: date) -> Q.Filters:
    """The date range (the last 14 days of the warehouse by default) and the filters, read
    from the address on a session's first run and written back to it on every run."""
    choices = query(Q.CHOICES).iloc[0]
    opts: dict[str, list[str]] = {
        name: _listed(choices[col])
        for name, col in (("sources", "sources"), ("mediums", "mediums"),
                          ("campaigns", "campaigns"), ("devices", "devices"),
                          ("browsers", "browsers"), ("page", "pages"))}
    country = has_column("sessions", "country")
    opts["countries"] = (_listed(query(Q.COUNTRY_CHOICES).countries.iloc[0]) if country
                         else [])
    opts["goal"] = list(configured_goals())
    # A page outside the 200 choices (a shared link's, a typed one) joins them when the
    # warehouse has a view of it: the address applies it, the selectbox can show it.
    unknown = []
    for page in _asked_pages():
        if page not in opts["page"]:
            if page_viewed(page):
                opts["page"].append(page)
            else:
                unknown.append(page)
    sb = st.sidebar
    first_run = _CHOSEN not in st.session_state
    _kept_values(lo, hi, opts)
    if unknown and not first_run:  # typed by the reader (the address's are said below)
        sb.warning("Page filter not applied: " + "; ".join(
            f"“{p}” ({NO_PAGE_VIEW})" for p in unknown))
    if st.session_state.get(_IGNORED):
        sb.warning("Not applied from the address: " + "; ".join(st.session_state[_IGNORED]))
    first_default = max(lo, hi - timedelta(days=13))
    picked = sb.date_input("Dates (UTC)", min_value=lo, max_value=hi, key=DATES)
    start, end = (picked if isinstance(picked, tuple) and len(picked) == 2
                  else (first_default, hi))
    values: dict[str, Any] = {}
    for name, _, label in Q.FILTERS:
        if name == "page":
            v = sb.selectbox(label, [ANY_PAGE, *opts["page"]], key=name,
                             accept_new_options=True, help=TOP_PAGES_HELP)
            values[name] = None if v == ANY_PAGE else v
        elif name == "goal":
            v = sb.selectbox(label, [ANY_GOAL, *opts["goal"]], key=name,
                             help="Sessions with an event that completes the goal (goals.yaml)")
            values[name] = None if v == ANY_GOAL else v
        elif name == "countries" and not opts["countries"]:
            sb.multiselect(label, [], key=name, disabled=True,
                           help=COUNTRY_MISSING if not country else NO_COUNTRY_YET,
                           placeholder="not in this warehouse yet" if not country
                           else "no session has one yet")
            values[name] = ()
        else:
            values[name] = tuple(sb.multiselect(label, opts[name], key=name))
    chosen = Q.Filters(start, end, **values)
    _to_address(chosen)
    off = {k: r for k, r in view.off.items()}
    if off:
        names = ["dates" if k == DATES else Q.LABELS[k].lower() for k in sorted(off)]
        reasons = dict.fromkeys(off.values())
        sb.caption(f"**Off on {view.title}:** {', '.join(names)}. " + " ".join(reasons))
    return chosen


def _to_address(f: Q.Filters) -> None:
    params: dict[str, Any] = {"from": f.start.isoformat(), "to": f.end.isoformat()}
    for name, param, _ in Q.FILTERS:
        v = getattr(f, name)
        if v:
            params[param] = list(v) if isinstance(v, tuple) else v
    have = {k: st.query_params.get_all(k) for k in st.query_params}
    if have != {k: (v if isinstance(v, list) else [v]) for k, v in params.items()}:
        st.query_params.from_dict(params)


# --- the header: what the numbers below count ----------------------------------------------------

def header(title: str, dated: bool = True) -> Q.Filters | None:
    """The view's title and, under it, the date range and filters its numbers follow, the
    filters set but off here (with why), and whether the numbers are still provisional."""
    f = current()
    filters = f.filters
    if filters is None:
        st.header(title)
        return None
    dates = (f"{filters.start:%d %b} – {filters.end:%d %b %Y}" if filters.days > 1
             else f"{filters.start:%d %b %Y}")
    st.header(f"{title} · {dates}" if dated and DATES not in f.view.off else title)
    applied = [f"{Q.LABELS[k]}: {v}" for k, v in filters.chosen().items()]
    if applied:
        st.caption("Filtered: " + " · ".join(applied))
    off = {k: v for k, v in (f.chosen.chosen() if f.chosen else {}).items() if k in f.view.off}
    by_reason: dict[str, list[str]] = {}
    for k, v in off.items():
        by_reason.setdefault(f.view.off[k], []).append(f"{Q.LABELS[k].lower()} ({v})")
    for reason, names in by_reason.items():
        st.warning(f"Not applied on this view: {', '.join(names)}. {reason}")
    if DATES not in f.view.off:
        note = provisional(filters.start, filters.end)
        if note:
            st.caption(note)
    return filters


def final_from(day: date) -> datetime:
    """When ``day``'s sessions stop changing (CONTRACT §4, "Late events"): once the raw hours
    through D + 1 day + late_arrival_hours (the end of its window, partitions.session_window,
    not imported: the dashboard never loads Dagster) are processed, the last of them at
    :schedule_minute past the hour after it (01:10 two days later with the defaults)."""
    window_end = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
        days=1, hours=settings.late_arrival_hours())
    return window_end + timedelta(hours=1, minutes=settings.schedule_minute())


def provisional_days(start: date, end: date, now: datetime | None = None) -> list[date]:
    """The days of ``start`` – ``end`` whose numbers may still change at ``now``: a day whose
    window has not closed yet (:func:`final_from`), today and the days before it too."""
    now = now or datetime.now(UTC)
    days: list[date] = []
    day = end
    while day >= start and final_from(day) > now:  # the later a day, the later it is final
        days.insert(0, day)
        day -= timedelta(days=1)
    return days


def provisional(start: date, end: date, now: datetime | None = None) -> str:
    """The caption saying which days of the range may still change, and why."""
    now = now or datetime.now(UTC)
    days = provisional_days(start, end, now)
    if not days:
        return ""
    first, last = days[0], days[-1]
    span = (f"{first:%d %b}" if first == last
            else f"{first:%d %b} – {last:%d %b}")
    text = (f"⏳ **{span} (UTC) {'is' if first == last else 'are'} provisional:** a day's "
            f"numbers are final only once the pipeline has counted the events that arrive up to "
            f"{settings.late_arrival_hours()} h after the next day (late events, CONTRACT §4); "
            f"{first:%d %b} is final from {final_from(first):%d %b %H:%M} UTC.")
    if last >= now.date():
        minute = settings.schedule_minute()
        text += (f" Today: the pipeline adds each hour at :{minute:02d} past the next, so the "
                 "last hour or more is not counted yet, and a visit still going on counts as it "
                 "stood then (often a one-page bounce, not converted) until the next run.")
    return text


def comparison(f: Q.Filters, before_sessions: float | None) -> str:
    """What the changes shown compare with, or that none is shown and why."""
    prev = f.previous()
    span = f"{prev.start:%d %b} – {prev.end:%d %b}" if prev.days > 1 else f"{prev.start:%d %b}"
    days = "the day before" if f.days == 1 else f"the {f.days} days before"
    if not before_sessions:
        return f"No change shown: no sessions match in {days} ({span})."
    first = current().first_day
    partly = (f" The warehouse starts on {first:%d %b}, so that period is only partly counted."
              if first and prev.start < first else "")
    return f"Changes compare with {days} ({span}), same filters.{partly}"


# --- queries --------------------------------------------------------------------------------------

def _thaw(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@st.cache_data(ttl=30, show_spinner=False)
def _cached_df(path: str, sql: str, params: tuple, setup: tuple[str, ...] = ()
               ) -> pd.DataFrame:
    return Q.Warehouse(Path(path)).df(sql, {k: _thaw(v) for k, v in params}, setup)


def query(sql: str, params: dict[str, Any] | tuple = (), setup: Sequence[str] = ()
          ) -> pd.DataFrame:
    """``sql`` on the warehouse, after the ``setup`` statements on its cursor (a panel's
    :data:`Q.Statement`), cached for 30 s: the page stays quick on millions of events, and
    new data shows soon."""
    items = tuple(sorted(params.items())) if isinstance(params, dict) else params
    return _cached_df(str(warehouse_path()), sql, freeze(items), tuple(setup))


@st.cache_data(ttl=30, show_spinner=False)
def _cached_table(path: str, q: Query) -> pd.DataFrame:
    return Q.table(Q.Warehouse(Path(path)), q)


def stats(q: Query) -> pd.DataFrame:
    """A panel's query through the query layer the API shares (``Q.kpis(filters)`` …), with
    the dashboard's column names, cached for 30 s like :func:`query`."""
    return _cached_table(str(warehouse_path()), q)


def frozen(f: Q.Filters, keys: tuple[str, ...] | None = None) -> tuple:
    """The filters as query parameters, hashable (for the cache); ``keys`` keeps only those."""
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in f.params().items()
                 if keys is None or k in keys)


# --- numbers and tables ---------------------------------------------------------------------------

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


def p_value(p: float | None) -> str:
    """A p-value, one format everywhere."""
    if p is None or pd.isna(p):
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# Table headers: the reader's words for the SQL columns, and how each is shown.
HEADERS = {
    "page_path": "Page", "source": "Source", "medium": "Medium", "campaign": "Campaign",
    "value": "Value", "country": "Country", "goal": "Goal", "path": "Path",
    "sessions": "Sessions", "visitors": "Visitors", "pageviews": "Pageviews",
    "conversions": "Conversions", "events": "Events", "entries": "Entries",
    "bounce_rate": "Bounce rate", "conversion_rate": "Conversion rate",
    "avg_duration_s": "Visit duration", "change": "vs before", "step": "Step",
    "step_name": "Step name", "of first step": "Of first step", "of previous step":
    "Of previous step", "first_touch_conversions": "First-touch conversions",
    "last_touch_conversions": "Last-touch conversions", "variant": "Variant",
    "lift": "Lift vs baseline", "p_value": "p-value", "share": "Share", "steps": "Pages",
    "rank": "#", "change_pts": "vs before (pts)", "screen_class": "Screen",
    "device_type": "Device", "browser": "Browser", "os": "Operating system",
    "country_name": "Country", "known_by": "Known from", "host": "Link to", "clicks": "Clicks",
    "ext": "Type", "file": "File", "downloads": "Downloads", "referrer": "Linked from",
    "hits": "Hits", "samples": "Samples", "avg_engaged_s": "Engaged time",
    "engaged_sessions": "Engaged sessions",
}
DURATIONS = {"avg_duration_s", "avg_engaged_s"}  # seconds, shown as minutes and seconds
PERCENT = re.compile(r"(_rate|^share|^lift|^of .* step|^change)$")


def show_table(df: pd.DataFrame, columns: list[str] | None = None, key: str | None = None,
               height: int | None = None) -> None:
    """``df`` as a table with the reader's headers (:data:`HEADERS`), rates as percentages,
    durations as minutes and seconds, counts with thousands separators, missing values as
    "–", narrow number columns so the names stay readable."""
    df = df[columns] if columns else df
    df = df.copy()
    config: dict[str, Any] = {}
    for c in df.columns:
        label = HEADERS.get(c, c.replace("_", " ").capitalize())
        numeric = pd.api.types.is_numeric_dtype(df[c]) and c not in DURATIONS
        if numeric and (c == "change" or df[c].isna().any()):
            # as text: a number column shows a missing value as "None", and a change its sign
            fmt = ("{:+.1%}" if c == "change" else "{:+.1f}" if c.endswith("_pts")
                   else "{:.1%}" if PERCENT.search(c) else "{:,.2f}"
                   if pd.api.types.is_float_dtype(df[c]) else "{:,}")
            df[c] = [fmt.format(v) if pd.notna(v) else "–" for v in df[c]]
            config[c] = st.column_config.TextColumn(label, width="small", alignment="right")
        elif c.endswith("_pts"):
            config[c] = st.column_config.NumberColumn(label, format="%+.1f", width="small")
        elif c in DURATIONS:
            df[c] = df[c].map(duration)
            config[c] = st.column_config.TextColumn(label, width="small")
        elif PERCENT.search(c) and pd.api.types.is_numeric_dtype(df[c]):
            config[c] = st.column_config.NumberColumn(label, format="percent", width="small")
        elif pd.api.types.is_integer_dtype(df[c]):
            config[c] = st.column_config.NumberColumn(label, format="localized", width="small")
        elif pd.api.types.is_float_dtype(df[c]):
            config[c] = st.column_config.NumberColumn(label, format="%.2f", width="small")
        else:
            df[c] = df[c].astype("object").where(df[c].notna(), "–")
            # text sized to its content, numbers narrow: the counts stay on screen in a
            # third of a 1440 px window (a "large" page column pushed them out of it)
            config[c] = st.column_config.TextColumn(label)
    kw: dict[str, Any] = {"height": height} if height else {}
    st.dataframe(df, hide_index=True, width="stretch", column_config=config, key=key, **kw)


def with_change(now: pd.DataFrame, before: pd.DataFrame, keys: list[str],
                col: str = "sessions") -> pd.DataFrame:
    """``now`` with a ``change`` column: ``col`` against the same row of the period before
    (relative; empty for a row the period before did not have)."""
    prev = before.set_index(keys)[col] if len(before) else pd.Series(dtype=float)
    joined = now.join(prev.rename("before_"), on=keys) if len(before) else now.assign(
        before_=float("nan"))
    now = now.assign(change=[
        (n - b) / b if pd.notna(b) and b else float("nan")
        for n, b in zip(joined[col], joined["before_"], strict=True)])
    return now


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


def missing_mart(table: str) -> bool:
    """Say so and return True when the warehouse has no ``table`` yet."""
    if table in current().warehouse.tables:
        return False
    st.info(f"This warehouse has no `{table}` yet: it was built by an older version. Rebuild "
            "it (`analytics-platform backfill --from YYYY-MM-DD --to YYYY-MM-DD`).")
    return True
