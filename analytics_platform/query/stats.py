"""The metrics, dimensions and filters every number of the dashboard and the API is counted with,
and the SQL they become.

A :class:`Query` names metrics (``visitors``, ``bounce_rate``…), dimensions to group by
(``time:day``, ``visit:source``, ``event:page``…), filters (Plausible's Stats API v2 filter
expressions: ``["is", "visit:source", ["google"]]``, ``and`` / ``or`` / ``not``, ``has_done``),
an order and a page; :func:`compile_query` turns it into one DuckDB statement over the
warehouse's ``sessions`` and ``session_events`` (after the statements that make its behavioural
filters' temporary tables, on the same cursor), every value a bound parameter. The dashboard's
panels are queries of this kind (``dashboard/queries.py``), and so is every ``POST
/api/v2/query`` (``api/v2.py``), so the two cannot count differently.

How it counts (CONTRACT §4):

- A query reads the sessions whose ``session_date`` is in the range; a session and all of its
  events count on the date (and hour) its first event happened.
- ``visit:*`` dimensions and filters are properties of a session (its attribution, entry and
  exit page, its first event's device); ``event:*`` ones are properties of an event.
- With no ``event:*`` dimension and no ``event:*`` filter (outside ``has_done``), the rows are
  sessions. An ``event:*`` filter on its own keeps the sessions that have such an event.
- With an ``event:*`` dimension or a top-level ``event:*`` filter, the rows are the events that
  match: ``visitors`` counts the visitors who had such an event, ``pageviews`` their page views.
  Session metrics (``bounce_rate``, ``visit_duration``, ``views_per_visit``) are then counted
  over the sessions that had a matching event, and cannot be grouped by an ``event:*``
  dimension.

Values come out raw (rates as fractions, durations in seconds, unrounded); the API formats
them as Plausible does (``api/v2.py``), the dashboard as it shows them.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform import settings
from analytics_platform.config import load_goals
from analytics_platform.contract import EVENT_TYPES
from analytics_platform.mart_logic import step_condition
from analytics_platform.query.handwritten import load


class QueryError(ValueError):
    """A query this layer cannot answer, with a message for the person who wrote it (the API
    answers it with 400)."""


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    session_sql: str | None  # over sessions (``{s}``: the sessions' table prefix)
    event_sql: str | None  # over events (``{e}``), None: a session metric only
    unit: str  # count | fraction | seconds | ratio
    plausible: bool = True  # one of Plausible's v2 metrics
    differs: str = ""  # how ours differs from Plausible's (docs/API.md)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("visitors", "Unique visitors (distinct visitor_id).",
           "count(DISTINCT {s}visitor_key)", "count(DISTINCT {e}visitor_key)", "count",
           differs="A visitor who opted out (Do-Not-Track, GPC) counts once per session."),
    Metric("visits", "Visits (sessions).", "count(*)", "count(DISTINCT {e}session_id)", "count",
           differs="A session ends after 30 minutes without an event (the tracker's rule)."),
    Metric("pageviews", "Page views.", "coalesce(sum({s}pageviews), 0)::BIGINT",
           "count(*) FILTER ({e}event_type = 'page_view')", "count"),
    Metric("views_per_visit", "Page views per visit.", "sum({s}pageviews) / count(*)", None,
           "ratio"),
    Metric("bounce_rate", "Share of visits with one page view and no interaction.",
           "avg({s}is_bounce::INTEGER)", None, "fraction",
           differs="A visit with one page view but a CTA click or a form started is not a "
                   "bounce; with an event:page filter, every visit that viewed the page counts "
                   "(Plausible: only visits that entered on it)."),
    Metric("visit_duration", "Mean visit duration in seconds (bounces included).",
           "avg({s}duration_s)", None, "seconds",
           differs="From a visit's first to its last event of any kind (scroll and "
                   "time-on-page events included), not only page views."),
    Metric("events", "Events of every type.", "coalesce(sum({s}events), 0)::BIGINT",
           "count(*)", "count",
           differs="Every event type counts (page views, CTA clicks, forms, scroll depth, time "
                   "on page, exit intent, custom), not only page views and custom events."),
    Metric("conversion_rate",
           "Without an event:goal filter or dimension: share of visits that clicked the "
           "call to action (the dashboard's conversion rate). With one: the visitors who "
           "completed the goal, of all the visitors (of the query without its dimensions and "
           "its goal and props filters).",
           "avg({s}converted::INTEGER)", None, "fraction",
           differs="Plausible refuses conversion_rate without an event:goal filter or "
                   "dimension; here it is then the dashboard's: converted visits / visits "
                   "(a visit converts with a cta_click event)."),
    Metric("percentage", "Share of all visitors (of the query without its dimensions) in the "
           "row.", None, None, "fraction"),
    Metric("conversions", "Visits that converted (at least one cta_click event). Not in "
           "Plausible.", "count(*) FILTER ({s}converted)",
           "count(DISTINCT {e}session_id) FILTER ({e}event_type = 'cta_click')", "count",
           plausible=False),
)}

# Plausible's metrics this warehouse cannot answer, and why (a 400 says so).
UNSUPPORTED_METRICS = {
    "group_conversion_rate": "not supported here; use conversion_rate",
    "average_revenue": "no revenue is recorded",
    "total_revenue": "no revenue is recorded",
    "time_on_page": "not supported here (the tracker's time_on_page events are thresholds, "
                    "not durations)",
    "scroll_depth": "not supported here (see pages_daily.avg_max_scroll_depth in the "
                    "warehouse)",
}

_GOAL_SQL = ("CASE WHEN {e}event_type = 'page_view' THEN NULL "
             "WHEN {e}event_type = 'custom' THEN json_extract_string({e}props, '$.name') "
             "ELSE {e}event_type END")
_NAME_SQL = ("CASE WHEN {e}event_type = 'page_view' THEN 'pageview' "
             "WHEN {e}event_type = 'custom' THEN json_extract_string({e}props, '$.name') "
             "ELSE {e}event_type END")
# The event types whose event:name is the type itself (_NAME_SQL): every type of the contract
# but page views (named pageview) and custom events (named by props.name).
_TYPE_NAMES = frozenset(EVENT_TYPES) - {"page_view", "custom"}


@dataclass(frozen=True)
class Dimension:
    name: str
    description: str
    level: str  # time | visit | event
    session_sql: str | None  # over sessions (``{s}``)
    event_sql: str | None = None  # over events (``{e}``); visit dimensions read the session
    empty: str | None = None  # shown for NULL / '' (None: such rows are left out)
    needs_touch: bool = False  # reads the session's touch (sql/session_touch.sql)
    plausible: bool = True
    differs: str = ""
    arg: str | None = None  # event:props:<arg>
    requires: str | None = None  # a column of `sessions` only newer warehouses have

    def value_sql(self, prefix: str) -> str:
        """The value as grouped by (NULL and '' shown as ``empty``)."""
        raw = self.raw_sql(prefix)
        return raw if self.empty is None else f"coalesce(nullif({raw}, ''), '{self.empty}')"

    def filter_sql(self, prefix: str) -> str:
        """The value as filtered on: NULL is '' (``["is", dim, [""]]`` finds it)."""
        raw = self.raw_sql(prefix)
        return f"coalesce({raw}, '')" if self.level != "time" else raw

    def raw_sql(self, prefix: str) -> str:
        if self.level == "event":
            return _prefixed(self.event_sql or "", e=prefix)
        return _prefixed(self.session_sql or "", s=prefix)


def _prefixed(sql: str, s: str = "", e: str = "") -> str:
    return sql.replace("{s}", s).replace("{e}", e)


def _time(name: str, session_sql: str, event_sql: str | None, description: str) -> Dimension:
    return Dimension(name, description, "time", session_sql, event_sql)


def _visit(name: str, sql: str, description: str, empty: str | None = "(not set)",
           **kw: Any) -> Dimension:
    return Dimension(name, description, "visit", sql, None, empty, **kw)


# CONTRACT §5's screen-size classes (devices_daily.screen_class), of the session's screen width.
_SCREEN_SQL = ("CASE WHEN coalesce({s}screen_width, 0) = 0 THEN '(unknown)' "
               "WHEN {s}screen_width < 576 THEN 'mobile' WHEN {s}screen_width < 992 THEN 'tablet' "
               "WHEN {s}screen_width < 1440 THEN 'laptop' ELSE 'desktop' END")

DIMENSIONS: dict[str, Dimension] = {d.name: d for d in (
    _time("time:hour", "date_trunc('hour', {s}session_start)", None,
          "Hour the visit started (UTC)."),
    _time("time:day", "{s}session_date", "{e}session_date", "Date the visit started (UTC)."),
    _time("time:week", "greatest(date_trunc('week', {s}session_date), $start)::DATE",
          "greatest(date_trunc('week', {e}session_date), $start)::DATE",
          "Monday of the week the visit started, not before the range's first day."),
    _time("time:month", "date_trunc('month', {s}session_date)::DATE",
          "date_trunc('month', {e}session_date)::DATE", "First day of the visit's month."),
    _visit("visit:source", "{s}source", "Attributed source (CONTRACT §4): utm_source, the "
           "referrer's name (google, twitter…) or host, or (direct).", None,
           differs="Lower-case names from the referrer table (google, not Google); "
                   "(direct) for Plausible's Direct / None."),
    _visit("visit:medium", "{s}medium", "Attributed medium: utm_medium, or organic / social / "
           "email / referral from the referrer table, or (none). Not in Plausible.", None,
           plausible=False),
    _visit("visit:campaign", "{s}campaign", "Attributed campaign: utm_campaign, or (none). Not "
           "in Plausible.", None, plausible=False),
    _visit("visit:referrer", "{s}touch_referrer", "Host of the referrer of the visit's first "
           "page view.", "Direct / None", needs_touch=True,
           differs="The referrer's host only (the path is never stored), without www."),
    *(_visit(f"visit:utm_{k}", f"{{s}}touch_utm_{k}", f"utm_{k} of the visit's first page "
             "view, as sent.", needs_touch=True) for k in
      ("source", "medium", "campaign", "content", "term")),
    _visit("visit:entry_page", "{s}entry_page", "Path of the visit's first page view.", None,
           differs="Visits without a page view have none and are left out of the rows."),
    _visit("visit:exit_page", "{s}exit_page", "Path of the visit's last page view.", None,
           differs="Visits without a page view have none and are left out of the rows."),
    _visit("visit:device", "{s}device_type", "Device type of the visit's first event: desktop, "
           "mobile or tablet.", differs="Lower case (desktop, not Desktop); no Laptop."),
    _visit("visit:browser", "{s}browser", "Browser name of the visit's first event.",
           differs="Names from ua-parser (Chrome Mobile, Mobile Safari…)."),
    _visit("visit:os", "{s}os", "Operating system of the visit's first event.",
           differs="Names from ua-parser (Mac OS X, not Mac; Linux)."),
    _visit("visit:screen", _SCREEN_SQL, "Screen-size class of the visit's screen width "
           "(CONTRACT §5, devices_daily): mobile < 576 ≤ tablet < 992 ≤ laptop < 1440 ≤ "
           "desktop CSS pixels, (unknown) without one.", None,
           differs="Lower case (mobile, not Mobile); from the tracker's screen width, as "
                   "Plausible classified it before it moved to the user agent."),
    _visit("visit:country", "{s}country", "Country of the visit (ISO 3166-1 alpha-2): from "
           "CloudFront's viewer-country header, else the browser's time zone (CONTRACT §4).",
           requires="country",
           differs="Never from the IP address; from the time zone it is approximate."),
    Dimension("event:page", "Path of the page the event happened on.", "event", None,
              "{e}page_path"),
    Dimension("event:hostname", "Host of the page the event happened on.", "event", None,
              "{e}page_host", "(none)"),
    Dimension("event:name", "pageview, the event type (cta_click, scroll_depth…), or a custom "
              "event's props.name.", "event", None, _NAME_SQL),
    Dimension("event:goal", "Every event but page views, named as event:name; in filters also "
              "'Visit /path' (page views of /path) and the names of goals.yaml's goals (the "
              "events that complete one, as goals_daily counts them).", "event", None, _GOAL_SQL,
              differs="Every event type and custom event name is a goal; page-view goals are "
                      "written 'Visit /path' in filters; goals.yaml's goals are filters only."),
)}

PROPS_PREFIX = "event:props:"

# Plausible's dimensions this warehouse has no data for, and why.
UNSUPPORTED_DIMENSIONS = {
    **{f"visit:{k}": "no location finer than the country is stored (privacy: no IP address "
       "is kept)" for k in ("region", "city", "country_name", "region_name", "city_name")},
    "visit:browser_version": "only the browser's name is kept",
    "visit:os_version": "only the operating system's name is kept",
    "visit:channel": "not supported here; group by visit:source and visit:medium",
    "visit:entry_page_hostname": "not supported here; filter on event:hostname",
    "visit:exit_page_hostname": "not supported here; filter on event:hostname",
    "segment": "segments are not stored here",
    "time:minute": "not supported here",
}

OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
LOGICAL = ("and", "or", "not")
BEHAVIOURAL = ("has_done", "has_not_done")


def dimension(name: str) -> Dimension:
    """The dimension ``name``, or a :class:`QueryError` saying why there is none."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    if name.startswith(PROPS_PREFIX) and len(name) > len(PROPS_PREFIX):
        key = name[len(PROPS_PREFIX):]
        return Dimension(name, f"props.{key} of the event", "event", None,
                         "json_extract_string({e}props, {arg})", "(none)", arg=key)
    if name in UNSUPPORTED_DIMENSIONS:
        raise QueryError(f"Dimension `{name}` is not supported: {UNSUPPORTED_DIMENSIONS[name]}.")
    raise QueryError(f"Invalid dimension '{name}'.")


def props_path(key: str) -> str:
    """The JSON path of the props key ``key``, as a JSON pointer (RFC 6901, which DuckDB's JSON
    functions take): a key is any 1-64 characters (CONTRACT's props rule), and pasted into a
    ``$.`` path its ``.``, ``[`` or ``*`` would be read as path syntax (``a.b`` the key ``b``
    of an object ``a``; ``*`` every key, a list: an error). In a pointer only ``~`` and ``/``
    mean something, and escaping them names any key literally."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def metric(name: str) -> Metric:
    if name in METRICS:
        return METRICS[name]
    if name in UNSUPPORTED_METRICS:
        raise QueryError(f"Metric `{name}` is not supported: {UNSUPPORTED_METRICS[name]}.")
    raise QueryError(f"Unknown metric '{name}'.")


@dataclass(frozen=True)
class Query:
    """What to count. ``start``/``end``: session dates, inclusive; ``start_ts``/``end_ts``
    (optional, UTC): only sessions that started within them. ``filters``: Plausible v2 filter
    expressions (lists or tuples). ``limit`` None: every row."""

    start: date
    end: date
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[Any, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    offset: int = 0
    start_ts: datetime | None = None
    end_ts: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        check_filter_depth(self.filters)  # before freeze, which recurses
        object.__setattr__(self, "filters", freeze(self.filters))
        object.__setattr__(self, "order_by", tuple(tuple(o) for o in self.order_by))


# How deep and / or / not / has_done may nest. Every step over filters (freeze, validation,
# compilation) recurses once or twice a level: a request nested 500 levels deep ran out of
# Python's stack (a 500); 20 is far deeper than a filter anyone writes.
MAX_FILTER_DEPTH = 20


def check_filter_depth(filters: Any) -> None:
    """A :class:`QueryError` when ``filters`` nest deeper than :data:`MAX_FILTER_DEPTH`, or a
    simple filter holds lists or objects deeper than its values and modifiers do; without
    recursing (a tree too deep to recurse over is what it looks for)."""
    stack: list[tuple[Any, int]] = [(f, 1) for f in filters] \
        if isinstance(filters, list | tuple) else []
    while stack:
        f, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise QueryError(f"Invalid filters: nested more than {MAX_FILTER_DEPTH} levels "
                             "deep.")
        if isinstance(f, list | tuple) and len(f) == 2 and f[0] in ("and", "or") \
                and isinstance(f[1], list | tuple):
            stack.extend((g, depth + 1) for g in f[1])
        elif isinstance(f, list | tuple) and len(f) == 2 and f[0] in ("not", *BEHAVIOURAL):
            stack.append((f[1], depth + 1))
        elif isinstance(f, list | tuple | dict) and any(
                isinstance(w, list | tuple | dict)
                for v in (f.values() if isinstance(f, dict) else f)
                if isinstance(v, list | tuple | dict)
                for w in (v.values() if isinstance(v, dict) else v)):
            # a simple filter is [op, dimension, [values], {modifiers}]: nothing deeper
            raise QueryError("Invalid filters: a filter holds lists or objects nested too "
                             "deep.")


def freeze(value: Any) -> Any:
    """Lists as tuples, all the way down (a Query is hashable: the dashboard caches by it)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def thaw(value: Any) -> Any:
    """The filters as JSON again (for the API's echo of the query)."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
                         and v[0] in ("case_sensitive",) for v in value):
            return {k: v for k, v in value}
        return [thaw(v) for v in value]
    return value


def time_dimension(start: date | datetime, end: date | datetime) -> str:
    """What the ``time`` dimension means for a range (dates: from the first's 00:00:00 to the
    last's 23:59:59; or instants), as Plausible resolves it (query_optimizer.ex,
    resolve_time_dimension, whole units elapsed): hours up to 48 hours (one or two days),
    days up to 40 days (41 dates), weeks up to 52 weeks (371 dates), months beyond."""
    # datetime is a date too: ask for it first
    t0 = start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time())
    t1 = end if isinstance(end, datetime) else (
        datetime.combine(end, datetime.min.time()) + timedelta(days=1, seconds=-1))
    span = t1 - t0
    if span // timedelta(hours=1) <= 48:
        return "time:hour"
    if span.days <= 40:
        return "time:day"
    return "time:week" if span.days // 7 <= 52 else "time:month"


# --- compilation ------------------------------------------------------------------------------


class _Params:
    """Bound parameters: every value from a query is one, never pasted into the SQL. With
    ``temp_tables``, also the temporary tables of the query's behavioural filters
    (:func:`_events_of_sessions`): the filter (its repr) → the table's name and the statement
    that makes it."""

    def __init__(self, base: dict[str, Any], temp_tables: bool = False) -> None:
        self.values = dict(base)
        self.tables: dict[str, tuple[str, str]] | None = {} if temp_tables else None

    def add(self, value: Any) -> str:
        name = f"v{len(self.values)}_"
        self.values[name] = value
        return f"${name}"


@dataclass
class _Ctx:
    params: _Params
    level: str  # session | event
    needs_join: bool = False  # event rows need their session's columns
    needs_touch: bool = False


def _walk(filters: Iterable[Any], inside_behaviour: bool = False
          ) -> Iterable[tuple[tuple[Any, ...], bool]]:
    """Every simple filter of a tree, with whether it sits under has_done / has_not_done."""
    for f in filters:
        op = f[0]
        if op in ("and", "or"):
            yield from _walk(f[1], inside_behaviour)
        elif op == "not":
            yield from _walk([f[1]], inside_behaviour)
        elif op in BEHAVIOURAL:
            yield from _walk([f[1]], True)
        else:
            yield f, inside_behaviour


def validate_filters(filters: Sequence[Any]) -> None:
    """Raise :class:`QueryError` for a filter that is malformed or names what is not here."""
    if not isinstance(filters, list | tuple):
        raise QueryError("Invalid filters passed.")
    for f in filters:
        _validate_filter(f, inside_behaviour=False)


def _validate_filter(f: Any, inside_behaviour: bool) -> None:
    if not isinstance(f, list | tuple) or not f or not isinstance(f[0], str):
        raise QueryError(f"Invalid filter '{thaw(f)}'.")
    op = f[0]
    if op in ("and", "or"):
        if len(f) != 2 or not isinstance(f[1], list | tuple) or not f[1]:
            raise QueryError(f"Invalid filter '{thaw(f)}'.")
        for g in f[1]:
            _validate_filter(g, inside_behaviour)
        return
    if op in ("not", *BEHAVIOURAL):
        if len(f) != 2:
            raise QueryError(f"Invalid filter '{thaw(f)}'.")
        if op in BEHAVIOURAL and inside_behaviour:
            raise QueryError("Invalid filters: has_done / has_not_done cannot be nested.")
        _validate_filter(f[1], inside_behaviour or op in BEHAVIOURAL)
        return
    if op not in OPERATORS:
        raise QueryError(f"Unknown operator for filter '{thaw(f)}'.")
    if len(f) not in (3, 4) or not isinstance(f[1], str) or not isinstance(f[2], list | tuple) \
            or not f[2] or not all(isinstance(v, str) for v in f[2]):
        raise QueryError(f"Invalid filter '{thaw(f)}'.")
    if len(f) == 4 and op.startswith("matches"):
        # Plausible's schema takes modifiers on is / contains (and their negations) only; a
        # pattern says its own case rules ("(?i)…"), and lowering it would change its meaning
        # (lowered, \D would become \d)
        raise QueryError(f"Invalid filter '{thaw(f)}': matches and matches_not take no "
                         "modifiers; write (?i) in the pattern for a case-insensitive match.")
    if len(f) == 4:
        try:
            mods = dict(f[3])
        except (TypeError, ValueError):
            mods = None
        if not isinstance(mods, dict) or set(mods) - {"case_sensitive"} \
                or not isinstance(mods.get("case_sensitive", True), bool):
            raise QueryError(f"Invalid filter '{thaw(f)}': the only modifier is "
                             "case_sensitive (true or false).")
    d = dimension(f[1])
    if d.level == "time":
        raise QueryError(f"Invalid filter '{thaw(f)}': time dimensions cannot be filtered; "
                         "set date_range instead.")
    if inside_behaviour and d.level != "event":
        raise QueryError(f"Invalid filter '{thaw(f)}': has_done / has_not_done take event "
                         "dimensions only.")
    if d.name == "event:goal" and op not in ("is", "contains"):
        raise QueryError(f"Invalid filter '{thaw(f)}': event:goal takes is and contains only.")
    if op.startswith("matches"):
        for v in f[2]:
            why = _re2_error(v)
            if why is not None:
                raise QueryError(f"Invalid filter '{thaw(f)}': bad regular expression "
                                 f"{v!r} ({why}).")


# Patterns are checked by the engine that runs them: DuckDB's regexp_matches is RE2 (as is
# ClickHouse's match, Plausible's), whose syntax is not Python's (\pL is a letter there,
# lookarounds are refused). On a connection of their own (no data), one check at a time; made
# on first use, once per process (a process forked from one that had it makes its own), as
# opening one costs ~10 ms.
_RE2: dict[int, duckdb.DuckDBPyConnection] = {}
_RE2_LOCK = threading.Lock()


@lru_cache(maxsize=1024)
def _re2_error(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (DuckDB's message), or None."""
    with _RE2_LOCK:
        con = _RE2.get(os.getpid())
        if con is None:
            con = _RE2[os.getpid()] = duckdb.connect()
        try:
            con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.InvalidInputException as e:
            return str(e).splitlines()[0].removeprefix("Invalid Input Error: ")
    return None


def _case_sensitive(f: Sequence[Any]) -> bool:
    return dict(f[3]).get("case_sensitive", True) if len(f) == 4 else True


def _in(expr: str, values: Sequence[str], ctx: _Ctx) -> str:
    """``expr`` is one of ``values``: ``=`` or ``IN (…)`` of parameters, which DuckDB pushes
    into the Parquet scan (a ``list_contains`` of a list parameter it does not)."""
    refs = [ctx.params.add(v) for v in values]
    return f"{expr} = {refs[0]}" if len(refs) == 1 else f"{expr} IN ({', '.join(refs)})"


def _simple(f: Sequence[Any], ctx: _Ctx, prefix: str) -> str:
    """One simple filter as SQL over rows whose columns carry ``prefix``."""
    op, name, clauses = f[0], f[1], list(f[2])
    d = dimension(name)
    sensitive = _case_sensitive(f)
    if d.arg is not None:
        path = ctx.params.add(props_path(d.arg))
        expr = f"coalesce({d.raw_sql(prefix).replace('{arg}', path)}, '')"
    else:
        expr = d.filter_sql(prefix)
    extra: list[str] = []
    if name == "event:goal" and op == "is":  # 'Visit /path': the page views of /path
        # a goal of goals.yaml: the events matching it, with the goals_daily mart's own
        # condition (so a filter on it counts the sessions the mart counts as converted)
        configured = configured_goals()
        for c in clauses:
            if c in configured:
                extra.append(f"({_goal_condition(configured[c], prefix)})")
        clauses = [c for c in clauses if c not in configured]
        pages = [c[len("Visit "):] for c in clauses if c.startswith("Visit ")]
        clauses = [c for c in clauses if not c.startswith("Visit ")]
        if pages:
            vals = [p.lower() for p in pages] if not sensitive else pages
            page = f"{prefix}page_path" if sensitive else f"lower({prefix}page_path)"
            extra.append(f"({prefix}event_type = 'page_view' AND list_contains("
                         f"{ctx.params.add(vals)}::VARCHAR[], {page}))")
        expr = f"coalesce({_prefixed(_GOAL_SQL, e=prefix)}, '')"
    elif name == "event:name" and op in ("is", "is_not") and sensitive:
        # the event type itself where it can be (a column compare, not a CASE per row)
        types = [("page_view" if c == "pageview" else c) for c in clauses
                 if c == "pageview" or c in _TYPE_NAMES]
        names = [c for c in clauses if c != "pageview" and c not in _TYPE_NAMES]
        parts = []
        if types:
            parts.append(_in(f"{prefix}event_type", types, ctx))
        if names:
            parts.append(f"({prefix}event_type = 'custom' AND list_contains("
                         f"{ctx.params.add(names)}::VARCHAR[], "
                         f"json_extract_string({prefix}props, '$.name')))")
        cond = "(" + " OR ".join(parts) + ")"
        return cond if op == "is" else f"NOT {cond}"
    if not sensitive:
        expr = f"lower({expr})"
        clauses = [c.lower() for c in clauses]
    if op in ("is", "is_not"):
        cond = _in(expr, clauses, ctx) if clauses else ""
    elif op in ("contains", "contains_not"):
        cond = " OR ".join(f"contains({expr}, {ctx.params.add(c)})" for c in clauses)
    else:
        cond = " OR ".join(f"regexp_matches({expr}, {ctx.params.add(c)})" for c in clauses)
    cond = "(" + " OR ".join(p for p in [cond, *extra] if p) + ")"
    return f"NOT {cond}" if op.endswith("_not") else cond


def configured_goals() -> dict[str, Any]:
    """The goals of goals.yaml (``$ANALYTICS_GOALS_FILE``) by name, read again when the file
    changes."""
    path = Path(settings.goals_file()) if settings.goals_file() else None
    target = path or Path(__file__).resolve().parent.parent / "goals.yaml"
    try:
        stamp = target.stat().st_mtime_ns
    except OSError:
        return {}
    return _goals_of(str(target), stamp)


@lru_cache(maxsize=4)
def _goals_of(path: str, stamp: int) -> dict[str, Any]:
    return {g.name: g for g in load_goals(Path(path))}


def _goal_condition(goal: Any, prefix: str) -> str:
    """The events that complete ``goal``: the condition of the goals_daily mart and the funnels
    (``mart_logic.step_condition``)."""
    return step_condition(goal, prefix.rstrip(".") or "session_events")


def _events_of_sessions(inner: Any, ctx: _Ctx) -> str:
    """The sessions (of the range) that have an event matching ``inner``, each once: a
    temporary table the query makes first (``ctx.params.tables``), else a subquery.

    DISTINCT, though ``IN`` needs no distinct list: in a subquery, without it DuckDB pushes
    the join's runtime filters (a Bloom filter and the min / max of the range's session ids)
    into this scan of session_events, which then tests the session_id of every row of the row
    groups it reads, most of which the event's own conditions would have left out; the
    grouping between the scan and the join stops that (in a table, it keeps each session
    once). The page filter on the 14.7M-event dashboard benchmark
    (14 days, 423,139 sessions, 49,581 with a view of /blog; 54,691 such views among the rows
    of 28 row groups): the scan 100 → 10 ms in EXPLAIN ANALYZE, the KPIs 61-62 → 44-45 ms, the
    same numbers (issue #21, docs/BENCHMARKS.md)."""
    tables = ctx.params.tables
    key = repr(inner)
    if tables is not None and key in tables:  # this filter's table, made for another part
        return f"(SELECT session_id FROM temp.{tables[key][0]})"
    cond = _cond(inner, _Ctx(ctx.params, "event"), events_only=True)
    select = (f"SELECT DISTINCT session_id FROM session_events WHERE session_date BETWEEN "
              f"$start AND $end AND {cond}")
    if tables is None:  # a subquery (compile_query's temp_tables=False)
        return f"({select})"
    # A temporary table, made first on the query's cursor (Compiled.setup), so that DuckDB
    # plans the query knowing how many sessions it holds: from a subquery it estimated 516k
    # rows for the 49,581 sessions of the page filter above, and built the join's hash table on
    # the range's 423k sessions instead; from the table it builds on these. The KPIs there,
    # p50 of bench/dashboard.py: 55.7 → 37.5 ms (ClickHouse 50-52), the whole page 372 → 257
    # ms. On 1.48M events the KPIs alone took 12.5-12.7 ms against 11.1 (the table costs
    # about what the subquery's pipelining saved at that size; issue #21, docs/BENCHMARKS.md).
    # The same filter in several parts of the query is one table (above).
    name = f"has_done_{len(tables)}"
    tables[key] = (name, f"CREATE TEMP TABLE {name} AS {select}")
    return f"(SELECT session_id FROM temp.{name})"


def _cond(f: Any, ctx: _Ctx, events_only: bool = False) -> str:
    """A filter as a condition on the rows of ``ctx.level``. On session rows an event filter
    keeps the sessions with such an event; on event rows a visit filter reads the event's
    session (a join). ``events_only``: inside a subquery over session_events alone."""
    op = f[0]
    sid = "session_id" if ctx.level == "session" else "e.session_id"
    if events_only:
        sid = "session_id"
    if op in ("and", "or"):
        return "(" + f" {op.upper()} ".join(_cond(g, ctx, events_only) for g in f[1]) + ")"
    if op == "not":
        return f"(NOT {_cond(f[1], ctx, events_only)})"
    if op in BEHAVIOURAL:
        neg = "NOT " if op == "has_not_done" else ""
        return f"({sid} {neg}IN {_events_of_sessions(f[1], ctx)})"
    d = dimension(f[1])
    if ctx.level == "session":
        if d.level == "event":
            return f"({sid} IN {_events_of_sessions(f, ctx)})"
        ctx.needs_touch |= d.needs_touch
        return _simple(f, ctx, "")
    if d.level == "event":
        return _simple(f, ctx, "" if events_only else "e.")
    ctx.needs_join = True
    ctx.needs_touch |= d.needs_touch
    return _simple(f, ctx, "s.")


def _is_goal_filter(f: Any) -> bool:
    return f[0] in OPERATORS and f[1] == "event:goal"


def _strip_goals(filters: Sequence[Any]) -> tuple[Any, ...]:
    """The filters without their top-level event:goal and event:props:* ones (the denominator
    of a goal's conversion rate, as Plausible counts it: Query.remove_top_level_filters)."""
    return tuple(f for f in filters if not _is_goal_filter(f) and not (
        f[0] in OPERATORS and f[1].startswith(PROPS_PREFIX)))


# A statement of SQL written around the filtered sessions (sessions_sql): the SQL, its
# parameters, and the statements to run first on its cursor (Compiled.setup).
Statement = tuple[str, dict[str, Any], tuple[str, ...]]


@dataclass
class Compiled:
    sql: str
    params: dict[str, Any]
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    rollup: str | None = None  # the rollup it reads (query/rollups.py), if any
    # statements to run first on the statement's cursor: the temporary tables it reads
    # (_events_of_sessions); a cursor of the warehouse's own has none of them yet
    setup: tuple[str, ...] = ()


@dataclass
class _Part:
    name: str
    sql: str
    columns: list[str] = field(default_factory=list)


def _dims_sql(dims: Sequence[tuple[int, Dimension]], level: str, ctx: _Ctx) -> tuple[
        list[str], list[str]]:
    """SELECT expressions (``d<i>``) and the conditions leaving out rows without a value."""
    select, required = [], []
    for i, d in dims:
        if level == "session":
            expr = d.value_sql("")
            ctx.needs_touch |= d.needs_touch
        elif d.level == "event" or (d.level == "time" and d.event_sql):
            expr = (d.value_sql("e.") if d.level == "event"
                    else _prefixed(d.event_sql or "", e="e."))
        else:
            ctx.needs_join = True
            ctx.needs_touch |= d.needs_touch
            expr = d.value_sql("s.")
        if d.arg is not None:
            expr = expr.replace("{arg}", ctx.params.add(props_path(d.arg)))
        select.append(f"{expr} AS d{i}")
        if d.empty is None and d.level != "time":
            required.append(f"{expr} IS NOT NULL")
    return select, required


def _part_sql(level: str, filters: Sequence[Any], dims: Sequence[tuple[int, Dimension]],
              metrics: Sequence[tuple[str, str]], ctx: _Ctx) -> str:
    """One aggregate over session rows or event rows: ``metrics`` are (alias, SQL)."""
    conds = [_cond(f, ctx) for f in filters]
    select, required = _dims_sql(dims, level, ctx)
    select += [f"{sql} AS {alias}" for alias, sql in metrics]
    # without dimensions an ungrouped aggregate (one row, as GROUP BY ALL of no column gives):
    # less to bind and plan (see compile_query)
    group = " GROUP BY ALL" if dims else ""
    if level == "session":
        where = "".join(f"{' AND' if i else ' WHERE'} {c}"
                        for i, c in enumerate([*conds, *required]))
        return f"SELECT {', '.join(select)} FROM s{where}{group}"
    join = " JOIN s USING (session_id)" if ctx.needs_join else ""
    where = "".join(f" AND {c}" for c in [*conds, *required])
    return (f"SELECT {', '.join(select)} FROM session_events e{join} "
            f"WHERE e.session_date BETWEEN $start AND $end{where}{group}")


def _event_level(dims: Sequence[Dimension], filters: Sequence[Any]) -> bool:
    return any(d.level == "event" for d in dims) or any(
        dimension(f[1]).level == "event" for f, behavioural in _walk(filters) if not behavioural)


def validate(q: Query) -> None:
    """Every check a query must pass before it is compiled (QueryError otherwise)."""
    if not q.metrics:
        raise QueryError("Invalid metrics: at least one metric is required.")
    if len(set(q.metrics)) != len(q.metrics):
        raise QueryError("Metrics cannot be queried multiple times.")
    if len(set(q.dimensions)) != len(q.dimensions):
        raise QueryError("Some dimensions are listed more than once.")
    ms = [metric(m) for m in q.metrics]
    ds = [dimension(d) for d in q.dimensions]
    if sum(d.level == "time" for d in ds) > 1:
        raise QueryError("Only one time dimension can be used in a query.")
    validate_filters(q.filters)
    goal = "event:goal" in q.dimensions or any(_is_goal_filter(f) for f in q.filters)
    if "percentage" in q.metrics and not q.dimensions:
        raise QueryError("Metric `percentage` can only be queried with a dimension.")
    session_only = [m.name for m in ms if m.event_sql is None and m.name != "percentage"
                    and not (m.name == "conversion_rate" and goal)]
    event_dims = [d.name for d in ds if d.level == "event"]
    if session_only and event_dims:
        raise QueryError(f"Session metric(s) `{', '.join(session_only)}` cannot be queried "
                         f"along with event dimension(s) `{', '.join(event_dims)}`.")
    names = set(q.metrics) | set(q.dimensions)
    for key, direction in q.order_by:
        if key not in names:
            raise QueryError(f"Invalid order_by entry '{[key, direction]}'. Entry is not a "
                             "queried metric or dimension.")
        if direction not in ("asc", "desc"):
            raise QueryError(f"Invalid order_by entry '{[key, direction]}'.")
    if q.start > q.end:
        raise QueryError("Invalid date_range: the first date is after the last.")
    if (q.limit is not None and q.limit < 1) or q.offset < 0:
        raise QueryError("Invalid pagination: limit must be at least 1, offset at least 0.")


def default_order(q: Query) -> tuple[tuple[str, str], ...]:
    """Plausible's: the time dimension ascending, then the first metric descending."""
    time = [d for d in q.dimensions if dimension(d).level == "time"]
    return (*((t, "asc") for t in time), (q.metrics[0], "desc"))


def compile_query(q: Query, rollups: Collection[str] = (), single: bool = True,
                  temp_tables: bool = True) -> Compiled:
    """The statement that answers ``q``: its result has a column ``d<i>`` per dimension, one
    per metric (named as the metric) and ``total_rows`` (the rows before the page; not there
    without dimensions: one row). From one of the warehouse's ``rollups``
    (``query/rollups.py``) when one answers ``q`` exactly. ``single``: a query without
    dimensions counted in one aggregate is that aggregate alone (False: the general shape, a
    CTE per part, as every other query; ``test_query_shapes.py`` holds the two equal).
    ``temp_tables``: the sessions of a behavioural filter are a temporary table that
    ``setup`` makes (False: a subquery; the same rows)."""
    # imported here: the rollups are made from METRICS (an import at the top would be a cycle)
    from analytics_platform.query import rollups as rollup

    validate(q)
    params = _Params({"start": q.start, "end": q.end}, temp_tables)
    ds = list(enumerate(dimension(d) for d in q.dimensions))
    fast = rollup.part(q, rollups) if rollups else None
    goal = "event:goal" in q.dimensions or any(_is_goal_filter(f) for f in q.filters)
    event_level = _event_level([d for _, d in ds], q.filters)
    touch = False
    parts: list[_Part] = []

    either: list[tuple[str, str]] = []  # counted on the main rows (events or sessions)
    session_only: list[tuple[str, str]] = []
    needs_visitors = "percentage" in q.metrics or ("conversion_rate" in q.metrics and goal)
    level = "event" if event_level else "session"
    # with a datetime range, event rows read their session's start (a join)
    timed = q.start_ts is not None or q.end_ts is not None
    for name in q.metrics:
        m = METRICS[name]
        if name == "percentage" or (name == "conversion_rate" and goal):
            continue
        if level == "event" and m.event_sql is not None:
            either.append((name, _prefixed(m.event_sql, e="e.")))
        elif level == "event":
            session_only.append((name, _prefixed(m.session_sql or "", s="")))
        else:
            either.append((name, _prefixed(m.session_sql or "", s="")))
    if needs_visitors:
        m = METRICS["visitors"]
        either.append(("visitors_", _prefixed(m.event_sql if level == "event" else
                                              m.session_sql or "", e="e.", s="")))
    main_ctx = _Ctx(params, level, needs_join=timed)
    if fast is not None:  # every metric is in ``either``: the rollup's part is all there is
        parts.append(_Part("p_main", fast[1], [a for a, _ in either]))
        either, session_only = [], []
    if either:
        parts.append(_Part("p_main", _part_sql(level, q.filters, ds, either, main_ctx),
                           [a for a, _ in either]))
    touch |= main_ctx.needs_touch
    if session_only:
        # the sessions that had a matching event (event filters as has_done)
        ctx = _Ctx(params, "session")
        parts.append(_Part("p_sessions", _part_sql("session", q.filters, ds, session_only, ctx),
                           [a for a, _ in session_only]))
        touch |= ctx.needs_touch
    totals: dict[str, tuple[str, list[int]]] = {}  # metric → (part name, dimension indexes)
    if "percentage" in q.metrics:
        ctx = _Ctx(params, "session" if not event_level else "event", needs_join=timed)
        m = METRICS["visitors"]
        sql = _part_sql(ctx.level, q.filters, [], [("total_", _prefixed(
            m.event_sql if ctx.level == "event" else m.session_sql or "", e="e.", s=""))], ctx)
        parts.append(_Part("t_percentage", sql, ["total_"]))
        totals["percentage"] = ("t_percentage", [])
        touch |= ctx.needs_touch
    if "conversion_rate" in q.metrics and goal:
        # of all the visitors, not those of the row's group: Plausible's total has no
        # dimensions (special_metrics.ex, maybe_add_global_conversion_rate); its filters are
        # the query's but the top-level goal and props ones
        filters = _strip_goals(q.filters)
        lvl = "event" if _event_level([], filters) else "session"
        ctx = _Ctx(params, lvl, needs_join=timed)
        m = METRICS["visitors"]
        sql = _part_sql(lvl, filters, [], [("total_", _prefixed(
            m.event_sql if lvl == "event" else m.session_sql or "", e="e.", s=""))], ctx)
        parts.append(_Part("t_conversion", sql, ["total_"]))
        totals["conversion_rate"] = ("t_conversion", [])
        touch |= ctx.needs_touch

    where = " WHERE session_date BETWEEN $start AND $end"
    if q.start_ts is not None:
        where += f" AND session_start >= {params.add(q.start_ts)}"
    if q.end_ts is not None:
        where += f" AND session_start <= {params.add(q.end_ts)}"
    base = ["SELECT sessions.*"]
    if touch:
        base.append(", t.* EXCLUDE (session_id)")
    base.append(" FROM sessions")
    if touch:
        base.append(f" LEFT JOIN ({load('session_touch')}) t USING (session_id)")
    base.append(where)
    if single and not ds and not totals and len(parts) == 1 and fast is None:
        # One aggregate row (the KPIs): the part is the statement (its columns are the
        # metrics), with no CTE of it, no order, no total_rows (always 1: run() knows). DuckDB
        # binds and plans even a query of no data in ~2.5 ms of CPU; this shape took 2.2
        # against 3.0 ms on the KPIs of an empty range (bench-dashboard-1000000, interleaved).
        head, sep, rest = parts[0].sql.partition(" FROM s")
        # only the shape _part_sql makes of session rows: no other FROM before it (a metric's
        # subquery), nothing but the conditions after it (not " FROM session_events …")
        if (sep and not touch and " FROM " not in head
                and (not rest or rest.startswith(" WHERE "))):
            # session rows: from `sessions` itself, the range a condition of the statement
            sql = f"{head} FROM sessions{where}{rest.replace(' WHERE ', ' AND ', 1)}"
        else:
            sql = f"WITH s AS ({''.join(base)})\n{parts[0].sql}"
        if q.limit is not None:
            sql += f" LIMIT {params.add(int(q.limit))}"
        if q.offset:
            sql += f" OFFSET {params.add(int(q.offset))}"
        return Compiled(sql, params.values, q.dimensions, q.metrics, None,
                        _setup(params))
    ctes = ["s AS (" + "".join(base) + ")"] + [f"{p.name} AS ({p.sql})" for p in parts]

    dim_cols = [f"d{i}" for i, _ in ds]
    rows = [p for p in parts if p.name.startswith("p_")]
    from_sql = rows[0].name
    for p in rows[1:]:
        from_sql += (f" FULL JOIN {p.name} USING ({', '.join(dim_cols)})" if dim_cols
                     else f" CROSS JOIN {p.name}")
    for part, idx in totals.values():
        keys = [f"d{i}" for i in idx]
        from_sql += (f" LEFT JOIN {part} USING ({', '.join(keys)})" if keys
                     else f" CROSS JOIN {part}")
    select = list(dim_cols)
    for name in q.metrics:
        if name in totals:
            select.append(f"{totals[name][0]}.total_ AS {name}_total_")
            select.append(f"visitors_ / nullif({totals[name][0]}.total_, 0) AS {name}")
        else:
            select.append(name)
    # without a dimension every part is one aggregate row: one row (no window to plan; the
    # KPIs of an empty range, all fixed cost, took 2.8 ms of CPU against 3.5 with it)
    select.append("count(*) OVER () AS total_rows" if dim_cols else "1::BIGINT AS total_rows")
    alias = {d: f"d{i}" for i, d in enumerate(q.dimensions)}
    order = list(q.order_by or default_order(q))
    order += [(d, "asc") for d in q.dimensions if d not in {k for k, _ in order}]
    order_sql = ", ".join(f"{alias.get(k, k)} {v.upper()} NULLS LAST" for k, v in order)
    sql = f"WITH {', '.join(ctes)}\nSELECT {', '.join(select)} FROM {from_sql}"
    if dim_cols:  # (one row without: nothing to order)
        sql += f"\nORDER BY {order_sql}"
    if q.limit is not None:
        sql += f" LIMIT {params.add(int(q.limit))}"
    if q.offset:
        sql += f" OFFSET {params.add(int(q.offset))}"
    return Compiled(sql, params.values, q.dimensions, q.metrics,
                    fast[0] if fast is not None else None, _setup(params))


def _setup(params: _Params) -> tuple[str, ...]:
    return tuple(statement for _, statement in (params.tables or {}).values())


@dataclass
class Result:
    """Rows of a query: a column per dimension (named as the dimension) and per metric (raw
    values), and how many rows there are before the page."""

    rows: Any  # pandas.DataFrame
    total_rows: int


def used_dimensions(q: Query) -> set[str]:
    """The dimensions ``q`` groups or filters by."""
    return set(q.dimensions) | {f[1] for f, _ in _walk(q.filters)}


def missing_columns(warehouse: Any, names: Iterable[str]) -> dict[str, str]:
    """Of the dimensions ``names``, those whose ``sessions`` column this warehouse does not have
    yet (a warehouse built before it existed), each with its column."""
    wanted = {n: dimension(n).requires for n in names if n in DIMENSIONS
              and DIMENSIONS[n].requires}
    if not wanted:
        return {}
    have = set(warehouse.df("SELECT column_name FROM duckdb_columns() WHERE table_name = "
                            "'sessions'").column_name)
    return {n: c for n, c in wanted.items() if c not in have}


def run(warehouse: Any, q: Query, rollups: bool = True,
        names: Mapping[str, str] | None = None) -> Result:
    """``q`` on ``warehouse`` (a :class:`~analytics_platform.query.warehouse.Warehouse`), from
    its rollups when one answers ``q`` (``rollups`` False: always from the rows). ``names``:
    the result's columns renamed (a dimension or metric → the caller's name for it)."""
    missing = missing_columns(warehouse, used_dimensions(q))
    if missing:
        raise QueryError("; ".join(
            f"Dimension `{n}` is not in this warehouse yet: its sessions have no `{c}` column "
            "(backfill with the current version)" for n, c in missing.items()) + ".")
    c = compile_query(q, getattr(warehouse, "rollups", ()) if rollups else ())
    try:
        # one aggregate row, numbers only: built from its tuple (Warehouse.aggregate)
        one = None if q.dimensions else getattr(warehouse, "aggregate", None)
        df = (one or warehouse.df)(c.sql, c.params, c.setup)
    except duckdb.CatalogException:
        if c.rollup is None:
            raise
        # the file was swapped between the question and the query, for one without it
        c = compile_query(q)
        df = warehouse.df(c.sql, c.params, c.setup)
    if not q.dimensions:  # one aggregate row (before the page)
        total = 1
    elif len(df):
        total = int(df["total_rows"].iloc[0])
    else:
        total = int(warehouse.df(*_count(c), c.setup).iloc[0, 0]) if q.offset else 0
    # in place (the frame is this call's own), the columns renamed once: a drop and a rename,
    # each a copy, were 1.4 ms of CPU a query, a third of the KPIs' over an empty range
    for col in [c for c in df.columns if c == "total_rows" or c.endswith("_total_")]:
        del df[col]
    dims = {f"d{i}": d for i, d in enumerate(q.dimensions)}
    names = names or {}
    df.columns = [names.get(n, n) for n in (dims.get(c, c) for c in df.columns)]
    return Result(df, total)


def _count(c: Compiled) -> tuple[str, dict[str, Any]]:
    """The rows of ``c`` before its page. Its parameters are all of ``c``'s: the setup
    statements run with them too (those of a behavioural filter's table are in no other
    statement), and Warehouse.df gives each statement only those it names."""
    body = c.sql.rsplit("\nORDER BY", 1)[0]
    return f"SELECT count(*) FROM ({body})", c.params


def sessions_sql(start: date, end: date, filters: Sequence[Any] = ()) -> Statement:
    """A SELECT of the ``sessions`` rows (every column) of the range that pass ``filters``,
    counted as a query's session rows are (an event filter keeps the sessions with such an
    event), its parameters, and the statements to run first on the cursor of the statement
    that embeds it (the temporary tables of its behavioural filters, as
    :attr:`Compiled.setup`): for panels written in SQL of their own over the same sessions as
    every other panel (the dashboard's funnels, goals, cohorts, experiments, reports)."""
    check_filter_depth(tuple(filters))
    frozen = freeze(tuple(filters))
    validate_filters(frozen)
    params = _Params({"start": start, "end": end}, temp_tables=True)
    ctx = _Ctx(params, "session")
    conds = [_cond(f, ctx) for f in frozen]
    touch = f" LEFT JOIN ({load('session_touch')}) t USING (session_id)" if ctx.needs_touch else ""
    where = " AND ".join(["session_date BETWEEN $start AND $end", *conds])
    return (f"SELECT sessions.* FROM sessions{touch} WHERE {where}", params.values,
            _setup(params))


# At most this many time labels (10,000: more than a year of hours, 27 years of days): each
# is built in Python and sent, and a range from 1800 by the hour would be 2M of them.
MAX_TIME_LABELS = 10_000


def time_bucket_count(dim: str, start: date, end: date) -> int:
    """How many buckets :func:`time_labels` gives, without making them."""
    days = (end - start).days + 1
    if dim == "time:hour":
        return days * 24
    if dim == "time:day":
        return days
    if dim == "time:week":  # the range's first day, then every Monday after it
        return (end - (start - timedelta(days=start.weekday()))).days // 7 + 1
    return (end.year - start.year) * 12 + end.month - start.month + 1


def check_time_labels(dim: str, start: date, end: date) -> None:
    """A :class:`QueryError` when the range has more than :data:`MAX_TIME_LABELS` buckets."""
    n = time_bucket_count(dim, start, end)
    if n > MAX_TIME_LABELS:
        raise QueryError(f"Invalid include.time_labels: {dim} over this date_range is {n:,} "
                         f"buckets, more than {MAX_TIME_LABELS:,}; use a shorter range or a "
                         "longer time dimension.")


def time_labels(dim: str, start: date, end: date) -> list[str]:
    """Every bucket of a time dimension in a range, as the API shows them."""
    check_time_labels(dim, start, end)
    if dim == "time:hour":
        first = datetime.combine(start, datetime.min.time())
        return [f"{first + timedelta(hours=h):%Y-%m-%d %H:%M:%S}"
                for h in range(((end - start).days + 1) * 24)]
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if dim == "time:day":
        return [d.isoformat() for d in days]
    if dim == "time:week":
        return sorted({max(d - timedelta(days=d.weekday()), start).isoformat() for d in days})
    return sorted({d.replace(day=1).isoformat() for d in days})


def round_half_up(x: float, digits: int = 0) -> float:
    """Rounding as Plausible's ClickHouse ``round`` does for these metrics (halves away from
    zero), not Python's banker's rounding."""
    f = 10 ** digits
    return math.floor(abs(x) * f + 0.5) / f * (1 if x >= 0 else -1)
