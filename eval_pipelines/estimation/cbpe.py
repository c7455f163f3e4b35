"""Confidence-based performance estimation (CBPE) with an interval that covers, and its out-of-sample check.

For a day's ok cases with confidences ``c_1 .. c_n`` and a calibration map ``f(c) = P(right | c)`` fitted on the
trusted labels of the trailing window (:mod:`eval_pipelines.estimation.calibration`), the estimated accuracy is

    Â = (1/n) Σ f(c_i).

What it estimates: the realized accuracy ``A = (1/n) Σ y_i`` of exactly those cases (``y_i`` = the output was
right), under the CBPE assumption that ``P(y | c)`` is the same on the day as in the window (no concept drift) and
that the day's confidences fall where the calibration set has data (the support share says how far that holds).

Its error has two parts, assumed independent (the calibration days and the estimated day are different cases):

- day variation: given the ``p_i = f(c_i)``, ``A`` is a Poisson-binomial mean with variance ``Σ p_i (1 - p_i) / n²``;
- calibration error: ``f`` is fitted on a finite sample; its variance is that of ``Â`` over bootstrap refits of
  the calibration set (cases resampled with replacement, weights kept: the with-replacement approximation of the
  trusted-label design), seeded per day and group.

Interval: ``Â ± z sqrt(V_day + V_cal)``, clipped to [0, 1]. For speed the bootstrap evaluates each refit on a grid
of 2,001 confidences (steps of 5e-4) weighted by the day's counts per grid cell; the point estimate and
``V_day`` use the exact confidences.

Realized check: when trusted labels of the day itself exist (``realized``), their weighted mean ``R`` (Hájek, with
the same weights as calibration) estimates ``A``; its variance is the with-replacement linearisation
``n/(n-1) Σ w_i² (y_i - R)² / (Σ w)²`` (conservative for a sample drawn without replacement). ``R`` is itself a
sample estimate (the realized labels are assumed a probability sample of the day: the audit design for reviewed
labels, missing at random within ``ground_truth_cells`` for ground truth), so the gap ``Â - R`` has variance
``V_cal + V_R`` (``V_R`` already holds the day's own outcome variation, so ``V_day`` is not added again). A gap
beyond ``z sqrt(V_cal + V_R)`` with at least ``min_realized_cases`` labels is flagged: the concept-drift signal.

Nothing here imports dagster or touches storage.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

import numpy as np
import pandas as pd

from eval_pipelines.estimation.calibration import CalibrationSet, Method
from eval_pipelines.multiplicity import holm_adjusted

ALL_SEGMENTS = "all"
GRID_SIZE = 2_001
STATUS_ESTIMATED = "estimated"
STATUS_NO_CALIBRATION = "not_enough_calibration"
STATUS_NO_CONFIDENCE = "no_confidence"

KEY_COLUMNS = ("system", "model_version", "segment")
# Output columns in table order (the warehouse table adds partition_date and computed_at around them).
RESULT_COLUMNS: tuple[str, ...] = (
    "system", "model_version", "segment", "status", "reason", "cases", "cases_without_confidence",
    "estimated_accuracy", "estimated_accuracy_ci_low", "estimated_accuracy_ci_high", "day_variation_std_error",
    "calibration_std_error", "calibration_method", "calibration_cases", "calibration_reviewed_cases",
    "calibration_ground_truth_cases", "calibration_implicit_cases", "calibration_window", "outside_support_share",
    "realized_accuracy", "realized_accuracy_ci_low", "realized_accuracy_ci_high", "realized_cases",
    "estimation_error", "estimation_error_ci_low", "estimation_error_ci_high", "gap_flagged",
)


@dataclass(frozen=True)
class EstimationParams:
    """The knobs of :func:`estimate_day` (``EstimationConfig`` carries them in the config)."""

    method: Method = "isotonic"
    min_calibration_cases: int = 200
    bootstrap: int = 200
    seed: int = 13
    ci_level: float = 0.95
    support_bins: int = 20
    min_support_cases: int = 5
    min_realized_cases: int = 30


def _seed(seed: int, *parts: str) -> np.random.Generator:
    # A stable per-group stream: crc32 is the same in every process (Python's hash() is salted).
    return np.random.default_rng([seed, *(zlib.crc32(p.encode()) for p in parts)])


def _weighted_mean_and_var(y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Hájek mean and its with-replacement linearised variance (NaN variance for one case).

    The variance is floored at the Agresti–Coull binomial variance on Kish's effective sample size: a realized
    sample that is all right (or all wrong) has a linearised variance of 0, which would flag any estimate that is
    not exactly 1 (or 0) as a gap.
    """
    total = w.sum()
    mean = float((w * y).sum() / total)
    n = len(y)
    if n < 2:
        return mean, float("nan")
    var = n / (n - 1) * float((w**2 * (y - mean) ** 2).sum()) / total**2
    n_eff = float(total**2 / (w**2).sum())
    adjusted = (n_eff * mean + 2.0) / (n_eff + 4.0)
    return mean, max(var, adjusted * (1.0 - adjusted) / (n_eff + 4.0))


def _empty_row(system: str, version: str, segment: str, cases: int, missing: int, status: str,
               reason: str, window: str, method: str) -> dict[str, object]:
    row: dict[str, object] = {c: np.nan for c in RESULT_COLUMNS}
    row.update(system=system, model_version=version, segment=segment, status=status, reason=reason, cases=cases,
               cases_without_confidence=missing, calibration_window=window, calibration_method=method,
               calibration_cases=0, calibration_reviewed_cases=0, calibration_ground_truth_cases=0,
               calibration_implicit_cases=0, realized_cases=0, gap_flagged=False)
    return row


def estimate_day(cases: pd.DataFrame, calibration: pd.DataFrame, realized: pd.DataFrame | None,
                 params: EstimationParams, day: date, window: str) -> pd.DataFrame:
    """Estimated (and, where labels exist, realized) accuracy of one day, per system × model_version × segment
    and per system × model_version over all segments (segment ``all``).

    ``cases``: the day's ok cases: ``system``, ``model_version``, ``segment``, ``confidence`` (top-label; NaN when
    the case has none: counted in ``cases_without_confidence``, outside the estimate's population).
    ``calibration``: trusted labels of the window: ``system``, ``model_version``, ``confidence``, ``correct``
    (bool), ``weight`` (> 0), ``source`` (reviewed | ground_truth | implicit).
    ``realized``: trusted labels of the day itself, same columns plus ``segment`` (None or empty: none yet).
    Returns one row per group with :data:`RESULT_COLUMNS`. A version with fewer than ``min_calibration_cases``
    trusted labels gets status ``not_enough_calibration``, no estimate and the reason.
    """
    if cases.empty:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    z = NormalDist().inv_cdf(0.5 + params.ci_level / 2)
    grid_edges = np.linspace(0.0, 1.0, params.support_bins + 1)
    rows: list[dict[str, object]] = []
    gap_p_values: dict[int, float] = {}  # row position -> two-sided p of its gap test
    if realized is None:
        realized = pd.DataFrame(columns=["system", "model_version", "segment", "confidence", "correct", "weight"])
    cal_groups = {k: g for k, g in calibration.groupby(["system", "model_version"], sort=False, observed=True)}
    real_groups = {k: g for k, g in realized.groupby(["system", "model_version"], sort=False, observed=True)}
    for (system, version), group in cases.groupby(["system", "model_version"], sort=True, observed=True):
        system, version = str(system), str(version)
        confidence_all = group["confidence"].to_numpy(dtype="float64", na_value=np.nan)
        has_conf = ~np.isnan(confidence_all)
        # Segment codes by factorize (fast on categoricals; no per-row strings); a null segment is '(missing)'.
        seg_code, uniques = pd.factorize(group["segment"], sort=True)
        segment_names = [str(u) for u in uniques]
        if (seg_code < 0).any():
            seg_code = np.where(seg_code < 0, len(segment_names), seg_code)
            segment_names.append("(missing)")
        seg_code = seg_code.astype(np.int64)
        # The groups of this version: every segment, then 'all'.
        labels = [*segment_names, ALL_SEGMENTS]
        missing_counts = [int((~has_conf & (seg_code == i)).sum()) for i in range(len(segment_names))]
        missing_counts.append(int((~has_conf).sum()))
        confidence = np.clip(confidence_all[has_conf], 0.0, 1.0)
        codes = seg_code[has_conf]
        n_by = np.append(np.bincount(codes, minlength=len(segment_names)), len(confidence))

        cal = cal_groups.get((system, version))
        n_cal = 0 if cal is None else len(cal)
        method = params.method
        if n_cal < params.min_calibration_cases or len(confidence) == 0:
            if len(confidence) == 0:
                status, reason = STATUS_NO_CONFIDENCE, "no case of the day has a confidence"
            else:
                status = STATUS_NO_CALIBRATION
                reason = (f"{n_cal} trusted label(s) for {system} {version} in {window}, fewer than "
                          f"estimation.min_calibration_cases={params.min_calibration_cases}")
            for i, label in enumerate(labels):
                row = _empty_row(system, version, label, int(n_by[i]) if len(confidence) else 0,
                                 missing_counts[i], status, reason, window, method)
                row["calibration_cases"] = n_cal
                rows.append(row)
            continue

        cal_conf = np.clip(cal["confidence"].to_numpy(dtype="float64"), 0.0, 1.0)
        cal_y = cal["correct"].to_numpy(dtype="float64")
        cal_w = cal["weight"].to_numpy(dtype="float64")
        sources = cal["source"].value_counts()
        calibration_set = CalibrationSet(cal_conf, cal_y, cal_w, method)
        p = calibration_set.fit().predict(confidence)

        def by_group(values: np.ndarray, codes: np.ndarray = codes, k: int = len(segment_names)) -> np.ndarray:
            # Sums per group (segments, then all) by bincount: one pass over the day's cases.
            return np.append(np.bincount(codes, weights=values, minlength=k), values.sum())

        estimate = by_group(p) / n_by
        var_day = by_group(p * (1.0 - p)) / n_by**2

        # Bootstrap: each refit evaluated on the grid, weighted by the day's counts per grid cell and group.
        grid = np.linspace(0.0, 1.0, GRID_SIZE)
        cell = np.rint(confidence * (GRID_SIZE - 1)).astype(np.int64)
        counts = np.bincount(codes * GRID_SIZE + cell, minlength=len(segment_names) * GRID_SIZE).reshape(
            len(segment_names), GRID_SIZE).astype("float64")
        counts = np.vstack([counts, counts.sum(axis=0)])
        rng = _seed(params.seed, day.isoformat(), system, version)
        curves = calibration_set.bootstrap(grid, params.bootstrap, rng)
        # einsum, not @: a BLAS matmul this small spends more on waking its threads than on the sums.
        boot = np.einsum("gk,bk->gb", counts, curves) / n_by[:, None]
        var_cal = boot.var(axis=1, ddof=1)

        # Support: confidence bins with too few calibration cases; the day's share of cases in them.
        cal_bins = np.clip(np.searchsorted(grid_edges, cal_conf, side="right") - 1, 0, params.support_bins - 1)
        supported = np.bincount(cal_bins, minlength=params.support_bins) >= params.min_support_cases
        day_bins = np.clip(np.searchsorted(grid_edges, confidence, side="right") - 1, 0, params.support_bins - 1)
        outside = by_group((~supported[day_bins]).astype("float64")) / n_by

        real = real_groups.get((system, version))
        for i, label in enumerate(labels):
            se = float(np.sqrt(var_day[i] + var_cal[i]))
            est = float(estimate[i])
            row = _empty_row(system, version, label, int(n_by[i]), missing_counts[i], STATUS_ESTIMATED, "",
                             window, method)
            row.update(
                estimated_accuracy=est, estimated_accuracy_ci_low=max(0.0, est - z * se),
                estimated_accuracy_ci_high=min(1.0, est + z * se),
                day_variation_std_error=float(np.sqrt(var_day[i])), calibration_std_error=float(np.sqrt(var_cal[i])),
                calibration_cases=n_cal, calibration_reviewed_cases=int(sources.get("reviewed", 0)),
                calibration_ground_truth_cases=int(sources.get("ground_truth", 0)),
                calibration_implicit_cases=int(sources.get("implicit", 0)), outside_support_share=float(outside[i]),
            )
            if real is not None:
                mine = real if label == ALL_SEGMENTS else real[real["segment"].astype(str) == label]
                mine = mine[mine["confidence"].notna()]
                if len(mine):
                    y = mine["correct"].to_numpy(dtype="float64")
                    w = mine["weight"].to_numpy(dtype="float64")
                    r, var_r = _weighted_mean_and_var(y, w)
                    row.update(realized_accuracy=r, realized_cases=len(mine), estimation_error=est - r)
                    if np.isfinite(var_r):
                        se_r = float(np.sqrt(var_r))
                        se_gap = float(np.sqrt(var_cal[i] + var_r))
                        row.update(realized_accuracy_ci_low=max(0.0, r - z * se_r),
                                   realized_accuracy_ci_high=min(1.0, r + z * se_r),
                                   estimation_error_ci_low=est - r - z * se_gap,
                                   estimation_error_ci_high=est - r + z * se_gap)
                        if len(mine) >= params.min_realized_cases and se_gap > 0:
                            gap_p_values[len(rows)] = 2.0 * (1.0 - NormalDist().cdf(abs(est - r) / se_gap))
            rows.append(row)
    # The day's gap tests form one family (the WARN check is one verdict per day): Holm keeps its false-alarm rate
    # at 1 - ci_level whatever the number of groups, and holds under the dependence of "all" and its segments.
    if gap_p_values:
        positions = list(gap_p_values)
        adjusted = holm_adjusted(np.array([gap_p_values[i] for i in positions]))
        for position, p_value in zip(positions, adjusted, strict=True):
            rows[position]["gap_flagged"] = bool(p_value <= 1.0 - params.ci_level)
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
