"""User-agent parsing and bot detection with maintained lists, once per distinct user agent.

An agent is a bot when any of three maintained, openly licensed lists names it (each installed
from PyPI and read unmodified), when uap-core's rules call its device a "Spider", or when it is
empty (every browser sends one; scripts may not):

- CrawlerDetect's crawlers (``crawlerdetect``, MIT), matched after its own exclusions;
- monperrus' crawler-user-agents (``crawler-user-agents``, MIT);
- Matomo Device Detector's ``bots.yml`` (shipped in the ``device-detector`` package, LGPL-3.0,
  read as a data file), with Matomo's own word-start prefix, case-insensitive.

CrawlerDetect alone let 14% of crawler-user-agents' own examples through (SEO tools, uptime
monitors, scanners, AI crawlers, Playwright, Selenium) and 21% of Matomo's bot fixtures; the
three together drop all but a few of them and keep every Chrome, Firefox, Safari and Edge agent
of fake-useragent's real-traffic list and of Matomo's browser fixtures
(``analytics_platform_tests/test_bots.py`` asserts the shares).

Matching is vectorised: each list becomes a few RE2 alternations run over the whole batch with
Arrow (one alternation of all 1,504 crawler-user-agents patterns outgrows RE2's DFA budget and
ran 14 s for 22k agents; chunks of 200 run in 0.1 s). The few patterns RE2 cannot run
(lookarounds) are run over the batch without their lookarounds, which can only match more,
and the agents that match are checked with the exact pattern by the ``regex`` module.
``ua-parser`` (uap-core) then names browser, OS and device of the agents that are not bots.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import regex
import ua_parser
import yaml
from crawlerdetect.providers.crawlers import data as _CRAWLERDETECT
from crawlerdetect.providers.exclusions import data as _CRAWLERDETECT_EXCLUSIONS
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

# Patterns per RE2 alternation: 1,504 in one ran 14 s over 22k agents (RE2 left its DFA), chunks
# of 100/200/400 ran 0.13/0.10/0.11 s (bench: analytics_platform_tests/test_bots.py's corpus).
_CHUNK = 200

# The device model of an Android agent ("Linux; Android 13; Spider 8)", "…; C Bot Tab 70)",
# "…; CPH2655 Build/AP3A.240617.008)") is cut before the lists are matched: phone names and
# build ids there matched 19 browser agents of Matomo's fixtures (crawler-user-agents lists a
# build id a scraper used, "AP3A\.240617\.008"), and no crawler example of either list needs it.
_ANDROID_MODEL = r"(?i)(; Android[^;)]*)(?:; [a-z]{2}[-_][a-z]{2,4})?; [^;)]*\)"


@dataclass(frozen=True)
class BotList:
    """One maintained list of bot patterns and how it is matched."""

    name: str
    patterns: tuple[str, ...]
    ignore_case: bool
    prefix: str = ""  # put before every pattern (Matomo's word-start rule)
    exclusions: tuple[str, ...] = ()  # removed from the agent first (CrawlerDetect's)


def _matomo_bots_file() -> Path:
    # Found without importing device_detector (its parser is not used, only its data file).
    spec = importlib.util.find_spec("device_detector")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the device-detector package (Matomo's bots.yml) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "regexes/upstream/bots.yml"


@cache
def bot_lists() -> tuple[BotList, ...]:
    """The maintained lists, as installed."""
    matomo = yaml.load(_matomo_bots_file().read_text(), Loader=getattr(yaml, "CSafeLoader",
                                                                       yaml.SafeLoader))
    return (
        BotList("crawlerdetect", tuple(_CRAWLERDETECT), ignore_case=True,
                exclusions=tuple(_CRAWLERDETECT_EXCLUSIONS)),
        BotList("crawler-user-agents", tuple(e["pattern"] for e in CRAWLER_USER_AGENTS_DATA),
                ignore_case=False),
        # Matomo's AbstractParser wraps every regex as /(?:^|[^A-Z0-9_-])(?:regex)/i.
        BotList("matomo", tuple(e["regex"] for e in matomo), ignore_case=True,
                prefix=r"(?:^|[^A-Z0-9_-])"),
    )


def _re2_ok(pattern: str) -> bool:
    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except pa.ArrowInvalid:
        return False
    return True


def without_lookarounds(pattern: str) -> str:
    """``pattern`` with every lookaround group removed: it matches everything the original does."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(pattern[i:j + 1])
            i = j + 1
        elif pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            depth, j = 0, i
            while j < n:
                if pattern[j] == "\\":
                    j += 2
                    continue
                if pattern[j] == "[":
                    j += 1
                    while j < n and pattern[j] != "]":
                        j += 2 if pattern[j] == "\\" else 1
                elif pattern[j] == "(":
                    depth += 1
                elif pattern[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Compiled:
    ignore_case: bool
    exclusions: str | None
    unions: tuple[str, ...]  # RE2 alternations, exact
    prefilters: tuple[tuple[str, regex.Pattern], ...]  # (RE2 superset, exact pattern)


@cache
def _compiled(lists: tuple[BotList, ...]) -> tuple[_Compiled, ...]:
    out = []
    for lst in lists:
        flags = regex.IGNORECASE if lst.ignore_case else 0
        unions, exact = [], []
        for k in range(0, len(lst.patterns), _CHUNK):
            chunk = lst.patterns[k:k + _CHUNK]
            union = f"{lst.prefix}(?:{'|'.join(chunk)})"
            if _re2_ok(union):  # compiling each of 3,800 patterns alone took 2.5 s
                unions.append(union)
                continue
            plain = []
            for p in chunk:
                full = f"{lst.prefix}(?:{p})"
                if _re2_ok(full):
                    plain.append(p)
                else:
                    loose = f"{lst.prefix}(?:{without_lookarounds(p)})"
                    exact.append((loose if _re2_ok(loose) else "", regex.compile(full, flags)))
            if plain:
                unions.append(f"{lst.prefix}(?:{'|'.join(plain)})")
        exclusions = ("(?i)" if lst.ignore_case else "") + "|".join(lst.exclusions)
        out.append(_Compiled(lst.ignore_case, exclusions if lst.exclusions else None, tuple(unions),
                             tuple(exact)))
    return tuple(out)


def detect_bots(user_agents: pa.Array, lists: tuple[BotList, ...] | None = None) -> pa.Array:
    """Whether each agent is named by one of ``lists`` (default: all) or is empty, in one batch."""
    if len(user_agents) == 0:
        return pa.array([], pa.bool_())
    agents = pc.replace_substring_regex(user_agents, _ANDROID_MODEL, r"\1)")
    hit = pc.equal(pc.utf8_trim_whitespace(user_agents), "")
    for lst in _compiled(bot_lists() if lists is None else lists):
        text = agents
        if lst.exclusions:
            text = pc.replace_substring_regex(text, lst.exclusions, "")
        for union in lst.unions:
            hit = pc.or_(hit, pc.match_substring_regex(text, union, ignore_case=lst.ignore_case))
        for loose, exact in lst.prefilters:
            maybe = (pc.match_substring_regex(text, loose, ignore_case=lst.ignore_case)
                     if loose else pa.array([True] * len(text)))
            idx = pc.indices_nonzero(pc.and_not(maybe, hit)).to_pylist()
            if idx:
                values = text.take(pa.array(idx)).to_pylist()
                confirmed = [i for i, v in zip(idx, values, strict=True) if exact.search(v)]
                if confirmed:
                    mask = [False] * len(text)
                    for i in confirmed:
                        mask[i] = True
                    hit = pc.or_(hit, pa.array(mask))
    return hit


@lru_cache(maxsize=100_000)
def _describe(user_agent: str) -> tuple[bool, str, str, str]:
    """(is_spider, browser, os, device_type) of one agent the lists do not name."""
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
    """Compile ua-parser's rules (~0.15 s on first parse) and load the bot lists (~0.5 s)."""
    ua_parser.parse("Mozilla/5.0")
    _compiled(bot_lists())


def classify_table(user_agents: list[str]) -> pa.Table:
    """A lookup table (user_agent, is_bot, browser, os, device_type) for a join in DuckDB."""
    agents = pa.array(user_agents, pa.string())
    listed = detect_bots(agents).to_pylist()
    rows = [(True, "", "", "") if bot else _describe(ua)
            for ua, bot in zip(user_agents, listed, strict=True)]
    return pa.table({
        "user_agent": agents,
        "is_bot": pa.array([r[0] for r in rows], pa.bool_()),
        "browser": pa.array([r[1] for r in rows], pa.string()),
        "os": pa.array([r[2] for r in rows], pa.string()),
        "device_type": pa.array([r[3] for r in rows], pa.string()),
    })


def classify(user_agent: str) -> tuple[bool, str, str, str]:
    """(is_bot, browser, os, device_type) of one user agent (``classify_table`` for batches)."""
    t = classify_table([user_agent]).to_pylist()[0]
    return t["is_bot"], t["browser"], t["os"], t["device_type"]
