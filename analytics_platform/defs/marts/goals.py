"""``goals_daily``: conversions and conversion rate per goal and source (CONTRACT §5).

Goals come from ``goals.yaml`` (or ``$ANALYTICS_GOALS_FILE``), declared like funnel steps: an
event type, optionally a page and a ``props`` value. The statement is ``sql/goals_daily.sql``;
what depends on the configuration (the goals and the events that match each) is generated here,
with the funnels' own condition (:func:`~analytics_platform.mart_logic.step_condition`),
so a goal and a funnel step with the same keys match the same events.
"""

from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform.config import load_goals
from analytics_platform.defs.marts.assets import MartCheck, daily_mart_asset, run_daily
from analytics_platform.mart_logic import goals_sql
from analytics_platform.resources import LakeResource, PipelineSettings

CHECKS = [MartCheck("goals_daily_reconcile", "For each goal, the day's rows add up to the day's "
                    "sessions; conversions ≤ sessions, converted visitors ≤ conversions ≤ "
                    "matching events.")]


@daily_mart_asset(deps=["sessions", "session_events"],
                  check_specs=[c.spec("goals_daily") for c in CHECKS])
def goals_daily(context: dg.AssetExecutionContext, lake: LakeResource,
                pipeline: PipelineSettings) -> dg.MaterializeResult:
    """Per day, goal and source / medium / campaign: the sessions, the sessions that completed
    the goal (an event matching it: `goals.yaml`), their visitors, the matching events and the
    conversion rate. Every goal has a row for every attribution that had sessions that day."""
    query = goals_sql(load_goals(pipeline.goals_path()))

    def build(con: duckdb.DuckDBPyConnection, day: datetime) -> str:
        return query

    return run_daily(context, lake.open(), "goals_daily", build, with_events=True,
                     checks=CHECKS)
