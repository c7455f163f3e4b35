"""Reviewed accuracy, automation-bias rate and override error rate: closed forms and a seeded coverage simulation."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.intervals import (
    design_interval,
    kish_effective_size,
    satterthwaite_degrees_of_freedom,
    wilson_interval,
)
from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample
from eval_pipelines.review.estimation import estimate_reviewed, implicit_accuracy
from eval_pipelines_tests.review_sim import simulate_day

DAY = dt.date(2026, 3, 4)


def _verdicts(sample, truth: pd.Series) -> pd.DataFrame:
    """A perfect reviewer: the hidden truth on every task."""
    ids = sample.tasks["event_id"]
    return pd.DataFrame({"event_id": ids, "ai_correct": truth.reindex(ids).to_numpy()})


def _frame(strata: list[str], actions: list[str], selected: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(len(strata))], "stratum": strata,
                         "review_action": actions, "certainty": False, "inclusion_prob": np.nan,
                         "selected": selected})


def test_matches_the_stratified_closed_form():
    # Two strata, N = 10 and 6, audited 4 and 3: p = Σ W q, v = Σ W² (1 - n/N) s² / n, Korn–Graubard on
    # Satterthwaite df from design_interval.
    strata = ["a"] * 10 + ["b"] * 6
    selected = [True] * 4 + [False] * 6 + [True] * 3 + [False] * 3
    frame = _frame(strata, ["accepted"] * 16, selected)
    y = {"e0": True, "e1": True, "e2": True, "e3": False, "e10": True, "e11": False, "e12": False}
    verdicts = pd.DataFrame({"event_id": list(y), "ai_correct": list(y.values())})
    got = estimate_reviewed(frame, verdicts).reviewed_accuracy
    w = np.array([10, 6]) / 16
    q = np.array([3 / 4, 1 / 3])
    s2 = np.array([np.var([1, 1, 1, 0], ddof=1), np.var([1, 0, 0], ddof=1)])
    n, big_n = np.array([4, 3]), np.array([10, 6])
    c = w**2 * (1 - n / big_n) * s2 / n
    assert got.estimate == pytest.approx(float(w @ q))
    assert got.std_error == pytest.approx(float(np.sqrt(c.sum())))
    nu = satterthwaite_degrees_of_freedom(c, n - 1)
    weights = np.r_[np.full(4, 10 / 4), np.full(3, 6 / 3)]
    expected = design_interval(float(w @ q), float(c.sum()), 7, nu, kish_effective_size(weights), True)
    assert (got.ci_low, got.ci_high) == pytest.approx((expected.low, expected.high))
    assert got.interval == "korn_graubard" and got.n_audited == 7 and got.population_size == 16
    assert got.available and "status ok" in got.population


def test_certainty_stratum_is_a_census():
    frame = _frame(["certainty"] * 5, ["accepted"] * 5, [True] * 5)
    verdicts = pd.DataFrame({"event_id": frame["event_id"], "ai_correct": [True, True, False, True, True]})
    got = estimate_reviewed(frame, verdicts).reviewed_accuracy
    assert (got.estimate, got.ci_low, got.ci_high) == (0.8, 0.8, 0.8)  # every case known: no sampling error
    assert got.interval == "exact"


def test_a_cell_without_verdict_makes_the_estimate_unavailable_not_reweighted():
    strata = ["a"] * 10 + ["b"] * 6
    actions = ["accepted"] * 10 + ["overridden"] * 6
    selected = [True] * 4 + [False] * 6 + [True] * 3 + [False] * 3
    frame = _frame(strata, actions, selected)
    verdicts = pd.DataFrame({"event_id": ["e0", "e1", "e2", "e3", "e10", "e11", "e12"],
                             "ai_correct": [True, False, True, True, pd.NA, pd.NA, pd.NA]})
    got = estimate_reviewed(frame, verdicts)
    assert not got.reviewed_accuracy.available and np.isnan(got.reviewed_accuracy.estimate)
    assert "37.5%" in got.reviewed_accuracy.reason and "cell_action=overridden" in got.reviewed_accuracy.reason
    assert not got.override_error_rate.available
    # The accepted domain does not contain the unanswered cell: it is still estimated.
    assert got.automation_bias_rate.available and got.automation_bias_rate.estimate == pytest.approx(0.25)


def test_verdicts_outside_the_sample_are_refused():
    frame = _frame(["a"] * 4, ["accepted"] * 4, [True, True, False, False])
    with pytest.raises(ValueError, match="not in the audit sample"):
        estimate_reviewed(frame, pd.DataFrame({"event_id": ["e2"], "ai_correct": [True]}))
    with pytest.raises(ValueError, match="not among"):
        estimate_reviewed(frame, pd.DataFrame({"event_id": ["zzz"], "ai_correct": [True]}))


def test_automation_bias_simulation_coverage_and_unbiasedness():
    """35 % of wrong suggestions accepted: implicit accuracy is biased, the reviewed CI covers at ~95 %.

    Design-based: one seeded day of 2,500 cases is the population (its true figures are fixed), and 300 audit
    samples of 250 (+ the certainty stratum) are drawn from it, one per "day" seed.
    """
    cases = simulate_day(2_500, seed=2024, wrong_accept_rate=0.35)
    ok = cases[cases["status"] == "ok"]
    truth = ok.set_index("event_id")["true_correct"]
    true_accuracy = float(ok["true_correct"].mean())
    accepted = ok["user_action"] == "accepted"
    true_bias = float((~ok.loc[accepted, "true_correct"]).mean())
    true_override = float(ok.loc[ok["user_action"] == "overridden", "true_correct"].mean())
    implicit = implicit_accuracy(cases)
    labeled = int(ok["ai_correct"].notna().sum())
    implicit_low, _ = wilson_interval(implicit * labeled, labeled)
    assert implicit - true_accuracy > 0.04 and implicit_low > true_accuracy  # biased, and its CI excludes the truth

    config = AuditDesignConfig(daily_size=250, seed=5)
    reps = 300
    found = {"acc": [], "bias": [], "override": []}
    covered = {"acc": 0, "bias": 0, "override": 0}
    for k in range(reps):
        sample = draw_audit_sample(cases, DAY + dt.timedelta(days=k), config)
        got = estimate_reviewed(sample.frame, _verdicts(sample, truth))
        for key, estimate, target in (("acc", got.reviewed_accuracy, true_accuracy),
                                      ("bias", got.automation_bias_rate, true_bias),
                                      ("override", got.override_error_rate, true_override)):
            assert estimate.available, estimate.reason
            found[key].append(estimate.estimate)
            covered[key] += estimate.ci_low <= target <= estimate.ci_high
    # Coverage within binomial noise of 95 % (3 SDs at 300 reps is ±0.038); Korn–Graubard errs on the high side.
    for key in covered:
        assert 0.91 <= covered[key] / reps <= 0.995, (key, covered[key] / reps)
    # Unbiased: the mean estimate is within 4 simulation SEs of the truth.
    for key, target in (("acc", true_accuracy), ("bias", true_bias), ("override", true_override)):
        values = np.asarray(found[key])
        assert abs(values.mean() - target) < 4 * values.std(ddof=1) / np.sqrt(reps), key
    # Sanity of the simulated world: about 35 % of wrong suggestions are accepted.
    wrong = ~ok["true_correct"]
    assert stats.binomtest(int((accepted & wrong).sum()), int(wrong.sum()), 0.35).pvalue > 1e-3
