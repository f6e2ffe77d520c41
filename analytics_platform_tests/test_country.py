"""CONTRACT §2's country without the IP address: the IANA zone tables of the tzdata package,
CloudFront's viewer country only when configured, the time zone never stored; and the Lambda's
zip carries the tables (the Lambda runtime has no tzdata package)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from analytics_platform.ingest.core import ORIGIN_SECRET_HEADER, IngestConfig, Ingestor
from analytics_platform.ingest.country import accuracy, country_of, zone_countries
from analytics_platform.ingest.lambda_handler import handler
from analytics_platform.ingest.package import build_lambda_zip
from analytics_platform_tests.test_contract import good
from analytics_platform_tests.test_ingest import NOW, MemorySink, http_api


@pytest.mark.parametrize(("zone", "country"), [
    ("Europe/Paris", "FR"), ("America/Indiana/Knox", "US"), ("Asia/Kolkata", "IN"),
    ("Asia/Calcutta", "IN"),  # a backward link, as Chrome still reports it
    ("US/Eastern", "US"), ("Europe/Kiev", "UA"), ("Europe/Kyiv", "UA"),
    ("Europe/Vaduz", "LI"), ("Europe/Zurich", "CH"),  # a zone shared by CH, DE and LI
    ("Etc/UTC", None), ("UTC", None), ("EST5EDT", None), ("Mars/Olympus", None), ("", None),
])
def test_time_zones_map_to_one_country(zone: str, country: str | None) -> None:
    got = country_of({"time_zone": zone}, {}, behind_cloudfront=False)
    assert got == ((country, "time_zone") if country else None)


def test_the_accuracy_figure_is_measured_on_the_tables() -> None:
    """The figure docs/INGEST.md quotes: zone1970.tab's zones used by exactly one country."""
    a = accuracy()
    assert a["zones"] > 300 and 0.85 < a["single_country_share"] < 0.95
    assert a["single_country_zones"] == round(a["single_country_share"] * a["zones"])
    # every zone.tab name, and the links to them, map to a valid alpha-2 code
    assert all(len(c) == 2 and c.isupper() for c in zone_countries().values())


def ingest(headers: dict[str, str], cloudfront: bool, **event: object) -> dict:
    sink = MemorySink()
    ing = Ingestor(IngestConfig(("https://www.example.com",), behind_cloudfront=cloudfront),
                   sink, clock=lambda: NOW)
    resp = handler(http_api(good(**event), headers=headers), ingestor=ing)
    assert resp["statusCode"] == 202, resp
    [rec] = sink.records
    return rec


def test_the_handler_stores_the_country_and_never_the_time_zone() -> None:
    rec = ingest({}, False, time_zone="America/Sao_Paulo")
    assert (rec["country"], rec["country_source"]) == ("BR", "time_zone")
    assert "time_zone" not in rec and "Sao_Paulo" not in json.dumps(rec)
    assert "country" not in ingest({}, False, time_zone="Etc/UTC")


def test_cloudfronts_header_counts_only_behind_cloudfront() -> None:
    header = {"cloudfront-viewer-country": "de"}
    # not behind CloudFront: anyone can send the header, it is ignored
    rec = ingest(header, False, time_zone="Europe/Paris")
    assert (rec["country"], rec["country_source"]) == ("FR", "time_zone")
    rec = ingest(header, True, time_zone="Europe/Paris")
    assert (rec["country"], rec["country_source"]) == ("DE", "cloudfront")
    # CloudFront's "unknown" and a bad value fall back to the time zone
    for bad in ("XX", "DEU", "1"):
        rec = ingest({"cloudfront-viewer-country": bad}, True, time_zone="Europe/Paris")
        assert rec["country_source"] == "time_zone", bad
    assert "country" not in ingest({}, True)


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_BEHIND_CLOUDFRONT", "true")
    assert IngestConfig.from_env().behind_cloudfront
    monkeypatch.setenv("ANALYTICS_BEHIND_CLOUDFRONT", "")
    assert not IngestConfig.from_env().behind_cloudfront


def test_a_404s_referring_page_comes_from_a_same_site_referrer() -> None:
    """CONTRACT §2: the tracker sends props.from for an SPA only; on a page load the handler
    reads it from a referrer on the page's own host (without its query)."""
    rec = ingest({}, False, event_type="not_found", props=None, page_host="www.example.com",
                 referrer="https://www.example.com/links?token=secret#x")
    assert rec["props"] == {"from": "/links"}
    rec = ingest({}, False, event_type="not_found", props=None,
                 referrer="https://elsewhere.example/links")
    assert "props" not in rec  # another site: its host is referrer_host already
    rec = ingest({}, False, event_type="download",
                 props={"ext": "pdf", "file": "/f/a.pdf?sig=secret#p"})
    assert rec["props"] == {"ext": "pdf", "file": "/f/a.pdf"}


def test_the_lambda_zip_maps_time_zones_with_the_standard_library_only(tmp_path: Path) -> None:
    z = build_lambda_zip(tmp_path / "lambda.zip")
    with zipfile.ZipFile(z) as f:
        f.extractall(tmp_path / "pkg")
    # -S: no site-packages, so tzdata can only come from the zip
    code = ("from analytics_platform.ingest.country import country_of\n"
            "print(country_of({'time_zone': 'Asia/Calcutta'}, {}, False))")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path / "pkg",
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('IN', 'time_zone')"


def test_with_an_origin_secret_only_cloudfronts_requests_are_taken() -> None:
    """infra/modules/ingest's CloudFront adds the secret to each request it forwards: one that
    lacks it came straight to the Function URL, where a client could set CloudFront's headers
    itself, and is refused before anything is read."""
    secret = "s" * 40
    sink = MemorySink()
    ing = Ingestor(IngestConfig(("https://www.example.com",), behind_cloudfront=True,
                                origin_secret=secret), sink, clock=lambda: NOW)
    spoofed = {"cloudfront-viewer-country": "de"}
    for headers in (spoofed, {**spoofed, ORIGIN_SECRET_HEADER: secret[:-1] + "t"},
                    {**spoofed, ORIGIN_SECRET_HEADER: ""}):
        resp = handler(http_api(good(time_zone="Europe/Paris"), headers=headers), ingestor=ing)
        assert resp["statusCode"] == 403, headers
        assert json.loads(resp["body"])["reason"] == "not_through_cloudfront"
        assert secret not in json.dumps(resp)
    assert sink.records == []
    resp = handler(http_api(good(time_zone="Europe/Paris"),
                            headers={**spoofed, ORIGIN_SECRET_HEADER: secret}), ingestor=ing)
    assert resp["statusCode"] == 202
    assert [(r["country"], r["country_source"]) for r in sink.records] == [("DE", "cloudfront")]
    assert secret not in repr(ing.config)


def test_the_origin_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_ORIGIN_SECRET", " abc ")
    assert IngestConfig.from_env().origin_secret == "abc"
    monkeypatch.setenv("ANALYTICS_ORIGIN_SECRET", "")
    assert IngestConfig.from_env().origin_secret is None
