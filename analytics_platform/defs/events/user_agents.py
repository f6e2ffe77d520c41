"""User-agent parsing and bot detection with maintained libraries, once per distinct user agent.

- ``crawlerdetect`` (CrawlerDetect's list of crawlers, headless browsers and HTTP libraries)
  decides what is a bot; ``ua-parser`` (the uap-core rules) names browser, OS and device.
- An empty user agent counts as a bot: every browser sends one; scripts may not.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import ua_parser
from crawlerdetect import CrawlerDetect

_DETECT = CrawlerDetect()


@lru_cache(maxsize=100_000)
def classify(user_agent: str) -> tuple[bool, str, str, str]:
    """(is_bot, browser, os, device_type) of one user agent."""
    if not user_agent.strip() or _DETECT.isCrawler(user_agent):
        return True, "", "", ""
    r = ua_parser.parse(user_agent)
    if r.device is not None and r.device.family == "Spider":
        return True, "", "", ""
    browser = r.user_agent.family if r.user_agent else "Other"
    os_name = r.os.family if r.os else "Other"
    device = r.device.family if r.device else ""
    # uap-core names devices but not their class: iPads and Android without the "Mobile" token
    # are tablets (Google's guidance for Android UAs), phones say "Mobile".
    if device == "iPad" or ("Android" in user_agent and "Mobile" not in user_agent) or (
        "Tablet" in user_agent
    ):
        kind = "tablet"
    elif "Mobi" in user_agent or device == "iPhone":
        kind = "mobile"
    else:
        kind = "desktop"
    return False, browser, os_name, kind


def warm_up() -> None:
    """Compile ua-parser's rules, which its first parse otherwise does (~0.15 s)."""
    ua_parser.parse("Mozilla/5.0")


def classify_table(user_agents: list[str]) -> pa.Table:
    """A lookup table (user_agent, is_bot, browser, os, device_type) for a join in DuckDB."""
    rows = [classify(ua) for ua in user_agents]
    return pa.table({
        "user_agent": pa.array(user_agents, pa.string()),
        "is_bot": pa.array([r[0] for r in rows], pa.bool_()),
        "browser": pa.array([r[1] for r in rows], pa.string()),
        "os": pa.array([r[2] for r in rows], pa.string()),
        "device_type": pa.array([r[3] for r in rows], pa.string()),
    })
