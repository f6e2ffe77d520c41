"""The shared tail of the benchmark scripts: a markdown section, printed and optionally
appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section(what: str, header: str, rows: list[str], record: bool) -> str:
    cmd = f"python bench/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — `{cmd.strip()}`", "",
        f"{what} Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}.", "",
        header, "|---|" + "---:|" * (header.count("|") - 2), *rows, ""])
    print(text)
    if record:
        with (ROOT / "docs" / "BENCHMARKS.md").open("a") as f:
            f.write("\n" + text)
    return text
