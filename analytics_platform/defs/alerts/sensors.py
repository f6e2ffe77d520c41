"""The alerts sensor: anomalous traffic, stale data and failed runs, told to a person once."""

import json

import dagster as dg

from analytics_platform.defs.alerts import incidents
from analytics_platform.defs.alerts.resources import AlertsResource, configured_at_load
from analytics_platform.resources import LakeResource, PipelineSettings

# Every two minutes: a tick reads the newest hour and the same hour of the 7 days before (eight
# Parquet files), the newest ingest time and the latest runs.
INTERVAL_SECONDS = 120


@dg.sensor(
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=(dg.DefaultSensorStatus.RUNNING if configured_at_load()
                    else dg.DefaultSensorStatus.STOPPED),
    description="Sends a message (webhook, Slack, e-mail: the `alerts` resource) when the newest "
    "hour's traffic is anomalous (the events_hourly_volume check), when the newest event is "
    "older than $ANALYTICS_FRESHNESS_HOURS (events_freshness), or when a job's latest run "
    "failed; and one more when each ends. The cursor holds the open incidents, so a message "
    "goes once per incident, across restarts. Starts RUNNING when a channel is configured.",
)
def alerts_sensor(context: dg.SensorEvaluationContext, alerts: AlertsResource,
                  lake: LakeResource, pipeline: PipelineSettings) -> dg.SkipReason:
    channels = alerts.channels()
    if not channels.names():
        return dg.SkipReason("no alert channel configured (ANALYTICS_ALERT_WEBHOOK_URL, "
                             "ANALYTICS_SLACK_TOKEN, ANALYTICS_SMTP_HOST… or "
                             "ANALYTICS_ALERTS_FILE: docs/ALERTS.md)")
    open_incidents = json.loads(context.cursor) if context.cursor else {}
    observations = [incidents.observe_traffic(lake, pipeline),
                    incidents.observe_freshness(lake, pipeline),
                    *incidents.observe_runs(context.instance)]
    links = incidents.Links(alerts.dashboard_url.rstrip("/"), alerts.dagster_url.rstrip("/"))
    sent = incidents.step(open_incidents, observations, channels, links, context.log.warning)
    context.update_cursor(json.dumps(open_incidents, sort_keys=True, default=str))
    for m in sent:
        context.log.info(f"sent to {', '.join(channels.names())}: {m.title}")
    still = ", ".join(sorted(open_incidents)) or "none"
    return dg.SkipReason(f"{len(sent)} message(s) sent; open incidents: {still}")
