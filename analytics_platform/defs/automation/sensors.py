"""The raw-lake sensor: a run for every recent hour whose objects changed."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from analytics_platform import settings
from analytics_platform.defs.automation import events_job
from analytics_platform.lake import RawObject, hours_between, partition_key
from analytics_platform.partitions import first_hour
from analytics_platform.resources import RawLakeResource

# Only recent hour folders are listed (never the whole bucket); each listed hour is one LIST
# request per tick (see settings.sensor_lookback_hours).
LOOKBACK_HOURS = settings.sensor_lookback_hours()
INTERVAL_SECONDS = settings.sensor_interval_seconds()


def fingerprint(objects: list[RawObject]) -> str:
    """Changes whenever an object is added, removed or rewritten in an hour."""
    h = hashlib.sha1()
    for o in objects:
        h.update(f"{o.key}\0{o.size}\n".encode())
    return f"{len(objects)}-{h.hexdigest()[:12]}"


@dg.sensor(
    job=events_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the raw hour folders of the last few hours; an hour whose objects "
    "changed since the last tick (a new object, or a late one in an hour already processed) "
    "gets a run. The cursor keeps each hour's fingerprint, so it survives restarts.",
)
def raw_lake_sensor(context: dg.SensorEvaluationContext, raw_lake: RawLakeResource):
    lake = raw_lake.open()
    now = datetime.now(UTC)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    first = first_hour()
    hours = [h for h in hours_between(now - timedelta(hours=LOOKBACK_HOURS), now) if h >= first]
    current: dict[str, str] = {}
    requests = []
    for hour in hours:
        objects = lake.list_hour(hour)
        if not objects:
            continue
        key, fp = partition_key(hour), fingerprint(objects)
        current[key] = fp
        if seen.get(key) != fp:
            # the run key changes with the fingerprint: a late object means a new run
            requests.append(dg.RunRequest(run_key=f"{key}:{fp}", partition_key=key))
    context.update_cursor(json.dumps(current, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"no change in the last {LOOKBACK_HOURS} hour folders")
    return requests


# Dagster's own automation sensor starts stopped; this one runs by default so that sessions and
# the marts follow new events without anyone switching it on.
downstream_automation = dg.AutomationConditionSensorDefinition(
    "downstream_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    # Runs, not a backfill, when a tick asks for several days (a new hour touches three days'
    # sessions): Dagster's backfill daemon looks every 30 s, which was most of the time from a
    # visit to its session.
    emit_backfills=False,
    description="Evaluates the assets' automation conditions: a day's sessions and marts are "
    "re-materialised when the events they read change, the all-history marts when sessions do.",
)
