"""The release gate's comparison criteria: non-inferiority against a margin on the design-based difference, the
minimum detectable effect beside it, and seeded simulations of their error rates on a 2,000-case eval set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.scoring.gate import evaluate_criterion, evaluate_gate
from eval_pipelines.scoring.settings import NonInferiorityCriterion, RegressionCriterion, ScoringConfig
from eval_pipelines.scoring.stats import minimum_detectable_effect, non_inferiority_test
from eval_pipelines.scoring.summarise import SUMMARY_COLUMNS, Design, _Projector

# Two strata, 90 % / 10 % of production, the rare one over-sampled: 1,600 + 400 cases.
WEIGHTS, SAMPLE = (0.9, 0.1), (1600, 400)
POPULATION = 10**7


def _design_projector() -> tuple[_Projector, np.ndarray]:
    labels = np.repeat(["common", "rare"], SAMPLE)
    design = Design({"common": WEIGHTS[0] * POPULATION, "rare": WEIGHTS[1] * POPULATION},
                    {"common": SAMPLE[0], "rare": SAMPLE[1]})
    return _Projector(labels, design, 0.95), labels


def _cells(difference: float) -> list[tuple[float, float]]:
    """(loss, win) probabilities per stratum with production difference ``difference`` (win - loss, weighted)."""
    rare = (0.10, 0.20)
    common_win = 0.06 + (difference - WEIGHTS[1] * (rare[1] - rare[0])) / WEIGHTS[0]
    return [(0.06, common_win), rare]


def _simulate(difference: float, runs: int, seed: int) -> np.ndarray:
    """``runs`` rows of (diff, ci_low, ci_high, std_error, df, p_value, p_regression) of the design comparison."""
    project, _ = _design_projector()
    cells = _cells(difference)
    truth = sum(w * (win - loss) for w, (loss, win) in zip(WEIGHTS, cells, strict=True))
    assert truth == pytest.approx(difference, abs=1e-12)
    rng = np.random.default_rng(seed)
    every = np.ones(sum(SAMPLE), dtype=bool)
    out = np.empty((runs, 7))
    for run in range(runs):
        d = np.concatenate([np.where(u < loss, -1.0, np.where(u < loss + win, 1.0, 0.0))
                            for u, (loss, win) in ((rng.random(n), c) for n, c in zip(SAMPLE, cells, strict=True))])
        out[run] = project.compare(d, every, True, True, None)
    return out


def _passes(rows: np.ndarray, margin: float, alpha: float = 0.025) -> np.ndarray:
    return np.array([non_inferiority_test(r[0], r[3], r[4], margin, alpha)[0] >= -margin for r in rows])


def test_non_inferiority_passes_a_real_regression_at_most_at_its_level():
    """Seeded: a true 1.1-point production regression on 2,000 cases, margin 1 point. ``no_regression`` passes it
    most of the time (no significant regression is not evidence of none); ``non_inferiority`` at most at its
    one-sided 2.5 % (600 samples: binomial standard error 0.64 points)."""
    rows = _simulate(-0.011, 600, seed=7)
    no_regression_passes = np.mean(rows[:, 6] >= 0.05)
    assert no_regression_passes > 0.2
    assert np.mean(_passes(rows, 0.01)) <= 0.025 + 2 * 0.0064


def test_non_inferiority_at_the_boundary_passes_at_its_nominal_level():
    """Exactly ``margin`` worse in production: the one-sided test passes ≈ 2.5 % (within two binomial standard
    errors of 1,200 samples), the lower bound of the two-sided 95 % CI stored in ``diff_ci_low``."""
    rows = _simulate(-0.01, 1200, seed=8)
    rate = np.mean(_passes(rows, 0.01))
    assert abs(rate - 0.025) <= 2 * np.sqrt(0.025 * 0.975 / 1200)
    # With alpha 0.025 the bound is the stored CI's lower end (the CI is clipped to ±1 only, far from here).
    lower = np.array([non_inferiority_test(r[0], r[3], r[4], 0.01, 0.025)[0] for r in rows])
    assert lower == pytest.approx(rows[:, 1], abs=1e-12)


def test_the_minimum_detectable_effect_is_the_margin_shown_with_80_percent_power():
    """An equal candidate (difference 0) is shown non-inferior with ≈ 80 % probability when the margin is the
    MDE: (t_{1-α} + t_{0.8}) se, against scipy's t quantiles."""
    assert minimum_detectable_effect(0.01, 120, 0.025) == pytest.approx(
        (stats.t.ppf(0.975, 120) + stats.t.ppf(0.8, 120)) * 0.01, rel=1e-12)
    rows = _simulate(0.0, 600, seed=9)
    margin = float(np.median([minimum_detectable_effect(r[3], r[4], 0.025) for r in rows]))
    assert abs(np.mean(_passes(rows, margin)) - 0.8) <= 2 * np.sqrt(0.8 * 0.2 / 600) + 0.01


def _summary(diff: float, std_error: float, df: float = 1998.0, n: int = 2000) -> pd.DataFrame:
    half = stats.t.ppf(0.975, df) * std_error
    row = dict.fromkeys(SUMMARY_COLUMNS, np.nan)
    row.update({"case_set": "eval_set", "scorer": "m", "slice_dim": "all", "slice_value": "all", "n_cases": n,
                "n_scored": n, "diff": diff, "diff_ci_low": diff - half, "diff_ci_high": diff + half,
                "diff_std_error": std_error, "diff_df": df, "p_value_regression": stats.t.cdf(diff / std_error, df),
                "sample_diff": diff, "sample_p_value_regression": 0.5, "test": "mcnemar_chi2", "wins": 10,
                "losses": 10, "ties": n - 20,
                "mde": minimum_detectable_effect(std_error, df, 0.025)})
    return pd.DataFrame([row], columns=list(SUMMARY_COLUMNS))


def test_gate_reads_the_lower_bound_and_says_when_the_set_is_too_small():
    criterion = NonInferiorityCriterion(scorer="m", margin=0.02)
    passed = evaluate_criterion(criterion, _summary(0.0, 0.005))
    assert passed["verdict"] == "pass" and passed["value"] == pytest.approx(-stats.t.ppf(0.975, 1998) * 0.005)
    assert passed["threshold"] == -0.02 and passed["op"] == "≥" and "MDE 0.014" in passed["detail"]
    # Shown worse: the whole interval below -margin fails, whatever the MDE.
    worse = evaluate_criterion(criterion, _summary(-0.2, 0.02))
    assert worse["verdict"] == "fail" and not worse["passed"]
    # Inconclusive on a set whose MDE exceeds the margin: not judged (and fails unless allow_missing).
    unclear = evaluate_criterion(criterion, _summary(-0.005, 0.02))
    assert unclear["verdict"] == "not_judged" and not unclear["passed"]
    assert "too little evidence" in unclear["detail"] and "0.056" in unclear["detail"]
    # Inconclusive although the set could show the margin: a plain failure.
    close = evaluate_criterion(criterion, _summary(-0.015, 0.004))
    assert close["verdict"] == "fail"
    # A run stored before diff_std_error existed cannot be judged on it.
    old = _summary(0.0, 0.005)
    old["diff_std_error"] = np.nan
    assert evaluate_criterion(criterion, old)["verdict"] == "not_judged"
    # no_regression shows the MDE beside its p-value.
    detail = evaluate_gate([RegressionCriterion(scorer="m")], _summary(0.0, 0.005))["detail"][0]
    assert "MDE 0.01244" in detail  # (t_0.95 + t_0.8) * 0.005 at alpha 0.05


def test_non_inferiority_is_the_default_comparison_and_validated():
    default = ScoringConfig().gates["default"]
    kinds = [c.kind for c in default]
    assert "non_inferiority" in kinds and "no_regression" not in kinds
    with pytest.raises(ValueError, match="margin"):
        ScoringConfig.model_validate({"gates": {"default": [{"kind": "non_inferiority", "scorer": "exact_match",
                                                             "margin": -0.1}]}})
