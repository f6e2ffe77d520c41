"""The experiments' verdict (Fisher's exact test at small counts, Holm over an experiment's
comparisons, a 0 % baseline) and the cohort heatmap's empty weeks, on the views themselves
(Streamlit's AppTest) with their data and frame stubbed: no warehouse needed.

Expected values are derived here independently: Fisher's p by enumerating every way the
conversions can fall among the sessions, Holm and the z-test from their textbook formulas."""

from __future__ import annotations

import itertools
import json
import math
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import analytics_platform
from analytics_platform.dashboard import frame
from analytics_platform.dashboard import queries as Q
from analytics_platform.mart_logic import compare_variants

VIEWS = Path(analytics_platform.__file__).parent / "dashboard" / "views"


def z_p(n0: int, c0: int, n1: int, c1: int) -> float:
    """The pooled two-proportion z-test, two-sided."""
    p = (c0 + c1) / (n0 + n1)
    z = (c1 / n1 - c0 / n0) / math.sqrt(p * (1 - p) * (1 / n0 + 1 / n1))
    return math.erfc(abs(z) / math.sqrt(2))


def fisher_brute(n0: int, c0: int, n1: int, c1: int) -> float:
    """Fisher's two-sided p by brute force: under the null every placement of the K
    conversions among the N sessions is equally likely; p is the share of placements whose
    table is no likelier than the observed one (likelihood = how many placements give it)."""
    n, k = n0 + n1, c0 + c1
    tally: dict[int, int] = {}
    for chosen in itertools.combinations(range(n), k):
        in_b = sum(1 for i in chosen if i >= n0)  # sessions n0.. are the variant's
        tally[in_b] = tally.get(in_b, 0) + 1
    return sum(v for v in tally.values() if v <= tally[c1]) / sum(tally.values())


def rows(exp: str, variants: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame([(exp, v, n, c, c / n) for v, n, c in variants],
                        columns=["experiment", "variant", "sessions", "conversions",
                                 "conversion_rate"])


def run_view(monkeypatch: pytest.MonkeyPatch, view: str, data: pd.DataFrame,
             **frame_attrs: object) -> AppTest:
    """``views/<view>.py`` on ``data`` as its query's answer; the frame and header stubbed."""
    monkeypatch.setattr(frame, "header", lambda *a, **k: SimpleNamespace(start=date(2026, 1, 5)))
    monkeypatch.setattr(frame, "current", lambda: SimpleNamespace(**frame_attrs))
    monkeypatch.setattr(frame, "consent_coverage", lambda: "")
    monkeypatch.setattr(frame, "query", lambda *a, **k: data.copy())
    monkeypatch.setattr(Q, "experiments", lambda f: ("", {}, ()))
    monkeypatch.setattr(Q, "cohorts", lambda f: ("", {}, ()))
    at = AppTest.from_file(str(VIEWS / f"{view}.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_fisher_at_small_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1/10 against 6/10: the z-test says p ≈ 0.019 ("significant"); expected conversions are
    # 3.5 a side, so the exact test decides, and it does not reach 5 %
    want = fisher_brute(10, 1, 10, 6)
    assert z_p(10, 1, 10, 6) < 0.05 <= want  # the case separates the two tests
    t = compare_variants([("e", "control", 10, 1, 0.1), ("e", "b", 10, 6, 0.6)],
                         decision=True).to_pandas().set_index("variant")
    assert t.test["b"] == "Fisher exact"
    assert t.p_test["b"] == pytest.approx(want, rel=1e-12)
    assert t.p_value["b"] == pytest.approx(z_p(10, 1, 10, 6))  # the mart's column unchanged
    at = run_view(monkeypatch, "experiments", rows("e", [("control", 10, 1), ("b", 10, 6)]))
    assert not at.success
    [verdict] = [w.value for w in at.warning]
    assert "not yet significant" in verdict and "Fisher exact" in verdict
    assert f"p = {want:.3f}" in verdict
    assert at.dataframe[0].value.set_index("variant").test["b"] == "Fisher exact"


def test_fisher_matches_enumeration_on_asymmetric_tables() -> None:
    # unequal arms and a lopsided table: the two tails are not mirror images
    for n0, c0, n1, c1 in [(7, 0, 5, 3), (9, 2, 4, 4), (6, 6, 8, 3), (8, 1, 8, 1)]:
        t = compare_variants([("e", "control", n0, c0, c0 / n0), ("e", "b", n1, c1, c1 / n1)],
                             decision=True).to_pandas().set_index("variant")
        assert t.test["b"] == "Fisher exact"
        assert t.p_test["b"] == pytest.approx(fisher_brute(n0, c0, n1, c1), rel=1e-12)


def test_holm_over_the_comparisons_with_control(monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 variants against control: v0 alone has an unadjusted p < 0.05, which is no longer a
    # finding once eight comparisons were made
    counts = [("control", 1000, 50), ("v0", 1000, 75)] + [
        (f"v{i}", 1000, c) for i, c in enumerate([52, 48, 45, 55, 60, 40, 66], start=1)]
    raw = {v: z_p(1000, 50, n, c) for v, n, c in counts[1:]}
    assert raw["v0"] < 0.05
    # Holm by hand: sort, multiply the i-th smallest (0-based) by m - i, running maximum, cap 1
    m, running, want = len(raw), 0.0, {}
    for i, (v, p) in enumerate(sorted(raw.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (m - i) * p))
        want[v] = running
    assert want["v0"] == pytest.approx(8 * raw["v0"]) and want["v0"] >= 0.05
    t = compare_variants([("e", v, n, c, c / n) for v, n, c in counts],
                         decision=True).to_pandas().set_index("variant")
    assert (t.test.drop("control") == "z-test").all()
    assert set(t.comparisons) == {8}
    for v, p in want.items():
        assert t.p_adjusted[v] == pytest.approx(p)
    at = run_view(monkeypatch, "experiments", rows("e", counts))
    assert not at.success
    v0 = next(w.value for w in at.warning if "**v0**" in w.value)
    assert f"p = {want['v0']:.3f}" in v0 and "Holm-adjusted over 8 comparisons" in v0
    assert at.dataframe[0].value.set_index("variant").p_value["v0"] == f"{want['v0']:.3f}"


def test_one_comparison_is_not_adjusted(monkeypatch: pytest.MonkeyPatch) -> None:
    # a single challenger at large counts: z-test, Holm leaves one p as it is, and a real
    # difference is still called
    p = z_p(1000, 50, 1000, 80)
    at = run_view(monkeypatch, "experiments", rows("e", [("control", 1000, 50),
                                                         ("b", 1000, 80)]))
    [verdict] = [s.value for s in at.success]
    assert "60% better" in verdict and f"p = {p:.3f}, z-test" in verdict
    assert "Holm" not in verdict


def test_zero_baseline_is_decided_on_the_p_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # control 0/100, b 8/100: every conversion fell in b; with equal arms the only table as
    # unlikely is its mirror (all 8 in control), so p = 2·C(100,8)/C(200,8)
    want = 2 * math.comb(100, 8) / math.comb(200, 8)
    assert want < 0.05
    at = run_view(monkeypatch, "experiments", rows("e", [("control", 100, 0),
                                                         ("b", 100, 8)]))
    assert not at.info and not at.warning
    [verdict] = [s.value for s in at.success]
    assert "significant" in verdict and "lift undefined (baseline 0%)" in verdict
    assert f"p = {want:.3f}, Fisher exact" in verdict


def test_caption_names_the_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_view(monkeypatch, "experiments", rows("e", [("control", 1000, 50),
                                                         ("b", 1000, 80)]))
    caption = " ".join(c.value for c in at.caption)
    assert "each session is treated as an independent trial" in caption
    assert "a visitor seen in more than one variant counts in each" in caption


def test_cohort_weeks_with_no_one_back_are_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # the data ends Wed 28 Jan 2026. Cohort 5 Jan: back in week 2 only; cohort 12 Jan: no one
    # back. The mart has rows only where someone came back.
    mart = pd.DataFrame({
        "cohort_week": [date(2026, 1, 5), date(2026, 1, 5), date(2026, 1, 12)],
        "week_offset": [0, 2, 0], "cohort_size": [10, 10, 5], "visitors": [10, 3, 5],
        "retention": [1.0, 0.3, 1.0]})
    at = run_view(monkeypatch, "cohorts", mart, first_day=date(2026, 1, 5),
                  last_day=date(2026, 1, 28))
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    # finished weeks with no one back: 0%; the week of 26 Jan has begun but is not over: "*";
    # cohort 12 Jan's week 3 (from 2 Feb) is after the data: blank
    assert spec["data"][0]["text"] == [["100%", "0%", "30%", "0%*"],
                                       ["100%", "0%", "0%*", ""]]
    assert spec["data"][0]["x"] == ["0", "1", "2", "3"]
