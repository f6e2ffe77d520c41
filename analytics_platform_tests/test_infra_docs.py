"""What docs/DEPLOY.md states about the deployment, held to what the code builds."""

from __future__ import annotations

import re
from pathlib import Path

from analytics_platform.ingest.package import build_lambda_zip

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "DEPLOY.md"


def test_deploy_states_the_lambda_zip_size(tmp_path: Path) -> None:
    """`build-lambda`'s zip is the size DEPLOY.md says, give or take 15 % (the handler's code
    changes; the time-zone table it carries, tzdata, is most of it). It once said 15 KB for a
    75 KB zip."""
    zip_path = tmp_path / "ingest-lambda.zip"
    build_lambda_zip(zip_path)
    size_kb = zip_path.stat().st_size / 1000
    stated = re.search(r"dist/ingest-lambda\.zip \(about (\d+) KB\)", DEPLOY.read_text())
    assert stated, "DEPLOY.md gives the zip's size after `build-lambda`"
    assert abs(int(stated.group(1)) - size_kb) <= 0.15 * size_kb, (
        f"DEPLOY.md says about {stated.group(1)} KB, build-lambda makes {size_kb:.0f} KB")
