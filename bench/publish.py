"""The warehouse's publish after one step, with the current warehouse file cloned where the file
system can (``storage.clone_or_copy``: the code now) against copied (``shutil.copyfile``: the
code before), on a copy of a data folder.

    .venv/bin/python bench/publish.py --data bench-cache/backfill-30d-26667v --work DIR
        [--rounds 3] [--cold] [--fragmentation N] [--record]
    .venv/bin/python bench/publish.py --work DIR --links 720 8760 26280 [--record]

``--data``: a data folder whose warehouse holds its stored tables (measure 2 of
bench/pipeline.py leaves one in ``bench-cache/backfill-30d-…``). Its lake and warehouse are
copied into ``--work`` first (``cp -a``: the hard links kept), which should be on the file
system to measure: an XFS loop mount stands for the production data volume (docs/BENCHMARKS.md
shows how). Nothing is written into ``--data``.

Before the rounds, the copy's first publish stores every day again (its files are new to the
store, as after a backfill over the whole history): its seconds, and the file it leaves, are
reported. Each round then publishes after each of three changes, once each way, the ways taking
turns first: nothing changed (a run that wrote nothing new), one day of a daily mart written
again (``kpis_daily``, not stored in the file, as 16 of the 17 are not: a daemon run's mart
step) and one day of ``session_events`` written again (its ``sessions`` step: that day stored
again). Reported, median (min–max) of the rounds: the publish's seconds, and how much the file
system's used space grew while a reader (the dashboard) held the warehouse file the publish
replaced. ``--cold`` drops the page cache before each publish (root), as on a machine whose
memory cannot hold the warehouse (the production t4g.small has 2 GiB). ``--fragmentation N``
then makes N cloned publishes, each after a day of ``session_events`` written again, and reports
the file's extents and a cold read of it against a plain copy: what clones cost the reads.
``--links`` only times what every publish does for each table whatever changed: the snapshot's
hard links, and their removal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402
from report import med, section  # noqa: E402

from analytics_platform import storage  # noqa: E402
from analytics_platform.storage import Lake, clone_or_copy, publish_warehouse  # noqa: E402

WAYS: dict[str, Callable[[Path, Path], None]] = {
    "copied (before)": shutil.copyfile,
    "cloned (now)": clone_or_copy,
}


def used_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def file_blocks(path: Path) -> tuple[int, float]:
    """A warehouse file's size in bytes, and the share of its blocks that are free."""
    with duckdb.connect(str(path), read_only=True) as con:
        total, free = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()"
                                  ).fetchall()[0]
    return path.stat().st_size, free / total


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def rewrite(lake: Lake, table: str, back: int = 0) -> str:
    """Write the file of ``table``'s last day but ``back`` (cycling over its days) again, as a
    step does (a new file renamed over the old one: the same rows, a new inode); returns the
    day's folder."""
    days = sorted(p for p in lake.table_dir(table).glob("date=*") if p.is_dir())
    folder = days[-1 - back % len(days)]
    part = folder / "part.parquet"
    tmp = lake.root / "_tmp" / f"bench-{table}.parquet"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(part, tmp)
    os.replace(tmp, part)
    return folder.name


def publish(lake: Lake, way: Callable[[Path, Path], None], cold: bool) -> tuple[float, int]:
    """One publish with ``way`` as the copy of the current file: (seconds, bytes the file
    system's used space grew while a reader held the file it replaced)."""
    storage.clone_or_copy = way
    reader = duckdb.connect(str(lake.warehouse_path), read_only=True)
    try:
        reader.execute("SELECT count(*) FROM duckdb_views()").fetchall()
        if cold:
            drop_caches()
        before = used_bytes(lake.data_dir)
        t0 = time.perf_counter()
        publish_warehouse(lake)
        seconds = time.perf_counter() - t0
        os.sync()
        return seconds, used_bytes(lake.data_dir) - before
    finally:
        reader.close()


# The dashboard's kind of query, over every stored session_events row (bench/dashboard.py
# times the Overview's own; this one reads the whole table, so every extent of it).
READ_ALL = ("SELECT session_date, count(*), count(DISTINCT visitor_key), "
            "count(DISTINCT page_path) FROM session_events GROUP BY 1 ORDER BY 1")


def extents(path: Path) -> int:
    """How many extents ``path`` lies in (``filefrag``)."""
    out = subprocess.run(["filefrag", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.rsplit(":", 1)[1].split()[0])


def cold_read(path: Path, rounds: int = 3) -> list[float]:
    """Seconds of READ_ALL on ``path`` with the page cache dropped before each round."""
    out = []
    for _ in range(rounds):
        drop_caches()
        t0 = time.perf_counter()
        with duckdb.connect(str(path), read_only=True) as con:
            con.execute(READ_ALL).fetchall()
        out.append(time.perf_counter() - t0)
    return out


def fragmentation(lake: Lake, publishes: int, record: bool) -> None:
    """``publishes`` cloned publishes, each after a day of session_events written again (the
    days in turn), as a daemon's sessions steps make them: then the file's extents, and
    READ_ALL with cold caches on it against a plain copy of it (one extent or few)."""
    rows = [f"| at the start (after the rounds) | {extents(lake.warehouse_path):,} | — | — |"]
    for i in range(publishes):
        rewrite(lake, "session_events", back=i)
        publish(lake, clone_or_copy, False)
        if (i + 1) % 25 == 0:
            print(f"{i + 1} publishes: {extents(lake.warehouse_path):,} extents", flush=True)
    plain = lake.data_dir / "bench-plain-copy.duckdb"
    subprocess.run(["cp", "--reflink=never", str(lake.warehouse_path), str(plain)], check=True)
    cloned, copied = [], []
    for _ in range(2):  # in turns
        cloned += cold_read(lake.warehouse_path)
        copied += cold_read(plain)
    rows.append(f"| after {publishes} more, each with a day stored again | "
                f"{extents(lake.warehouse_path):,} | {med(cloned)} | {med(copied)} "
                f"({extents(plain):,} extents) |")
    plain.unlink()
    section(f"The warehouse file after {publishes} cloned publishes, each after a day of "
            f"session_events written again (the days in turn), on {lake.data_dir}: its extents, "
            "and a query that reads all of session_events (count, distinct visitors and pages "
            "per day) with the page cache dropped, 6 rounds, against a plain copy of the file.",
            "| the file | extents | the query, cold, s | on a plain copy, s |", rows, record)


def snapshot_links(work: Path, sizes: list[int], record: bool) -> None:
    """Seconds of what every publish does for each table whatever changed: hard-link each of
    its files into a snapshot folder (storage._snapshot_table), and, once superseded, remove
    that folder; on tables of ``sizes`` one-byte partition files (8,760 is a year of `events`
    hours) in ``work``, 3 rounds each, median (min–max)."""
    from analytics_platform.storage import _snapshot_table

    rows = []
    for n in sizes:
        lake = Lake(work / f"links-{n}", remote_url="")
        for i in range(n):
            f = lake.partition_path("events", f"hour={i:06d}")
            f.parent.mkdir(parents=True)
            f.write_bytes(b"x")
        linked, removed = [], []
        for r in range(3):
            t0 = time.perf_counter()
            folder = Path(_snapshot_table(lake, "events", f"bench{r}")).parent
            t1 = time.perf_counter()
            shutil.rmtree(folder)
            linked.append(t1 - t0)
            removed.append(time.perf_counter() - t1)
        shutil.rmtree(lake.data_dir)
        rows.append(f"| {n:,} | {med(linked, '{:.3f}')} | {med(removed, '{:.3f}')} |")
    section(f"A publish's snapshot of one table, by its number of files, in {work}.",
            "| files | hard-linked, s | the folder removed, s |", rows, record)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    help="a data folder with lake/ and warehouse.duckdb (read only)")
    ap.add_argument("--work", type=Path, required=True,
                    help="an empty folder on the file system to measure")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each publish")
    ap.add_argument("--fragmentation", type=int, default=0, metavar="N",
                    help="then N cloned publishes, each after a day of session_events written "
                    "again: the file's extents, and a cold read of it against a plain copy")
    ap.add_argument("--record", action="store_true", help="append to docs/BENCHMARKS.md")
    ap.add_argument("--links", type=int, nargs="+", metavar="FILES",
                    help="only time the snapshot of a table of FILES files (no --data)")
    args = ap.parse_args()
    if args.links:
        args.work.mkdir(parents=True, exist_ok=True)
        snapshot_links(args.work, args.links, args.record)
        return
    if args.data is None:
        ap.error("--data is required (or --links)")
    if not (args.data / "warehouse.duckdb").exists():
        ap.error(f"{args.data} has no warehouse.duckdb (run measure 2 of bench/pipeline.py)")
    if args.work.exists() and any(args.work.iterdir()):
        ap.error(f"{args.work} is not empty")
    args.work.mkdir(parents=True, exist_ok=True)
    sources = [args.data / n for n in ("lake", ".warehouse", "warehouse.duckdb")]
    print(f"copying {args.data} into {args.work}…", flush=True)
    subprocess.run(["cp", "-a", *map(str, [s for s in sources if s.exists()]), str(args.work)],
                   check=True)
    os.sync()  # the copy's writes not left to slow the first publish measured
    lake = Lake(args.work)
    changes: dict[str, Callable[[], str]] = {
        "nothing changed": lambda: "",
        "a day of a daily mart written again": lambda: rewrite(lake, "kpis_daily"),
        "a day of session_events written again": lambda: rewrite(lake, "session_events"),
    }
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    # The copy's files have other inodes: to the store every day is new, as after a backfill
    # over the whole history, and the first publish stores them all (from nothing:
    # storage._base). Reported, and the file it leaves, which the rounds start from.
    settle, _ = publish(lake, clone_or_copy, False)
    os.sync()
    size, free = file_blocks(lake.warehouse_path)
    print(f"every day stored again: {settle:.1f} s, the file {size / 1e9:.2f} GB, "
          f"{free:.0%} of its blocks free", flush=True)
    for r in range(args.rounds):
        for change, make in changes.items():
            ways = list(WAYS.items()) if r % 2 == 0 else list(WAYS.items())[::-1]
            for name, way in ways:
                day = make()
                seconds, grown = publish(lake, way, args.cold)
                results.setdefault((change, name), []).append((seconds, grown))
                print(f"round {r + 1}: {change} {day}, {name}: {seconds:.2f} s, "
                      f"+{grown / 1e6:,.0f} MB", flush=True)
    fs = subprocess.run(["df", "--output=fstype", str(args.work)], capture_output=True,
                        text=True).stdout.split()[-1]
    rows = [f"| {change} | {name} | {med([s for s, _ in v])} | "
            f"{med([g / 1e6 for _, g in v], '{:,.0f}')} |"
            for (change, name), v in results.items()]
    section(f"The warehouse's publish after one step ({args.rounds} rounds, the ways taking "
            f"turns first; {'page cache dropped before each publish' if args.cold else 'warm'}) "
            f"on a copy of {args.data.name} in {args.work} ({fs}). Before the rounds, the "
            f"copy's first publish stored every day again (its files are new to the store, as "
            f"after a backfill over the whole history): {settle:.1f} s, leaving a warehouse "
            f"file of {size / 1e9:.2f} GB with {free:.0%} of its blocks free.",
            "| what the step wrote | the current file | publish, s | space grown while a "
            "reader holds the old file, MB |", rows, args.record)
    if args.fragmentation:
        fragmentation(lake, args.fragmentation, args.record)


if __name__ == "__main__":
    main()
