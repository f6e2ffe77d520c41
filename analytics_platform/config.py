"""Data files users edit: the funnels and goals (YAML) and the referrer table (CSV), loaded and
checked."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import yaml

from analytics_platform.contract import EVENT_TYPES

PACKAGE_DIR = Path(__file__).parent


class ConfigError(ValueError):
    """A funnels, goals or referrers file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class FunnelStep:
    """What an event must be to count: a funnel's step, or a goal (the same condition)."""

    name: str
    event_type: str
    page_path: str | None = None
    prop: str | None = None
    min: float | None = None
    equals: str | float | bool | None = None


@dataclass(frozen=True)
class Funnel:
    name: str
    steps: tuple[FunnelStep, ...]


class Goal(FunnelStep):
    """A goal (CONTRACT §5, ``goals_daily``): a session converts on it when one of its events
    matches, exactly as an event matches a funnel step."""


M = TypeVar("M", bound=FunnelStep)
MATCH_KEYS = {"name", "event_type", "page_path", "prop", "min", "equals"}


def _finite(x: float) -> bool:
    """A number a condition can hold: not NaN or infinite, even as a double (a YAML integer
    of 400 digits)."""
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _parse_match(s: object, at: str, cls: type[M]) -> M:
    """One event condition (a funnel step or a goal) of a YAML file, checked."""
    if not isinstance(s, dict):
        raise ConfigError(f"{at}: expected a mapping")
    unknown = set(s) - MATCH_KEYS
    if unknown:
        raise ConfigError(f"{at}: unknown keys {sorted(unknown)}")
    if s.get("event_type") not in EVENT_TYPES:
        raise ConfigError(f"{at}: event_type must be one of {', '.join(EVENT_TYPES)}")
    if ("min" in s or "equals" in s) and not s.get("prop"):
        raise ConfigError(f"{at}: 'min' and 'equals' need a 'prop'")
    if "min" in s and (not isinstance(s["min"], (int, float)) or isinstance(s["min"], bool)):
        raise ConfigError(f"{at}: 'min' must be a number")
    if "min" in s and not _finite(s["min"]):  # YAML's .nan / .inf: no event could meet them
        raise ConfigError(f"{at}: 'min' must be a finite number")
    # equals is compared as a number or as text (mart_logic.step_condition, CONTRACT §5): a
    # YAML null (`equals:` left empty) was taken as no condition at all, a list or a mapping
    # as its Python text, a date as its own; .nan never equals anything
    if "equals" in s and not isinstance(s["equals"], (str, int, float)):  # bool is an int
        raise ConfigError(f"{at}: 'equals' must be text, a number or true / false (quote a "
                          f"date or other text: \"2026-03-01\")")
    if "equals" in s and not isinstance(s["equals"], str) and not _finite(s["equals"]):
        raise ConfigError(f"{at}: 'equals' must be a finite number")
    if "page_path" in s and (not isinstance(s["page_path"], str) or not s["page_path"]):
        raise ConfigError(f"{at}: 'page_path' must be a path such as /pricing")
    return cls(
        name=str(s.get("name") or s["event_type"]),
        event_type=s["event_type"],
        page_path=s.get("page_path"),
        prop=s.get("prop"),
        min=s.get("min"),
        equals=s.get("equals"),
    )


def _read_list(path: Path, key: str, what: str) -> list:
    """The top-level ``key:`` list of a YAML file, not empty."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list) or not doc[key]:
        raise ConfigError(f"{path}: expected a top-level '{key}:' list")
    return doc[key]


def load_funnels(path: Path | None = None) -> list[Funnel]:
    """The funnels of ``path`` (default: the shipped ``funnels.yaml``)."""
    path = path or PACKAGE_DIR / "funnels.yaml"
    funnels, names = [], set()
    for i, f in enumerate(_read_list(path, "funnels", "funnels")):
        where = f"{path}: funnel #{i + 1}"
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise ConfigError(f"{where}: needs a 'name'")
        if f["name"] in names:
            raise ConfigError(f"{where}: the name {f['name']!r} is used twice")
        names.add(f["name"])
        steps = f.get("steps")
        if not isinstance(steps, list) or len(steps) < 2:
            raise ConfigError(f"{where} ({f['name']}): needs at least two 'steps'")
        parsed = [_parse_match(s, f"{where} ({f['name']}), step {k + 1}", FunnelStep)
                  for k, s in enumerate(steps)]
        funnels.append(Funnel(f["name"], tuple(parsed)))
    return funnels


def load_goals(path: Path | None = None) -> list[Goal]:
    """The goals of ``path`` (default: the shipped ``goals.yaml``): each a unique ``name`` and
    the condition an event meets (the keys of a funnel step)."""
    path = path or PACKAGE_DIR / "goals.yaml"
    goals: list[Goal] = []
    for i, g in enumerate(_read_list(path, "goals", "goals")):
        where = f"{path}: goal #{i + 1}"
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not g[
                "name"].strip():
            raise ConfigError(f"{where}: needs a 'name'")
        if g["name"] in {x.name for x in goals}:
            raise ConfigError(f"{where}: the name {g['name']!r} is used twice")
        goals.append(_parse_match(g, f"{where} ({g['name']})", Goal))
    return goals


# The referrer database: Snowplow's referer-parser ``referers.yml`` (GPL-3.0, see
# referrers/README.md), with the project's additions and the user's file on top.
REFERRER_DIR = PACKAGE_DIR / "referrers"
REFERRER_DATABASE = REFERRER_DIR / "referers.yml"
REFERRER_ADDITIONS = REFERRER_DIR / "additions.csv"

# The database's categories → CONTRACT §4's mediums. "unknown" (Google Maps, Drive, Yahoo! News…:
# the database knows the source but says it is not search), "chatbot" (ChatGPT, Claude…) and
# "paid" (ad networks) are links from a named site: `referral`, under that site's name.
DATABASE_MEDIUMS = {"search": "organic", "social": "social", "email": "email",
                    "unknown": "referral", "chatbot": "referral", "paid": "referral"}

# Priority of each layer: a row of a higher layer beats any row of a lower one; within a layer
# the longest (most specific) pattern wins (the sessions SQL's ref_map).
PRIORITY_DATABASE, PRIORITY_ADDITIONS, PRIORITY_USER = 0, 1, 2


def _pattern_regex(pattern: str) -> str:
    # The host itself or any subdomain; "*" is any run of host characters.
    body = re.escape(pattern.lower()).replace(r"\*", "[a-z0-9.-]+")
    return rf"(.*\.)?{body}"


def source_name(name: str) -> str:
    """A database name as a source: lowercase, without "!" ("Yahoo!" → "yahoo", CONTRACT §4)."""
    return " ".join(name.replace("!", "").lower().split())


def _row(pattern: str, source: str, medium: str, priority: int) -> dict:
    pattern = pattern.strip().lower()
    return {"pattern": pattern, "regex": _pattern_regex(pattern), "source": source.strip(),
            "medium": medium.strip(), "priority": priority}


def _database_rows(path: Path) -> list[dict]:
    """Host rows of the referer-parser database.

    Its few host+path entries (google.*/imgres, google.*/products, bing.com/images/search,
    orange.fr/webmail, 592 of 2,506) are left out: events keep the referrer's host only
    (CONTRACT §3 scrubs paths), and each of those hosts has its own host entry or is a portal whose
    other pages are not search. "www." is cut as it is from ``referrer_host``.
    """
    try:
        doc = yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader",
                                                                yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read the referrer database: {e}") from e
    rows, seen = [], set()
    for category, entries in (doc or {}).items():
        if category not in DATABASE_MEDIUMS:
            raise ConfigError(f"{path}: unknown category {category!r} (known: "
                              f"{', '.join(DATABASE_MEDIUMS)})")
        for name, entry in entries.items():
            for domain in entry.get("domains") or []:
                host = str(domain).strip().lower()
                host = host[4:] if host.startswith("www.") else host
                if "/" in host or not host or host in seen:
                    continue
                seen.add(host)
                rows.append(_row(host, source_name(str(name)), DATABASE_MEDIUMS[category],
                                 PRIORITY_DATABASE))
    return rows


def _csv_rows(path: Path, priority: int) -> list[dict]:
    try:
        lines = [ln for ln in Path(path).read_text().splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the referrer table: {e}") from e
    reader = csv.DictReader(lines)
    if reader.fieldnames != ["pattern", "source", "medium"]:
        raise ConfigError(f"{path}: the header must be 'pattern,source,medium'")
    rows = []
    for n, r in enumerate(reader, 2):
        if not all((r.get(c) or "").strip() for c in ("pattern", "source", "medium")):
            raise ConfigError(f"{path}: line {n}: pattern, source and medium are required")
        rows.append(_row(r["pattern"], r["source"], r["medium"], priority))
    return rows


def load_referrers(extra: Path | None = None) -> pa.Table:
    """The referrer table: pattern, regex, source, medium, priority.

    The referer-parser database (priority 0), the project's additions (1) and ``extra``, the
    user's ``pattern,source,medium`` CSV (2): a higher priority wins, then the longest pattern.
    """
    rows = _database_rows(REFERRER_DATABASE) + _csv_rows(REFERRER_ADDITIONS, PRIORITY_ADDITIONS)
    if extra:
        rows += _csv_rows(Path(extra), PRIORITY_USER)
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("pattern", pa.string()), ("regex", pa.string()), ("source", pa.string()),
        ("medium", pa.string()), ("priority", pa.int64())]))
