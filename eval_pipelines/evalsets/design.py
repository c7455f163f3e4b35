"""The sampling design of the eval set: strata, allocation, selection, inclusion probabilities, split, version.

The design is stratified simple random sampling without replacement (STSI, Särndal, Swensson & Wretman 1992,
§3.7): the frame (labeled cases of the window) is cut into strata, stratum ``h`` of ``N_h`` cases gets ``n_h``
cases, and those are a simple random sample of the stratum. Every case of stratum ``h`` is then included with
probability exactly ``pi_h = n_h / N_h`` and carries the design weight ``1 / pi_h``, which is what lets an
estimate over the set project back to production (:mod:`eval_pipelines.evalsets.estimation`).

How the simple random samples are drawn: each case gets a pseudo-random key, a keyed SipHash of its event_id
(``sampling_keys``), and each stratum takes its ``n_h`` smallest keys. For i.i.d. uniform keys every subset of size
``n_h`` is equally likely, i.e. this is SRSWOR; because the key is a function of (seed, event_id) only, the draw is
deterministic given seed and data, independent of row order, and the same case keeps its key from one weekly
refresh to the next, so consecutive versions overlap as much as the design allows ("permanent random numbers",
Ohlsson 1995). The hold-out split uses a second, independent key, so a case is held out in every version or in
none.

Nothing here imports dagster or touches storage: the functions take arrays and frames.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NULL_LEVEL = "<null>"
"""How a null value is written in a stratum label; null is a level of its own."""

NO_FAILURE = "none"
"""The over-sampling group of cases that carry none of the over-sampled tags."""

FAILURE_DIMENSION = "failure"
"""Name of the over-sampling dimension in stratum labels."""

MAX_LEVELS_PER_COLUMN = 200
"""More distinct values than this in one strata column is almost surely a continuous column: bin it first."""

_MASK64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------------------------
# Hashing
# ----------------------------------------------------------------------------------------------------------------


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014) on a uint64 array: a bijection that spreads every input bit."""
    x = values.astype(np.uint64, copy=True)
    x += np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _hash_key(seed: int, purpose: str) -> str:
    """The 16-byte SipHash key of a (seed, purpose) pair: different purposes give independent keys."""
    return hashlib.sha256(f"eval_pipelines/{purpose}/{seed}".encode()).hexdigest()[:16]


def sampling_keys(event_ids: pd.Series | Sequence[str] | np.ndarray, seed: int, purpose: str = "sample") -> np.ndarray:
    """A uint64 pseudo-random key per event id: SipHash-2-4 keyed by (seed, purpose), via pandas' vectorised hash.

    The keys behave as i.i.d. uniform draws on [0, 2^64) for distinct ids, are a pure function of the id, and are
    independent across purposes (``"sample"`` for selection, ``"holdout"`` for the split).
    """
    series = event_ids if isinstance(event_ids, pd.Series) else pd.Series(np.asarray(event_ids, dtype=object))
    hashed = pd.util.hash_pandas_object(series, index=False, hash_key=_hash_key(seed, purpose))
    return hashed.to_numpy(dtype=np.uint64)


def uniform_from_keys(keys: np.ndarray) -> np.ndarray:
    """Keys mapped to [0, 1) with 53 bits of resolution."""
    return (keys >> np.uint64(11)).astype(np.float64) * 2.0**-53


# ----------------------------------------------------------------------------------------------------------------
# Strata
# ----------------------------------------------------------------------------------------------------------------


def _level(value: Any) -> str:
    return NULL_LEVEL if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def failure_groups(cases: pd.DataFrame, oversample_order: Sequence[tuple[str, float]]) -> np.ndarray:
    """Per case, 0 when it carries none of the over-sampled tags, else 1 + the index of the first one it carries."""
    group = np.zeros(len(cases), dtype=np.int64)
    for index in range(len(oversample_order) - 1, -1, -1):  # the first tag in the order wins: assign it last
        tag = oversample_order[index][0]
        flags = cases[f"tag_{tag}"].to_numpy(dtype=bool, na_value=False)
        group[flags] = index + 1
    return group


@dataclass(frozen=True)
class Strata:
    """Stratum of every row (``codes`` into ``labels``) and the over-sampling factor of each stratum."""

    codes: np.ndarray  # int64, one per row
    labels: list[str]  # stratum labels, e.g. "segment=consumer|user_action=accepted|failure=none"
    factors: np.ndarray  # float64, one per label


def assign_strata(cases: pd.DataFrame, columns: Sequence[str],
                  oversample_order: Sequence[tuple[str, float]] = ()) -> Strata:
    """Strata of ``cases``: combinations of the ``columns`` values, plus the failure group when over-sampling.

    Labels are ``col=value`` joined by ``|`` in column order (null as ``<null>``), with ``failure=<tag>`` last when
    ``oversample_order`` is not empty; they are returned sorted, so codes do not depend on row order. Vectorised:
    only the distinct combinations are turned into strings.
    """
    missing = [column for column in columns if column not in cases.columns]
    if missing:
        raise KeyError(f"strata column(s) {missing} are not in labeled_cases; available: {list(cases.columns)}")
    combined = np.zeros(len(cases), dtype=np.int64)
    level_names: list[list[str]] = []
    radices: list[int] = []
    for column in columns:
        codes, uniques = pd.factorize(cases[column], use_na_sentinel=False)
        if len(uniques) > MAX_LEVELS_PER_COLUMN:
            raise ValueError(
                f"strata column {column!r} has {len(uniques)} distinct values (> {MAX_LEVELS_PER_COLUMN}): "
                "stratify on a categorical column, or add a binned copy of a numeric one"
            )
        level_names.append([f"{column}={_level(value)}" for value in uniques])
        radices.append(max(len(uniques), 1))
        combined = combined * radices[-1] + codes
    factor_of_group = [1.0]
    if oversample_order:
        groups = failure_groups(cases, oversample_order)
        level_names.append([f"{FAILURE_DIMENSION}={NO_FAILURE}"]
                           + [f"{FAILURE_DIMENSION}={tag}" for tag, _ in oversample_order])
        factor_of_group = [1.0] + [float(factor) for _, factor in oversample_order]
        radices.append(len(oversample_order) + 1)
        combined = combined * radices[-1] + groups
    distinct, inverse = np.unique(combined, return_inverse=True)
    labels, factors = [], []
    for value in distinct.tolist():
        parts, group = [], 0
        for position in range(len(radices) - 1, -1, -1):
            value, digit = divmod(value, radices[position])
            parts.append(level_names[position][digit] if level_names[position] else NULL_LEVEL)
            if oversample_order and position == len(radices) - 1:
                group = digit
        labels.append("|".join(reversed(parts)))
        factors.append(factor_of_group[group] if oversample_order else 1.0)
    order = np.argsort(np.array(labels, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return Strata(codes=rank[inverse.ravel()], labels=[labels[i] for i in order],
                  factors=np.asarray(factors, dtype=np.float64)[order])


# ----------------------------------------------------------------------------------------------------------------
# Allocation
# ----------------------------------------------------------------------------------------------------------------


def allocation_scores(population: np.ndarray, correct: np.ndarray, allocation: str,
                      factors: np.ndarray | None = None) -> np.ndarray:
    """The relative allocation weight of each stratum, before the minimum and the caps.

    ``proportional``: ``N_h``; ``equal``: 1; ``neyman``: ``N_h S_h`` with ``S_h = sqrt(p_h (1 - p_h))`` the
    standard deviation of correctness, ``p_h = (x_h + 1) / (N_h + 2)`` (Laplace-smoothed so a stratum that happens
    to be all correct still gets a share, Cochran 1977 §5.5). Each is multiplied by the stratum's over-sampling
    factor.
    """
    population = np.asarray(population, dtype=np.float64)
    if allocation == "proportional":
        scores = population.copy()
    elif allocation == "equal":
        scores = np.ones_like(population)
    elif allocation == "neyman":
        smoothed = (np.asarray(correct, dtype=np.float64) + 1.0) / (population + 2.0)
        scores = population * np.sqrt(smoothed * (1.0 - smoothed))
    else:
        raise ValueError(f"allocation must be proportional, equal or neyman, got {allocation!r}")
    return scores * (1.0 if factors is None else np.asarray(factors, dtype=np.float64))


@dataclass(frozen=True)
class AllocationResult:
    sizes: np.ndarray  # int64 n_h
    size: int  # the total actually allocated
    size_raised: bool  # the minimums alone exceeded the requested size
    census: bool  # the frame was not larger than the requested size: everything is taken


def _water_fill(scores: np.ndarray, lower: np.ndarray, upper: np.ndarray, size: int) -> np.ndarray:
    """``clip(lam * scores, lower, upper)`` with ``lam`` such that the sum is ``size``, in O(H log H).

    The sum is continuous, non-decreasing and piecewise linear in ``lam`` with kinks where a stratum leaves its
    lower bound (``lower / score``) or reaches its upper bound (``upper / score``); evaluate it at every kink,
    find the segment where it crosses ``size`` and solve the linear piece there.
    """
    lower = lower.astype(np.float64)
    upper = upper.astype(np.float64)
    active = scores > 0
    fixed = float(lower[~active].sum())
    s, lo, hi = scores[active], lower[active], upper[active]
    kinks = np.unique(np.concatenate([lo / s, hi / s, [0.0]]))
    # For each kink: strata still at their lower bound, strata already at their upper bound, the rest in between.
    order_lo, order_hi = np.argsort(lo / s), np.argsort(hi / s)
    start_lo, start_hi = (lo / s)[order_lo], (hi / s)[order_hi]
    left = np.searchsorted(start_lo, kinks, side="right")  # strata with lower/score <= kink: off their lower bound
    capped = np.searchsorted(start_hi, kinks, side="right")  # strata with upper/score <= kink: at their upper bound

    def cum(values: np.ndarray, order: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(values[order])])

    lower_sum = lo.sum() - cum(lo, order_lo)[left]
    upper_sum = cum(hi, order_hi)[capped]
    slope = cum(s, order_lo)[left] - cum(s, order_hi)[capped]
    totals = fixed + lower_sum + upper_sum + kinks * slope
    k = int(np.searchsorted(totals, size, side="left"))
    if k >= len(kinks):  # pragma: no cover - callers ensure sum(upper) >= size
        return np.clip(kinks[-1] * scores, lower, upper)
    if totals[k] == size or k == 0:
        lam = kinks[k]
    else:
        lam = kinks[k - 1] + (size - totals[k - 1]) * (kinks[k] - kinks[k - 1]) / (totals[k] - totals[k - 1])
    return np.clip(lam * scores, lower, upper)


def allocate(population: np.ndarray, scores: np.ndarray, size: int, minimum: int) -> AllocationResult:
    """Integer sample sizes ``n_h`` with ``min(minimum, N_h) <= n_h <= N_h`` summing to ``size``, closest to
    ``size * scores_h / sum(scores)``.

    The continuous solution is ``clip(lambda * score_h, L_h, N_h)`` with ``lambda`` solved exactly so the sum is
    ``size`` (the bounded allocation of Cochran 1977 §5.9, "water filling"); it is rounded by largest remainder
    (ties: larger stratum first, then stratum order), which keeps the bounds and hits ``size`` exactly. Two corner
    cases: a frame of at most ``size`` cases is taken whole (``census``), and when the minimums alone add up to more
    than ``size`` every stratum gets its minimum and the total grows (``size_raised``) rather than leaving some
    stratum without the cases a variance needs.
    """
    population = np.asarray(population, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if population.ndim != 1 or scores.shape != population.shape:
        raise ValueError("population and scores must be 1-d arrays of the same length")
    if (population < 0).any() or (scores < 0).any() or not np.isfinite(scores).all():
        raise ValueError("population and scores must be finite and >= 0")
    lower = np.minimum(minimum, population)
    upper = population
    total = int(population.sum())
    if total <= size:
        return AllocationResult(population.copy(), total, False, True)
    if int(lower.sum()) >= size:
        return AllocationResult(lower.copy(), int(lower.sum()), int(lower.sum()) > size, False)
    active = scores > 0
    if int(upper[active].sum() + lower[~active].sum()) < size:
        # Zero-score strata would have to exceed their minimum: treat every stratum as scoring alike.
        scores = np.where(population > 0, 1.0, 0.0)
        active = scores > 0

    continuous = _water_fill(scores, lower, upper, size)
    # Remove floating noise before flooring, so 2.9999999999 is 3.
    continuous = np.round(continuous, 9)
    sizes = np.floor(continuous).astype(np.int64)
    sizes = np.clip(sizes, lower, upper)
    remainder = size - int(sizes.sum())
    fractions = continuous - sizes
    if remainder > 0:
        eligible = np.flatnonzero(sizes < upper)
        order = np.lexsort((eligible, -population[eligible], -fractions[eligible]))
        sizes[eligible[order[:remainder]]] += 1
    elif remainder < 0:
        eligible = np.flatnonzero(sizes > lower)
        order = np.lexsort((eligible, -population[eligible], fractions[eligible]))
        sizes[eligible[order[:-remainder]]] -= 1
    if int(sizes.sum()) != size:  # pragma: no cover - guarded by the bounds checks above
        raise AssertionError(f"allocation sums to {int(sizes.sum())}, not {size}")
    return AllocationResult(sizes, size, False, False)


# ----------------------------------------------------------------------------------------------------------------
# Selection
# ----------------------------------------------------------------------------------------------------------------


def select_smallest(codes: np.ndarray, keys: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Indices of the rows with the ``sizes[h]`` smallest keys in each stratum ``h`` (ties by row position).

    Exact and fast on large frames: only rows whose key is below a generous per-stratum threshold (the expected
    quantile ``n_h / N_h`` plus six standard deviations) are sorted; a stratum that falls short of its ``n_h``
    candidates (probability below 1e-8) is re-done in full.
    """
    codes = np.asarray(codes, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.uint64)
    sizes = np.asarray(sizes, dtype=np.int64)
    population = np.bincount(codes, minlength=len(sizes))
    if (sizes > population).any():
        raise ValueError("a stratum cannot give more cases than it has")
    share = np.where(population > 0, (sizes + 6.0 * np.sqrt(sizes) + 16.0) / np.maximum(population, 1), 0.0)
    take_all = share >= 1.0
    threshold = np.where(take_all, np.iinfo(np.uint64).max,
                         np.minimum(share, 1.0) * 2.0**64).astype(np.float64)
    # Compare in float: a uint64 threshold computed from a float share would be no more exact.
    candidate = np.flatnonzero(take_all[codes] | (keys.astype(np.float64) <= threshold[codes]))
    counts = np.bincount(codes[candidate], minlength=len(sizes))
    short = np.flatnonzero(counts < sizes)
    if len(short):
        candidate = np.union1d(candidate, np.flatnonzero(np.isin(codes, short)))
    order = candidate[np.lexsort((candidate, keys[candidate], codes[candidate]))]
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(sizes)))
    rank = np.arange(len(order)) - starts[sorted_codes]
    return np.sort(order[rank < sizes[sorted_codes]])


@dataclass(frozen=True)
class Design:
    """The outcome of the design on a frame: per stratum counts and probabilities, and the rows selected."""

    strata: pd.DataFrame  # stratum, population, correct, factor, score, sample, inclusion_prob, weight
    selected: np.ndarray  # row indices into the frame, ascending
    allocation: AllocationResult


def draw(strata: Strata, keys: np.ndarray, correct: np.ndarray, size: int, allocation: str,
         minimum: int) -> Design:
    """Allocate ``size`` over the strata and select each stratum's simple random sample by smallest key.

    ``correct`` (bool per row) feeds the Neyman allocation and the per-stratum accuracy reported with the design.
    """
    population = np.bincount(strata.codes, minlength=len(strata.labels)).astype(np.int64)
    correct_counts = np.bincount(strata.codes, weights=np.asarray(correct, dtype=np.float64),
                                 minlength=len(strata.labels))
    scores = allocation_scores(population, correct_counts, allocation, strata.factors)
    result = allocate(population, scores, size, minimum)
    selected = select_smallest(strata.codes, keys, result.sizes)
    inclusion = result.sizes / np.maximum(population, 1)
    table = pd.DataFrame({
        "stratum": pd.array(strata.labels, dtype="str"),
        "population": population,
        "correct": correct_counts.astype(np.int64),
        "factor": strata.factors,
        "score": scores,
        "sample": result.sizes,
        "inclusion_prob": inclusion,
        "weight": np.where(result.sizes > 0, population / np.maximum(result.sizes, 1), np.nan),
    })
    return Design(strata=table, selected=selected, allocation=result)


def holdout_split(event_ids: pd.Series | Sequence[str], seed: int, fraction: float) -> np.ndarray:
    """``"holdout"`` for a case whose second key falls below ``fraction``, else ``"dev"``.

    Conditional on how many cases of a stratum are held out, they are a simple random sample of the stratum's
    sample, hence of the stratum: each split is itself a stratified simple random sample and the estimator applies
    to it unchanged with the stratum populations of the version.
    """
    if fraction <= 0:
        return np.full(len(event_ids), "dev", dtype=object)
    u = uniform_from_keys(sampling_keys(event_ids, seed, purpose="holdout"))
    return np.where(u < fraction, "holdout", "dev").astype(object)


# ----------------------------------------------------------------------------------------------------------------
# Versioning
# ----------------------------------------------------------------------------------------------------------------


def frame_digest(keys: np.ndarray, codes: np.ndarray, labels: Sequence[str], correct: np.ndarray) -> str:
    """Order-independent digest of the frame: the multiset of (event key, stratum, correctness).

    Any change in which cases are in the window, in their stratum or in their correctness changes it (with
    probability 1 - 2^-64); row order does not. A wrapping sum of mixed per-row hashes, so it is one vectorised
    pass over the 64-bit keys, not a hash of 10M strings.
    """
    label_hash = np.array([int.from_bytes(hashlib.blake2b(label.encode(), digest_size=8).digest(), "little")
                           for label in labels], dtype=np.uint64)
    rows = mix64(np.asarray(keys, dtype=np.uint64) ^ label_hash[np.asarray(codes, dtype=np.int64)]
                 ^ (np.asarray(correct, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93)))
    total = int(rows.sum(dtype=np.uint64)) & _MASK64
    return f"{total:016x}-{len(rows)}"


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def content_version(plan: Mapping[str, Any], cases: pd.DataFrame, digest: str) -> str:
    """The version: SHA-256 (first 16 hex digits) of the plan, the frame digest and every stored case field.

    Rows are hashed in event_id order and columns in name order, so only content counts. Two builds from the same
    data and plan give the same version; any change in the plan, in which cases are sampled, in their stratum,
    probability, label, split or replay fields, or in the frame they represent gives a new one.
    """
    hasher = hashlib.sha256()
    hasher.update(json.dumps(dict(plan), sort_keys=True, default=str).encode())
    hasher.update(digest.encode())
    ordered = cases.sort_values("event_id", kind="stable")
    for column in sorted(ordered.columns):
        values = [_canonical(v) for v in ordered[column].tolist()]
        hasher.update(column.encode())
        hasher.update(json.dumps(values, default=str, ensure_ascii=False).encode())
    return hasher.hexdigest()[:16]
