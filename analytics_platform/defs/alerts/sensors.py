"""The alerts sensor: anomalous traffic, stale data and failed runs, told to a person once."""

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
    "failed (a run started from the asset graph: per set of assets, which ends when a later "
    "run succeeds with them or every partition it covered is written again); and one more "
    "when each ends. The cursor holds the open incidents and the messages "
    "a channel has not taken yet, and each delivery is recorded as it happens, so a message "
    "goes once per incident and channel, across restarts and cut-short ticks; a slow or "
    "unreachable channel's messages wait for the next tick. Starts RUNNING when a channel is "
    "configured.",
)
def alerts_sensor(context: dg.SensorEvaluationContext, alerts: AlertsResource,
                  lake: LakeResource, pipeline: PipelineSettings) -> dg.SkipReason:
    channels = alerts.channels()
    if not channels.names():
        return dg.SkipReason("no alert channel configured (ANALYTICS_ALERT_WEBHOOK_URL, "
                             "ANALYTICS_SLACK_TOKEN, ANALYTICS_SMTP_HOST… or "
                             "ANALYTICS_ALERTS_FILE: docs/ALERTS.md)")
    state = incidents.State.from_cursor(context.cursor)
    observations = [incidents.observe_traffic(lake, pipeline),
                    incidents.observe_freshness(lake, pipeline),
                    *incidents.observe_runs(context.instance)]
    links = incidents.Links(alerts.dashboard_url.rstrip("/"), alerts.dagster_url.rstrip("/"))
    tick = incidents.step(state, observations, channels, links,
                          incidents.Ledger(context.instance), context.log.warning)
    context.update_cursor(state.to_cursor())
    for m, to in tick.sent:
        context.log.info(f"sent to {', '.join(to)}: {m.title}")
    still = ", ".join(sorted(state.open)) or "none"
    waiting = "".join(f"; waiting for {', '.join(to)}: {title}"
                      for title, to in sorted(tick.waiting.items()))
    return dg.SkipReason(f"{len(tick.sent)} message(s) sent; open incidents: {still}{waiting}")
