"""Seeded simulation of the bias that reading free-text verdicts as a binary verdict on the draft removes (issue 18).

The world, per replication: one day of 5,000 ok drafts of a free-text system, right with probability 0.7 (more
often among accepted drafts than overridden ones); the real audit design (``draw_audit_sample``: strata review
action × segment, overridden cases sampled at 40 % and the rest at 12 %, so inclusion probabilities differ; 25 %
of the ~820 tasks double-reviewed). Reviewers judge every draft rightly and write it as a reply: a right draft is
sent as it is (70 %) or with their own light edit, a wrong draft is replaced by their own correction, so two
reviewers' corrections never match. The reviewed accuracy is ``estimate_reviewed`` (what ``review_labels``
reports, and the stratified estimator ``kpi_daily.reviewed_accuracy`` is pinned to) over three adjudications:

- ``adjudicate_reviews`` with the system's ``light_edit_at_least`` (the code): must be unbiased;
- the raw texts adjudicated on the label path, the winning text then graded with the same similarity rule
  (the rule applied after adjudicating instead of before): every double-reviewed wrong draft ties and drops out as
  disputed, while two reviewers who both send a right draft unchanged agree, so it is biased upward;
- the raw texts through ``adjudicate`` as they are (``review_labels`` before the binary reading: ``ai_correct`` is
  exact equality with the draft): a light edit counts as a wrong draft, biased downward.

Bias is measured as the mean over replications of (estimate − the day's true accuracy); the tolerance is four
Monte-Carlo standard errors (standard deviation over replications / √R), computed in the same run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eval_pipelines import textsim
from eval_pipelines.review.adjudication import adjudicate, adjudicate_reviews
from eval_pipelines.review.design import ACTION_COLUMN, AuditDesignConfig, AuditSample, draw_audit_sample
from eval_pipelines.review.estimation import estimate_reviewed

SYSTEM = "reply"
LIGHT_EDIT_AT_LEAST = 0.85
REPLICATIONS = 30
DAY = "2026-10-05"
WORDS = ("thanks", "your", "order", "refund", "account", "invoice", "delivery", "replacement", "update", "shipping",
         "password", "reset", "billing", "support", "ticket", "request", "issue", "today", "tomorrow", "team",
         "message", "payment", "card", "address", "confirm", "cancel")


def _sentence(rng: np.random.Generator, words: int = 18) -> str:
    return " ".join(rng.choice(WORDS, words)).capitalize() + "."


def _light_edit(draft: str, reviewer: str, rng: np.random.Generator) -> str:
    """One word swapped and the reviewer's sign-off: a different text per reviewer, still a right draft."""
    words = draft.rstrip(".").split()
    words[rng.integers(len(words))] = str(rng.choice(WORDS))
    return " ".join(words) + f". {reviewer.capitalize()}"


def _world(seed: int, cases: int = 5000, sent_as_is: float = 0.7
           ) -> tuple[pd.DataFrame, AuditSample, pd.DataFrame, pd.DataFrame]:
    """(cases with the hidden ``right``, the audit sample, its tasks with their drafts, the reviewers' replies)."""
    rng = np.random.default_rng(seed)
    right = rng.random(cases) < 0.7
    u = rng.random(cases)
    action = np.where(right, np.where(u < 0.7, "accepted", np.where(u < 0.95, "edited", "overridden")),
                      np.where(u < 0.3, "accepted", np.where(u < 0.6, "edited", "overridden")))
    frame = pd.DataFrame({"event_id": [f"s{seed}-{i:05d}" for i in range(cases)], "partition_date": DAY,
                          "system": SYSTEM, "status": "ok", "user_action": action,
                          "segment": rng.choice(["consumer", "business"], cases, p=[0.6, 0.4]),
                          "complaint": False, "compliance_flag": False, "right": right})
    design = AuditDesignConfig(seed=seed, strata_columns=(ACTION_COLUMN, "segment"), double_review_share=0.25,
                               rates=(("default", 0.12), ("review_action=overridden", 0.4)))
    sample = draw_audit_sample(frame, DAY, design)
    tasks = sample.tasks.assign(ai_output=[_sentence(rng) for _ in range(len(sample.tasks))])
    rows = []
    for task in tasks.itertuples(index=False):
        for reviewer in ("ann", "bob") if task.double_review else ("ann",):
            if not task.right:
                reply = _sentence(rng)
            elif rng.random() < sent_as_is:
                reply = task.ai_output
            else:
                reply = _light_edit(task.ai_output, reviewer, rng)
            rows.append((task.event_id, reviewer, SYSTEM, reply))
    return frame, sample, tasks, pd.DataFrame(rows, columns=["event_id", "reviewer", "system", "label"])


def _graded_after(raw: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """The raw-text adjudication with its winning text graded by the similarity rule."""
    settled = raw["reviewed_label"].notna().to_numpy()
    texts = [text if isinstance(text, str) else None for text in raw["reviewed_label"]]
    similarity = textsim.edit_similarity(list(tasks["ai_output"]), texts)
    correct = pd.array(similarity >= LIGHT_EDIT_AT_LEAST, dtype="boolean")
    correct[~settled] = pd.NA
    return raw.assign(ai_correct=correct)


def _reviewed_accuracy(sample: AuditSample, labels: pd.DataFrame) -> float:
    found = estimate_reviewed(sample.frame, labels[["event_id", "ai_correct"]]).reviewed_accuracy
    assert found.available, found.reason
    return found.estimate


def test_binary_adjudication_of_free_text_verdicts_is_unbiased_and_raw_text_adjudication_is_not() -> None:
    errors: dict[str, list[float]] = {"binary": [], "raw_graded": [], "raw_exact": []}
    disputed = {"binary": 0, "raw_graded": 0}
    for seed in range(REPLICATIONS):
        cases, sample, tasks, replies = _world(seed)
        truth = float(cases["right"].mean())
        binary = adjudicate_reviews(tasks, replies, light_edit_at_least={SYSTEM: LIGHT_EDIT_AT_LEAST})
        # The premise: every reply read as a verdict on the draft gives that draft's hidden truth.
        assert (binary["ai_correct"].to_numpy(dtype=bool) == tasks["right"].to_numpy()).all()
        raw = adjudicate(tasks, replies)
        assert (raw["event_id"].to_numpy() == tasks["event_id"].to_numpy()).all()
        graded = _graded_after(raw, tasks)
        disputed["binary"] += int(binary["disputed"].sum())
        disputed["raw_graded"] += int(graded["disputed"].sum())
        for name, labels in (("binary", binary), ("raw_graded", graded), ("raw_exact", raw)):
            errors[name].append(_reviewed_accuracy(sample, labels) - truth)
    bias = {name: float(np.mean(values)) for name, values in errors.items()}
    tolerance = {name: 4 * float(np.std(values, ddof=1)) / np.sqrt(REPLICATIONS) for name, values in errors.items()}
    print(f"bias over {REPLICATIONS} days: " + ", ".join(f"{n} {bias[n]:+.4f} (tolerance ±{tolerance[n]:.4f})"
                                                        for n in bias) + f"; disputed cases {disputed}")
    assert disputed["binary"] == 0 and disputed["raw_graded"] > 0
    assert abs(bias["binary"]) < tolerance["binary"]
    assert bias["raw_graded"] > tolerance["raw_graded"]  # upward: wrong drafts drop out as disputed
    assert bias["raw_exact"] < -tolerance["raw_exact"]  # downward: a light edit read as a wrong draft
    # Paired on the same days, the upward bias is beyond the difference's own Monte-Carlo error too.
    paired = np.asarray(errors["raw_graded"]) - np.asarray(errors["binary"])
    assert paired.mean() > 4 * paired.std(ddof=1) / np.sqrt(REPLICATIONS)
