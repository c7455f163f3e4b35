"""production_scores' corrected rows (label_source 'reviewed'): the logged output against the reviewers' labels,
projected to all ok cases by the audit's two-phase design, beside the implicit figure."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample
from eval_pipelines.review.estimation import estimate_reviewed
from eval_pipelines.scoring.production import (
    REVIEWED,
    score_production,
    score_reviewed,
    summarise_production,
    summarise_reviewed,
)
from eval_pipelines.scoring.settings import ScorerConfig
from eval_pipelines_tests.review_sim import simulate_day

SCORERS = [ScorerConfig(name="exact_match", kind="exact_match")]


def audited_day(seed: int = 5, n: int = 3000):
    cases = simulate_day(n, seed=seed)
    rng = np.random.default_rng(seed)
    right_answer = np.where(rng.random(n) < 0.5, "approve", "deny")
    wrong_answer = np.where(right_answer == "approve", "deny", "approve")
    truth = cases["true_correct"].to_numpy()
    cases["ai_output"] = np.where(truth, right_answer, wrong_answer)
    action = cases["user_action"]
    # labeling's rule: accepted -> the output is the label (implicit), overridden -> the human's answer
    cases["label"] = np.where(action == "accepted", cases["ai_output"],
                              np.where(action == "overridden", right_answer, None))
    cases["label_source"] = np.where(pd.notna(cases["label"]), "human_action", None)
    cases["system"], cases["model_version"] = "s", "v1"
    cases["latency_ms"], cases["cost_usd"] = 100.0, 0.01
    cases["correctness"] = None
    sample = draw_audit_sample(cases, dt.date(2026, 3, 9), AuditDesignConfig(daily_size=250, seed=1))
    ok = cases[cases["status"] == "ok"].set_index("event_id")
    phase_one = sample.frame.assign(system="s", model_version="v1",
                                    segment=ok.loc[sample.frame["event_id"], "segment"].to_numpy())
    ids = sample.tasks["event_id"]
    labels = pd.DataFrame({"event_id": ids, "reviewed_label": right_answer[
        pd.Index(cases["event_id"]).get_indexer(ids)]})
    return cases, phase_one, labels, truth


def test_reviewed_rows_are_the_two_phase_estimate_and_the_implicit_row_stays_beside_them():
    cases, phase_one, labels, _ = audited_day()
    reviewed = score_reviewed(cases, phase_one, labels, SCORERS)
    assert len(reviewed) == len(labels)  # every answered verdict scored once
    rows = summarise_reviewed(reviewed, phase_one, SCORERS, ["segment"])
    overall = rows[(rows["slice_dim"] == "all")].iloc[0]
    # The reviewed label is the truth here, so the verdict "AI right" is the world's hidden truth.
    hidden = cases.set_index("event_id")["true_correct"]
    verdicts = pd.DataFrame({"event_id": labels["event_id"],
                             "ai_correct": hidden.loc[labels["event_id"]].to_numpy(dtype=bool)})
    reference = estimate_reviewed(phase_one, verdicts).reviewed_accuracy
    assert overall["label_source"] == REVIEWED
    assert overall["mean"] == pytest.approx(reference.estimate, rel=1e-12)
    assert overall["ci_low"] == pytest.approx(reference.ci_low, rel=1e-9)
    assert overall["n_cases"] == len(phase_one) and overall["n_scored"] == len(labels)
    ok = cases[cases["status"] == "ok"]
    truth = float(ok["true_correct"].mean())
    assert overall["ci_low"] <= truth <= overall["ci_high"]
    implicit = summarise_production(score_production(cases, SCORERS), SCORERS, ["segment"])
    human = implicit[(implicit["label_source"] == "human_action") & (implicit["slice_dim"] == "all")].iloc[0]
    assert human["mean"] - truth > 0.05 and human["ci_low"] > truth  # the implicit figure is biased up
    assert set(rows["slice_value"]) == {"all", "business", "consumer"}


def test_a_cell_without_any_scored_verdict_gives_no_reviewed_row():
    cases, phase_one, labels, _ = audited_day(seed=6)
    stratum = phase_one.loc[phase_one["selected"], "stratum"].iloc[0]
    blind = phase_one.loc[phase_one["stratum"] == stratum, "event_id"]
    labels = labels.assign(reviewed_label=labels["reviewed_label"].where(~labels["event_id"].isin(blind)))
    rows = summarise_reviewed(score_reviewed(cases, phase_one, labels, SCORERS), phase_one, SCORERS, [])
    assert rows.empty
