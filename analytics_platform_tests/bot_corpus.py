"""Test sets for bot detection, taken from public lists and user-agent corpora (none written here).

- crawlers: every example string of monperrus' crawler-user-agents (``instances``) and every agent
  of Matomo Device Detector's bot fixtures (``tests/fixtures/upstream/bots.yml`` of the
  ``device-detector`` package);
- browsers: the Chrome, Firefox, Safari and Edge agents (desktop and mobile, as each corpus names
  them) of fake-useragent's real-traffic list (``data/browsers.jsonl``) and of Matomo's device
  fixtures (desktop, smartphone, phablet, tablet).
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

import yaml
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

# Browser names as each corpus spells them: ordinary Chrome, Firefox, Safari and Edge.
FAKE_USERAGENT_BROWSERS = frozenset({
    "Chrome", "Chrome Mobile", "Chrome Mobile iOS", "Firefox", "Firefox Mobile", "Firefox iOS",
    "Safari", "Mobile Safari", "Edge", "Edge Mobile"})
MATOMO_BROWSERS = frozenset({
    "Chrome", "Chrome Mobile", "Chrome Mobile iOS", "Firefox", "Firefox Mobile", "Firefox iOS",
    "Safari", "Mobile Safari", "Microsoft Edge"})
MATOMO_DEVICE_FIXTURES = ("desktop", "smartphone", "phablet", "tablet")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _yaml(path: Path) -> list:
    text = path.read_text()
    try:  # device-detector's own YAML reader: 1 s for its fixtures where PyYAML takes 14 s
        import yaml_rs
        return yaml_rs.loads(text) or []
    except ImportError:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or []


@cache
def corpus() -> dict[str, tuple[str, ...]]:
    """Distinct agents of each set, sorted."""
    fixtures = _package_dir("device_detector") / "tests/fixtures/upstream"
    matomo_browsers = set()
    for path in sorted(fixtures.glob("*.yml")):
        if not path.name.startswith(MATOMO_DEVICE_FIXTURES):
            continue
        for case in _yaml(path):
            client = case.get("client") or {}
            if (client.get("type") == "browser" and client.get("name") in MATOMO_BROWSERS
                    and "bot" not in case):
                matomo_browsers.add(case["user_agent"])
    lines = (_package_dir("fake_useragent") / "data/browsers.jsonl").read_text().splitlines()
    fake = {r["useragent"] for r in map(json.loads, lines)
            if r["browser"] in FAKE_USERAGENT_BROWSERS}
    return {
        "crawler-user-agents examples": tuple(sorted(
            {i for e in CRAWLER_USER_AGENTS_DATA for i in e.get("instances", [])})),
        "matomo bot fixtures": tuple(sorted(
            {c["user_agent"] for c in _yaml(fixtures / "bots.yml")})),
        "fake-useragent browsers": tuple(sorted(fake)),
        "matomo browser fixtures": tuple(sorted(matomo_browsers)),
    }


CRAWLER_SETS = ("crawler-user-agents examples", "matomo bot fixtures")
BROWSER_SETS = ("fake-useragent browsers", "matomo browser fixtures")
