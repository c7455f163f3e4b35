"""A scored run, end to end and without dagster: replay → score → summarise → compare → edge cases → gate.

``score_run`` takes the cases (the eval set's, with its design, plus the library entries to replay), the system
under test and the baseline system, and returns everything the asset stores: the per-case frame (lake and
``scored_cases``), the summary rows (``scored_runs``), the per-entry edge-case outcomes (the library's lifecycle)
and the gate table (the blocking check and ``eval-pipelines gate``).

The baseline is replayed on exactly the same cases in the same run, so the comparison is paired by construction;
for the default baseline, production, "replaying" is reading the logged outputs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eval_pipelines.evalsets.trusted import REVIEWED, TRUSTED_SOURCES
from eval_pipelines.review.agreement import Agreement
from eval_pipelines.scoring.adapters import OUTPUT_COLUMNS, LoggedSystem, SystemUnderTest, replay_inputs
from eval_pipelines.scoring.gate import NOT_JUDGED, evaluate_gate, gate_passed
from eval_pipelines.scoring.judge import judge_agreement
from eval_pipelines.scoring.scorers import (
    KNOWN_WRONG_NORMALISED,
    KNOWN_WRONG_OUTPUT,
    known_wrong_columns,
    score_frame,
    traits,
)
from eval_pipelines.scoring.settings import (
    AnyCriterion,
    NonInferiorityCriterion,
    RegressionCriterion,
    ScorerConfig,
    ScoringConfig,
)
from eval_pipelines.scoring.summarise import (
    ALL,
    EDGE_CASES,
    EVAL_SET,
    SUMMARY_COLUMNS,
    Design,
    baseline_column,
    edge_case_outcomes,
    edge_case_summary,
    score_column,
    slice_masks,
    summarise,
)

CASE_COLUMNS: tuple[str, ...] = (
    "case_set", "event_id", "entry_id", "stratum", "weight", "split", "segment", "model_version", "failure_mode",
    "system", "timestamp", "input_text", "features", "ai_output", "label", "label_source", KNOWN_WRONG_OUTPUT,
    KNOWN_WRONG_NORMALISED,
)
"""Columns of the cases a run replays (eval-set cases and library entries brought to one shape).

``known_wrong_output`` / ``known_wrong_normalised`` (:func:`~eval_pipelines.scoring.scorers.known_wrong_columns`):
production's output on a known error (labeled, no label), which the match scorers score 0 in any replayed output
equal to it; any other output on such a case is unscored (its right answer is unknown)."""

LIBRARY = "library"
"""``label_source`` / ``label_basis`` of edge-case rows: the library entry's expected output."""

TRUSTED, IMPLICIT_BASIS, MIXED = "trusted", "implicit", "mixed"
"""``label_basis`` of eval-set summary rows: every case's label reviewed or ground truth / none / some."""

UNSCORED_KNOWN_ERRORS = "n_unscored_known_error"
"""Summary column: the slice's known errors the scorer left unscored (output differs from the known-wrong one)."""

LOGGED_COLUMNS: tuple[str, ...] = ("confidence", "latency_ms", "cost_usd", "status")
"""Production's logged operational columns, attached to the cases for the ``logged`` adapter."""


def eval_set_cases_frame(cases: pd.DataFrame) -> pd.DataFrame:
    """eval_set_cases rows as run cases: ``failure_mode`` is production's failure tags ('|'-joined)."""
    frame = pd.DataFrame({column: cases[column] if column in cases.columns else None for column in CASE_COLUMNS})
    frame["case_set"] = EVAL_SET
    frame["entry_id"] = pd.array([None] * len(frame), dtype="str")
    frame["failure_mode"] = cases["failure_tags"].astype("str").fillna("") if "failure_tags" in cases else ""
    frame["weight"] = pd.to_numeric(frame["weight"], errors="coerce")
    # eval_set_cases keeps production's label, output and verdict, which is all a known error needs: older
    # eval-set versions get the same treatment without a new stored column.
    missing = pd.Series(pd.NA, index=cases.index, dtype="object")
    known = known_wrong_columns(cases["label"], cases["ai_output"],
                                *(cases.get(c, missing) for c in ("ai_correct", "correctness")))
    for column, values in known.items():
        frame[column] = values
    return _typed(frame)


def edge_cases_frame(entries: pd.DataFrame) -> pd.DataFrame:
    """Library entries (``edge_cases`` rows) as run cases: the representative case with its expected output."""
    n = len(entries)

    def column(name: str) -> object:
        return entries[name] if name in entries.columns else [None] * n

    frame = pd.DataFrame({
        "case_set": [EDGE_CASES] * n,
        "event_id": column("representative_event_id"),
        "entry_id": column("entry_id"),
        "stratum": [None] * n,
        "weight": np.full(n, np.nan),
        "split": [None] * n,
        "segment": column("segment"),
        "model_version": column("model_version"),
        "failure_mode": column("failure_mode"),
        "system": column("system"),
        "timestamp": column("first_seen"),
        "input_text": column("input_text"),
        "features": [None] * n,
        "ai_output": column("ai_output"),
        "label": column("expected_output"),
        "label_source": [LIBRARY] * n,
        KNOWN_WRONG_OUTPUT: [None] * n,
        KNOWN_WRONG_NORMALISED: np.zeros(n, dtype=bool),
    }, index=pd.RangeIndex(n))
    frame = _typed(frame)
    # Production's call status is not stored with an entry, but its failure tags say whether it errored.
    tags = pd.Series(column("failure_tags"), dtype="str").fillna("").str.split("|")
    frame["status"] = np.where(tags.map(lambda t: "error" in t), "error",
                               np.where(tags.map(lambda t: "timeout" in t), "timeout", "ok"))
    for name in LOGGED_COLUMNS[:-1]:
        frame[name] = np.nan
    return frame


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    for column in CASE_COLUMNS:
        if column == "weight":
            frame[column] = frame[column].astype("float64")
        elif column == KNOWN_WRONG_NORMALISED:
            frame[column] = frame[column].astype("boolean").fillna(False).astype(bool)
        elif column == "timestamp":
            frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce", format="mixed")
        else:
            frame[column] = frame[column].astype("str")
    return frame[list(CASE_COLUMNS)]


def attach_logged(cases: pd.DataFrame, logged: pd.DataFrame | None) -> pd.DataFrame:
    """Add production's logged confidence, latency, cost and status (from labeled_cases) by event_id."""
    if logged is None or logged.empty:
        return cases.assign(**{c: np.nan for c in LOGGED_COLUMNS[:-1]}, status="ok")
    details = logged.drop_duplicates("event_id").set_index("event_id")
    ids = cases["event_id"].astype("str")
    out = cases.copy()
    for column in LOGGED_COLUMNS:
        values = details[column].reindex(ids).to_numpy() if column in details.columns else None
        if column == "status":
            out[column] = pd.Series(values, dtype="str").fillna("ok").to_numpy() if values is not None else "ok"
        else:
            out[column] = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64) \
                if values is not None else np.nan
    return out


def replay(system: SystemUnderTest, cases: pd.DataFrame) -> pd.DataFrame:
    """The system's outputs for the cases, row for row. The logged adapter also sees ``ai_output`` and the logged
    columns; every other adapter only the replay inputs."""
    if isinstance(system, LoggedSystem):
        return system.predict(cases.reset_index(drop=True))
    return system.predict(replay_inputs(cases))


@dataclass(frozen=True)
class ScoredRun:
    """Everything one run produces."""

    cases: pd.DataFrame  # one row per replayed case: case columns, outputs, scores, baseline outputs and scores
    summary: pd.DataFrame  # SUMMARY_COLUMNS rows, both case sets
    edge_outcomes: pd.DataFrame  # entry_id, failure_mode, passed, cases, baseline_passed
    gate: pd.DataFrame  # GATE_COLUMNS
    passed: bool
    timings: dict[str, float] = field(default_factory=dict)
    judge_agreements: dict[str, Agreement] = field(default_factory=dict)  # llm_judge scorer -> κ vs reviewers

    @property
    def failures(self) -> pd.DataFrame:
        return self.gate[~self.gate["passed"].astype(bool)]


def score_by_case_set(frame: pd.DataFrame, scorers: Sequence[ScorerConfig]) -> dict[str, np.ndarray]:
    """:func:`score_frame` on each case set of ``frame`` separately, reassembled in the frame's row order.

    Per-case scorers give the same numbers either way; frame-level ones (ECE's bins, a custom scorer) must not mix
    the eval set, a weighted sample of production, with the edge cases, a hand-picked set without a design.
    """
    if "case_set" not in frame.columns:
        return score_frame(frame, scorers)
    out = {scorer.name: np.full(len(frame), np.nan) for scorer in scorers}
    for _, rows in frame.groupby(frame["case_set"].astype("str").fillna(""), sort=False).indices.items():
        for name, values in score_frame(frame.iloc[rows].reset_index(drop=True), scorers).items():
            out[name][rows] = values
    return out


def scored_frame(cases: pd.DataFrame, outputs: pd.DataFrame, baseline: pd.DataFrame | None,
                 config: ScoringConfig) -> pd.DataFrame:
    """Cases + outputs + per-scorer scores (and the baseline's), in one wide frame; each case set scored apart."""
    frame = pd.concat([cases.drop(columns=[c for c in LOGGED_COLUMNS if c in cases.columns]).reset_index(drop=True),
                       outputs.reset_index(drop=True)], axis=1)
    scores = score_by_case_set(frame, config.scorers)
    columns: dict[str, object] = {score_column(name): values for name, values in scores.items()}
    if baseline is not None:
        design = [c for c in ("case_set", "stratum", "weight", "label", KNOWN_WRONG_OUTPUT, KNOWN_WRONG_NORMALISED)
                  if c in cases.columns]
        base = pd.concat([cases[design].reset_index(drop=True), baseline.reset_index(drop=True)], axis=1)
        for name, values in score_by_case_set(base, config.scorers).items():
            columns[baseline_column(name)] = values
        columns["baseline_output"] = baseline["output"].to_numpy()
        columns["baseline_status"] = baseline["status"].to_numpy()
    return frame.assign(**columns)


def win_loss(frame: pd.DataFrame, scorer: str, higher_is_better: bool) -> pd.Series:
    """Per case: 'win' / 'loss' / 'tie' against the baseline on one scorer (null when either is unscored)."""
    cand = frame[score_column(scorer)].to_numpy(dtype=np.float64)
    base = frame[baseline_column(scorer)].to_numpy(dtype=np.float64)
    d = (cand - base) * (1.0 if higher_is_better else -1.0)
    out = np.where(np.isnan(d), None, np.where(d > 0, "win", np.where(d < 0, "loss", "tie")))
    return pd.Series(out, index=frame.index, dtype="str")


def with_unscored_known_errors(summary: pd.DataFrame, frame: pd.DataFrame, config: ScoringConfig,
                               with_baseline: bool) -> pd.DataFrame:
    """``summary`` plus ``n_unscored_known_error`` (and ``baseline_n_unscored_known_error``) per row.

    The count is the slice's known errors (cases with a ``known_wrong_output``) on which the scorer gave the system
    no score: its output is not the known-wrong one, and nothing else is known about the right answer. Edge-case
    rows and the edge-case summary have no known errors and count 0.
    """
    summary = summary.copy()
    counts = {UNSCORED_KNOWN_ERRORS: np.zeros(len(summary), dtype=np.int64)}
    if with_baseline:
        counts[f"baseline_{UNSCORED_KNOWN_ERRORS}"] = np.zeros(len(summary), dtype=np.int64)
    eval_part = frame[frame["case_set"] == EVAL_SET].reset_index(drop=True)
    if KNOWN_WRONG_OUTPUT in eval_part.columns and eval_part[KNOWN_WRONG_OUTPUT].notna().any():
        known = eval_part[KNOWN_WRONG_OUTPUT].notna().to_numpy(dtype=bool)
        masks = {(dim, level): mask for dim, level, mask in slice_masks(eval_part, config.slices)}
        position = {key: i for i, key in enumerate(zip(summary["case_set"], summary["scorer"], summary["slice_dim"],
                                                       summary["slice_value"], strict=True))}
        for scorer in config.scorers:
            columns = {UNSCORED_KNOWN_ERRORS: score_column(scorer.name)}
            if with_baseline:
                columns[f"baseline_{UNSCORED_KNOWN_ERRORS}"] = baseline_column(scorer.name)
            for target, source in columns.items():
                unscored = known & np.isnan(eval_part[source].to_numpy(dtype=np.float64))
                for (dim, level), mask in masks.items():
                    row = position.get((EVAL_SET, scorer.name, dim, level))
                    if row is not None:
                        counts[target][row] = int(np.sum(unscored & mask))
    return summary.assign(**counts)


def self_labeled(frame: pd.DataFrame) -> np.ndarray:
    """Eval-set cases whose label is production's own output from an untrusted (implicit) source: an accepted
    suggestion labeled with itself, where the production baseline is right by construction. Never on a trusted
    set (docs/eval_sets.md, "Trusted labels")."""
    source = frame["label_source"].astype("str") if "label_source" in frame.columns \
        else pd.Series(pd.NA, index=frame.index, dtype="str")
    trusted = source.isin(TRUSTED_SOURCES).to_numpy(dtype=bool)
    label, output = frame["label"].astype("str"), frame["ai_output"].astype("str")
    same = (label.notna() & (label == output)).to_numpy(dtype=bool, na_value=False)
    return ~trusted & same


def label_basis(frame: pd.DataFrame) -> str:
    """``trusted`` when every eval-set case has a reviewed or ground-truth label, ``implicit`` when none has,
    ``mixed`` otherwise."""
    source = frame["label_source"].astype("str") if "label_source" in frame.columns \
        else pd.Series(pd.NA, index=frame.index, dtype="str")
    trusted = source.isin(TRUSTED_SOURCES).to_numpy(dtype=bool)
    return TRUSTED if trusted.all() else IMPLICIT_BASIS if not trusted.any() else MIXED


def with_label_basis(summary: pd.DataFrame, frame: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """``summary`` with ``label_basis`` and ``n_self_labeled`` (per slice: :func:`self_labeled` cases) per row."""
    summary = summary.copy()
    summary["label_basis"] = LIBRARY
    summary["n_self_labeled"] = 0
    eval_part = frame[frame["case_set"] == EVAL_SET].reset_index(drop=True)
    rows = (summary["case_set"] == EVAL_SET).to_numpy()
    if not len(eval_part):
        return summary
    summary.loc[rows, "label_basis"] = label_basis(eval_part)
    flagged = self_labeled(eval_part)
    if flagged.any():
        counts = {(dim, level): int(np.sum(flagged & mask)) for dim, level, mask in
                  slice_masks(eval_part, config.slices)}
        keys = zip(summary["slice_dim"], summary["slice_value"], strict=True)
        summary["n_self_labeled"] = np.where(rows, [counts.get(key, 0) for key in keys], 0)
    return summary


def note_implicit_labels(gate: pd.DataFrame, criteria: Sequence[AnyCriterion], summary: pd.DataFrame,
                         baseline_is_production: bool) -> pd.DataFrame:
    """The gate with each comparison criterion's detail saying when it rests on self-labeled cases: an
    implicit-label set scores production against its own output on accepted cases, so the difference is biased
    toward the production baseline (a candidate that fixes an accepted mistake is scored wrong there)."""
    gate = gate.copy()
    whole = summary[(summary["case_set"] == EVAL_SET) & (summary["slice_dim"] == ALL)]
    for row, criterion in enumerate(criteria):
        if not isinstance(criterion, (NonInferiorityCriterion, RegressionCriterion)):
            continue
        match = whole[whole["scorer"] == criterion.scorer]
        count = int(match["n_self_labeled"].iloc[0]) if len(match) else 0
        if count:
            whom = "production (the baseline)" if baseline_is_production else "production"
            note = (f"; IMPLICIT LABELS: {count} eval-set case(s) are labeled with {whom}'s own output, right by "
                    "construction, so the difference is biased toward production (eval_set.labels: trusted)")
            gate.loc[gate.index[row], "detail"] = str(gate.loc[gate.index[row], "detail"]) + note
    return gate


def note_unscored_known_errors(gate: pd.DataFrame, criteria: Sequence[AnyCriterion],
                               summary: pd.DataFrame) -> pd.DataFrame:
    """The gate with each eval-set criterion's detail saying how many known errors it could not score.

    Such a case is an AI error in production, but a candidate that answers it differently has no verdict there:
    it is left out of the candidate's estimate (and of the paired comparison), so the reader must know how many.
    """
    gate = gate.copy()
    for row, criterion in enumerate(criteria):
        scorer, spec = getattr(criterion, "scorer", None), getattr(criterion, "slice", None)
        if scorer is None or spec is None or UNSCORED_KNOWN_ERRORS not in summary.columns:
            continue
        dim, _, level = (ALL, "", ALL) if spec == ALL else spec.partition("=")
        match = summary[(summary["case_set"] == EVAL_SET) & (summary["scorer"] == scorer)
                        & (summary["slice_dim"] == dim) & (summary["slice_value"] == level)]
        if match.empty:
            continue
        found = match.iloc[0]
        candidate = int(found[UNSCORED_KNOWN_ERRORS])
        baseline = int(found.get(f"baseline_{UNSCORED_KNOWN_ERRORS}", 0))
        if candidate or baseline:
            note = (f"; {candidate} known-error case(s) unscored for the candidate"
                    + (f" and {baseline} for the baseline" if baseline else "")
                    + " (production's output there is known wrong, the right answer is not; an output other "
                      "than production's has no verdict)")
            gate.loc[gate.index[row], "detail"] = str(gate.loc[gate.index[row], "detail"]) + note
    return gate


def restrict_to_systems(cases: pd.DataFrame, strata: pd.DataFrame, edge_cases: pd.DataFrame | None,
                        systems: Sequence[str] | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The eval-set cases, strata and library entries of ``systems`` only (all of them when ``systems`` is None).

    Keeping whole strata keeps the design: the kept strata are a stratified sample of their production cases, so
    estimates project to the candidate's systems. A stratum holding cases of several systems cannot be split that
    way (its population count is not per system), so it is an error naming the fix.
    """
    if not systems:
        return cases, strata, edge_cases
    wanted = set(systems)
    mine = cases["system"].astype("str").isin(wanted).to_numpy(dtype=bool)
    kinds = pd.DataFrame({"stratum": cases["stratum"].astype(str), "mine": mine}).groupby("stratum")["mine"]
    mixed = sorted(kinds.any().index[kinds.any() & ~kinds.all()])
    if mixed:
        raise ValueError(f"eval-set strata {mixed[:3]}{' ...' if len(mixed) > 3 else ''} hold cases of systems "
                         f"{sorted(wanted)} and of others: a candidate restricted to systems needs strata that keep "
                         "the systems apart; add 'system' (or a per-system model_version) to eval_set.strata")
    kept = cases[mine].reset_index(drop=True)
    kept_strata = strata[strata["stratum"].astype(str).isin(set(kept["stratum"].astype(str)))].reset_index(drop=True)
    edges = edge_cases
    if edge_cases is not None and len(edge_cases):
        edges = edge_cases[edge_cases["system"].astype("str").isin(wanted).to_numpy(dtype=bool)].reset_index(
            drop=True)
    return kept, kept_strata, edges


def reviewed_verdicts(eval_part: pd.DataFrame, reviewed: pd.DataFrame | None, config: ScoringConfig
                      ) -> np.ndarray:
    """Per eval-set case: the reviewers' verdict on the replayed ``output`` (1.0 right, 0.0 wrong), NaN without one.

    The reviewed label of a case is the review loop's adjudicated ``reviewed_label`` (``reviewed``: ``event_id``,
    ``reviewed_label``, from the ``review_labels`` lake datasets), else the case's own label when the eval set took
    it from review (``label_source`` reviewed). The verdict is the run's ``primary_scorer`` applied to the output
    against that label — for the logged output this is the review loop's ``ai_correct``; for another output it is
    what the reviewers' label says of it. A case whose call failed (status not ok) has no verdict: the judge was not
    asked about it, so it says nothing about the judge.
    """
    label = pd.Series(np.where(eval_part["label_source"].astype("str").eq(REVIEWED).fillna(False).to_numpy(bool),
                               eval_part["label"].astype("object"), None), dtype="object")
    if reviewed is not None and len(reviewed):
        settled = reviewed.dropna(subset=["reviewed_label"]).drop_duplicates("event_id", keep="last")
        found = eval_part["event_id"].astype("str").map(
            dict(zip(settled["event_id"].astype(str), settled["reviewed_label"].astype(str), strict=True)))
        label = found.where(found.notna(), label).astype("object")
    frame = eval_part.assign(label=label.to_numpy())
    for column in (KNOWN_WRONG_OUTPUT, KNOWN_WRONG_NORMALISED):  # the reviewed label is the known answer
        if column in frame.columns:
            frame[column] = None if column == KNOWN_WRONG_OUTPUT else False
    verdict = score_frame(frame, [config.scorer(config.primary_scorer)])[config.primary_scorer]
    ok = frame["status"].astype("str").eq("ok").fillna(False).to_numpy(dtype=bool) \
        if "status" in frame.columns else np.ones(len(frame), dtype=bool)
    no_label = pd.isna(frame["label"]).to_numpy(dtype=bool)
    return np.where(ok & ~no_label, verdict, np.nan)


def with_judge_agreement(summary: pd.DataFrame, eval_part: pd.DataFrame, reviewed: pd.DataFrame | None,
                         config: ScoringConfig) -> tuple[pd.DataFrame, dict[str, Agreement]]:
    """``summary`` with the ``judge_*`` columns filled on each ``llm_judge`` scorer's eval-set ``all`` row (NULL
    elsewhere), and the agreements by judge: Cohen's κ (CI at ``comparison.confidence``) of the judge's verdicts
    against the reviewers' (:func:`reviewed_verdicts`) on the eval-set cases both have, and the observed agreement.
    A judge is trusted only as far as it agrees with people."""
    summary = summary.copy()
    judges = [s.name for s in config.scorers if s.kind == "llm_judge"]
    if not judges or not len(eval_part):
        return summary, {}
    human = reviewed_verdicts(eval_part, reviewed, config)
    agreements: dict[str, Agreement] = {}
    for judge in judges:
        verdicts = eval_part[score_column(judge)].to_numpy(dtype=np.float64)
        agreement = judge_agreement(verdicts, human, config.comparison.confidence)
        both = ~np.isnan(verdicts) & ~np.isnan(human)
        at = (summary["case_set"] == EVAL_SET) & (summary["scorer"] == judge) & (summary["slice_dim"] == ALL)
        summary.loc[at, "judge_agreement_pairs"] = agreement.n_units
        summary.loc[at, "judge_observed_agreement"] = float(np.mean(verdicts[both] == human[both])) \
            if both.any() else np.nan
        summary.loc[at, "judge_kappa"] = agreement.estimate
        summary.loc[at, "judge_kappa_ci_low"] = agreement.ci_low
        summary.loc[at, "judge_kappa_ci_high"] = agreement.ci_high
        agreements[judge] = agreement
    return summary, agreements


def score_run(cases: pd.DataFrame, strata: pd.DataFrame, system: SystemUnderTest,
              baseline: SystemUnderTest | None, config: ScoringConfig,
              criteria: Sequence[AnyCriterion],
              edge_cases: pd.DataFrame | None = None, reviewed: pd.DataFrame | None = None) -> ScoredRun:
    """Replay, score, summarise, compare and gate one candidate.

    ``cases``: eval-set cases as built by :func:`eval_set_cases_frame` (plus logged columns for a logged system or
    baseline). ``strata``: ``stratum``, ``population``, ``sample`` of the eval-set version. ``edge_cases``: entries
    as built by :func:`edge_cases_frame` (optional). ``reviewed``: the review loop's adjudicated labels of the
    eval-set cases (``event_id``, ``reviewed_label``), which an ``llm_judge`` scorer's agreement is measured on.
    """
    timings: dict[str, float] = {}
    all_cases = cases if edge_cases is None or edge_cases.empty else pd.concat([cases, edge_cases],
                                                                               ignore_index=True)
    all_cases = all_cases.reset_index(drop=True)
    for name in LOGGED_COLUMNS:
        if name not in all_cases.columns:
            all_cases[name] = "ok" if name == "status" else np.nan
    all_cases["status"] = all_cases["status"].astype("str").fillna("ok")

    began = time.perf_counter()
    outputs = replay(system, all_cases)
    timings["replay_s"] = time.perf_counter() - began
    began = time.perf_counter()
    baseline_outputs = replay(baseline, all_cases) if baseline is not None else None
    timings["baseline_s"] = time.perf_counter() - began

    began = time.perf_counter()
    frame = scored_frame(all_cases, outputs, baseline_outputs, config)
    scorer_traits = {s.name: traits(s) for s in config.scorers}
    if baseline_outputs is not None:
        primary = scorer_traits[config.primary_scorer]
        frame["outcome"] = win_loss(frame, config.primary_scorer, primary.higher_is_better)
    timings["score_s"] = time.perf_counter() - began

    began = time.perf_counter()
    with_baseline = baseline_outputs is not None
    eval_part = frame[frame["case_set"] == EVAL_SET].reset_index(drop=True)
    parts = [summarise(eval_part, scorer_traits, config.slices, config.comparison, Design.from_strata(strata),
                       EVAL_SET, with_baseline)]
    edge_part = frame[frame["case_set"] == EDGE_CASES].reset_index(drop=True)
    outcomes = pd.DataFrame(columns=["entry_id", "failure_mode", "passed", "cases", "baseline_passed"])
    if len(edge_part):
        parts.append(summarise(edge_part, scorer_traits, ["failure_mode"], config.comparison, None, EDGE_CASES,
                               with_baseline))
        outcomes = edge_case_outcomes(edge_part, config.primary_scorer, config.edge_case_min_share, with_baseline)
        parts.append(edge_case_summary(outcomes, config.comparison))
    summary = with_unscored_known_errors(pd.concat(parts, ignore_index=True), frame, config, with_baseline)
    summary = with_label_basis(summary, frame, config)
    summary, agreements = with_judge_agreement(summary, eval_part, reviewed, config)
    timings["summarise_s"] = time.perf_counter() - began

    gate = note_unscored_known_errors(evaluate_gate(criteria, summary), criteria, summary)
    gate = note_implicit_labels(gate, criteria, summary, isinstance(baseline, LoggedSystem))
    return ScoredRun(frame, summary, outcomes, gate, gate_passed(gate), timings, agreements)


REPLAYABLE_CASES = "replayable eval-set cases"
"""The gate row of a run that had nothing to replay (:func:`unreplayable_run`)."""


def unreplayable_run(config: ScoringConfig, criteria: Sequence[AnyCriterion], reason: str) -> ScoredRun:
    """The run of a candidate with no eval-set case it can answer (e.g. a reply drafter on a triage-only eval set).

    It is still a run: ``scored_runs`` gets one summary row per scorer with 0 cases scored, and ``release_gates``
    a first row "replayable eval-set cases ≥ 1" that is not judged and fails, followed by the context's criteria
    (each not judged on the empty summary). A candidate never passes without evidence, even where every
    criterion allows missing values, and the warehouse, the alerts and the CLI see the verdict like any other.
    """
    rows = []
    for scorer in config.scorers:
        trait = traits(scorer)
        rows.append({"case_set": EVAL_SET, "scorer": scorer.name, "slice_dim": ALL, "slice_value": ALL,
                     "binary": trait.binary, "higher_is_better": trait.higher_is_better, "n_cases": 0,
                     "n_scored": 0, "population": 0.0, "wins": 0, "losses": 0, "ties": 0, "label_basis": None,
                     "n_self_labeled": 0})
    summary = pd.DataFrame(rows).reindex(columns=list(SUMMARY_COLUMNS))
    first = pd.DataFrame([{"criterion": REPLAYABLE_CASES, "value": 0.0, "op": "≥", "threshold": 1.0,
                           "passed": False, "verdict": NOT_JUDGED,
                           "detail": f"not judged: {reason}; fails the gate"}])
    gate = pd.concat([first, evaluate_gate(criteria, summary)], ignore_index=True)
    # The shape of a replayed run's cases (scored_frame: the cases, the adapter's outputs, one score per scorer).
    cases = pd.DataFrame({name: pd.Series(dtype="object") for name in (*CASE_COLUMNS, *OUTPUT_COLUMNS)
                          if name != "features"})
    cases = cases.assign(**{score_column(scorer.name): pd.Series(dtype="float64") for scorer in config.scorers})
    outcomes = pd.DataFrame(columns=["entry_id", "failure_mode", "passed", "cases", "baseline_passed"])
    return ScoredRun(cases, summary, outcomes, gate, False)
