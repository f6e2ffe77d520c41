"""The site owner's dashboard (Streamlit): `analytics-platform dashboard`.

Reads `$ANALYTICS_DATA_DIR/warehouse.duckdb` read-only (it can run while the pipeline writes).
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analytics_platform import settings
from analytics_platform.dashboard import queries as Q
from analytics_platform.dashboard.examples import EXAMPLES
from analytics_platform.dashboard.realtime import recent_activity
from analytics_platform.dashboard.sandbox import PlaygroundError, run_query

VIEWS = ["Overview", "Sources", "Funnel", "Cohorts", "Experiments", "Realtime", "SQL"]

st.set_page_config(page_title="Analytics", page_icon="📈", layout="wide")
DATA = settings.data_dir()
wh = Q.Warehouse(DATA / "warehouse.duckdb")


@st.cache_data(ttl=30, show_spinner=False)
def query(sql: str, params: tuple = ()) -> pd.DataFrame:
    # Cached for 30 s: the page stays quick on millions of events, and new data shows soon.
    return wh.df(sql, dict(params))


def frozen(f: Q.Filters, keys: tuple[str, ...] | None = None) -> tuple:
    items = f.params()
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in items.items()
                 if keys is None or k in keys)


def pct(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.1%}"


def change(now: float | None, before: float | None, points: bool = False) -> str | None:
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


st.sidebar.title("Analytics")
view = st.sidebar.radio("View", VIEWS, key="view")

if view == "Realtime":
    pass  # reads the raw lake, not the warehouse: works before any backfill
elif not wh.ready:
    st.info(
        "**No data yet.** The warehouse is empty or has no sessions. Fill it with two weeks of "
        "simulated traffic:\n\n```sh\nmake demo\n```\n\nor, step by step:\n\n```sh\n"
        "analytics-platform simulate --days 14\nanalytics-platform backfill --from YYYY-MM-DD "
        "--to YYYY-MM-DD\n```"
    )
    st.stop()
elif view != "SQL" and wh.outdated:
    st.warning(
        "**The sessions were built by an older version** (they have no `visitor_key`). "
        "Rebuild them once, for every day you have:\n\n```sh\nanalytics-platform backfill "
        "--from YYYY-MM-DD --to YYYY-MM-DD\n```"
    )
    st.stop()

if view not in ("Realtime", "SQL"):
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
    filters = Q.Filters(start, end, tuple(chosen_sources), tuple(chosen_devices),
                        None if page == "All pages" else page)

if view == "Overview":
    st.header(f"Overview · {filters.start:%d %b} – {filters.end:%d %b %Y}")
    now = query(Q.KPIS, frozen(filters)).iloc[0]
    before = query(Q.KPIS, frozen(filters.previous())).iloc[0]
    cols = st.columns(6)
    cols[0].metric("Visitors", f"{int(now.visitors):,}", change(now.visitors, before.visitors))
    cols[1].metric("Sessions", f"{int(now.sessions):,}", change(now.sessions, before.sessions))
    cols[2].metric("Pageviews", f"{int(now.pageviews):,}",
                   change(now.pageviews, before.pageviews))
    cols[3].metric("Bounce rate", pct(now.bounce_rate),
                   change(now.bounce_rate, before.bounce_rate, points=True),
                   delta_color="inverse")
    cols[4].metric("Visit duration", duration(now.avg_duration_s),
                   change(now.avg_duration_s, before.avg_duration_s))
    cols[5].metric("Conversion rate", pct(now.conversion_rate),
                   change(now.conversion_rate, before.conversion_rate, points=True))
    st.caption(f"{int(now.conversions):,} sessions clicked “Book a call”. Changes compare with the "
               f"{(filters.end - filters.start).days + 1} days before.")
    hourly = (filters.end - filters.start).days < 2
    series = query(Q.SERIES_HOURLY if hourly else Q.SERIES_DAILY, frozen(filters))
    if series.empty:
        st.info("No sessions match these filters.")
    else:
        fig = px.line(series, x="period", y=["visitors", "sessions", "pageviews"], markers=True,
                      labels={"period": "hour" if hourly else "day", "value": "",
                              "variable": ""})
        fig.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key="series")
    left, mid, right = st.columns(3)
    left.subheader("Top pages")
    left.dataframe(query(Q.top_pages_sql(filters), frozen(filters)), hide_index=True,
                   width="stretch")
    mid.subheader("Entry pages")
    entry = query(Q.ENTRY_PAGES, frozen(filters))
    mid.dataframe(entry, hide_index=True, width="stretch",
                  column_config={"bounce_rate": st.column_config.NumberColumn(format="percent")})
    right.subheader("Exit pages")
    right.dataframe(query(Q.EXIT_PAGES, frozen(filters)), hide_index=True,
                    width="stretch")

elif view == "Sources":
    st.header("Sources")
    src = query(Q.SOURCES, frozen(filters))
    if src.empty:
        st.info("No sessions match these filters.")
    else:
        by_source = src.groupby("source", as_index=False)[["sessions", "conversions"]].sum()
        by_source["conversion_rate"] = by_source.conversions / by_source.sessions
        fig = px.bar(by_source.sort_values("sessions", ascending=False).head(12), x="source",
                     y="sessions", color="conversion_rate", color_continuous_scale="Blues",
                     labels={"conversion_rate": "conversion rate"})
        fig.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key="sources_chart")
        st.dataframe(src, hide_index=True, width="stretch", column_config={
            "conversion_rate": st.column_config.NumberColumn("conversion rate", format="percent")})
    st.subheader("First touch vs last touch")
    st.caption("Each converting visitor counts once for the source of their first session ever "
               "and once for the session in which they converted (all history).")
    touch = query(Q.TOUCH) if "attribution_touch" in wh.tables else pd.DataFrame()
    if not touch.empty:
        top = touch.head(10).assign(label=lambda d: d.source + " / " + d.medium)
        fig = go.Figure([
            go.Bar(name="first touch", x=top.label, y=top.first_touch_conversions),
            go.Bar(name="last touch", x=top.label, y=top.last_touch_conversions),
        ])
        fig.update_layout(barmode="group", height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key="touch_chart")
        st.dataframe(touch, hide_index=True, width="stretch")

elif view == "Funnel":
    st.header("Funnels")
    st.caption("Sessions reaching each step, in order (a step counts when it happens at or "
               "after the previous one). Funnels are defined in funnels.yaml.")
    funnel = query(Q.FUNNEL, frozen(filters, ("start", "end")))
    if funnel.empty:
        st.info("No funnel data for these days.")
    for name, steps in funnel.groupby("funnel", sort=True):
        st.subheader(name)
        steps = steps.sort_values("step").reset_index(drop=True)
        first = steps.sessions.iloc[0] or 1
        steps["of first step"] = steps.sessions / first
        steps["of previous step"] = steps.sessions / steps.sessions.shift(1).fillna(
            steps.sessions.iloc[0]).replace(0, 1)
        fig = go.Figure(go.Funnel(y=steps.step_name, x=steps.sessions,
                                  textinfo="value+percent initial"))
        fig.update_layout(height=360, margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key=f"funnel_{name}")
        st.dataframe(steps[["step", "step_name", "sessions", "of first step",
                            "of previous step"]], hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="percent")
                                    for c in ("of first step", "of previous step")})

elif view == "Cohorts":
    st.header("Cohorts · weekly retention")
    st.caption("Visitors grouped by the week (Monday) of their first session; each cell is the "
               "share seen again that many weeks later (all history).")
    cohorts = query(Q.COHORTS) if "cohort_retention" in wh.tables else pd.DataFrame()
    if cohorts.empty:
        st.info("No cohorts yet.")
    else:
        grid = cohorts.pivot(index="cohort_week", columns="week_offset", values="retention")
        grid.index = [f"{d:%Y-%m-%d} ({n:,})" for d, n in
                      cohorts.groupby("cohort_week").cohort_size.first().items()]
        fig = px.imshow(grid, text_auto=".0%", color_continuous_scale="Blues", aspect="auto",
                        labels={"x": "weeks later", "y": "cohort (visitors)",
                                "color": "retention"})
        fig.update_layout(height=120 + 40 * len(grid), margin={"l": 0, "r": 0, "t": 10, "b": 0})
        st.plotly_chart(fig, width="stretch", key="cohorts")

elif view == "Experiments":
    st.header("Experiments")
    exp = query(Q.EXPERIMENTS) if "experiments" in wh.tables else pd.DataFrame()
    if exp.empty:
        st.info("No experiment data: pages declare one with "
                "`<html data-analytics-experiment=… data-analytics-variant=…>`.")
    for name, rows in exp.groupby("experiment"):
        st.subheader(name)
        st.dataframe(rows.drop(columns=["experiment"]), hide_index=True,
                     width="stretch", column_config={
                         "conversion_rate": st.column_config.NumberColumn(format="percent"),
                         "lift": st.column_config.NumberColumn(format="percent")})
        for r in rows.itertuples():
            if r.variant == r.baseline:
                continue
            if pd.isna(r.p_value):
                st.info(f"{r.variant}: not enough data to compare with {r.baseline}.")
            elif r.p_value < 0.05:
                better = "better" if r.lift > 0 else "worse"
                st.success(f"**{r.variant}** converts {abs(r.lift):.0%} {better} than "
                           f"{r.baseline} ({r.conversion_rate:.2%} vs baseline) — significant "
                           f"(p = {r.p_value:.3g}).")
            else:
                st.warning(f"**{r.variant}**: {r.lift:+.0%} against {r.baseline}, not yet "
                           f"significant (p = {r.p_value:.2f}); keep the test running.")

elif view == "Realtime":
    st.header("Realtime · last 30 minutes")

    @st.fragment(run_every=timedelta(seconds=10))
    def live() -> None:
        act = recent_activity(settings.raw_url(), datetime.now(UTC))
        c1, c2, c3 = st.columns(3)
        c1.metric("Events", f"{act.events:,}")
        c2.metric("Active sessions", f"{act.sessions:,}")
        c3.metric("Pageviews", f"{act.pageviews:,}")
        if act.per_minute.empty:
            st.info("Nothing in the last 30 minutes. Open the collector's demo page "
                    "(http://127.0.0.1:8000/demo) and click around.")
        else:
            fig = px.bar(act.per_minute, x="minute", y="events")
            fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 10, "b": 0})
            st.plotly_chart(fig, width="stretch", key="realtime_chart")
            st.dataframe(act.top_pages, hide_index=True, width="stretch")
        st.caption(f"From the newest raw objects in {settings.raw_url()}, refreshed every 10 s; "
                   f"updated {datetime.now(UTC):%H:%M:%S} UTC.")

    live()

elif view == "SQL":
    st.header("SQL playground")
    st.caption("Read-only: the warehouse's tables (" + ", ".join(sorted(wh.tables)) + "). "
               "At most 10,000 rows and 10 s per query.")
    example = st.selectbox("Examples", list(EXAMPLES), key="example")
    sql = st.text_area("Query", EXAMPLES[example], height=180, key=f"sql_{example}")
    if st.button("Run", type="primary", key="run") or st.session_state.get("ran") == sql:
        st.session_state["ran"] = sql
        try:
            res = run_query(sql, DATA / "warehouse.duckdb", DATA / "lake")
        except PlaygroundError as e:
            st.error(str(e))
        else:
            df = pd.DataFrame(res.rows, columns=res.columns)
            if res.truncated:
                st.warning("Only the first 10,000 rows are shown.")
            numeric = df.select_dtypes("number").columns
            if len(df.columns) >= 2 and len(numeric) >= 1 and df.columns[0] not in numeric \
                    and len(df) <= 500:
                fig = px.bar(df, x=df.columns[0], y=numeric[0])
                fig.update_layout(height=300, margin={"l": 0, "r": 0, "t": 10, "b": 0})
                st.plotly_chart(fig, width="stretch", key="sql_chart")
            st.dataframe(df, hide_index=True, width="stretch")
            st.download_button("Download CSV", df.to_csv(index=False).encode(),
                               file_name="query.csv", mime="text/csv", key="download")

st.sidebar.caption(f"Warehouse: {Path(DATA / 'warehouse.duckdb')}")
