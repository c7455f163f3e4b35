"""The corrected columns end to end: labeled_cases -> review_queue -> (demo reviewers answer) -> review_labels ->
kpi_daily, kpi_rollups, production_scores and edge_case_library, in process on one small demo day."""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.demo.reviewers import answer_outbox
from eval_pipelines.edge_cases.assets import edge_case_library
from eval_pipelines.edge_cases.library import ACCEPTED_BUT_WRONG
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.kpis.assets import kpi_daily, kpi_rollups
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.review.assets import review_labels, review_queue
from eval_pipelines.review.estimation import estimate_reviewed
from eval_pipelines.scoring.assets import production_scores
from eval_pipelines_tests.conftest import make_project

DAY = date(2026, 3, 2)
KEY = DAY.isoformat()


def test_corrected_columns_from_the_real_review_assets(tmp_path, monkeypatch):
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path, {"review": {"daily_size": 150, "outbox_dir": str(tmp_path / "outbox"),
                                                 "inbox_dir": str(tmp_path / "inbox")},
                                      "impact": {"reviewed_min_audited": 5}})
    generate_logs(project.landing_dir, days=1, events_per_day=600, seed=4, start_date=DAY,
                  truth_dir=tmp_path / "truth")
    instance = dg.DagsterInstance.ephemeral()

    every = [production_logs, labeled_cases, review_queue, review_labels, kpi_daily, kpi_rollups, production_scores]

    def run(assets: list) -> dg.ExecuteInProcessResult:
        result = dg.materialize(every, selection=assets, partition_key=KEY, resources=project.resources(),
                                instance=instance)
        assert result.success
        return result

    run([production_logs, labeled_cases, review_queue, review_labels, kpi_daily])
    engine = sa.create_engine(project.warehouse_url)
    before = pd.read_sql_table("kpi_daily", engine)
    assert (before["reviewed_cases_audited"] == 0).all() and before["reviewed_accuracy"].isna().all()  # unanswered

    answer_outbox(tmp_path / "outbox", tmp_path / "inbox", tmp_path / "truth", error_rate=0.0, seed=1)
    run([review_labels, kpi_daily, kpi_rollups, production_scores])
    result = dg.materialize([edge_case_library], resources=project.resources(), instance=instance)
    assert result.success
    lake = Lake(str(tmp_path / "lake"))
    queue, labels = lake.read("review_queue", KEY), lake.read("review_labels", KEY)
    daily = pd.read_sql_table("kpi_daily", engine)
    cells = pd.read_sql_table("kpi_review_cells", engine)
    answered = int(labels["ai_correct"].notna().sum())
    assert answered > 0
    assert daily["reviewed_cases_audited"].sum() == answered == cells["audited"].sum()  # every verdict, once
    assert daily["reviewed_population_cases"].sum() == len(queue) == cells["population"].sum()
    estimable = daily["reviewed_accuracy"].notna()
    assert estimable.any()
    assert ((daily.loc[estimable, "reviewed_accuracy_ci_low"] <= daily.loc[estimable, "reviewed_accuracy"])
            & (daily.loc[estimable, "reviewed_accuracy"] <= daily.loc[estimable, "reviewed_accuracy_ci_high"])).all()
    # the week of one day, over all rows, is the day's two-phase estimate (the same cells, one day of strata)
    weekly = pd.read_sql_table("kpi_weekly", engine)
    assert weekly["reviewed_cases_audited"].sum() == answered
    reference = estimate_reviewed(queue, labels[["event_id", "ai_correct"]])
    [metadata] = [m.metadata for m in instance.fetch_materializations(kpi_daily.key, limit=1).records
                  for m in [m.asset_materialization]]
    assert metadata["reviewed_accuracy"].value == pytest.approx(reference.reviewed_accuracy.estimate, abs=1e-6)
    assert metadata["automation_bias_rate"].value == pytest.approx(reference.automation_bias_rate.estimate,
                                                                   abs=1e-6)
    scores = pd.read_sql_table("production_scores", engine)
    reviewed_rows = scores[scores["label_source"] == "reviewed"]
    assert len(reviewed_rows) and set(reviewed_rows["n_cases"][reviewed_rows["slice_dim"] == "all"]) <= \
        set(queue.groupby("system").size())
    library = pd.read_sql_table("edge_cases", engine)
    wrong_accepts = labels["event_id"][labels["ai_correct"].eq(False).fillna(False).to_numpy(dtype=bool)]
    accepted = set(queue.loc[queue["user_action"] == "accepted", "event_id"])
    expected = len(set(wrong_accepts) & accepted)
    silent = library[library["failure_mode"] == ACCEPTED_BUT_WRONG]
    assert (len(silent) > 0) == (expected > 0)
    assert int(silent["occurrences"].sum()) == expected
    assert np.all(silent["expected_output"].to_numpy() != silent["ai_output"].to_numpy())
    engine.dispose()
