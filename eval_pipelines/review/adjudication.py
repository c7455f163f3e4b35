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


def adjudicate(tasks: pd.DataFrame, verdicts: pd.DataFrame, mode: str = "majority", senior: str | None = None
               ) -> pd.DataFrame:
    """One row per task (``LABEL_COLUMNS``), unanswered tasks included.

    ``tasks``: the selected tasks with ``event_id``, ``partition_date``, ``system``, ``stratum``,
    ``inclusion_prob``, ``certainty`` and ``ai_output``; ``verdicts``: accepted verdicts (``event_id``,
    ``reviewer``, ``label``), at most one per (event, reviewer).

    Vectorised over (event, label) counts: a per-event Python rule cost seconds on a day of 30,000 tasks.
    """
    if mode not in ("majority", "senior", "disputed"):
        raise ValueError(f"unknown adjudication mode {mode!r}")
    task_ids = tasks["event_id"].to_numpy(dtype=object)
    verdict_ids = verdicts["event_id"].to_numpy(dtype=object)
    # One code per event over tasks and verdicts together (a verdict for no task is simply never read).
    event_codes, events = pd.factorize(np.concatenate([task_ids, verdict_ids]), use_na_sentinel=False)
    task_event, verdict_event = event_codes[:len(task_ids)], event_codes[len(task_ids):]
    label_codes, label_names = pd.factorize(verdicts["label"].astype(str).to_numpy(dtype=object))
    label_names = np.asarray(label_names, dtype=object)
    n_events, n_labels = len(events), max(len(label_names), 1)

    review_count = np.bincount(verdict_event, minlength=n_events)
    pair_codes, pair_counts = np.unique(verdict_event.astype(np.int64) * n_labels + label_codes, return_counts=True)
    pair_event, pair_label = pair_codes // n_labels, pair_codes % n_labels
    distinct = np.bincount(pair_event, minlength=n_events)
    top = np.zeros(n_events, dtype=np.int64)
    np.maximum.at(top, pair_event, pair_counts)
    at_top = pair_counts == top[pair_event]
    top_ties = np.bincount(pair_event[at_top], minlength=n_events)
    top_label = np.full(n_events, -1, dtype=np.int64)
    top_label[pair_event[at_top]] = pair_label[at_top]  # unique wherever it is used (no tie at the top)
    senior_label = np.full(n_events, -1, dtype=np.int64)
    if mode == "senior":
        by_senior = np.flatnonzero(verdicts["reviewer"].astype(str).to_numpy(dtype=object) == senior)
        # Several verdicts of the senior on one event cannot pass validation; the first in (event, reviewer)
        # order would win, as the reviewers are sorted: keep the first.
        senior_label[verdict_event[by_senior[::-1]]] = label_codes[by_senior[::-1]]

    count, kinds = review_count[task_event], distinct[task_event]
    rule = np.select(
        [count == 0, count == 1, senior_label[task_event] >= 0, (mode == "disputed") & (kinds > 1),
         (kinds > 1) & (top_ties[task_event] > 1)],
        ["unanswered", "single", "senior", "disputed", "disputed"], default="majority").astype(object)
    chosen = np.where(rule == "senior", senior_label[task_event], top_label[task_event])
    settled = (rule != "unanswered") & (rule != "disputed")
    labels = np.full(len(task_ids), None, dtype=object)
    labels[settled] = label_names[chosen[settled]]
    ai_output = tasks["ai_output"].astype("object").to_numpy()
    has_output = pd.notna(ai_output)
    correct = pd.array(np.where(has_output, ai_output == labels, False), dtype="boolean")
    correct[~settled] = pd.NA
    frame = pd.DataFrame({
        "event_id": tasks["event_id"].astype(str).to_numpy(),
        "partition_date": tasks["partition_date"].to_numpy(),
        "system": tasks["system"].astype(str).to_numpy(),
        "stratum": tasks["stratum"].astype(str).to_numpy(),
        "inclusion_prob": tasks["inclusion_prob"].astype(float).to_numpy(),
        "certainty": tasks["certainty"].astype(bool).to_numpy(),
        "reviewed_label": pd.Series(labels, index=tasks.index, dtype="object").to_numpy(),
        "ai_correct": correct,
        "review_count": count.astype(np.int64),
        "disputed": rule == "disputed",
        "adjudication": list(rule),
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


DRAFT_RIGHT, DRAFT_WRONG = "draft_right", "draft_wrong"
"""The binary verdict a free-text reviewer's reply gives on the AI draft (``text_draft_verdicts``)."""


def text_draft_verdicts(tasks: pd.DataFrame, verdicts: pd.DataFrame, light_edit_at_least: dict[str, float]
                        ) -> pd.Series:
    """Per verdict, its binary verdict on the draft, or the label itself for label systems.

    For a system in ``light_edit_at_least`` (output_kind text) a verdict's label is the reply the reviewer would
    send; it says the draft was right when ``textsim.edit_similarity(ai_output, reply)`` reaches that system's
    ``light_edit_at_least``: the rule labels.py uses to grade a human's edit as correct, so the reviewed and the
    implicit accuracy measure the same quantity. Raw texts cannot be adjudicated or compared for agreement: two
    corrections of one wrong draft almost never match, which made every corrected double-reviewed case disputed
    and biased reviewed accuracy upward (issue 18). ``verdicts`` needs ``event_id``, ``system`` and ``label``;
    ``tasks`` ``event_id`` and ``ai_output``.
    """
    from eval_pipelines import textsim  # rapidfuzz only where a text system is reviewed

    tokens = verdicts["label"].astype("object").copy()
    systems = verdicts["system"].astype(str)
    text = systems.isin(list(light_edit_at_least)).to_numpy()
    if not text.any():
        return tokens
    drafts = tasks.drop_duplicates("event_id").set_index("event_id")["ai_output"]
    draft = verdicts["event_id"][text].map(drafts).astype("object").where(lambda s: s.notna(), None)
    reply = verdicts["label"][text].astype("object").where(lambda s: s.notna(), None)
    similarity = textsim.edit_similarity(list(draft), list(reply))
    threshold = systems[text].map(light_edit_at_least).astype(float).to_numpy()
    # No draft (or no reply) has no similarity: NaN >= t is False, the draft is not right.
    tokens[text] = np.where(similarity >= threshold, DRAFT_RIGHT, DRAFT_WRONG)
    return tokens


def draft_verdict_column(tasks: pd.DataFrame, verdicts: pd.DataFrame, light_edit_at_least: dict[str, float] | None
                         ) -> pd.Series:
    """``reviewed_cases.draft_verdict``: per verdict, ``draft_right`` / ``draft_wrong`` for a text system (the token
    ``text_draft_verdicts`` adjudicates), None for a label system, whose ``label`` is already the verdict.

    Stored so that whoever reads ``reviewed_cases`` later (the weekly report's agreement) reads the verdict that
    was adjudicated, under the threshold of the day it was given, with neither the config nor rapidfuzz.
    """
    light = light_edit_at_least or {}
    tokens = text_draft_verdicts(tasks, verdicts, light) if light else verdicts["label"].astype("object")
    is_text = verdicts["system"].astype(str).isin(list(light)).to_numpy()
    return pd.Series(np.where(is_text, tokens.to_numpy(dtype=object), None), index=verdicts.index, dtype="object")


def adjudicate_reviews(tasks: pd.DataFrame, verdicts: pd.DataFrame, mode: str = "majority",
                       senior: str | None = None, light_edit_at_least: dict[str, float] | None = None
                       ) -> pd.DataFrame:
    """``adjudicate`` for label systems (unchanged), and on the binary draft verdict for text systems.

    For the systems in ``light_edit_at_least`` each verdict becomes ``draft_right`` / ``draft_wrong``
    (``text_draft_verdicts``); the configured mode adjudicates that, so a case is disputed only when those tie.
    ``ai_correct`` is the adjudicated binary verdict; ``reviewed_label`` is a reviewer's text on the winning side
    (the senior's when the mode is senior and they are on it, else the first by reviewer name) so that the eval set
    keeps a reference reply.
    """
    light = light_edit_at_least or {}
    is_text = tasks["system"].astype(str).isin(list(light)).to_numpy()
    if not is_text.any():
        return adjudicate(tasks, verdicts, mode, senior)
    text_tasks = tasks[is_text]
    text_ids = set(text_tasks["event_id"])
    in_text = verdicts["event_id"].isin(text_ids).to_numpy()
    text_verdicts = verdicts[in_text].assign(
        token=text_draft_verdicts(text_tasks, verdicts[in_text], light))
    binary = adjudicate(text_tasks.assign(ai_output=DRAFT_RIGHT),
                        text_verdicts[["event_id", "reviewer"]].assign(label=text_verdicts["token"]), mode, senior)
    # The reference text: on the winning side, the senior's first when the mode is senior, then by reviewer name.
    ranked = text_verdicts.assign(not_senior=text_verdicts["reviewer"].astype(str) != (senior or "")
                                  if mode == "senior" else True,
                                  reviewer_name=text_verdicts["reviewer"].astype(str))
    ranked = ranked.sort_values(["event_id", "token", "not_senior", "reviewer_name"], kind="stable")
    reference = ranked.drop_duplicates(["event_id", "token"]).set_index(["event_id", "token"])["label"]
    winning = pd.MultiIndex.from_arrays([binary["event_id"].to_numpy(dtype=object),
                                         binary["reviewed_label"].to_numpy(dtype=object)])
    texts = reference.reindex(winning).to_numpy(dtype=object)
    settled = binary["reviewed_label"].notna().to_numpy()
    binary["reviewed_label"] = np.where(settled, texts, None)
    frames = [binary]
    if (~is_text).any():
        frames.append(adjudicate(tasks[~is_text], verdicts[~in_text], mode, senior))
    order = pd.Series(range(len(tasks)), index=tasks["event_id"].astype(str).to_numpy())
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[np.argsort(order.reindex(frame["event_id"]).to_numpy(), kind="stable")].reset_index(drop=True)


def agreement_on_draft(verdicts: pd.DataFrame, tasks: pd.DataFrame, light_edit_at_least: dict[str, float] | None,
                       seed: int = 0) -> list[DayAgreement]:
    """``agreement_by_system`` with text systems' verdicts read as the binary verdict on the draft: agreement over
    distinct reply texts would count two equally valid corrections as a disagreement."""
    light = light_edit_at_least or {}
    if verdicts.empty or not light:
        return agreement_by_system(verdicts, seed=seed)
    return agreement_by_system(verdicts.assign(label=text_draft_verdicts(tasks, verdicts, light)), seed=seed)
