"""Multiplicity adjustments shared by the release gate, the slice tables and the drift report (no dagster, no scipy).

Both are checked against their closed forms and ``scipy.stats.false_discovery_control`` in the tests; NaN entries are
left out of the family and stay NaN.
"""

from __future__ import annotations

import numpy as np


def holm_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, ``max_{j <= i} min(1, (k - j + 1) p_(j))`` in ascending order of
    ``p``: rejecting where the adjusted value is below α controls the family-wise error rate at α under any
    dependence. NaN entries are left out of the family and stay NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    if not len(finite):
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    k = len(order)
    scaled = np.minimum(1.0, (k - np.arange(k)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg (1995) adjusted p-values (q-values), equal to ``scipy.stats.false_discovery_control``:
    reporting the tests with q below α keeps the expected share of false discoveries among them at most α, under
    independence or positive dependence (overlapping slices are positively dependent). NaN stays NaN, uncounted."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if len(finite) == 0:
        return adjusted
    values = p[finite]
    order = np.argsort(values, kind="stable")
    m = len(values)
    scaled = values[order] * m / np.arange(1, m + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.clip(monotone, 0.0, 1.0)
    adjusted[finite] = result
    return adjusted
