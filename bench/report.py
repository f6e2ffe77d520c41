"""What the benchmark scripts share: the environment of a data folder, a process's peak RSS,
"median (min–max)", and the markdown section printed and optionally appended to
docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_env(folder: Path) -> dict[str, str]:
    """The environment of a CLI run on the local data folder ``folder`` (no S3 settings)."""
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(folder),
           "DAGSTER_HOME": str(folder / "dagster_home")}
    env.pop("ANALYTICS_RAW_URL", None)
    env.pop("ANALYTICS_LAKE_URL", None)
    return env


def vm_hwm(pid: int) -> int:
    """Peak RSS of a running process so far (``VmHWM``), in kB (0 once it is gone). Not
    ``ru_maxrss``: Linux carries the parent's RSS at the fork into a child across the exec, so a
    step started by bench/pipeline.py right after it simulated the 1M-record hour reported the
    simulator's 1,860 MB (the same step from a small parent: 1,335 MB)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines()
                 if line.startswith("VmHWM")), 0)


def med(values: list[float], fmt: str = "{:.2f}") -> str:
    """The median of ``values``, and their range in brackets when there are several."""
    m = statistics.median(values)
    if len(values) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def section(what: str, header: str, rows: list[str], record: bool) -> str:
    cmd = f"python bench/{Path(sys.argv[0]).name} " + shlex.join(sys.argv[1:])  # as typed
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
