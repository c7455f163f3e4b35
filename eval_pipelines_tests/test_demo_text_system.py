"""The demo's second, free-text system (reply_drafts) through the whole chain, in process on three small days:
generated logs → labeled_cases (edit signal, graded edits) → review loop (free-text verdicts accepted) → kpi_daily →
drift → eval set → scored runs of the text candidate and of a triage one → release gates."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines import textsim
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.demo.replies import REPLY_SYSTEM
from eval_pipelines.demo.reviewers import answer_outbox
from eval_pipelines.drift.assets import drift_profile, drift_report
from eval_pipelines.edge_cases.assets import edge_case_library
from eval_pipelines.evalsets.assets import eval_set
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.kpis.assets import kpi_daily
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.review.assets import review_labels, review_queue
from eval_pipelines.scoring.assets import GATE_CHECK, scored_runs
from eval_pipelines_tests.conftest import make_project

START = date(2026, 10, 5)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(3)]
TRIAGE = "support_triage"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_demo")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            patch.delenv(name, raising=False)
        project = make_project(root, {
            "eval_set": {"window_days": 3, "size": 500, "min_per_stratum": 3, "holdout_fraction": 0.2, "seed": 3},
            "review": {"daily_size": 120}, "drift": {"min_rows": 50}})
        generate_logs(project.landing_dir, days=len(DAYS), events_per_day=500, seed=9, start_date=START,
                      truth_dir=root / "truth", reply_share=0.3)
        instance = dg.DagsterInstance.ephemeral()
        daily = [production_logs, labeled_cases, review_queue, review_labels, kpi_daily, drift_profile]
        for day in DAYS:
            assert dg.materialize(daily, partition_key=day, resources=project.resources(), instance=instance).success
        answer_outbox(root / "review" / "outbox", root / "review" / "inbox", root / "truth", error_rate=0.03,
                      seed=2)
        for day in DAYS:
            assert dg.materialize([review_labels, kpi_daily], partition_key=day, resources=project.resources(),
                                  instance=instance).success
        assert dg.materialize([production_logs, labeled_cases, drift_profile, drift_report], selection=[drift_report],
                              partition_key=DAYS[-1], resources=project.resources(), instance=instance).success
        assert dg.materialize([eval_set, edge_case_library], resources=project.resources(),
                              instance=instance).success
        runs = {name: dg.materialize([scored_runs], partition_key=name, resources=project.resources(),
                                     instance=instance, raise_on_error=False)
                for name in ("template_replies", "keyword_rules")}
        engine = sa.create_engine(project.warehouse_url)
        yield project, engine, runs
        engine.dispose()


def test_labels_carry_the_edit_signal_for_the_text_system_only(chain) -> None:
    project, _, _ = chain
    cases = Lake(project.settings.storage.lake_dir).read("labeled_cases", DAYS[0])
    replies, triage = cases[cases["system"] == REPLY_SYSTEM], cases[cases["system"] == TRIAGE]
    assert len(replies) == 150 and len(triage) == 500
    assert triage["edit_similarity"].isna().all()
    compared = replies[replies["final_output"].notna() & (replies["status"] == "ok")]
    expected = textsim.edit_similarity(compared["ai_output"].tolist(), compared["final_output"].tolist())
    assert np.allclose(compared["edit_similarity"].to_numpy(dtype=float), expected)
    # Light edits, heavy edits and rewrites all occur, graded by size.
    edited = compared[compared["user_action"] == "edited"]
    assert {"correct", "partly_wrong"} <= set(edited["correctness"])
    assert (compared.loc[compared["user_action"] == "overridden", "edit_similarity"] < 0.5).all()


def test_free_text_verdicts_are_accepted_and_reviewed(chain) -> None:
    _, engine, _ = chain
    reviewed = pd.read_sql_table("reviewed_cases", engine)
    quarantined = pd.read_sql_table("quarantined_reviews", engine)
    assert (reviewed["system"] == REPLY_SYSTEM).sum() > 30
    assert not quarantined["reason"].str.contains("vocabulary").any(), quarantined["reason"].head().tolist()
    # A reply's verdict is free text, most often not any output of the day (a corrected draft).
    replies = reviewed[reviewed["system"] == REPLY_SYSTEM]
    assert replies["label"].str.len().min() > 40


def test_reply_verdicts_store_their_binary_verdict_on_the_draft(chain) -> None:
    project, engine, _ = chain
    reviewed = pd.read_sql_table("reviewed_cases", engine)
    tasks = pd.read_sql_table("review_tasks", engine)[["partition_date", "event_id", "ai_output"]]
    replies = reviewed[reviewed["system"] == REPLY_SYSTEM].merge(tasks, on=["partition_date", "event_id"])
    assert len(replies) == (reviewed["system"] == REPLY_SYSTEM).sum()
    threshold = project.settings.labeling.text_systems()[REPLY_SYSTEM].light_edit_at_least
    right = textsim.edit_similarity(replies["ai_output"].tolist(), replies["label"].tolist()) >= threshold
    assert (replies["draft_verdict"] == np.where(right, "draft_right", "draft_wrong")).all()
    assert right.any() and not right.all()
    assert reviewed.loc[reviewed["system"] == TRIAGE, "draft_verdict"].isna().all()  # a label is its own verdict


def test_kpis_and_drift_show_the_text_system(chain) -> None:
    _, engine, _ = chain
    kpis = pd.read_sql_table("kpi_daily", engine)
    by_system = kpis.groupby("system")[["edit_compared_cases", "edit_similarity_sum"]].sum()
    assert by_system.loc[TRIAGE, "edit_compared_cases"] == 0
    assert by_system.loc[REPLY_SYSTEM, "edit_compared_cases"] > 100
    mean = by_system.loc[REPLY_SYSTEM, "edit_similarity_sum"] / by_system.loc[REPLY_SYSTEM, "edit_compared_cases"]
    assert 0.6 < mean < 0.98
    drift = pd.read_sql_table("drift_results", engine)
    watched = drift[drift["column"].isin(["edit_similarity", "retained_share"])]
    assert set(watched["column"]) == {"edit_similarity", "retained_share"}
    assert watched["p_value"].notna().all()  # tested, not skipped for want of data


def test_eval_set_scored_runs_and_gates_per_system(chain) -> None:
    _, engine, runs = chain
    cases = pd.read_sql_table("eval_set_cases", engine)
    counts = cases.groupby("system").size()
    assert counts.get(REPLY_SYSTEM, 0) > 50 and counts.get(TRIAGE, 0) > 200
    summary = pd.read_sql_table("scored_runs", engine)
    gates = pd.read_sql_table("release_gates", engine)
    for candidate, system, context in (("template_replies", REPLY_SYSTEM, "replies"),
                                       ("keyword_rules", TRIAGE, "default")):
        assert runs[candidate].asset_materializations_for_node("scored_runs"), candidate
        rows = summary[(summary["candidate"] == candidate) & (summary["case_set"] == "eval_set")
                       & (summary["slice_dim"] == "all")].set_index("scorer")
        # Each candidate is replayed on its own system's eval-set cases only.
        assert rows.loc["exact_match", "n_cases"] == counts[system]
        gate = gates[gates["candidate"] == candidate]
        assert len(gate) == 5 and set(gate["context"]) == {context}
        [check] = runs[candidate].get_asset_check_evaluations()
        assert check.check_name == GATE_CHECK and check.passed == bool(gate["gate_passed"].iloc[0])
    text = summary[(summary["candidate"] == "template_replies") & (summary["slice_dim"] == "all")
                   & (summary["case_set"] == "eval_set")].set_index("scorer")
    for scorer in ("edit_similarity", "token_f1", "rouge_l"):
        assert 0.2 < text.loc[scorer, "estimate"] < 1.0
        assert text.loc[scorer, "ci_low"] <= text.loc[scorer, "estimate"] <= text.loc[scorer, "ci_high"]
