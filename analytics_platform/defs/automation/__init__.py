"""When things run: automation conditions shared by the assets, the hourly schedule and the
raw-lake sensor (``schedules.py``, ``sensors.py``)."""

from datetime import timedelta

import dagster as dg


def refresh_when_deps_change(lookback_days: int = 3) -> dg.AutomationCondition:
    """Re-materialise a partition when an upstream partition it reads has been updated.

    Unlike ``eager()``, this does not wait for every upstream partition to exist (a day's
    sessions read hours up to two days later, which do not exist yet while the day is young) and
    it looks back a few days, so a late object that lands in an old hour refreshes that day too.
    """
    return (
        dg.AutomationCondition.in_latest_time_window(timedelta(days=lookback_days))
        & dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("refresh when upstream data changes")


events_job = dg.define_asset_job(
    "events_job",
    selection=dg.AssetSelection.assets("events", "quarantine"),
    description="Clean raw hours into events (and quarantine). Downstream days are refreshed by "
    "their automation conditions.",
)


daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets(
        "sessions", "session_events", "kpis_daily", "pages_daily", "attribution_daily",
        "funnel_daily",
    ),
    description="Sessions and the daily marts for a range of days (one run per range).",
)

history_job = dg.define_asset_job(
    "history_job",
    selection=dg.AssetSelection.assets("attribution_touch", "cohort_retention", "experiments"),
    description="The marts over all history.",
)
