"""The pipeline's hand-written SQL: ``.sql`` files beside the asset that runs them.

``load("marts/kpis_daily")`` is ``analytics_platform/defs/marts/sql/kpis_daily.sql``. Each file
opens with a comment naming what it reads and writes (dropped here: what runs is the statement
alone). A file may hold placeholders, ``{name}`` (a brace, a lower-case name, a brace: never
valid DuckDB, whose struct literals quote their keys), for what only the caller knows — another
query to wrap, a constant shared with Python; ``load`` fills every one and refuses a missing or
unknown name. Query *values* are DuckDB parameters (``$day``), never placeholders.

SQL generated from data (the contract's rules in ``defs/events/validation.py``, the funnels in
``defs/marts/funnels.py``) stays generated; :func:`literal` is how any generated SQL quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

DEFS = Path(__file__).resolve().parent / "defs"
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def path(name: str) -> Path:
    """The file of ``name`` (``"<domain>/<file>"``, without ``.sql``)."""
    domain, _, file = name.partition("/")
    if not domain or not file or "/" in file:
        raise ValueError(f"SQL name must be '<domain>/<file>', not {name!r}")
    return DEFS / domain / "sql" / f"{file}.sql"


@cache
def _statement(name: str) -> str:
    lines = path(name).read_text().splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)  # the header: what the file reads and writes
    return "\n".join(lines).rstrip() + "\n"


def load(name: str, **placeholders: str) -> str:
    """The statement in ``defs/<domain>/sql/<file>.sql`` with its ``{placeholders}`` filled."""
    text = _statement(name)
    wanted = set(_PLACEHOLDER.findall(text))
    if wanted != set(placeholders):
        raise ValueError(f"{name}.sql takes {sorted(wanted)}, given {sorted(placeholders)}")
    return _PLACEHOLDER.sub(lambda m: placeholders[m.group(1)], text)


def placeholders(name: str) -> set[str]:
    """The ``{placeholders}`` of a file (what :func:`load` must be given)."""
    return set(_PLACEHOLDER.findall(_statement(name)))


def literal(value: object) -> str:
    """A SQL string literal of ``value`` (for generated SQL and views, which take no
    parameters): single quotes, doubled inside."""
    return "'" + str(value).replace("'", "''") + "'"


def literal_list(values: Iterable[object]) -> str:
    """A SQL list literal of strings, e.g. file paths for ``read_parquet``."""
    return "[" + ", ".join(literal(v) for v in values) + "]"


def tree_nodes(node: object) -> Iterator[dict]:
    """Every object of a JSON tree, depth first: the nodes of DuckDB's ``json_serialize_sql`` and
    ``EXPLAIN (FORMAT json)`` output (the playground's checks, the export's view paths)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from tree_nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from tree_nodes(v)
