"""Seeded synthetic frames with a known drift (or none), for the false-positive simulations and the benchmark.

Fourteen columns shaped like production data: 8 numeric (normal, skewed, heavy-tailed, bounded, integer with ties,
bimodal, a rounded amount with missing values, a spike at a cap) and 6 categorical (2 to 200 categories, Zipf-like
tails with rare categories, missing values). Drift is injected exactly: ``mean_shift`` adds to a numeric column,
``share_shift`` moves probability mass from one category to another, so a test knows the true effect size.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

NUMERIC_COLUMNS: tuple[str, ...] = (
    "num_normal", "num_lognormal", "num_exponential", "num_uniform", "num_poisson", "num_student_t", "num_bimodal",
    "num_amount",
)  # fmt: skip
CATEGORICAL_SIZES: dict[str, int] = {
    "cat_binary": 2, "cat_tier": 3, "cat_channel": 6, "cat_label": 24, "cat_region": 50, "cat_code": 200,
}  # fmt: skip
CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(CATEGORICAL_SIZES)
NORMAL_MEAN, NORMAL_STD = 100.0, 15.0


def category_probabilities(column: str) -> np.ndarray:
    """The true category shares of a synthetic column (Zipf-like, so wide columns have rare categories)."""
    size = CATEGORICAL_SIZES[column]
    if column == "cat_binary":
        return np.array([0.9, 0.1])
    if column == "cat_tier":
        return np.array([0.15, 0.35, 0.5])
    weights = 1.0 / np.arange(1, size + 1) ** (0.6 if size <= 6 else 1.1)
    return weights / weights.sum()


def category_names(column: str) -> list[str]:
    return [f"{column[4:]}_{i:03d}" for i in range(CATEGORICAL_SIZES[column])]


def synthetic_frame(n: int, seed: int, mean_shift: Mapping[str, float] | None = None,
                    share_shift: Mapping[str, tuple[int, int, float]] | None = None,
                    categorical_dtype: str = "category") -> pd.DataFrame:
    """``n`` rows; ``share_shift[column] = (from_index, to_index, amount)`` moves ``amount`` of share.

    ``categorical_dtype`` is ``"category"`` (fast to build, what Parquet dictionaries load as) or ``"str"`` (the
    pandas default string dtype, what ``labeled_cases`` holds).
    """
    rng = np.random.default_rng(seed)
    mean_shift = dict(mean_shift or {})
    share_shift = dict(share_shift or {})
    columns: dict[str, object] = {}
    columns["num_normal"] = rng.normal(NORMAL_MEAN, NORMAL_STD, n)
    columns["num_lognormal"] = rng.lognormal(np.log(800.0), 0.35, n)
    columns["num_exponential"] = rng.exponential(30.0, n)
    columns["num_uniform"] = rng.random(n)
    columns["num_poisson"] = rng.poisson(4.0, n).astype(np.float64)
    columns["num_student_t"] = rng.standard_t(3, n)
    columns["num_bimodal"] = np.where(rng.random(n) < 0.3, rng.normal(-2.0, 0.5, n), rng.normal(3.0, 1.0, n))
    amount = np.round(rng.lognormal(3.0, 1.0, n), 2)
    columns["num_amount"] = np.where(rng.random(n) < 0.05, np.nan, np.minimum(amount, 500.0))
    for name, delta in mean_shift.items():
        columns[name] = np.asarray(columns[name]) + delta
    for name in CATEGORICAL_COLUMNS:
        probabilities = category_probabilities(name).copy()
        if name in share_shift:
            source, target, amount = share_shift[name]
            probabilities[source] -= amount
            probabilities[target] += amount
        cdf = np.cumsum(probabilities)
        codes = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), "right"), len(cdf) - 1)
        if name == "cat_code":
            codes = np.where(rng.random(n) < 0.02, -1, codes)
        values = pd.Categorical.from_codes(codes, categories=category_names(name))
        columns[name] = values if categorical_dtype == "category" else pd.Series(values).astype("str")
    return pd.DataFrame(columns)
