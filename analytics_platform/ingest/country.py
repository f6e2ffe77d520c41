"""The visitor's country without the IP address (CONTRACT §2, docs/INGEST.md "Country").

Two sources, neither of them the address:

- behind CloudFront (``ANALYTICS_BEHIND_CLOUDFRONT``), its ``CloudFront-Viewer-Country``
  header: CloudFront sets it from the address it saw, and the address never reaches us. Without
  the setting the header is ignored: anyone can send it to an endpoint that is not behind
  CloudFront;
- otherwise the browser's IANA time zone (the event's ``time_zone``), mapped to a country with
  the IANA tz database's own tables as Python's ``tzdata`` package ships them: ``zone.tab``
  (one country per zone name) and the links of ``tzdata.zi`` (``Asia/Calcutta`` →
  ``Asia/Kolkata``, ``US/Eastern`` → ``America/New_York``). It is approximate: the zone is the
  device's setting, and a zone shared by several countries is recorded under the country
  ``zone.tab`` lists it for (:func:`accuracy` measures how often that matters).

Only the country is kept (ISO 3166-1 alpha-2), never a region or a city, and the time zone
itself is dropped once mapped: it is finer than a country (``America/Indiana/Knox``).
Standard library only: the Lambda's zip carries the two tables (ingest/package.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

CLOUDFRONT_HEADER = "cloudfront-viewer-country"
CLOUDFRONT = "cloudfront"
TIME_ZONE = "time_zone"
# the tzdata package's files the mapping reads (and the Lambda's zip carries)
TABLES = ("zone.tab", "tzdata.zi")
_CODE = re.compile(r"[A-Z]{2}")


def _table(name: str) -> str:
    return files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def _links() -> dict[str, str]:
    """Every link name of the tz database → the zone it names (``L target name`` lines)."""
    out = {}
    for line in _table("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, name = line.split()
            out[name] = target
    return out


@cache
def zone_countries() -> dict[str, str]:
    """IANA zone name → ISO 3166-1 alpha-2 country, for every name that has one."""
    out = {row[2]: row[0] for row in _rows(_table("zone.tab"))}
    links = _links()
    for name, target in links.items():
        while target in links and target not in out:  # a link to a link
            target = links[target]
        if name not in out and target in out:
            out[name] = out[target]
    return out


def country_of(event: Mapping[str, Any], headers: Mapping[str, str],
               behind_cloudfront: bool) -> tuple[str, str] | None:
    """``(country, source)`` of one event (``headers`` keys in lower case), or None."""
    if behind_cloudfront:
        code = headers.get(CLOUDFRONT_HEADER, "").strip().upper()
        if _CODE.fullmatch(code) and code != "XX":  # XX: CloudFront could not tell
            return code, CLOUDFRONT
    zone = event.get("time_zone")
    code = zone_countries().get(zone) if isinstance(zone, str) else None
    return (code, TIME_ZONE) if code else None


def accuracy() -> dict[str, Any]:
    """How precise the time-zone method is, measured on the tables themselves: of the zones of
    ``zone1970.tab`` (each zone since 1970 with the countries that use it), the share used by
    exactly one country; and how many zone names map to a country at all."""
    import tzdata

    shared = _rows(_table("zone1970.tab"))
    single = sum(1 for row in shared if "," not in row[0])
    names = zone_countries()
    return {
        "tzdata_version": tzdata.IANA_VERSION,
        "zones": len(shared),
        "single_country_zones": single,
        "single_country_share": round(single / len(shared), 4),
        "countries": len({c for row in shared for c in row[0].split(",")}),
        "names_with_a_country": len(names),
    }


if __name__ == "__main__":  # python -m analytics_platform.ingest.country: docs/INGEST.md
    import json

    print(json.dumps(accuracy(), indent=1))
