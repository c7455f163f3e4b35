"""performance_estimates through real Dagster runs on tiny demo days: rows, idempotent writes, reviewed labels read
from the lake with their weights, the gap check, and the config section."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.estimation.assets import GAP_CHECK, gap_summary, performance_estimates
from eval_pipelines.estimation.cbpe import ALL_SEGMENTS, STATUS_ESTIMATED, STATUS_NO_CALIBRATION
from eval_pipelines.estimation.tables import performance_estimates as table
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.resources import lake_root
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.conftest import make_project

START = date(2026, 1, 5)
DAYS = [START + timedelta(days=i) for i in range(3)]


def _rows(url: str, day: date) -> pd.DataFrame:
    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as connection:
            result = connection.execute(sa.select(table).where(table.c.partition_date == day)).mappings().all()
    finally:
        engine.dispose()
    return pd.DataFrame([dict(r) for r in result])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("estimation")
    project = make_project(root, {"estimation": {"min_calibration_cases": 40, "bootstrap": 30,
                                                 "ground_truth_cells": ["complaint", "escalation"]}})
    generate_logs(project.landing_dir, days=len(DAYS), events_per_day=700, seed=11, start_date=START)
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        assert dg.materialize([production_logs, labeled_cases], partition_key=day.isoformat(),
                              resources=project.resources(), instance=instance).success
    return project, instance


def _run(project, instance, day: date) -> dg.ExecuteInJobResult:
    result = dg.materialize([performance_estimates], partition_key=day.isoformat(), resources=project.resources(),
                            instance=instance)
    assert result.success
    return result


def test_first_day_has_no_calibration_and_says_why(demo):
    project, instance = demo
    _run(project, instance, DAYS[0])
    rows = _rows(project.warehouse_url, DAYS[0])
    assert len(rows) and set(rows["status"]) == {STATUS_NO_CALIBRATION}
    assert rows["estimated_accuracy"].isna().all()
    assert rows["reason"].str.contains("min_calibration_cases=40").all()


def test_later_day_is_estimated_checked_and_rewritten_idempotently(demo):
    project, instance = demo
    day = DAYS[2]
    result = _run(project, instance, day)
    rows = _rows(project.warehouse_url, day)
    cases = Lake(lake_root(project.settings)).read("labeled_cases", day.isoformat())
    ok = cases[(cases["status"] == "ok") & cases["confidence"].notna()]
    everything = rows[rows["segment"] == ALL_SEGMENTS].set_index("model_version")
    assert everything["cases"].sum() == len(ok)  # every ok case with a confidence is in exactly one version row
    # triage-v2 rolls out on the second demo day: ~15 trusted labels in its window, fewer than 40: no estimate.
    new = everything.loc["triage-v2"]
    assert new["status"] == STATUS_NO_CALIBRATION and np.isnan(new["estimated_accuracy"])
    assert "triage-v2" in new["reason"] and new["cases"] > 0
    for _version, row in everything.loc[["triage-v1"]].iterrows():
        assert row["status"] == STATUS_ESTIMATED, row["reason"]
        assert row["estimated_accuracy_ci_low"] < row["estimated_accuracy"] < row["estimated_accuracy_ci_high"]
        assert row["calibration_implicit_cases"] == 0 and row["calibration_ground_truth_cases"] > 0
        assert row["calibration_window"] == f"{day - timedelta(days=14)}..{day - timedelta(days=1)}"
        assert row["realized_cases"] > 0  # the demo's ground truth on the day itself
        assert row["estimation_error"] == pytest.approx(row["estimated_accuracy"] - row["realized_accuracy"])
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == GAP_CHECK
    metadata = result.asset_materializations_for_node("performance_estimates")[0].metadata
    assert "estimated_vs_realized" in metadata and metadata["dagster/row_count"].value == len(rows)
    # The drift report shows the same rows (its metadata reads them from the warehouse).
    engine = create_warehouse_engine(project.warehouse_url)
    try:
        flagged, markdown = gap_summary(engine, day)
    finally:
        engine.dispose()
    assert flagged == int(rows["gap_flagged"].sum()) and "triage-v1" in markdown
    # Re-running replaces the day: same rows, same numbers (seeded bootstrap), no duplicates.
    _run(project, instance, day)
    again = _rows(project.warehouse_url, day)
    assert len(again) == len(rows)
    pd.testing.assert_frame_equal(again.drop(columns="computed_at"), rows.drop(columns="computed_at"))


def test_reviewed_labels_in_the_lake_calibrate_with_their_weights(demo):
    project, instance = demo
    lake = Lake(lake_root(project.settings))
    cases = lake.read("labeled_cases", DAYS[0].isoformat())
    ok = cases[(cases["status"] == "ok") & cases["confidence"].notna()].head(60)
    truth = np.random.default_rng(0).random(len(ok)) < 0.5
    lake.write("review_labels", DAYS[0].isoformat(), pd.DataFrame({
        "event_id": ok["event_id"].to_numpy(), "inclusion_prob": 0.25,
        "ai_correct": pd.array(truth, dtype="boolean")}))
    try:
        _run(project, instance, DAYS[1])
        rows = _rows(project.warehouse_url, DAYS[1])
        assert rows.loc[rows["segment"] == ALL_SEGMENTS, "calibration_reviewed_cases"].sum() == len(ok)
    finally:
        lake.fs.rm(lake.path("review_labels", DAYS[0].isoformat()))


def test_config_section_fails_on_unknown_keys_and_bad_cells():
    with pytest.raises(ConfigError, match=r"estimation\.min_cases"):
        parse_settings({"estimation": {"min_cases": 3}})
    with pytest.raises(ConfigError, match=r"estimation\.ground_truth_cells\.0"):
        parse_settings({"estimation": {"ground_truth_cells": ["nope"]}})
    with pytest.raises(ConfigError, match="positive_label is required"):
        parse_settings({"estimation": {"score": "positive_class"}})
