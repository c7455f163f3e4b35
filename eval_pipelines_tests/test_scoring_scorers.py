"""Scorers: per-case values against hand-computed ones and closed forms; the config's validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from eval_pipelines.demo.candidates import DEMO_CANDIDATES
from eval_pipelines.scoring.scorers import ece_contributions, score_frame, traits
from eval_pipelines.scoring.settings import ScorerConfig, ScoringConfig


def _frame(**columns: object) -> pd.DataFrame:
    """Scorer input with str label and output columns; other columns as given."""
    frame = pd.DataFrame(columns)
    for name in ("label", "output"):
        frame[name] = frame[name].astype("str")
    return frame


def length_ratio(frame: pd.DataFrame) -> list[float]:
    """A custom scorer for the test: output length over label length."""
    return [len(o) / len(lab) if isinstance(o, str) and isinstance(lab, str) else float("nan")
            for o, lab in zip(frame["output"], frame["label"], strict=True)]


def test_match_scorers():
    frame = _frame(label=["billing/high", "Refund / Low", None, "a"],
                   output=["billing/high ", "refund/low", "x", None])
    scores = score_frame(frame, [ScorerConfig(name="em", kind="exact_match"),
                                 ScorerConfig(name="nm", kind="normalised_match")])
    np.testing.assert_array_equal(scores["em"], [1.0, 0.0, np.nan, 0.0])  # a failed call is wrong, no label: NaN
    np.testing.assert_array_equal(scores["nm"], [1.0, 1.0, np.nan, 0.0])


def test_label_set_f1_and_numeric_tolerance():
    frame = _frame(label=["billing/high", "a,b,c", "10", "abc", "7"],
                   output=["billing/low", "c,a", "10.4", "12", None])
    scores = score_frame(frame, [ScorerConfig(name="f1", kind="label_set_f1", separator="/"),
                                 ScorerConfig(name="f1c", kind="label_set_f1", separator=","),
                                 ScorerConfig(name="num", kind="numeric_tolerance", abs_tol=0.5)])
    assert scores["f1"][0] == pytest.approx(0.5)  # {billing, high} vs {billing, low}
    assert scores["f1c"][1] == pytest.approx(2 * 2 / (3 + 2))
    assert scores["f1"][4] == 0.0
    np.testing.assert_array_equal(scores["num"], [np.nan, np.nan, 1.0, np.nan, 0.0])
    relative = score_frame(frame.iloc[[2]], [ScorerConfig(name="r", kind="numeric_tolerance", rel_tol=0.03)])
    assert relative["r"][0] == 0.0  # 0.4 > 0.03 * 10


def test_brier_and_ece_against_closed_forms():
    rng = np.random.default_rng(7)
    confidence = rng.uniform(0, 1, 500)
    correct = (rng.random(500) < confidence**1.5).astype(float)
    frame = _frame(label=["y"] * 500, output=np.where(correct == 1, "y", "n"), confidence=confidence)
    scores = score_frame(frame, [ScorerConfig(name="exact_match", kind="exact_match"),
                                 ScorerConfig(name="brier", kind="brier"), ScorerConfig(name="ece", kind="ece")])
    np.testing.assert_allclose(scores["brier"], (confidence - correct) ** 2)
    bins = np.minimum((confidence * 10).astype(int), 9)
    direct = sum(np.sum(bins == b) / 500 * abs(confidence[bins == b].mean() - correct[bins == b].mean())
                 for b in range(10) if np.any(bins == b))
    assert scores["ece"].mean() == pytest.approx(direct, rel=1e-12)
    # Perfectly calibrated in every bin: zero ECE.
    assert ece_contributions(np.array([0.25, 0.25, 0.25, 0.25]), np.array([1.0, 0, 0, 0]), 4).mean() == 0.0


def test_operational_scorers_and_custom():
    frame = _frame(label=["a", "bb", "c"], output=["a", "b", None], latency_ms=[120.0, 2500.0, np.nan],
                   cost_usd=[0.001, 0.002, np.nan], status=["ok", "ok", "timeout"])
    scores = score_frame(frame, [
        ScorerConfig(name="slo", kind="latency_slo", slo_ms=2000), ScorerConfig(name="lat", kind="latency"),
        ScorerConfig(name="cost", kind="cost"), ScorerConfig(name="ok", kind="success"),
        ScorerConfig(name="ratio", kind="custom", function="eval_pipelines_tests.test_scoring_scorers:length_ratio",
                     higher_is_better=True)])
    np.testing.assert_array_equal(scores["slo"], [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(scores["lat"], [120.0, 2500.0, np.nan])
    np.testing.assert_array_equal(scores["ok"], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(scores["ratio"], [1.0, 0.5, np.nan])
    assert not traits(ScorerConfig(name="lat", kind="latency")).higher_is_better
    assert traits(ScorerConfig(name="em", kind="exact_match")).binary


def test_custom_scorer_errors_name_the_target():
    frame = _frame(label=["a"], output=["a"])
    with pytest.raises(ImportError, match="no_such_module"):
        score_frame(frame, [ScorerConfig(name="x", kind="custom", function="no_such_module:f")])
    with pytest.raises(AttributeError, match="missing_function"):
        score_frame(frame, [ScorerConfig(name="x", kind="custom",
                                         function="eval_pipelines_tests.test_scoring_scorers:missing_function")])


def test_default_config_has_no_candidates_and_validates_references():
    # issue 14: a config without a scoring section replays nothing; the demo names its two candidates itself
    assert ScoringConfig().candidates == []
    config = ScoringConfig.model_validate({"candidates": DEMO_CANDIDATES})
    assert [c.name for c in config.candidates] == ["keyword_rules", "naive_rules"]
    assert config.baseline_of("keyword_rules") == "production"
    bad = [
        ({"scorers": [{"name": "b", "kind": "brier", "correct_by": "nope"}], "primary_scorer": "b"}, "correct_by"),
        ({"baseline": "nobody"}, "baseline"),
        ({"gates": {"default": [{"kind": "score", "scorer": "nope", "threshold": 1}]}}, "unknown scorer"),
        ({"gates": {"default": []}}, "no criteria"),
        ({"candidates": [{"name": "a", "adapter": "python", "target": "m:f", "gate": "strict"}]}, "gate context"),
        ({"candidates": [{"name": "a", "adapter": "http", "url": "ftp://x"}]}, "http"),
        ({"candidates": [{"name": "a", "adapter": "python", "target": "no colon"}]}, "importable"),
        ({"candidates": [{"name": "production", "adapter": "logged"}]}, "reserved"),
        ({"candidates": [{"name": "a", "adapter": "grpc"}]}, "adapter"),
        ({"scorers": [{"name": "x", "kind": "custom"}]}, "function"),
        ({"slices": ["colour"]}, "slice"),
        ({"gates": {"default": [{"kind": "no_regression", "scorer": "exact_match", "alpha": 0.7}]}}, "alpha"),
    ]
    for raw, message in bad:
        with pytest.raises(ValidationError, match=message):
            ScoringConfig.model_validate(raw)
    overridden = ScoringConfig.model_validate({"candidates": [
        {"name": "a", "adapter": "logged"},
        {"name": "b", "adapter": "predictions", "path": "p.parquet", "baseline": "a"}], "baseline": "b"})
    assert overridden.baseline_of("b") == "a" and overridden.baseline_of("a") == "b"


def test_weighted_ece_matches_a_hand_computation():
    """Two bins. Stratum A (N = 30, n = 3, weight 10; one case without a confidence), stratum B (N = 2, n = 2).

    Weights within A are rescaled over its two valid cases (15 each) so A keeps its 30/32 of production.
    High bin [0.5, 1]: A1 (0.9, right, w 15), A2 (0.6, right, w 15), B1 (0.8, wrong, w 1): weighted gap
    (15·-0.1 + 15·-0.4 + 1·0.8) / 31 = -6.7/31 (under-confident; unweighted it would be over-confident).
    Low bin: B2 (0.3, wrong, w 1): gap 0.3. Weighted ECE = (6.7 + 0.3) / 32 = 7/32; unweighted ECE = 0.15.
    """
    confidence = np.array([0.9, 0.6, np.nan, 0.8, 0.3])
    correct = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    frame = _frame(label=["y"] * 5, output=np.where(correct == 1, "y", "n"), confidence=confidence,
                   stratum=["A", "A", "A", "B", "B"], weight=[10.0, 10.0, 10.0, 1.0, 1.0])
    scores = score_frame(frame, [ScorerConfig(name="exact_match", kind="exact_match"),
                                 ScorerConfig(name="ece", kind="ece", bins=2)])
    contributions = scores["ece"]
    np.testing.assert_allclose(contributions, [0.1, 0.4, np.nan, -0.8, 0.3])  # signs of the weighted bins
    valid = ~np.isnan(contributions)
    weights = np.array([15.0, 15.0, 0.0, 1.0, 1.0])
    assert np.sum(weights[valid] * contributions[valid]) / np.sum(weights[valid]) == pytest.approx(7 / 32)
    # The stratified estimate of the contributions (what scored_runs reports) is the same weighted ECE.
    assert 30 / 32 * np.mean([0.1, 0.4]) + 2 / 32 * np.mean([-0.8, 0.3]) == pytest.approx(7 / 32)
    unweighted = ece_contributions(confidence, correct, 2)
    assert np.nanmean(unweighted) == pytest.approx(0.15)


def test_ece_of_a_run_is_per_case_set_and_weighted_for_the_eval_set():
    """In a scored run the eval set's ECE is production's (weighted bins) and the edge cases' is their own: the
    two case sets never share bins, for the candidate and for the baseline alike."""
    from eval_pipelines.scoring.runs import scored_frame
    from eval_pipelines.scoring.summarise import Design, baseline_column, score_column, summarise

    config = ScoringConfig.model_validate({
        "scorers": [{"name": "exact_match", "kind": "exact_match"}, {"name": "ece", "kind": "ece", "bins": 2}],
        "gates": {"default": [{"kind": "score", "scorer": "exact_match", "threshold": 0.5}]}})
    correct = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    cases = pd.DataFrame({
        "case_set": ["eval_set"] * 5 + ["edge_cases"] * 2,
        "event_id": [f"e{i}" for i in range(7)],
        "stratum": ["A", "A", "A", "B", "B", None, None],
        "weight": [10.0, 10.0, 10.0, 1.0, 1.0, np.nan, np.nan],
        "label": ["y"] * 7,
    })
    outputs = pd.DataFrame({"output": np.where(correct == 1, "y", "n"),
                            "confidence": [0.9, 0.6, np.nan, 0.8, 0.3, 0.7, 0.4], "status": "ok"})
    frame = scored_frame(cases, outputs, outputs.copy(), config)
    ece = frame[score_column("ece")].to_numpy()
    np.testing.assert_allclose(ece[:5], [0.1, 0.4, np.nan, -0.8, 0.3])
    np.testing.assert_allclose(ece[5:], [0.7, 0.6])  # edge cases alone: ECE (0.7 + 0.6) / 2 = 0.65
    np.testing.assert_allclose(frame[baseline_column("ece")].to_numpy(), ece)  # the baseline is binned alike
    strata = pd.DataFrame({"stratum": ["A", "B"], "population": [30, 2], "sample": [3, 2]})
    eval_part = frame[frame["case_set"] == "eval_set"].reset_index(drop=True)
    summary = summarise(eval_part, {"ece": traits(config.scorer("ece"))}, [], config.comparison,
                        Design.from_strata(strata))
    assert summary.iloc[0]["estimate"] == pytest.approx(7 / 32, rel=1e-12)
