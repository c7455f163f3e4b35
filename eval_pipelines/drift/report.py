"""The drift report: a day's cases against a reference profile, one verdict per monitored column.

A column drifts when two things hold (the issue's "sensitive to shifts that matter, silent on those that don't"):

1. **evidence**: its test's p-value, adjusted with Benjamini–Hochberg across every test of the report, is at most
   ``alpha``. This alone flags any shift on a million rows, however small;
2. **materiality**: its effect size reaches the ``minor`` threshold of its kind; it is a major drift when the
   lower bound of the effect's confidence interval reaches ``major``. This alone flags noise on small days.

| kind | test (statistic, p-value) | effect size (default minor / major) |
|---|---|---|
| numeric | two-sample KS (discrete columns: chi-square on value counts) | W1 / reference std (0.10 / 0.25) |
| categorical | chi-square of homogeneity, rare categories pooled | largest category share change (2 / 5 pt) |
| missing | chi-square 2 x 2 on the missing share | missing-share change (2 / 5 pt) |
| calibration | per-confidence-bin accuracy, summed 2 x 2 chi-square | accuracy shift at equal confidence (5 / 10 pt) |

PSI, Jensen–Shannon distance, means, medians, unseen categories and the approximation bounds of the profile are
reported in each result's ``details``. Every result carries a severity (none / minor / major) and a one-line
reason in words. Pure functions over frames and profiles; no dagster, no I/O.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from eval_pipelines.drift.monitors import (
    Monitor,
    available,
    calibration_values,
    categorical_counts,
    numeric_values,
)
from eval_pipelines.drift.profile import (
    CalibrationProfile,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    ProfileSet,
    calibration_bins,
    calibration_profile,
    categorical_profile,
    merge_profiles,
    numeric_profile,
)
from eval_pipelines.drift.settings import DriftConfig, ReferenceWindowConfig
from eval_pipelines.drift.stats import (
    BandComparison,
    absolute_interval,
    calibration_rms_interval,
    calibration_shift,
    chi2_homogeneity,
    chi2_ordered,
    compare_band,
    discrete_table,
    jensen_shannon,
    ks_pvalue,
    median_rank_interval,
    newcombe_difference,
    normal_quantile,
    psi,
    relative_shift_interval,
    stratified_proportions_chi2,
    two_proportion_chi2,
)
from eval_pipelines.multiplicity import benjamini_hochberg

RESULT_FIELDS: tuple[str, ...] = (
    "date", "column", "kind", "test", "statistic", "p_value", "p_adjusted", "effect_size", "effect_ci_low",
    "effect_ci_high", "threshold", "severity", "drifted", "reason",
)  # fmt: skip
"""The columns of the warehouse table ``drift_results`` (and of each JSON object the CLI prints)."""

SEVERITIES: tuple[str, ...] = ("none", "minor", "major")
NOT_ENOUGH_DATA = "not enough data"
PSI_BINS = 10
HISTOGRAM_BINS = 16
PLOT_CATEGORIES = 10
UNSEEN_NAMED = 5


# ----------------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftResult:
    """One row of a drift report (the ``drift_results`` fields) plus what renders it."""

    column: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    effect_size: float | None
    threshold: float
    severity: str
    drifted: bool
    reason: str
    group: str = "input"
    effect: str = ""
    major_threshold: float = float("nan")
    details: dict[str, Any] = field(default_factory=dict)
    plot: dict[str, Any] | None = None
    effect_ci_low: float | None = None  # confidence interval of effect_size at drift.effect_ci_level
    effect_ci_high: float | None = None

    @property
    def score(self) -> float | None:
        """Effect size in units of its materiality threshold (>= 1 is material), for timelines across kinds."""
        if self.effect_size is None:
            return None
        return self.effect_size / self.threshold

    def record(self, day: str | None = None) -> dict[str, Any]:
        """The ``drift_results`` fields; non-finite numbers become None (SQL NULL, JSON null)."""
        return {"date": day, "column": self.column, "kind": self.kind, "test": self.test,
                "statistic": _finite(self.statistic), "p_value": _finite(self.p_value),
                "p_adjusted": _finite(self.p_adjusted), "effect_size": _finite(self.effect_size),
                "effect_ci_low": _finite(self.effect_ci_low), "effect_ci_high": _finite(self.effect_ci_high),
                "threshold": self.threshold, "severity": self.severity, "drifted": self.drifted, "reason": self.reason}


@dataclass(frozen=True)
class DriftReport:
    results: list[DriftResult]
    reference_rows: int
    current_rows: int
    reference_days: tuple[str, ...] = ()
    alpha: float = 0.01
    notes: tuple[str, ...] = ()

    @property
    def drifted(self) -> list[DriftResult]:
        return [r for r in self.results if r.drifted]

    @property
    def major(self) -> list[DriftResult]:
        return [r for r in self.results if r.severity == "major"]

    @property
    def tested(self) -> list[DriftResult]:
        """The checks that had enough data to be judged (a p-value)."""
        return [r for r in self.results if r.p_value is not None]

    @property
    def verdict(self) -> str:
        """The report in a phrase: "no comparison" (no reference), "not enough data" (no check could be judged:
        an empty or tiny day never reads as "no drift"), "drift" or "no drift"."""
        if not self.results:
            return "no comparison"
        if not self.tested:
            return NOT_ENOUGH_DATA
        return "drift" if self.drifted else "no drift"

    def records(self, day: str | None = None) -> list[dict[str, Any]]:
        return [r.record(day) for r in self.results]

    def frame(self, day: str | None = None) -> pd.DataFrame:
        """Every result with the table fields plus group, effect name, major threshold and details (JSON)."""
        rows = [{**r.record(day), "group": r.group, "effect": r.effect, "major_threshold": r.major_threshold,
                 "details": json.dumps(_jsonable(r.details), ensure_ascii=False)} for r in self.results]
        columns = [*RESULT_FIELDS, "group", "effect", "major_threshold", "details"]
        frame = pd.DataFrame(rows, columns=columns)
        for name in ("statistic", "p_value", "p_adjusted", "effect_size", "effect_ci_low", "effect_ci_high",
                     "threshold", "major_threshold"):
            frame[name] = frame[name].astype("float64")
        frame["drifted"] = frame["drifted"].astype(bool)
        return frame

    def json_records(self, day: str | None = None) -> list[dict[str, Any]]:
        return [{**r.record(day), "details": _jsonable(r.details)} for r in self.results]


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


# ----------------------------------------------------------------------------------------------------------------
# Reference windows and profiles of frames
# ----------------------------------------------------------------------------------------------------------------


def reference_window(window: ReferenceWindowConfig, day: date) -> list[date]:
    """The days ``day`` is compared with, oldest first: the trailing N days before it, the same weekday of the
    ``weeks`` weeks before it, or the fixed baseline without ``day``.

    ``exclude_days`` are left out either way (an incident day in a trailing window would otherwise make the
    following days look drifted against it). Why same_weekday: a trailing week mixes weekdays and weekends, so a
    Monday is compared with a week whose Saturday and Sunday look different; D-7, D-14, ... are all Mondays.
    """
    if window.mode == "fixed":
        assert window.start is not None and window.end is not None
        days = [window.start + timedelta(days=i) for i in range((window.end - window.start).days + 1)]
        days = [d for d in days if d != day]
    elif window.mode == "same_weekday":
        days = [day - timedelta(weeks=i) for i in range(window.weeks, 0, -1)]
    else:
        days = [day - timedelta(days=i) for i in range(window.trailing_days, 0, -1)]
    excluded = set(window.exclude_days)
    return [d for d in days if d not in excluded]


def reference_span_days(window: ReferenceWindowConfig) -> int:
    """How many days before a day its reference can reach (0 for a fixed baseline): the window of a dependency."""
    if window.mode == "fixed":
        return 0
    return 7 * window.weeks if window.mode == "same_weekday" else window.trailing_days


def major_drift_exclusions(window: ReferenceWindowConfig, window_days: Sequence[str],
                           major: Mapping[str, Collection[str]]) -> dict[str, list[str]]:
    """Per column, the window days to leave out of its reference because they are a major drift in that column
    (``major``: column -> such days, from :func:`screen_major_drift`).

    Only while such days are at most ``exclude_major_drift_max_share`` of the window: a one-day incident is left
    out of the following days' references (so the return to normal is not called drift), while a lasting change
    (a launch) is flagged until it fills that share of the window and then becomes the new normal instead of
    being excluded for ever, as it would be if every flagged day were dropped.
    """
    if not window.exclude_major_drift or not window_days:
        return {}
    days = set(window_days)
    limit = window.exclude_major_drift_max_share * len(days)
    out: dict[str, list[str]] = {}
    for column, flagged_days in major.items():
        flagged = sorted(days & set(flagged_days))
        if flagged and len(flagged) <= limit:
            out[column] = flagged
    return out


def screen_major_drift(profiles: Sequence[ProfileSet], cases: Mapping[str, pd.DataFrame],
                       monitors: Sequence[Monitor], config: DriftConfig) -> dict[str, list[str]]:
    """Per column, the window days that are a major drift in that column against the rest of the window: what
    ``exclude_major_drift`` leaves out, decided from the window's own data alone (never from stored reports).

    ``profiles``: the window's day profiles (one day each); ``cases``: day -> that day's cases (a day without
    cases cannot be screened and is never excluded). Trimmed leave-one-out, in rounds: each screened day is
    compared (:func:`compare`, no plots) with the merge of the window's other days, each column without the days
    already excluded for it; per column, the day with the largest major effect (in threshold units; ties: the
    earlier day) is excluded; the next round compares again without it, so the days after an incident are judged
    against a reference without the incident, not flagged for its echo. Rounds stop when no column gains a day,
    and a column stops once it holds more days than ``exclude_major_drift_max_share`` of the window allows
    (:func:`major_drift_exclusions` then excludes nothing for it: a lasting change is the new normal).

    Why not the days' stored reports, as before: a report read the ``drift_results`` of earlier days, which exist
    only when those days ran first, and which themselves depended on their own earlier days; a backfill in
    reverse order or a re-run gave another report for the same day. This depends only on the window's data, so a
    day's report is the same whatever order the days are materialised in.
    """
    days = [p.days[0] for p in profiles if len(p.days) == 1]
    by_day = {p.days[0]: p for p in profiles if len(p.days) == 1}
    limit = config.reference.exclude_major_drift_max_share * len(days)
    excluded: dict[str, list[str]] = {}
    finished: set[str] = set()
    for _ in range(int(limit) + 1):
        best: dict[str, tuple[float, str]] = {}
        for day in days:
            if day not in cases:
                continue
            others = [by_day[d] for d in days if d != day]
            if not others:
                continue
            reference = merge_profiles(others, config.profile_knots, config.max_categories, excluded)
            report = compare(reference, cases[day], monitors, config, with_plots=False)
            for result in report.major:
                column = result.column
                if column in finished or day in excluded.get(column, ()):
                    continue
                score = float(result.score or 0.0)
                if column not in best or score > best[column][0] or (score == best[column][0]
                                                                      and day < best[column][1]):
                    best[column] = (score, day)
        if not best:
            break
        for column, (_, day) in best.items():
            excluded.setdefault(column, []).append(day)
            if len(excluded[column]) > limit:
                finished.add(column)
    return {column: sorted(found) for column, found in excluded.items()}


def window_label(days: Sequence[str]) -> str:
    """'2026-11-05 … 2026-11-11 (7 days)' for the days actually used."""
    if not days:
        return "no reference days"
    ordered = sorted(days)
    if len(ordered) == 1:
        return f"{ordered[0]} (1 day)"
    return f"{ordered[0]} … {ordered[-1]} ({len(ordered)} days)"


# ----------------------------------------------------------------------------------------------------------------
# Profiles of frames
# ----------------------------------------------------------------------------------------------------------------


def profile_frame(frame: pd.DataFrame, monitors: Sequence[Monitor], config: DriftConfig,
                  day: str | None = None) -> ProfileSet:
    """The profile of every monitor present in ``frame`` (see :mod:`eval_pipelines.drift.profile`)."""
    usable, _ = available(monitors, frame.columns)
    columns: dict[tuple[str, str], ColumnProfile] = {}
    for monitor in usable:
        if monitor.kind == "numeric":
            columns[monitor.key] = numeric_profile(numeric_values(frame, monitor), config.profile_knots)
        elif monitor.kind == "categorical":
            names, counts, missing = categorical_counts(frame, monitor)
            columns[monitor.key] = categorical_profile(names, counts, missing, config.max_categories)
        else:
            confidence, correct, missing = calibration_values(frame)
            columns[monitor.key] = calibration_profile(confidence, correct, missing, config.calibration.bins)
    return ProfileSet(columns, len(frame), (day,) if day else ())


def window_profile(profiles: Sequence[ProfileSet], config: DriftConfig,
                   exclude: Mapping[str, Collection[str]] | None = None) -> ProfileSet:
    """The reference profile of a window: its days' profiles merged, each column without its ``exclude`` days."""
    return merge_profiles(profiles, config.profile_knots, config.max_categories, exclude)


# ----------------------------------------------------------------------------------------------------------------
# Evidence per monitor
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Evidence:
    column: str
    kind: str
    group: str
    test: str
    effect: str
    minor: float
    major: float
    statistic: float | None = None
    p_value: float | None = None
    effect_size: float | None = None
    effect_ci: tuple[float, float] | None = None
    change: str = ""
    test_text: str = ""
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    plot: dict[str, Any] | None = None
    skipped: str | None = None
    too_few: bool = False  # skipped for too few rows: the reason says "not enough data"


def _thresholds(config: DriftConfig, column: str, kind: str) -> tuple[str, float, float]:
    """(effect name, minor, major) for a result row, per-column overrides first."""
    if kind == "numeric":
        effect, minor, major = config.numeric.effect, config.numeric.minor, config.numeric.major
    elif kind == "categorical":
        effect, minor, major = "share_change", config.categorical.minor, config.categorical.major
    elif kind == "missing":
        return "missing_share_change", config.missing.minor, config.missing.major
    else:
        return "accuracy_shift", config.calibration.minor, config.calibration.major
    override = config.columns.get(column)
    if override is not None:
        if kind == "numeric" and override.effect is not None:
            effect = override.effect
        minor = override.minor if override.minor is not None else minor
        major = override.major if override.major is not None else max(major, minor)
    return effect, minor, max(minor, major)


def _new(monitor: Monitor, kind: str, test: str, config: DriftConfig) -> _Evidence:
    effect, minor, major = _thresholds(config, monitor.column, kind)
    return _Evidence(monitor.column, kind, monitor.group, test, effect, minor, major)


def _number(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _share(value: float) -> str:
    return f"{value:.1%}"


def _missing_evidence(monitor: Monitor, ref_missing: int, ref_total: int, cur_missing: int, cur_total: int,
                      config: DriftConfig) -> _Evidence | None:
    """The missing-share row of a column; only when either side has missing values."""
    if ref_missing + cur_missing == 0:
        return None
    evidence = _new(monitor, "missing", "chi2", config)
    ref_share = ref_missing / ref_total if ref_total else float("nan")
    cur_share = cur_missing / cur_total if cur_total else float("nan")
    evidence.details = {"missing_ref": ref_missing, "rows_ref": ref_total, "missing_cur": cur_missing,
                        "rows_cur": cur_total, "share_ref": ref_share, "share_cur": cur_share}
    evidence.change = f"missing {_share(ref_share)} → {_share(cur_share)}"
    if min(ref_total, cur_total) < config.min_rows:
        evidence.skipped = f"{min(ref_total, cur_total):,} rows on one side (< min_rows {config.min_rows})"
        evidence.too_few = True
        return evidence
    statistic, p_value = two_proportion_chi2(ref_missing, ref_total, cur_missing, cur_total)
    evidence.statistic, evidence.p_value = statistic, p_value
    evidence.effect_size = abs(cur_share - ref_share)
    evidence.effect_ci = absolute_interval(*newcombe_difference(ref_missing, ref_total, cur_missing, cur_total,
                                                                config.effect_ci_level))
    evidence.test_text = f"χ²={statistic:.1f}"
    evidence.plot = {"labels": ["missing", "present"], "reference": [ref_share, 1 - ref_share],
                     "current": [cur_share, 1 - cur_share], "unit": "share"}
    return evidence


def _histogram(profile: NumericProfile, current: np.ndarray) -> dict[str, Any]:
    """Reference vs current shares on common bins over the central 98 % of both (tails in the end bins): equal
    widths for a roughly symmetric reference, the reference's quantiles for a skewed one."""
    m = len(current)
    low = min(float(profile.band.quantile(0.01)[0]), float(current[int(0.01 * (m - 1))]))
    high = max(float(profile.band.quantile(0.99)[0]), float(current[math.ceil(0.99 * (m - 1))]))
    if not high > low:
        low, high = min(profile.band.knots[0], current[0]), max(profile.band.knots[-1], current[-1])
    if not high > low:
        return {"labels": [_number(low)], "reference": [1.0], "current": [1.0], "unit": "share"}
    inner = np.linspace(low, high, HISTOGRAM_BINS + 1)[1:-1]
    # Skewed data (latency, cost, tenure) would put almost everything in the first equal-width bins: bins at the
    # reference's quantiles then give each bin about the same reference share, so a shift shows wherever it is.
    median = float(profile.band.quantile(0.5)[0])
    if not 0.25 <= (median - low) / (high - low) <= 0.75:
        quantiles = np.unique(np.asarray(profile.band.quantile(np.arange(1, HISTOGRAM_BINS) / HISTOGRAM_BINS),
                                         dtype="float64"))
        if len(quantiles) >= 2:
            inner = quantiles
    ref_cdf = np.r_[0.0, profile.band.estimate(inner) / profile.n, 1.0]
    cur_cdf = np.r_[0.0, np.searchsorted(current, inner, "right") / m, 1.0]
    labels = [f"≤ {_number(inner[0])}"] + [f"{_number(a)}–{_number(b)}" for a, b in
                                            itertools.pairwise(inner)] + [f"> {_number(inner[-1])}"]
    return {"labels": labels, "reference": np.diff(ref_cdf).tolist(), "current": np.diff(cur_cdf).tolist(),
            "unit": "share"}


def _numeric(monitor: Monitor, profile: NumericProfile, values: np.ndarray, config: DriftConfig,
             with_plots: bool) -> list[_Evidence]:
    finite = values[~np.isnan(values)]
    current = np.sort(finite)
    m = len(current)
    out = [e for e in [_missing_evidence(monitor, profile.n_missing, profile.n + profile.n_missing,
                                         len(values) - m, len(values), config)] if e]
    evidence = _new(monitor, "numeric", "ks", config)
    out.insert(0, evidence)
    if min(profile.n, m) < config.min_rows:
        evidence.skipped = f"{profile.n:,} reference / {m:,} current values (< min_rows {config.min_rows})"
        evidence.too_few = True
        return out
    band = compare_band(profile.band, current)
    statistic, ks_error, distance, w_error = band.ks, band.ks_max_error, band.wasserstein, band.wasserstein_max_error
    p_value = ks_pvalue(statistic, profile.n, m)
    evidence.test_text = f"KS D={statistic:.3f}"
    # Discrete columns (few distinct values, exactly profiled): KS with ties is far too conservative, so the
    # evidence is a chi-square on the value counts, neighbouring sparse values pooled (see stats.discrete_table).
    table = discrete_table(profile.band, current, config.numeric.discrete_max_values)
    discrete: dict[str, Any] = {}
    if table is not None:
        chi2 = chi2_ordered(table.reference, table.current, config.min_expected)
        discrete = {"discrete_values": len(table.values), "dof": chi2.dof, "ks_statistic": statistic,
                    "ks_p_value": p_value}
        evidence.test = "chi2_values"
        statistic, p_value = chi2.statistic, chi2.pvalue
        evidence.test_text = f"χ²={statistic:,.1f} on {len(table.values)} values ({chi2.dof} dof)"
    mean_ref, mean_cur = profile.mean, float(current.mean())
    median_ref = float(profile.band.quantile(0.5)[0])
    median_cur = float(current[max(0, math.ceil(0.5 * m) - 1)])
    spread = profile.std
    normalised = distance / spread if spread > 0 else (0.0 if distance == 0 else math.inf)

    def relative(now: float, before: float) -> float:
        return abs(now - before) / abs(before) if before != 0 else (0.0 if now == before else math.inf)

    effects = {"wasserstein": normalised, "relative_mean": relative(mean_cur, mean_ref),
               "relative_median": relative(median_cur, median_ref)}
    edges = np.unique(profile.band.quantile(np.arange(1, PSI_BINS) / PSI_BINS))
    ref_bins = np.diff(np.r_[0.0, profile.band.estimate(edges) / profile.n, 1.0])
    cur_bins = np.diff(np.r_[0.0, np.searchsorted(current, edges, "right") / m, 1.0])
    evidence.statistic, evidence.p_value = statistic, p_value
    evidence.effect_size = effects[evidence.effect]
    evidence.effect_ci = _numeric_effect_ci(evidence.effect, profile, current, band, config.effect_ci_level)
    evidence.change = f"mean {_number(mean_ref)} → {_number(mean_cur)}, median {_number(median_ref)} → " \
                      f"{_number(median_cur)}"
    evidence.details = {
        "n_ref": profile.n, "n_cur": m, "mean_ref": mean_ref, "mean_cur": mean_cur, "median_ref": median_ref,
        "median_cur": median_cur, "std_ref": spread, "std_cur": float(current.std()), "wasserstein": distance,
        "wasserstein_normalised": normalised, "relative_mean_shift": effects["relative_mean"],
        "relative_median_shift": effects["relative_median"], "psi": psi(ref_bins, cur_bins),
        "ks_statistic_max_error": ks_error,
        "wasserstein_normalised_max_error": (w_error / spread) if spread > 0 else w_error,
        "reference_exact": profile.band.exact, **discrete,
    }
    if with_plots:
        evidence.plot = _histogram(profile, current)
    return out


def align_categories(profile: CategoricalProfile, names: Sequence[str], counts: np.ndarray,
                     ) -> tuple[list[str], np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """The 2 x k table a categorical test runs on: (categories, reference counts, current counts, unseen).

    The profile's kept categories first; when the reference pooled a tail, "(other)" holds every category not kept
    on *both* sides (the current day is folded the same way, so the cell means the same thing on each side);
    otherwise current categories absent from the reference are their own cells (reference count 0) and listed
    as unseen with their counts.
    """
    categories = list(profile.categories)
    known = {name: i for i, name in enumerate(categories)}
    ref_counts = profile.counts.astype(np.float64)
    cur_counts = np.zeros(len(categories), dtype=np.float64)
    other_current = 0.0
    unseen: list[tuple[str, int]] = []
    for name, count in zip(names, np.asarray(counts).tolist(), strict=True):
        if name in known:
            cur_counts[known[name]] += count
        elif profile.truncated:
            other_current += count
        else:
            unseen.append((name, count))
    if profile.truncated or other_current:
        categories.append("(other)")
        ref_counts = np.r_[ref_counts, profile.other]
        cur_counts = np.r_[cur_counts, other_current]
    if unseen:
        categories += [name for name, _ in unseen]
        ref_counts = np.r_[ref_counts, np.zeros(len(unseen))]
        cur_counts = np.r_[cur_counts, [count for _, count in unseen]]
    return categories, ref_counts, cur_counts, unseen


def _numeric_effect_ci(effect: str, profile: NumericProfile, current: np.ndarray, band: BandComparison,
                       level: float) -> tuple[float, float]:
    """The CI of the numeric effect size (see docs/drift.md "Severity"): normalised W1 from its delta-method
    standard error widened by the band's approximation bound; relative shifts by the delta method on the ratio,
    with the median's standard error from its distribution-free order-statistic interval on each side."""
    z = normal_quantile(level)
    m = len(current)
    if effect == "wasserstein":
        spread = profile.std
        if not spread > 0 or not math.isfinite(band.wasserstein_se):
            return float("nan"), float("nan")
        half = z * band.wasserstein_se + band.wasserstein_max_error
        return max(0.0, band.wasserstein - half) / spread, (band.wasserstein + half) / spread
    if effect == "relative_mean":
        return relative_shift_interval(float(current.mean()), float(current.std(ddof=1)) / math.sqrt(m),
                                       profile.mean, profile.std / math.sqrt(profile.n), level)
    low_cur, high_cur = median_rank_interval(m, level)
    bounds_cur = current[[max(0, math.ceil(low_cur * m) - 1), min(m - 1, math.ceil(high_cur * m) - 1)]]
    low_ref, high_ref = median_rank_interval(profile.n, level)
    bounds_ref = profile.band.quantile(np.array([low_ref, high_ref]))
    median_cur = float(current[max(0, math.ceil(0.5 * m) - 1)])
    median_ref = float(profile.band.quantile(0.5)[0])
    return relative_shift_interval(median_cur, float(np.diff(bounds_cur)[0]) / (2 * z), median_ref,
                                   float(np.diff(bounds_ref)[0]) / (2 * z), level)


def _categorical(monitor: Monitor, profile: CategoricalProfile, names: list[str], counts: np.ndarray,
                 missing: int, config: DriftConfig, with_plots: bool) -> list[_Evidence]:
    m = int(counts.sum())
    out = [e for e in [_missing_evidence(monitor, profile.n_missing, profile.n + profile.n_missing, missing,
                                         m + missing, config)] if e]
    evidence = _new(monitor, "categorical", "chi2", config)
    out.insert(0, evidence)
    categories, ref_counts, cur_counts, unseen = align_categories(profile, names, counts)
    if unseen and m:
        named = ", ".join(f"'{name}' {_share(count / m)}" for name, count in unseen[:UNSEEN_NAMED])
        more = f" and {len(unseen) - UNSEEN_NAMED} more" if len(unseen) > UNSEEN_NAMED else ""
        evidence.notes.append(f"unseen: {named}{more}")
    n = profile.n
    evidence.details = {"n_ref": n, "n_cur": m, "categories_ref": len(profile.categories),
                        "reference_truncated": profile.truncated,
                        "unseen": [{"category": c, "count": k} for c, k in unseen]}
    if min(n, m) < config.min_rows:
        evidence.skipped = f"{n:,} reference / {m:,} current values (< min_rows {config.min_rows})"
        evidence.too_few = True
        return out
    chi2 = chi2_homogeneity(ref_counts, cur_counts, config.min_expected)
    ref_share, cur_share = ref_counts / n, cur_counts / m
    change = cur_share - ref_share
    largest = int(np.argmax(np.abs(change)))
    vanished = [categories[i] for i in np.flatnonzero((ref_counts > 0) & (cur_counts == 0))]
    evidence.statistic, evidence.p_value = chi2.statistic, chi2.pvalue
    evidence.effect_size = float(abs(change[largest]))
    # the CI of the largest change's own share difference (not adjusted for having picked the largest)
    evidence.effect_ci = absolute_interval(*newcombe_difference(ref_counts[largest], n, cur_counts[largest], m,
                                                                config.effect_ci_level))
    evidence.test_text = f"χ²={chi2.statistic:,.1f} ({chi2.dof} dof)"
    order = np.argsort(-np.abs(change), kind="stable")
    # Name the largest change, and the next ones too when they are material on their own (e.g. 'ok' down and
    # 'timeout' up on an incident day), at most three.
    named = [i for i in order[:3] if i == largest or abs(change[i]) >= evidence.minor]
    evidence.change = "share of " + ", ".join(
        f"'{categories[i]}' {_share(ref_share[i])} → {_share(cur_share[i])} ({change[i] * 100:+.1f} pt)"
        for i in named)
    evidence.details.update({
        "dof": chi2.dof, "pooled_categories": [categories[i] for i in chi2.pooled],
        "jensen_shannon": jensen_shannon(ref_share, cur_share), "psi": psi(ref_share, cur_share),
        "vanished": vanished[:50],
        "share_changes": [{"category": categories[i], "share_ref": float(ref_share[i]),
                           "share_cur": float(cur_share[i]), "change": float(change[i])} for i in order[:20]],
    })
    if with_plots:
        top = np.argsort(-np.maximum(ref_share, cur_share), kind="stable")[:PLOT_CATEGORIES]
        rest = np.setdiff1d(np.arange(len(categories)), top)
        labels = [categories[i] for i in top]
        reference, current = ref_share[top].tolist(), cur_share[top].tolist()
        if len(rest):
            labels.append(f"({len(rest)} others)")
            reference.append(float(ref_share[rest].sum()))
            current.append(float(cur_share[rest].sum()))
        evidence.plot = {"labels": labels, "reference": reference, "current": current, "unit": "share"}
    return out


def _calibration(monitor: Monitor, profile: CalibrationProfile, frame: pd.DataFrame, config: DriftConfig,
                 with_plots: bool) -> list[_Evidence]:
    evidence = _new(monitor, "calibration", "chi2_by_bin", config)
    confidence, correct, _ = calibration_values(frame)
    edges = profile.edges
    if len(edges) != config.calibration.bins + 1:
        evidence.skipped = "reference profile has other confidence bins (re-profile the reference)"
        return [evidence]
    index = calibration_bins(confidence, edges)
    rows = np.bincount(index, minlength=len(edges) - 1)
    right = np.bincount(index, weights=correct, minlength=len(edges) - 1)
    evidence.details = {"labelled_ref": profile.n, "labelled_cur": int(rows.sum())}
    if min(profile.n, int(rows.sum())) < config.min_rows:
        evidence.skipped = (f"{profile.n:,} reference / {int(rows.sum()):,} current labelled rows with a "
                            f"confidence (< min_rows {config.min_rows})")
        evidence.too_few = True
        return [evidence]
    floor = config.calibration.min_bin_rows
    used = (profile.rows >= floor) & (rows >= floor)
    if not used.any():
        evidence.skipped = f"no confidence bin has {floor} labelled rows on both sides"
        evidence.too_few = True
        return [evidence]
    acc_ref = profile.correct[used] / profile.rows[used]
    acc_cur = right[used] / rows[used]
    shift = calibration_shift(profile.correct[used], profile.rows[used], right[used], rows[used])
    statistic, p_value, dof = stratified_proportions_chi2(profile.correct[used], profile.rows[used], right[used],
                                                          rows[used])
    centres = (edges[:-1] + edges[1:]) / 2
    ece_ref = float(np.sum(profile.rows * np.abs(np.divide(profile.correct, np.maximum(profile.rows, 1)) - centres))
                    / max(profile.n, 1))
    ece_cur = float(np.sum(rows * np.abs(right / np.maximum(rows, 1) - centres)) / max(rows.sum(), 1))
    overall_ref, overall_cur = profile.correct.sum() / profile.n, right.sum() / rows.sum()
    # Effect: the noise-corrected RMS of the per-bin shifts, so opposite shifts in different bins (accuracy
    # flattening) add up instead of cancelling; the signed net shift is kept in the details and the reason.
    evidence.statistic, evidence.p_value, evidence.effect_size = statistic, p_value, shift.rms
    evidence.effect_ci = calibration_rms_interval(profile.correct[used], profile.rows[used], right[used],
                                                  rows[used], config.effect_ci_level)
    evidence.test_text = f"χ²={statistic:.1f} ({dof} dof)"
    evidence.change = (f"accuracy at equal confidence {shift.signed * 100:+.1f} pt net, per bin "
                       f"{shift.smallest * 100:+.1f} to {shift.largest * 100:+.1f} pt (overall "
                       f"{_share(overall_ref)} → {_share(overall_cur)})")
    labels = [f"{a:.1f}–{b:.1f}" for a, b in itertools.pairwise(edges)]
    evidence.details.update({"accuracy_shift": shift.signed, "accuracy_shift_rms": shift.rms,
                             "accuracy_shift_mean_abs": shift.mean_abs,
                             "accuracy_shift_min": shift.smallest, "accuracy_shift_max": shift.largest,
                             "bins_used": int(used.sum()), "dof": dof,
                             "accuracy_ref": float(overall_ref), "accuracy_cur": float(overall_cur),
                             "ece_bin_centre_ref": ece_ref, "ece_bin_centre_cur": ece_cur,
                             "bins": [{"bin": labels[i], "rows_ref": int(profile.rows[i]), "rows_cur": int(rows[i]),
                                       "accuracy_ref": float(profile.correct[i] / profile.rows[i])
                                       if profile.rows[i] else None,
                                       "accuracy_cur": float(right[i] / rows[i]) if rows[i] else None}
                                      for i in range(len(labels))]})
    if with_plots:
        evidence.plot = {"labels": [labels[i] for i in np.flatnonzero(used)], "reference": acc_ref.tolist(),
                         "current": acc_cur.tolist(), "unit": "accuracy"}
    return [evidence]


# ----------------------------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------------------------


def _p_text(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 1e-300:
        return "<1e-300"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


_EFFECT_NAMES = {"wasserstein": "normalised Wasserstein", "relative_mean": "relative mean shift",
                 "relative_median": "relative median shift", "share_change": "largest share change",
                 "missing_share_change": "missing-share change", "accuracy_shift": "RMS accuracy shift"}


def _effect_value(effect: str, value: float) -> str:
    """An effect size in its unit: plain for Wasserstein, % for relative shifts, points for shares."""
    if math.isinf(value):
        return "∞"
    if effect == "wasserstein":
        return f"{value:.2f}"
    if effect in ("relative_mean", "relative_median"):
        return f"{value:.1%}"
    return f"{value * 100:.1f} pt"


def _effect_text(effect: str, value: float | None, ci: tuple[float, float] | None = None,
                 level: float = 0.95) -> str:
    if value is None:
        return "n/a"
    text = f"{_EFFECT_NAMES.get(effect, effect)} {_effect_value(effect, value)}"
    if ci is not None and all(math.isfinite(v) for v in ci):
        text += f" ({level:.0%} CI {_effect_value(effect, ci[0])}–{_effect_value(effect, ci[1])})"
    return text


def _threshold_text(effect: str, value: float) -> str:
    if effect in ("share_change", "missing_share_change", "accuracy_shift"):
        return f"{value * 100:g} pt"
    if effect in ("relative_mean", "relative_median"):
        return f"{value:.0%}"
    return f"{value:g}"


def _verdict(evidence: _Evidence, p_adjusted: float | None, alpha: float, level: float) -> DriftResult:
    notes = "".join(f"; {note}" for note in evidence.notes)
    if evidence.skipped is not None:
        return DriftResult(evidence.column, evidence.kind, evidence.test, None, None, None, None, evidence.minor,
                           "none", False, f"{NOT_ENOUGH_DATA if evidence.too_few else 'not tested'}: "
                           f"{evidence.skipped}{notes}", evidence.group, evidence.effect,
                           evidence.major, evidence.details, evidence.plot)
    effect = evidence.effect_size
    ci = evidence.effect_ci if evidence.effect_ci and all(math.isfinite(v) for v in evidence.effect_ci) else None
    significant = p_adjusted is not None and p_adjusted <= alpha
    material = effect is not None and effect >= evidence.minor
    drifted = significant and material
    # Major only when the CI's lower bound clears the major threshold: an effect near the threshold would
    # otherwise be called major or minor by a coin flip from day to day. Without a CI (an infinite effect) the
    # point estimate decides.
    lower = min(ci[0], effect) if ci is not None and effect is not None else effect
    severity = ("major" if effect >= evidence.major and lower >= evidence.major else "minor") if drifted else "none"
    effect_text = _effect_text(evidence.effect, effect, ci, level)
    test = f"{evidence.test_text}, p_adj {_p_text(p_adjusted)}"
    if drifted:
        bar = evidence.major if severity == "major" else evidence.minor
        unclear = (f", not clearly ≥ major {_threshold_text(evidence.effect, evidence.major)}"
                   if severity == "minor" and effect >= evidence.major else "")
        reason = (f"{severity} drift: {evidence.change}; {effect_text} ≥ "
                  f"{_threshold_text(evidence.effect, bar)}{unclear}; {test}")
    elif significant:
        reason = (f"immaterial: {evidence.change}; {effect_text} < "
                  f"{_threshold_text(evidence.effect, evidence.minor)} although detectable ({test})")
    else:
        reason = f"no drift: {evidence.change}; {test} > α {alpha:g}; {effect_text}"
    return DriftResult(evidence.column, evidence.kind, evidence.test, evidence.statistic, evidence.p_value,
                       p_adjusted, effect, evidence.minor, severity, drifted, reason + notes, evidence.group,
                       evidence.effect, evidence.major, evidence.details, evidence.plot,
                       ci[0] if ci else None, ci[1] if ci else None)


def _finalise(evidence: list[_Evidence], alpha: float, level: float) -> list[DriftResult]:
    pvalues = np.array([e.p_value if e.p_value is not None and e.skipped is None else np.nan for e in evidence])
    adjusted = benjamini_hochberg(pvalues)
    return [_verdict(e, None if np.isnan(q) else float(q), alpha, level)
            for e, q in zip(evidence, adjusted, strict=True)]


# ----------------------------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------------------------


def compare(reference: ProfileSet, current: pd.DataFrame, monitors: Sequence[Monitor], config: DriftConfig,
            with_plots: bool = True, excluded: Mapping[str, Sequence[str]] | None = None) -> DriftReport:
    """Compare a day's (or any) frame with a reference profile: one or more results per monitor.

    Monitors whose source columns are absent from ``current`` are left out with a note; a monitor absent from the
    reference profile gets a "not tested" row. ``excluded`` (column -> days left out of that column's reference,
    see :func:`major_drift_exclusions`) is stated in the reasons and details of that column's rows.
    """
    usable, absent = available(monitors, current.columns)
    notes = [f"{m.column} ({m.kind}): not in the current data" for m in absent]
    evidence: list[_Evidence] = []
    for monitor in usable:
        profile = reference.get(monitor.key)
        if profile is None:
            placeholder = _new(monitor, monitor.kind, {"numeric": "ks", "categorical": "chi2"}.get(
                monitor.kind, "chi2_by_bin"), config)
            placeholder.skipped = "no reference profile for this column"
            evidence.append(placeholder)
        elif monitor.kind == "numeric" and isinstance(profile, NumericProfile):
            evidence += _numeric(monitor, profile, numeric_values(current, monitor), config, with_plots)
        elif monitor.kind == "categorical" and isinstance(profile, CategoricalProfile):
            names, counts, missing = categorical_counts(current, monitor)
            evidence += _categorical(monitor, profile, names, counts, missing, config, with_plots)
        elif isinstance(profile, CalibrationProfile):
            evidence += _calibration(monitor, profile, current, config, with_plots)
    for item in evidence:
        days = (excluded or {}).get(item.column)
        if days:
            item.notes.append(f"reference without {', '.join(days)} (major drift in this column there)")
            item.details["reference_days_excluded"] = list(days)
    notes += [f"{column}: reference without {', '.join(days)} (its own major drift)"
              for column, days in sorted((excluded or {}).items())]
    return DriftReport(_finalise(evidence, config.alpha, config.effect_ci_level), reference.rows, len(current),
                       reference.days, config.alpha, tuple(notes))


def compare_frames(reference: pd.DataFrame, current: pd.DataFrame, monitors: Sequence[Monitor],
                   config: DriftConfig, with_plots: bool = True) -> DriftReport:
    """Profile ``reference`` and compare ``current`` with it: the whole report from two raw frames."""
    return compare(profile_frame(reference, monitors, config), current, monitors, config, with_plots)
