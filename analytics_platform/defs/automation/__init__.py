"""When things run: the jobs, the hourly schedule (``schedules.py``), the raw-lake sensor and the
downstream automation (``sensors.py``: the days an hour changed, the all-history marts at most
hourly), and the housekeeping sensors (``housekeeping.py``: run retention, the run metric).

Jobs select assets by group, so a new asset joins its job by its ``group_name`` alone:

- ``clean``: events, quarantine (hourly);
- ``sessions``: sessions, session_events; ``daily_marts``: the marts per session_date (daily);
- ``history_marts``: the marts over all history (unpartitioned).
"""

import dagster as dg

CLEAN, SESSIONS, DAILY_MARTS, HISTORY_MARTS = "clean", "sessions", "daily_marts", "history_marts"


def refresh_when_deps_change(lookback_days: int = 3) -> None:
    """No Dagster automation condition: the days and the all-history marts are asked for by
    the ``downstream_automation`` sensor (``sensors.py``), which knows from each ``events``
    hour's metadata which days it can change (``records.py``): an hour of one day's events
    refreshes that day, where "any upstream partition updated" refreshed the three or four days
    whose window holds the hour. None here also keeps Dagster's own automation sensor, should
    anyone switch it on, from asking for the same runs again. (The assets still call this
    function; ``lookback_days`` is unused.)"""
    return None


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
    description="Clean raw hours into events (and quarantine). The days whose sessions they "
    "change follow through the `downstream_automation` sensor.",
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
