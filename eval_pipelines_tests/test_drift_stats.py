"""The drift statistics equal scipy's on raw arrays (KS, Wasserstein, chi-square, Jensen–Shannon, BH) on fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from eval_pipelines.drift import stats
from eval_pipelines.multiplicity import benjamini_hochberg

RNG = np.random.default_rng(20260311)

# (reference, current): continuous, heavy ties, unequal sizes on both sides of scipy's exact/asymptotic switch.
KS_FIXTURES = {
    "tiny": (np.array([0.1, 0.4, 0.4, 0.9, 1.3]), np.array([0.2, 0.4, 1.0, 1.1])),
    "identical": (np.arange(50.0), np.arange(50.0)),
    "disjoint": (np.arange(30.0), np.arange(30.0) + 100),
    "continuous_equal_n": (RNG.normal(size=800), RNG.normal(0.2, 1.0, size=800)),
    "continuous_unequal_n": (RNG.normal(size=3000), RNG.normal(0.05, 1.1, size=7001)),
    "ties": (RNG.poisson(3.0, 4000).astype(float), RNG.poisson(3.2, 2500).astype(float)),
    "asymptotic": (RNG.lognormal(0, 1, 20_000), RNG.lognormal(0.02, 1, 15_000)),
    "asymptotic_ties": (np.round(RNG.normal(size=30_000), 1), np.round(RNG.normal(0.01, 1, 12_000), 1)),
}


@pytest.mark.parametrize("name", list(KS_FIXTURES))
def test_ks_2samp_equals_scipy(name: str) -> None:
    reference, current = KS_FIXTURES[name]
    ours = stats.ks_2samp(reference, current)
    theirs = sps.ks_2samp(reference, current)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


def test_ks_is_symmetric_and_drops_non_finite() -> None:
    reference, current = KS_FIXTURES["ties"]
    assert stats.ks_2samp(reference, current).statistic == pytest.approx(stats.ks_2samp(current, reference).statistic)
    noisy = np.r_[reference, np.nan, np.inf, -np.inf]
    assert stats.ks_2samp(noisy, current) == stats.ks_2samp(reference, current)


@pytest.mark.parametrize("name", list(KS_FIXTURES))
def test_wasserstein_equals_scipy(name: str) -> None:
    reference, current = KS_FIXTURES[name]
    assert stats.wasserstein_distance(reference, current) == pytest.approx(
        sps.wasserstein_distance(reference, current), rel=1e-10, abs=1e-12)


def test_ks_pvalue_regimes_match_scipy_methods() -> None:
    """Exact lattice counting up to 10,000 rows a side, Smirnov's kstwo above: as ks_2samp(method='auto')."""
    small = sps.ks_2samp(np.arange(9000.0), np.arange(7000.0) + 400, method="exact")
    assert stats.ks_pvalue(small.statistic, 9000, 7000) == pytest.approx(small.pvalue, rel=1e-9)
    big = sps.ks_2samp(np.arange(12_000.0), np.arange(9000.0) + 100, method="asymp")
    assert stats.ks_pvalue(big.statistic, 12_000, 9000) == pytest.approx(big.pvalue, rel=1e-9)
    assert np.isnan(stats.ks_pvalue(0.1, 0, 10))


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        ([120, 340, 90, 450], [100, 360, 110, 400]),
        ([5000, 3000, 2000], [4800, 3300, 1900]),
        ([10, 12], [15, 9]),
        ([900, 40, 61, 7000, 55], [1000, 35, 80, 6500, 60]),
    ],
)
def test_chi2_without_pooling_equals_chi2_contingency(reference: list[int], current: list[int]) -> None:
    ours = stats.chi2_homogeneity(np.array(reference), np.array(current), min_expected=5.0)
    theirs = sps.chi2_contingency(np.array([reference, current]), correction=False)
    assert len(ours.pooled) == 0
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9)
    assert ours.dof == theirs.dof


def test_chi2_pools_rare_categories_into_one_group() -> None:
    reference = np.array([5000, 3000, 14, 12, 13, 0, 1500])
    current = np.array([900, 700, 1, 0, 6, 2, 300])
    ours = stats.chi2_homogeneity(reference, current, min_expected=5.0)
    # smaller expected count of a category = its total * 1909 / 11448: below 5 for the four rare ones (15, 12, 19,
    # 2 rows), 9.7 for their pool, which is therefore tested as one category
    assert sorted(ours.pooled.tolist()) == [2, 3, 4, 5]
    pooled = np.array([[5000, 3000, 1500, 39], [900, 700, 300, 9]])
    theirs = sps.chi2_contingency(pooled, correction=False)
    np.testing.assert_array_equal(ours.table, pooled)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9)
    assert ours.dof == 3


def test_chi2_merges_a_still_rare_pool_into_the_smallest_category() -> None:
    reference = np.array([1000, 800, 1, 1])
    current = np.array([100, 90, 0, 1])
    ours = stats.chi2_homogeneity(reference, current, min_expected=5.0)
    merged = np.array([[1000, 802], [100, 91]])
    assert ours.statistic == pytest.approx(sps.chi2_contingency(merged, correction=False).statistic)
    assert ours.dof == 1


def test_chi2_degenerate_tables() -> None:
    assert stats.chi2_homogeneity(np.array([10, 0]), np.array([0, 0])).pvalue == 1.0
    assert stats.chi2_homogeneity(np.array([50]), np.array([40])).dof == 0


def test_two_proportion_chi2_is_the_squared_z_test() -> None:
    statistic, pvalue = stats.two_proportion_chi2(300, 10_000, 420, 9_000)
    theirs = sps.chi2_contingency(np.array([[300, 9_700], [420, 8_580]]), correction=False)
    assert statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert pvalue == pytest.approx(theirs.pvalue, rel=1e-9)


def test_stratified_proportions_is_the_sum_of_per_bin_tests() -> None:
    k_ref, n_ref = np.array([30, 120, 400, 0, 50]), np.array([100, 200, 500, 0, 50])
    k_cur, n_cur = np.array([20, 90, 300, 5, 40]), np.array([80, 180, 420, 10, 40])
    statistic, pvalue, dof = stats.stratified_proportions_chi2(k_ref, n_ref, k_cur, n_cur)
    expected = sum(
        sps.chi2_contingency(np.array([[k_ref[i], n_ref[i] - k_ref[i]], [k_cur[i], n_cur[i] - k_cur[i]]]),
                             correction=False).statistic
        for i in range(3)  # bin 3 is empty in the reference, bin 4 all correct on both sides: no information
    )
    assert dof == 3
    assert statistic == pytest.approx(expected, rel=1e-12)
    assert pvalue == pytest.approx(sps.chi2.sf(expected, 3), rel=1e-9)


@pytest.mark.parametrize("size", [2, 6, 40])
def test_jensen_shannon_equals_scipy(size: int) -> None:
    p, q = RNG.random(size), RNG.random(size)
    q[0] = 0.0  # a category absent on one side
    assert stats.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert stats.jensen_shannon(p, p) == pytest.approx(0.0, abs=1e-7)
    assert stats.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_psi_closed_form() -> None:
    reference, current = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.3, 0.3])
    expected = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.3 - 0.2) * np.log(0.3 / 0.2)
    assert stats.psi(reference, current) == pytest.approx(expected)
    assert stats.psi(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert np.isfinite(stats.psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])))


def test_benjamini_hochberg_equals_scipy_and_keeps_nan() -> None:
    pvalues = np.r_[RNG.random(30) ** 4, 0.0, 1.0]
    np.testing.assert_allclose(benjamini_hochberg(pvalues), sps.false_discovery_control(pvalues), rtol=1e-12)
    with_nan = np.array([0.01, np.nan, 0.04, 0.03])
    adjusted = benjamini_hochberg(with_nan)
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2, 3]], sps.false_discovery_control([0.01, 0.04, 0.03]))
    assert np.isnan(benjamini_hochberg(np.array([np.nan]))).all()


def test_empty_samples_give_nan_not_errors() -> None:
    assert np.isnan(stats.ks_2samp(np.array([]), np.array([1.0, 2.0])).statistic)
    assert np.isnan(stats.wasserstein_distance(np.array([1.0]), np.array([np.nan])))


def test_every_public_ecdf_band_method_is_used_by_the_package() -> None:
    """No dead code in the band: a public method that only tests call belongs in the tests."""
    import inspect
    import re
    from pathlib import Path

    package = Path(stats.__file__).resolve().parent.parent
    source = "\n".join(path.read_text(encoding="utf-8") for path in package.rglob("*.py"))
    public = [name for name, value in vars(stats.EcdfBand).items()
              if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property | classmethod))]
    assert "estimate" in public and "quantile" in public
    unused = [name for name in public if not re.search(rf"\.{name}\b", source)]
    assert unused == []
