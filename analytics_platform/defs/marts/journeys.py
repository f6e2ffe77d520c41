"""``journeys_daily``: the paths of 2–5 pages visitors take from their entry page (CONTRACT §5).

The statement is ``sql/journeys_daily.sql``; the one thing it takes from the run is k, the
privacy threshold (``$ANALYTICS_JOURNEY_MIN_VISITORS``, the resource's
``journey_min_visitors``): a day's path taken by fewer distinct visitors is never written, so the
table itself (and every view, API answer or screenshot made from it) cannot single anyone out.
"""

from datetime import datetime

import dagster as dg
import duckdb

from analytics_platform import sql
from analytics_platform.defs.marts.assets import MartCheck, daily_mart_asset, run_daily
from analytics_platform.resources import LakeResource, PipelineSettings

CHECKS = [
    MartCheck("journeys_daily_min_visitors", "Privacy: no published path has fewer distinct "
              "visitors than k ($ANALYTICS_JOURNEY_MIN_VISITORS) on its day."),
    MartCheck("journeys_daily_consistent", "Every path has 2–5 pages from its entry page; every "
              "path's prefix is published with at least its sessions; two-page paths hold no "
              "more sessions than the day's sessions with two page views or more."),
]


@daily_mart_asset(deps=["sessions", "session_events"],
                  check_specs=[c.spec("journeys_daily") for c in CHECKS])
def journeys_daily(context: dg.AssetExecutionContext, lake: LakeResource,
                   pipeline: PipelineSettings) -> dg.MaterializeResult:
    """Per day, the paths of the first 2, 3, 4 and 5 pages of sessions from their entry page (a
    reload of the same page counts once), with the sessions and distinct visitors that took
    each; a path taken by fewer than k visitors that day (`ANALYTICS_JOURNEY_MIN_VISITORS`,
    default 5) is left out. A range's count is the sum of its days: each published number
    covers k visitors or more."""
    query = sql.load("marts/journeys_daily")
    if pipeline.journey_min_visitors < 1:  # bound from the environment as is (dg.EnvVar)
        raise dg.Failure(f"ANALYTICS_JOURNEY_MIN_VISITORS must be 1 or more, not "
                         f"{pipeline.journey_min_visitors}")

    def build(con: duckdb.DuckDBPyConnection, day: datetime) -> str:
        return query

    return run_daily(context, lake.open(), "journeys_daily", build, with_events=True,
                     checks=CHECKS, params={"min_visitors": pipeline.journey_min_visitors})
