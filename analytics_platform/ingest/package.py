"""Build the Lambda deployment zip: ``analytics-platform build-lambda``.

The handler path is pure Python and needs nothing but the standard library and boto3 (which the
Lambda Python runtimes ship), so the zip holds only the modules it imports — any architecture,
any Python 3.11+ runtime. The zip is byte-for-byte reproducible (sorted entries, fixed dates), so
Terraform's ``source_code_hash`` only changes when the code does.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import tzdata

from analytics_platform.ingest.country import TABLES

PACKAGE = Path(__file__).resolve().parent.parent
HANDLER = "analytics_platform.ingest.lambda_handler.handler"
MODULES = (
    "__init__.py",
    "contract.py",
    "lake.py",
    "ingest/__init__.py",
    "ingest/core.py",
    "ingest/country.py",
    "ingest/plausible.py",
    "ingest/privacy.py",
    "ingest/sinks.py",
    "ingest/lambda_handler.py",
)


def build_lambda_zip(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for rel in sorted(MODULES):
            info = zipfile.ZipInfo(f"analytics_platform/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, (PACKAGE / rel).read_bytes())
        # the IANA tables the country of a time zone is read from (ingest/country.py), as the
        # tzdata package lays them out: the Lambda runtime has no tzdata package
        tz = Path(tzdata.__file__).parent
        for rel in ("__init__.py", "zoneinfo/__init__.py",
                    *(f"zoneinfo/{name}" for name in TABLES)):
            info = zipfile.ZipInfo(f"tzdata/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, (tz / rel).read_bytes())
    tmp.replace(out)
    return out
