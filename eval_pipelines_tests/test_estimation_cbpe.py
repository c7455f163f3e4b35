"""Label-free estimation: calibration against scikit-learn, and seeded simulations of coverage and drift.

Small on purpose: 40 repetitions of a 1,500-case day calibrated on 2,000 labelled cases with 30
bootstrap refits; the 1M-case timing and the NannyML comparison are in bench/bench_estimation.py.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from eval_pipelines.estimation.calibration import fit_calibrator, top_label_confidence
from eval_pipelines.estimation.cbpe import (
    ALL_SEGMENTS,
    STATUS_ESTIMATED,
    STATUS_NO_CALIBRATION,
    EstimationParams,
    estimate_day,
)
from eval_pipelines.estimation.settings import EstimationConfig
from eval_pipelines.estimation.synthetic import simulate_day
from eval_pipelines.estimation.trusted import trusted_labels

DAY = date(2026, 1, 20)
PARAMS = EstimationParams(bootstrap=30, min_calibration_cases=100, min_realized_cases=30)


def _calibration(conf: np.ndarray, correct: np.ndarray, version: str = "v1",
                 weight: np.ndarray | None = None) -> pd.DataFrame:
    return pd.DataFrame({"system": "s", "model_version": version, "confidence": conf, "correct": correct,
                         "weight": np.ones(len(conf)) if weight is None else weight, "source": "ground_truth"})


def _cases(conf: np.ndarray, version: str = "v1", segments: np.ndarray | None = None) -> pd.DataFrame:
    return pd.DataFrame({"system": "s", "model_version": version,
                         "segment": "a" if segments is None else segments, "confidence": conf})


def _realized(conf: np.ndarray, correct: np.ndarray, version: str = "v1") -> pd.DataFrame:
    frame = _calibration(conf, correct, version)
    frame["segment"] = "a"
    return frame


# ------------------------------------------------------------------------------------------- calibration


def test_isotonic_calibration_is_sklearn_with_weights():
    rng = np.random.default_rng(1)
    day = simulate_day(rng, 800)
    weight = rng.choice([1.0, 4.0], size=800)
    ours = fit_calibrator(day.confidence, day.correct, weight, "isotonic")
    theirs = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(day.confidence, day.correct,
                                                                            sample_weight=weight)
    grid = np.linspace(0, 1, 101)
    np.testing.assert_allclose(ours.predict(grid), theirs.predict(grid))
    # An integer weight is the same as repeating the case: the fit is of the weighted population.
    repeated = np.repeat(np.arange(800), weight.astype(int))
    replicated = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        day.confidence[repeated], day.correct[repeated])
    np.testing.assert_allclose(ours.predict(grid), replicated.predict(grid), atol=1e-9)
    # ... and not the same as ignoring the weights (so the weights are really used).
    unweighted = fit_calibrator(day.confidence, day.correct, None, "isotonic")
    assert np.abs(unweighted.predict(grid) - ours.predict(grid)).max() > 1e-3


def test_platt_calibration_is_unpenalised_sklearn_logistic_on_logit():
    rng = np.random.default_rng(2)
    day = simulate_day(rng, 600, classes=2)
    ours = fit_calibrator(day.confidence, day.correct, None, "platt")
    x = np.log(day.confidence / (1 - day.confidence)).reshape(-1, 1)
    theirs = LogisticRegression(C=np.inf, max_iter=200).fit(x, day.correct.astype(int))
    grid = np.linspace(0.3, 0.99, 50)
    np.testing.assert_allclose(ours.predict(grid),
                               theirs.predict_proba(np.log(grid / (1 - grid)).reshape(-1, 1))[:, 1], rtol=1e-6)


def test_positive_class_score_becomes_top_label_confidence():
    conf = top_label_confidence(np.array([0.9, 0.2, 0.6]), np.array(["yes", "no", "no"]), "yes")
    np.testing.assert_allclose(conf, [0.9, 0.8, 0.4])


def test_estimate_is_mean_of_the_sklearn_calibrated_confidence():
    rng = np.random.default_rng(3)
    cal, today = simulate_day(rng, 1000), simulate_day(rng, 500)
    rows = estimate_day(_cases(today.confidence), _calibration(cal.confidence, cal.correct), None, PARAMS, DAY, "w")
    direct = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(cal.confidence, cal.correct)
    row = rows[rows["segment"] == ALL_SEGMENTS].iloc[0]
    assert row["estimated_accuracy"] == pytest.approx(direct.predict(today.confidence).mean(), abs=1e-12)
    p = direct.predict(today.confidence)
    assert row["day_variation_std_error"] == pytest.approx(np.sqrt((p * (1 - p)).sum()) / 500, rel=1e-9)
    assert row["calibration_std_error"] > 0
    assert row["estimated_accuracy_ci_low"] < row["estimated_accuracy"] < row["estimated_accuracy_ci_high"]


def test_outside_support_share_counts_the_days_confidence_where_calibration_had_too_few_cases():
    """Item 4: the share of the day's cases whose confidence bin held fewer than ``min_support_cases`` calibration
    cases. Calibration on [0.5, 0.8) only (bins of 0.05: 0.50-0.55 ... 0.75-0.80, 60 cases each); the day has
    30 cases in 0.6-0.65 (supported), 10 at 0.92 and 10 at 0.97 (empty bins), and in segment "b" 5 at 0.81 (empty)
    and 5 at 0.52: hand-counted shares 20/50, 5/10 and 25/60 for the day."""
    rng = np.random.default_rng(11)
    cal_conf = np.repeat(np.array([0.525, 0.575, 0.625, 0.675, 0.725, 0.775]), 60)
    cal = _calibration(cal_conf, (rng.random(cal_conf.size) < cal_conf).astype(float))
    today = np.concatenate([np.full(30, 0.62), np.full(10, 0.92), np.full(10, 0.97), np.full(5, 0.81),
                            np.full(5, 0.52)])
    segments = np.array(["a"] * 50 + ["b"] * 10)
    params = EstimationParams(bootstrap=5, min_calibration_cases=100, min_support_cases=5, support_bins=20)
    rows = estimate_day(_cases(today, segments=segments), cal, None, params, DAY, "w").set_index("segment")
    assert rows.loc["a", "outside_support_share"] == pytest.approx(20 / 50)
    assert rows.loc["b", "outside_support_share"] == pytest.approx(5 / 10)
    assert rows.loc[ALL_SEGMENTS, "outside_support_share"] == pytest.approx(25 / 60)
    # a bin counts as supported only from min_support_cases calibration cases on
    strict = EstimationParams(bootstrap=5, min_calibration_cases=100, min_support_cases=61, support_bins=20)
    rows = estimate_day(_cases(today, segments=segments), cal, None, strict, DAY, "w").set_index("segment")
    assert rows.loc[ALL_SEGMENTS, "outside_support_share"] == pytest.approx(1.0)


def test_a_version_without_enough_trusted_labels_gets_no_estimate_and_says_why():
    rng = np.random.default_rng(4)
    cal = simulate_day(rng, 500)
    cases = pd.concat([_cases(simulate_day(rng, 300).confidence, "v1"),
                       _cases(simulate_day(rng, 200).confidence, "v2")])
    calibration = pd.concat([_calibration(cal.confidence, cal.correct, "v1"),
                             _calibration(cal.confidence[:20], cal.correct[:20], "v2")])
    rows = estimate_day(cases, calibration, None, PARAMS, DAY, "2026-01-06..2026-01-19").set_index(
        ["model_version", "segment"])
    assert rows.loc[("v1", ALL_SEGMENTS), "status"] == STATUS_ESTIMATED
    new = rows.loc[("v2", ALL_SEGMENTS)]
    assert new["status"] == STATUS_NO_CALIBRATION
    assert np.isnan(new["estimated_accuracy"]) and new["cases"] == 200 and new["calibration_cases"] == 20
    assert "20 trusted label(s)" in new["reason"] and "min_calibration_cases=100" in new["reason"]


def test_segments_and_the_all_row_add_up():
    rng = np.random.default_rng(5)
    cal, today = simulate_day(rng, 1000), simulate_day(rng, 900)
    segments = rng.choice(["x", "y", "z"], size=900)
    rows = estimate_day(_cases(today.confidence, segments=segments), _calibration(cal.confidence, cal.correct),
                        None, PARAMS, DAY, "w").set_index("segment")
    assert list(rows.index) == ["x", "y", "z", ALL_SEGMENTS]
    parts = rows.loc[["x", "y", "z"]]
    assert parts["cases"].sum() == rows.loc[ALL_SEGMENTS, "cases"] == 900
    weighted = (parts["estimated_accuracy"] * parts["cases"]).sum() / 900
    assert weighted == pytest.approx(rows.loc[ALL_SEGMENTS, "estimated_accuracy"])


# ------------------------------------------------------------------------------------------- simulations


def _simulate(classes: int, reps: int, today_spread: float, concept_drop: float = 0.0, seed: int = 7):
    """Per rep: calibrate on 2,000 labelled cases (spread 1.5), estimate a 1,500-case day, realized = all of it."""
    rng = np.random.default_rng(seed)
    inside, flagged, errors, truth = [], [], [], []
    for _ in range(reps):
        cal = simulate_day(rng, 2000, classes, spread=1.5)
        today = simulate_day(rng, 1500, classes, spread=today_spread, concept_drop=concept_drop)
        row = estimate_day(_cases(today.confidence), _calibration(cal.confidence, cal.correct),
                           _realized(today.confidence, today.correct), PARAMS, DAY, "w")
        row = row[row["segment"] == ALL_SEGMENTS].iloc[0]
        realized = today.correct.mean()
        inside.append(row["estimated_accuracy_ci_low"] <= realized <= row["estimated_accuracy_ci_high"])
        flagged.append(bool(row["gap_flagged"]))
        errors.append(row["estimated_accuracy"] - realized)
        truth.append(realized)
    return np.mean(inside), np.mean(flagged), np.array(errors), np.array(truth)


@pytest.mark.parametrize("classes", [2, 4])
def test_stationary_interval_covers_at_its_nominal_rate(classes: int):
    coverage, flagged, errors, _ = _simulate(classes, reps=40, today_spread=1.5)
    # 95 % nominal; with 40 reps a correct interval covers >= 34 times with probability 0.99 (an 80 % one: 0.16).
    assert coverage >= 0.85
    assert flagged <= 0.10  # the gap test's false-alarm rate on a stationary system
    assert abs(errors.mean()) < 0.01


@pytest.mark.parametrize("classes", [2, 4])
def test_covariate_shift_with_fixed_p_y_given_x_is_tracked(classes: int):
    # Harder traffic (smaller spread: lower confidences); P(right | confidence) unchanged.
    coverage, flagged, errors, truth = _simulate(classes, reps=30, today_spread=0.9, seed=8)
    reference = simulate_day(np.random.default_rng(9), 20_000, classes, spread=1.5).correct.mean()
    assert reference - truth.mean() > 0.05  # the shift really moved the accuracy ...
    assert abs(errors.mean()) < 0.015  # ... and the estimate followed it
    assert coverage >= 0.83  # 30 reps: a 95 % interval covers >= 25 times with probability 0.98
    assert flagged <= 0.15


@pytest.mark.parametrize("classes", [2, 4])
def test_concept_drift_is_flagged(classes: int):
    # Same confidences, 8 points less accuracy at every confidence: the estimate cannot see it; the realized gap can.
    _, flagged, errors, _ = _simulate(classes, reps=12, today_spread=1.5, concept_drop=0.08, seed=10)
    # 12 reps of 1,500 realized labels each
    assert errors.mean() > 0.05
    assert flagged >= 0.9


def test_a_stationary_day_with_many_segments_raises_the_gap_warning_at_most_at_its_level():
    # The WARN check is one verdict per day over "all" and every segment. Tested one by one at 5 % each, a
    # stationary day with six segments flags some group ~25 % of the time; Holm across the day's groups keeps
    # the day's false-alarm rate at the nominal 5 %.
    rng = np.random.default_rng(21)
    segment_names = np.array(["a", "b", "c", "d", "e", "f"])
    days_flagged = []
    for _ in range(40):
        cal = simulate_day(rng, 2000, 2, spread=1.5)
        today = simulate_day(rng, 1800, 2, spread=1.5)
        segments = segment_names[rng.integers(0, len(segment_names), size=1800)]
        realized = _realized(today.confidence, today.correct)
        realized["segment"] = segments
        rows = estimate_day(_cases(today.confidence, segments=segments),
                            _calibration(cal.confidence, cal.correct), realized, PARAMS, DAY, "w")
        assert (rows["realized_cases"] >= PARAMS.min_realized_cases).sum() == 7  # every group is tested
        days_flagged.append(bool(rows["gap_flagged"].any()))
    # 40 days at a true 5 %: P(more than 6 flagged) = 0.005; at the unadjusted ~25 %: P(at most 6) < 0.03.
    assert sum(days_flagged) <= 6


# ------------------------------------------------------------------------------------------- trusted labels


def _labeled(n: int, rng: np.random.Generator) -> pd.DataFrame:
    day = simulate_day(rng, n)
    source = rng.choice(["ground_truth", "human_action", None], size=n, p=[0.2, 0.6, 0.2])
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)], "system": "s", "model_version": "v1", "segment": "a",
        "status": np.where(rng.random(n) < 0.05, "error", "ok"), "confidence": day.confidence,
        "ai_output": day.prediction.astype(str), "label_source": source,
        "ai_correct": pd.array(np.where(source == None, None, day.correct), dtype="boolean"),  # noqa: E711
        "is_labeled": source != None, "complaint": rng.random(n) < 0.3,  # noqa: E711
    })


def test_trusted_labels_use_ground_truth_and_reviews_never_implicit_by_default():
    rng = np.random.default_rng(11)
    cases = _labeled(400, rng)
    reviews = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "inclusion_prob": [0.5, 0.25, 1.0],
                            "ai_correct": pd.array([True, False, None], dtype="boolean")})
    labels = trusted_labels(cases, reviews, EstimationConfig())
    assert "implicit" not in set(labels["source"])
    ok = cases["status"] == "ok"
    truth = ok & (cases["label_source"] == "ground_truth") & ~cases["event_id"].isin(["e1", "e2"])
    assert (labels["source"] == "ground_truth").sum() == truth.sum()
    reviewed = labels[labels["source"] == "reviewed"].set_index("event_id")
    expected = {e: w for e, w in {"e1": 2.0, "e2": 4.0}.items() if ok[int(e[1:])]}
    assert reviewed["weight"].to_dict() == expected  # 1 / inclusion_prob; the unanswered e3 is left out
    assert not reviewed["correct"].get("e2", False)
    with_implicit = trusted_labels(cases, None, EstimationConfig(allow_implicit=True))
    assert (with_implicit["source"] == "implicit").sum() == (ok & (cases["label_source"] == "human_action")).sum()


def test_ground_truth_cells_weight_by_the_inverse_share_of_their_cell():
    rng = np.random.default_rng(12)
    cases = _labeled(600, rng)
    labels = trusted_labels(cases, None, EstimationConfig(ground_truth_cells=["complaint"])).set_index("event_id")
    truth = cases["label_source"] == "ground_truth"
    for flag in (True, False):
        cell = cases["complaint"] == flag
        expected = cell.sum() / (cell & truth).sum()
        ids = cases.loc[cell & truth & (cases["status"] == "ok"), "event_id"]
        np.testing.assert_allclose(labels.loc[ids, "weight"], expected)
    # Without cells the day is one cell: N / n, on the same scale as a review's 1 / inclusion_prob.
    plain = trusted_labels(cases, None, EstimationConfig()).set_index("event_id")
    np.testing.assert_allclose(plain["weight"], len(cases) / truth.sum())
