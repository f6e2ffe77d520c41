"""When things run: the automation condition the assets share, the jobs, the hourly schedule and
the raw-lake sensor (``schedules.py``, ``sensors.py``).

Jobs select assets by group, so a new asset joins its job by its ``group_name`` alone:

- ``clean``: events, quarantine (hourly);
- ``sessions``: sessions, session_events; ``daily_marts``: the marts per session_date (daily);
- ``history_marts``: the marts over all history (unpartitioned).
"""

from datetime import timedelta

import dagster as dg

CLEAN, SESSIONS, DAILY_MARTS, HISTORY_MARTS = "clean", "sessions", "daily_marts", "history_marts"


def refresh_when_deps_change(lookback_days: int = 3) -> dg.AutomationCondition:
    """Re-materialise a partition when an upstream partition it reads has been updated (an
    unpartitioned asset: when anything it reads has).

    Unlike ``eager()``, this does not wait for every upstream partition to exist (a day's
    sessions read hours up to two days later, which do not exist yet while the day is young) and
    it looks back a few days, so a late object that lands in an old hour refreshes that day too
    (``in_latest_time_window`` holds every partition of an asset that has no time partitions).
    """
    return (
        dg.AutomationCondition.in_latest_time_window(timedelta(days=lookback_days))
        & dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("refresh when upstream data changes")


# Run tags: `analytics/stage` is what the run queue limits (deploy/dagster.yaml); `ecs/cpu` and
# `ecs/memory` size the run's Fargate task under the ECS run launcher (a valid Fargate pair). An
# hour's step stays under ANALYTICS_DUCKDB_MEMORY (1 GB) plus the run process: half a vCPU and
# 2 GB. A day's sessions read two days of events and feed four marts: a whole vCPU and 4 GB.
EVENTS_RUN_TAGS = {"analytics/stage": "events", "ecs/cpu": "512", "ecs/memory": "2048"}
DAILY_RUN_TAGS = {"analytics/stage": "daily", "ecs/cpu": "1024", "ecs/memory": "4096"}
HISTORY_RUN_TAGS = {"analytics/stage": "history", "ecs/cpu": "1024", "ecs/memory": "4096"}

events_job = dg.define_asset_job(
    "events_job",
    selection=dg.AssetSelection.groups(CLEAN),
    description="Clean raw hours into events (and quarantine). Downstream days are refreshed by "
    "their automation conditions.",
    tags=EVENTS_RUN_TAGS,
)


daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups(SESSIONS, DAILY_MARTS),
    description="Sessions and the daily marts for a range of days (one run per range).",
    tags=DAILY_RUN_TAGS,
)

history_job = dg.define_asset_job(
    "history_job",
    selection=dg.AssetSelection.groups(HISTORY_MARTS),
    description="The marts over all history.",
    tags=HISTORY_RUN_TAGS,
)
