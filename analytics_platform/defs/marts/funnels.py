"""``funnel_daily``: sessions reaching each step of each configured funnel (CONTRACT §5).

Funnels come from ``funnels.yaml`` (or ``$ANALYTICS_FUNNELS_FILE``). A session reaches step k
when it has a step-k event at or after the time it reached step k−1; the SQL is one CTE per
step, each joining the previous step's times (``mart_logic.funnel_sql``: the dashboard runs
it too, without Dagster).
"""

from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform.config import load_funnels
from analytics_platform.defs.marts.assets import daily_mart_asset, run_daily
from analytics_platform.mart_logic import funnels_sql
from analytics_platform.resources import LakeResource, PipelineSettings


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
