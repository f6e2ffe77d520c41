"""What the dashboard asks the warehouse, through the query layer the API uses too
(``analytics_platform/query/``): one query per panel.

Every panel of the Overview and Sources views counts sessions (and their events) narrowed by the
filters, so a filter means the same thing everywhere: sessions of those days, from those
sources, on those devices, that viewed that page. The filters are the API's (Plausible's Stats
API v2 filter expressions) and the panels are :class:`~analytics_platform.query.stats.Query`
objects, so ``POST /api/v2/query`` counts exactly what a panel shows. Funnels, cohorts,
experiments and first/last touch read their marts as the pipeline computed them (hand-written
SQL in ``analytics_platform/query/sql/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from analytics_platform.query.handwritten import load
from analytics_platform.query.stats import Query, run
from analytics_platform.query.warehouse import Warehouse, _cursor  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    sources: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    page: str | None = None

    def previous(self) -> Filters:
        """The period of equal length just before."""
        days = (self.end - self.start).days + 1
        return Filters(self.start - timedelta(days=days), self.start - timedelta(days=1),
                       self.sources, self.devices, self.page)

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "sources": list(self.sources),
                "devices": list(self.devices), "page": self.page}

    def conditions(self) -> tuple[Any, ...]:
        """The filters as the API writes them: the page filter keeps the sessions that viewed
        the page (Plausible's ``has_done``)."""
        out: list[Any] = []
        if self.sources:
            out.append(["is", "visit:source", list(self.sources)])
        if self.devices:
            out.append(["is", "visit:device", list(self.devices)])
        if self.page is not None:
            out.append(["has_done", ["and", [["is", "event:page", [self.page]],
                                             ["is", "event:name", ["pageview"]]]]])
        return tuple(out)

    def query(self, metrics: tuple[str, ...], dimensions: tuple[str, ...] = (),
              extra: tuple[Any, ...] = (), order_by: tuple[tuple[str, str], ...] = (),
              limit: int | None = None) -> Query:
        return Query(self.start, self.end, metrics, dimensions, self.conditions() + extra,
                     order_by, limit)


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


# The dashboard's names of the layer's columns.
COLUMNS = {"event:page": "page_path", "visit:entry_page": "page_path",
           "visit:exit_page": "page_path", "visit:source": "source", "visit:medium": "medium",
           "visit:campaign": "campaign", "visits": "sessions", "visit_duration": "avg_duration_s",
           "time:day": "period", "time:hour": "period"}


def table(wh: Warehouse, q: Query) -> pd.DataFrame:
    """``q``'s rows with the dashboard's column names (raw values: rates as fractions)."""
    df = run(wh, q).rows.rename(columns=COLUMNS)
    if "period" in df.columns:
        df["period"] = pd.to_datetime(df["period"])
    return df


TOUCH = load("touch")
FUNNEL = load("funnel")
COHORTS = load("cohorts")
EXPERIMENTS = load("experiments")
RANGE = load("range")
CHOICES = load("choices")
CONSENT_COVERAGE = load("consent_coverage")
