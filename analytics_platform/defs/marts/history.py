"""Marts over all history (CONTRACT §5): first/last-touch attribution, weekly cohorts, experiments.

Each reads every ``sessions`` partition as the view ``s`` and replaces its one Parquet file with
its statement, ``sql/<mart>.sql`` beside this file (``experiments`` adds its statistics in
Python: a handful of rows). A new one is one ``history_mart(...)`` line and its ``.sql`` file.
"""

import time
from collections.abc import Callable

import dagster as dg
import pyarrow as pa

from analytics_platform import layout, sql
from analytics_platform.defs.automation import HISTORY_MARTS, refresh_when_deps_change
from analytics_platform.defs.metadata import table_metadata
from analytics_platform.duck import connect
from analytics_platform.mart_logic import compare_variants
from analytics_platform.resources import LakeResource
from analytics_platform.storage import markdown_preview, publish_after_step


def run_history(lake_res: LakeResource, table: str, query: str,
                post: Callable[[list[tuple]], pa.Table] | None = None) -> dg.MaterializeResult:
    """Expose all sessions as ``s`` and replace ``table`` with ``query`` (or with ``post``'s
    table of the query's rows)."""
    lake = lake_res.open()
    # every partition, when the lake is kept in S3; safe beside a run of this machine that
    # writes sessions meanwhile (Lake.pull never takes a file back over one written here)
    lake.pull("sessions")
    con = connect()
    t0 = time.perf_counter()
    if not lake.has_data("sessions"):
        lake.remove(table, layout.ALL)
        con.close()
        return dg.MaterializeResult(metadata={"rows": 0, "note": "no sessions yet"})
    con.execute("CREATE TEMP VIEW s AS SELECT * FROM read_parquet("
                f"{sql.literal(lake.glob('sessions'))}, hive_partitioning = false)")
    if post is not None:
        con.register("computed", post(con.execute(query).fetchall()))
        query = "SELECT * FROM computed"
    path = lake.write(con, query, table, layout.ALL)
    preview = markdown_preview(con, "SELECT * FROM read_parquet($p)", {"p": str(path)})
    con.close()
    publish_after_step(lake)
    table_meta = table_metadata([path])
    return dg.MaterializeResult(metadata={
        "rows": table_meta["dagster/row_count"], "seconds": round(time.perf_counter() - t0, 2),
        "preview": dg.MetadataValue.md(preview), **table_meta,
    })


def history_mart(name: str, description: str,
                 post: Callable[[list[tuple]], pa.Table] | None = None) -> dg.AssetsDefinition:
    """The all-history mart ``name``: ``sql/<name>.sql`` over every session as ``s``."""
    query = sql.load(f"marts/{name}")  # read now: a missing file fails the definitions' load

    @dg.asset(
        name=name,
        description=description,
        deps=["sessions"],
        group_name=HISTORY_MARTS,
        kinds={"duckdb", "parquet"},
        automation_condition=refresh_when_deps_change(),
    )
    def mart(lake: LakeResource) -> dg.MaterializeResult:
        return run_history(lake, name, query, post)

    return mart


attribution_touch = history_mart(
    "attribution_touch", "First-touch vs last-touch credit per source / medium / campaign: every "
    "converting visitor counts once for the source of their first session ever, and once for the "
    "source of the session in which they (first) converted.")
cohort_retention = history_mart(
    "cohort_retention", "Weekly retention: visitors grouped by the ISO week of their first "
    "session, and the share of each cohort seen again 0, 1, 2 … weeks later.")
experiments = history_mart(
    "experiments", "A/B results per experiment and variant: sessions, conversions, conversion "
    "rate, lift against the baseline (`control`, else the first variant by name) and the "
    "two-sided two-proportion z-test p-value.", post=compare_variants)
