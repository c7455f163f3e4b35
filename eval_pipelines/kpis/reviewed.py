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
    # Verdicts are matched against the selected rows only (a few thousand), not the whole phase one: hashing a
    # million event ids cost more than the rest of the KPIs' audit step.
    selected = phase_one["selected"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    sampled_rows = np.flatnonzero(selected)
    wanted = verdicts["event_id"].astype(str).to_numpy()
    found = pd.Index(phase_one["event_id"].to_numpy()[sampled_rows].astype(str)).get_indexer(wanted)
    if (found < 0).any():
        anywhere = pd.Index(phase_one["event_id"].astype(str)).get_indexer(wanted[found < 0])
        if (anywhere < 0).any():
            raise ValueError(f"{int((anywhere < 0).sum())} review_labels verdict(s) for events not in the day's "
                             "review_queue (phase one): re-materialise review_queue and review_labels together")
        raise ValueError(f"{int((found < 0).sum())} verdict(s) for cases outside the audit sample "
                         "(selected false): no inclusion probability, they cannot enter the estimate")
    position = sampled_rows[found]
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


_JOIN = "\x1f"


def _codes(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Dense codes of the distinct values of ``columns`` (compared as strings), and those values, sorted.

    Plain numpy over joined strings: the cell tables are small (hundreds of rows), where pandas' per-call
    overhead would cost more than the estimates themselves.
    """
    if not columns:
        return np.zeros(len(frame), dtype=np.int64), pd.DataFrame(index=range(1 if len(frame) else 0))
    joined = frame[columns[0]].astype(str).to_numpy(dtype=object)
    for column in columns[1:]:
        joined = joined + _JOIN + frame[column].astype(str).to_numpy(dtype=object)
    uniques, codes = np.unique(joined.astype(str), return_inverse=True)
    values = pd.DataFrame([u.split(_JOIN) for u in uniques], columns=list(columns), dtype=object)
    return codes.ravel().astype(np.int64), values


def estimate_rows(cells: pd.DataFrame, group_by: Sequence[str], confidence: float,
                  min_audited: int = DEFAULT_MIN_AUDITED, identity: Sequence[str] = (),
                  names: Sequence[str] = tuple(ESTIMATES)) -> tuple[pd.DataFrame, list[RowNote]]:
    """Per group of ``group_by`` (e.g. the KPI keys, or a period start + keys; none = everything): the
    ``REVIEW_COUNT_COLUMNS`` and the three estimates with their intervals, plus ``_accepted_population``.

    ``cells`` are ``CELL_COLUMNS`` rows plus the ``identity`` columns that make a cell a separate stratum (the
    day, ``kpi_date``, when several days are combined). Group values are compared as strings.
    ``names``: the estimates to compute (all three by default; the others are left NaN).
    Returns (one row per group present in ``cells``, the notes of every estimate that is not available).
    """
    group_by, identity = list(group_by), list(identity)
    strata, _ = _codes(cells, [*identity, "cell"])
    groups, group_keys = _codes(cells, group_by)
    actions = cells["review_action"].astype(str).to_numpy()
    found = estimate_coded(strata, groups, len(group_keys), actions, cells["population"].to_numpy(dtype=np.int64),
                           cells["audited"].to_numpy(dtype=np.int64), cells["ai_right"].to_numpy(dtype=np.int64),
                           confidence, min_audited, names)
    key_rows = list(group_keys.itertuples(index=False, name=None)) if group_by else [()] * len(group_keys)
    rows = [{**dict(zip(group_by, key_rows[g], strict=True)), **row} for g, row in enumerate(found)]
    notes = [RowNote(key_rows[g], name, reason) for g, row in enumerate(found)
             for name, reason in row.pop("_notes").items()]
    columns = [*group_by, *REVIEW_COUNT_COLUMNS, "_accepted_population",
               *(f"{name}{s}" for name in ESTIMATES for s in ("", "_ci_low", "_ci_high"))]
    return pd.DataFrame(rows, columns=columns), notes


def estimate_coded(strata: np.ndarray, groups: np.ndarray, n_groups: int, actions: np.ndarray,
                   population: np.ndarray, audited: np.ndarray, right: np.ndarray, confidence: float,
                   min_audited: int = DEFAULT_MIN_AUDITED, names: Sequence[str] = tuple(ESTIMATES)
                   ) -> list[dict[str, object]]:
    """:func:`estimate_rows` on coded cell rows: per cell row its stratum code (0..H-1), group code (0..G-1, or
    -1 for a row in no reported group: it still counts in its stratum's N_g and n_g), user action and counts.

    One dict per group with the counts, the estimates and ``_notes`` (estimate -> why not available).
    """
    nan = float("nan")
    strata = np.asarray(strata, dtype=np.int64)
    if (audited > population).any() or (right > audited).any() or (right < 0).any():
        raise ValueError("review cells must have 0 <= ai_right <= audited <= population")
    h = int(strata.max()) + 1 if len(strata) else 0
    big_n = np.bincount(strata, weights=population, minlength=h)
    small_n = np.bincount(strata, weights=audited, minlength=h)
    # The audited cases as 0/1 values (ai_right ones, then zeros, per cell row): all the estimator reads.
    row_of_case = np.repeat(np.arange(len(strata)), audited)
    starts = np.concatenate([[0], np.cumsum(audited)[:-1]]) if len(strata) else np.zeros(0, dtype=np.int64)
    rank = np.arange(len(row_of_case)) - starts[row_of_case]
    case_right = (rank < right[row_of_case]).astype(np.float64)
    # Strata without a verdict have no weight to give: re-code the rest 0..H'-1 for the estimator.
    answered = small_n > 0
    recode = np.cumsum(answered) - 1
    case_strata = recode[strata[row_of_case]]
    est_big_n, est_small_n = big_n[answered], small_n[answered]
    is_action = {a: np.isin(actions, a) for a, _ in ESTIMATES.values() if a is not None}
    blind_cell = (population > 0) & (small_n[strata] == 0)

    rows: list[dict[str, object]] = []
    for g in range(n_groups):
        in_group = groups == g
        row: dict[str, object] = {"reviewed_population_cases": int(population[in_group].sum())}
        notes: dict[str, str] = {}
        for name, (domain_actions, wrong) in ESTIMATES.items():
            domain = in_group if domain_actions is None else in_group & is_action[domain_actions]
            count = int(audited[domain].sum())
            size = int(population[domain].sum())
            row[AUDITED_COUNT[name]] = count
            if name == "automation_bias_rate":
                row["_accepted_population"] = size
            reason = ""
            blind = domain & blind_cell
            if name not in names:
                reason = "not asked for"
            elif size == 0:
                reason = "no case in the domain"
            elif blind.any():
                cells_blind = len(np.unique(strata[blind]))
                reason = (f"{cells_blind} cell(s) holding {population[blind].sum() / size:.1%} of the domain have "
                          "no verdict")
            elif count < min_audited:
                reason = f"{count} audited verdict(s) < impact.reviewed_min_audited = {min_audited}"
            if reason:
                row[name] = row[f"{name}_ci_low"] = row[f"{name}_ci_high"] = nan
                if name in names:
                    notes[name] = reason
                continue
            member = domain[row_of_case]
            values = 1.0 - case_right if wrong else case_right
            found = domain_estimate_coded(values, case_strata, est_big_n, est_small_n, member, confidence)
            row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = found.estimate, found.ci_low, found.ci_high
        row["_notes"] = notes
        rows.append(row)
    return rows


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
