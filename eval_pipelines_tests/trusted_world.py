"""A seeded production world with automation bias, audited by the review loop, for the trusted eval-set tests.

Built on :func:`eval_pipelines_tests.review_sim.simulate_day` (hidden truth, human actions) with outputs added: the
truth is one of a few classes, production answers it when it is right and another class when not, an override puts
the truth in ``final_output``. Reviewers answer the audit with the truth; a share of tasks is left unanswered at
random (missing at random within strata, the estimator's assumption). Candidates are defined by which cases they
get right relative to production: ``fix_accepted`` of the accepted mistakes fixed (what implicit labels punish),
``break_right`` of production's right answers broken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample
from eval_pipelines_tests.review_sim import simulate_day

CLASSES = np.array([f"class{i}/p{i % 3}" for i in range(8)], dtype=object)


@dataclass(frozen=True)
class World:
    days: dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]  # day -> (labeled, review_queue, review_labels)
    truth: pd.Series  # event_id -> the right output, every case
    true_accuracy: float  # production's accuracy over the ok cases of the window (the finite-population truth)


def labeled_day(n: int, seed: int, day: str, wrong_accept_rate: float = 0.35) -> tuple[pd.DataFrame, pd.Series]:
    sim = simulate_day(n, seed, wrong_accept_rate)
    rng = np.random.default_rng(seed + 10_000)
    truth = CLASSES[rng.integers(0, len(CLASSES), n)]
    other = CLASSES[(np.searchsorted(CLASSES, truth) + rng.integers(1, len(CLASSES), n)) % len(CLASSES)]
    ai_output = np.where(sim["true_correct"], truth, other)
    action = sim["user_action"].to_numpy(dtype=object)
    accepted, overridden = action == "accepted", action == "overridden"
    final_output = np.where(overridden, truth, None)
    label = np.where(accepted, ai_output, np.where(overridden, truth, None))
    labeled = label != None  # noqa: E711 - element-wise on an object array
    ai_correct = pd.array(np.where(labeled, label == ai_output, False), dtype="boolean")
    ai_correct[~labeled] = pd.NA
    ids = sim["event_id"].str.replace(f"d{seed}-", f"{day}-", regex=False)
    frame = sim.drop(columns=["ai_correct", "true_correct"]).assign(
        event_id=ids, timestamp=pd.Timestamp(day, tz="UTC"), system="triage", model_version="v1",
        input_text=ids, ai_output=ai_output, final_output=final_output, label=label,
        label_source=np.where(labeled, "human_action", None), is_labeled=labeled, ai_correct=ai_correct,
        correctness=np.where(labeled, np.where(label == ai_output, "correct", "wrong"), "unknown"),
        failure_tags=np.where(overridden, "override", ""), true_correct=sim["true_correct"].to_numpy())
    return frame, pd.Series(truth, index=ids.to_numpy())


def audit_day(frame: pd.DataFrame, truth: pd.Series, day: str, design: AuditDesignConfig, unanswered: float,
              rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(review_queue, review_labels)`` of one day: the audit drawn, the reviewers answering with the truth, a
    share ``unanswered`` of tasks left without a verdict at random."""
    audit = draw_audit_sample(frame, day, design)
    tasks = audit.tasks[["event_id", "ai_output"]]
    reviewed = truth.reindex(tasks["event_id"]).to_numpy(dtype=object)
    reviewed[rng.random(len(reviewed)) < unanswered] = None
    answered = reviewed != None  # noqa: E711 - element-wise on an object array
    ai_correct = pd.array(np.where(answered, reviewed == tasks["ai_output"].to_numpy(), False), dtype="boolean")
    ai_correct[~answered] = pd.NA
    labels = pd.DataFrame({"event_id": tasks["event_id"].to_numpy(), "reviewed_label": reviewed,
                           "ai_correct": ai_correct})
    return audit.frame, labels


def build_world(seed: int, days: int = 3, per_day: int = 1500, audit_size: int = 150,
                unanswered: float = 0.05, wrong_accept_rate: float = 0.35) -> World:
    out, truths, right, ok_total = {}, [], 0, 0
    design = AuditDesignConfig(daily_size=audit_size, seed=seed)
    rng = np.random.default_rng(seed + 20_000)
    for index in range(days):
        day = f"2026-10-{index + 1:02d}"
        frame, truth = labeled_day(per_day, seed * 100 + index, day, wrong_accept_rate)
        queue, labels = audit_day(frame, truth, day, design, unanswered, rng)
        out[day] = (frame, queue, labels)
        truths.append(truth)
        ok = frame["status"].to_numpy() == "ok"
        right += int(frame.loc[ok, "true_correct"].sum())
        ok_total += int(ok.sum())
    return World(out, pd.concat(truths), right / ok_total)


def re_audit(world: World, seed: int, audit_size: int, unanswered: float = 0.05) -> World:
    """The same production population audited again with another seed: repeated sampling for design-based
    coverage and error rates (the population, its truth and its implicit labels stay fixed)."""
    design = AuditDesignConfig(daily_size=audit_size, seed=seed)
    rng = np.random.default_rng(seed + 30_000)
    days = {day: (frame, *audit_day(frame, world.truth, day, design, unanswered, rng))
            for day, (frame, _, _) in world.days.items()}
    return World(days, world.truth, world.true_accuracy)


def candidate_outputs(world: World, seed: int, fix_accepted: float, break_right: float) -> pd.Series:
    """event_id -> the candidate's output: production's, with a share of accepted mistakes fixed and a share of
    production's right answers broken (the candidate's true accuracy is production's + fixed - broken)."""
    rng = np.random.default_rng(seed)
    parts = []
    for labeled, _, _ in world.days.values():
        truth = world.truth.reindex(labeled["event_id"]).to_numpy(dtype=object)
        out = labeled["ai_output"].to_numpy(dtype=object).copy()
        right = labeled["true_correct"].to_numpy(dtype=bool)
        accepted_wrong = (labeled["user_action"].to_numpy(dtype=object) == "accepted") & ~right
        fix = accepted_wrong & (rng.random(len(out)) < fix_accepted)
        out[fix] = truth[fix]
        broken = right & (rng.random(len(out)) < break_right)
        shifted = CLASSES[(np.searchsorted(CLASSES, truth[broken].astype(str)) + 1) % len(CLASSES)]
        out[broken] = shifted
        parts.append(pd.Series(out, index=labeled["event_id"].to_numpy()))
    return pd.concat(parts)


def true_accuracy_of(world: World, outputs: pd.Series) -> float:
    """A system's accuracy over the ok cases of the window, against the hidden truth."""
    right = total = 0
    for labeled, _, _ in world.days.values():
        ok = labeled["status"].to_numpy() == "ok"
        ids = labeled.loc[ok, "event_id"]
        right += int((outputs.reindex(ids).to_numpy() == world.truth.reindex(ids).to_numpy()).sum())
        total += int(ok.sum())
    return right / total
