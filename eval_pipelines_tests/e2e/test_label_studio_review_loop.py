"""The whole review loop through a real Label Studio: review_queue exports the day's audit sample to it, two
reviewers annotate through its label stream, review_labels pulls the verdicts into the warehouse, and kpi_daily
carries them into the corrected (reviewed) accuracy.

In-process Dagster on one tiny demo day (as test_review_pipeline.py), with ``review.label_studio`` configured and
its URL/token env vars pointing at the ``label_studio`` fixture's server. The reviewers answer with the
simulator's hidden truth (``generate_logs(truth_dir=...)``), the second reviewer disagreeing on one case, so the
reviewed labels, ``ai_correct`` and the disputed case are all known in advance.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from eval_pipelines.demo.generator import TRUTH_COLUMN, generate_logs
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.kpis.assets import kpi_daily
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.review import label_studio as ls
from eval_pipelines.review.assets import review_labels, review_queue
from eval_pipelines.review.estimation import estimate_reviewed
from eval_pipelines_tests.conftest import make_project
from eval_pipelines_tests.label_studio_server import REVIEWERS, LabelStudioServer

pytestmark = pytest.mark.e2e

DAY = date(2026, 3, 5)
KEY = DAY.isoformat()
PREFIX = "loop"


def _stream(server: LabelStudioServer, project_id: int, email: str, answer: dict[str, str]) -> list[str]:
    headers = {"Authorization": f"Token {server.tokens[email]}"}
    served: list[str] = []
    for _ in range(500):
        response = requests.get(f"{server.url}/api/projects/{project_id}/next", headers=headers, timeout=30)
        if response.status_code == 404:
            return served
        assert response.status_code == 200, response.text[:300]
        task = response.json()
        event_id = task["data"]["event_id"]
        assert event_id not in served
        served.append(event_id)
        result = [{"from_name": "label", "to_name": "input_text", "type": "choices",
                   "value": {"choices": [answer[event_id]]}}]
        posted = requests.post(f"{server.url}/api/tasks/{task['id']}/annotations/", headers=headers, timeout=30,
                               json={"result": result, "was_cancelled": False})
        assert posted.status_code == 201, posted.text[:300]
    raise AssertionError(f"{email}'s label stream did not end")


def test_review_queue_to_label_studio_to_review_labels(label_studio: LabelStudioServer,
                                                       tmp_path_factory: pytest.TempPathFactory,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVAL_PIPELINES_LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("EVAL_PIPELINES_LABEL_STUDIO_TOKEN", label_studio.admin_token)
    root = tmp_path_factory.mktemp("review_loop")
    project = make_project(root, {"review": {"daily_size": 12, "double_review_share": 0.25, "strata": ["review_action"],
                                             "outbox_dir": str(root / "outbox"), "inbox_dir": str(root / "inbox"),
                                             "label_studio": {"project_prefix": PREFIX, "timeout_seconds": 30}},
                           # 11 answered verdicts over a handful of KPI rows: some row has 2 (pigeonhole)
                           "impact": {"reviewed_min_audited": 2}})
    generate_logs(project.landing_dir, days=1, events_per_day=200, seed=5, start_date=DAY, truth_dir=root / "truth")
    instance = dg.DagsterInstance.ephemeral()

    def run(assets: list) -> dg.ExecuteInProcessResult:
        result = dg.materialize(assets, partition_key=KEY, resources=project.resources(), instance=instance)
        assert result.success
        return result

    queued = run([production_logs, labeled_cases, review_queue])
    engine = sa.create_engine(project.warehouse_url)
    try:
        tasks = pd.read_sql_table("review_tasks", engine)
        assert len(tasks) >= 12 and tasks["double_review"].sum() >= 2
        [system] = tasks["system"].unique().tolist()
        title = f"{PREFIX} {system}"
        exported = queued.asset_materializations_for_node("review_queue")[0].metadata["label_studio"].value
        assert exported[title]["created"] == len(tasks) and exported[title]["already_present"] == 0
        again = run([review_queue]).asset_materializations_for_node("review_queue")[0].metadata["label_studio"].value
        assert again[title] == {"created": 0, "already_present": len(tasks),
                                "project_id": exported[title]["project_id"]}
        project_id = int(exported[title]["project_id"])

        truth = pd.read_parquet(root / "truth" / f"{KEY}.parquet")
        true_label = dict(zip(truth["event_id"].astype(str), truth[TRUTH_COLUMN].astype(str), strict=True))
        doubles = sorted(tasks.loc[tasks["double_review"].astype(bool), "event_id"].astype(str))
        disputed_event = doubles[0]
        vocabulary = ls.config_choices(requests.get(
            f"{label_studio.url}/api/projects/{project_id}/", timeout=30,
            headers={"Authorization": f"Token {label_studio.admin_token}"}).json()["label_config"])
        other = next(v for v in vocabulary if v != true_label[disputed_event])
        one, two = REVIEWERS
        served_one = _stream(label_studio, project_id, one, true_label)
        served_two = _stream(label_studio, project_id, two, {**true_label, disputed_event: other})
        assert sorted(served_one) == sorted(tasks["event_id"].astype(str))
        assert sorted(served_two) == doubles  # only the double-review tasks get a second reviewer

        run([review_labels])
        reviewed = pd.read_sql_table("reviewed_cases", engine)
        from_ls = reviewed[reviewed["source"] == f"label_studio:{title}"]
        assert len(from_ls) == len(tasks) + len(doubles)  # every annotation, one row per event × reviewer
        assert from_ls.groupby("event_id")["reviewer"].nunique().max() == 2
        assert set(from_ls.loc[from_ls["event_id"].isin(doubles), "event_id"].value_counts()) == {2}
        assert not from_ls["reviewer"].str.contains("eval-pipelines.test").any()  # e-mails masked
        assert pd.read_sql_table("quarantined_reviews", engine).query("source == @f", local_dict={
            "f": f"label_studio:{title}"}).empty

        labels = Lake(project.settings.storage.lake_dir).read("review_labels", KEY).set_index("event_id")
        assert len(labels) == len(tasks)
        agreed = [e for e in labels.index if e != disputed_event]
        assert (labels.loc[agreed, "reviewed_label"] == [true_label[e] for e in agreed]).all()
        ai_output = tasks.set_index("event_id")["ai_output"].astype(str)
        assert (labels.loc[agreed, "ai_correct"].astype(bool)
                == [true_label[e] == ai_output[e] for e in agreed]).all()
        assert bool(labels.loc[disputed_event, "disputed"]) and pd.isna(labels.loc[disputed_event, "ai_correct"])
        assert labels.loc[doubles, "review_count"].eq(2).all()

        # The verdicts reach the KPI table: every answered (undisputed) verdict counted once, and the reviewed
        # accuracy is the two-phase design estimate of the audit (review/estimation.py), inside its own interval.
        kpis = run([kpi_daily])
        daily = pd.read_sql_table("kpi_daily", engine)
        answered = int(labels["ai_correct"].notna().sum())
        assert answered == len(tasks) - 1  # all but the disputed case
        assert daily["reviewed_cases_audited"].sum() == answered
        queue = Lake(project.settings.storage.lake_dir).read("review_queue", KEY)
        reference = estimate_reviewed(queue, labels.reset_index()[["event_id", "ai_correct"]])
        metadata = kpis.asset_materializations_for_node("kpi_daily")[0].metadata
        assert metadata["reviewed_accuracy"].value == pytest.approx(reference.reviewed_accuracy.estimate, abs=1e-6)
        estimable = daily["reviewed_accuracy"].notna()
        assert estimable.any()
        assert ((daily.loc[estimable, "reviewed_accuracy_ci_low"] <= daily.loc[estimable, "reviewed_accuracy"])
                & (daily.loc[estimable, "reviewed_accuracy"] <= daily.loc[estimable, "reviewed_accuracy_ci_high"])
                ).all()

        before = pd.read_sql_table("reviewed_cases", engine).drop(columns=["created_at"], errors="ignore")
        run([review_labels])  # idempotent: the same verdicts again
        after = pd.read_sql_table("reviewed_cases", engine).drop(columns=["created_at"], errors="ignore")
        key = ["partition_date", "event_id", "reviewer", "source"]
        pd.testing.assert_frame_equal(before.sort_values(key).reset_index(drop=True),
                                      after.sort_values(key).reset_index(drop=True))
    finally:
        engine.dispose()
