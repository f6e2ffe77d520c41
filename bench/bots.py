"""Bot detection: distinct agents classified per second, and the shares dropped/kept per list.

    .venv/bin/python bench/bots.py [--rounds 3]

The batch is the simulator's agents plus the test sets of analytics_platform_tests/bot_corpus.py
(public crawler lists and browser corpora, ~22k distinct agents). "before" is the classification
this project used until issue 16 (CrawlerDetect per agent, then ua-parser); "after" is
``classify_table``. Each round starts with cold per-agent caches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import ua_parser
from crawlerdetect import CrawlerDetect

from analytics_platform.defs.events import user_agents as ua
from analytics_platform.simulate import model as m
from analytics_platform_tests.bot_corpus import BROWSER_SETS, CRAWLER_SETS, corpus


def before(agents: list[str]) -> list[bool]:
    detect = CrawlerDetect()
    out = []
    for a in agents:
        bot = not a.strip() or detect.isCrawler(a)
        if not bot:
            r = ua_parser.parse(a)
            bot = r.device is not None and r.device.family == "Spider"
        out.append(bot)
    return out


def after(agents: list[str]) -> list[bool]:
    ua._describe.cache_clear()
    return ua.classify_table(agents).column("is_bot").to_pylist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sets = corpus()
    agents = sorted({*m.BOT_USER_AGENTS, *(a for v in m.USER_AGENTS.values() for a in v),
                     *(a for s in sets.values() for a in s)})
    ua.warm_up()
    print(f"{len(agents)} distinct agents")
    verdicts = {}
    for name, fn in (("before", before), ("after", after)):
        best = float("inf")
        for _ in range(args.rounds):
            t = time.perf_counter()
            flags = fn(agents)
            best = min(best, time.perf_counter() - t)
        verdicts[name] = dict(zip(agents, flags, strict=True))
        print(f"{name}: {best:.2f} s, {len(agents) / best:,.0f} distinct agents/s")
    # each list alone, then all (the lists without ua-parser's Spider rule)
    arr = pa.array(agents)
    alone = {lst.name: dict(zip(agents, ua.detect_bots(arr, (lst,)).to_pylist(), strict=True))
             for lst in ua.bot_lists()}
    columns = {**alone, **verdicts}
    print("| set | agents | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name in (*CRAWLER_SETS, *BROWSER_SETS):
        want = name in CRAWLER_SETS
        cells = [f"{sum(v[a] == want for a in sets[name]) / len(sets[name]):.2%}"
                 for v in columns.values()]
        what = "dropped" if want else "kept"
        print(f"| {name} ({what}) | {len(sets[name])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
