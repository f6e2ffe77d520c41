"""What the dashboard asks the warehouse, through the query layer the API uses too
(``analytics_platform/query/``): one query per panel.

Every panel counts sessions (and their events) narrowed by the same :class:`Filters`, so a filter
means the same thing everywhere: sessions of those days, from those sources / mediums /
campaigns, in those countries, on those devices and browsers, that viewed that page, that
completed that goal. The filters are the API's (Plausible's Stats API v2 filter expressions) and
the Overview, Sources and Devices panels are :class:`~analytics_platform.query.stats.Query`
objects, so ``POST /api/v2/query`` counts exactly what they show. The panels written in SQL of
their own (funnels, goals, cohorts, experiments, first/last touch) run the pipeline's own mart
SQL over the same filtered sessions (:func:`~analytics_platform.query.stats.sessions_sql`), or
read the mart itself when no filter it cannot honour is set; journeys read only their mart (its
k threshold is applied per day, CONTRACT §5).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from analytics_platform import mart_logic, settings
from analytics_platform import sql as pipeline_sql
from analytics_platform.config import load_funnels
from analytics_platform.query.handwritten import fill, load
from analytics_platform.query.stats import (
    Query,
    Statement,
    configured_goals,
    run,
    sessions_sql,
)
from analytics_platform.query.warehouse import Warehouse, _cursor  # noqa: F401  (re-exported)

# The sidebar's filters: (Filters field, URL parameter, label).
FILTERS = (("sources", "source", "Source"), ("mediums", "medium", "Medium"),
           ("campaigns", "campaign", "Campaign"), ("page", "page", "Page"),
           ("countries", "country", "Country"), ("devices", "device", "Device"),
           ("browsers", "browser", "Browser"), ("goal", "goal", "Completed goal"))
LABELS = {name: label for name, _, label in FILTERS}


@dataclass(frozen=True)
class Filters:
    """The date range (session dates, inclusive) and the sidebar's filters; a tuple is "any
    of", empty for all."""

    start: date
    end: date
    sources: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    page: str | None = None
    mediums: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    browsers: tuple[str, ...] = ()
    goal: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The period of equal length just before."""
        return replace(self, start=self.start - timedelta(days=self.days),
                       end=self.start - timedelta(days=1))

    def chosen(self) -> dict[str, str]:
        """The filters that are set, by field name, as the reader sees them."""
        out = {}
        for name, _, _ in FILTERS:
            v = getattr(self, name)
            if v:
                out[name] = ", ".join(v) if isinstance(v, tuple) else v
        return out

    def without(self, names: set[str] | frozenset[str]) -> Filters:
        """These filters cleared (a view they do not apply to)."""
        return replace(self, **{n: (None if n in ("page", "goal") else ()) for n in names})

    def only_dates(self) -> bool:
        return not self.chosen()

    def params(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    def conditions(self) -> tuple[Any, ...]:
        """The filters as the API writes them: the page filter keeps the sessions that viewed
        the page, the goal filter those that completed the goal (Plausible's ``has_done``)."""
        out: list[Any] = []
        for name, dim in (("sources", "visit:source"), ("mediums", "visit:medium"),
                          ("campaigns", "visit:campaign"), ("countries", "visit:country"),
                          ("devices", "visit:device"), ("browsers", "visit:browser")):
            if getattr(self, name):
                out.append(["is", dim, list(getattr(self, name))])
        if self.page is not None:
            out.append(["has_done", ["and", [["is", "event:page", [self.page]],
                                             ["is", "event:name", ["pageview"]]]]])
        if self.goal is not None:
            out.append(["has_done", ["is", "event:goal", [self.goal]]])
        return tuple(out)

    def query(self, metrics: tuple[str, ...], dimensions: tuple[str, ...] = (),
              extra: tuple[Any, ...] = (), order_by: tuple[tuple[str, str], ...] = (),
              limit: int | None = None) -> Query:
        return Query(self.start, self.end, metrics, dimensions, self.conditions() + extra,
                     order_by, limit)

    def sessions(self) -> Statement:
        """The SELECT of the sessions these filters keep, its parameters, and the statements
        to run before it (stats.sessions_sql)."""
        return sessions_sql(self.start, self.end, self.conditions())


KPI_METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "conversions",
               "conversion_rate")


def kpis(f: Filters) -> Query:
    return f.query(KPI_METRICS)


def series(f: Filters, hourly: bool) -> Query:
    """Visitors, sessions, pageviews and conversions per day (per hour the session started)."""
    return f.query(("visitors", "visits", "pageviews", "conversions"),
                   ("time:hour" if hourly else "time:day",))


def top_pages(f: Filters) -> Query:
    """The 15 most viewed pages: page views, and visitors who viewed them."""
    return f.query(("pageviews", "visitors"), ("event:page",),
                   (["is", "event:name", ["pageview"]],),
                   (("pageviews", "desc"), ("event:page", "asc")), 15)


def entry_pages(f: Filters) -> Query:
    return f.query(("visits", "bounce_rate"), ("visit:entry_page",), limit=10)


def exit_pages(f: Filters) -> Query:
    return f.query(("visits",), ("visit:exit_page",), limit=10)


def sources(f: Filters) -> Query:
    return f.query(("visits", "visitors", "conversions", "conversion_rate"),
                   ("visit:source", "visit:medium", "visit:campaign"))


# The Devices view: each of the devices_daily mart's dimensions, from the filtered sessions.
DEVICE_DIMENSIONS = {"device_type": "visit:device", "browser": "visit:browser",
                     "os": "visit:os", "screen_class": "visit:screen"}
DEVICE_METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration",
                  "conversions", "conversion_rate")


def devices(f: Filters, dimension: str) -> Query:
    return f.query(DEVICE_METRICS, (DEVICE_DIMENSIONS[dimension],),
                   order_by=(("visits", "desc"), (DEVICE_DIMENSIONS[dimension], "asc")))


def countries(f: Filters) -> Query:
    return f.query(("visitors", "visits", "bounce_rate", "conversions", "conversion_rate"),
                   ("visit:country",), order_by=(("visits", "desc"), ("visit:country", "asc")))


# The dashboard's names of the layer's columns.
COLUMNS = {"event:page": "page_path", "visit:entry_page": "page_path",
           "visit:exit_page": "page_path", "visit:source": "source", "visit:medium": "medium",
           "visit:campaign": "campaign", "visits": "sessions", "visit_duration": "avg_duration_s",
           "time:day": "period", "time:hour": "period", "visit:country": "country",
           **{v: "value" for v in DEVICE_DIMENSIONS.values()}}


def table(wh: Warehouse, q: Query) -> pd.DataFrame:
    """``q``'s rows with the dashboard's column names (raw values: rates as fractions)."""
    df = run(wh, q, names=COLUMNS).rows  # its own frame, renamed once (stats.run)
    if "period" in df.columns:
        df["period"] = pd.to_datetime(df["period"])
    return df


# --- panels in SQL of their own, over the filtered sessions --------------------------------------

def _over(f: Filters, body: str, with_events: bool = False) -> Statement:
    """``body`` (a mart's statement reading ``s``, the sessions, and ``e``, their events) over
    the sessions ``f`` keeps."""
    sessions, params, setup = f.sessions()
    ctes = [f"s AS ({sessions})"]
    if with_events:
        ctes.append("e AS (SELECT * FROM session_events WHERE session_date BETWEEN $start AND "
                    "$end AND session_id IN (SELECT session_id FROM s))")
    return f"WITH {', '.join(ctes)}\nSELECT * FROM ({body})", params, setup


def funnels(f: Filters) -> list[tuple[str, str, dict[str, Any], tuple[str, ...]]]:
    """Per funnel of funnels.yaml: (name, SQL, parameters, setup) of its steps over the filtered
    sessions, with the funnel_daily mart's own SQL (a session's steps are its own events, so a
    range is the sum of its days)."""
    path = settings.funnels_file()
    out = []
    for fn in load_funnels(None if path is None else Path(path)):
        q, params, setup = _over(f, mart_logic.funnel_sql(fn), with_events=True)
        out.append((fn.name, f"SELECT funnel, step, step_name, sessions FROM ({q}) ORDER BY step",
                    {**params, "date": f.start}, setup))
    return out


def goals(f: Filters) -> Statement:
    """Conversions per goal and source over the filtered sessions (goals_daily's SQL)."""
    q, params, setup = _over(f, mart_logic.goals_sql(list(configured_goals().values())),
                             with_events=True)
    return (f"SELECT goal, source, sum(sessions)::BIGINT AS sessions, "
            f"sum(conversions)::BIGINT AS conversions, sum(events)::BIGINT AS events, "
            f"sum(conversions) / sum(sessions) AS conversion_rate FROM ({q}) GROUP BY ALL",
            params, setup)


def goals_from_mart(f: Filters) -> tuple[str, dict[str, Any]]:
    return GOALS, {"start": f.start, "end": f.end, "sources": list(f.sources),
                   "mediums": list(f.mediums), "campaigns": list(f.campaigns)}


GOALS_MART_FILTERS = frozenset({"sources", "mediums", "campaigns"})


def _visitors_whose(which: str) -> str:
    """Every session (all history) of the consented visitors whose first session (``which`` =
    "first") or first converting session ("converted") is one ``f`` keeps."""
    cond = "" if which == "first" else " FILTER (converted)"
    return (f"SELECT * FROM sessions WHERE visitor_id IN (SELECT visitor_id FROM ("
            f"SELECT visitor_id, first(session_id ORDER BY session_start, session_id){cond} AS "
            f"chosen FROM sessions WHERE visitor_id IS NOT NULL GROUP BY visitor_id) "
            f"WHERE chosen IN (SELECT session_id FROM f_))")


def _history(f: Filters, mart: str, which: str) -> Statement:
    sessions, params, setup = f.sessions()
    return (f"WITH f_ AS ({sessions}), s AS ({_visitors_whose(which)})\n"
            f"SELECT * FROM ({pipeline_sql.load(f'marts/{mart}')})", params, setup)


def cohorts(f: Filters) -> Statement:
    """cohort_retention's SQL over the visitors whose first session is one ``f`` keeps (a
    cohort of the range, acquired from that source, on that device…), all their sessions."""
    return _history(f, "cohort_retention", "first")


def touch(f: Filters) -> Statement:
    """attribution_touch's SQL over the visitors whose first conversion is in a session ``f``
    keeps: last touch is that session's attribution, first touch their first session ever's."""
    return _history(f, "attribution_touch", "converted")


def experiments(f: Filters) -> Statement:
    """experiments' SQL (sessions, conversions per variant) over the filtered sessions; the
    statistics are the mart's own (mart_logic.compare_variants)."""
    sessions, params, setup = f.sessions()
    return (f"WITH s AS ({sessions})\nSELECT * FROM ({pipeline_sql.load('marts/experiments')})",
            params, setup)


def compare_variants(df: pd.DataFrame, *, decision: bool = False) -> pd.DataFrame:
    """Lift and p-value of each variant against its baseline, as the experiments mart does
    (with ``decision``, also what the dashboard's verdict rests on: mart_logic.compare_variants)."""
    cols = ["experiment", "variant", "sessions", "conversions", "conversion_rate"]
    rows = [tuple(r) for r in df[cols].itertuples(index=False)]
    return mart_logic.compare_variants(rows, decision=decision).to_pandas()


# --- issue 19's report marts: countries, outbound links, downloads, 404s, web vitals, engaged time

# each report: its query's file in query/sql/, the mart it reads, and whether the mart's SQL
# reads the sessions' events (``e``) or only the sessions (``s``)
REPORTS = {"countries": ("countries_daily", False), "outbound": ("outbound_daily", True),
           "downloads": ("downloads_daily", True), "not_found": ("not_found_daily", True),
           "engagement": ("engagement_daily", True), "web_vitals": ("web_vitals_daily", True)}


# web.dev's ratings of a page's p75 (https://web.dev/articles/vitals, /articles/ttfb): good up
# to the first bound, poor above the second, "needs improvement" between; the first is the one
# web_vitals_daily counts as good (CONTRACT §5). metric → (label, unit, good, poor)
VITALS = {"lcp": ("Largest Contentful Paint", "ms", 2500, 4000),
          "inp": ("Interaction to Next Paint", "ms", 200, 500),
          "cls": ("Cumulative Layout Shift", "", 0.1, 0.25),
          "ttfb": ("Time to First Byte", "ms", 800, 1800)}


def rating(metric: str, value: float | None) -> str | None:
    """web.dev's rating of a p75: good, needs improvement or poor (None without samples)."""
    if value is None or value != value:  # NULL or NaN: no samples
        return None
    _, _, good, poor = VITALS[metric]
    return "good" if value <= good else "poor" if value > poor else "needs improvement"


def report(f: Filters, name: str, all_pages: bool = False) -> Statement:
    """A report of REPORTS over ``f``'s range: from its mart when the mart answers exactly (no
    filter but the dates; web vitals, whose p75 does not add up over days: one day), else its
    mart's own SQL over the sessions ``f`` keeps and their events, the range counted as one
    period (every ``session_date`` read as ``$start``). ``all_pages``: web vitals over every
    page as one (``page_path`` read as "(all pages)": the percentile of all the samples)."""
    mart, with_events = REPORTS[name]
    exact = f.only_dates() and (name != "web_vitals" or f.days == 1) and not all_pages
    if exact:
        return fill(name, rows=mart), {"start": f.start, "end": f.end}, ()
    sessions, params, setup = f.sessions()
    ctes = [f"s AS (SELECT * REPLACE ($start::DATE AS session_date) FROM ({sessions}))"]
    if with_events:
        page = "'(all pages)' AS page_path, " if all_pages else ""
        # every session of the range is kept without filters: no semi-join (web vitals of a
        # week, 258k events: 382 → 100 ms)
        kept = "" if f.only_dates() else " AND session_id IN (SELECT session_id FROM s)"
        only = " AND event_type = 'web_vitals'" if name == "web_vitals" else ""
        ctes.append(f"e AS (SELECT * REPLACE ({page}$start::DATE AS session_date) FROM "
                    f"session_events WHERE session_date BETWEEN $start AND $end{kept}{only})")
    body = pipeline_sql.load(f"marts/{mart}")
    return f"WITH {', '.join(ctes)}\n" + fill(name, rows=f"({body})"), params, setup


TOUCH = load("touch")
FUNNEL = load("funnel")
COHORTS = load("cohorts")
EXPERIMENTS = load("experiments")
RANGE = load("range")
CHOICES = load("choices")
COUNTRY_CHOICES = load("choices_country")
CONSENT_COVERAGE = load("consent_coverage")
COLUMNS_SQL = load("columns")
JOURNEYS = load("journeys")
JOURNEY_ENTRIES = load("journey_entries")
GOALS = load("goals")
