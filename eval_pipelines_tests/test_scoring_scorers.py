"""Scorers: per-case values against hand-computed ones and closed forms; the config's validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from eval_pipelines.scoring.scorers import ece_contributions, score_frame, traits
from eval_pipelines.scoring.settings import ScorerConfig, ScoringConfig


def _frame(**columns: object) -> pd.DataFrame:
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


def test_default_config_is_the_demo_and_validates_references():
    config = ScoringConfig()
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
