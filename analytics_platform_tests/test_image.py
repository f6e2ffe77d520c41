"""The container image (Dockerfile): its rules read from the file, and what can be checked for
real on a machine that builds images but cannot run them: the wheel built from exactly what the
builder stage copies, with every data file of the package, installed into a clean virtualenv the
way the final stage installs it, then Dagster validating the definitions and the CLI answering
from that environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (instruction, arguments), continuation lines
    joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, args = line.partition(" ")
        if op.upper() == "FROM":
            out.append([])
        if out:
            out[-1].append((op.upper(), args.strip()))
    return out


def test_dockerfile_rules() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "multi-stage: a builder stage and a final stage"
    builder, final = all_stages[0], all_stages[-1]
    final_text = "\n".join(f"{op} {args}" for op, args in final)

    # the builder makes the project's wheel
    assert any(op == "RUN" and "pip wheel" in args for op, args in builder)
    # the final stage installs from the builder's wheels only, and keeps no pip cache
    installs = [args for op, args in final if op == "RUN" and "pip install" in args]
    assert installs and all("--no-index" in a and "--find-links /wheels" in a for a in installs)
    assert any("from=builder" in a and "type=bind" in a for a in installs), \
        "the wheels are mounted for the install step, not copied into a layer"
    assert "PIP_NO_CACHE_DIR=1" in final_text or all("--no-cache-dir" in a for a in installs)
    # no compilers or build tools in the final stage
    for banned in ("build-essential", "gcc", "g++", "apt-get install", "make "):
        assert banned not in final_text, banned
    # an unprivileged user, set before the entrypoint
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    ops = [op for op, _ in final]
    assert ops.index("USER") < ops.index("ENTRYPOINT")
    # a health check, the production configs, DAGSTER_HOME
    assert "HEALTHCHECK" in ops and "serve --health-check" in final_text.replace('", "', " ")
    assert any(op == "COPY" and args.startswith("deploy/") for op, args in final)
    assert re.search(r"DAGSTER_HOME=\S+", final_text)
    assert re.search(r"DAGSTER_INSTANCE_CONFIG=\S*/deploy/dagster.yaml", final_text)
    assert ("ENTRYPOINT", '["analytics-platform"]') in final


def test_dockerignore_keeps_what_the_builder_copies() -> None:
    """The build context holds what the stages COPY, nothing else (no data/, no .venv)."""
    kept = {ln[1:].rstrip("/") for ln in (ROOT / ".dockerignore").read_text().splitlines()
            if ln.startswith("!")}
    copied = set()
    for stage in stages():
        for op, args in stage:
            if op == "COPY" and "--from" not in args:
                copied |= {a.rstrip("/") for a in args.split()[:-1]}
    assert copied and copied <= kept


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of exactly what the builder stage copies."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "analytics_platform", src / "analytics_platform",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = src / "wheels"
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                          "--wheel-dir", str(out), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (whl,) = out.glob("analytics_platform-*.whl")
    return whl


def test_the_wheel_carries_every_data_file(wheel: Path) -> None:
    """Every file of the package that is not Python (SQL, funnels, referrers, prices, the
    tracker and its demo page) is in the wheel: the image has nothing else."""
    package = ROOT / "analytics_platform"
    data = {p.relative_to(ROOT).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n for n in data if n.endswith(".sql")}, "the SQL files moved?"
    assert data <= names, sorted(data - names)
    assert not any(n.startswith("analytics_platform_tests/") for n in names)


def test_the_wheel_installed_as_the_image_installs_it(wheel: Path, tmp_path: Path) -> None:
    """`pip install --no-index --find-links <wheels> analytics-platform` into a fresh virtualenv
    (its dependencies are this environment's, seen through a .pth line: the machine cannot
    download them all again), then `dagster definitions validate` and `analytics-platform
    --help` from that environment, in a folder that is not the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # This environment's packages, minus the project's editable install, behind a plain path
    # line (a .pth in that folder is not run): pip resolves the wheel's requirements against them.
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not re.match(r"(__editable__|_?analytics_platform)", entry.name):
            (deps / entry.name).symlink_to(entry)
    Path(site, "_deps.pth").write_text(f"{deps}\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                              "--quiet", "--no-index", "--find-links", str(wheel.parent),
                              "analytics-platform"], capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DAGSTER_HOME")}
    env["ANALYTICS_DATA_DIR"] = str(tmp_path / "data")
    where = subprocess.run([str(python), "-c", "import analytics_platform; "
                            "print(analytics_platform.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path, env=env, check=True).stdout.strip()
    assert where.startswith(site), f"imported {where}, not the installed wheel"
    validate = subprocess.run([str(python), "-m", "dagster", "definitions", "validate", "-m",
                               "analytics_platform.definitions"], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=300)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Validation successful" in validate.stdout + validate.stderr
    cli = venv / "bin" / "analytics-platform"  # the entry point the image runs
    for args in (["--help"], ["serve", "--help"]):
        out = subprocess.run([str(cli), *args], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr
    assert "serve" in subprocess.run([str(cli), "--help"], capture_output=True, text=True,
                                     cwd=tmp_path, env=env).stdout


def test_the_packaged_dg_project_file_matches_pyproject() -> None:
    """analytics_platform/dg.toml (what an installed wheel loads its definitions with) says what
    [tool.dg] in pyproject.toml says."""
    import tomllib

    packaged = tomllib.loads((ROOT / "analytics_platform" / "dg.toml").read_text())
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dg"]
    assert packaged["directory_type"] == tool["directory_type"]
    assert dict(packaged["project"]) == {
        "defs_module": tool["project"]["defs_module"],
        "root_module": tool["project"]["root_module"],
        "code_location_name": tool["project"]["code_location_name"]}
