"""The resources every asset, check and sensor of this project uses, and the executor of its
runs.

A value that comes straight from the environment is bound with ``dg.EnvVar``, so the UI shows
it came from there (and re-reads it when a run starts); a variable that is not set leaves the
resource's default (``settings.py``: ``./data``, the raw lake under it, local only…). Settings
that are not plain strings or integers (shares, hours as floats) come through the resources'
defaults, from ``settings.py``, as do derived defaults (the raw lake under the data folder).
"""

import dagster as dg

from analytics_platform import settings
from analytics_platform.resources import LakeResource, PipelineSettings, RawLakeResource


def _from_env(**variables: str) -> dict[str, dg.EnvVar]:
    """``field=dg.EnvVar(name)`` for each variable that is set."""
    return {field: dg.EnvVar(name) for field, name in variables.items() if settings.is_set(name)}


@dg.definitions
def resources() -> dg.Definitions:
    s3 = _from_env(endpoint_url="AWS_ENDPOINT_URL")  # the lakes' S3 client (S3Resource)
    ints = ({"late_arrival_hours": dg.EnvVar.int("ANALYTICS_LATE_ARRIVAL_HOURS")}
            if settings.is_set("ANALYTICS_LATE_ARRIVAL_HOURS") else {})
    if settings.is_set("ANALYTICS_JOURNEY_MIN_VISITORS"):
        ints["journey_min_visitors"] = dg.EnvVar.int("ANALYTICS_JOURNEY_MIN_VISITORS")
    return dg.Definitions(
        resources={
            "raw_lake": RawLakeResource(**s3, **_from_env(url="ANALYTICS_RAW_URL")),
            "lake": LakeResource(**s3, **_from_env(data_dir="ANALYTICS_DATA_DIR",
                                                    url="ANALYTICS_LAKE_URL")),
            "pipeline": PipelineSettings(**ints, **_from_env(
                funnels_file="ANALYTICS_FUNNELS_FILE", goals_file="ANALYTICS_GOALS_FILE",
                referrers_file="ANALYTICS_REFERRERS_FILE")),
        },
        # Every step of a run in the run's own process. A step is DuckDB on every core already,
        # so a process per step (Dagster's default) buys no parallelism; it costs the imports
        # (about 3 s a step on 2 cores: a new event reached `sessions` ~10 s later) and runs
        # several DuckDBs side by side, each with its own memory limit.
        executor=dg.in_process_executor,
    )
