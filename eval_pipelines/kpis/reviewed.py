"""Corrected (reviewed) KPI columns: design-based accuracy, automation-bias and override-error rates per KPI row.

The daily audit (:mod:`eval_pipelines.review.design`) is phase two of a two-phase design whose phase one is every
ok case of the day (the ``review_queue`` lake dataset); the adjudicated verdicts (``review_labels``) say whether
the AI output was right on each audited case. :func:`eval_pipelines.review.estimation.estimate_reviewed` turns
them into the day's figures over *all* the day's ok cases. A ``kpi_daily`` row is narrower: one system ×
model_version × segment. The segment is a stratum variable by default, the system and the model version are not,
so a row is in general a **domain that cuts across the estimation cells** (stratum × user action). Estimated here
as a domain, the way R's ``survey`` does ``svymean`` on a subset of a stratified design:

    p̂_D = Σ_i w_i δ_i y_i / Σ_i w_i δ_i,        w_i = N_g / n_g,

over the audited cases ``i`` with a verdict (``δ_i`` = the case is in the row), with the linearisation variance
``Σ_g N_g² (1 − n_g/N_g) s²_{z,g} / n_g`` of ``z_i = δ_i (y_i − p̂_D) / N̂_D`` over *all* the cell's audited cases
(zeros outside the row included), Satterthwaite degrees of freedom and the project's Korn–Graubard interval
(:func:`eval_pipelines.scoring.stats.domain_estimate_coded`, the estimator the scored runs use for slices; Särndal,
Swensson & Wretman 1992, §10.3). When the row is a union of whole cells (one system and version that day, the
segment a stratum variable) it is exactly ``estimate_reviewed``'s stratified estimator Σ_g W_g q̂_g (a test pins
it). It does not use the known ``N_gD`` of phase one on purpose: post-stratifying on cell × row would need an
audited case in every (cell, row) pair, which a 200-case audit almost never has for a narrow row.

**Rollups** (a week, a month, the day's total) are the same estimator over the period's cells, each day's cells
being separate strata of the period (each day is its own independent draw): never an average of daily rates.
So a day's rows are kept as *cell counts* (``review_cells``: per row and cell, phase-one cases, audited cases with
a verdict, and how many of them the AI got right; with 0/1 verdicts those counts are all the estimator reads)
in the warehouse table ``kpi_review_cells``, and every row, daily or rolled up, is estimated from them.

**Not available** (NaN), by a documented rule rather than a made-up number, when:

1. the audit's phase one does not cover the row's ok cases (``reviewed_population_cases`` ≠ cases − errors −
   timeouts: no review data that day, a stale ``review_queue``, or days of a period without an audit): the
   estimate would be about another population;
2. a cell holding cases of the row's domain has no verdict at all (its weight cannot be carried by anyone);
3. the estimate's own domain has fewer audited verdicts than ``impact.reviewed_min_audited`` (default 10).

Silent errors: ``silent_error_cases`` = automation_bias_rate × (the row's ok accepted cases, known exactly from
phase one) — the ratio estimator of the number of accepted mistakes — with the same interval scaled; priced at
``cost_per_silent_error`` into ``silent_error_cost``. Nothing here imports dagster or touches storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines.kpis.settings import DEFAULT_REVIEWED_MIN_AUDITED
from eval_pipelines.review.estimation import CELL_SEPARATOR
from eval_pipelines.scoring.stats import domain_estimate_coded

KEYS: tuple[str, ...] = ("system", "model_version", "segment")
PHASE_ONE_COLUMNS: tuple[str, ...] = ("event_id", *KEYS, "stratum", "review_action", "selected")
"""The ``review_queue`` columns read (phase one: every ok case of the day)."""
VERDICT_COLUMNS: tuple[str, ...] = ("event_id", "ai_correct")
"""The ``review_labels`` columns read (one adjudicated verdict per audited case; null = unanswered or disputed)."""

CELL_COLUMNS: tuple[str, ...] = (*KEYS, "cell", "review_action", "population", "audited", "ai_right")
"""One row per (KPI row key, estimation cell): the sufficient statistics of the reviewed estimates."""

ESTIMATES: dict[str, tuple[tuple[str, ...] | None, bool]] = {
    "reviewed_accuracy": (None, False),
    "automation_bias_rate": (("accepted",), True),
    "override_error_rate": (("overridden",), False),
}
"""Estimate -> (user actions of its domain, None for every ok case; whether y is "AI wrong" rather than right)."""

AUDITED_COUNT: dict[str, str] = {"reviewed_accuracy": "reviewed_cases_audited",
                                 "automation_bias_rate": "accepted_cases_audited",
                                 "override_error_rate": "overridden_cases_audited"}
REVIEW_COUNT_COLUMNS: tuple[str, ...] = ("reviewed_population_cases", *AUDITED_COUNT.values())
REVIEW_FLOAT_COLUMNS: tuple[str, ...] = (
    *(f"{name}{suffix}" for name in ESTIMATES for suffix in ("", "_ci_low", "_ci_high")),
    "silent_error_cases", "silent_error_cost", "silent_error_cost_ci_low", "silent_error_cost_ci_high",
)
DEFAULT_MIN_AUDITED = DEFAULT_REVIEWED_MIN_AUDITED


@dataclass(frozen=True)
class RowNote:
    """Why an estimate of a row is not available (for the asset's metadata)."""

    key: tuple
    estimate: str
    reason: str


def review_cells(phase_one: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """``CELL_COLUMNS`` of one day from the ``review_queue`` frame and the ``review_labels`` verdicts.

    Every phase-one row is counted in exactly one (key, cell) ``population``; every verdict with an answer in
    exactly one ``audited`` (so Σ audited = answered verdicts: the conservation the tests pin). A verdict for an
    event that is not in phase one, or not in the sample, or twice, is an error naming the count: it has no
    inclusion probability and cannot enter a design-based estimate.
    """
    missing = [c for c in PHASE_ONE_COLUMNS if c not in phase_one.columns]
    if missing:
        raise KeyError(f"review_queue frame lacks column(s) {missing}")
    missing = [c for c in VERDICT_COLUMNS if c not in verdicts.columns]
    if missing:
        raise KeyError(f"review_labels frame lacks column(s) {missing}")
    if verdicts["event_id"].duplicated().any():
        raise ValueError(f"review_labels has {int(verdicts['event_id'].duplicated().sum())} duplicate event_id(s): "
                         "one adjudicated verdict per event")
    position = pd.Index(phase_one["event_id"].astype(str)).get_indexer(verdicts["event_id"].astype(str))
    if (position < 0).any():
        raise ValueError(f"{int((position < 0).sum())} review_labels verdict(s) for events not in the day's "
                         "review_queue (phase one): re-materialise review_queue and review_labels together")
    selected = phase_one["selected"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if not selected[position].all():
        raise ValueError(f"{int((~selected[position]).sum())} verdict(s) for cases outside the audit sample "
                         "(selected false): no inclusion probability, they cannot enter the estimate")
    flags = verdicts["ai_correct"].astype("boolean")
    answered = flags.notna().to_numpy(dtype=bool)
    audited = np.zeros(len(phase_one), dtype=np.int64)
    right = np.zeros(len(phase_one), dtype=np.int64)
    audited[position[answered]] = 1
    right[position[answered]] = flags[answered].to_numpy(dtype=bool).astype(np.int64)

    from eval_pipelines.kpis.metrics import group_ids  # metrics imports this module: import late

    ids, groups = group_ids(phase_one[[*KEYS, "stratum", "review_action"]])
    k = len(groups)
    out = groups[list(KEYS)].copy()
    out["cell"] = groups["stratum"].astype(str) + CELL_SEPARATOR + groups["review_action"].astype(str)
    out["review_action"] = groups["review_action"].astype(str)
    out["population"] = np.bincount(ids, minlength=k).astype(np.int64)
    out["audited"] = np.bincount(ids, weights=audited, minlength=k).round().astype(np.int64)
    out["ai_right"] = np.bincount(ids, weights=right, minlength=k).round().astype(np.int64)
    return out.reset_index(drop=True)


def _codes(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    if not columns:
        return np.zeros(len(frame), dtype=np.int64), pd.DataFrame(index=range(1 if len(frame) else 0))
    keys = frame[list(columns)].astype(str)
    codes, uniques = pd.MultiIndex.from_frame(keys).factorize(sort=True)
    return codes.astype(np.int64), pd.DataFrame(list(uniques), columns=list(columns))


def estimate_rows(cells: pd.DataFrame, group_by: Sequence[str], confidence: float,
                  min_audited: int = DEFAULT_MIN_AUDITED, identity: Sequence[str] = ()
                  ) -> tuple[pd.DataFrame, list[RowNote]]:
    """Per group of ``group_by`` (e.g. the KPI keys, or a period start + keys; none = everything): the
    ``REVIEW_COUNT_COLUMNS`` and the three estimates with their intervals, plus ``_accepted_population``.

    ``cells`` are ``CELL_COLUMNS`` rows plus the ``identity`` columns that make a cell a separate stratum (the
    day, ``kpi_date``, when several days are combined). Group values are compared as strings.
    Returns (one row per group present in ``cells``, the notes of every estimate that is not available).
    """
    group_by, identity = list(group_by), list(identity)
    nan = float("nan")
    strata, _ = _codes(cells, [*identity, "cell"])
    groups, group_keys = _codes(cells, group_by)
    population = cells["population"].to_numpy(dtype=np.int64)
    audited = cells["audited"].to_numpy(dtype=np.int64)
    right = cells["ai_right"].to_numpy(dtype=np.int64)
    if (audited > population).any() or (right > audited).any() or (right < 0).any():
        raise ValueError("review cells must have 0 <= ai_right <= audited <= population")
    h = int(strata.max()) + 1 if len(strata) else 0
    big_n = np.bincount(strata, weights=population, minlength=h)
    small_n = np.bincount(strata, weights=audited, minlength=h)
    # The audited cases as 0/1 values (ai_right ones, then zeros, per cell row): all the estimator reads.
    row_of_case = np.repeat(np.arange(len(cells)), audited)
    starts = np.concatenate([[0], np.cumsum(audited)[:-1]]) if len(cells) else np.zeros(0, dtype=np.int64)
    rank = np.arange(len(row_of_case)) - starts[row_of_case]
    case_right = (rank < right[row_of_case]).astype(np.float64)
    # Strata without a verdict have no weight to give: re-code the rest 0..H'-1 for the estimator.
    answered = small_n > 0
    recode = np.cumsum(answered) - 1
    case_strata = recode[strata[row_of_case]]
    est_big_n, est_small_n = big_n[answered], small_n[answered]
    actions = cells["review_action"].astype(str).to_numpy()

    rows: list[dict[str, object]] = []
    notes: list[RowNote] = []
    for g in range(len(group_keys)):
        in_group = groups == g
        key = tuple(group_keys.iloc[g]) if group_by else ()
        row: dict[str, object] = dict(zip(group_by, key, strict=True))
        row["reviewed_population_cases"] = int(population[in_group].sum())
        for name, (domain_actions, wrong) in ESTIMATES.items():
            domain = in_group if domain_actions is None else in_group & np.isin(actions, domain_actions)
            count = int(audited[domain].sum())
            row[AUDITED_COUNT[name]] = count
            if name == "automation_bias_rate":
                row["_accepted_population"] = int(population[domain].sum())
            size = int(population[domain].sum())
            reason = ""
            blind = np.unique(strata[domain & (population > 0)])
            blind = blind[small_n[blind] == 0]
            if size == 0:
                reason = "no case in the domain"
            elif len(blind):
                share = float(population[domain & np.isin(strata, blind)].sum()) / size
                reason = f"{len(blind)} cell(s) holding {share:.1%} of the domain have no verdict"
            elif count < min_audited:
                reason = f"{count} audited verdict(s) < impact.reviewed_min_audited = {min_audited}"
            if reason:
                row[name] = row[f"{name}_ci_low"] = row[f"{name}_ci_high"] = nan
                notes.append(RowNote(key, name, reason))
                continue
            member = domain[row_of_case]
            values = 1.0 - case_right if wrong else case_right
            found = domain_estimate_coded(values, case_strata, est_big_n, est_small_n, member, confidence)
            row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = found.estimate, found.ci_low, found.ci_high
        rows.append(row)
    columns = [*group_by, *REVIEW_COUNT_COLUMNS, "_accepted_population",
               *(f"{name}{s}" for name in ESTIMATES for s in ("", "_ci_low", "_ci_high"))]
    return pd.DataFrame(rows, columns=columns), notes


def attach(frame: pd.DataFrame, cells: pd.DataFrame | None, group_by: Sequence[str], confidence: float,
           min_audited: int = DEFAULT_MIN_AUDITED, identity: Sequence[str] = ()) -> list[RowNote]:
    """Add the ``REVIEW_COUNT_COLUMNS`` and ``REVIEW_FLOAT_COLUMNS`` to KPI rows ``frame`` in place.

    ``frame`` has the ``group_by`` columns, ``cases``, ``error_cases``, ``timeout_cases``, ``currency`` and
    ``cost_per_silent_error``. ``cells``: the rows' review cells (None or empty: no audit, every estimate NaN and
    the counts 0). Applies the not-available rules of the module docstring; returns the notes.
    """
    group_by = list(group_by)
    nan = float("nan")
    no_audit = cells is None or cells.empty or frame.empty
    for column in REVIEW_COUNT_COLUMNS:
        if column not in frame.columns or not no_audit:  # summed rows without their cells keep their sums
            frame[column] = 0
    for column in REVIEW_FLOAT_COLUMNS:
        frame[column] = nan
    if no_audit:
        return []
    found, notes = estimate_rows(cells, group_by, confidence, min_audited, identity)
    if group_by:
        keys = frame[group_by].astype(str)
        found[group_by] = found[group_by].astype(str)
        merged = keys.merge(found, on=group_by, how="left", validate="one_to_one")
    else:
        merged = found.iloc[:1].reset_index(drop=True) if len(found) else pd.DataFrame(index=range(len(frame)))
    for column in REVIEW_COUNT_COLUMNS:
        frame[column] = merged[column].fillna(0).to_numpy(dtype=np.int64) if column in merged else 0
    ok_cases = (frame["cases"] - frame["error_cases"] - frame["timeout_cases"]).to_numpy(dtype=np.int64)
    covered = frame["reviewed_population_cases"].to_numpy() == ok_cases
    for index in np.flatnonzero(~covered & (frame["reviewed_population_cases"].to_numpy() > 0)):
        key = tuple(frame[group_by].astype(str).iloc[index]) if group_by else ()
        notes.append(RowNote(key, "all", f"phase one covers {int(frame['reviewed_population_cases'].iloc[index])} "
                                         f"of {int(ok_cases[index])} ok cases: not estimated"))
    for name in ESTIMATES:
        for suffix in ("", "_ci_low", "_ci_high"):
            column = f"{name}{suffix}"
            frame[column] = np.where(covered, merged[column].to_numpy(dtype=float), nan) if column in merged \
                else nan
    accepted = merged["_accepted_population"].fillna(0).to_numpy(dtype=float) if "_accepted_population" in merged \
        else np.zeros(len(frame))
    cost = frame["cost_per_silent_error"].to_numpy(dtype=float)
    frame["silent_error_cases"] = frame["automation_bias_rate"].to_numpy(dtype=float) * accepted
    # Money in the row's currency; a rollup mixing currencies has none to give.
    priced = np.where(frame["currency"].astype(str).to_numpy() == "XXX", nan, cost * accepted)
    frame["silent_error_cost"] = frame["automation_bias_rate"].to_numpy(dtype=float) * priced
    frame["silent_error_cost_ci_low"] = frame["automation_bias_rate_ci_low"].to_numpy(dtype=float) * priced
    frame["silent_error_cost_ci_high"] = frame["automation_bias_rate_ci_high"].to_numpy(dtype=float) * priced
    return notes
