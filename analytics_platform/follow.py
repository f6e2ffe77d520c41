"""The machine's warehouse when the runs are elsewhere (``ANALYTICS_RUN_LAUNCHER=ecs``).

A run in an ECS task writes the lake to S3 and publishes a warehouse on the task's own disk,
which goes with the task: the dashboard and the Stats API on the machine read
``$ANALYTICS_DATA_DIR/warehouse.duckdb``. So ``serve`` adds the role ``lake-pull``
(``analytics-platform lake-pull --follow``): after Dagster records a successful run, it brings the
local lake up to date from S3 (:meth:`Lake.pull_all`) and publishes the warehouse.

It asks Dagster's run storage (the machine's own PostgreSQL, free) whether a run succeeded,
not S3: one pass lists every table of the lake (a LIST request, $0.005 a thousand, per table and
per 1,000 of its files: about 40 with a year of hourly partitions in its ~20 tables), so a pass
every 5 minutes (``lake-pull --every``'s default: the most a run's rows wait, after the run, to
reach the machine's dashboard) costs at most about $1.70 a month, and nothing while no run
succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg

from analytics_platform.storage import Lake, publish_warehouse

# Dagster's SQLite run storage keeps whole seconds: a run that succeeds in the same second as the
# last one handled has the same time, so the look reaches back this far and skips the run ids it
# has handled already.
_OVERLAP = timedelta(seconds=2)


def successes(instance: dg.DagsterInstance, since: datetime | None) -> dict[str, datetime]:
    """The runs that succeeded (were last updated, as a success) after ``since`` less the
    overlap, by run id, with that time; only the latest when ``since`` is None."""
    filters = dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS],
                            updated_after=since - _OVERLAP if since else None)
    return {r.dagster_run.run_id: r.update_timestamp
            for r in instance.get_run_records(filters=filters, limit=None if since else 1,
                                              order_by="update_timestamp")}


def sync(lake: Lake, echo: Callable[[str], None]) -> None:
    """One pass: the lake's cache made to match S3, then the warehouse published."""
    fetched = lake.pull_all()
    views = publish_warehouse(lake)
    echo(f"{sum(fetched.values())} file(s) fetched from {len(fetched)} table(s); "
         f"warehouse published ({len(views)} views)")


def follow(lake: Lake, instance: dg.DagsterInstance, every: float,
           echo: Callable[[str], None], until: Callable[[], bool] = lambda: False) -> None:
    """A pass now (the machine may have been away), then one after every look at Dagster's runs
    that finds a success not handled yet, ``every`` seconds apart, until ``until()``. A run that
    succeeds during a pass is found by the next look (it was not among those the pass handled);
    a pass that fails is made again at the next look."""
    handled: dict[str, datetime] = {}  # run id → time, of the runs within the overlap of `since`
    since: datetime | None = None
    first = True
    while not until():
        found = successes(instance, since)
        new = {run: at for run, at in found.items() if run not in handled}
        if first or new:
            try:
                sync(lake, echo)
            except Exception as e:  # S3 or the disk for a while: the next look tries again
                echo(f"the pass failed ({type(e).__name__}: {e}); again in {every:.0f} s")
            else:
                first = False
                handled.update(new)
                since = max(handled.values(), default=since)
                handled = {run: at for run, at in handled.items() if at >= since - _OVERLAP}
        time.sleep(every)
