"""The inputs of the estimate from a day's labeled_cases: the cases to estimate, and the trusted labels.

Trust order (docs/DESIGN): reviewed > ground truth > implicit. A case with a reviewed verdict uses it (weight
1 / inclusion_prob of the audit design); otherwise its ground truth (weight: the inverse ground-truth share of its
cell, the cells given by ``ground_truth_cells``, the columns ground truth is missing at random within; none: the
system's day); implicit labels
only when ``allow_implicit`` (biased by automation: off by default). Every label is top-label correctness: the
output given was right. No dagster, no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eval_pipelines.estimation.calibration import top_label_confidence
from eval_pipelines.estimation.settings import EstimationConfig

CASE_COLUMNS = ("event_id", "system", "model_version", "segment", "status", "confidence", "ai_output",
                "label_source", "ai_correct", "is_labeled")
REVIEW_COLUMNS = ("event_id", "inclusion_prob", "ai_correct")
LABEL_COLUMNS = ("event_id", "system", "model_version", "segment", "confidence", "correct", "weight", "source")


def ok_cases(cases: pd.DataFrame, config: EstimationConfig) -> pd.DataFrame:
    """The day's ok cases (status ok: errors and timeouts have no output to be right about) with their top-label
    ``confidence`` (NaN when the case has none)."""
    ok = cases[cases["status"].astype(str) == "ok"]
    confidence = ok["confidence"].to_numpy(dtype="float64", na_value=np.nan)
    if config.score == "positive_class":
        confidence = top_label_confidence(confidence, ok["ai_output"].astype(object).to_numpy(),
                                          str(config.positive_label))
    return pd.DataFrame({"event_id": ok["event_id"].astype(str).to_numpy(),
                         "system": ok["system"].astype(str).to_numpy(),
                         "model_version": ok["model_version"].astype(str).to_numpy(),
                         "segment": ok["segment"].astype(str).to_numpy(), "confidence": confidence},
                        index=ok.index)


def ground_truth_weights(cases: pd.DataFrame, has_truth: np.ndarray, cells: list[str]) -> np.ndarray:
    """Per case: (cases in its cell) / (ground-truth cases in its cell), within its system; without cells the
    system's day is one cell (a simple random subset, weight N / n: the same population scale as 1 / inclusion_prob
    of the reviews, so pooling the two sources does not favour one by its units).

    Missing-at-random within cells: in the demo, ground truth arrives for ~8 % of cases but ~48 % of those with
    a complaint or an escalation; unweighted, those (mostly wrong) cases would pull the calibration down.
    """
    keys = [cases["system"].astype(str), *(cases[c].astype(str) for c in cells)]
    frame = pd.DataFrame({f"k{i}": k.to_numpy() for i, k in enumerate(keys)})
    frame["truth"] = has_truth
    grouped = frame.groupby([f"k{i}" for i in range(len(keys))], sort=False)["truth"]
    share = grouped.transform("mean").to_numpy(dtype="float64")
    with np.errstate(divide="ignore"):
        return np.where(share > 0, 1.0 / share, np.nan)


def trusted_labels(cases: pd.DataFrame, reviewed: pd.DataFrame | None, config: EstimationConfig) -> pd.DataFrame:
    """One row per ok case of the day with a confidence and a trusted verdict: :data:`LABEL_COLUMNS`.

    ``cases`` is a day's labeled_cases (:data:`CASE_COLUMNS`, plus the ``ground_truth_cells`` columns);
    ``reviewed`` the day's review_labels (:data:`REVIEW_COLUMNS`) or None.
    """
    ok = ok_cases(cases, config)
    source = pd.Series(pd.NA, index=ok.index, dtype="object")
    correct = pd.Series(pd.NA, index=ok.index, dtype="boolean")
    weight = pd.Series(np.nan, index=ok.index, dtype="float64")
    frame = cases.loc[ok.index]
    ai_correct = frame["ai_correct"].astype("boolean")
    if config.allow_implicit:
        implicit = (frame["label_source"].astype(str) == "human_action").to_numpy() & ai_correct.notna().to_numpy()
        source[implicit], correct[implicit], weight[implicit] = "implicit", ai_correct[implicit], 1.0
    if config.use_ground_truth:
        truth = (frame["label_source"].astype(str) == "ground_truth").to_numpy() & ai_correct.notna().to_numpy()
        gt_weight = ground_truth_weights(cases, (cases["label_source"].astype(str) == "ground_truth").to_numpy(),
                                         config.ground_truth_cells)
        gt_weight = pd.Series(gt_weight, index=cases.index).loc[ok.index].to_numpy()
        source[truth], correct[truth], weight[truth] = "ground_truth", ai_correct[truth], gt_weight[truth]
    if config.use_reviewed and reviewed is not None and len(reviewed):
        verdicts = reviewed.dropna(subset=["ai_correct"]).drop_duplicates("event_id", keep="last")
        verdicts = verdicts.set_index(verdicts["event_id"].astype(str))
        hit = ok["event_id"].isin(verdicts.index).to_numpy()
        matched = verdicts.loc[ok.loc[hit, "event_id"]]
        probability = matched["inclusion_prob"].to_numpy(dtype="float64")
        if ((probability <= 0) | (probability > 1) | np.isnan(probability)).any():
            raise ValueError("review_labels: inclusion_prob must be in (0, 1] for every answered task; fix the "
                             "review design output (review_labels/<day>.parquet)")
        source[hit] = "reviewed"
        correct[hit] = matched["ai_correct"].astype("boolean").to_numpy()
        weight[hit] = 1.0 / probability
    keep = source.notna().to_numpy() & ~np.isnan(ok["confidence"].to_numpy())
    out = ok.loc[keep].copy()
    out["correct"] = correct[keep].astype(bool).to_numpy()
    out["weight"] = weight[keep].to_numpy()
    out["source"] = source[keep].astype(str).to_numpy()
    return out[list(LABEL_COLUMNS)].reset_index(drop=True)
