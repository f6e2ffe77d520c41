"""The resources every asset, check and sensor of this project uses, configured by environment."""

import dagster as dg

from analytics_platform.resources import LakeResource, PipelineSettings, RawLakeResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "raw_lake": RawLakeResource(),
            "lake": LakeResource(),
            "pipeline": PipelineSettings(),
        }
    )
