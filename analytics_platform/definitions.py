"""The code location: every definition under ``analytics_platform/defs``, loaded by domain.

``dagster dev`` (via workspace.yaml) and ``dg`` both load this module.
"""

from pathlib import Path

import dagster as dg
from dagster.components import load_from_defs_folder


@dg.definitions
def defs() -> dg.Definitions:
    return load_from_defs_folder(path_within_project=Path(__file__).parent)
