"""From the accepted verdicts to one reviewed label per task, and the day's reviewer agreement.

Adjudication (``review.adjudication.mode``), per selected task:

- no verdict: ``unanswered`` (no label);
- one verdict: ``single``, its label;
- several verdicts, ``majority``: the most frequent label when it is strictly more frequent than every other
  (unanimity included); a tie is ``disputed`` (no label);
- ``senior``: the senior reviewer's label when they gave one (``senior``), else as ``majority``;
- ``disputed``: unanimity gives the label (``majority``); any disagreement is ``disputed``.

``disputed`` (the column) is true exactly for ``adjudication = 'disputed'``: a case whose reviewers disagree and
that the rule could not settle; ``reviewed_label`` and ``ai_correct`` are null on it, as on unanswered tasks, and
the estimator treats both as missing within their cell (docs/review.md#assumptions). Cases whose reviewers
disagreed at all, settled or not, are counted in ``review_agreement.disputed_cases`` and listed in the metadata.

Agreement per system, on the cases with two or more verdicts: Krippendorff's α (nominal) always, Cohen's κ when
exactly two reviewers gave those verdicts and each such case has one verdict from each (κ is a two-rater
statistic). Nothing here imports dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines.review.agreement import Agreement, cohens_kappa, disputed_cases, krippendorff_alpha_nominal

LABEL_COLUMNS = ("event_id", "partition_date", "system", "stratum", "inclusion_prob", "certainty", "reviewed_label",
                 "ai_correct", "review_count", "disputed", "adjudication")


def _settle(labels: list[str], reviewers: list[str], mode: str, senior: str | None) -> tuple[str | None, str]:
    if not labels:
        return None, "unanswered"
    if len(labels) == 1:
        return labels[0], "single"
    if mode == "senior" and senior in reviewers:
        return labels[reviewers.index(senior)], "senior"
    counts = pd.Series(labels).value_counts()
    if mode == "disputed" and len(counts) > 1:
        return None, "disputed"
    if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
        return None, "disputed"
    return str(counts.index[0]), "majority"


def adjudicate(tasks: pd.DataFrame, verdicts: pd.DataFrame, mode: str = "majority", senior: str | None = None
               ) -> pd.DataFrame:
    """One row per task (``LABEL_COLUMNS``), unanswered tasks included.

    ``tasks``: the selected tasks with ``event_id``, ``partition_date``, ``system``, ``stratum``,
    ``inclusion_prob``, ``certainty`` and ``ai_output``; ``verdicts``: accepted verdicts (``event_id``,
    ``reviewer``, ``label``), at most one per (event, reviewer).
    """
    if mode not in ("majority", "senior", "disputed"):
        raise ValueError(f"unknown adjudication mode {mode!r}")
    grouped = {event_id: (list(group["label"].astype(str)), list(group["reviewer"].astype(str)))
               for event_id, group in verdicts.sort_values(["event_id", "reviewer"]).groupby("event_id", sort=False)}
    settled = [_settle(*grouped.get(event_id, ([], [])), mode, senior) for event_id in tasks["event_id"]]
    labels = pd.Series([label for label, _ in settled], index=tasks.index, dtype="object")
    how = [rule for _, rule in settled]
    ai_output = tasks["ai_output"].astype("object")
    correct = pd.array([None if label is None else bool(out == label) if pd.notna(out) else False
                        for label, out in zip(labels, ai_output, strict=True)], dtype="boolean")
    frame = pd.DataFrame({
        "event_id": tasks["event_id"].astype(str).to_numpy(),
        "partition_date": tasks["partition_date"].to_numpy(),
        "system": tasks["system"].astype(str).to_numpy(),
        "stratum": tasks["stratum"].astype(str).to_numpy(),
        "inclusion_prob": tasks["inclusion_prob"].astype(float).to_numpy(),
        "certainty": tasks["certainty"].astype(bool).to_numpy(),
        "reviewed_label": labels.to_numpy(),
        "ai_correct": correct,
        "review_count": np.array([len(grouped.get(e, ([], []))[0]) for e in tasks["event_id"]], dtype=np.int64),
        "disputed": np.array([rule == "disputed" for rule in how], dtype=bool),
        "adjudication": how,
    })
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class DayAgreement:
    """The agreement of one system's reviewers on one day."""

    system: str
    double_reviewed_cases: int
    kappa: Agreement | None  # None when the verdicts are not two reviewers on the same cases
    alpha: Agreement
    disputed: pd.DataFrame  # event_id, labels, reviewers (agreement.disputed_cases)

    def row(self) -> dict[str, object]:
        nan = float("nan")
        kappa = self.kappa
        return {"system": self.system, "double_reviewed_cases": self.double_reviewed_cases,
                "kappa": kappa.estimate if kappa else nan, "kappa_ci_low": kappa.ci_low if kappa else nan,
                "kappa_ci_high": kappa.ci_high if kappa else nan, "alpha": self.alpha.estimate,
                "alpha_ci_low": self.alpha.ci_low, "alpha_ci_high": self.alpha.ci_high,
                "disputed_cases": len(self.disputed)}


def agreement_by_system(verdicts: pd.DataFrame, seed: int = 0) -> list[DayAgreement]:
    """Agreement per system over the cases with at least two verdicts (module docstring)."""
    found = []
    for system, group in verdicts.groupby(verdicts["system"].astype(str), sort=True):
        counts = group.groupby("event_id")["reviewer"].transform("size")
        multiple = group[counts >= 2]
        cases = int(multiple["event_id"].nunique())
        alpha = krippendorff_alpha_nominal(multiple["event_id"].to_numpy(), multiple["label"].to_numpy(),
                                           seed=seed)
        kappa = None
        reviewers = sorted(multiple["reviewer"].astype(str).unique())
        if len(reviewers) == 2 and cases and (multiple.groupby("event_id").size() == 2).all():
            wide = multiple.pivot(index="event_id", columns="reviewer", values="label")
            kappa = cohens_kappa(wide[reviewers[0]].to_numpy(), wide[reviewers[1]].to_numpy())
        found.append(DayAgreement(str(system), cases, kappa, alpha, disputed_cases(multiple)))
    return found
