"""A scored run without dagster: replay, score, project, compare, edge-case outcomes, the gate and its storage."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.candidates import DEMO_CANDIDATES
from eval_pipelines.demo.generator import DayConditions, generate_day_frame
from eval_pipelines.evalsets.build import sample_cases
from eval_pipelines.evalsets.estimation import estimate_from_cases
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.labeling.assets import label_cases
from eval_pipelines.scoring.adapters import LoggedSystem, PythonSystem, build_system
from eval_pipelines.scoring.gate import evaluate_gate, gate_passed, render_gate
from eval_pipelines.scoring.production import score_production, summarise_production
from eval_pipelines.scoring.runs import attach_logged, edge_cases_frame, eval_set_cases_frame, score_run
from eval_pipelines.scoring.settings import EdgeCaseCriterion, ScoreCriterion, ScoringConfig
from eval_pipelines.scoring.store import RunInfo, latest_run, read_cases, read_gate, read_summary, write_run
from eval_pipelines.scoring.summarise import score_column

FEATURES = ["channel", "language", "product", "customer_tenure_days"]
# The demo's candidates and defaults, with fewer resamples: these tests check wiring, test_scoring_stats checks the
# resampling.
CONFIG = ScoringConfig.model_validate({"candidates": DEMO_CANDIDATES, "comparison": {"resamples": 300}})


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, object]:
    """Labeled demo cases of three days, an eval set drawn from them, and its cases with production's logs."""
    days = [generate_day_frame(date(2026, 10, d), 1500, 13, day_index=d, conditions=DayConditions(0.5, True))
            for d in (1, 2, 3)]
    labeled = label_cases(pd.concat(days, ignore_index=True), 0.5, 120.0)
    built = sample_cases(labeled, EvalSetConfig(size=800, min_per_stratum=3), feature_columns=FEATURES)
    cases = attach_logged(eval_set_cases_frame(built.cases),
                          labeled[["event_id", "confidence", "latency_ms", "cost_usd", "status"]])
    strata = built.strata[["stratum", "population", "sample"]]
    return labeled, cases, strata, built


def _entries() -> pd.DataFrame:
    """Three library entries: one each candidate can pass, one only the good one passes, one without a label."""
    return pd.DataFrame({
        "entry_id": ["e-billing", "e-refund", "e-error"],
        "failure_mode": ["overridden_high_confidence", "accepted_but_wrong", "error"],
        "status": ["open", "fixed", "open"],
        "representative_event_id": ["r1", "r2", "r3"],
        "input_text": ["I was charged twice for my Pro subscription this month.",
                       "Ich möchte eine volle Rückerstattung für Bestellung ORD-1.",
                       "Sync is broken since the last update."],
        "ai_output": ["refund/medium", "billing/medium", "none"],
        "expected_output": ["billing/medium", "refund/medium", None],
        "failure_tags": ["override", "", "error|reject"],
        "segment": ["consumer", "business", "enterprise"],
        "system": "support_triage",
    })


def test_projected_accuracy_and_paired_comparison(world):
    _, cases, strata, built = world
    config = CONFIG
    system = build_system(config.candidate("keyword_rules"))
    run = score_run(cases, strata, system, LoggedSystem(), config, config.gates["default"],
                    edge_cases_frame(_entries()))
    summary = run.summary.set_index(["case_set", "scorer", "slice_dim", "slice_value"])
    overall = summary.loc[("eval_set", "exact_match", "all", "all")]
    eval_cases = run.cases[run.cases["case_set"] == "eval_set"]
    frame = eval_cases.assign(y=eval_cases[score_column("exact_match")])
    expected = estimate_from_cases(frame, "y", strata)
    assert overall["estimate"] == pytest.approx(expected.estimate, rel=1e-12)
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high))
    # The production baseline replayed on the eval set is what the eval set itself projected for production.
    assert overall["baseline_estimate"] == pytest.approx(built.projected.estimate, rel=1e-12)
    wins = int(((frame["y"] == 1) & (frame[f"baseline_{score_column('exact_match')}"] == 0)).sum())
    assert overall["wins"] == wins and overall["test"] == "mcnemar_chi2"
    assert run.passed, render_gate(run.gate)


def test_weak_candidate_fails_and_the_table_names_why(world):
    _, cases, strata, _ = world
    config = CONFIG
    run = score_run(cases, strata, build_system(config.candidate("naive_rules")), LoggedSystem(), config,
                    config.gates["default"], edge_cases_frame(_entries()))
    assert not run.passed
    failed = run.failures.set_index("criterion")
    assert "accuracy, lower 95% CI bound" in failed.index
    assert "accuracy at most 2 points below the baseline" in failed.index
    assert failed.loc["accuracy, lower 95% CI bound", "value"] < 0.6
    table = render_gate(run.gate)
    assert table.count("FAIL") == 2 and table.count("PASS") == 3


def test_edge_case_outcomes_and_pass_rate(world):
    _, cases, strata, _ = world
    config = CONFIG
    edge = edge_cases_frame(_entries())
    assert edge["status"].tolist() == ["ok", "ok", "error"]  # production's status read from its failure tags
    good = score_run(cases, strata, build_system(config.candidate("keyword_rules")), LoggedSystem(), config,
                     config.gates["default"], edge)
    outcome = good.edge_outcomes.set_index("entry_id")
    assert outcome["passed"].to_dict() == {"e-billing": True, "e-error": True, "e-refund": True}
    assert not outcome["baseline_passed"].any()  # production failed each of them
    weak = score_run(cases, strata, build_system(config.candidate("naive_rules")), LoggedSystem(), config,
                     config.gates["default"], edge)
    weak_outcome = weak.edge_outcomes.set_index("entry_id")["passed"].to_dict()
    assert weak_outcome == {"e-billing": True, "e-error": True, "e-refund": False}  # English-only misses German
    rates = weak.summary[(weak.summary["case_set"] == "edge_cases") & (weak.summary["scorer"] == "edge_case_pass")]
    assert rates.set_index("slice_value").loc["all", "mean"] == pytest.approx(2 / 3)
    edge_gate = weak.gate[weak.gate["criterion"] == "edge-case pass rate"].iloc[0]
    assert edge_gate["passed"] and edge_gate["detail"] == "2 of 3 library entries passed"


def test_gate_criteria_fail_without_evidence_and_honour_slices(world):
    _, cases, strata, _ = world
    config = CONFIG
    run = score_run(cases, strata, build_system(config.candidate("keyword_rules")), LoggedSystem(), config,
                    config.gates["default"])
    criteria = [
        ScoreCriterion(scorer="exact_match", statistic="estimate", threshold=0.5, slice="segment=enterprise"),
        ScoreCriterion(scorer="exact_match", statistic="estimate", threshold=0.5, slice="segment=nowhere"),
        ScoreCriterion(scorer="latency_ms", statistic="p99", op="le", threshold=1e-9),
        EdgeCaseCriterion(min_pass_rate=0.9, min_entries=1),
        EdgeCaseCriterion(min_pass_rate=0.9, min_entries=0),
        EdgeCaseCriterion(min_pass_rate=0.9, min_entries=1, allow_missing=True),
        ScoreCriterion(scorer="exact_match", statistic="estimate", threshold=0.5, slice="segment=nowhere",
                       allow_missing=True),
    ]
    table = evaluate_gate(criteria, run.summary)
    # No edge case was replayed: too little evidence is "not judged", and fails unless the criterion allows it.
    assert table["passed"].tolist() == [True, False, False, False, False, True, True]
    assert table["verdict"].tolist() == ["pass", "not_judged", "fail", "not_judged", "not_judged", "not_judged",
                                         "not_judged"]
    assert "no summary row" in table.loc[1, "detail"]
    assert "not judged" in table.loc[3, "detail"] and "fails the gate" in table.loc[3, "detail"]
    assert "allowed" in table.loc[5, "detail"]
    shown = render_gate(table)
    assert shown.count("NOT JUDGED → FAIL") == 3 and shown.count("NOT JUDGED (allowed)") == 2
    assert not gate_passed(table) and not gate_passed(table.iloc[0:0])
    assert gate_passed(evaluate_gate(criteria[5:], run.summary))


def test_edge_case_criterion_needs_min_entries_to_be_judged(world):
    """Fewer entries than min_entries used to pass vacuously; now it is reported as not judged and fails."""
    _, cases, strata, _ = world
    config = CONFIG
    run = score_run(cases, strata, build_system(config.candidate("keyword_rules")), LoggedSystem(), config,
                    config.gates["default"], edge_cases_frame(_entries()))  # 3 entries, all passed
    few = evaluate_gate([EdgeCaseCriterion(min_pass_rate=0.5, min_entries=5)], run.summary).iloc[0]
    assert (few["passed"], few["verdict"]) == (False, "not_judged")
    assert few["value"] == pytest.approx(1.0) and "only 3 entries replayed (< 5)" in few["detail"]
    allowed = evaluate_gate([EdgeCaseCriterion(min_pass_rate=0.5, min_entries=5, allow_missing=True)],
                            run.summary).iloc[0]
    assert (allowed["passed"], allowed["verdict"]) == (True, "not_judged")
    enough = evaluate_gate([EdgeCaseCriterion(min_pass_rate=0.5, min_entries=3)], run.summary).iloc[0]
    assert (enough["passed"], enough["verdict"]) == (True, "pass")


def test_failed_calls_count_as_wrong_and_are_gated(world):
    _, cases, strata, _ = world
    config = CONFIG

    def half_broken(batch: pd.DataFrame) -> pd.DataFrame:
        out = build_system(config.candidate("keyword_rules")).predict(batch)
        out.loc[out.index % 2 == 0, "output"] = None
        return out[["output", "confidence", "cost_usd"]]

    run = score_run(cases, strata, PythonSystem("broken", half_broken, batch_size=10_000), LoggedSystem(), config,
                    config.gates["default"])
    summary = run.summary.set_index(["case_set", "scorer", "slice_dim", "slice_value"])
    assert summary.loc[("eval_set", "success", "all", "all"), "mean"] == pytest.approx(0.5)
    exact = summary.loc[("eval_set", "exact_match", "all", "all")]
    assert exact["n_scored"] == len(cases)  # failures are scored (as wrong), not dropped
    assert not run.passed


def test_runs_are_stored_whole_and_rewritten_idempotently(world, tmp_path):
    _, cases, strata, _ = world
    config = CONFIG
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    scorers = [s.name for s in config.scorers]
    run = score_run(cases, strata, build_system(config.candidate("naive_rules")), LoggedSystem(), config,
                    config.gates["default"], edge_cases_frame(_entries()))
    info = RunInfo("run-1", "naive_rules", datetime(2026, 10, 4, tzinfo=UTC), "v1", "production", "default")
    write_run(engine, run, info, scorers)
    write_run(engine, run, info, scorers)  # same run id again: replaced, not duplicated
    later = RunInfo("run-2", "naive_rules", datetime(2026, 10, 5, tzinfo=UTC), "v1", "production", "default")
    write_run(engine, run, later, scorers)
    assert latest_run(engine, "naive_rules")["run_id"] == "run-2"
    assert latest_run(engine, "keyword_rules") is None
    gate = read_gate(engine, "run-1")
    assert len(gate) == 5 and gate["position"].tolist() == [0, 1, 2, 3, 4] and not gate["gate_passed"].any()
    assert len(read_summary(engine, "run-1")) == len(run.summary)
    stored = read_cases(engine, "run-1")
    assert len(stored) == len(run.cases) * len(scorers)
    losses = read_cases(engine, "run-1", scorer="exact_match", outcome="loss")
    summary = run.summary.set_index(["case_set", "scorer", "slice_dim", "slice_value"])
    expected_losses = summary.loc[("eval_set", "exact_match", "all", "all"), "losses"] \
        + summary.loc[("edge_cases", "exact_match", "all", "all"), "losses"]
    assert len(losses) == expected_losses


def test_production_scores_group_by_slice_and_label_source(world):
    labeled, _, _, _ = world
    config = CONFIG
    scored = score_production(labeled, config.scorers)
    rows = summarise_production(scored, config.scorers, ["model_version", "segment"])
    accuracy = rows[(rows["scorer"] == "exact_match") & (rows["label_source"] == "all")].set_index(
        ["slice_dim", "slice_value"])
    labeled_rows = labeled[labeled["is_labeled"]]
    assert accuracy.loc[("all", "all"), "mean"] == pytest.approx(labeled_rows["ai_correct"].astype(float).mean())
    for version, group in labeled_rows.groupby("model_version"):
        assert accuracy.loc[("model_version", version), "n_scored"] == len(group)
    latency = rows[(rows["scorer"] == "latency_ms") & (rows["slice_dim"] == "all") & (rows["label_source"] == "all")]
    assert latency["n_scored"].iloc[0] == len(labeled)  # latency counts every call, labeled or not
    assert latency["p95"].iloc[0] == np.quantile(labeled["latency_ms"], 0.95, method="inverted_cdf")
    truth = rows[(rows["scorer"] == "exact_match") & (rows["slice_dim"] == "all")
                 & (rows["label_source"] == "ground_truth")].iloc[0]
    human = rows[(rows["scorer"] == "exact_match") & (rows["slice_dim"] == "all")
                 & (rows["label_source"] == "human_action")].iloc[0]
    # Automation bias: measured on human decisions, production looks better than on ground truth.
    assert human["mean"] > truth["mean"]


def test_two_library_entries_founded_by_one_event_are_both_stored(world, tmp_path):
    """After a failure-mode rule change and a re-merge, two entries can share their representative event; both are
    replayed in one run and scored_cases keeps both (entry_id is part of its key, '' for eval-set rows)."""
    _, cases, strata, _ = world
    config = CONFIG
    entries = _entries()
    twin = entries.iloc[[0]].assign(entry_id="e-billing-v2", failure_mode="wrong_category")
    entries = pd.concat([entries, twin], ignore_index=True)
    assert entries["representative_event_id"].duplicated().sum() == 1
    run = score_run(cases, strata, build_system(config.candidate("keyword_rules")), LoggedSystem(), config,
                    config.gates["default"], edge_cases_frame(entries))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    scorers = [s.name for s in config.scorers]
    info = RunInfo("run-twins", "keyword_rules", datetime(2026, 10, 4, tzinfo=UTC), "v1", "production", "default")
    write_run(engine, run, info, scorers)
    stored = read_cases(engine, "run-twins", scorer="exact_match")
    shared = stored[stored["event_id"] == "r1"]
    assert sorted(shared["entry_id"]) == ["e-billing", "e-billing-v2"]
    assert len(stored) == len(run.cases)
    eval_rows = stored[stored["case_set"] == "eval_set"]
    assert (eval_rows["entry_id"] == "").all() and eval_rows["event_id"].is_unique
    assert "entry_id" in sa.inspect(engine).get_pk_constraint("scored_cases")["constrained_columns"]
