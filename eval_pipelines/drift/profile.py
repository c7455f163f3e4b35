"""Reference profiles: the statistics of a reference window, computed once and stored, mergeable across days.

Why profiles: a day's report must not re-read the whole reference window. Every day gets a profile (the
``drift_profile`` asset), and a window's profile is the merge of its days' profiles, so a trailing 7-day window
reads seven small files, and a fixed baseline is merged once however long it is.

What a profile holds, per monitored column:

* **numeric**: the row and missing counts, mean and sum of squared deviations (merged exactly with Chan's
  parallel formula), and an :class:`~eval_pipelines.drift.stats.EcdfBand`: up to ``profile_knots`` knots with
  exact (or bounded) counts of values at or below each. A day whose distinct values fit in the knots is stored
  *exactly* (integers, rounded amounts, small days); otherwise the knots are evenly spaced order statistics.
* **categorical**: counts per category (exact), the most frequent ``max_categories`` kept and the rest pooled as
  ``other``; merged by addition over the categories known exactly on every merged day, the others folded into
  ``other`` (see :func:`merge_categorical`).
* **calibration**: labelled rows and correct rows per confidence bin (exact; merged by addition).

Exactness: categorical and calibration statistics, means and standard deviations are exact. KS and Wasserstein
against an exact band equal scipy's on the raw data. Against a compressed band (more distinct values than knots,
or several days merged and re-compressed), the KS statistic is the distance from the current ECDF to the band:
never above the exact statistic (the p-value is conservative, so compression cannot raise false alarms) and below
it by at most ``band.max_width()``, about 1/knots per compression. The Wasserstein distance uses an estimate inside
the band and is off by at most ``band.area_width()``; both bounds are reported in each result's details.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eval_pipelines.drift.stats import EcdfBand

PROFILE_COLUMNS: tuple[str, ...] = (
    "column", "kind", "rows", "n", "n_missing", "other", "mean", "m2", "knots", "le_lo", "le_hi", "lt_lo", "lt_hi",
    "categories", "counts", "edges", "correct", "days",
)  # fmt: skip


@dataclass(frozen=True)
class NumericProfile:
    band: EcdfBand
    n_missing: int
    mean: float
    m2: float  # sum of squared deviations from the mean

    @property
    def n(self) -> int:
        return self.band.n

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), the spread Wasserstein distances are normalised by."""
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")


@dataclass(frozen=True)
class CategoricalProfile:
    categories: tuple[str, ...]  # most frequent first
    counts: np.ndarray
    other: int  # rows in categories beyond the kept ones
    n_missing: int

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + self.other

    @property
    def truncated(self) -> bool:
        return self.other > 0


@dataclass(frozen=True)
class CalibrationProfile:
    edges: np.ndarray  # confidence bin edges, bins + 1
    rows: np.ndarray  # labelled rows per bin
    correct: np.ndarray  # of which the AI was right
    n_missing: int  # rows without a confidence or a verdict

    @property
    def n(self) -> int:
        return int(self.rows.sum())


ColumnProfile = NumericProfile | CategoricalProfile | CalibrationProfile


@dataclass(frozen=True)
class ProfileSet:
    """The profiles of one day or one window, keyed by ``(column, kind)``."""

    columns: dict[tuple[str, str], ColumnProfile]
    rows: int
    days: tuple[str, ...] = field(default=())

    def get(self, key: tuple[str, str]) -> ColumnProfile | None:
        return self.columns.get(key)


# ----------------------------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------------------------


def numeric_profile(values: np.ndarray, max_knots: int | None) -> NumericProfile:
    """Profile of float values (NaN = missing); exact when the distinct values fit in ``max_knots``."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    ordered = np.sort(finite)
    n = len(ordered)
    mean = float(ordered.mean()) if n else 0.0
    m2 = float(np.sum((ordered - mean) ** 2)) if n else 0.0
    return NumericProfile(EcdfBand.from_sorted(ordered, max_knots), len(values) - n, mean, m2)


def categorical_profile(categories: Sequence[str], counts: np.ndarray, n_missing: int,
                        max_categories: int) -> CategoricalProfile:
    """Profile from category counts (largest first); beyond ``max_categories`` the rest is pooled as ``other``."""
    counts = np.asarray(counts, dtype=np.int64)
    order = np.lexsort((np.array(list(categories), dtype=str), -counts)) if len(counts) else np.zeros(0, int)
    names = [categories[i] for i in order]
    counts = counts[order]
    other = int(counts[max_categories:].sum())
    return CategoricalProfile(tuple(names[:max_categories]), counts[:max_categories], other, int(n_missing))


def calibration_edges(bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, bins + 1)


def calibration_bins(confidence: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per confidence; the last bin is closed ([0.9, 1.0]) and out-of-range values are clipped."""
    return np.clip(np.searchsorted(edges, confidence, "right") - 1, 0, len(edges) - 2)


def calibration_profile(confidence: np.ndarray, correct: np.ndarray, n_missing: int,
                        bins: int) -> CalibrationProfile:
    edges = calibration_edges(bins)
    index = calibration_bins(confidence, edges)
    rows = np.bincount(index, minlength=bins).astype(np.int64)
    right = np.bincount(index, weights=correct, minlength=bins).round().astype(np.int64)
    return CalibrationProfile(edges, rows, right, int(n_missing))


# ----------------------------------------------------------------------------------------------------------------
# Merging
# ----------------------------------------------------------------------------------------------------------------


def compress_band(band: EcdfBand, max_knots: int) -> EcdfBand:
    """Keep at most ``max_knots`` knots, evenly spaced in count (first and last always kept); bounds stay valid."""
    count = len(band.knots)
    if count <= max_knots:
        return band
    le_mid = (band.le_lo + band.le_hi) / 2.0
    targets = np.linspace(0.0, band.n, max(2, max_knots))
    keep = np.unique(np.r_[0, np.clip(np.searchsorted(le_mid, targets, "left"), 0, count - 1), count - 1])
    return EcdfBand(band.knots[keep], band.le_lo[keep], band.le_hi[keep], band.lt_lo[keep], band.lt_hi[keep],
                    band.n)


def _select(below: np.ndarray, above: np.ndarray, at_knot: np.ndarray, n: int, at_value: np.ndarray,
            between: np.ndarray) -> np.ndarray:
    """0 below a band's minimum, n above its maximum, the knot's bound at a knot, the interval bound between."""
    return np.where(below, 0, np.where(above, n, np.where(at_knot, at_value, between)))


def merge_bands(bands: Sequence[EcdfBand], max_knots: int) -> EcdfBand:
    """The band of the union of the samples: knots are the union of knots, bounds the sums of each band's bounds.

    At a knot of one band that is not a knot of another, the other contributes its interval bounds, so the merged
    band is exact wherever every input is exact (e.g. days of integer values) and widens by each input's
    uncertainty elsewhere; the result is then compressed to ``max_knots``.
    """
    bands = [b for b in bands if b.n > 0]
    if not bands:
        return EcdfBand.empty()
    if len(bands) == 1:
        return compress_band(bands[0], max_knots)
    union = np.unique(np.concatenate([b.knots for b in bands]))
    sums = [np.zeros(len(union), dtype=np.int64) for _ in range(4)]
    for band in bands:
        last = len(band.knots) - 1
        k = np.searchsorted(band.knots, union, "right") - 1
        kc = np.clip(k, 0, last)
        below = k < 0
        at_knot = ~below & (band.knots[kc] == union)
        above = ~below & ~at_knot & (k >= last)
        nxt = np.minimum(kc + 1, last)

        where = (below, above, at_knot, band.n)
        sums[0] += _select(*where, band.le_lo[kc], band.le_lo[kc])
        sums[1] += _select(*where, band.le_hi[kc], band.lt_hi[nxt])
        sums[2] += _select(*where, band.lt_lo[kc], band.le_lo[kc])
        sums[3] += _select(*where, band.lt_hi[kc], band.lt_hi[nxt])
    merged = EcdfBand(union, sums[0], sums[1], sums[2], sums[3], sum(b.n for b in bands))
    return compress_band(merged, max_knots)


def merge_numeric(profiles: Sequence[NumericProfile], max_knots: int) -> NumericProfile:
    """Counts and moments exactly (Chan et al., 1979), the ECDF band as :func:`merge_bands`."""
    n, mean, m2, missing = 0, 0.0, 0.0, 0
    for profile in profiles:
        missing += profile.n_missing
        if profile.n == 0:
            continue
        total = n + profile.n
        delta = profile.mean - mean
        mean += delta * profile.n / total
        m2 += profile.m2 + delta * delta * n * profile.n / total
        n = total
    return NumericProfile(merge_bands([p.band for p in profiles], max_knots), missing, mean, m2)


def merge_categorical(profiles: Sequence[CategoricalProfile], max_categories: int) -> CategoricalProfile:
    """The profile of the union of the days: counts added for the categories known exactly on every day.

    A day's profile knows a category's count exactly when the category is among its kept ones, or when nothing
    was pooled that day (``other == 0``: an absent category had count 0). A category kept on some days but pooled
    into ``other`` on others has only part of its rows in its own count; adding those parts would understate its
    share while a current day, counted in full, states it completely, so a stable stream with a long tail (each
    day keeping a slightly different top ``max_categories``) would look drifted every day. Such a category is
    folded into ``other`` with all its counted rows, so the merged ``other`` is exactly "every category not kept"
    on the reference side too, and the report folds the same categories on the current side. Memory stays
    bounded by the kept categories of the inputs.
    """
    totals: dict[str, int] = {}
    other = missing = 0
    known: set[str] | None = None  # kept on every day that pooled a tail; None: no day pooled anything
    for profile in profiles:
        other += profile.other
        missing += profile.n_missing
        for name, count in zip(profile.categories, profile.counts.tolist(), strict=True):
            totals[name] = totals.get(name, 0) + count
        if profile.truncated:
            kept = set(profile.categories)
            known = kept if known is None else known & kept
    if known is not None:
        other += sum(count for name, count in totals.items() if name not in known)
        totals = {name: count for name, count in totals.items() if name in known}
    merged = categorical_profile(list(totals), np.array(list(totals.values()), dtype=np.int64), missing,
                                 max_categories)
    return CategoricalProfile(merged.categories, merged.counts, merged.other + other, missing)


def merge_calibration(profiles: Sequence[CalibrationProfile]) -> CalibrationProfile:
    edges = profiles[0].edges
    if any(not np.array_equal(p.edges, edges) for p in profiles):
        raise ValueError("calibration profiles with different confidence bins cannot be merged")
    return CalibrationProfile(edges, sum(p.rows for p in profiles), sum(p.correct for p in profiles),
                              sum(p.n_missing for p in profiles))


def merge_profiles(profiles: Sequence[ProfileSet], max_knots: int, max_categories: int,
                   exclude: Mapping[str, Collection[str]] | None = None) -> ProfileSet:
    """The profile of the union of the profiled days; a column is merged over the days that have it, except the
    days ``exclude`` lists for that column (column name -> days; every kind of the column)."""
    keys: dict[tuple[str, str], list[ColumnProfile]] = {}
    for profile in profiles:
        for key, column in profile.columns.items():
            if exclude and set(profile.days) & set(exclude.get(key[0], ())):
                continue
            keys.setdefault(key, []).append(column)
    merged: dict[tuple[str, str], ColumnProfile] = {}
    for key, parts in keys.items():
        if isinstance(parts[0], NumericProfile):
            merged[key] = merge_numeric(parts, max_knots)  # type: ignore[arg-type]
        elif isinstance(parts[0], CategoricalProfile):
            merged[key] = merge_categorical(parts, max_categories)  # type: ignore[arg-type]
        else:
            same_bins = [p for p in parts if np.array_equal(p.edges, parts[-1].edges)]  # type: ignore[union-attr]
            merged[key] = merge_calibration(same_bins)  # type: ignore[arg-type]
    days = tuple(sorted({day for profile in profiles for day in profile.days}))
    return ProfileSet(merged, sum(p.rows for p in profiles), days)


# ----------------------------------------------------------------------------------------------------------------
# Storage: one row per profiled column, list columns for the arrays (Parquet in the lake)
# ----------------------------------------------------------------------------------------------------------------


def profile_to_frame(profile: ProfileSet) -> pd.DataFrame:
    """The profile as a frame with one row per (column, kind); arrays become Parquet list columns."""
    rows = []
    for (column, kind), item in profile.columns.items():
        row: dict[str, object] = dict.fromkeys(PROFILE_COLUMNS)
        row.update(column=column, kind=kind, rows=profile.rows, n=item.n, n_missing=item.n_missing, other=0,
                   days=json.dumps(list(profile.days)))
        if isinstance(item, NumericProfile):
            band = item.band
            row.update(mean=item.mean, m2=item.m2, knots=band.knots.tolist(), le_lo=band.le_lo.tolist(),
                       le_hi=band.le_hi.tolist(), lt_lo=band.lt_lo.tolist(), lt_hi=band.lt_hi.tolist())
        elif isinstance(item, CategoricalProfile):
            row.update(other=item.other, categories=list(item.categories), counts=item.counts.tolist())
        else:
            row.update(edges=item.edges.tolist(), counts=item.rows.tolist(), correct=item.correct.tolist())
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
    for name in ("rows", "n", "n_missing", "other"):
        frame[name] = frame[name].astype(np.int64)
    for name in ("mean", "m2"):
        frame[name] = frame[name].astype(np.float64)
    return frame


def _ints(value: object) -> np.ndarray:
    return np.asarray(value if value is not None else [], dtype=np.int64)


def profile_from_frame(frame: pd.DataFrame) -> ProfileSet:
    """Inverse of :func:`profile_to_frame`."""
    columns: dict[tuple[str, str], ColumnProfile] = {}
    rows, days = 0, ()
    for record in frame.to_dict("records"):
        key = (str(record["column"]), str(record["kind"]))
        rows = int(record["rows"])
        days = tuple(json.loads(record["days"])) if record.get("days") else ()
        if key[1] == "numeric":
            band = EcdfBand(np.asarray(record["knots"], dtype=np.float64), _ints(record["le_lo"]),
                            _ints(record["le_hi"]), _ints(record["lt_lo"]), _ints(record["lt_hi"]), int(record["n"]))
            columns[key] = NumericProfile(band, int(record["n_missing"]), float(record["mean"]), float(record["m2"]))
        elif key[1] == "categorical":
            columns[key] = CategoricalProfile(tuple(str(c) for c in record["categories"]), _ints(record["counts"]),
                                              int(record["other"]), int(record["n_missing"]))
        else:
            columns[key] = CalibrationProfile(np.asarray(record["edges"], dtype=np.float64), _ints(record["counts"]),
                                              _ints(record["correct"]), int(record["n_missing"]))
    return ProfileSet(columns, rows, days)
