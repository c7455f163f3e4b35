"""Stored profiles: exact where promised, within their stated bounds elsewhere, mergeable across days, round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from eval_pipelines.drift.profile import (
    CategoricalProfile,
    ProfileSet,
    calibration_profile,
    categorical_profile,
    compress_band,
    merge_bands,
    merge_calibration,
    merge_categorical,
    merge_numeric,
    numeric_profile,
    profile_from_frame,
    profile_to_frame,
)
from eval_pipelines.drift.stats import EcdfBand, compare_band

RNG = np.random.default_rng(11)

SAMPLES = {
    "normal": lambda n: RNG.normal(100, 15, n),
    "lognormal_with_cap": lambda n: np.minimum(RNG.lognormal(6.7, 0.8, n), 30_000.0),
    "heavy_tailed": lambda n: RNG.standard_t(2, n),
    "bimodal": lambda n: np.where(RNG.random(n) < 0.3, RNG.normal(-2, 0.5, n), RNG.normal(3, 1, n)),
}


def _exact(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    return sps.ks_2samp(reference, current).statistic, sps.wasserstein_distance(reference, current)


def _assert_within_bounds(band: EcdfBand, reference: np.ndarray, current: np.ndarray) -> None:
    result = compare_band(band, np.sort(current))
    ks, wasserstein = _exact(reference, current)
    assert result.ks <= ks + 1e-12, "the profile KS statistic must never exceed the exact one"
    assert ks <= result.ks + result.ks_max_error + 1e-12
    assert abs(result.wasserstein - wasserstein) <= result.wasserstein_max_error + 1e-9


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("knots", [64, 512])
def test_compressed_band_statistics_stay_within_their_bounds(name: str, knots: int) -> None:
    reference = SAMPLES[name](20_000)
    current = SAMPLES[name](15_000) * 1.02 + 0.1
    band = EcdfBand.from_sorted(np.sort(reference), knots)
    assert len(band.knots) <= knots and not band.exact
    assert band.max_width() <= 1.5 / knots + 1e-12
    _assert_within_bounds(band, reference, current)


def test_exact_band_when_distinct_values_fit() -> None:
    reference = RNG.poisson(4.0, 50_000).astype(float)
    current = RNG.poisson(4.3, 30_000).astype(float)
    band = EcdfBand.from_sorted(np.sort(reference), 64)
    assert band.exact and band.max_width() == 0 and band.area_width() == 0
    result = compare_band(band, np.sort(current))
    ks, wasserstein = _exact(reference, current)
    assert result.ks == pytest.approx(ks, abs=1e-12)
    assert result.wasserstein == pytest.approx(wasserstein, rel=1e-10)


def test_quantiles_of_an_exact_band_are_inverted_cdf_quantiles() -> None:
    values = np.round(RNG.normal(size=999), 2)
    band = EcdfBand.from_sorted(np.sort(values))
    probabilities = np.array([0.0, 0.1, 0.25, 0.5, 0.9, 0.999, 1.0])
    np.testing.assert_allclose(band.quantile(probabilities),
                               np.quantile(values, probabilities, method="inverted_cdf"))


def test_merging_exact_days_is_exact() -> None:
    days = [np.round(RNG.exponential(20, n)) for n in (3000, 5000, 4000)]
    profiles = [numeric_profile(d, 2048) for d in days]
    merged = merge_numeric(profiles, 2048)
    union = np.concatenate(days)
    assert merged.band.exact
    direct = EcdfBand.from_sorted(np.sort(union))
    np.testing.assert_array_equal(merged.band.knots, direct.knots)
    np.testing.assert_array_equal(merged.band.le_lo, direct.le_lo)
    np.testing.assert_array_equal(merged.band.lt_hi, direct.lt_hi)
    assert merged.mean == pytest.approx(union.mean())
    assert merged.std == pytest.approx(union.std())


def count_bounds(band: EcdfBand, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on #(v <= z) for each z (right-continuous) that the band guarantees: what the tests check against."""
    z = np.asarray(z, dtype=np.float64)
    last = len(band.knots) - 1
    k = np.searchsorted(band.knots, z, "right") - 1
    kc = np.clip(k, 0, last)
    below = k < 0
    at_knot = ~below & (band.knots[kc] == z)
    above = ~below & ~at_knot & (k >= last)
    nxt = np.minimum(kc + 1, last)
    lo = np.where(below, 0, np.where(above, band.n, band.le_lo[kc]))
    hi = np.where(below, 0, np.where(above, band.n, np.where(at_knot, band.le_hi[kc], band.lt_hi[nxt])))
    return lo, hi


def test_merging_compressed_days_keeps_valid_bounds() -> None:
    days = [SAMPLES["lognormal_with_cap"](n) for n in (20_000, 35_000, 15_000, 30_000)]
    days.append(np.r_[days[0][:100], np.full(900, 30_000.0)])  # a day of mostly timeouts: a tie at the cap
    profiles = [numeric_profile(np.r_[d, [np.nan] * 7], 256) for d in days]
    merged = merge_numeric(profiles, 256)
    union = np.concatenate(days)
    assert merged.n == len(union) and merged.n_missing == 7 * len(days)
    assert len(merged.band.knots) <= 256
    assert merged.mean == pytest.approx(union.mean(), rel=1e-12)
    assert merged.std == pytest.approx(union.std(), rel=1e-9)
    # the band contains the true ECDF at every value of the union and at the knots
    probe = np.r_[np.sort(union)[::97], merged.band.knots]
    lo, hi = count_bounds(merged.band, probe)
    truth = np.searchsorted(np.sort(union), probe, "right")
    assert np.all(lo <= truth) and np.all(truth <= hi)
    assert merged.band.max_width() < 4 / 256
    _assert_within_bounds(merged.band, union, SAMPLES["lognormal_with_cap"](25_000) * 1.1)


def test_compress_band_is_a_no_op_below_the_budget() -> None:
    band = EcdfBand.from_sorted(np.sort(RNG.normal(size=100)))
    assert compress_band(band, 1000) is band
    assert merge_bands([EcdfBand.empty(), band], 1000).n == 100


def test_categorical_profiles_merge_by_addition_and_pool_the_tail() -> None:
    a = categorical_profile(["x", "y", "z"], np.array([50, 30, 5]), 2, max_categories=10)
    b = categorical_profile(["y", "w"], np.array([40, 1]), 3, max_categories=10)
    merged = merge_categorical([a, b], max_categories=10)
    assert dict(zip(merged.categories, merged.counts.tolist(), strict=True)) == {"x": 50, "y": 70, "z": 5, "w": 1}
    assert merged.categories[0] == "y" and merged.n_missing == 5 and not merged.truncated
    capped = merge_categorical([a, b], max_categories=2)
    assert capped.categories == ("y", "x") and capped.other == 6 and capped.n == 126


def test_a_category_pooled_on_some_days_is_folded_into_other_on_every_day() -> None:
    # 'z' is kept on day a and pooled on day b (b kept only x, y). Its 5 rows of a
    # cannot be added to b's unknown share of 'z', so they join "other"; 'x' and 'y' were kept on both days.
    a = categorical_profile(["x", "y", "z", "t"], np.array([50, 30, 5, 1]), 0, max_categories=3)
    b = categorical_profile(["x", "y", "z", "w"], np.array([40, 20, 2, 2]), 1, max_categories=2)
    merged = merge_categorical([a, b], max_categories=10)
    assert merged.categories == ("x", "y") and merged.counts.tolist() == [90, 50]
    assert merged.other == 1 + 5 + 4 and merged.n == a.n + b.n and merged.n_missing == 1
    # a day that pooled nothing knows every category exactly (absent means 0): it does not shrink the known set
    c = categorical_profile(["x", "z"], np.array([10, 3]), 0, max_categories=10)
    assert merge_categorical([a, c], max_categories=10).categories == ("x", "y", "z")


def test_calibration_profiles_merge_and_bin_edges() -> None:
    confidence = np.array([0.0, 0.05, 0.1, 0.55, 0.99, 1.0, 1.0])
    correct = np.array([0, 1, 1, 1, 0, 1, 1], dtype=float)
    profile = calibration_profile(confidence, correct, n_missing=3, bins=10)
    assert profile.rows.tolist() == [2, 1, 0, 0, 0, 1, 0, 0, 0, 3]  # 1.0 falls in the last, closed bin
    assert profile.correct.tolist() == [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    both = merge_calibration([profile, profile])
    assert both.rows.sum() == 14 and both.n_missing == 6
    with pytest.raises(ValueError, match="different confidence bins"):
        merge_calibration([profile, calibration_profile(confidence, correct, 0, bins=5)])


def test_profile_frame_round_trip_through_parquet(tmp_path) -> None:
    profile = ProfileSet(
        {
            ("latency_ms", "numeric"): numeric_profile(np.r_[RNG.lognormal(6, 1, 5000), np.nan], 128),
            ("status", "categorical"): categorical_profile(["ok", "timeout"], np.array([990, 10]), 0, 1000),
            ("language", "categorical"): CategoricalProfile(("en",), np.array([5], dtype=np.int64), 2, 1),
            ("confidence", "calibration"): calibration_profile(RNG.random(500), RNG.random(500) < 0.7, 4, 10),
        },
        rows=5001,
        days=("2026-03-01",),
    )
    path = tmp_path / "profile.parquet"
    profile_to_frame(profile).to_parquet(path)
    back = profile_from_frame(pd.read_parquet(path))
    assert back.rows == 5001 and back.days == ("2026-03-01",)
    assert set(back.columns) == set(profile.columns)
    for key, original in profile.columns.items():
        restored = back.columns[key]
        assert type(restored) is type(original) and restored.n == original.n
        assert restored.n_missing == original.n_missing
    numeric = back.columns[("latency_ms", "numeric")]
    np.testing.assert_array_equal(numeric.band.knots, profile.columns[("latency_ms", "numeric")].band.knots)
    assert numeric.mean == profile.columns[("latency_ms", "numeric")].mean
    assert back.columns[("language", "categorical")].other == 2
