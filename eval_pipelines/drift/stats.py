"""Two-sample drift statistics: one function per statistic, each equal to its scipy counterpart on raw arrays.

Why not call scipy directly everywhere? Because a day's report compares the day with a *stored profile* of the
reference window, not with the raw reference (see :mod:`eval_pipelines.drift.profile`). The numeric statistics are
therefore written against an :class:`EcdfBand` (what the profile knows about the reference ECDF: exact counts at
its knots, bounds in between). A band built from raw data with every distinct value as a knot has zero width, and
then the statistics are exactly scipy's (``ks_2samp``, ``wasserstein_distance``); a compressed band gives a KS
statistic that is never above the exact one (so false alarms are not inflated) and a Wasserstein distance within
a bound the band itself reports. Everything is vectorised; there is no loop over rows.

References
----------
* Kolmogorov–Smirnov two-sample test: Hodges, J. L. (1958), "The significance probability of the Smirnov
  two-sample test", Arkiv för Matematik 3; scipy.stats.ks_2samp (exact for n <= 10,000, else Smirnov's limit).
* Wasserstein-1 distance between ECDFs: Ramdas, Garcia, Cuturi (2017), "On Wasserstein two-sample testing and
  related families of nonparametric tests", Entropy 19(2); scipy.stats.wasserstein_distance.
* Pearson chi-square test of homogeneity, with Cochran's rule (expected counts >= 5): Cochran, W. G. (1954),
  "Some methods for strengthening the common χ² tests", Biometrics 10(4).
* Jensen–Shannon distance: Endres & Schindelin (2003), "A new metric for probability distributions", IEEE Trans.
  Inf. Theory 49(7); scipy.spatial.distance.jensenshannon.
* Population stability index: Siddiqi, N. (2006), "Credit Risk Scorecards", Wiley (0.1 / 0.25 rules of thumb).
* Benjamini, Y. & Hochberg, Y. (1995), "Controlling the false discovery rate", JRSS B 57(1);
  scipy.stats.false_discovery_control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

# scipy.stats is imported inside the few functions that use it: at module level it added 0.4 s to loading the
# code location, which every run process does.
KS_EXACT_MAX_N = 10_000  # scipy's method="auto": exact p-values up to this many rows per side
PSI_EPSILON = 1e-4  # share given to an empty bin in PSI, so the logarithm stays finite


# ----------------------------------------------------------------------------------------------------------------
# ECDF bands
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EcdfBand:
    """What is known about a sample's ECDF, as integer counts at sorted knots.

    At knot ``x[k]``: ``le_lo[k] <= #(v <= x[k]) <= le_hi[k]`` and ``lt_lo[k] <= #(v < x[k]) <= lt_hi[k]``.
    Between knots, ``x[k] < z < x[k+1]``, the count ``#(v <= z)`` lies in ``[le_lo[k], lt_hi[k+1]]``. The first and
    last knots are the sample's minimum and maximum, so below the first the count is 0 and from the last on it is
    ``n``. Built from raw values with every distinct value a knot, every bound is exact and the band has zero width.
    """

    knots: np.ndarray
    le_lo: np.ndarray
    le_hi: np.ndarray
    lt_lo: np.ndarray
    lt_hi: np.ndarray
    n: int

    @classmethod
    def empty(cls) -> EcdfBand:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0), none, none, none, none, 0)

    @classmethod
    def from_sorted(cls, values: np.ndarray, max_knots: int | None = None) -> EcdfBand:
        """The band of sorted, finite ``values``: exact when the distinct values fit in ``max_knots`` (or it is None).

        Otherwise the knots are ``max_knots`` evenly spaced order statistics (always the minimum and the maximum),
        with exact counts at each, so between two knots at most about ``n / max_knots`` values are unaccounted for.
        """
        values = np.asarray(values, dtype=np.float64)
        n = len(values)
        if n == 0:
            return cls.empty()
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        if max_knots is None or len(starts) <= max_knots:
            knots = values[starts]
            lt = starts.astype(np.int64)
            le = np.r_[starts[1:], n].astype(np.int64)
        else:
            ranks = np.round(np.linspace(0, n - 1, max(2, max_knots))).astype(np.int64)
            picked = values[ranks]
            knots = picked[np.r_[True, picked[1:] != picked[:-1]]]
            lt = np.searchsorted(values, knots, "left").astype(np.int64)
            le = np.searchsorted(values, knots, "right").astype(np.int64)
        return cls(knots, le, le.copy(), lt, lt.copy(), n)

    @property
    def exact(self) -> bool:
        """True when the ECDF is known everywhere (zero-width band)."""
        return bool(np.array_equal(self.le_lo, self.le_hi) and np.array_equal(self.lt_lo, self.lt_hi)
                    and np.array_equal(self.lt_hi[1:], self.le_lo[:-1]))

    def _interval_width(self) -> np.ndarray:
        return (self.lt_hi[1:] - self.le_lo[:-1]).astype(np.float64)

    def max_width(self) -> float:
        """Largest uncertainty of the ECDF anywhere, as a share of ``n`` (0 for an exact band)."""
        if self.n == 0 or len(self.knots) == 0:
            return 0.0
        widths = np.r_[self.le_hi - self.le_lo, self.lt_hi - self.lt_lo, self._interval_width()]
        return float(widths.max()) / self.n

    def area_width(self) -> float:
        """∫ (band width) dx / n: the most any ECDF estimate inside the band can be off in Wasserstein terms."""
        if self.n == 0 or len(self.knots) < 2:
            return 0.0
        return float(np.sum(self._interval_width() * np.diff(self.knots))) / self.n

    def _mids(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.le_lo + self.le_hi) / 2.0, (self.lt_lo + self.lt_hi) / 2.0

    def _interpolate(self, z: np.ndarray, k: np.ndarray, le_mid: np.ndarray, lt_mid: np.ndarray) -> np.ndarray:
        """Linear estimate on the open interval (x[k], x[k+1]) from le_mid[k] to lt_mid[k+1]."""
        last = len(self.knots) - 1
        k0 = np.clip(k, 0, last)
        k1 = np.minimum(k0 + 1, last)
        x0, x1 = self.knots[k0], self.knots[k1]
        span = np.where(x1 > x0, x1 - x0, 1.0)
        return le_mid[k0] + (lt_mid[k1] - le_mid[k0]) * np.clip((z - x0) / span, 0.0, 1.0)

    def estimate(self, z: np.ndarray) -> np.ndarray:
        """An estimate of #(v <= z) inside the band: exact at knots, linear between them."""
        z = np.asarray(z, dtype=np.float64)
        if self.n == 0:
            return np.zeros_like(z)
        le_mid, lt_mid = self._mids()
        last = len(self.knots) - 1
        k = np.searchsorted(self.knots, z, "right") - 1
        kc = np.clip(k, 0, last)
        at_knot = (k >= 0) & (self.knots[kc] == z)
        inside = (k >= 0) & (k < last) & ~at_knot
        return np.where(k < 0, 0.0, np.where(at_knot, le_mid[kc], np.where(
            inside, self._interpolate(z, k, le_mid, lt_mid), float(self.n))))

    def quantile(self, probabilities: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`estimate`: the smallest z with estimated #(v <= z) >= p·n (inverted-CDF quantile)."""
        p = np.atleast_1d(np.asarray(probabilities, dtype=np.float64))
        if self.n == 0:
            return np.full(p.shape, np.nan)
        le_mid, lt_mid = self._mids()
        target = np.clip(p, 0.0, 1.0) * self.n
        k = np.minimum(np.searchsorted(le_mid, target, "left"), len(self.knots) - 1)  # first knot reaching target
        k_prev = np.maximum(k - 1, 0)
        inside = (k > 0) & (lt_mid[k] > target)  # the target is crossed before the knot, on the open interval
        rise = np.where(lt_mid[k] > le_mid[k_prev], lt_mid[k] - le_mid[k_prev], 1.0)
        fraction = np.clip((target - le_mid[k_prev]) / rise, 0.0, 1.0)
        between = self.knots[k_prev] + fraction * (self.knots[k] - self.knots[k_prev])
        return np.where(inside, between, self.knots[k])


@dataclass(frozen=True)
class BandComparison:
    """KS and Wasserstein-1 between a band's sample and a current sample, with their approximation bounds."""

    ks: float  # sup |F_ref - F_cur|, never above the exact statistic
    ks_max_error: float  # exact KS lies in [ks, ks + ks_max_error]
    wasserstein: float  # ∫ |F_ref - F_cur| dx with F_ref estimated inside the band
    wasserstein_max_error: float  # |exact W1 - wasserstein| <= this
    wasserstein_se: float = float("nan")  # delta-method standard error of the W1 estimate (see compare_band)


def compare_band(band: EcdfBand, current_sorted: np.ndarray) -> BandComparison:
    """KS statistic and W1 distance between the band's sample and sorted, finite ``current_sorted``.

    Both ECDFs are right-continuous step functions, so on the merged sorted points (every current value and every
    knot) each piece ``[p_i, p_{i+1})`` has a constant current ECDF, a constant band between knots, and a linear
    reference estimate. KS is the largest distance from the current ECDF to the band: since the true reference ECDF
    lies in the band, ``ks <= KS_exact <= ks + band.max_width()``, so the p-value is never smaller than the exact
    one. W1 integrates |estimate − current| exactly piece by piece (splitting a piece where the difference changes
    sign) and is within ``band.area_width()`` of the exact W1. For an exact band both equal scipy's.
    One pass of vectorised gathers over the merged points; no per-row Python.
    """
    m = len(current_sorted)
    if band.n == 0 or m == 0:
        return BandComparison(float("nan"), 0.0, float("nan"), 0.0)
    n = float(band.n)
    knots = band.knots
    points = np.sort(np.concatenate([current_sorted, knots]), kind="stable")  # a merge of two sorted runs
    # A knot sits after the current values equal to it (stable merge), at the last position of its value.
    knot_at = np.searchsorted(points, knots, "right") - 1
    knot_first = np.searchsorted(points, knots, "left")
    knot_current = np.searchsorted(current_sorted, knots, "right")  # #(current <= knot)
    is_current = np.ones(len(points), dtype=bool)
    is_current[knot_at] = False
    current_cdf = np.empty(len(points))
    current_cdf[is_current] = _counts_at_or_below(current_sorted)
    current_cdf[knot_at] = knot_current
    current_cdf /= m
    slot = np.searchsorted(knots, points, "right")  # = k + 1 for the last knot k <= point; 0 below the minimum

    # KS. Per-slot tables (slot 0: below the minimum; slot K: at or above the maximum) avoid clipping. Between
    # knots the band is [le_lo[k], lt_hi[k+1]]; at a knot it is the narrower [le_lo[k], le_hi[k]], evaluated on
    # the knots themselves (current values equal to a knot have the knot's current ECDF).
    lower = np.r_[0.0, band.le_lo / n][slot]
    lower -= current_cdf
    upper = np.r_[band.lt_hi / n, 1.0][slot]
    np.subtract(current_cdf, upper, out=upper)
    at_knots = np.maximum(band.le_lo / n - knot_current / m, knot_current / m - band.le_hi / n)
    ks = max(0.0, float(lower.max()), float(upper.max()), float(at_knots.max()))
    del lower, upper

    # Wasserstein: the reference estimate is linear from le_mid[k] at x[k] to lt_mid[k+1] at x[k+1].
    le_mid = (band.le_lo + band.le_hi) / (2.0 * n)
    lt_mid = (band.lt_lo + band.lt_hi) / (2.0 * n)
    base = np.r_[0.0, le_mid]
    span = np.r_[1.0, np.diff(knots), 1.0]
    slope = np.where(span > 0, (np.r_[lt_mid, 1.0] - base) / np.where(span > 0, span, 1.0), 0.0)
    slope[0] = slope[-1] = 0.0
    intercept = base - slope * np.r_[knots[0], knots]
    estimate = slope[slot]
    estimate *= points
    estimate += intercept[slot]  # right-continuous value at every point
    start = estimate[:-1] - current_cdf[:-1]
    end = estimate[1:] - current_cdf[:-1]
    # the left limit differs from the value only at a knot (the reference's jump): fix the pieces ending there
    ends_at_knot = knot_first[knot_first > 0]
    end[ends_at_knot - 1] = lt_mid[knot_first > 0] - current_cdf[ends_at_knot - 1]
    width = np.diff(points)
    magnitude = np.abs(start)
    magnitude += np.abs(end)
    area = 0.5 * float(np.dot(width, magnitude))
    crossing = np.flatnonzero((start * end < 0) & (magnitude > 0))  # the sign changes inside these pieces
    if len(crossing):
        a, b, w, total = start[crossing], end[crossing], width[crossing], magnitude[crossing]
        area += float(np.sum(w * (a * a + b * b) / (2 * total) - w * total / 2))
    se = _wasserstein_se(start, end, width, crossing, is_current, knot_at, knot_first, le_mid, lt_mid, band.n, m)
    return BandComparison(ks, band.max_width(), area, band.area_width(), se)


def _wasserstein_se(start: np.ndarray, end: np.ndarray, width: np.ndarray, crossing: np.ndarray,
                    is_current: np.ndarray, knot_at: np.ndarray, knot_first: np.ndarray, le_mid: np.ndarray,
                    lt_mid: np.ndarray, n: int, m: int) -> float:
    """Standard error of W1 = ∫ |F_ref − F_cur| dx from its influence function (the delta method).

    With s(x) = sign(F_ref(x) − F_cur(x)), a value v of the current sample moves W1 by −h(v)/m and a reference
    value by +h(v)/n, where h(v) = ∫_{x ≥ v} s(x) dx; so Var(Ŵ) ≈ Var_cur(h)/m + Var_ref(h)/n. Valid when the
    distributions differ (the set where they are equal has measure zero): that is when a CI of a drift's size is
    needed. At no drift Ŵ sits on the boundary 0 and the interval means little. h is a suffix sum of the sign
    integral of each piece (``crossing``: the pieces where the difference changes sign, which contribute their
    two parts). Reference values between two knots of a compressed band are given the mean of h at the two knots.
    """
    if len(width) == 0:
        return 0.0
    signed = start + end
    np.sign(signed, out=signed)
    if len(crossing):
        a, b = start[crossing], end[crossing]
        before = np.abs(a) / (np.abs(a) + np.abs(b))
        signed[crossing] = before * np.sign(a) + (1 - before) * np.sign(b)
    signed *= width
    # h at every merged point, the integral from it to the end: the total minus the prefix sums
    h = np.empty(len(width) + 1)
    h[0] = 0.0
    np.cumsum(signed, out=h[1:])
    np.subtract(h[-1], h, out=h)
    del signed
    current_h = h[is_current]
    variance_current = float(np.var(current_h)) if m > 1 else 0.0
    at_knots = le_mid - lt_mid  # reference shares at each knot ...
    between = lt_mid[1:] - le_mid[:-1]  # ... and strictly between consecutive knots
    values = np.r_[h[knot_at], (h[knot_at[:-1]] + h[knot_first[1:]]) / 2.0]
    weights = np.clip(np.r_[at_knots, between], 0.0, None)
    total = weights.sum()
    if total <= 0 or n < 2:
        variance_reference = 0.0
    else:
        mean = float(np.dot(weights, values) / total)
        variance_reference = float(np.dot(weights, (values - mean) ** 2) / total)
    return math.sqrt(variance_current / m + variance_reference / n)


def _counts_at_or_below(sorted_values: np.ndarray) -> np.ndarray:
    """For each value of a sorted array, how many values are <= it (the end of its run of ties)."""
    m = len(sorted_values)
    ends = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    if len(ends) == m - 1:
        return np.arange(1, m + 1, dtype=np.float64)
    ends = np.r_[ends, m]
    return np.repeat(ends.astype(np.float64), np.diff(np.r_[0, ends]))


def ks_band(band: EcdfBand, current_sorted: np.ndarray) -> tuple[float, float]:
    """(KS statistic, its maximum error) of :func:`compare_band`."""
    result = compare_band(band, current_sorted)
    return result.ks, result.ks_max_error


def wasserstein_band(band: EcdfBand, current_sorted: np.ndarray) -> tuple[float, float]:
    """(W1 distance, its maximum error) of :func:`compare_band`."""
    result = compare_band(band, current_sorted)
    return result.wasserstein, result.wasserstein_max_error


# ----------------------------------------------------------------------------------------------------------------
# Raw-array statistics (scipy-equal)
# ----------------------------------------------------------------------------------------------------------------


def _finite_sorted(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.sort(values[np.isfinite(values)])


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Two-sided p-value of the two-sample KS statistic, as scipy's ``ks_2samp(method="auto")`` computes it.

    Exact (Hodges' lattice-path counting) when both samples have at most 10,000 rows, otherwise Smirnov's
    distribution ``kstwo`` at the effective size ``n1·n2/(n1+n2)``.
    """
    from scipy import stats as sps

    if n1 <= 0 or n2 <= 0 or not np.isfinite(statistic):
        return float("nan")
    if max(n1, n2) <= KS_EXACT_MAX_N:
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp
        except ImportError:  # a future scipy moved it: the asymptotic value below is still valid
            pass
        else:
            ok, _, probability = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), float(statistic), "two-sided")
            if ok:
                return float(np.clip(probability, 0.0, 1.0))
    big, small = sorted((float(n1), float(n2)), reverse=True)
    effective = big * small / (big + small)
    return float(np.clip(sps.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))


@dataclass(frozen=True)
class KsResult:
    statistic: float
    pvalue: float


def ks_2samp(reference: np.ndarray, current: np.ndarray) -> KsResult:
    """Two-sample KS test on raw arrays (non-finite values dropped); equals ``scipy.stats.ks_2samp``."""
    ref, cur = _finite_sorted(reference), _finite_sorted(current)
    statistic, _ = ks_band(EcdfBand.from_sorted(ref), cur)
    return KsResult(statistic, ks_pvalue(statistic, len(ref), len(cur)))


def wasserstein_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """W1 distance on raw arrays (non-finite values dropped); equals ``scipy.stats.wasserstein_distance``."""
    distance, _ = wasserstein_band(EcdfBand.from_sorted(_finite_sorted(reference)), _finite_sorted(current))
    return distance


@dataclass(frozen=True)
class Chi2Result:
    """Pearson chi-square test of homogeneity on a 2 x k table after pooling rare categories."""

    statistic: float
    pvalue: float
    dof: int
    table: np.ndarray  # 2 x k counts actually tested (pooled group last, when any)
    pooled: np.ndarray  # indices of the input categories pooled into one group


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray, min_expected: float = 5.0) -> Chi2Result:
    """Do two samples share one categorical distribution? Categories expected below ``min_expected`` are pooled.

    ``reference`` and ``current`` are aligned counts per category. Pooling follows Cochran's rule: a category
    whose smaller expected count (over the two rows) is below ``min_expected`` joins one "rare" group; if that
    group is itself still below the rule, it is merged into the smallest remaining category. Without pooling the
    statistic equals ``scipy.stats.chi2_contingency(table, correction=False)`` (Pearson, no Yates correction,
    which over-corrects and only applies to 2 x 2 tables).
    """
    from scipy import stats as sps

    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    index = np.flatnonzero((a + b) > 0)
    a, b = a[index], b[index]
    total_a, total_b = a.sum(), b.sum()
    total = total_a + total_b
    empty = np.zeros(0, dtype=np.int64)
    if total_a == 0 or total_b == 0 or len(a) < 2:
        return Chi2Result(0.0, 1.0, 0, np.vstack([a, b]), empty)
    smaller_row = min(total_a, total_b)
    rare = (a + b) * smaller_row / total < min_expected
    pooled = index[rare]
    if rare.any():
        keep_a, keep_b = a[~rare], b[~rare]
        group_a, group_b = a[rare].sum(), b[rare].sum()
        if (group_a + group_b) * smaller_row / total < min_expected and len(keep_a) > 0:
            smallest = int(np.argmin(keep_a + keep_b))
            keep_a[smallest] += group_a
            keep_b[smallest] += group_b
        else:
            keep_a, keep_b = np.r_[keep_a, group_a], np.r_[keep_b, group_b]
        a, b = keep_a, keep_b
    table = np.vstack([a, b])
    if table.shape[1] < 2:
        return Chi2Result(0.0, 1.0, 0, table, pooled)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return Chi2Result(statistic, float(sps.chi2.sf(statistic, dof)), dof, table, pooled)


@dataclass(frozen=True)
class DiscreteTable:
    """Value counts of a discrete numeric column on both sides, over the sorted union of their values."""

    values: np.ndarray
    reference: np.ndarray
    current: np.ndarray


def discrete_table(band: EcdfBand, current_sorted: np.ndarray, max_values: int) -> DiscreteTable | None:
    """The value counts of an exact reference band and the current values, or None when the column is not discrete.

    Discrete means: the reference ECDF is known exactly (every distinct value a knot, so its value counts are exact)
    and the reference and current samples together take at most ``max_values`` distinct values. Why this rule: KS
    assumes a continuous distribution; with heavy ties its p-value is far too large (Poisson(3): 0 % of null
    p-values at or below 5 %), so a column of small integers could never drift, and a test of the value counts is
    exact in what it assumes. Above ``max_values`` distinct values the atoms are small and KS is close to nominal
    (about 4 % at 5 % for 75-100 integer values), while a chi-square would spread its power over too many cells.
    """
    if band.n == 0 or len(current_sorted) == 0 or not band.exact:
        return None
    starts = np.flatnonzero(np.r_[True, current_sorted[1:] != current_sorted[:-1]])
    current_values = current_sorted[starts]
    values = np.union1d(band.knots, current_values)
    if len(values) > max_values:
        return None
    reference = np.zeros(len(values), dtype=np.int64)
    reference[np.searchsorted(values, band.knots)] = band.le_lo - band.lt_lo
    current = np.zeros(len(values), dtype=np.int64)
    current[np.searchsorted(values, current_values)] = np.diff(np.r_[starts, len(current_sorted)])
    return DiscreteTable(values, reference, current)


def chi2_ordered(reference: np.ndarray, current: np.ndarray, min_expected: float = 5.0) -> Chi2Result:
    """Pearson chi-square of homogeneity on ordered cells (the values of a discrete column), sparse cells pooled
    with their neighbours.

    Cells are swept in value order and joined until the group's smaller expected count (over the two rows) reaches
    ``min_expected`` (Cochran's rule); a short remainder at the top joins the last group. Pooling neighbours keeps
    the order (a tail of rare large values stays a tail) and depends only on the column totals, which are
    ancillary under the null, so the test keeps its level. ``pooled`` lists the input cells that were joined with
    another. Without pooling the statistic equals ``scipy.stats.chi2_contingency(table, correction=False)``.
    """
    from scipy import stats as sps

    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    total_a, total_b = a.sum(), b.sum()
    empty = np.zeros(0, dtype=np.int64)
    if total_a == 0 or total_b == 0:
        return Chi2Result(0.0, 1.0, 0, np.vstack([a, b]), empty)
    expected = (a + b) * min(total_a, total_b) / (total_a + total_b)
    groups: list[list[int]] = []
    current_group: list[int] = []
    accumulated = 0.0
    for index, value in enumerate(expected):
        current_group.append(index)
        accumulated += value
        if accumulated >= min_expected:
            groups.append(current_group)
            current_group, accumulated = [], 0.0
    if current_group:
        if groups:
            groups[-1] += current_group
        else:
            groups.append(current_group)
    table = np.array([[a[g].sum() for g in groups], [b[g].sum() for g in groups]])
    pooled = np.array([i for g in groups if len(g) > 1 for i in g], dtype=np.int64)
    if table.shape[1] < 2:
        return Chi2Result(0.0, 1.0, 0, table, pooled)
    expected_table = np.outer(table.sum(axis=1), table.sum(axis=0)) / (total_a + total_b)
    statistic = float(((table - expected_table) ** 2 / expected_table).sum())
    dof = table.shape[1] - 1
    return Chi2Result(statistic, float(sps.chi2.sf(statistic, dof)), dof, table, pooled)


def two_proportion_chi2(k_ref: int, n_ref: int, k_cur: int, n_cur: int) -> tuple[float, float]:
    """Pearson chi-square (1 dof) for "same proportion k/n in both samples"; the square of the two-proportion z."""
    result = chi2_homogeneity(np.array([k_ref, n_ref - k_ref]), np.array([k_cur, n_cur - k_cur]), min_expected=0.0)
    return result.statistic, result.pvalue


def stratified_proportions_chi2(k_ref: np.ndarray, n_ref: np.ndarray, k_cur: np.ndarray,
                                n_cur: np.ndarray) -> tuple[float, float, int]:
    """Same proportion in every stratum? Sum of per-stratum 2 x 2 Pearson statistics; returns (stat, p, dof).

    Used for calibration drift: strata are confidence bins, the proportion is accuracy. A stratum contributes one
    degree of freedom unless it is empty on a side or its pooled proportion is 0 or 1 (no information).
    """
    from scipy import stats as sps

    k1, n1 = np.asarray(k_ref, dtype=np.float64), np.asarray(n_ref, dtype=np.float64)
    k2, n2 = np.asarray(k_cur, dtype=np.float64), np.asarray(n_cur, dtype=np.float64)
    pooled = (k1 + k2) / np.where(n1 + n2 > 0, n1 + n2, 1.0)
    informative = (n1 > 0) & (n2 > 0) & (pooled > 0) & (pooled < 1)
    if not informative.any():
        return 0.0, 1.0, 0
    k1, n1, k2, n2, pooled = k1[informative], n1[informative], k2[informative], n2[informative], pooled[informative]
    difference = k1 / n1 - k2 / n2
    statistic = float(np.sum(difference**2 / (pooled * (1 - pooled) * (1 / n1 + 1 / n2))))
    dof = int(informative.sum())
    return statistic, float(sps.chi2.sf(statistic, dof)), dof


@dataclass(frozen=True)
class CalibrationShift:
    """Accuracy at equal confidence, current minus reference, summarised over confidence bins (weights: the
    current share of each bin). ``rms`` is the effect size; the others are reported alongside."""

    signed: float  # Σ w_b d_b: net shift; over- and under-confidence in different bins cancel here
    mean_abs: float  # Σ w_b |d_b|: biased upwards by sampling noise (≈ 0.8 standard errors per bin at no drift)
    mean_square: float  # Σ w_b (d_b² − v̂_b): unbiased for Σ w_b δ_b², may be negative by noise
    rms: float  # sqrt(max(mean_square, 0)): in accuracy points, equal to |δ| for a uniform shift δ
    smallest: float  # min_b d_b
    largest: float  # max_b d_b


def calibration_shift(k_ref: np.ndarray, n_ref: np.ndarray, k_cur: np.ndarray, n_cur: np.ndarray,
                      ) -> CalibrationShift:
    """How far accuracy moved at equal confidence, from correct / labelled counts per confidence bin.

    Why not the signed mean Σ w_b d_b: when accuracy flattens (over-confident high bins, under-confident low ones)
    the per-bin shifts cancel and a model gone from calibrated to a coin flip looks unchanged. Why not the mean of
    |d_b|: sampling noise alone makes it several points on a day of a few hundred labelled rows. The root mean
    square with the noise removed does neither: each bin's d_b² is corrected by the unbiased variance estimate
    v̂_b = p̂_ref(1 − p̂_ref)/(n_ref − 1) + p̂_cur(1 − p̂_cur)/(n_cur − 1) (E[p̂(1 − p̂)] = p(1 − p)(n − 1)/n), so
    E[d_b² − v̂_b] = δ_b² exactly. Bins must be non-empty on both sides.
    """
    k1, n1 = np.asarray(k_ref, dtype=np.float64), np.asarray(n_ref, dtype=np.float64)
    k2, n2 = np.asarray(k_cur, dtype=np.float64), np.asarray(n_cur, dtype=np.float64)
    if len(n1) == 0 or (n1 <= 0).any() or (n2 <= 0).any():
        raise ValueError("every bin needs labelled rows on both sides")
    p1, p2 = k1 / n1, k2 / n2
    difference = p2 - p1
    weights = n2 / n2.sum()
    variance = p1 * (1 - p1) / np.maximum(n1 - 1, 1) + p2 * (1 - p2) / np.maximum(n2 - 1, 1)
    mean_square = float(np.sum(weights * (difference**2 - variance)))
    return CalibrationShift(
        signed=float(np.sum(weights * difference)), mean_abs=float(np.sum(weights * np.abs(difference))),
        mean_square=mean_square, rms=math.sqrt(max(mean_square, 0.0)),
        smallest=float(difference.min()), largest=float(difference.max()),
    )


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]); equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    divergence = (special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum()) / np.log(2.0)
    return float(np.sqrt(max(divergence, 0.0) / 2.0))


def psi(reference_share: np.ndarray, current_share: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index Σ (c − r)·ln(c / r) over bins; shares below ``epsilon`` are raised to it."""
    r = np.maximum(np.asarray(reference_share, dtype=np.float64), epsilon)
    c = np.maximum(np.asarray(current_share, dtype=np.float64), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


# ----------------------------------------------------------------------------------------------------------------
# Confidence intervals of effect sizes (severity is judged on them; see docs/drift.md "Severity")
# ----------------------------------------------------------------------------------------------------------------


def normal_quantile(level: float) -> float:
    """z with P(|Z| <= z) = level."""
    return float(special.ndtri(0.5 + level / 2.0))


def newcombe_difference(k_ref: float, n_ref: float, k_cur: float, n_cur: float,
                        level: float = 0.95) -> tuple[float, float]:
    """CI of p_cur − p_ref for two independent proportions: Newcombe's hybrid score interval (1998, method 10).

    Built from the two Wilson intervals, so it stays inside [−1, 1] and keeps close to its level at shares near
    0 or 1 (a category's share, a missing share), where the Wald interval under-covers.
    """
    from eval_pipelines.intervals import wilson_interval

    if n_ref <= 0 or n_cur <= 0:
        return float("nan"), float("nan")
    p1, p2 = k_ref / n_ref, k_cur / n_cur
    l1, u1 = (float(v) for v in wilson_interval(k_ref, n_ref, level))
    l2, u2 = (float(v) for v in wilson_interval(k_cur, n_cur, level))
    difference = p2 - p1
    return (difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def absolute_interval(low: float, high: float) -> tuple[float, float]:
    """The CI of |d| implied by a CI [low, high] of d (an effect size is the magnitude of a signed change)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return float("nan"), float("nan")
    if low <= 0 <= high:
        return 0.0, max(-low, high)
    return min(abs(low), abs(high)), max(abs(low), abs(high))


def relative_shift_interval(now: float, se_now: float, before: float, se_before: float,
                            level: float = 0.95) -> tuple[float, float]:
    """CI of |now − before| / |before| (a relative mean or median shift), by the delta method on now / before.

    Var(now/|before|) ≈ se_now² / before² + now² · se_before² / before⁴ (independent samples); NaN when the
    reference value is 0 (the relative shift is then 0 or infinite).
    """
    if before == 0 or not all(math.isfinite(v) for v in (now, se_now, before, se_before)):
        return float("nan"), float("nan")
    shift = (now - before) / abs(before)
    se = math.sqrt(se_now**2 / before**2 + now**2 * se_before**2 / before**4)
    z = normal_quantile(level)
    return absolute_interval(shift - z * se, shift + z * se)


def median_rank_interval(size: int, level: float = 0.95) -> tuple[float, float]:
    """Probabilities whose quantiles bound the median at ``level``, distribution-free (binomial order statistics,
    normal approximation): 1/2 ∓ z / (2 √n)."""
    half = normal_quantile(level) / (2.0 * math.sqrt(size))
    return max(0.0, 0.5 - half), min(1.0, 0.5 + half)


def calibration_rms_interval(k_ref: np.ndarray, n_ref: np.ndarray, k_cur: np.ndarray, n_cur: np.ndarray,
                             level: float = 0.95) -> tuple[float, float]:
    """CI of the noise-corrected RMS accuracy shift of :func:`calibration_shift`.

    Its square M = Σ w_b (d_b² − v̂_b) has, per bin, Var(d_b²) ≈ 4 δ_b² v_b + 2 v_b² (d_b normal with mean δ_b and
    variance v_b), δ_b² estimated by max(d_b² − v̂_b, 0); so se(M) = √(Σ w_b² (4 δ̂_b² v̂_b + 2 v̂_b²)), the CI of M
    is M ± z·se(M) and that of the RMS its square root (clipped at 0). The weights (current bin shares) are
    taken as fixed.
    """
    k1, n1 = np.asarray(k_ref, dtype=np.float64), np.asarray(n_ref, dtype=np.float64)
    k2, n2 = np.asarray(k_cur, dtype=np.float64), np.asarray(n_cur, dtype=np.float64)
    p1, p2 = k1 / n1, k2 / n2
    difference = p2 - p1
    weights = n2 / n2.sum()
    variance = p1 * (1 - p1) / np.maximum(n1 - 1, 1) + p2 * (1 - p2) / np.maximum(n2 - 1, 1)
    mean_square = float(np.sum(weights * (difference**2 - variance)))
    delta_square = np.maximum(difference**2 - variance, 0.0)
    se = math.sqrt(float(np.sum(weights**2 * (4 * delta_square * variance + 2 * variance**2))))
    z = normal_quantile(level)
    return math.sqrt(max(mean_square - z * se, 0.0)), math.sqrt(max(mean_square + z * se, 0.0))
