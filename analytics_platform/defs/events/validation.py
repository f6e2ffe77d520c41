"""The event contract as one DuckDB expression, generated from :mod:`analytics_platform.contract`.

No rule is written here: each kind of rule in the contract's tables is translated to SQL, in the
same order as :func:`analytics_platform.contract.validate_event` applies them, so the first
violation found by SQL is the first one Python reports (a property test holds them to it).
"""

from __future__ import annotations

from analytics_platform.contract import (
    FIELDS,
    MAX_PROPS_KEY_CHARS,
    MAX_PROPS_KEYS,
    MAX_PROPS_VALUE_CHARS,
    PROPS_RULES,
    RAW_FIELDS,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
    Field,
)

# Every field's JSON value is extracted in one parse of the record (`extract_sql`); the rules then
# look at the small extracted values, never at the whole record again.
EXTRACTED: tuple[Field, ...] = FIELDS + RAW_FIELDS
_INDEX = {f.name: i + 1 for i, f in enumerate(EXTRACTED)}  # DuckDB lists are 1-based


def extract_sql(j: str = "j") -> str:
    """One list of the JSON values of every contract field of the record ``j``."""
    paths = ", ".join(f"'$.{f.name}'" for f in EXTRACTED)
    return f"json_extract({j}, [{paths}])"


def value_sql(name: str, v: str = "v") -> str:
    """The JSON value of field ``name`` in the extracted list ``v``."""
    return f"{v}[{_INDEX[name]}]"


_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"
_INTEGER_TYPES = "('BIGINT', 'UBIGINT')"
_FLAT_TYPES = "('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def typed_columns_sql(v: str = "v") -> str:
    """Each field's JSON type (``t_<field>``) and text (``s_<field>``), computed once per record
    so that the rules compare columns instead of calling JSON functions again and again."""
    return ", ".join(
        f"json_type({value_sql(f.name, v)}) AS t_{f.name}, "
        f"json_extract_string({value_sql(f.name, v)}, '$') AS s_{f.name}"
        for f in EXTRACTED if f.kind != "props"
    )


def _field_rules(f: Field, v: str) -> list[tuple[str, str]]:
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
    elif f.kind == "integer":
        rules.append((f"{present} AND {t} NOT IN {_INTEGER_TYPES}", f"wrong_type:{f.name}"))
        rules.append((
            f"{present} AND NOT (try_cast({s} AS HUGEINT) BETWEEN {f.min_value} AND {f.max_value})",
            f"out_of_range:{f.name}",
        ))
    return rules


def _props_rules(v: str) -> list[tuple[str, str]]:
    p = value_sql("props", v)
    t = f"json_type({p})"
    present = f"coalesce({t}, 'NULL') <> 'NULL'"
    keys = f"json_keys({p})"
    as_map = f"try_cast({p} AS MAP(VARCHAR, JSON))"
    bad_value = (
        f"NOT (coalesce(json_type({as_map}[k]), 'NULL') IN {_FLAT_TYPES} AND "
        f"(json_type({as_map}[k]) <> 'VARCHAR' "
        f"OR length(json_extract_string({as_map}[k], '$')) <= {MAX_PROPS_VALUE_CHARS}))"
    )
    first_bad = f"list_filter({keys}, lambda k: {bad_value})[1]"
    etype = f"json_extract_string({value_sql('event_type', v)}, '$')"
    rules = [
        (f"{present} AND {t} <> 'OBJECT'", "wrong_type:props"),
        (f"{present} AND len({keys}) > {MAX_PROPS_KEYS}", "props_too_many_keys:props"),
        (f"{present} AND list_bool_or(list_transform({keys}, "
         f"lambda k: k = '' OR length(k) > {MAX_PROPS_KEY_CHARS}))", "props_bad_key:props"),
        # The reason names the first offending key, as the Python check does.
        (f"{present} AND {first_bad} IS NOT NULL", f"'props_bad_value:props.' || {first_bad}"),
    ]
    for r in PROPS_RULES:
        vt = f"json_type({p}, '$.{r.key}')"
        v_present = f"coalesce({vt}, 'NULL') <> 'NULL'"
        when = f"{etype} = {_lit(r.event_type)}"
        if r.required:
            rules.append((f"{when} AND NOT ({v_present})", f"props_missing:props.{r.key}"))
        if r.allowed_numbers is not None:
            nums = ", ".join(str(n) for n in r.allowed_numbers)
            ok = (f"{vt} IN {_NUMBER_TYPES} AND "
                  f"try_cast(json_extract_string({p}, '$.{r.key}') AS DOUBLE) IN ({nums})")
        else:
            ok = f"{vt} = 'VARCHAR' AND json_extract_string({p}, '$.{r.key}') <> ''"
        rules.append((f"{when} AND {v_present} AND NOT ({ok})", f"props_invalid:props.{r.key}"))
    rules.append((
        f"(json_type({p}, '$.experiment') IS NULL) <> (json_type({p}, '$.variant') IS NULL)",
        "props_experiment_without_variant:props",
    ))
    return rules


def validated_sql(source: str, raw: bool = False) -> str:
    """``source``'s rows (which have a JSON column ``j``) with ``v`` (the extracted values) and
    ``reason``: NULL for a valid event, else the reason code of its first violation."""
    return f"""
    WITH extracted AS (SELECT *, {extract_sql("j")} AS v FROM {source}),
    typed AS (SELECT *, {typed_columns_sql("v")} FROM extracted)
    SELECT * EXCLUDE ({", ".join(f"t_{f.name}, s_{f.name}" for f in EXTRACTED
                                 if f.kind != "props")}),
           {reason_sql("j", "v", raw)} AS reason
    FROM typed
    """


def reason_sql(j: str = "j", v: str = "v", raw: bool = False) -> str:
    """A SQL expression: NULL for a valid event, else the reason code of its first violation
    (``missing:event_id``, ``too_long:page_path``, …). ``j`` is the parsed record (NULL when the
    text is not JSON), ``v`` its :func:`extract_sql` list, and the ``t_``/``s_`` columns of
    :func:`typed_columns_sql` must be in scope (see :func:`validated_sql`). With ``raw``, the
    ingest fields of a stored record are checked too (``validate_raw_record``)."""
    whens = [(f"{j} IS NULL", "'invalid_json'"),
             (f"json_type({j}) <> 'OBJECT'", "'not_an_object'")]
    for f in FIELDS:
        whens += [(cond, _lit(code)) for cond, code in _field_rules(f, v)]
    whens += [(cond, code if code.startswith("'props_bad_value") else _lit(code))
              for cond, code in _props_rules(v)]
    if raw:
        for f in RAW_FIELDS:
            whens += [(cond, _lit(code)) for cond, code in _field_rules(f, v)]
    body = "\n        ".join(f"WHEN {cond} THEN {code}" for cond, code in whens)
    return f"CASE\n        {body}\n    END"
