"""The event contract as one DuckDB expression, generated from :mod:`analytics_platform.contract`.

No rule is written here: each kind of rule in the contract's tables is translated to SQL, in the
same order as :func:`analytics_platform.contract.validate_event` applies them, so the first
violation found by SQL is the first one Python reports (a property test holds them to it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analytics_platform.contract import (
    FIELDS,
    MAX_PROPS_KEY_CHARS,
    MAX_PROPS_KEYS,
    MAX_PROPS_VALUE_CHARS,
    PROPS_ONE_OF,
    PROPS_RULES,
    RAW_FIELDS,
    RECORD_RULES,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
    Field,
)
from analytics_platform.sql import literal as _lit

# Every field's JSON type and text are read in two parses of the record (``json_type`` of the
# whole list of paths, and ``json_transform`` to a struct of texts); the rules then compare those
# small values, never parsing the record again. The record's own type is the list's last element.
# (The simple, per-record form of the same, ``typed_columns_sql`` and ``reason_sql``, reads the
# texts with ``json_extract_string`` of the list: test_fast_paths.py holds the two equal.)
EXTRACTED: tuple[Field, ...] = FIELDS + RAW_FIELDS
_INDEX = {f.name: i + 1 for i, f in enumerate(EXTRACTED)}  # DuckDB lists are 1-based
_PATHS = "[" + ", ".join(f"'$.{f.name}'" for f in EXTRACTED) + ", '$']"
_ROOT = len(EXTRACTED) + 1
# Every field's text, for json_transform (see validated_sql).
_TEXTS = "'{" + ", ".join(f'"{f.name}": "VARCHAR"' for f in EXTRACTED) + "}'"


def field_type_sql(name: str) -> str:
    """The JSON type of field ``name`` (``VARCHAR``, ``BIGINT``, ``OBJECT``, ``NULL``…; NULL when
    absent), from the ``t`` list of ``json_type``'s parse of the record."""
    return f"t[{_INDEX[name]}]"


def field_text_sql(name: str) -> str:
    """The value of field ``name`` as text (a string unquoted, a number or object as JSON): the
    column ``s_<name>`` of :func:`validated_sql`'s rows (every field but props, which they carry
    as ``t_props`` and, scrubbed, in the ``per_props`` columns)."""
    return f"s_{name}"


_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"
_INTEGER_TYPES = "('BIGINT', 'UBIGINT')"
_FLAT_TYPES = "('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')"


def typed_columns_sql(struct: bool = False) -> str:
    """Each field's JSON type (``t_<field>``) and text (``s_<field>``) as columns of their own,
    from the list ``t`` (``json_type``) and ``s``: the list of ``json_extract_string`` of the
    same paths (the simple, per-record form :func:`reason_sql` reads, which
    ``test_fast_paths.py`` holds :func:`validated_sql`'s parse to), or with ``struct`` the
    struct of ``json_transform`` (:func:`validated_sql`)."""
    return ", ".join(
        f"{field_type_sql(f.name)} AS t_{f.name}, "
        f"{f's.{f.name}' if struct else f's[{_INDEX[f.name]}]'} AS s_{f.name}"
        for f in EXTRACTED
    )


def _field_rules(f: Field) -> list[tuple[str, str]]:
    t = f"t_{f.name}"
    s = f"s_{f.name}"
    present = f"coalesce({t}, 'NULL') <> 'NULL'"
    rules: list[tuple[str, str]] = []
    if f.required:
        rules.append((f"NOT ({present})", f"missing:{f.name}"))
    if f.kind in ("string", "uuid", "timestamp"):
        rules.append((f"{present} AND {t} <> 'VARCHAR'", f"wrong_type:{f.name}"))
        if f.required:
            rules.append((f"{present} AND {s} = ''", f"empty:{f.name}"))
        if f.max_chars is not None:
            rules.append((f"{present} AND length({s}) > {f.max_chars}", f"too_long:{f.name}"))
        if f.allowed is not None:
            allowed = ", ".join(_lit(a) for a in f.allowed)
            rules.append((f"{present} AND {s} NOT IN ({allowed})", f"unknown_event_type:{f.name}"))
        if f.kind == "uuid":
            rules.append((f"{present} AND NOT regexp_full_match({s}, {_lit(UUID_PATTERN)})",
                          f"not_uuid:{f.name}"))
        if f.kind == "timestamp":
            rules.append((
                f"{present} AND (NOT regexp_full_match({s}, {_lit(TIMESTAMP_PATTERN)}) "
                f"OR try_cast({s} AS TIMESTAMPTZ) IS NULL)",
                f"bad_timestamp:{f.name}",
            ))
    elif f.kind == "boolean":
        rules.append((f"{present} AND {t} <> 'BOOLEAN'", f"wrong_type:{f.name}"))
    elif f.kind == "integer":
        rules.append((f"{present} AND {t} NOT IN {_INTEGER_TYPES}", f"wrong_type:{f.name}"))
        rules.append((
            f"{present} AND NOT (try_cast({s} AS HUGEINT) BETWEEN {f.min_value} AND {f.max_value})",
            f"out_of_range:{f.name}",
        ))
    return rules


def _props_rules() -> list[tuple[str, str]]:
    # `p` is props as JSON when it is an object (see validated_sql), NULL otherwise.
    p = "p"
    t = "t_props"
    present = f"coalesce({t}, 'NULL') <> 'NULL'"
    keys = f"json_keys({p})"
    # props as a map, cast once per record (see validated_sql); the first bad value's key.
    bad_value = (
        f"NOT (coalesce(json_type(e.value), 'NULL') IN {_FLAT_TYPES} AND "
        f"(json_type(e.value) <> 'VARCHAR' "
        f"OR length(json_extract_string(e.value, '$')) <= {MAX_PROPS_VALUE_CHARS}))"
    )
    first_bad = f"list_filter(map_entries(pm), lambda e: {bad_value})[1].key"
    rules = [
        (f"{present} AND {t} <> 'OBJECT'", "wrong_type:props"),
        (f"{t} = 'OBJECT' AND len({keys}) > {MAX_PROPS_KEYS}", "props_too_many_keys:props"),
        (f"{t} = 'OBJECT' AND list_bool_or(list_transform({keys}, "
         f"lambda k: k = '' OR length(k) > {MAX_PROPS_KEY_CHARS}))", "props_bad_key:props"),
        # The reason names the first offending key, as the Python check does.
        (f"{t} = 'OBJECT' AND {first_bad} IS NOT NULL", f"'props_bad_value:props.' || {first_bad}"),
    ]
    for r in PROPS_RULES:
        vt = f"json_type({p}, '$.{r.key}')"
        v_present = f"coalesce({vt}, 'NULL') <> 'NULL'"
        when = f"s_event_type = {_lit(r.event_type)}"
        if r.required:
            rules.append((f"{when} AND NOT ({v_present})", f"props_missing:props.{r.key}"))
        number = f"try_cast(json_extract_string({p}, '$.{r.key}') AS DOUBLE)"
        if r.allowed_numbers is not None:
            nums = ", ".join(str(n) for n in r.allowed_numbers)
            ok = f"{vt} IN {_NUMBER_TYPES} AND {number} IN ({nums})"
        elif r.number_range is not None:
            lo, hi = r.number_range
            ok = f"{vt} IN {_NUMBER_TYPES} AND {number} BETWEEN {lo} AND {hi}"
        elif r.pattern is not None:
            ok = (f"{vt} = 'VARCHAR' AND "
                  f"regexp_full_match(json_extract_string({p}, '$.{r.key}'), {_lit(r.pattern)})")
        else:
            ok = f"{vt} = 'VARCHAR' AND json_extract_string({p}, '$.{r.key}') <> ''"
        rules.append((f"{when} AND {v_present} AND NOT ({ok})", f"props_invalid:props.{r.key}"))
    for one in PROPS_ONE_OF:
        absent = " AND ".join(f"coalesce(json_type({p}, '$.{k}'), 'NULL') = 'NULL'"
                              for k in one.keys)
        rules.append((f"s_event_type = {_lit(one.event_type)} AND {absent}",
                      "props_missing:props"))
    rules.append((
        f"{t} = 'OBJECT' AND "
        f"(json_type({p}, '$.experiment') IS NULL) <> (json_type({p}, '$.variant') IS NULL)",
        "props_experiment_without_variant:props",
    ))
    return rules


# What the props rules read (CONTRACT §1): the event type, the JSON type of props and its text
# when it is an object. They are checked once per distinct combination, not once per record:
# props repeat (27k distinct among 193k records of a simulated hour, most of them web vitals'
# measurements), and the rules on a map of the props cost 0.8 CPU-s per 200k records. See
# validated_sql.
_PROPS_KEY = ("s_event_type", "t_props", "p_text")


def validated_sql(source: str, raw: bool = False,
                  per_props: Mapping[str, str] | None = None,
                  per_text: tuple[Sequence[str], str] | None = None,
                  keep_text: bool = True,
                  text_flag: tuple[str, str] | None = None) -> str:
    """``source``'s rows (which have a VARCHAR column ``text``: the record, NULL when it is not
    text) with ``s_<field>`` for every field but props (its text, see :func:`field_text_sql`),
    ``t_props`` and ``reason``: NULL for a valid event, else the reason code of its first
    violation. Without ``keep_text`` the rows come without ``text``: the stage does not hold
    every record's text for the few refused ones (the events step reads theirs again,
    refused_texts.sql), ~5 % of checked.sql's CPU on measure 1's hour (docs/BENCHMARKS.md).

    The record is parsed once (``stage``, held for the second pass below), and the rules of the
    fields are evaluated there, in two parts: those before the props rules and those after them
    (:func:`reason_sql`'s order). The props rules are evaluated on the distinct (event type,
    props type, props text) of the records and joined back, and the first reason is the first
    part's, else the props', else the second part's: the same as :func:`reason_sql`.
    ``per_props`` adds columns computed in that same pass, once per distinct props: SQL
    expressions over ``p_text`` (props as text when it is an object, else NULL). Evaluating a
    function per distinct value also keeps its input dense: DuckDB ran ``scrub_props``'s
    rewriting branch as if on every row of a vector of which it had selected a seventh (6.4
    CPU-s per 200k records against 1.2 on the same props as rows of their own).
    ``per_text``, (fields, an SQL expression over ``field``, a field's name, and ``v``, its
    text), adds ``clean_<field>`` for each of those fields, evaluated once per distinct (field,
    text) of the records: a single use of the expression for all the fields. ``text_flag``,
    (a name, an SQL expression over ``clean``), adds that column: true when the expression is
    true of any of the row's cleaned texts (evaluated in the same pass), else false.

    Held between the passes are the parsed fields, not the lists of the parse: the distinct
    props were read from ``parsed`` and the record parsed a second time for them before,
    ~1 CPU-s per 195k-record chunk of measure 1's hour (profiler, docs/BENCHMARKS.md).

    The texts come from ``json_transform`` to a struct of VARCHARs, 0.46 CPU-s per 195k records
    against 0.74 for ``json_extract_string`` of the list of paths (the types still come from
    ``json_type``'s). The two write a number that is a DOUBLE differently (``1e+300``, not
    ``1e300``), and alike every other value (objects too, whatever they hold): no field may be a
    DOUBLE (each field's rules start with its type), so such a record is refused for its type
    and its texts are never kept."""
    per_props = per_props or {}
    fields, clean = per_text or ((), "")
    extra = "".join(f", {expr} AS {name}" for name, expr in per_props.items())
    # Each field's distinct texts by GROUPING SETS, then unpivoted (a row per set holds one
    # field's text, the others NULL, which UNPIVOT leaves out): ~0.3 CPU-s less per 195k-record
    # chunk of measure 1's hour than unpivoting every record first (docs/BENCHMARKS.md).
    sets = ", ".join(f"(s_{f})" for f in fields)
    texts = f""",
    texts AS (
        SELECT *{f", coalesce({text_flag[1]}, false) AS flag" if text_flag else ""} FROM (
        SELECT field, v, {clean} AS clean FROM (
            SELECT DISTINCT field, v FROM (
                UNPIVOT (SELECT {", ".join(f"s_{f} AS {f}" for f in fields)} FROM stage
                         GROUP BY GROUPING SETS ({sets}))
                ON {", ".join(fields)} INTO NAME field VALUE v)))
    )""" if fields else ""
    cleaned = "".join(f"c_{f}.clean AS clean_{f}, " for f in fields)
    if text_flag and fields:
        cleaned += (f"coalesce({' OR '.join(f'c_{f}.flag' for f in fields)}, false) "
                    f"AS {text_flag[0]}, ")
    text_joins = "".join(f"\n    LEFT JOIN texts c_{f} ON c_{f}.field = {_lit(f)} "
                         f"AND c_{f}.v = x.s_{f}" for f in fields)
    carried = "".join(f"pc.{name}, " for name in per_props)
    key = " AND ".join(f"x.{k} IS NOT DISTINCT FROM pc.key_{k}" for k in _PROPS_KEY)
    typed = ", ".join(f"t_{f.name}, s_{f.name}" for f in EXTRACTED)
    kept = ", ".join(f"s_{f.name}" for f in EXTRACTED if f.name != "props")
    dropped = "" if keep_text else ", text"
    return f"""
    WITH parsed AS (
        SELECT *, coalesce(json_valid(text), false) AS is_json FROM {source}
    ),
    extracted AS (
        -- CASE evaluates its branch on the valid rows only: invalid JSON is never parsed again
        SELECT *, CASE WHEN is_json THEN json_type(text, {_PATHS}) END AS t,
               CASE WHEN is_json THEN json_transform(text, {_TEXTS}) END AS s
        FROM parsed
    ),
    typed AS (
        SELECT *, {typed_columns_sql(struct=True)}
        FROM extracted
    ),
    stage AS MATERIALIZED (
        SELECT * EXCLUDE (is_json, t, s, {typed}{dropped}), {kept}, t_props,
               CASE WHEN t_props = 'OBJECT' THEN s_props END AS p_text,
               {_case(_before_props_whens())} AS reason_before,
               {_case(_after_props_whens(raw))} AS reason_after
        FROM typed
    ),
    props_checked AS (
        SELECT {", ".join(f"{k} AS key_{k}" for k in _PROPS_KEY)},
               {props_reason_sql()} AS props_reason{extra}
        FROM (SELECT *, p_text::JSON AS p, try_cast(p_text::JSON AS MAP(VARCHAR, JSON)) AS pm
              FROM (SELECT DISTINCT {", ".join(_PROPS_KEY)} FROM stage))
    ){texts}
    SELECT x.* EXCLUDE (p_text, reason_before, reason_after), {carried}{cleaned}
           coalesce(x.reason_before, pc.props_reason, x.reason_after) AS reason
    FROM stage x LEFT JOIN props_checked pc ON {key}{text_joins}
    """


def _case(whens: list[tuple[str, str]]) -> str:
    if not whens:
        return "NULL::VARCHAR"
    body = "\n        ".join(f"WHEN {cond} THEN {code}" for cond, code in whens)
    return f"CASE\n        {body}\n    END"


def props_reason_sql() -> str:
    """A SQL expression: NULL when props break none of the props rules (CONTRACT §1), else the
    reason code of the first they break. It reads ``s_event_type``, ``t_props``, ``p`` (props as
    JSON when an object) and ``pm`` (props as a map)."""
    body = "\n        ".join(f"WHEN {cond} THEN {code}" for cond, code in _props_whens())
    return f"CASE\n        {body}\n    END"


def _props_whens() -> list[tuple[str, str]]:
    return [(cond, code if code.startswith("'props_bad_value") else _lit(code))
            for cond, code in _props_rules()]


def _before_props_whens() -> list[tuple[str, str]]:
    """The rules checked before the props rules: the record's own, then every client field's."""
    whens = [("NOT is_json", "'invalid_json'"),
             (f"t[{_ROOT}] <> 'OBJECT'", "'not_an_object'")]
    for f in FIELDS:
        whens += [(cond, _lit(code)) for cond, code in _field_rules(f)]
    return whens


def _after_props_whens(raw: bool) -> list[tuple[str, str]]:
    """The rules checked after the props rules: with ``raw``, the ingest fields of a stored
    record (``validate_raw_record``), each field's own, then the rules across fields."""
    whens: list[tuple[str, str]] = []
    if raw:
        for f in RAW_FIELDS:
            whens += [(cond, _lit(code)) for cond, code in _field_rules(f)]
        for r in RECORD_RULES:  # across fields, after each field's own rules
            present = " OR ".join(f"coalesce(t_{name}, 'NULL') <> 'NULL'" for name in r.fields)
            whens.append((f"NOT ({present})", _lit(f"{r.rule}:{r.field}")))
    return whens


def reason_sql(raw: bool = False, props_reason: str | None = None) -> str:
    """A SQL expression: NULL for a valid event, else the reason code of its first violation
    (``missing:event_id``, ``too_long:page_path``, …), one record at a time: the simple form of
    what :func:`validated_sql` evaluates in parts. It reads ``is_json``, ``t`` (the JSON types
    of :func:`typed_columns_sql`'s parse) and the ``t_``/``s_`` columns of
    :func:`typed_columns_sql`, and for the props rules ``p`` (props as JSON) and ``pm`` (props
    as a map), or, given ``props_reason``, that expression (:func:`props_reason_sql` evaluated
    elsewhere) in their place. With ``raw``, the ingest fields of a stored record are checked
    too (``validate_raw_record``)."""
    props = (_props_whens() if props_reason is None
             else [(f"{props_reason} IS NOT NULL", props_reason)])
    return _case(_before_props_whens() + props + _after_props_whens(raw))
