"""infra/ checked offline, as CI can: terraform fmt, init with the local provider mirror,
validate, `terraform test` (mock AWS provider) per module and for the stack, and checkov."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analytics_platform.ingest.package import build_lambda_zip

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = shutil.which("terraform")
MIRRORS = [os.environ.get("TF_PLUGIN_DIR", ""), "/opt/tf-plugins",
           str(Path.home() / ".terraform.d" / "plugins"), "/usr/share/terraform/plugins"]
MIRROR = next((m for m in MIRRORS if m and (Path(m) / "registry.terraform.io" / "hashicorp"
                                           / "aws").is_dir()), None)
pytestmark = pytest.mark.skipif(
    TERRAFORM is None or MIRROR is None,
    reason="terraform, or an offline mirror of the hashicorp/aws provider (TF_PLUGIN_DIR), is "
    "not installed here",
)
STACKS = ["modules/storage", "modules/ingest", "modules/catalog", "modules/pipeline", "envs/prod"]


def tf(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run([TERRAFORM, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of infra/ with the Lambda zip where the configuration expects it."""
    base = tmp_path_factory.mktemp("tf")
    shutil.copytree(ROOT / "infra", base / "infra",
                    ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl"))
    build_lambda_zip(base / "dist" / "ingest-lambda.zip")
    return base / "infra"


def test_terraform_fmt() -> None:
    out = tf(["fmt", "-check", "-recursive", "-diff"], ROOT / "infra")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_init_validate_and_terraform_test(workdir: Path, stack: str) -> None:
    cwd = workdir / stack
    init = tf(["init", "-backend=false", f"-plugin-dir={MIRROR}", "-input=false"], cwd)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = tf(["validate", "-no-color"], cwd)
    assert validate.returncode == 0 and "Success" in validate.stdout, validate.stdout
    test = tf(["test", "-no-color"], cwd)
    assert test.returncode == 0, test.stdout + test.stderr
    assert " 0 failed" in test.stdout and "Success!" in test.stdout, test.stdout


def _declared(path: Path, kind: str) -> set[str]:
    return set(re.findall(rf'^{kind} "([a-z0-9_]+)"', path.read_text(), re.M))


@pytest.mark.parametrize("doc", ["README.md", "infra/README.md", "docs/DEPLOY.md",
                                 "docs/COSTS.md", "docs/PIPELINE.md", "docs/QUERYING.md"])
def test_the_docs_name_only_settings_the_stack_takes(doc: str) -> None:
    """A user sets infra/envs/prod's variables (terraform.tfvars); a module's variable the stack
    does not declare is one Terraform ignores there with a warning (DEPLOY.md named
    `data_volume_gb` and `no_success_alarm_hours`, which the stack never passed on)."""
    modules = set().union(*(_declared(p, "variable")
                            for p in (ROOT / "infra" / "modules").rglob("variables.tf")))
    stack = ROOT / "infra" / "envs" / "prod"
    known = (_declared(stack / "variables.tf", "variable")
             | _declared(stack / "outputs.tf", "output"))
    named = set(re.findall(r"`([a-z][a-z0-9_]*)(?:\s*=[^`]*)?`", (ROOT / doc).read_text()))
    assert (named & modules) - known == set()


def test_checkov_finds_nothing_unexplained() -> None:
    checkov = shutil.which("checkov") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if not Path(checkov).exists():
        pytest.skip("checkov is not installed (`make test` installs it in .venv-checkov)")
    out = subprocess.run(
        [checkov, "-d", str(ROOT / "infra"), "--framework", "terraform", "--compact",
         "--quiet", "--skip-download", "--output", "cli"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    assert "Failed checks: 0" in out.stdout, out.stdout[-4000:]
    assert out.returncode == 0, out.stdout[-4000:]
