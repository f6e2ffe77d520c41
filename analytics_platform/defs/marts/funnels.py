"""``funnel_daily``: sessions reaching each step of each configured funnel (CONTRACT §5).

Funnels come from ``funnels.yaml`` (or ``$ANALYTICS_FUNNELS_FILE``). A session reaches step k
when it has a step-k event at or after the time it reached step k−1; the SQL is one CTE per
step, each joining the previous step's times.
"""

from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform.config import Funnel, FunnelStep, load_funnels
from analytics_platform.defs.marts.assets import daily_mart_asset, run_daily
from analytics_platform.resources import LakeResource, PipelineSettings
from analytics_platform.sql import literal as _lit


def step_condition(step: FunnelStep, alias: str = "e") -> str:
    """The SQL condition an event must meet to count for ``step``."""
    cond = [f"{alias}.event_type = {_lit(step.event_type)}"]
    if step.page_path is not None:
        cond.append(f"{alias}.page_path = {_lit(step.page_path)}")
    if step.prop is not None:
        value = f"{alias}.props::JSON->>{_lit(step.prop)}"
        if step.min is not None:
            cond.append(f"try_cast({value} AS DOUBLE) >= {float(step.min)}")
        if step.equals is not None:
            eq = str(step.equals).lower() if isinstance(step.equals, bool) else step.equals
            cond.append(f"{value} = {_lit(eq)}")
        if step.min is None and step.equals is None:
            cond.append(f"{value} IS NOT NULL")
    return " AND ".join(cond)


def funnel_sql(funnel: Funnel) -> str:
    """Steps reached per session, then counted: date, funnel, step, step_name, sessions, …"""
    ctes = [f"step1 AS (SELECT e.session_id, min(e.ts) AS t FROM e "
            f"WHERE {step_condition(funnel.steps[0])} GROUP BY e.session_id)"]
    for k, step in enumerate(funnel.steps[1:], start=2):
        ctes.append(
            f"step{k} AS (SELECT e.session_id, min(e.ts) AS t FROM e "
            f"JOIN step{k - 1} p ON p.session_id = e.session_id AND e.ts >= p.t "
            f"WHERE {step_condition(step)} GROUP BY e.session_id)"
        )
    counts = " UNION ALL ".join(
        f"SELECT {k} AS step, {_lit(s.name)} AS step_name, (SELECT count(*) FROM step{k}) "
        f"AS sessions" for k, s in enumerate(funnel.steps, start=1)
    )
    return f"""
    WITH {", ".join(ctes)},
    counts AS ({counts})
    SELECT $date::DATE AS date, {_lit(funnel.name)} AS funnel, step, step_name, sessions,
           coalesce(sessions / nullif(first(sessions) OVER (ORDER BY step), 0), 0)
               AS pct_of_start,
           coalesce(sessions / nullif(lag(sessions, 1, sessions) OVER (ORDER BY step), 0), 0)
               AS pct_of_previous
    FROM counts
    """


def funnels_sql(funnels: list[Funnel], day: datetime) -> str:
    day_lit = _lit(day.date().isoformat())
    parts = [funnel_sql(f).replace("$date", day_lit) for f in funnels]
    return " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts) + " ORDER BY funnel, step"


@daily_mart_asset(deps=["session_events"])
def funnel_daily(context: dg.AssetExecutionContext, lake: LakeResource,
                 pipeline: PipelineSettings) -> dg.MaterializeResult:
    """Per day, funnel and step: the sessions that reached the step, as a share of the first
    step and of the previous one. The default `book_call` funnel: page view → scrolled half a
    page → clicked "Book a call" → started the form → submitted it."""
    funnels = load_funnels(pipeline.funnels_path())

    def build(con: duckdb.DuckDBPyConnection, day: datetime) -> str:
        return funnels_sql(funnels, day)

    return run_daily(context, lake.open(), "funnel_daily", build, with_events=True)
