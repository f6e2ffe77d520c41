"""The query layer's hand-written SQL: ``sql/<name>.sql`` beside this module, each opening with
what it reads (the header is dropped; what runs is the statement). Values are DuckDB parameters
(``$start``), never pasted in."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def load(name: str) -> str:
    """The statement of ``sql/<name>.sql``."""
    lines = (SQL_DIR / f"{name}.sql").read_text().splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


def fill(name: str, **placeholders: str) -> str:
    """The statement of ``sql/<name>.sql`` with its ``{placeholders}`` filled (what only the
    caller knows: a file glob, a constant shared with Python; never a query's values)."""
    text = load(name)
    wanted = set(re.findall(r"\{([a-z_][a-z0-9_]*)\}", text))
    if wanted != set(placeholders):
        raise ValueError(f"{name}.sql takes {sorted(wanted)}, given {sorted(placeholders)}")
    return re.sub(r"\{([a-z_][a-z0-9_]*)\}", lambda m: placeholders[m.group(1)], text)
