"""Backfill a date range through Dagster: three runs, whatever the length of the range.

1. ``events_job`` over every raw hour that can hold the range's sessions (from a few hours
   before the first day to the late-arrival horizon after the last, never past now);
2. ``daily_job`` (sessions and daily marts) over the range's days;
3. ``history_job`` (all-history marts).

Each run covers its whole range at once (single-run backfill policies), so a 14-day backfill
costs three process start-ups, not 336. Runs are recorded in the Dagster instance
(``$DAGSTER_HOME``), so they show up in the UI like any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from analytics_platform.lake import floor_hour, partition_key
from analytics_platform.partitions import day_key, hourly
from analytics_platform.resources import PipelineSettings


@dataclass
class Phase:
    job: str
    first: str | None
    last: str | None
    seconds: float = 0.0
    success: bool = False
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass
class BackfillReport:
    phases: list[Phase]

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def records(self) -> int:
        return int(self.phases[0].metadata.get("records_in", 0)) if self.phases else 0

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
    first_partition = hourly.start_time_for_partition_key(hourly.get_first_partition_key())
    if end < first_partition:
        raise ValueError(
            f"{last_day} is before the first partition ({first_partition:%Y-%m-%d}); "
            "set ANALYTICS_START_DATE earlier"
        )
    first_hour = max(start - timedelta(hours=pipeline.session_lookback_hours), first_partition)
    last_hour = min(end + timedelta(days=1, hours=pipeline.late_arrival_hours), floor_hour(now))
    first_day_key = day_key(max(start, first_partition))
    last_day_key = day_key(min(end, now))
    if last_hour < first_hour:
        raise ValueError(f"{first_day} is in the future")
    return [
        Phase("events_job", partition_key(first_hour), partition_key(last_hour)),
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
    try:
        for phase in phases:
            job = definitions.resolve_job_def(phase.job)
            tags = {}
            if phase.first:
                tags = {ASSET_PARTITION_RANGE_START_TAG: phase.first,
                        ASSET_PARTITION_RANGE_END_TAG: phase.last}
            span = f" {phase.first} … {phase.last}" if phase.first else ""
            log(f"→ {phase.job}{span}")
            t0 = time.perf_counter()
            result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config,
                                            raise_on_error=False)
            phase.seconds = time.perf_counter() - t0
            phase.success = result.success
            phase.metadata = _metadata(result)
            if not result.success:
                failures = [str(e.event_specific_data.error.message).strip()
                            for e in result.all_events
                            if e.is_step_failure and e.event_specific_data is not None]
                raise RuntimeError(f"{phase.job} failed: " + " | ".join(failures)[:2000])
            log(f"  done in {phase.seconds:.1f} s")
    finally:
        if own_instance:
            instance.dispose()
    return BackfillReport(phases)


