"""Scoring the deployed system on a day of production: its logged outputs against the humans' decisions.

The label is the one ``labeled_cases`` derived: ground truth where the business has it, else the human's final
decision (an accept confirms the output, an override or edit replaces it). Each scorer runs on every case; the
label-based ones are NaN on unlabeled cases and so count only labeled ones, while latency and cost count every
call. Rows are grouped by system, by each configured slice column alone (plus 'all') and by label source
('all', 'ground_truth', 'human_action'), because an accuracy measured on human decisions is inflated by
automation bias (people accept some wrong answers) and the ground-truth rows show by how much.

A *known error* (``labeled_cases``: ``is_labeled`` with a null ``label`` — the human edited, overrode or rejected the
output without recording a final one) has no correct answer to compare with, but the logged output is known to be
wrong, so it stays in the denominator. The frame carries it as ``known_wrong_output`` (see
:func:`eval_pipelines.scoring.scorers.known_wrong_columns`), which the match scorers read like every replayed
frame does: ``exact_match`` scores it 0 (as ``ai_correct`` does), ``normalised_match`` scores 0 on overrides and
rejections (an unrecorded edit may have been cosmetic, so it stays unscored there), and ``brier`` / ``ece`` read
that correctness. Scorers that need the answer itself (``label_set_f1``, ``numeric_tolerance``, custom ones) leave
it unscored.

The day is a census of its cases, so intervals describe the day's uncertainty as a sample of the process: Wilson
for 0/1 scores, Student t otherwise.

**Corrected figure (label_source ``reviewed``).** The implicit labels above carry automation bias: an accepted
wrong suggestion is scored right. When the day was audited (``review_queue`` phase one and ``review_labels``
verdicts in the lake), rows with label source ``reviewed`` score the logged output against the reviewers'
adjudicated label (the most trusted label, DESIGN.md) on the audited cases and project it to **all the ok cases of
the system (and slice), reviewed or not**, by the two-phase design: the domain estimator over the audit's cells
(stratum × user action; :func:`eval_pipelines.scoring.stats.domain_estimate_coded`, Korn–Graubard for 0/1 scores,
t otherwise). ``n_cases`` is then the population (the domain's ok cases in phase one) and ``n_scored`` the audited
verdicts scored; the quantile columns are null (a weighted quantile of a stratified sample is not reported). A
scorer that cannot score an audited case drops it (missing at random within its cell). The ``human_action`` row
is the implicit figure beside it; ``ground_truth`` rows are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from eval_pipelines.scoring.scorers import known_wrong_columns, score_frame, traits
from eval_pipelines.scoring.settings import ScorerConfig
from eval_pipelines.scoring.stats import mean_interval
from eval_pipelines.scoring.summarise import ALL, QUANTILES, score_column

LABEL_SOURCES: tuple[str, ...] = (ALL, "ground_truth", "human_action")
REVIEWED = "reviewed"
POPULATIONS: dict[str, str] = {
    ALL: "cases with a label (ground truth, else the human's decision: implicit, biased up by automation bias)",
    "ground_truth": "cases with a ground-truth outcome",
    "human_action": "cases labelled by the human's action only (implicit labels)",
    REVIEWED: "all ok cases of the system/slice, projected from the expert audit (two-phase design)",
}
"""What each label_source row is about (the asset's metadata states it)."""
PRODUCTION_COLUMNS: tuple[str, ...] = (
    "system", "slice_dim", "slice_value", "label_source", "scorer", "binary", "higher_is_better", "n_cases",
    "n_scored", "mean", "std_error", "ci_low", "ci_high", *QUANTILES,
)


def production_frame(cases: pd.DataFrame) -> pd.DataFrame:
    """labeled_cases as a replayed frame: the logged output is the output."""
    frame = pd.DataFrame({
        "event_id": cases["event_id"].astype("str"),
        "label": cases["label"].astype("str"),
        "output": cases["ai_output"].astype("str"),
        "status": cases["status"].astype("str").fillna("ok") if "status" in cases else "ok",
    })
    for column in ("confidence", "latency_ms", "cost_usd"):
        frame[column] = pd.to_numeric(cases[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) \
            if column in cases else np.nan
    missing = pd.Series(pd.NA, index=cases.index, dtype="object")
    known = known_wrong_columns(cases["label"], cases["ai_output"],
                                *(cases.get(c, missing) for c in ("ai_correct", "correctness")))
    return frame.assign(**known)


def score_production(cases: pd.DataFrame, scorers: Sequence[ScorerConfig]) -> pd.DataFrame:
    """Per-case scores of the logged outputs: event_id, system, model_version, segment, label_source, scores."""
    cases = cases.reset_index(drop=True)
    frame = production_frame(cases)
    scores = score_frame(frame, scorers)
    keep = [c for c in ("event_id", "system", "model_version", "segment", "label_source", "user_action")
            if c in cases.columns]
    out = cases[keep].reset_index(drop=True).copy()
    for name, values in scores.items():
        out[score_column(name)] = values
    return out


def summarise_production(scored: pd.DataFrame, scorers: Sequence[ScorerConfig], slices: Sequence[str],
                         confidence: float = 0.95) -> pd.DataFrame:
    """``production_scores`` rows (without partition_date) from :func:`score_production`'s output."""
    rows: list[dict[str, object]] = []
    systems = scored["system"].astype("str").fillna("<null>") if "system" in scored else \
        pd.Series("<null>", index=scored.index)
    source = scored["label_source"].astype("str").fillna("unlabeled") if "label_source" in scored else \
        pd.Series("unlabeled", index=scored.index)
    groups: list[tuple[str, str, np.ndarray]] = [(ALL, ALL, np.ones(len(scored), dtype=bool))]
    for column in slices:
        if column in scored.columns:
            values = scored[column].astype("str").fillna("<null>")
            groups += [(column, str(level), (values == level).to_numpy(dtype=bool))
                       for level in sorted(values.unique())]
    for system in sorted(systems.unique()):
        in_system = (systems == system).to_numpy(dtype=bool)
        for label_source in LABEL_SOURCES:
            by_source = in_system if label_source == ALL else in_system & (source == label_source).to_numpy(bool)
            for dimension, level, mask in groups:
                selected = by_source & mask
                if not selected.any():
                    continue
                for config in scorers:
                    trait = traits(config)
                    x = scored[score_column(config.name)].to_numpy(dtype=np.float64)[selected]
                    mean, std_error, low, high = mean_interval(x, trait.binary, confidence)
                    rows.append({
                        "system": system, "slice_dim": dimension, "slice_value": level,
                        "label_source": label_source, "scorer": config.name, "binary": trait.binary,
                        "higher_is_better": trait.higher_is_better, "n_cases": int(selected.sum()),
                        "n_scored": int(np.sum(~np.isnan(x))), "mean": mean, "std_error": std_error,
                        "ci_low": low, "ci_high": high,
                        **{key: _quantile(x, q) for key, q in QUANTILES.items()},
                    })
    return pd.DataFrame(rows, columns=list(PRODUCTION_COLUMNS))


def _quantile(values: np.ndarray, q: float) -> float:
    finite = values[~np.isnan(values)]
    return float(np.quantile(finite, q, method="inverted_cdf")) if len(finite) else float("nan")


def score_reviewed(cases: pd.DataFrame, phase_one: pd.DataFrame, labels: pd.DataFrame,
                   scorers: Sequence[ScorerConfig]) -> pd.DataFrame:
    """Per audited case with an adjudicated label: event_id, system, slice columns, its estimation cell and the
    scores of the logged output against ``reviewed_label``.

    ``phase_one``: the ``review_queue`` frame (event_id, stratum, review_action, selected); ``labels``: the
    ``review_labels`` frame (event_id, reviewed_label). Unanswered or disputed tasks (null label) are not scored.
    """
    from eval_pipelines.review.estimation import estimation_cells

    answered = labels.loc[labels["reviewed_label"].notna(), ["event_id", "reviewed_label"]].astype(str)
    cells = pd.DataFrame({"event_id": phase_one["event_id"].astype(str), "cell": estimation_cells(phase_one)})
    audited = answered.merge(cells, on="event_id", how="inner", validate="one_to_one")
    chosen = cases.assign(event_id=cases["event_id"].astype(str)).merge(audited, on="event_id", how="inner",
                                                                        validate="one_to_one")
    if len(chosen) != len(answered):
        raise ValueError(f"{len(answered) - len(chosen)} reviewed label(s) for events not among the day's cases "
                         "and the review_queue phase one")
    # The reviewed label is the answer: the output is right exactly when it equals it (no "known error" case).
    trusted = chosen.assign(label=chosen["reviewed_label"],
                            ai_correct=(chosen["reviewed_label"] == chosen["ai_output"].astype(str)),
                            correctness=pd.NA)
    scored = score_production(trusted, scorers)
    scored["cell"] = chosen["cell"].to_numpy()
    return scored


def summarise_reviewed(reviewed: pd.DataFrame, phase_one: pd.DataFrame, scorers: Sequence[ScorerConfig],
                       slices: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """``production_scores`` rows with label_source ``reviewed``: the design-based projection of each score to
    the system's (and slice's) ok cases. ``reviewed``: :func:`score_reviewed`; ``phase_one``: review_queue."""
    from eval_pipelines.review.estimation import estimation_cells
    from eval_pipelines.scoring.stats import domain_estimate_coded

    if reviewed.empty:
        return pd.DataFrame(columns=list(PRODUCTION_COLUMNS))
    all_cells = estimation_cells(phase_one)
    names, population = np.unique(all_cells.to_numpy(dtype=str), return_counts=True)
    position = {name: i for i, name in enumerate(names)}
    codes = np.array([position[c] for c in reviewed["cell"]], dtype=np.int64)
    systems = reviewed["system"].astype("str").to_numpy()
    phase_systems = phase_one["system"].astype("str").to_numpy()
    rows: list[dict[str, object]] = []
    for system in sorted(set(systems)):
        in_system = systems == system
        groups: list[tuple[str, str, np.ndarray, int]] = [(ALL, ALL, in_system,
                                                          int((phase_systems == system).sum()))]
        for column in slices:
            if column in reviewed.columns and column in phase_one.columns:
                values = reviewed[column].astype("str").to_numpy()
                phase_values = phase_one[column].astype("str").to_numpy()
                groups += [(column, level, in_system & (values == level),
                            int(((phase_systems == system) & (phase_values == level)).sum()))
                           for level in sorted(set(values[in_system]))]
        system_cells = np.unique(np.searchsorted(names, all_cells.to_numpy(dtype=str)[phase_systems == system]))
        for config in scorers:
            trait = traits(config)
            x = reviewed[score_column(config.name)].to_numpy(dtype=np.float64)
            known = ~np.isnan(x)
            small_n = np.bincount(codes[known], minlength=len(names)).astype(np.float64)
            if (small_n[system_cells] == 0).any():
                # A cell of the system's cases has no scored verdict: its weight cannot be carried by anyone, so
                # no number rather than one about a smaller population.
                continue
            keep = small_n > 0
            recode = np.cumsum(keep) - 1
            for dimension, level, mask, size in groups:
                member = mask[known]
                if not member.any():
                    continue
                found = domain_estimate_coded(x[known], recode[codes[known]], population[keep].astype(np.float64),
                                              small_n[keep], member, confidence)
                rows.append({
                    "system": system, "slice_dim": dimension, "slice_value": level, "label_source": REVIEWED,
                    "scorer": config.name, "binary": trait.binary, "higher_is_better": trait.higher_is_better,
                    "n_cases": size, "n_scored": int(member.sum()), "mean": found.estimate,
                    "std_error": found.std_error, "ci_low": found.ci_low, "ci_high": found.ci_high,
                    **dict.fromkeys(QUANTILES, float("nan")),
                })
    return pd.DataFrame(rows, columns=list(PRODUCTION_COLUMNS))
