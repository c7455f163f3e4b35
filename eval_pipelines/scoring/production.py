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
