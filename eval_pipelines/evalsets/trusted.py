"""The eval set on trusted labels: a third phase drawn from the review loop's audit, projecting to all ok cases.

Why: with implicit labels an accepted case's label *is* production's output, so the deployed system is right by
construction on every accepted case, automation bias is invisible, and a candidate that fixes an accepted mistake is
scored wrong there. The only cases whose label does not come from production's own output, and whose selection
probability is known, are the audited ones (:mod:`eval_pipelines.review.design`). So the eval set is drawn from them.

The design, per window day ``d`` (docs/eval_sets.md, "Trusted labels"):

1. **window**: every ok case of the day (``review_queue``, phase one: a census, so each audit stratum's size
   ``N_{d,a}`` is known exactly);
2. **audit**: within each audit stratum a simple random sample of ``n_{d,a}`` cases (``selected``), reviewed;
   a task nobody answered (or a disputed one) is assumed missing at random within its stratum, so conditional on
   the ``m_{d,a}`` cases with a trusted label those are a simple random sample of the stratum;
3. **eval-set draw**: within each *cell* ``c = (d, a)`` a simple random sample of ``k_c`` of the ``m_c`` trusted
   cases (smallest keys, as in :mod:`eval_pipelines.evalsets.design`).

A simple random sample of a simple random sample is a simple random sample: the eval-set cases of cell ``c`` are an
SRS of size ``k_c`` of its ``N_c`` production cases, with inclusion probability ``(m_c / N_c) · (k_c / m_c) =
k_c / N_c`` — the product of the phases — and weight ``N_c / k_c``. The cells are therefore the strata of an
ordinary stratified design over the production population (ok cases of the window), with ``population = N_c`` and
``sample = k_c`` in ``eval_set_strata``, and every estimator the project already has (stratified and domain
estimators, Korn–Graubard, the design McNemar, Tango's score test at the design's effective n) applies unchanged and
is design-unbiased for production — conditionally on the ``m_c``, which is the missing-at-random assumption above.

The trusted label of an audited case: the adjudicated ``reviewed_label``, else its ground truth; an implicit label is
never used. Ground truth outside the audit is not used for comparisons: how the business comes to know an outcome
(complaints, chargebacks, a later correction) is not a probability mechanism, so those cases have no known inclusion
probability; treating them as random within strata would be an assumption the data cannot check. They are counted
(``ground_truth_outside_audit``) and stay in the implicit figures.

A cell of the window with ok cases but no trusted label (all its tasks unanswered) cannot be represented: its
production cases are left out of the projection, whose ``population_covered`` says which share is covered.

Nothing here imports dagster or touches storage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines.evalsets.design import allocate, sampling_keys, select_smallest

REVIEWED = "reviewed"
GROUND_TRUTH = "ground_truth"
IMPLICIT = "human_action"
"""``label_source`` values of eval-set cases: the two trusted ones, and the implicit one (labeling's name)."""

TRUSTED_SOURCES: tuple[str, ...] = (REVIEWED, GROUND_TRUTH)
CELL_SEPARATOR = "|audit="


def cell_label(day: str, stratum: str) -> str:
    """The eval-set stratum of an audited case: its day and its audit stratum (``2026-10-01|audit=<stratum>``)."""
    return f"{day}{CELL_SEPARATOR}{stratum}"


def pooled_cell_strata(strata: pd.Series) -> pd.Series:
    """A trusted eval set's strata (``<day>|audit=<stratum>``) as their audit stratum pooled over the days; other
    strata unchanged.

    The day × audit-stratum cells are the design, but as slices they are noise (a 28-day window of an audit with
    60 strata has ~1,700 cells of two or three cases). Pooled over days, a slice is the audit stratum a reader
    knows ("accepted, confidence [0.8, 1], enterprise"), still a domain of the design and projected as one.
    """
    text = strata.astype("str")
    pooled = text.str.partition(CELL_SEPARATOR)
    return pooled[2].where(pooled[1] == CELL_SEPARATOR, text)


def _text(values: pd.Series) -> pd.Series:
    """Stripped strings, blank as null: a blank label is no label (as in labeling)."""
    out = values.astype("object").where(values.notna(), None)
    out = out.map(lambda v: v.strip() if isinstance(v, str) else v)
    return out.where(out.map(lambda v: isinstance(v, str) and v != ""), None)


@dataclass(frozen=True)
class TrustedDay:
    """One window day in the trusted frame: cell sizes and the audited cases with a trusted label."""

    cells: pd.DataFrame  # cell, population (N_c ok cases), audited (selected tasks), trusted (m_c)
    cases: pd.DataFrame  # event_id, day, cell, label, label_source, ai_correct (bool)
    ground_truth_outside_audit: int


def trusted_day(day: str, queue: pd.DataFrame, verdicts: pd.DataFrame,
                ground_truth: pd.DataFrame | None = None) -> TrustedDay:
    """The trusted frame of one day.

    ``queue``: the day's ``review_queue`` (phase one: ``event_id``, ``stratum``, ``selected`` per ok case).
    ``verdicts``: the day's ``review_labels`` (``event_id``, ``reviewed_label``, ``ai_correct``; one row per
    selected task). ``ground_truth``: the day's labeled cases whose label is ground truth (``event_id``,
    ``label``, ``ai_correct``), used for audited cases the reviewers left without a label.
    """
    for name, frame, needed in (("review_queue", queue, ("event_id", "stratum", "selected")),
                                ("review_labels", verdicts, ("event_id", "reviewed_label", "ai_correct"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} {day}: missing column(s) {missing}; see docs/review.md for the contract")
    ids = queue["event_id"].astype(str).reset_index(drop=True)
    if ids.duplicated().any():
        raise ValueError(f"review_queue {day}: duplicate event_id (one row per ok case expected)")
    selected = queue["selected"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    stratum = queue["stratum"].astype(str).to_numpy()
    index = pd.Index(ids)
    position = index.get_indexer(verdicts["event_id"].astype(str))
    if (position < 0).any():
        raise ValueError(f"review_labels {day}: {int((position < 0).sum())} verdict(s) for events not in "
                         "review_queue; re-run review_labels after review_queue")
    if not selected[position].all():
        raise ValueError(f"review_labels {day}: verdict(s) for cases the audit did not select (no known inclusion "
                         "probability); they belong in the edge-case library, not in a design-based estimate")
    # Plain numpy arrays: positional writes into pandas objects cost more than the rest of the day together.
    label = np.full(len(ids), None, dtype=object)
    source = np.full(len(ids), None, dtype=object)
    correct = np.zeros(len(ids), dtype=np.int8) - 1  # -1 unknown, 0 wrong, 1 right
    reviewed = _text(verdicts["reviewed_label"].reset_index(drop=True)).to_numpy(dtype=object)
    verdict = verdicts["ai_correct"].astype("boolean").to_numpy(dtype=np.float64, na_value=np.nan)
    has_review = (reviewed != None) & ~np.isnan(verdict)  # noqa: E711 - element-wise on an object array
    label[position[has_review]] = reviewed[has_review]
    source[position[has_review]] = REVIEWED
    correct[position[has_review]] = verdict[has_review].astype(np.int8)
    outside = 0
    if ground_truth is not None and len(ground_truth):
        truth_at = index.get_indexer(ground_truth["event_id"].astype(str))
        truth_label = _text(ground_truth["label"].reset_index(drop=True)).to_numpy(dtype=object)
        truth_correct = ground_truth["ai_correct"].astype("boolean").to_numpy(dtype=np.float64, na_value=np.nan)
        known = (truth_at >= 0) & (truth_label != None) & ~np.isnan(truth_correct)  # noqa: E711
        in_audit = known & selected[np.maximum(truth_at, 0)]
        outside = int(np.sum(known & ~in_audit))
        fill = in_audit & (source[np.maximum(truth_at, 0)] == None)  # noqa: E711
        label[truth_at[fill]] = truth_label[fill]
        source[truth_at[fill]] = GROUND_TRUTH
        correct[truth_at[fill]] = truth_correct[fill].astype(np.int8)
    trusted = correct >= 0
    codes, names = pd.factorize(pd.Series(stratum), sort=True)
    population = np.bincount(codes, minlength=len(names))
    sizes = pd.DataFrame({
        "cell": [cell_label(day, str(name)) for name in names],
        "population": population.astype(np.int64),
        "audited": np.bincount(codes, weights=selected, minlength=len(names)).astype(np.int64),
        "trusted": np.bincount(codes, weights=trusted, minlength=len(names)).astype(np.int64),
    })
    cell_of = sizes["cell"].to_numpy(dtype=object)
    cases = pd.DataFrame({
        "event_id": ids.to_numpy()[trusted],
        "day": day,
        "cell": cell_of[codes[trusted]],
        "label": label[trusted],
        "label_source": source[trusted],
        "ai_correct": correct[trusted] == 1,
    })
    return TrustedDay(sizes, cases, outside)


@dataclass(frozen=True)
class TrustedFrame:
    """The window's trusted frame: every cell's production size, and the cases with a trusted label."""

    cells: pd.DataFrame  # cell, population, audited, trusted
    cases: pd.DataFrame  # event_id, day, cell, label, label_source, ai_correct
    ground_truth_outside_audit: int

    @property
    def target_population(self) -> int:
        """Ok cases of the window: the production population the projections are about."""
        return int(self.cells["population"].sum())

    @property
    def uncovered_population(self) -> int:
        """Ok cases in cells without a trusted label: outside what any projection can cover."""
        return int(self.cells.loc[self.cells["trusted"] == 0, "population"].sum())


def combine_days(days: Sequence[TrustedDay]) -> TrustedFrame:
    cells = pd.concat([d.cells for d in days], ignore_index=True) if days else \
        pd.DataFrame({"cell": pd.Series(dtype=object), "population": pd.Series(dtype="int64"),
                      "audited": pd.Series(dtype="int64"), "trusted": pd.Series(dtype="int64")})
    cases = pd.concat([d.cases for d in days], ignore_index=True) if days else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in ("event_id", "day", "cell", "label", "label_source")}
                     ).assign(ai_correct=pd.Series(dtype=bool))
    if cases["event_id"].duplicated().any():
        raise ValueError("an event_id is audited on two days of the window: event ids must be unique")
    return TrustedFrame(cells.sort_values("cell", kind="stable").reset_index(drop=True),
                        cases.sort_values(["cell", "event_id"], kind="stable").reset_index(drop=True),
                        int(sum(d.ground_truth_outside_audit for d in days)))


@dataclass(frozen=True)
class TrustedDraw:
    """Phase three: which trusted cases the eval set takes, and the design table of its strata (the cells)."""

    selected: np.ndarray  # row positions into TrustedFrame.cases, ascending
    strata: pd.DataFrame  # stratum, population, audited, trusted, sample, inclusion_prob, weight, accuracy, factor
    size: int
    census: bool  # every trusted case was taken
    size_raised: bool  # the per-cell minimums alone exceeded the requested size


def draw_trusted(frame: TrustedFrame, size: int, minimum: int, seed: int) -> TrustedDraw:
    """Allocate ``size`` over the cells proportionally to their trusted cases and draw each cell's SRS.

    Proportional to ``m_c`` keeps the audit's own allocation, which already over-samples the risky strata
    (rubber-stamped accepts, overrides of confident outputs); every cell gets ``min(minimum, m_c)`` so it has a
    within-cell variance. The selection is by smallest keyed hash of the event id (permanent random numbers), as in
    the implicit design.
    """
    cells = frame.cells
    codes_of = {label: i for i, label in enumerate(cells["cell"].astype(str))}
    codes = np.array([codes_of[c] for c in frame.cases["cell"].astype(str)], dtype=np.int64)
    trusted = cells["trusted"].to_numpy(dtype=np.int64)
    if int(trusted.sum()) == 0:
        raise ValueError("no audited case with a trusted label in the window: nothing to draw")
    result = allocate(trusted, trusted.astype(np.float64), size, minimum)
    keys = sampling_keys(frame.cases["event_id"].astype(str).reset_index(drop=True), seed)
    selected = select_smallest(codes, keys, result.sizes)
    population = cells["population"].to_numpy(dtype=np.int64)
    sample = result.sizes
    right = np.bincount(codes, weights=frame.cases["ai_correct"].to_numpy(dtype=np.float64),
                        minlength=len(cells))
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(trusted > 0, right / np.maximum(trusted, 1), np.nan)
    strata = pd.DataFrame({
        "stratum": pd.array(cells["cell"].astype(str), dtype="str"),
        "population": population,
        "audited": cells["audited"].to_numpy(dtype=np.int64),
        "trusted": trusted,
        "correct": right.astype(np.int64),
        "accuracy": accuracy,
        "factor": 1.0,
        "sample": sample,
        "inclusion_prob": sample / np.maximum(population, 1),
        "weight": np.where(sample > 0, population / np.maximum(sample, 1), np.nan),
    })
    return TrustedDraw(selected, strata, result.size, result.census, result.size_raised)


def trusted_frame_from_days(days: Sequence[str], read_queue: Callable[[str], pd.DataFrame | None],
                            read_verdicts: Callable[[str], pd.DataFrame | None],
                            read_ground_truth: Callable[[str], pd.DataFrame | None]) -> tuple[TrustedFrame, list[str]]:
    """The trusted frame of the window's days; days without a review queue or labels are returned as missing
    (their ok cases are then outside the projection, and the caller says so)."""
    parts, missing = [], []
    for day in days:
        queue, verdicts = read_queue(day), read_verdicts(day)
        if queue is None or verdicts is None:
            missing.append(day)
            continue
        parts.append(trusted_day(day, queue, verdicts, read_ground_truth(day)))
    return combine_days(parts), missing
