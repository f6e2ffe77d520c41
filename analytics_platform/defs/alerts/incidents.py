"""Incidents: what the alerts sensor watches, and the words it sends when one opens or ends.

Three kinds, each judged by what already defines it:

- ``traffic``: the newest complete hour is anomalous by the ``events_hourly_volume`` check
  (robust z-score against the same hour of the 7 days before, ``defs/events/checks.py``),
  evaluated here by calling the check itself, so there is one definition of "anomalous";
- ``freshness``: the ``events_freshness`` check fails (the newest event is older than
  ``$ANALYTICS_FRESHNESS_HOURS``), called the same way;
- ``run:<job>``: the latest finished run of a job failed (it ends when a later run succeeds);
  ``run:assets:<a,b>`` for the runs started from the asset graph (the UI's Materialize or asset
  backfill, ``dagster asset materialize``), all of one job ``__ASSET_JOB``: one incident per
  selection of assets, named by them, which ends when a later run of the same assets succeeds
  or when every asset and partition the failed run was to write has been written since, by
  any run (the automation's jobs do not run the same selections).

An incident is a key in the sensor's cursor from the tick that opened it to the tick that saw
it end: one message each way, whatever the number of ticks in between. A message waits in the
cursor's outbox until every channel has taken it, each delivery written down as it happens
(:class:`Ledger`), so a slow channel delays a message without repeating it on the others.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from analytics_platform import duck, sql
from analytics_platform.defs.alerts.channels import Channels, Message
from analytics_platform.defs.events import checks as event_checks
from analytics_platform.layout import hour_folder
from analytics_platform.partitions import daily, hourly
from analytics_platform.resources import LakeResource, PipelineSettings
from analytics_platform.text import plural

# The latest finished runs looked at on each tick: the newest run of every job that ran lately.
RUNS_LOOKED_AT = 200


@dataclass
class Observation:
    key: str  # traffic | freshness | run:<job> | run:assets:<asset,…>
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
        out = lake.open()
        files = out.existing("events", [hour_folder(hour)])
        before = out.existing("events", [hour_folder(hour - timedelta(hours=1))])
        with duck.connect() as con:  # the pipeline's macros: self_referral
            pageviews, sessions, top, top_sessions, top_views = con.execute(
                sql.load("alerts/hour_detail"), {"files": files, "window": before + files}
            ).fetchall()[0]
        facts |= {"pageviews": int(pageviews or 0), "sessions": int(sessions or 0),
                  "top_source": top, "top_source_sessions": int(top_sessions or 0),
                  "top_source_pageviews": int(top_views or 0)}
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


PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Materialisations read per query when a failed asset run is checked for being written since;
# a run over more partitions than this is not filtered by them in the query (a year of hours
# would be 8,760 query parameters) but as the records are read.
PAGE = 1000


def asset_run_assets(run: dg.DagsterRun) -> list[str] | None:
    """The assets of a run started from the asset graph (a job of Dagster's own, ``__ASSET_JOB``:
    its names begin with two underscores), sorted; None for a run of one of the jobs."""
    if run.job_name.startswith("__") and run.asset_selection:
        return sorted(k.to_user_string() for k in run.asset_selection)
    return None


def _partitions(tags: Mapping[str, str]) -> list[str] | None:
    """The partitions a run covers (None: unpartitioned), its range's keys read by the
    definition that holds them."""
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    first, last = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if not (first and last):
        return None
    for definition in (hourly, daily):
        if definition.has_partition_key(first) and definition.has_partition_key(last):
            return definition.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    return [first, last]


def written_since(instance: dg.DagsterInstance, run: dg.RunRecord, assets: list[str]
                  ) -> dg.EventLogRecord | None:
    """When every asset and partition of a failed run has been materialised since the run
    started (by it, before it failed, or by any later run): the newest of those
    materialisations. Else None."""
    since = run.start_time or run.create_timestamp.timestamp()
    partitions = _partitions(run.dagster_run.tags)
    wanted = set(partitions or ())
    newest: dg.EventLogRecord | None = None
    for asset in assets:
        written: set[str | None] = set()
        cursor = None
        while True:
            page = instance.fetch_materializations(dg.AssetRecordsFilter(
                asset_key=dg.AssetKey.from_user_string(asset),
                asset_partitions=partitions if partitions and len(partitions) <= PAGE else None,
                after_timestamp=since), limit=PAGE, cursor=cursor)
            for r in page.records:
                if partitions is not None and r.partition_key not in wanted:
                    continue
                written.add(r.partition_key)
                if newest is None or r.timestamp > newest.timestamp:
                    newest = r
            if not page.has_more:
                break
            cursor = page.cursor
        if not written or (partitions is not None and not written >= wanted):
            return None
    return newest


def observe_runs(instance: dg.DagsterInstance) -> list[Observation]:
    """The latest finished run of every job among the last :data:`RUNS_LOOKED_AT`, and of
    every selection of assets run from the asset graph."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS,
                                        dg.DagsterRunStatus.FAILURE]),
        limit=RUNS_LOOKED_AT)
    latest: dict[str, dg.RunRecord] = {}
    for r in records:
        assets = asset_run_assets(r.dagster_run)
        key = f"run:assets:{','.join(assets)}" if assets else f"run:{r.dagster_run.job_name}"
        if key not in latest or (r.end_time or 0) > (latest[key].end_time or 0):
            latest[key] = r
    out = []
    for key, r in sorted(latest.items()):
        run = r.dagster_run
        tags = run.tags
        partition = tags.get(PARTITION_TAG) or (
            f"{tags[RANGE_START_TAG]} … {tags[RANGE_END_TAG]}"
            if RANGE_START_TAG in tags else None)
        failed = run.status == dg.DagsterRunStatus.FAILURE
        facts: dict[str, Any] = {
            "job": run.job_name, "run_id": run.run_id, "partition": partition,
            "ended": datetime.fromtimestamp(r.end_time or 0, UTC).isoformat()}
        assets = asset_run_assets(run)
        if assets:
            facts["assets"] = assets
            # written since by other runs (the jobs'): over, as of the newest of those writes
            done = written_since(instance, r, assets) if failed else None
            if done is not None:
                failed = False
                facts |= {"run_id": done.run_id,
                          "ended": datetime.fromtimestamp(done.timestamp, UTC).isoformat()}
        if failed:
            facts["error"] = _failure_reason(instance, run.run_id)
        out.append(Observation(key, failed, facts))
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
        text = (f"Events {_hour_span(hour)}: {n:,} (page views {f['pageviews']:,}, sessions "
                f"{f['sessions']:,}), {_against_usual(n, median)}; top source: "
                f"{f['top_source']} ({plural(f['top_source_sessions'], 'session')}, "
                f"{plural(f['top_source_pageviews'], 'page view')}).\n"
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
    what = _what(f)
    text = (f"A run of {what}{part} failed at {ended:%H:%M} UTC on {_day(ended)}: "
            f"{f['error']}.\nRun: {run_url}\nUntil it succeeds the dashboard may lag. {dash}")
    return Message("run_failure", "open", f"Pipeline run failed: {what}", text, run_url, f)


def _what(facts: dict[str, Any]) -> str:
    """What a run ran: its job, or the assets of a run started from the asset graph."""
    return ", ".join(facts["assets"]) if facts.get("assets") else str(facts["job"])


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
    # a materialisation reported without a run has no run page
    run_url = f"{links.dagster}/runs/{f['run_id']}" if f["run_id"] else f"{links.dagster}/runs"
    ended, failed = _iso(f["ended"]), _iso(before["ended"])
    if f.get("assets"):
        what = _what(f)
        text = (f"{what} written again: the last of it at {ended:%H:%M} UTC on {_day(ended)} "
                f"({run_url}); a run of it had failed at {failed:%H:%M} UTC on "
                f"{_day(failed)}.\n{dash}")
        return Message("run_failure", "resolved", f"{what} written again", text, run_url,
                       numbers)
    text = (f"{f['job']} runs again: a run succeeded at {ended:%H:%M} UTC on {_day(ended)} "
            f"({run_url}); it had failed since {failed:%H:%M} UTC on {_day(failed)}.\n{dash}")
    return Message("run_failure", "resolved", f"{f['job']} succeeds again", text, run_url,
                   numbers)


# --- sending, once per message and channel ---------------------------------------------------


def _sensor_timeout_seconds() -> float:
    # Dagster abandons a sensor evaluation after DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS (60 s by
    # default): the tick fails and the cursor it computed is lost. Read with Dagster's own
    # function when it is there (a private module), else as its documentation describes.
    try:
        from dagster._grpc.utils import default_sensor_grpc_timeout

        return float(default_sensor_grpc_timeout())
    except ImportError:
        return float(os.getenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS") or 60)


# A tick starts no delivery after this many seconds of sending; the rest waits for the next
# tick. Half of Dagster's limit: a delivery started just before holds the line for at most
# channels.TIMEOUT_SECONDS more per network round trip, and the checks need a second or two.
SEND_BUDGET_SECONDS = _sensor_timeout_seconds() / 2
# A message a channel has not taken for this long is given up for that channel (logged): a
# channel down for a day gets no day-old alerts when it comes back.
GIVE_UP_AFTER = timedelta(hours=24)
# Deliveries are remembered this long in the ledger (below), far longer than a message waits.
LEDGER_KEPT = timedelta(days=7)
LEDGER_KEY = "analytics_platform/alerts_sensor/deliveries"


def _identity(key: str, facts: dict[str, Any]) -> str:
    """What tells one incident of ``key`` from the next: the hour that opened it, the newest
    event when it opened, the failed run."""
    if key == "traffic":
        return str(facts.get("hour"))
    if key == "freshness":
        return str(facts.get("newest_ingest_ts") or "empty lake")
    return str(facts.get("run_id"))


@dataclass
class State:
    """The sensor's cursor: the open incidents (the facts each opened with) and the outbox, the
    messages some channel has not taken yet (``{id: {"message", "left", "created"}}``)."""

    open: dict[str, dict[str, Any]]
    outbox: dict[str, dict[str, Any]]

    @classmethod
    def from_cursor(cls, cursor: str | None) -> State:
        d = json.loads(cursor) if cursor else {}
        if d.get("v") != 2:  # the cursor before the outbox: the open incidents alone
            d = {"open": d, "outbox": {}}
        # An incident of a job of Dagster's own (``run:__ASSET_JOB``, before runs from the asset
        # graph were told apart by their assets) is no longer looked at, so it would stay open
        # for ever (found in the diff's review): it goes; a failure still latest is told again,
        # once, under its assets' key.
        open_ = {k: v for k, v in d["open"].items() if not k.startswith("run:__")}
        return cls(open=open_, outbox=d["outbox"])

    def to_cursor(self) -> str:
        return json.dumps({"v": 2, "open": self.open, "outbox": self.outbox}, sort_keys=True,
                          default=str)


class Ledger:
    """Which channel took which message, written to the Dagster instance's key-value store
    the moment it does. The cursor is saved only when a tick returns, and Dagster drops a tick
    that runs past its limit, cursor and all: the next tick then works out the same messages
    again (same ids) from the cursor before, and this says who already has them."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self._storage = instance.daemon_cursor_storage
        raw = self._storage.get_cursor_values({LEDGER_KEY}).get(LEDGER_KEY)
        self.entries: dict[str, dict[str, Any]] = json.loads(raw) if raw else {}

    def taken(self, message_id: str) -> set[str]:
        return set(self.entries.get(message_id, {}).get("channels", ()))

    def record(self, message_id: str, channel: str, now: datetime) -> None:
        entry = self.entries.setdefault(message_id, {"at": now.isoformat(), "channels": []})
        entry["channels"].append(channel)
        cutoff = now - LEDGER_KEPT
        self.entries = {k: v for k, v in self.entries.items() if _iso(v["at"]) >= cutoff}
        self._storage.set_cursor_values({LEDGER_KEY: json.dumps(self.entries, sort_keys=True)})


@dataclass
class TickReport:
    sent: list[tuple[Message, list[str]]]  # messages some channel took on this tick, and which
    waiting: dict[str, list[str]]  # message title: channels that still have to take it


def step(state: State, observations: list[Observation], channels: Channels, links: Links,
         ledger: Ledger, log: Callable[[str], None] = print,
         clock: Callable[[], float] = time.monotonic) -> TickReport:
    """Put a message in the outbox for every incident that opened or ended since the last tick
    (``state`` is updated in place), then send the outbox: each message to each channel once.

    A delivery is written to ``ledger`` as it happens, so a tick cut short sends nothing twice.
    A channel that fails is not tried again on this tick (a server that accepts and never
    answers costs one timeout, not one per message) and its messages wait for the next tick;
    so do the messages not started within :data:`SEND_BUDGET_SECONDS`. A channel that took a
    message in part (an e-mail recipient refused) has it: the failure is logged, not retried."""
    started, now = clock(), datetime.now(UTC)
    names = channels.names()
    for obs in observations:
        before = state.open.get(obs.key)
        if obs.bad and before is None:
            message = opened(obs, links)
            message_id = f"{obs.key}@{_identity(obs.key, obs.facts)}:open"
            state.open[obs.key] = obs.facts
        elif not obs.bad and before is not None:
            message = resolved(obs, before, links)
            message_id = f"{obs.key}@{_identity(obs.key, before)}:resolved"
            del state.open[obs.key]
        else:
            continue
        state.outbox.setdefault(message_id, {"message": message.to_json(), "left": names,
                                             "created": now.isoformat()})

    sent: dict[str, tuple[Message, list[str]]] = {}
    failed: set[str] = set()
    for message_id, item in list(state.outbox.items()):
        message = Message.from_json(item["message"])
        # a channel no longer configured is not waited for; one that took it in a tick whose
        # cursor was lost has it
        left = [c for c in item["left"] if c in names and c not in ledger.taken(message_id)]
        for name in list(left):
            if name in failed or clock() - started > SEND_BUDGET_SECONDS:
                continue
            try:
                partial = channels.deliver(name, message)
            except Exception as e:  # a channel down must not hide the message from the rest
                failed.add(name)
                log(f"alert '{message.title}' not delivered to {name}: {type(e).__name__}: {e}"
                    " (tried again on the next tick)")
                continue
            ledger.record(message_id, name, datetime.now(UTC))
            left.remove(name)
            sent.setdefault(message_id, (message, []))[1].append(name)
            if partial:
                log(f"alert '{message.title}' delivered to {name} in part: {partial}")
        if left and now - _iso(item["created"]) > GIVE_UP_AFTER:
            log(f"alert '{message.title}' given up for {', '.join(left)}: not delivered since "
                f"{item['created']}")
            left = []
        if left:
            item["left"] = left
        else:
            del state.outbox[message_id]
    waiting = {Message.from_json(i["message"]).title: i["left"] for i in state.outbox.values()}
    return TickReport(list(sent.values()), waiting)
