"""Data files users edit: the funnels (YAML) and the referrer table (CSV), loaded and checked."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import yaml

from analytics_platform.contract import EVENT_TYPES

PACKAGE_DIR = Path(__file__).parent


class ConfigError(ValueError):
    """A funnels or referrers file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class FunnelStep:
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


def load_funnels(path: Path | None = None) -> list[Funnel]:
    """The funnels of ``path`` (default: the shipped ``funnels.yaml``)."""
    path = path or PACKAGE_DIR / "funnels.yaml"
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read funnels: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("funnels"), list) or not doc["funnels"]:
        raise ConfigError(f"{path}: expected a top-level 'funnels:' list")
    funnels, names = [], set()
    for i, f in enumerate(doc["funnels"]):
        where = f"{path}: funnel #{i + 1}"
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise ConfigError(f"{where}: needs a 'name'")
        if f["name"] in names:
            raise ConfigError(f"{where}: the name {f['name']!r} is used twice")
        names.add(f["name"])
        steps = f.get("steps")
        if not isinstance(steps, list) or len(steps) < 2:
            raise ConfigError(f"{where} ({f['name']}): needs at least two 'steps'")
        parsed = []
        for k, s in enumerate(steps):
            at = f"{where} ({f['name']}), step {k + 1}"
            if not isinstance(s, dict):
                raise ConfigError(f"{at}: expected a mapping")
            unknown = set(s) - {"name", "event_type", "page_path", "prop", "min", "equals"}
            if unknown:
                raise ConfigError(f"{at}: unknown keys {sorted(unknown)}")
            if s.get("event_type") not in EVENT_TYPES:
                raise ConfigError(f"{at}: event_type must be one of {', '.join(EVENT_TYPES)}")
            if ("min" in s or "equals" in s) and not s.get("prop"):
                raise ConfigError(f"{at}: 'min' and 'equals' need a 'prop'")
            if "min" in s and not isinstance(s["min"], (int, float)):
                raise ConfigError(f"{at}: 'min' must be a number")
            parsed.append(FunnelStep(
                name=str(s.get("name") or s["event_type"]),
                event_type=s["event_type"],
                page_path=s.get("page_path"),
                prop=s.get("prop"),
                min=s.get("min"),
                equals=s.get("equals"),
            ))
        funnels.append(Funnel(f["name"], tuple(parsed)))
    return funnels


def _pattern_regex(pattern: str) -> str:
    # The host itself or any subdomain; "*" is any run of host characters.
    body = re.escape(pattern.lower()).replace(r"\*", "[a-z0-9.-]+")
    return rf"(.*\.)?{body}"


def load_referrers(extra: Path | None = None) -> pa.Table:
    """The referrer table: pattern, regex, source, medium, priority (user rows first)."""
    rows: list[dict] = []
    files = [(PACKAGE_DIR / "referrers.csv", 0)] + ([(Path(extra), 1)] if extra else [])
    for path, priority in files:
        try:
            lines = [ln for ln in Path(path).read_text().splitlines()
                     if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the referrer table: {e}") from e
        reader = csv.DictReader(lines)
        if reader.fieldnames != ["pattern", "source", "medium"]:
            raise ConfigError(f"{path}: the header must be 'pattern,source,medium'")
        for n, r in enumerate(reader, 2):
            if not all((r.get(c) or "").strip() for c in ("pattern", "source", "medium")):
                raise ConfigError(f"{path}: line {n}: pattern, source and medium are required")
            rows.append({
                "pattern": r["pattern"].strip().lower(),
                "regex": _pattern_regex(r["pattern"].strip()),
                "source": r["source"].strip(),
                "medium": r["medium"].strip(),
                "priority": priority,
            })
    return pa.Table.from_pylist(rows)
