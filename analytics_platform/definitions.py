"""The code location: every definition under ``analytics_platform/defs``, loaded by domain.

``dagster dev`` (via workspace.yaml) and ``dg`` both load this module.
"""

from pathlib import Path

import dagster as dg
from dagster.components import load_from_defs_folder

from analytics_platform import settings

# Every process that runs steps loads this module first: Dagster batches a ranged step's
# materialisation records there (settings.apply_dagster_defaults).
settings.apply_dagster_defaults()


@dg.definitions
def defs() -> dg.Definitions:
    return load_from_defs_folder(path_within_project=Path(__file__).parent)
