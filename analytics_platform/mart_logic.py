"""The parts of the marts that the dashboard and the API run too, without Dagster: the SQL of a
funnel step or goal (the events that count for it), of a funnel and of ``goals_daily``, and the
experiments' statistics.

The marts (``defs/marts/funnels.py``, ``goals.py``, ``history.py``) import them from here, and
so do the query layer (a "completed goal" filter) and the dashboard (a filtered funnel, goal or
experiment): one definition, and a reader's process never loads Dagster for them (importing it
took about 1.7 s the first time a goal was filtered on).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

import pyarrow as pa

from analytics_platform import sql
from analytics_platform.config import Funnel, FunnelStep, Goal

_lit = sql.literal


# Decimal text (CONTRACT §5): ASCII digits, an optional sign, point and exponent. A prop string
# must be this to meet a ``min``, and a configured ``equals`` string to be a number; Python's
# float() and DuckDB's cast also take "NaN", "inf", "1_000" and " 15" (a prop "NaN" met every
# ``min``: NaN sorts above every number in DuckDB). The same pattern in Python and in RE2.
DECIMAL_TEXT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_HUGEINT = 2 ** 127  # DuckDB's HUGEINT holds [-2^127, 2^127)


def _configured_number(value: str | float | bool) -> Decimal | None:
    """The value of a configured ``equals`` that is a number or decimal text, exactly (a YAML
    float's binary value: 7.0 is 7); None for other text and for booleans."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(value)
    if not re.fullmatch(DECIMAL_TEXT, value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # an exponent past Decimal's (~1e18): no JSON number is that
        return None


def _equals_condition(node: str, value: str, equals: str | float | bool) -> str:
    """``equals`` on the prop whose JSON is ``node`` and whose text (``->>``) is ``value``.

    A JSON number against a configured number or decimal text is compared by value (its text
    was compared: 2.0 never equalled "2", a YAML 7.0 never a JSON 7): a JSON integer (DuckDB's
    ``json_type`` BIGINT / UBIGINT) exactly, as HUGEINT, so 2^53 + 1 is not 2^53, and equal
    only to a whole number; any other JSON number (DOUBLE) as a double. Anything else (a
    string or boolean prop, or configured text that is not a number, or a boolean) is text:
    the prop's string, ``true`` / ``false``, against the configured value's text (a YAML
    number's Python text, 7 → "7", 7.0 → "7.0")."""
    text = ("true" if equals else "false") if isinstance(equals, bool) else str(equals)
    as_text = f"{value} = {_lit(text)}"
    number = _configured_number(equals)
    if number is None:
        return as_text
    whole = -_HUGEINT <= number < _HUGEINT and number == number.to_integral_value()
    as_int = f"try_cast({value} AS HUGEINT) = {_lit(int(number))}::HUGEINT" if whole else "false"
    as_double = f"try_cast({value} AS DOUBLE) = {_lit(repr(float(number)))}::DOUBLE"
    return (f"CASE json_type({node}) WHEN 'BIGINT' THEN {as_int} WHEN 'UBIGINT' THEN {as_int} "
            f"WHEN 'DOUBLE' THEN {as_double} ELSE {as_text} END")


def step_condition(step: FunnelStep, alias: str = "e") -> str:
    """The SQL condition an event must meet to count for ``step`` (a funnel step or a goal):
    the one rule of CONTRACT §5 for the marts, the dashboard and the query layer's goal
    filter."""
    cond = [f"{alias}.event_type = {_lit(step.event_type)}"]
    if step.page_path is not None:
        cond.append(f"{alias}.page_path = {_lit(step.page_path)}")
    if step.prop is not None:
        node = f"{alias}.props::JSON->{_lit(step.prop)}"
        value = f"{alias}.props::JSON->>{_lit(step.prop)}"
        if step.min is not None:
            # a JSON number's text is decimal text too; a string counts when it is one ("15")
            cond.append(f"try_cast(CASE WHEN regexp_full_match({value}, {_lit(DECIMAL_TEXT)}) "
                        f"THEN {value} END AS DOUBLE) >= {float(step.min)!r}")
        if step.equals is not None:
            cond.append(_equals_condition(node, value, step.equals))
        if step.min is None and step.equals is None:
            cond.append(f"{value} IS NOT NULL")
    return " AND ".join(cond)


# The columns of an event that step_condition reads.
STEP_COLUMNS = "event_type, page_path, props"


def _matching_rows(name: str, matches: Sequence[FunnelStep], columns: str) -> str:
    """A CTE ``name``: ``columns`` and :data:`STEP_COLUMNS` of the events of ``e`` whose type
    one of ``matches`` has, read once.

    Each step or goal then selects from it instead of scanning ``e`` again: a scan of a day's
    ``session_events`` decodes its ``event_type`` column and the columns asked for (``props``,
    ~1 MB a day, the most) whatever it keeps. On the 30-day lake (issue 21, the statements
    alone on 9 days, twice) ``goals_daily``'s five scans a day became one: −20 % CPU,
    ``funnel_daily``'s five −18 %; the same files (test_fast_marts.py)."""
    types = ", ".join(sorted({_lit(m.event_type) for m in matches}))
    return (f"{name} AS MATERIALIZED (SELECT {columns}, {STEP_COLUMNS} FROM e "
            f"WHERE e.event_type IN ({types}))")


def funnel_sql(funnel: Funnel) -> str:
    """Steps reached per session, then counted: date, funnel, step, step_name, sessions, …"""
    ctes = [_matching_rows("funnel_events", funnel.steps, "session_id, ts"),
            f"step1 AS (SELECT e.session_id, min(e.ts) AS t FROM funnel_events e "
            f"WHERE {step_condition(funnel.steps[0])} GROUP BY e.session_id)"]
    for k, step in enumerate(funnel.steps[1:], start=2):
        ctes.append(
            f"step{k} AS (SELECT e.session_id, min(e.ts) AS t FROM funnel_events e "
            f"JOIN step{k - 1} p ON p.session_id = e.session_id AND e.ts >= p.t "
            f"WHERE {step_condition(step)} GROUP BY e.session_id)"
        )
    counts = " UNION ALL ".join(
        f"SELECT {k} AS step, {_lit(s.name)} AS step_name, (SELECT count(*) FROM step{k}) "
        f"AS sessions" for k, s in enumerate(funnel.steps, start=1)
    )
    # pct_of_previous: step 1 has no previous step, so it is 1 by definition (CONTRACT §5),
    # even on a day no session reached it, where dividing step 1 by itself gave 0.
    return f"""
    WITH {", ".join(ctes)},
    counts AS ({counts})
    SELECT $date::DATE AS date, {_lit(funnel.name)} AS funnel, step, step_name, sessions,
           coalesce(sessions / nullif(first(sessions) OVER (ORDER BY step), 0), 0)
               AS pct_of_start,
           CASE WHEN step = 1 THEN 1
                ELSE coalesce(sessions / nullif(lag(sessions) OVER (ORDER BY step), 0), 0)
           END AS pct_of_previous
    FROM counts
    """


def funnels_sql(funnels: list[Funnel], day: datetime) -> str:
    day_lit = _lit(day.date().isoformat())
    parts = [funnel_sql(f).replace("$date", day_lit) for f in funnels]
    return " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts) + " ORDER BY funnel, step"


def goals_sql(goals: list[Goal]) -> str:
    """``goals_daily.sql`` with the goals (in the file's order) and their matching events."""
    names = " UNION ALL ".join(f"SELECT {k} AS goal_order, {_lit(g.name)} AS goal"
                               for k, g in enumerate(goals, start=1))
    events = f"WITH {_matching_rows('goal_events', goals, 'session_id')} " + " UNION ALL ".join(
        f"SELECT {_lit(g.name)} AS goal, e.session_id FROM goal_events e "
        f"WHERE {step_condition(g)}" for g in goals)
    return sql.load("marts/goals_daily", goals=names, goal_events=events)


def _fisher_exact(n0: int, c0: int, n1: int, c1: int) -> float:
    """Two-sided Fisher exact p-value of ``c0``/``n0`` against ``c1``/``n1``: the probability,
    given both margins, of every table no likelier than the observed one.

    Hypergeometric weights ``comb(n1, k) * comb(n0, K - k)`` are exact integers sharing the
    denominator ``comb(N, K)``, so "no likelier" is an exact integer comparison (no tolerance
    for floating-point ties) and the one division at the end is correctly rounded."""
    conv, total = c0 + c1, n0 + n1
    weights = [math.comb(n1, k) * math.comb(n0, conv - k)
               for k in range(max(0, conv - n0), min(conv, n1) + 1)]
    observed = math.comb(n1, c1) * math.comb(n0, c0)
    return sum(w for w in weights if w <= observed) / math.comb(total, conv)


def _holm(p: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``p`` (one family): the i-th smallest times (m - i + 1),
    kept monotone and capped at 1, so "adjusted < 5 %" keeps the family-wise error at 5 %."""
    m = len(p)
    out = [0.0] * m
    running = 0.0
    for i, j in enumerate(sorted(range(m), key=lambda j: p[j])):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def compare_variants(rows: list[tuple[str, str, int, int, float]], *,
                     decision: bool = False) -> pa.Table:
    """Lift and two-sided two-proportion z-test p-value of each variant against its
    experiment's baseline (the variant named ``control``, else the first by name). A handful of
    rows (one per variant), so plain Python.

    ``p_value`` is the mart's column (CONTRACT §5): the per-comparison z-test, NULL when it is
    undefined. ``decision=True`` (the dashboard's verdict) adds what a verdict must rest on:
    ``test`` — the z-test's normal approximation is poor when an expected count of the 2×2
    table is below 5, so Fisher's exact test there; ``p_test``, that test's p-value;
    ``comparisons``, the experiment's k - 1 comparisons with its baseline; and ``p_adjusted``,
    ``p_test`` Holm-adjusted over them (with 8 variants, 23.5 % of simulated A/A tests had an
    unadjusted p < 0.05 somewhere)."""
    cols = ["experiment", "variant", "baseline", "sessions", "conversions", "conversion_rate",
            "lift", "p_value"]
    if decision:
        cols += ["test", "p_test", "comparisons", "p_adjusted"]
    out: dict[str, list] = {k: [] for k in cols}
    by_exp: dict[str, list[tuple[str, str, int, int, float]]] = {}
    for r in rows:
        by_exp.setdefault(r[0], []).append(r)
    for exp, variants in by_exp.items():
        names = sorted(v[1] for v in variants)
        base_name = "control" if "control" in names else names[0]
        base = next(v for v in variants if v[1] == base_name)
        _, _, n0, c0, p0 = base
        tests: list[tuple[str | None, float | None]] = []
        for _, name, n1, c1, p1 in variants:
            lift = p_value = None
            test = p_test = None
            if name != base_name:
                lift = (p1 / p0 - 1) if p0 else None
                pooled = (c0 + c1) / (n0 + n1)
                se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
                if se > 0:
                    z = (p1 - p0) / se
                    p_value = math.erfc(abs(z) / math.sqrt(2))
                conv = c0 + c1
                expected = [n * k / (n0 + n1) for n in (n0, n1) for k in (conv, n0 + n1 - conv)]
                if min(expected) < 5:
                    test, p_test = "Fisher exact", _fisher_exact(n0, c0, n1, c1)
                else:
                    test, p_test = "z-test", p_value
            tests.append((test, p_test))
            for k, v in (("experiment", exp), ("variant", name), ("baseline", base_name),
                         ("sessions", n1), ("conversions", c1), ("conversion_rate", p1),
                         ("lift", lift), ("p_value", p_value)):
                out[k].append(v)
        if decision:
            # every comparison has a p_test: Fisher covers the tables where the z-test has
            # none (no conversion, or only conversions, on both sides: an expected count of 0)
            family = [j for j, (t, _) in enumerate(tests) if t is not None]
            adjusted = dict(zip(family, _holm([tests[j][1] for j in family]), strict=True))
            for j, (t, p) in enumerate(tests):
                out["test"].append(t)
                out["p_test"].append(p)
                out["comparisons"].append(len(family))
                out["p_adjusted"].append(adjusted.get(j))
    types = {"experiment": pa.string(), "variant": pa.string(), "baseline": pa.string(),
             "sessions": pa.int64(), "conversions": pa.int64(), "conversion_rate": pa.float64(),
             "lift": pa.float64(), "p_value": pa.float64(), "test": pa.string(),
             "p_test": pa.float64(), "comparisons": pa.int64(), "p_adjusted": pa.float64()}
    return pa.table({k: pa.array(out[k], types[k]) for k in cols})
