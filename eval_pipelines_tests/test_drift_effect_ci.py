"""Effect-size confidence intervals: closed forms, seeded coverage, and the severity rule that uses them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.drift.monitors import Monitor
from eval_pipelines.drift.report import compare_frames
from eval_pipelines.drift.settings import DriftConfig
from eval_pipelines.drift.stats import (
    EcdfBand,
    absolute_interval,
    calibration_rms_interval,
    compare_band,
    newcombe_difference,
)

COVERAGE_LOW, COVERAGE_HIGH = 0.90, 0.99  # 99.9 % binomial range of a 95 % interval's coverage over 200 runs


@pytest.mark.parametrize(("ref", "cur", "expected"), [
    ((48, 80), (56, 70), (0.0524, 0.3339)),  # Newcombe (1998), Table II, example (a), method 10
    ((0, 29), (5, 56), (-0.0381, 0.1926)),  # example (d)
    ((0, 10), (0, 20), (-0.2775, 0.1611)),  # example (e), as current minus reference
])
def test_newcombe_difference_matches_the_published_examples(ref, cur, expected) -> None:
    low, high = newcombe_difference(*ref, *cur)
    assert (round(low, 4), round(high, 4)) == expected


def test_absolute_interval_of_a_signed_interval() -> None:
    assert absolute_interval(0.02, 0.05) == (0.02, 0.05)
    assert absolute_interval(-0.05, -0.02) == (0.02, 0.05)
    assert absolute_interval(-0.01, 0.03) == (0.0, 0.03)


@pytest.mark.parametrize("knots", [2048, None])
def test_wasserstein_interval_covers_the_true_distance(knots: int | None) -> None:
    # N(0, 1) vs N(0.3, 1): W1 = 0.3 exactly; a compressed reference band (2,048 knots) and an exact one
    rng = np.random.default_rng(15)
    covered = 0
    runs = 200 if knots else 60  # exact bands of 14,000 distinct values are slower; still within the bounds
    for _ in range(runs):
        band = EcdfBand.from_sorted(np.sort(rng.normal(0.0, 1.0, 14_000)), knots)
        result = compare_band(band, np.sort(rng.normal(0.3, 1.0, 2_000)))
        half = 1.96 * result.wasserstein_se + result.wasserstein_max_error
        covered += abs(result.wasserstein - 0.3) <= half
    assert COVERAGE_LOW <= covered / runs <= (1.0 if knots is None else COVERAGE_HIGH)


def test_share_change_interval_covers_and_is_reported_with_the_result() -> None:
    rng = np.random.default_rng(16)
    monitors = [Monitor("x", "categorical", "x")]
    covered = 0
    for _ in range(100):
        reference = rng.choice(list("abc"), 14_000, p=[0.5, 0.3, 0.2])
        current = rng.choice(list("abc"), 2_000, p=[0.45, 0.33, 0.22])  # largest change: 'a' -5 pt
        result = compare_frames(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), monitors,
                                DriftConfig(), with_plots=False).results[0]
        assert result.effect_ci_low <= result.effect_size <= result.effect_ci_high
        covered += result.effect_ci_low <= 0.05 <= result.effect_ci_high
    assert 0.88 <= covered / 100 <= 1.0
    record = result.record("2026-01-01")
    assert {"effect_ci_low", "effect_ci_high"} <= set(record) and "95% CI" in result.reason


def test_calibration_rms_interval_covers_a_uniform_shift() -> None:
    rng = np.random.default_rng(17)
    bins = 10
    edges = np.linspace(0.0, 1.0, bins + 1)
    grid = [np.linspace(edges[b], edges[b + 1], 1001) for b in range(bins)]
    true_shift = np.array([np.mean(np.clip(x - 0.08, 0, 1)) - np.mean(x) for x in grid])
    covered = 0
    for _ in range(200):
        conf_ref, conf_cur = rng.uniform(size=7_000), rng.uniform(size=1_000)
        right_ref = rng.uniform(size=7_000) < conf_ref
        right_cur = rng.uniform(size=1_000) < np.clip(conf_cur - 0.08, 0, 1)  # 8 points less accurate
        bin_ref = np.minimum((conf_ref * bins).astype(int), bins - 1)
        bin_cur = np.minimum((conf_cur * bins).astype(int), bins - 1)
        n_ref, n_cur = np.bincount(bin_ref, minlength=bins), np.bincount(bin_cur, minlength=bins)
        k_ref = np.bincount(bin_ref, weights=right_ref, minlength=bins)
        k_cur = np.bincount(bin_cur, weights=right_cur, minlength=bins)
        truth = np.sqrt(np.sum(n_cur / n_cur.sum() * true_shift**2))
        low, high = calibration_rms_interval(k_ref, n_ref, k_cur, n_cur)
        covered += low <= truth <= high
    assert COVERAGE_LOW <= covered / 200 <= COVERAGE_HIGH


def test_an_effect_at_the_major_threshold_is_not_a_coin_flip_between_minor_and_major() -> None:
    # A true 5-point share change (exactly the categorical major threshold): by its point estimate it was
    # "major" on about half of the days; now major needs the CI's lower bound at 5 pt, so it is minor nearly
    # always, while a clear 12-point change is major every time.
    rng = np.random.default_rng(18)
    monitors = [Monitor("x", "categorical", "x")]
    config = DriftConfig()

    def severity(shift: float) -> str:
        reference = rng.choice(list("ab"), 14_000, p=[0.5, 0.5])
        current = rng.choice(list("ab"), 2_000, p=[0.5 - shift, 0.5 + shift])
        return compare_frames(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), monitors, config,
                              with_plots=False).results[0].severity

    at_threshold = [severity(0.05) for _ in range(100)]
    assert at_threshold.count("major") <= 8 and at_threshold.count("minor") >= 85
    assert all(severity(0.12) == "major" for _ in range(20))
