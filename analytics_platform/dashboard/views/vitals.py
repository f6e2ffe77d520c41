"""Web vitals: the 75th percentile of LCP, INP, CLS and TTFB per page as visitors' browsers
measured them, and the share of good measurements, coloured by web.dev's ratings
(web_vitals_daily), against the period before."""

import pandas as pd
import plotly.express as px
import streamlit as st

from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.frame import (
    comparison,
    header,
    missing_mart,
    pct,
    query,
    stats,
)

COLOURS = {"good": "#0cce6b", "needs improvement": "#ffa400", "poor": "#ff4e42"}
BADGES = {"good": "green", "needs improvement": "orange", "poor": "red"}  # st.markdown's
BACKGROUNDS = {"good": "#d8f5e5", "needs improvement": "#ffeccc", "poor": "#ffdcd9"}


def shown(metric: str, value: float | None) -> str:
    if value is None or pd.isna(value):
        return "–"
    if metric == "cls":
        return f"{value:.2f}"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


filters = header("Web vitals")
st.caption("Measured in visitors' browsers (PerformanceObserver), one sample per page load, "
           "sent when the page is hidden. As web.dev assesses a page: the 75th percentile of "
           "the samples, rated good / needs improvement / poor by web.dev's thresholds "
           "(LCP 2.5 s / 4 s, INP 200 ms / 500 ms, CLS 0.1 / 0.25, TTFB 0.8 s / 1.8 s); "
           "“good” is the share of samples within the first. A browser without an API sends no "
           "sample of its metric (Safari and Firefox have no INP or LCP before recent "
           "versions).")
if not missing_mart("web_vitals_daily"):
    now = query(*Q.report(filters, "web_vitals", all_pages=True))
    before = query(*Q.report(filters.previous(), "web_vitals", all_pages=True))
    if now.empty:
        st.info("No web vitals were measured in these sessions.")
    else:
        cols = st.columns(4)
        for col, (m, (label, _, _, _)) in zip(cols, Q.VITALS.items(), strict=True):
            v = now[f"{m}_p75"].iloc[0]
            b = before[f"{m}_p75"].iloc[0] if len(before) else None
            delta = None
            if b is not None and pd.notna(b) and pd.notna(v):
                delta = f"{v - b:+.2f}" if m == "cls" else f"{v - b:+.0f} ms"
            good, samples = pct(now[f"{m}_good"].iloc[0]), int(now[f"{m}_samples"].iloc[0])
            col.metric(f"{m.upper()} p75", shown(m, v), delta, delta_color="inverse",
                       help=f"{label}: {good} of {samples:,} samples good")
            rate = Q.rating(m, v)
            col.markdown(f":{BADGES[rate]}[{rate}] · {good} good" if rate else "no samples")
        st.caption("Every page together; a change is the p75 against the period before (lower "
                   "is better). " + comparison(filters, stats(Q.kpis(filters.previous()))
                                               .sessions.iloc[0]))
        pages = query(*Q.report(filters, "web_vitals"))
        top = pages.head(15).assign(rating=[Q.rating("lcp", v) or "no samples"
                                            for v in pages.head(15).lcp_p75])
        fig = px.bar(top, x="lcp_p75", y="page_path", color="rating", orientation="h",
                     color_discrete_map={**COLOURS, "no samples": "#bbbbbb"},
                     labels={"lcp_p75": "LCP p75 (ms)", "page_path": "", "rating": ""})
        fig.add_vline(x=Q.VITALS["lcp"][2], line_dash="dot", line_color=COLOURS["good"])
        fig.add_vline(x=Q.VITALS["lcp"][3], line_dash="dot", line_color=COLOURS["poor"])
        fig.update_layout(height=80 + 24 * len(top), margin={"l": 0, "r": 0, "t": 10, "b": 0},
                          yaxis={"autorange": "reversed"}, legend={"orientation": "h",
                                                                   "y": -0.15})
        st.subheader("Per page")
        st.plotly_chart(fig, width="stretch", key="vitals_chart")
        table = pd.DataFrame({"Page": pages.page_path, "Samples": pages.samples})
        for m in Q.VITALS:
            table[f"{m.upper()} p75"] = [shown(m, v) for v in pages[f"{m}_p75"]]
            table[f"{m.upper()} good"] = [pct(g) for g in pages[f"{m}_good"]]

        def colour(col: pd.Series) -> list[str]:
            m = col.name.split()[0].lower()
            if not col.name.endswith("p75"):
                return [""] * len(col)
            return [f"background-color: {BACKGROUNDS[r]}" if (r := Q.rating(m, v)) else ""
                    for v in pages[f"{m}_p75"]]

        st.dataframe(table.style.apply(colour), hide_index=True, width="stretch",
                     column_config={"Samples": st.column_config.NumberColumn(
                         format="localized", width="small")}, key="vitals_table")
        st.caption("p75 cells: green good, amber needs improvement, red poor. A page with few "
                   "samples can change a lot from one period to the next.")
