"""Incidents: what the alerts sensor watches, and the words it sends when one opens or ends.

Three kinds, each judged by what already defines it:

- ``traffic``: the newest complete hour is anomalous by the ``events_hourly_volume`` check
  (robust z-score against the same hour of the 7 days before, ``defs/events/checks.py``),
  evaluated here by calling the check itself, so there is one definition of "anomalous";
- ``freshness``: the ``events_freshness`` check fails (the newest event is older than
  ``$ANALYTICS_FRESHNESS_HOURS``), called the same way;
- ``run:<job>``: the latest finished run of a job failed (it ends when a later run succeeds).

An incident is a key in the sensor's cursor from the tick that opened it to the tick that saw
it end: one message each way, whatever the number of ticks in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb

from analytics_platform import sql
from analytics_platform.defs.alerts.channels import Channels, Message
from analytics_platform.defs.events import checks as event_checks
from analytics_platform.layout import hour_folder
from analytics_platform.resources import LakeResource, PipelineSettings

# The latest finished runs looked at on each tick: the newest run of every job that ran lately.
RUNS_LOOKED_AT = 200


@dataclass
class Observation:
    key: str  # traffic | freshness | run:<job>
    bad: bool
    facts: dict[str, Any]  # JSON-able: kept in the cursor while the incident is open


@dataclass(frozen=True)
class Links:
    dashboard: str
    dagster: str


def _meta(result: dg.AssetCheckResult) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}


def observe_traffic(lake: LakeResource, pipeline: PipelineSettings) -> Observation:
    """The ``events_hourly_volume`` check on the newest complete hour, with that hour's page
    views and top source when it is anomalous."""
    result = event_checks.events_hourly_volume(lake=lake, pipeline=pipeline)
    facts = _meta(result)
    if not result.passed:
        hour = datetime.strptime(facts["hour"], "%Y-%m-%d %H:00").replace(tzinfo=UTC)
        files = lake.open().existing("events", [hour_folder(hour)])
        pageviews, top, top_n = duckdb.execute(sql.load("alerts/hour_detail"),
                                               {"files": files}).fetchall()[0]
        facts |= {"pageviews": int(pageviews), "top_source": top,
                  "top_source_pageviews": int(top_n or 0)}
    return Observation("traffic", not result.passed, facts)


def observe_freshness(lake: LakeResource, pipeline: PipelineSettings) -> Observation:
    """The ``events_freshness`` check."""
    result = event_checks.events_freshness(lake=lake, pipeline=pipeline)
    return Observation("freshness", not result.passed, _meta(result))


def _failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first line of the innermost error of a failed run's first failed step (else the
    run's failure message)."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                dg.DagsterEventType.RUN_FAILURE})
    for e in events:
        ev = e.dagster_event
        if ev is not None and ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = ev.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            if error is not None:
                return f"{ev.step_key}: {error.message.strip().splitlines()[0][:300]}"
    for e in events:
        if e.dagster_event is not None and e.dagster_event.message:
            return e.dagster_event.message.strip().splitlines()[0][:300]
    return "no error recorded"


def observe_runs(instance: dg.DagsterInstance) -> list[Observation]:
    """The latest finished run of every job among the last :data:`RUNS_LOOKED_AT`."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS,
                                        dg.DagsterRunStatus.FAILURE]),
        limit=RUNS_LOOKED_AT)
    latest: dict[str, dg.RunRecord] = {}
    for r in records:
        job = r.dagster_run.job_name
        if job not in latest or (r.end_time or 0) > (latest[job].end_time or 0):
            latest[job] = r
    out = []
    for job, r in sorted(latest.items()):
        run = r.dagster_run
        tags = run.tags
        partition = tags.get("dagster/partition") or (
            f"{tags['dagster/asset_partition_range_start']} … "
            f"{tags['dagster/asset_partition_range_end']}"
            if "dagster/asset_partition_range_start" in tags else None)
        failed = run.status == dg.DagsterRunStatus.FAILURE
        facts: dict[str, Any] = {
            "job": job, "run_id": run.run_id, "partition": partition,
            "ended": datetime.fromtimestamp(r.end_time or 0, UTC).isoformat()}
        if failed:
            facts["error"] = _failure_reason(instance, run.run_id)
        out.append(Observation(f"run:{job}", failed, facts))
    return out


# --- the words ---------------------------------------------------------------------------------


def _day(t: datetime) -> str:
    return f"{t:%A} {t.day} {t:%B %Y}"


def _hour_span(hour: datetime) -> str:
    return f"{_day(hour)}, {hour:%H:00}–{hour + timedelta(hours=1):%H:00} UTC"


def _against_usual(n: int, median: float) -> str:
    if median <= 0:
        return "against a median of 0"
    ratio, usual = n / median, f"(median {median:,.0f} over the 7 days before)"
    if ratio >= 1.1:
        return f"about {ratio:.1f} times a usual day at that hour {usual}"
    if ratio <= 0.9:
        return f"only {ratio:.0%} of a usual day at that hour {usual}"
    return f"about as usual at that hour {usual}"


def _hour(facts: dict[str, Any]) -> datetime:
    return datetime.strptime(facts["hour"], "%Y-%m-%d %H:00").replace(tzinfo=UTC)


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def opened(obs: Observation, links: Links) -> Message:
    """The message sent when an incident opens."""
    f = obs.facts
    dash = f"Dashboard: {links.dashboard}"
    if obs.key == "traffic":
        hour, n, median = _hour(f), int(f["events"]), float(f["median_same_hour_7d"])
        what = "spike" if n > median else "drop"
        text = (f"Events {_hour_span(hour)}: {n:,} (page views {f['pageviews']:,}), "
                f"{_against_usual(n, median)}; top source: "
                f"{f['top_source']} ({f['top_source_pageviews']:,} page views).\n"
                f"Robust z-score {f['robust_z']} (alert above {f['threshold']:g}).\n{dash}")
        return Message("anomaly", "open", f"Traffic {what}: {n:,} events "
                       f"{hour:%a %d %b %H:00}–{hour + timedelta(hours=1):%H:00} UTC",
                       text, links.dashboard, f)
    if obs.key == "freshness":
        if f.get("newest_ingest_ts") is None:
            text = (f"The lake holds no processed event at all: nothing has reached the "
                    f"pipeline yet, or every run failed. Runs: {links.dagster}/runs\n{dash}")
            return Message("freshness", "open", "No data in the lake", text, links.dashboard, f)
        newest = _iso(f["newest_ingest_ts"])
        text = (f"No new data: the newest event arrived {_day(newest)} at {newest:%H:%M} UTC, "
                f"{f['age_hours']:.1f} hours ago (alert after {f['threshold_hours']:g} hours). "
                f"Check the collector or Firehose, and the pipeline's runs: "
                f"{links.dagster}/runs\n{dash}")
        return Message("freshness", "open", f"No new data for {f['age_hours']:.1f} hours",
                       text, links.dashboard, f)
    run_url = f"{links.dagster}/runs/{f['run_id']}"
    ended = _iso(f["ended"])
    part = (f" (partition{'s' if '…' in f['partition'] else ''} {f['partition']})"
            if f.get("partition") else "")
    text = (f"A run of {f['job']}{part} failed at {ended:%H:%M} UTC on {_day(ended)}: "
            f"{f['error']}.\nRun: {run_url}\nUntil it succeeds the dashboard may lag. {dash}")
    return Message("run_failure", "open", f"Pipeline run failed: {f['job']}", text, run_url, f)


def resolved(obs: Observation, before: dict[str, Any], links: Links) -> Message:
    """The message sent when an incident ends (``before``: the facts it opened with)."""
    f = obs.facts
    dash = f"Dashboard: {links.dashboard}"
    numbers = {"now": f, "opened_with": before}
    if obs.key == "traffic":
        start = _hour(before)
        if "hour" in f and "events" in f:
            hour, n = _hour(f), int(f["events"])
            now = (f"events {_hour_span(hour)}: {n:,}, "
                   f"{_against_usual(n, float(f['median_same_hour_7d']))}")
            hours = max(1, int((hour - start).total_seconds() // 3600))
            title = f"Traffic back to usual: {n:,} events {hour:%a %d %b %H:00} UTC"
        else:  # the newest hour can no longer be judged (too few comparable hours)
            now, hours = f"the newest hour is not anomalous ({f.get('note', '')})", 1
            title = "Traffic back to usual"
        text = (f"Traffic is back to usual: {now}. The unusual traffic began with "
                f"{_hour_span(start)} ({int(before['events']):,} events) and lasted "
                f"{hours} hour{'s' if hours != 1 else ''}.\n{dash}")
        return Message("anomaly", "resolved", title, text, links.dashboard, numbers)
    if obs.key == "freshness":
        newest = _iso(f["newest_ingest_ts"])
        since = (f"since {_iso(before['newest_ingest_ts']):%H:%M} UTC on "
                 f"{_day(_iso(before['newest_ingest_ts']))}"
                 if before.get("newest_ingest_ts") else "in the lake at all")
        text = (f"Data is flowing again: the newest event arrived at {newest:%H:%M} UTC, "
                f"{f['age_hours']:.1f} hours ago. Before, there had been no new event "
                f"{since}.\n{dash}")
        return Message("freshness", "resolved", "Data is flowing again", text, links.dashboard,
                       numbers)
    run_url = f"{links.dagster}/runs/{f['run_id']}"
    ended, failed = _iso(f["ended"]), _iso(before["ended"])
    text = (f"{f['job']} runs again: a run succeeded at {ended:%H:%M} UTC on {_day(ended)} "
            f"({run_url}); it had failed since {failed:%H:%M} UTC on {_day(failed)}.\n{dash}")
    return Message("run_failure", "resolved", f"{f['job']} succeeds again", text, run_url,
                   numbers)


def step(open_incidents: dict[str, dict[str, Any]], observations: list[Observation],
         channels: Channels, links: Links,
         log: Callable[[str], None] = print) -> list[Message]:
    """Send a message for every incident that opened or ended since the last tick, and update
    ``open_incidents`` (the cursor's) in place. When every channel fails the transition is not
    recorded, so the next tick tries again; when one channel delivers, the incident moves on
    (the failures are logged)."""
    sent = []
    for obs in observations:
        before = open_incidents.get(obs.key)
        if obs.bad and before is None:
            message = opened(obs, links)
        elif not obs.bad and before is not None:
            message = resolved(obs, before, links)
        else:
            continue
        errors = channels.send(message, log)
        if len(errors) == len(channels.names()):
            continue
        if obs.bad:
            open_incidents[obs.key] = obs.facts
        else:
            del open_incidents[obs.key]
        sent.append(message)
    return sent
