"""Reviewed (design-based) accuracy, automation-bias rate and override error rate from the daily audit.

Two-phase view (Särndal, Swensson & Wretman 1992, ch. 9): phase one is every ok case of the day, whose stratum
and user action are known (so the cell sizes ``N_g`` are known exactly: phase one is a census, it adds no
variance); phase two is the audit sample of :mod:`eval_pipelines.review.design` with the reviewers' trusted
verdict on whether the AI output was right. The estimation cells ``g`` are the design strata crossed with the user
action (``review_action``): with the default strata, which already include the action, they are the strata
themselves; otherwise the cross is a post-stratification within strata, and conditional on the cell's audited
count the audited cases of a cell are a simple random sample of it, so the same formulas apply.

For a domain ``D`` that is a union of cells (all ok cases; the accepted ones; the overridden ones) the estimate of
the share of ``D`` with ``y = 1`` is the stratified mean

    p̂_D = Σ_{g ∈ D} W_g q̂_g,        W_g = N_g / N_D,

with ``q̂_g`` the mean of ``y`` over the audited cases of cell ``g`` that have a verdict, and the variance

    v(p̂_D) = Σ_{g ∈ D} W_g² (1 - n_g / N_g) s_g² / n_g

(Cochran 1977, Thm 5.3; finite population correction included). The certainty stratum (complaints, compliance
flags; taken whole) is a census: when all its tasks are answered ``n_g = N_g`` and it adds no variance.
The computation is :func:`eval_pipelines.evalsets.estimation.stratified_estimate`, reused: its interval is the
project's Korn–Graubard ``design_interval`` on Satterthwaite's degrees of freedom, with census cells held out of
the Korn–Graubard step and a single-verdict cell borrowing the other cells' mean ``s²``.

The three figures:

- ``reviewed_accuracy``: ``y`` = the AI output was right, over all the day's ok cases (reviewed or not);
- ``automation_bias_rate``: ``y`` = the AI output was wrong, over the accepted cases: how often a wrong
  suggestion was waved through, as a share of what was accepted;
- ``override_error_rate``: ``y`` = the AI output was right, over the overridden cases: how often the human
  overrode a right answer.

Missing verdicts (tasks nobody answered): assumed missing at random within their cell, so ``q̂_g`` is the mean over
the answered ones and ``n_g`` counts only those. A cell of the domain with ``N_g > 0`` and no verdict at all cannot
be estimated without a model. Choice made here: the estimate is reported as **not available** (NaN, with the
reason naming the cells and the share of the domain they hold) rather than dropping the cell's weight, which would
silently re-define the population, or collapsing it into a neighbour, which assumes the neighbour's accuracy. The
design gives every stratum at least ``minimum_per_stratum`` tasks, so this only happens when tasks go unanswered
(or when the strata do not include the action and a post-stratified cell got no task).

Nothing here imports dagster or touches storage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from eval_pipelines.evalsets.estimation import stratified_estimate
from eval_pipelines.review.design import ACTION_COLUMN

CELL_SEPARATOR = "|cell_action="


@dataclass(frozen=True)
class ReviewedEstimate:
    """One design-based estimate with the population it is about."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    confidence: float
    n_audited: int  # audited cases of the population with a trusted verdict
    population_size: int  # N of the population (phase one)
    population: str  # what the estimate is about, in words
    available: bool
    reason: str  # why not available; empty otherwise
    interval: str  # korn_graubard | clopper_pearson_kish | exact | none
    degrees_of_freedom: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ReviewEstimates:
    """The day's corrected figures and the per-cell table they come from."""

    reviewed_accuracy: ReviewedEstimate
    automation_bias_rate: ReviewedEstimate
    override_error_rate: ReviewedEstimate
    cells: pd.DataFrame  # cell, review_action, population, audited, mean_correct


def estimation_cells(frame: pd.DataFrame) -> pd.Series:
    """The estimation cell of each phase-one case: its design stratum crossed with its user action."""
    return frame["stratum"].astype(str) + CELL_SEPARATOR + frame[ACTION_COLUMN].astype(str)


def _cell_codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``estimation_cells`` factorised (codes into the sorted cell names), without a string per case: the
    stratum and action codes are combined and only the distinct cells are spelled out. Also the action codes
    and action names."""
    stratum_codes, strata = pd.factorize(frame["stratum"].astype(str))
    action_codes, actions = pd.factorize(frame[ACTION_COLUMN].astype(str))
    action_names = [str(a) for a in actions]
    combined = stratum_codes.astype(np.int64) * max(len(action_names), 1) + action_codes
    distinct, inverse = np.unique(combined, return_inverse=True)
    spelled = np.asarray([f"{strata[c // max(len(action_names), 1)]}{CELL_SEPARATOR}"
                          f"{action_names[c % max(len(action_names), 1)]}" for c in distinct.tolist()], dtype=object)
    order = np.argsort(spelled.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()], spelled[order], action_codes, action_names


def _verdict_values(frame: pd.DataFrame, verdicts: pd.DataFrame) -> np.ndarray:
    """Per phase-one row, 1.0/0.0 for a verdict "AI right"/"AI wrong", NaN when not audited or not answered."""
    if not {"event_id", "ai_correct"} <= set(verdicts.columns):
        raise KeyError("verdicts need event_id and ai_correct columns")
    if verdicts["event_id"].duplicated().any():
        raise ValueError("one trusted verdict per event_id (adjudicate multiple reviews first)")
    # Matched against the selected rows only (a few thousand), not a hash of the million phase-one ids.
    selected_rows = np.flatnonzero(frame["selected"].to_numpy(dtype=bool))
    position = pd.Index(frame["event_id"].to_numpy()[selected_rows]).get_indexer(verdicts["event_id"])
    if (position < 0).any():
        outside = pd.Index(frame["event_id"]).get_indexer(verdicts["event_id"][position < 0])
        if (outside < 0).any():
            raise ValueError(f"{int((outside < 0).sum())} verdict(s) for events not among the day's ok cases")
        # A verdict on a case outside the probability sample has no known inclusion probability: it cannot
        # enter a design-based estimate (it belongs in the edge-case library, not here).
        raise ValueError("verdict(s) for cases that were not in the audit sample")
    position = selected_rows[position]
    flags = verdicts["ai_correct"].astype("boolean")
    values = np.full(len(frame), np.nan)
    answered = flags.notna().to_numpy()
    values[position[answered]] = flags[answered].to_numpy(dtype=bool).astype(np.float64)
    return values


def _domain_estimate(name: str, population: str, codes: np.ndarray, names: np.ndarray, values: np.ndarray,
                     in_domain: np.ndarray, confidence: float) -> ReviewedEstimate:
    """The stratified estimate over the cells of a domain; ``codes`` index the cell ``names``."""
    size = int(in_domain.sum())
    nan = float("nan")
    answered = in_domain & ~np.isnan(values)

    def unavailable(reason: str) -> ReviewedEstimate:
        return ReviewedEstimate(name, nan, nan, nan, nan, confidence, int(answered.sum()), size, population, False,
                                reason, "none", nan)

    if size == 0:
        return unavailable("the population is empty")
    sizes = np.bincount(codes[in_domain], minlength=len(names))
    audited = np.bincount(codes[answered], minlength=len(names))
    empty = np.flatnonzero((sizes > 0) & (audited == 0))
    if len(empty):
        share = float(sizes[empty].sum()) / size
        listed = ", ".join(map(str, names[empty][:5])) + (" ..." if len(empty) > 5 else "")
        return unavailable(f"{len(empty)} cell(s) holding {share:.1%} of the population have no trusted verdict "
                           f"({listed}); not estimated rather than dropping their weight")
    present = np.flatnonzero(sizes > 0)
    population_sizes = pd.Series(sizes[present], index=names[present].astype(str))
    found = stratified_estimate(values[answered], names[codes[answered]].astype(str), population_sizes,
                                confidence=confidence)
    return ReviewedEstimate(name, found.estimate, found.ci_low, found.ci_high, found.std_error, confidence,
                            found.n, size, population, True, "", found.interval, found.degrees_of_freedom)


def estimate_reviewed(frame: pd.DataFrame, verdicts: pd.DataFrame, confidence: float = 0.95,
                      override_actions: tuple[str, ...] = ("overridden",)) -> ReviewEstimates:
    """Reviewed accuracy, automation-bias rate and override error rate of one day.

    ``frame``: phase one, :attr:`AuditSample.frame` (every ok case with ``event_id``, ``stratum``,
    ``review_action``, ``selected``). ``verdicts``: one trusted (adjudicated) verdict per audited event,
    ``event_id`` and ``ai_correct`` (True when the AI output was right; null for a task left unanswered).
    """
    values = _verdict_values(frame, verdicts)
    codes, names, action_codes, action_names = _cell_codes(frame)
    first = np.unique(codes, return_index=True)[1]
    accepted = action_codes == (action_names.index("accepted") if "accepted" in action_names else -1)
    overrides = np.isin(action_codes, [i for i, a in enumerate(action_names) if a in override_actions])
    everyone = np.ones(len(frame), dtype=bool)
    accuracy = _domain_estimate("reviewed_accuracy", "all the day's cases with status ok (reviewed or not)",
                                codes, names, values, everyone, confidence)
    bias = _domain_estimate("automation_bias_rate",
                            "the day's ok cases whose suggestion was accepted; share where the AI was wrong",
                            codes, names, 1.0 - values, accepted, confidence)
    override = _domain_estimate("override_error_rate",
                                f"the day's ok cases with action in {list(override_actions)}; share where the AI "
                                "was in fact right", codes, names, values, overrides, confidence)
    answered = ~np.isnan(values)
    audited = np.bincount(codes[answered], minlength=len(names))
    right = np.bincount(codes[answered], weights=values[answered], minlength=len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_correct = np.where(audited > 0, right / np.maximum(audited, 1), np.nan)
    summary = pd.DataFrame({"cell": names, ACTION_COLUMN: np.asarray(action_names, dtype=object)[action_codes[first]],
                            "population": np.bincount(codes, minlength=len(names)), "audited": audited,
                            "mean_correct": mean_correct})
    return ReviewEstimates(accuracy, bias, override, summary)


def implicit_accuracy(cases: pd.DataFrame) -> float:
    """The implicit-label accuracy the project reported so far: mean ``ai_correct`` over ok cases that have one.

    Population: the ok cases with an implicit label (accepted counts as right) — a different, self-selected
    population, and biased upward under automation bias. Reported beside the reviewed figure, not instead of it.
    """
    ok = cases.loc[cases["status"].astype("object") == "ok", "ai_correct"].astype("boolean")
    return float(ok.mean()) if ok.notna().any() else float("nan")
