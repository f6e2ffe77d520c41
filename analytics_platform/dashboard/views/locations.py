"""Locations: the filtered sessions by country, without the IP address (countries_daily), and
how each country is known, against the period before."""

from functools import cache
from importlib.resources import files

import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import (
    comparison,
    header,
    missing_mart,
    query,
    show_table,
    with_change,
)

KNOWN_BY = {"time_zone": "time zone (approximate)", "cloudfront": "CloudFront",
            "(unknown)": "–"}


@cache
def country_names() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → English name, from the tz database's ``iso3166.tab`` (the
    ``tzdata`` package the country mapping reads too)."""
    text = files("tzdata.zoneinfo").joinpath("iso3166.tab").read_text(encoding="utf-8")
    return dict(line.split("\t")[:2] for line in text.splitlines()
                if line and not line.startswith("#"))


def named(code: str) -> str:
    name = country_names().get(code)
    return f"{name} ({code})" if name else code


filters = header("Locations")
st.caption("The country of a session is its first event's, found without the IP address: "
           "behind CloudFront its viewer-country header, otherwise the browser's time-zone "
           "setting mapped to a country (**approximate**: 89.1 % of the tz database's zones "
           "are used by exactly one country; a traveller keeps the home zone, and a zone "
           "shared by several countries counts for one of them: docs/INGEST.md, \"Country\"). "
           "Only the country is stored, never a region or city.")
if not missing_mart("countries_daily"):
    now, before = query(*Q.report(filters, "countries")), query(
        *Q.report(filters.previous(), "countries"))
    if now.empty:
        st.info("No sessions match these filters.")
    else:
        now["country_name"] = now.country.map(named)
        now["known_by"] = now.country_source.map(lambda s: KNOWN_BY.get(s, s))
        now["share"] = now.sessions / now.sessions.sum()
        now["bounce_rate"] = now.bounces / now.sessions
        now["conversion_rate"] = now.conversions / now.sessions
        approx = now[now.country_source == "time_zone"].sessions.sum() / now.sessions.sum()
        per_country = now.groupby(["country_name", "known_by"], as_index=False).sessions.sum()
        top = per_country.sort_values("sessions", ascending=False).head(15)
        fig = px.bar(top, x="sessions", y="country_name", color="known_by", orientation="h",
                     labels={"country_name": "", "sessions": "sessions", "known_by": ""},
                     color_discrete_map={KNOWN_BY["time_zone"]: "#7aa6d8",
                                         KNOWN_BY["cloudfront"]: "#1f4e89", "–": "#bbbbbb"})
        fig.update_layout(height=80 + 26 * top.country_name.nunique(),
                          margin={"l": 0, "r": 0, "t": 10, "b": 0},
                          yaxis={"categoryorder": "total ascending"},
                          legend={"orientation": "h", "y": -0.15})
        st.plotly_chart(fig, width="stretch", key="countries_chart")
        st.caption(f"{approx:.0%} of these sessions have a country from the time zone "
                   "(approximate).")
        table = with_change(now, before, ["country", "country_source"])
        show_table(table, ["country_name", "known_by", "sessions", "change", "share",
                           "pageviews", "bounce_rate", "conversion_rate"],
                   key="countries_table")
        st.caption("“vs before”: sessions against the period before. "
                   + comparison(filters, float(before.sessions.sum()) if len(before) else 0.0))
