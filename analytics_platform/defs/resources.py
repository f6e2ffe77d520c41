"""The resources every asset, check and sensor of this project uses, configured by environment,
and the executor of its runs."""

import dagster as dg

from analytics_platform.resources import LakeResource, PipelineSettings, RawLakeResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "raw_lake": RawLakeResource(),
            "lake": LakeResource(),
            "pipeline": PipelineSettings(),
        },
        # Every step of a run in the run's own process. A step is DuckDB on every core already,
        # so a process per step (Dagster's default) buys no parallelism; it costs the imports
        # (about 3 s a step on 2 cores: a new event reached `sessions` ~10 s later) and runs
        # several DuckDBs side by side, each with its own memory limit.
        executor=dg.in_process_executor,
    )
