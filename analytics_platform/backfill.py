"""Backfill a date range through Dagster: three runs, whatever the length of the range.

1. ``events_job`` over every raw hour that can hold the range's sessions (from a few hours
   before the first day to the late-arrival horizon after the last, never past now);
2. ``daily_job`` (sessions and daily marts) over the range's days;
3. ``history_job`` (all-history marts).

Each run covers its whole range at once (single-run backfill policies), so a 14-day backfill
costs three process start-ups, not 336, and the warehouse is published once, when the last run
is over (``storage.publish_once``), not after each step or each run: no step reads the
warehouse, and a publish that changes no stored table still copies the stored file (5.4 s on the
30-day benchmark's 1.5 GB file, 2026-12-07). Runs are recorded in the Dagster instance
(``$DAGSTER_HOME``), and once they are done, so is the backfill they make up: it shows under the
UI's Backfills tab with its three runs and the partitions of every asset it covered.
"""

from __future__ import annotations

import os
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from analytics_platform.lake import floor_hour, partition_key
from analytics_platform.partitions import day_key, first_hour, session_window
from analytics_platform.resources import PipelineSettings
from analytics_platform.storage import publish_once

# The tags with which Dagster runs one run over a range of partitions (what its own single-run
# backfills set). `execute_in_process` takes a single `partition_key`, and the constants are
# only in the private `dagster._core.storage.tags`: named once here, with their values.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

# Dagster announces every partition a run will materialise with its own "planned" event (one
# SQLite transaction each), unless this variable asks for one event per asset carrying the
# whole range, which its own single-run backfills can use (event_log/base.py). On the 30-day
# backfill that is 1,510 events of the events run alone; per-partition events were most of
# Dagster's share (profiled: issue 21, docs/BENCHMARKS.md). What it gives up: a partition of a
# run that fails is not shown as failed in the UI; the backfill's record (record_backfill) still
# lists the failed partitions.
PLANNED_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


@dataclass
class Phase:
    job: str
    first: str | None
    last: str | None
    seconds: float = 0.0  # the run
    success: bool = False
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass
class BackfillReport:
    phases: list[Phase]
    publish_seconds: float = 0.0  # publishing the warehouse once the runs were over

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases) + self.publish_seconds

    @property
    def records(self) -> int:
        return int(self.phases[0].metadata.get("run_records_in", 0)) if self.phases else 0

    @property
    def success(self) -> bool:
        return all(p.success for p in self.phases)


def plan(first_day: date, last_day: date, pipeline: PipelineSettings | None = None,
         now: datetime | None = None) -> list[Phase]:
    """The three runs of a backfill of ``first_day``…``last_day`` (inclusive)."""
    if last_day < first_day:
        raise ValueError(f"--to {last_day} is before --from {first_day}")
    pipeline = pipeline or PipelineSettings()
    now = now or datetime.now(UTC)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC)
    first_partition = first_hour()
    if end < first_partition:
        raise ValueError(
            f"{last_day} is before the first partition ({first_partition:%Y-%m-%d}); "
            "set ANALYTICS_START_DATE earlier"
        )
    # every raw hour the range's session windows read (partitions.session_window)
    first = max(session_window(start, pipeline.late_arrival_hours)[0], first_partition)
    last = min(session_window(end, pipeline.late_arrival_hours)[1], floor_hour(now))
    first_day_key = day_key(max(start, first_partition))
    last_day_key = day_key(min(end, now))
    if last < first:
        raise ValueError(f"{first_day} is in the future")
    return [
        Phase("events_job", partition_key(first), partition_key(last)),
        Phase("daily_job", first_day_key, last_day_key),
        Phase("history_job", None, None),
    ]


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    out: dict[str, object] = {}
    for ev in result.get_asset_materialization_events():
        for k, v in ev.materialization.metadata.items():
            if isinstance(v.value, (int, float, str)) and k not in out:
                out[k] = v.value
    return out


def run_backfill(
    first_day: date,
    last_day: date,
    instance: dg.DagsterInstance | None = None,
    log: Callable[[str], None] = print,
    log_level: str = "WARNING",
) -> BackfillReport:
    """Materialise every asset for the range (and what depends on it), through Dagster."""
    from analytics_platform.definitions import defs

    definitions = defs()
    phases = plan(first_day, last_day)
    own_instance = instance is None
    instance = instance or dg.DagsterInstance.get()
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    started = time.time()
    # Dagster's backfill ids look like this; the runs carry it from the start (the UI nests a
    # run under its backfill by the tag it was created with), the record follows at the end.
    backfill_id = "".join(random.choices(string.ascii_lowercase, k=8))
    run_ids: list[str] = []
    planned_before = os.environ.get(PLANNED_SUBSET_ENV)
    os.environ[PLANNED_SUBSET_ENV] = "true"
    report = BackfillReport(phases)
    published: dict[Path, float] = {}
    try:
        # the warehouse is published once, when the runs are over, whether they succeeded or
        # not: what they wrote is in the lake either way (storage.publish_once)
        try:
            with publish_once() as published:
                for phase in phases:
                    _run_phase(definitions, phase, instance, backfill_id, run_config, run_ids,
                               log)
                log("→ the warehouse, published once for the three runs")
        finally:
            report.publish_seconds = sum(published.values())
            if published:
                log(f"  the warehouse published in {report.publish_seconds:.1f} s")
    finally:
        if planned_before is None:
            os.environ.pop(PLANNED_SUBSET_ENV, None)
        else:
            os.environ[PLANNED_SUBSET_ENV] = planned_before
        if run_ids:
            try:
                record_backfill(instance, definitions, backfill_id, phases, len(run_ids),
                                started, f"analytics-platform backfill --from {first_day} "
                                f"--to {last_day}")
            except Exception as e:  # Dagster internals (see record_backfill): never fatal
                log(f"  (the runs are not listed under Backfills: {type(e).__name__}: {e})")
        if own_instance:
            instance.dispose()
    return report


def _error_text(error: object) -> str:
    """A step's error and what caused it (Dagster wraps the asset's own exception in an
    "Error occurred while executing op" of its own: the cause is what a user needs)."""
    parts = []
    while error is not None:
        parts.append(str(getattr(error, "message", error)).strip())
        error = getattr(error, "cause", None)
    return " ← ".join(p for p in parts if p)


def _interrupted(error: object) -> bool:
    """Whether a step's error (or what caused it) is Dagster's interrupt of the run."""
    while error is not None:
        if getattr(error, "cls_name", None) == "DagsterExecutionInterruptedError":
            return True
        error = getattr(error, "cause", None)
    return False


def _run_phase(definitions: dg.Definitions, phase: Phase, instance: dg.DagsterInstance,
               backfill_id: str, run_config: dict, run_ids: list[str],
               log: Callable[[str], None]) -> None:
    """Run one phase's job over its whole range, in this process; raises if it failed."""
    job = definitions.resolve_job_def(phase.job)
    tags = dict(dg.DagsterRun.tags_for_backfill_id(backfill_id))
    if phase.first:
        tags |= {PARTITION_RANGE_START_TAG: phase.first, PARTITION_RANGE_END_TAG: phase.last}
    span = f" {phase.first} … {phase.last}" if phase.first else ""
    log(f"→ {phase.job}{span}")
    t0 = time.perf_counter()
    result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config,
                                    raise_on_error=False)
    run_ids.append(result.run_id)
    phase.seconds = time.perf_counter() - t0
    phase.success = result.success
    phase.metadata = _metadata(result)
    if not result.success:
        errors = [e.event_specific_data.error for e in result.all_events
                  if e.is_step_failure and e.event_specific_data is not None]
        # Ctrl-C reaches the step first, which fails the run as interrupted: it is the user's
        # interrupt, not the run's failure
        if any(_interrupted(error) for error in errors):
            raise KeyboardInterrupt
        failures = [_error_text(error) for error in errors]
        raise RuntimeError(f"{phase.job} failed: " + " | ".join(failures)[:2000])
    log(f"  done in {phase.seconds:.1f} s")


def _phase_subset(definitions: dg.Definitions, phase: Phase) -> dict[dg.AssetKey, object]:
    """Per asset of the phase's job: its partitions in the phase's range (None: unpartitioned)."""
    graph = definitions.resolve_asset_graph()
    job = definitions.resolve_job_def(phase.job)
    out: dict[dg.AssetKey, object] = {}
    for key in job.asset_layer.selected_asset_keys:
        pdef = graph.get(key).partitions_def
        if pdef is None or phase.first is None or phase.last is None:
            out[key] = None
        else:
            keys = pdef.get_partition_keys_in_range(dg.PartitionKeyRange(phase.first, phase.last))
            out[key] = pdef.subset_with_partition_keys(keys)
    return out


def record_backfill(instance: dg.DagsterInstance, definitions: dg.Definitions,
                    backfill_id: str, phases: list[Phase], runs: int, started: float,
                    title: str) -> None:
    """Record the finished runs (tagged with ``backfill_id``) as one asset backfill, so the UI
    lists it under Backfills with its runs and, per asset, the partitions materialised or
    failed.

    Dagster has no public API for this: a backfill is made by the UI or its GraphQL API and run
    by the backfill daemon, which would launch its own runs. So the record is written as the
    daemon leaves one once it is done — terminal status, every partition requested, those of the
    successful runs materialised — which the daemon never picks up again. These internals are
    imported here and nowhere else; the runs' tag is the public ``DagsterRun.tags_for_backfill_id``.
    """
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.execution.asset_backfill import AssetBackfillData
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    def subset(of: list[Phase]) -> AssetGraphSubset:
        partitioned, unpartitioned = {}, set()
        for phase in of:
            for key, value in _phase_subset(definitions, phase).items():
                if value is None:
                    unpartitioned.add(key)
                else:
                    partitioned[key] = value
        return AssetGraphSubset(partitions_subsets_by_asset_key=partitioned,
                                non_partitioned_asset_keys=unpartitioned)

    done = [p for p in phases if p.success]
    failed = [p for p in phases if not p.success]  # the one that failed and those never run
    data = AssetBackfillData.from_asset_graph_subset(
        asset_graph_subset=subset(phases), dynamic_partitions_store=instance,
        backfill_start_timestamp=started,
    )._replace(requested_runs_for_target_roots=True, requested_subset=subset(phases),
               materialized_subset=subset(done), failed_and_downstream_subset=subset(failed))
    backfill = PartitionBackfill(
        backfill_id=backfill_id,
        status=BulkActionStatus.COMPLETED_FAILED if failed else BulkActionStatus.COMPLETED_SUCCESS,
        from_failure=False,
        tags={},
        backfill_timestamp=started,
        asset_selection=sorted(subset(phases).asset_keys, key=lambda k: k.to_user_string()),
        title=title,
        description=f"{runs} runs, one per job, each over its whole range",
        asset_backfill_data=data,
        backfill_end_timestamp=time.time(),
    )
    instance.add_backfill(backfill)


