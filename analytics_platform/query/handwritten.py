"""The query layer's hand-written SQL: ``sql/<name>.sql`` beside this module, each opening with
what it reads (the header is dropped; what runs is the statement). Values are DuckDB parameters
(``$start``), never pasted in."""

from __future__ import annotations

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
