"""docs/CONTRACT.md stays the project's contract: every section the code and docs cite exists,
every reason code and event type is defined there, and nothing points outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from analytics_platform import contract
from analytics_platform.defs.events.validation import reason_sql

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "CONTRACT.md"

# Where the contract is cited. Text files only; generated and third-party folders are skipped.
CITING = ["analytics_platform", "analytics_platform_tests", "bench", "docs", "infra", "README.md"]
TEXT_SUFFIXES = {".py", ".md", ".sql", ".yaml", ".yml", ".csv", ".tf", ".hcl", ".js", ".html",
                 ".toml", ".txt", ".sh", ".example"}
TEXT_NAMES = {"Makefile"}
SKIP_DIRS = {"__pycache__", "node_modules", ".terraform", ".venv", ".git"}

# "CONTRACT §3.4", "CONTRACT §1–2", "CONTRACT §3.3–3.6"; the old prefix SPEC is accepted until
# the code comments are renamed. A comment may break the line between prefix and section
# ("(SPEC\n# §3.5)").
CITATION = re.compile(
    r"\b(?:SPEC|CONTRACT)(?:\s|#)*§\s*(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?")


def _text_files(paths: list[str]) -> list[Path]:
    out = []
    for name in paths:
        p = ROOT / name
        candidates = [p] if p.is_file() else sorted(p.rglob("*"))
        for f in candidates:
            if (f.is_file() and not SKIP_DIRS & set(f.relative_to(ROOT).parts)
                    and (f.suffix in TEXT_SUFFIXES or f.name in TEXT_NAMES)):
                out.append(f)
    return out


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def doc_sections(text: str) -> set[str]:
    """Section numbers of the contract: "1" for "## 1. …", "3.4" for "### 3.4 …"."""
    found = set(re.findall(r"^## (\d+)\.\s", text, re.M))
    found |= set(re.findall(r"^### (\d+\.\d+)\.?\s", text, re.M))
    return found


def citations(text: str) -> list[str]:
    """Every section number cited in ``text`` (both ends of a range)."""
    out = []
    for m in CITATION.finditer(text):
        first, last = m.group(1), m.group(2)
        out.append(first)
        if last:
            # "§3.3–3.6" or "§1–2"; a bare "§3.3–6" would mean 3.6
            if "." in first and "." not in last:
                last = f"{first.split('.')[0]}.{last}"
            out.append(last)
    return out


def test_the_parsers_read_what_they_should() -> None:
    """The helpers below must find sections and citations, else the other tests pass vacuously."""
    sample = "## 2. The raw\n### 3.4 De-dup\n#### 9.9 not a section\n"
    assert doc_sections(sample) == {"2", "3.4"}
    cite = "see (CONTRACT §3.4), SPEC §1–2 and the SPEC\n    # §3.3–3.6; CONTRACT §5"
    assert citations(cite) == ["3.4", "1", "2", "3.3", "3.6", "5"]


def test_the_contract_has_the_six_sections() -> None:
    sections = doc_sections(_doc())
    assert {"1", "2", "3", "4", "5", "6"} <= sections
    assert {f"3.{i}" for i in range(1, 7)} <= sections


def test_every_cited_section_exists() -> None:
    sections = doc_sections(_doc())
    missing = []
    total = 0
    for f in _text_files(CITING):
        text = f.read_text(encoding="utf-8", errors="replace")
        for number in citations(text):
            total += 1
            if number not in sections:
                missing.append(f"{f.relative_to(ROOT)}: §{number}")
    assert total > 20, "the code cites the contract in many places; none found means a bad scan"
    assert not missing, f"cited sections that docs/CONTRACT.md does not have: {missing}"


def _contract_rules() -> set[str]:
    """The rule names contract.py defines: the first argument of every ``Violation(...)`` and,
    while it exists, the members of its ``Rule`` literal."""
    tree = ast.parse(Path(contract.__file__).read_text(encoding="utf-8"))
    rules = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Violation" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            rules.add(node.args[0].value)
    rule_literal = getattr(contract, "Rule", None)
    rules |= set(getattr(rule_literal, "__args__", ()))
    return rules


def _pipeline_codes() -> set[str]:
    """Every full reason code the pipeline's generated validation can write (``rule:field``);
    the one whose field is computed is documented as ``props_bad_value:props.<key>``."""
    codes = set(re.findall(r"THEN '([a-z_]+(?::[a-z0-9_.]+)?)'", reason_sql(raw=True)))
    codes.discard("props_bad_value:props.")
    return codes


def test_every_reason_code_is_documented() -> None:
    doc = _doc()
    rules = _contract_rules()
    assert {"missing", "too_long", "props_invalid"} <= rules  # the extraction works
    codes = _pipeline_codes()
    assert len(codes) > 50 and "too_long:page_path" in codes
    # codes the pipeline writes besides the generated ones (a non-UTF-8 line, a bad object)
    events_code = "\n".join(f.read_text(encoding="utf-8")
                            for f in _text_files(["analytics_platform/defs/events"]))
    for rule, field in re.findall(r"'([a-z_]+):([a-z0-9_.]*[a-z0-9_])'", events_code):
        if rule in rules:
            codes.add(f"{rule}:{field}")
    assert "invalid_json:utf8" in codes
    undocumented = sorted(r for r in rules if f"`{r}`" not in doc and f"`{r}:" not in doc)
    undocumented += sorted(c for c in codes if f"`{c}`" not in doc)
    if "`props_bad_value:props.<key>`" not in doc:
        undocumented.append("props_bad_value:props.<key>")
    if "'corrupt_object'" in events_code and "`corrupt_object`" not in doc:
        undocumented.append("corrupt_object")
    assert not undocumented, f"reason codes missing from docs/CONTRACT.md: {undocumented}"


@pytest.mark.parametrize("event_type", contract.EVENT_TYPES)
def test_every_event_type_is_documented(event_type: str) -> None:
    assert f"`{event_type}`" in _doc(), f"event type {event_type} missing from docs/CONTRACT.md"


def test_every_field_is_documented() -> None:
    doc = _doc()
    missing = [f for f in contract.RAW_FIELD_NAMES if f"`{f}`" not in doc]
    assert not missing, f"fields missing from docs/CONTRACT.md: {missing}"


def test_nothing_points_outside_the_repository() -> None:
    outside = "../" + "shared"
    offenders = [str(f.relative_to(ROOT)) for f in _text_files(
        ["README.md", "docs", "analytics_platform", "bench", "scripts", "infra", "Makefile",
         "pyproject.toml"])
        if outside in f.read_text(encoding="utf-8", errors="replace")]
    assert not offenders, f"{outside} is not part of the project, yet named in {offenders}"
