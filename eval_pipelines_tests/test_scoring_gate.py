"""The release gate's comparison criteria: non-inferiority against a margin on the design-based difference, the
minimum detectable effect beside it, and seeded simulations of their error rates on a 2,000-case eval set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.multiplicity import benjamini_hochberg, holm_adjusted
from eval_pipelines.scoring.gate import evaluate_criterion, evaluate_gate
from eval_pipelines.scoring.scorers import ScorerTraits
from eval_pipelines.scoring.settings import (
    ComparisonConfig,
    NonInferiorityCriterion,
    RegressionCriterion,
    ScoringConfig,
)
from eval_pipelines.scoring.stats import (
    minimum_detectable_effect,
    non_inferiority_score_test,
    non_inferiority_test,
    paired_proportion_score_bounds,
    score_minimum_detectable_effect,
)
from eval_pipelines.scoring.summarise import SUMMARY_COLUMNS, Design, _Projector, summarise

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
    """``runs`` rows of (diff, ci_low, ci_high, std_error, df, p_value, p_regression, discordant_share,
    effective_n) of the design comparison."""
    project, _ = _design_projector()
    cells = _cells(difference)
    truth = sum(w * (win - loss) for w, (loss, win) in zip(WEIGHTS, cells, strict=True))
    assert truth == pytest.approx(difference, abs=1e-12)
    rng = np.random.default_rng(seed)
    every = np.ones(sum(SAMPLE), dtype=bool)
    out = np.empty((runs, 9))
    for run in range(runs):
        d = np.concatenate([np.where(u < loss, -1.0, np.where(u < loss + win, 1.0, 0.0))
                            for u, (loss, win) in ((rng.random(n), c) for n, c in zip(SAMPLE, cells, strict=True))])
        out[run] = project.compare(d, every, True, True, None)
    return out


def _passes(rows: np.ndarray, margin: float, alpha: float = 0.025) -> np.ndarray:
    """What the gate decides on binary rows: the score test at the design's effective number of pairs."""
    return np.array([non_inferiority_score_test(r[0], r[7], r[8], r[4], margin, alpha)[1] <= alpha for r in rows])


def _wald_passes(rows: np.ndarray, margin: float, alpha: float = 0.025) -> np.ndarray:
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
    # With alpha 0.025 the gate's bound is the stored CI's lower end, and it clears -margin exactly when p <= α.
    found = np.array([non_inferiority_score_test(r[0], r[7], r[8], r[4], 0.01, 0.025) for r in rows])
    assert found[:, 0] == pytest.approx(rows[:, 1], abs=1e-9)
    assert np.array_equal(found[:, 0] >= -0.01, found[:, 1] <= 0.025)


def test_the_minimum_detectable_effect_is_the_margin_shown_with_80_percent_power():
    """An equal candidate (difference 0) is shown non-inferior with ≈ 80 % probability when the margin is the
    MDE: (t_{1-α} + t_{0.8}) se, against scipy's t quantiles."""
    assert minimum_detectable_effect(0.01, 120, 0.025) == pytest.approx(
        (stats.t.ppf(0.975, 120) + stats.t.ppf(0.8, 120)) * 0.01, rel=1e-12)
    rows = _simulate(0.0, 600, seed=9)
    margin = float(np.median([score_minimum_detectable_effect(r[7], r[8], r[4], 0.025) for r in rows]))
    assert abs(np.mean(_passes(rows, margin)) - 0.8) <= 2 * np.sqrt(0.8 * 0.2 / 600) + 0.01


def _summary(diff: float, std_error: float, df: float = 1998.0, n: int = 2000) -> pd.DataFrame:
    half = stats.t.ppf(0.975, df) * std_error
    row = dict.fromkeys(SUMMARY_COLUMNS, np.nan)
    row.update({"case_set": "eval_set", "scorer": "m", "slice_dim": "all", "slice_value": "all", "n_cases": n,
                "binary": False,
                "n_scored": n, "diff": diff, "diff_ci_low": diff - half, "diff_ci_high": diff + half,
                "diff_std_error": std_error, "diff_df": df, "p_value_regression": stats.t.cdf(diff / std_error, df),
                "sample_diff": diff, "sample_p_value_regression": 0.5, "test": "mcnemar_chi2", "wins": 10,
                "losses": 10, "ties": n - 20,
                "mde": minimum_detectable_effect(std_error, df, 0.025)})
    return pd.DataFrame([row], columns=list(SUMMARY_COLUMNS))


def _rare_discordance_rows(strata: int, per_stratum: int, losses: float, wins: float, runs: int,
                           seed: int) -> np.ndarray:
    """Design comparisons (rows as in :func:`_simulate`) of ``strata`` equal strata of ``per_stratum`` cases where
    each pair is a loss with probability ``losses`` and a win with probability ``wins``."""
    labels = np.repeat([f"s{h:02d}" for h in range(strata)], per_stratum)
    design = Design({f"s{h:02d}": 1000.0 * per_stratum for h in range(strata)},
                    {f"s{h:02d}": per_stratum for h in range(strata)})
    project = _Projector(labels, design, 0.95)
    rng = np.random.default_rng(seed)
    every = np.ones(len(labels), dtype=bool)
    out = np.empty((runs, 9))
    for run in range(runs):
        u = rng.random(len(labels))
        d = np.where(u < losses, -1.0, np.where(u < losses + wins, 1.0, 0.0))
        out[run] = project.compare(d, every, True, True, None)
    return out


@pytest.mark.parametrize(("strata", "per_stratum"), [(1, 400), (80, 5)])
def test_non_inferiority_keeps_its_level_when_few_pairs_are_discordant(strata, per_stratum):
    """Seeded: exactly 1 point worse (1.5 % losses, 0.5 % wins: ~8 discordant pairs of 400), margin 1 point,
    α 2.5 %. The Wald bound d̂ - t se passed ~5 % (the reviewer's 5.3 % / 4.6 %); the score test at the design's
    effective number of pairs stays within binomial noise of 2.5 % (1,500 runs: standard error 0.4 points)."""
    rows = _rare_discordance_rows(strata, per_stratum, 0.015, 0.005, 1500, seed=31 + strata)
    assert np.mean(_wald_passes(rows, 0.01)) > 0.04  # the defect, on the same samples
    assert np.mean(_passes(rows, 0.01)) <= 0.035
    # The stored CI is the gate's interval.
    assert rows[:, 1] == pytest.approx(
        [paired_proportion_score_bounds(r[0], r[7], r[8], r[4], 0.025)[0] for r in rows], abs=1e-12)


def test_non_inferiority_keeps_its_power_when_few_pairs_are_discordant():
    """A clearly non-inferior candidate (0.2 % losses, 1.2 % wins: 1 point better, margin 1 point) on the same
    400 cases is shown non-inferior most of the time (≈ 90 %)."""
    rows = _rare_discordance_rows(1, 400, 0.002, 0.012, 400, seed=40)
    assert np.mean(_passes(rows, 0.01)) >= 0.8


def test_the_score_test_uses_the_restricted_maximum_likelihood_variance():
    """Tango's statistic against a direct numerical maximisation of the multinomial likelihood under
    p_w - p_l = -δ, and the bound as the root where the one-sided p equals α."""
    from scipy import optimize

    n, wins, losses, margin = 400.0, 2.0, 6.0, 0.01

    def negative_log_likelihood(p_loss: float) -> float:
        p_win = p_loss - margin
        return -(losses * np.log(p_loss) + wins * np.log(p_win) + (n - wins - losses) * np.log(1 - p_loss - p_win))

    p_loss = optimize.minimize_scalar(negative_log_likelihood, bounds=(margin + 1e-9, 0.5), method="bounded",
                                      options={"xatol": 1e-12}).x
    estimate, share = (wins - losses) / n, (wins + losses) / n
    z = (estimate + margin) / np.sqrt((2 * p_loss - margin * (1 + margin)) / n)
    lower, p_value = non_inferiority_score_test(estimate, share, n, 1e9, margin, 0.025)
    assert p_value == pytest.approx(stats.norm.sf(z), rel=1e-6)
    at_bound = non_inferiority_score_test(estimate, share, n, 1e9, -lower, 0.025)[1]
    assert at_bound == pytest.approx(0.025, rel=1e-6)


def test_gate_judges_binary_rows_with_the_score_test():
    criterion = NonInferiorityCriterion(scorer="m", margin=0.02)
    row = _summary(0.0, 0.005)
    row["binary"] = True
    row["diff_discordant_share"], row["diff_effective_n"] = 0.05, 1999.0
    verdict = evaluate_criterion(criterion, row)
    expected = non_inferiority_score_test(0.0, 0.05, 1999.0, 1998.0, 0.02, 0.025)
    assert verdict["value"] == pytest.approx(expected[0]) and verdict["verdict"] == "pass"
    row["diff_effective_n"] = np.nan  # stored before the score test's columns existed
    assert evaluate_criterion(criterion, row)["verdict"] == "not_judged"


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


def test_allow_missing_cannot_turn_an_underpowered_non_inferiority_into_a_pass():
    """Refused at config load with the key path; a criterion built without validation still fails unjudged."""
    from eval_pipelines.config import ConfigError, parse_settings

    raw = {"scoring": {"gates": {"default": [{"kind": "non_inferiority", "scorer": "exact_match", "margin": 0.02,
                                              "allow_missing": True}]}}}
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, "my.yaml")
    assert "scoring.gates.default.0" in str(error.value) and "allow_missing" in str(error.value)
    assert NonInferiorityCriterion(scorer="m", margin=0.02, allow_missing=False).allow_missing is False
    unvalidated = NonInferiorityCriterion.model_construct(scorer="m", margin=0.02, alpha=0.025, slice="all",
                                                          label=None, allow_missing=True, kind="non_inferiority")
    unclear = evaluate_criterion(unvalidated, _summary(-0.005, 0.02))  # MDE 0.056 > margin: not judged
    assert unclear["verdict"] == "not_judged" and not unclear["passed"]
    assert not evaluate_gate([unvalidated], _summary(-0.005, 0.02))["passed"].all()


def test_non_inferiority_is_the_default_comparison_and_validated():
    default = ScoringConfig().gates["default"]
    kinds = [c.kind for c in default]
    assert "non_inferiority" in kinds and "no_regression" not in kinds
    with pytest.raises(ValueError, match="margin"):
        ScoringConfig.model_validate({"gates": {"default": [{"kind": "non_inferiority", "scorer": "exact_match",
                                                             "margin": -0.1}]}})


def test_holm_and_benjamini_hochberg_match_their_closed_forms_and_scipy():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    # Holm, ascending 0.01, 0.03, 0.04, 0.2 over k = 4: 4*0.01, max(0.04, 3*0.03), max(0.09, 2*0.04), 0.2.
    assert holm_adjusted(p) == pytest.approx([0.04, 0.09, 0.09, np.nan, 0.2], nan_ok=True)
    rng = np.random.default_rng(4)
    for _ in range(20):
        values = rng.random(12) ** 2
        order = np.argsort(values)
        k = len(values)
        by_hand = np.empty(k)
        by_hand[order] = np.minimum.accumulate((k * values[order] / np.arange(1, k + 1))[::-1])[::-1]
        assert benjamini_hochberg(values) == pytest.approx(np.minimum(by_hand, 1.0), rel=1e-12)
        assert benjamini_hochberg(values) == pytest.approx(stats.false_discovery_control(values), rel=1e-12)
        holm_by_hand = np.empty(k)
        holm_by_hand[order] = np.maximum.accumulate(np.minimum(1.0, (k - np.arange(k)) * values[order]))
        assert holm_adjusted(values) == pytest.approx(holm_by_hand, rel=1e-12)


def _regression_rows(p_values: list[float]) -> pd.DataFrame:
    rows = pd.concat([_summary(0.0, 0.01)] * len(p_values), ignore_index=True)
    rows["scorer"] = [f"m{i}" for i in range(len(p_values))]
    rows["p_value_regression"] = p_values
    return rows


def test_several_no_regression_criteria_fail_an_equal_candidate_at_most_at_alpha():
    """Seeded: two no_regression criteria on independent comparisons of an equal candidate (null p-values
    uniform). Judged alone, the gate fails 1 - 0.95^2 = 9.75 % of the time; with Holm across the context's
    criteria, at most 5 % (800 samples: binomial standard error 0.77 points)."""
    rng = np.random.default_rng(12)
    criteria = [RegressionCriterion(scorer="m0"), RegressionCriterion(scorer="m1"),
                NonInferiorityCriterion(scorer="m0", margin=0.05)]
    failed, runs = 0, 800
    rows = _regression_rows([0.5, 0.5])
    for _ in range(runs):
        rows["p_value_regression"] = rng.random(2)
        gate = evaluate_gate(criteria[:2], rows)
        failed += not bool(gate["passed"].all())
    assert failed / runs <= 0.05 + 2 * 0.0077
    # The adjusted p is the value shown, the raw one is in the detail; a single criterion is judged as before.
    gate = evaluate_gate(criteria, _regression_rows([0.03, 0.5]))
    assert gate["value"].iloc[0] == pytest.approx(0.06) and gate["passed"].iloc[0]
    assert "Holm-adjusted over the context's 2" in gate["detail"].iloc[0] and "raw p 0.03" in gate["detail"].iloc[0]
    alone = evaluate_gate(criteria[:1], _regression_rows([0.03, 0.5]))
    assert alone["value"].iloc[0] == pytest.approx(0.03) and not alone["passed"].iloc[0]


def test_slice_q_values_keep_the_global_null_quiet():
    """Seeded: 12 slices (8 segments crossing 4 strata, and the 4 strata) of a 400-case set where the candidate
    equals the baseline everywhere. Some slice shows a "significant regression" (raw one-sided p < 0.05) in over
    twice the nominal share of runs (the demo's ~80 slices make it most runs); a q-value below 0.05 in about 5 %
    at most (BH controls the family-wise rate under the global null; 250 runs, binomial standard error 1.4
    points)."""
    rng = np.random.default_rng(21)
    sizes, populations = [100] * 4, [70_000, 20_000, 7_000, 3_000]
    labels = np.repeat([f"s{h}" for h in range(4)], sizes)
    design = Design({f"s{h}": float(n) for h, n in enumerate(populations)}, {f"s{h}": 100 for h in range(4)})
    project = _Projector(labels, design, 0.95)
    raw_any = q_any = 0
    runs = 250
    for _ in range(runs):
        d = rng.choice([-1.0, 0.0, 1.0], size=len(labels), p=[0.1, 0.8, 0.1])
        segment = rng.integers(0, 8, len(labels))
        masks = [segment == s for s in range(8)] + [labels == f"s{h}" for h in range(4)]
        p = np.array([project.compare(d, mask, False, True, None)[6] for mask in masks])
        raw_any += bool(np.any(p < 0.05))
        q_any += bool(np.any(benjamini_hochberg(p) < 0.05))
    assert raw_any / runs > 0.1
    assert q_any / runs <= 0.05 + 2 * 0.014


def test_summary_rows_carry_bh_q_values_over_the_slices():
    rng = np.random.default_rng(3)
    labels = np.repeat(["a", "b"], 150)
    candidate, baseline = (rng.random(300) < 0.7).astype(float), (rng.random(300) < 0.7).astype(float)
    frame = pd.DataFrame({"stratum": labels, "weight": 10.0, "segment": rng.choice(["x", "y", "z"], 300),
                          "score__m": candidate, "baseline_score__m": baseline})
    design = Design({"a": 1500.0, "b": 1500.0}, {"a": 150, "b": 150})
    summary = summarise(frame, {"m": ScorerTraits(True, True)}, ["segment", "stratum"],
                        ComparisonConfig(resamples=100), design)
    slices = summary[summary["slice_dim"] != "all"]
    assert len(slices) == 5
    assert slices["q_value"].to_numpy() == pytest.approx(stats.false_discovery_control(slices["p_value"]))
    assert slices["q_value_regression"].to_numpy() == pytest.approx(
        stats.false_discovery_control(slices["p_value_regression"]))
    assert np.isnan(summary.loc[summary["slice_dim"] == "all", "q_value"]).all()
