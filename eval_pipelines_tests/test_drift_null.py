"""Seeded null simulations of the drift tests: under a stable stream the p-values must be (close to) uniform.

Each simulation is small (about 200 repetitions on count vectors, well under a second) so it runs with the suite;
a rate within binomial noise of the nominal level is the pass criterion: with 200 repetitions at a 5 % level, 99.9 %
of runs of a valid test fall between 1 % and 10 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from eval_pipelines.drift.monitors import Monitor
from eval_pipelines.drift.profile import categorical_profile, merge_categorical
from eval_pipelines.drift.report import align_categories, compare_frames
from eval_pipelines.drift.settings import DriftConfig
from eval_pipelines.drift.stats import EcdfBand, chi2_homogeneity, chi2_ordered, discrete_table, ks_2samp

REPETITIONS = 200
LOW, HIGH = 0.01, 0.10  # 99.9 % binomial range of the rejection rate at 5 % over 200 repetitions


def _zipf(categories: int, exponent: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, categories + 1) ** exponent
    return weights / weights.sum()


def test_merged_categorical_profiles_of_a_stable_zipf_stream_give_uniform_p_values() -> None:
    # 300 categories, 30 kept per day: the kept set changes from day to day near the cut, which used to move
    # those categories' counts into "other" on some days only (old code: 28 % rejections at 5 %, 10 % at 1 %).
    names = [f"c{i:03d}" for i in range(300)]
    shares = _zipf(len(names))
    rng = np.random.default_rng(2026_12)
    pvalues = []
    for _ in range(REPETITIONS):
        days = [categorical_profile(names, rng.multinomial(2_000, shares), 0, max_categories=30) for _ in range(7)]
        reference = merge_categorical(days, max_categories=30)
        assert reference.n == 7 * 2_000  # nothing lost: the folded categories are in "other"
        _, ref_counts, cur_counts, _ = align_categories(reference, names, rng.multinomial(2_000, shares))
        pvalues.append(chi2_homogeneity(ref_counts, cur_counts).pvalue)
    pvalues = np.array(pvalues)
    assert LOW <= np.mean(pvalues <= 0.05) <= HIGH
    assert np.mean(pvalues <= 0.01) <= 0.04
    assert sps.kstest(pvalues, "uniform").pvalue > 0.001


# ----------------------------------------------------------------------------------------------------------------
# Discrete numeric columns: chi-square on the value counts instead of KS
# ----------------------------------------------------------------------------------------------------------------


def _numeric_report(reference: np.ndarray, current: np.ndarray):
    monitors = [Monitor("count", "numeric", "count")]
    return compare_frames(pd.DataFrame({"count": reference}), pd.DataFrame({"count": current}), monitors,
                          DriftConfig(), with_plots=False).results[0]


def test_discrete_table_counts_every_value_and_declines_continuous_or_compressed_columns() -> None:
    reference = np.sort(np.array([0, 0, 1, 3, 3, 3], dtype=float))
    table = discrete_table(EcdfBand.from_sorted(reference), np.array([1.0, 2.0, 2.0]), max_values=10)
    assert table is not None
    assert table.values.tolist() == [0, 1, 2, 3]
    assert table.reference.tolist() == [2, 1, 0, 3] and table.current.tolist() == [0, 1, 2, 0]
    assert discrete_table(EcdfBand.from_sorted(reference), np.array([1.0, 4.0]), max_values=3) is None  # 4 values
    compressed = EcdfBand.from_sorted(np.sort(np.random.default_rng(0).integers(0, 40, 1_000).astype(float)), 16)
    assert discrete_table(compressed, np.array([1.0]), max_values=100) is None  # counts between knots unknown


def test_chi2_ordered_equals_chi2_contingency_without_pooling_and_pools_neighbours() -> None:
    reference, current = np.array([30, 50, 40, 20]), np.array([20, 45, 60, 25])
    result = chi2_ordered(reference, current)
    expected = sps.chi2_contingency(np.vstack([reference, current]), correction=False)
    assert np.isclose(result.statistic, expected.statistic) and np.isclose(result.pvalue, expected.pvalue)
    # a sparse upper tail is joined to its neighbour, not to the sparse lower tail
    pooled = chi2_ordered(np.array([2, 50, 40, 3, 1]), np.array([1, 45, 60, 2, 2]))
    assert pooled.table.tolist() == [[52, 44], [46, 64]] and pooled.dof == 1
    assert pooled.pooled.tolist() == [0, 1, 2, 3, 4]


def test_discrete_columns_keep_the_level_where_ks_never_rejects() -> None:
    # Poisson(3) counts, 7 days of 2,000 rows against a day of 2,000: 13 distinct values. KS with these ties
    # rejected 0.5 % of nulls at 5 % and 0 % at 1 % (seeded, 200 runs); the value-count chi-square is at level.
    rng = np.random.default_rng(13)
    chi2_p, ks_p = [], []
    for _ in range(REPETITIONS):
        reference = np.sort(rng.poisson(3.0, 14_000).astype(float))
        current = np.sort(rng.poisson(3.0, 2_000).astype(float))
        table = discrete_table(EcdfBand.from_sorted(reference), current, max_values=50)
        assert table is not None
        chi2_p.append(chi2_ordered(table.reference, table.current).pvalue)
        ks_p.append(ks_2samp(reference, current).pvalue)
    chi2_p, ks_p = np.array(chi2_p), np.array(ks_p)
    assert LOW <= np.mean(chi2_p <= 0.05) <= HIGH
    assert np.mean(ks_p <= 0.05) < LOW  # what the report used before: far below its level


def test_discrete_columns_are_tested_on_value_counts_in_the_report_with_power() -> None:
    rng = np.random.default_rng(14)
    reference = rng.poisson(3.0, 14_000).astype(float)
    quiet = _numeric_report(reference, rng.poisson(3.0, 2_000).astype(float))
    assert quiet.test == "chi2_values" and quiet.details["discrete_values"] >= 10 and not quiet.drifted
    assert "ks_p_value" in quiet.details
    # power sanity: a mean shift 3 -> 3.2 (0.12 sd) on 2,000 rows is detected at least as often as by KS
    detected_chi2 = detected_ks = 0
    for _ in range(40):
        current = np.sort(rng.poisson(3.2, 2_000).astype(float))
        result = _numeric_report(reference, current)
        detected_chi2 += result.p_value <= 0.01
        detected_ks += result.details["ks_p_value"] <= 0.01
    assert detected_chi2 >= 0.75 * 40 and detected_chi2 >= detected_ks
    continuous = _numeric_report(rng.normal(size=14_000), rng.normal(size=2_000))
    assert continuous.test == "ks" and "discrete_values" not in continuous.details
