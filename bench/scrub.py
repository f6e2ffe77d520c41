"""The SQL ``scrub`` macro (duck.py) on a column of a million text values.

    .venv/bin/python bench/scrub.py [--rows 1000000] [--rounds 5] [--macros FILE]

The column is what the macro meets in the pipeline: the simulator's page paths and titles,
referrer hosts, UTM values and props JSON, a share with digits and dots or colons (versions,
times) that take the slow path, and 0.5 % with an address in one of the forms of issue 18
(test_privacy_edge.SQL_LEAKS). Reported: the median seconds of ``sum(length(scrub(v)))`` over
the column, less the same query without the macro (reading the column), per million values.
``--macros FILE`` measures another version of the macros too (e.g. ``git show
<commit>:analytics_platform/duck.py > /tmp/duck_old.py``), in turn with the current ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import numpy as np
import pyarrow as pa

from analytics_platform.simulate import model as m

ADDRESSES = ["josé@example.com", "1.2.3.4,5.6.7.8", "from 10.0.0.1.", "::1", "jamie%2540x.com",
             "jamie&#64;example.com", "jamie@bücher.de", "ja\u200bmie@example.com",
             "jamie＠example.com", "fe80::1%eth0", "alex.smith@example.org", "192.168.1.20"]
SLOW_BUT_CLEAN = ["Release notes v1.2.3", "Meeting at 10:30", "Version 2.0.1 is out",
                  '{"seconds":30}', "std::vector in C++", "Price 9.99"]


def column(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    clean = ([p.path for p in m.PAGES[:-2]] + [p.title for p in m.PAGES]
             + ["google.com", "news.ycombinator.com", "newsletter", "spring_launch",
                '{"experiment":"cta_copy","variant":"control"}', '{"depth":50}'])
    pool = clean + SLOW_BUT_CLEAN + ADDRESSES
    p = np.array([0.9 / len(clean)] * len(clean) + [0.095 / len(SLOW_BUT_CLEAN)]
                 * len(SLOW_BUT_CLEAN) + [0.005 / len(ADDRESSES)] * len(ADDRESSES))
    idx = rng.choice(len(pool), rows, p=p / p.sum())
    return pa.table({"v": pa.array(np.array(pool, dtype=object)[idx], type=pa.string())})


def connection(macros: str, table: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads TO 1")  # the pipeline's steps share two cores
    con.execute(macros)
    con.register("t", table)
    con.execute("CREATE TABLE c AS SELECT v FROM t")  # materialised: no Arrow scan in the timing
    return con


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--macros", type=Path,
                    help="also measure the MACROS of this duck.py, in turn with the current ones")
    args = ap.parse_args()
    from analytics_platform.duck import MACROS

    versions = {"current": MACROS}
    if args.macros:
        scope: dict = {}
        exec(compile(args.macros.read_text(), str(args.macros), "exec"), scope)
        versions = {str(args.macros): scope["MACROS"], **versions}
    table = column(args.rows)
    cons = {name: connection(m, table) for name, m in versions.items()}
    times: dict[str, dict[str, list[float]]] = {n: {"read": [], "scrub": []} for n in cons}
    # rounds alternate between the versions, so that a busy machine slows both alike
    for _ in range(args.rounds):
        for name, con in cons.items():
            for kind, sql in (("read", "SELECT sum(length(v)) FROM c"),
                              ("scrub", "SELECT sum(length(scrub(v))) FROM c")):
                t0 = time.perf_counter()
                con.execute(sql).fetchall()
                times[name][kind].append(time.perf_counter() - t0)
    for name, t in times.items():
        base, total = statistics.median(t["read"]), statistics.median(t["scrub"])
        print(f"{name}: {args.rows:,} values: read {base:.3f} s, with scrub {total:.3f} s; the "
              f"macro: {(total - base) / args.rows * 1e6:.3f} s per million values (median of "
              f"{args.rounds}, 1 thread)")


if __name__ == "__main__":
    main()
