"""Marts over all history (SPEC §5): first/last-touch attribution, weekly cohorts, experiments.

Each reads every ``sessions`` partition as the view ``s`` and replaces its one Parquet file.
"""

import math
import time

import dagster as dg
import pyarrow as pa

from analytics_platform.duck import connect
from analytics_platform.resources import LakeResource
from analytics_platform.storage import markdown_preview, publish_warehouse

# Each converting visitor is credited once: first touch = the source of their first session
# ever; last touch = the source of the session in which they first converted.
ATTRIBUTION_TOUCH_SQL = """
WITH per_visitor AS (
    SELECT visitor_id,
           first({'source': source, 'medium': medium, 'campaign': campaign}
                 ORDER BY session_start, session_id) AS first_touch,
           first({'source': source, 'medium': medium, 'campaign': campaign}
                 ORDER BY session_start, session_id) FILTER (converted) AS last_touch
    FROM s
    GROUP BY visitor_id
    HAVING bool_or(converted)
),
credits AS (
    SELECT first_touch.source, first_touch.medium, first_touch.campaign, 1 AS f, 0 AS l
    FROM per_visitor
    UNION ALL
    SELECT last_touch.source, last_touch.medium, last_touch.campaign, 0, 1 FROM per_visitor
)
SELECT source, medium, campaign,
       sum(f)::BIGINT AS first_touch_conversions,
       sum(l)::BIGINT AS last_touch_conversions
FROM credits
GROUP BY ALL
ORDER BY last_touch_conversions DESC, first_touch_conversions DESC, source, medium, campaign
"""

# A visitor's cohort is the ISO week (Monday) of their first session.
COHORT_SQL = """
WITH firsts AS (
    SELECT visitor_id, date_trunc('week', min(session_date))::DATE AS cohort_week
    FROM s GROUP BY visitor_id
),
activity AS (
    SELECT DISTINCT s.visitor_id, f.cohort_week,
           date_diff('day', f.cohort_week, date_trunc('week', s.session_date)::DATE) // 7
               AS week_offset
    FROM s JOIN firsts f USING (visitor_id)
),
sizes AS (SELECT cohort_week, count(*) AS cohort_size FROM firsts GROUP BY cohort_week)
SELECT a.cohort_week, a.week_offset, z.cohort_size,
       count(*) AS visitors,
       count(*) / z.cohort_size AS retention
FROM activity a JOIN sizes z USING (cohort_week)
GROUP BY a.cohort_week, a.week_offset, z.cohort_size
ORDER BY a.cohort_week, a.week_offset
"""

EXPERIMENTS_SQL = """
SELECT experiment, variant,
       count(*) AS sessions,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
WHERE experiment IS NOT NULL AND variant IS NOT NULL
GROUP BY experiment, variant
ORDER BY experiment, variant
"""


def compare_variants(rows: list[tuple[str, str, int, int, float]]) -> pa.Table:
    """Lift and two-sided two-proportion z-test p-value of each variant against its
    experiment's baseline (the variant named ``control``, else the first by name). A handful of
    rows (one per variant), so plain Python."""
    out: dict[str, list] = {k: [] for k in ("experiment", "variant", "baseline", "sessions",
                                            "conversions", "conversion_rate", "lift", "p_value")}
    by_exp: dict[str, list[tuple[str, str, int, int, float]]] = {}
    for r in rows:
        by_exp.setdefault(r[0], []).append(r)
    for exp, variants in by_exp.items():
        names = sorted(v[1] for v in variants)
        base_name = "control" if "control" in names else names[0]
        base = next(v for v in variants if v[1] == base_name)
        _, _, n0, c0, p0 = base
        for _, name, n1, c1, p1 in variants:
            lift = p_value = None
            if name != base_name:
                lift = (p1 / p0 - 1) if p0 else None
                pooled = (c0 + c1) / (n0 + n1)
                se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
                if se > 0:
                    z = (p1 - p0) / se
                    p_value = math.erfc(abs(z) / math.sqrt(2))
            for k, v in (("experiment", exp), ("variant", name), ("baseline", base_name),
                         ("sessions", n1), ("conversions", c1), ("conversion_rate", p1),
                         ("lift", lift), ("p_value", p_value)):
                out[k].append(v)
    return pa.table({
        "experiment": pa.array(out["experiment"], pa.string()),
        "variant": pa.array(out["variant"], pa.string()),
        "baseline": pa.array(out["baseline"], pa.string()),
        "sessions": pa.array(out["sessions"], pa.int64()),
        "conversions": pa.array(out["conversions"], pa.int64()),
        "conversion_rate": pa.array(out["conversion_rate"], pa.float64()),
        "lift": pa.array(out["lift"], pa.float64()),
        "p_value": pa.array(out["p_value"], pa.float64()),
    })


def run_history(lake_res: LakeResource, table: str, query: str | None,
                post=None) -> dg.MaterializeResult:
    """Expose all sessions as ``s`` and replace ``table`` with ``query`` (or ``post``'s table)."""
    lake = lake_res.open()
    lake.pull("sessions")  # every partition, when the lake is kept in S3
    con = connect()
    t0 = time.perf_counter()
    if not lake.has_data("sessions"):
        lake.remove(table, "all")
        con.close()
        return dg.MaterializeResult(metadata={"rows": 0, "note": "no sessions yet"})
    con.execute(f"CREATE TEMP VIEW s AS SELECT * FROM read_parquet('{lake.glob('sessions')}')")
    if post is not None:
        con.register("computed", post(con.execute(query).fetchall()))
        query = "SELECT * FROM computed"
    path = lake.write(con, query, table, "all")
    rows = con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)}).fetchall()[0][0]
    preview = markdown_preview(con, "SELECT * FROM read_parquet($p)", {"p": str(path)})
    con.close()
    publish_warehouse(lake)
    return dg.MaterializeResult(metadata={
        "rows": rows, "seconds": round(time.perf_counter() - t0, 2),
        "preview": dg.MetadataValue.md(preview),
    })


def history_mart(**kwargs) -> dg.AssetsDefinition:
    return dg.asset(
        deps=["sessions"],
        group_name="marts",
        kinds={"duckdb", "parquet"},
        automation_condition=(
            dg.AutomationCondition.any_deps_updated().since_last_handled()
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
        ).with_label("refresh when sessions change"),
        **kwargs,
    )


@history_mart()
def attribution_touch(lake: LakeResource) -> dg.MaterializeResult:
    """First-touch vs last-touch credit per source / medium / campaign: every converting
    visitor counts once for the source of their first session ever, and once for the source of
    the session in which they (first) converted."""
    return run_history(lake, "attribution_touch", ATTRIBUTION_TOUCH_SQL)


@history_mart()
def cohort_retention(lake: LakeResource) -> dg.MaterializeResult:
    """Weekly retention: visitors grouped by the ISO week of their first session, and the share
    of each cohort seen again 0, 1, 2 … weeks later."""
    return run_history(lake, "cohort_retention", COHORT_SQL)


@history_mart()
def experiments(lake: LakeResource) -> dg.MaterializeResult:
    """A/B results per experiment and variant: sessions, conversions, conversion rate, lift
    against the baseline (`control`, else the first variant by name) and the two-sided
    two-proportion z-test p-value."""
    return run_history(lake, "experiments", EXPERIMENTS_SQL, post=compare_variants)
