"""The review loop in Dagster, in-process on one tiny demo day: the review config, review_queue (design, tasks
table, outbox file, masking, idempotent re-run), review_labels (file round trip, quarantine, adjudication,
agreement, estimate metadata, idempotent re-run) and review_inbox_sensor (new, unchanged, changed files)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import cohen_kappa_score

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.demo.reviewers import INBOX_FILE, answer_outbox
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.review.assets import PHASE_ONE_COLUMNS, review_labels, review_queue
from eval_pipelines.review.estimation import estimate_reviewed
from eval_pipelines.review.sensors import review_inbox_sensor
from eval_pipelines.review.tables import REVIEW_TABLES
from eval_pipelines_tests.conftest import Project, make_project

DAY = date(2026, 3, 2)
KEY = DAY.isoformat()
LABEL_COLUMNS = ["event_id", "partition_date", "system", "stratum", "inclusion_prob", "certainty", "reviewed_label",
                 "ai_correct", "review_count", "disputed", "adjudication"]


# --------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(("review", "path", "fragment"), [
    ({"daly_size": 10}, "review.daly_size", "unknown key"),
    ({"adjudication": {"mode": "senior"}}, "review.adjudication", "needs senior_reviewer"),
    ({"adjudication": {"mode": "vote"}}, "review.adjudication.mode", "must be one of"),
    ({"label_studio": {"url": "http://x"}}, "review.label_studio.url", "unknown key"),
    ({"double_review_share": 1.5}, "review.double_review_share", "less than or equal to 1"),
    ({"confidence_band_edges": [0.8, 0.5]}, "review.confidence_band_edges", "strictly increasing"),
    ({"vocabulary": {"support_triage": []}}, "review.vocabulary", "at least one label"),
    ({"strata": ["review_action", "regoin"]}, "review.strata.1", "'regoin' is not a labeled_cases column"),
    ({"certainty_columns": ["complain"]}, "review.certainty_columns.0", "'complain' is not a labeled_cases column"),
])
def test_a_wrong_review_key_or_value_fails_at_load_naming_its_path(review, path, fragment):
    with pytest.raises(ConfigError) as error:
        parse_settings({"review": review}, "cfg.yaml")
    message = str(error.value)
    assert message.startswith("cfg.yaml: invalid configuration") and path in message and fragment in message


def test_the_review_section_maps_onto_the_audit_design():
    settings = parse_settings({"review": {"daily_size": 50, "strata": ["review_action", "segment"], "seed": 4,
                                          "fast_accept_seconds": 2, "double_review_share": 0.25,
                                          "adjudication": {"mode": "senior", "senior_reviewer": "lead"}}})
    design = settings.review.design()
    assert (design.daily_size, design.strata_columns, design.seed, design.fast_accept_seconds,
            design.double_review_share) == (50, ("review_action", "segment"), 4, 2.0, 0.25)
    assert parse_settings({}).review.label_studio is None
    configured = parse_settings({"review": {"label_studio": {}}}).review.label_studio
    assert (configured.url_env, configured.token_env, configured.project_prefix, configured.timeout_seconds) == (
        "EVAL_PIPELINES_LABEL_STUDIO_URL", "EVAL_PIPELINES_LABEL_STUDIO_TOKEN", "eval_pipelines", 30.0)


# ------------------------------------------------------------------------------------------------ the day


@dataclass
class Day:
    project: Project
    instance: dg.DagsterInstance
    engine: sa.Engine
    lake: Lake
    root: Path

    @property
    def outbox(self) -> Path:
        return self.root / "outbox" / f"{KEY}.jsonl"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def run(self, assets: list) -> dg.ExecuteInProcessResult:
        result = dg.materialize(assets, partition_key=KEY, resources=self.project.resources(),
                                instance=self.instance)
        assert result.success
        return result

    def table(self, name: str) -> pd.DataFrame:
        frame = pd.read_sql_table(name, self.engine)
        keys = [c.name for c in next(t for t in REVIEW_TABLES if t.name == name).primary_key.columns]
        return frame.drop(columns=["created_at"], errors="ignore").sort_values(keys).reset_index(drop=True)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            patch.delenv(name, raising=False)
        root = tmp_path_factory.mktemp("review")
        project = make_project(root, {"review": {"daily_size": 40, "double_review_share": 0.25,
                                                 "outbox_dir": str(root / "outbox"),
                                                 "inbox_dir": str(root / "inbox")}})
        generate_logs(project.landing_dir, days=1, events_per_day=300, seed=11, start_date=DAY,
                      truth_dir=root / "truth")
        instance = dg.DagsterInstance.ephemeral()
        engine = sa.create_engine(project.warehouse_url)
        found = Day(project, instance, engine, Lake(str(root / "lake")), root)
        found.run([production_logs, labeled_cases, review_queue, review_labels])
        yield found
        engine.dispose()


def test_review_queue_draws_the_design_writes_tasks_and_a_masked_outbox(day: Day):
    cases = day.lake.read("labeled_cases", KEY)
    first = day.lake.read("review_queue", KEY)
    assert list(first.columns) == list(PHASE_ONE_COLUMNS)
    assert sorted(first["event_id"]) == sorted(cases.loc[cases["status"] == "ok", "event_id"])
    sampled = first[~first["certainty"]]
    # Simple random sampling within strata: Σ π over a stratum is its n_h, so Σ π over the frame is the tasks.
    for stratum, group in sampled.groupby("stratum"):
        assert group["inclusion_prob"].sum() == pytest.approx(group["selected"].sum()), stratum
        assert group["inclusion_prob"].nunique() == 1
        assert group["selected"].sum() >= min(2, len(group)), stratum  # minimum_per_stratum
    # daily_size, or more when 2 per stratum need more (the demo day has many small strata).
    assert sampled["selected"].sum() >= 40
    certain = first[first["certainty"]]
    assert certain["selected"].all() and (certain["inclusion_prob"] == 1).all()
    assert first["certainty"].sum() > 0  # the demo day has complaints / compliance flags

    tasks = day.table("review_tasks")
    chosen = first[first["selected"]].sort_values("event_id").reset_index(drop=True)
    assert tasks["event_id"].tolist() == chosen["event_id"].tolist()
    assert np.allclose(tasks["inclusion_prob"], chosen["inclusion_prob"])
    assert tasks["double_review"].sum() == round(0.25 * len(tasks)) == chosen["double_review"].sum()

    lines = [json.loads(text) for text in day.outbox.read_text(encoding="utf-8").splitlines()]
    assert [item["event_id"] for item in lines] == tasks["event_id"].tolist()
    required = {"event_id", "partition_date", "input_text", "ai_output", "user_action", "final_output",
                "confidence", "segment", "stratum", "double_review"}
    assert all(required <= set(item) and item["partition_date"] == KEY for item in lines)
    by_id = cases.set_index("event_id")
    assert all(item["input_text"] == by_id.loc[item["event_id"], "input_text"] for item in lines)
    # The outbox holds the masked text: none of the raw PII of the landing files reaches the reviewers.
    files = sorted((day.project.landing_dir / KEY).glob("*.jsonl"))
    raw = pd.concat([pd.read_json(path, lines=True) for path in files])
    raw = raw.set_index("event_id").loc[[item["event_id"] for item in lines], "input_text"]
    masked = [item["input_text"] for item in lines]
    changed = [r for r, m in zip(raw, masked, strict=True) if r != m]
    assert changed, "the tiny day should hold at least one task whose text had PII"
    outbox_text = day.outbox.read_text(encoding="utf-8")
    emails = {e for text in changed for e in re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text)}
    assert all(email not in outbox_text for email in emails)


def test_rematerialising_review_queue_gives_the_same_tables_and_files(day: Day):
    before = (day.table("review_tasks"), day.lake.read("review_queue", KEY), day.outbox.read_bytes())
    day.run([review_queue])
    after = (day.table("review_tasks"), day.lake.read("review_queue", KEY), day.outbox.read_bytes())
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])
    assert before[2] == after[2]
    assert not list(day.outbox.parent.glob(".*.tmp"))  # the atomic write leaves no temporary behind


def test_review_labels_round_trip_from_inbox_files(day: Day):
    unanswered = day.lake.read("review_labels", KEY)
    assert list(unanswered.columns) == LABEL_COLUMNS and (unanswered["adjudication"] == "unanswered").all()

    [answers] = answer_outbox(day.outbox.parent, day.inbox, day.root / "truth", error_rate=0.2, seed=3)
    bad = day.inbox / KEY / "zz_bad.csv"  # after the demo file: its duplicate is the later one
    tasks = day.table("review_tasks")
    some = tasks["event_id"].iloc[0]
    bad.write_text(f"event_id,reviewer,label\nnot-a-task,carol,{tasks['ai_output'].iloc[0]}\n{some},carol,"
                   f"no/such_label\n{some},reviewer_a,{tasks['ai_output'].iloc[0]}\n")
    result = day.run([review_labels])
    [check] = result.get_asset_check_evaluations()
    assert check.passed and f"= {answers.verdicts} accepted + 3 quarantined" in check.description

    inbox = pd.read_json(day.inbox / KEY / INBOX_FILE, lines=True)
    reviewed = day.table("reviewed_cases")
    assert len(reviewed) == answers.verdicts == len(tasks) + int(tasks["double_review"].sum())
    assert (reviewed["source"] == f"{KEY}/{INBOX_FILE}").all()
    quarantined = day.table("quarantined_reviews")
    assert quarantined["line"].tolist() == [2, 3, 4] and (quarantined["source"] == f"{KEY}/zz_bad.csv").all()
    assert ["not a review task" in quarantined["reason"][0], "vocabulary" in quarantined["reason"][1],
            "duplicate" in quarantined["reason"][2]] == [True, True, True]

    labels = day.lake.read("review_labels", KEY).set_index("event_id")
    assert len(labels) == len(tasks) and labels["review_count"].sum() == answers.verdicts
    by_event = inbox.groupby("event_id")["label"].agg(list)
    ai_output = tasks.set_index("event_id")["ai_output"]
    for event_id, row in labels.iterrows():
        given = by_event[event_id]
        if len(given) == 1:
            assert row["adjudication"] == "single" and row["reviewed_label"] == given[0]
        elif given[0] == given[1]:
            assert row["adjudication"] == "majority" and row["reviewed_label"] == given[0]
        else:  # two reviewers disagree: a tie, disputed under majority
            assert row["adjudication"] == "disputed" and row["disputed"] and pd.isna(row["reviewed_label"])
        if not pd.isna(row["reviewed_label"]):
            assert bool(row["ai_correct"]) == (row["reviewed_label"] == ai_output[event_id])

    agreement = day.table("review_agreement")
    pairs = inbox[inbox["event_id"].isin(tasks.loc[tasks["double_review"], "event_id"])].pivot(
        index="event_id", columns="reviewer", values="label")
    assert agreement["double_reviewed_cases"].tolist() == [len(pairs)]
    assert agreement["kappa"][0] == pytest.approx(cohen_kappa_score(pairs["reviewer_a"], pairs["reviewer_b"]))
    assert agreement["disputed_cases"][0] == int((pairs["reviewer_a"] != pairs["reviewer_b"]).sum())

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    expected = estimate_reviewed(day.lake.read("review_queue", KEY), labels.reset_index()[["event_id", "ai_correct"]])
    assert metadata["reviewed_accuracy"].value == pytest.approx(expected.reviewed_accuracy.estimate, abs=1e-6)
    assert metadata["automation_bias_rate_ci_high"].value == pytest.approx(expected.automation_bias_rate.ci_high,
                                                                           abs=1e-6)
    assert metadata["quarantined"].value == 3 and metadata["answered"].value == len(tasks)

    state = {name: day.table(name) for name in ("reviewed_cases", "quarantined_reviews", "review_agreement")}
    lake_state = day.lake.read("review_labels", KEY)
    day.run([review_labels])
    for name, frame in state.items():
        pd.testing.assert_frame_equal(frame, day.table(name))
    pd.testing.assert_frame_equal(lake_state, day.lake.read("review_labels", KEY))
    bad.unlink()


def tick(day: Day, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, instance=day.instance,
                                      resources={"project": day.project.resources()["project"]})
    return review_inbox_sensor(context)


def test_inbox_sensor_requests_new_and_changed_days_only(day: Day):
    (day.inbox / "2026-03-03").mkdir(parents=True, exist_ok=True)
    (day.inbox / "2026-03-03" / "early.jsonl").write_text("{}\n")  # no review_queue for that day yet: waits
    day.run([review_labels])  # the inbox state as it is now has been read
    first = tick(day, None)
    assert not first.run_requests  # the day's current files were read by the last materialisation
    assert json.loads(first.cursor) == {KEY: json.loads(first.cursor)[KEY]}  # 03-03 is not remembered

    extra = day.inbox / KEY / "late.jsonl"
    extra.write_text(json.dumps({"event_id": "x", "reviewer": "r", "label": "l"}) + "\n")
    changed = tick(day, first.cursor)
    assert [r.partition_key for r in changed.run_requests] == [KEY]
    assert changed.run_requests[0].run_key.startswith(f"review_labels:{KEY}:")
    unchanged = tick(day, changed.cursor)
    assert not unchanged.run_requests and unchanged.cursor == changed.cursor
    extra.write_text(json.dumps({"event_id": "y", "reviewer": "r", "label": "l2"}) + "\n")
    again = tick(day, unchanged.cursor)
    assert [r.partition_key for r in again.run_requests] == [KEY]
    assert again.run_requests[0].run_key != changed.run_requests[0].run_key
    extra.unlink()


def test_label_studio_is_called_only_when_configured_and_its_annotations_are_validated_like_files(
        day: Day, monkeypatch: pytest.MonkeyPatch):
    """The client module (eval_pipelines/review/label_studio.py) is another piece; a stand-in records the calls."""
    import sys
    import types

    import yaml

    import eval_pipelines.review
    from eval_pipelines.config import load_settings
    from eval_pipelines.resources import build_resources

    tasks = day.table("review_tasks")
    calls: dict[str, list] = {"connect": [], "export": [], "pull": []}
    pulled = pd.DataFrame({"event_id": [tasks["event_id"][0], "not-a-task"], "partition_date": [KEY, KEY],
                           "reviewer": ["ana.reviewer@example.com"] * 2, "label": [tasks["ai_output"][0]] * 2,
                           "comment": [None, None], "reviewed_at": ["2026-03-03T10:00:00Z"] * 2,
                           "source": ["label_studio"] * 2})
    fake = types.ModuleType("eval_pipelines.review.label_studio")
    fake.connection_from_env = lambda url_env, token_env, timeout: calls["connect"].append(
        (url_env, token_env, timeout)) or "conn"
    fake.export_tasks = lambda conn, title, vocabulary, frame: calls["export"].append(
        (conn, title, tuple(vocabulary), sorted(frame["event_id"]))) or {"created": len(frame)}
    fake.pull_annotations = lambda conn, title: calls["pull"].append((conn, title)) or pulled
    monkeypatch.setitem(sys.modules, "eval_pipelines.review.label_studio", fake)
    monkeypatch.setattr(eval_pipelines.review, "label_studio", fake, raising=False)

    config = yaml.safe_load(day.project.config_path.read_text())
    config["review"]["label_studio"] = {"project_prefix": "qa", "timeout_seconds": 5}
    path = day.root / "with_label_studio.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    resources = build_resources(load_settings(path), str(path))
    for asset in (review_queue, review_labels):
        assert dg.materialize([asset], partition_key=KEY, resources=resources, instance=day.instance).success
    title = "qa support_triage"
    assert calls["connect"] == [("EVAL_PIPELINES_LABEL_STUDIO_URL", "EVAL_PIPELINES_LABEL_STUDIO_TOKEN", 5.0)] * 2
    [(_, exported_title, vocabulary, exported)] = calls["export"]
    assert exported_title == title and exported == sorted(tasks["event_id"]) and tasks["ai_output"][0] in vocabulary
    assert calls["pull"] == [("conn", title)]
    reviewed = day.table("reviewed_cases")
    [reviewer] = reviewed.loc[reviewed["source"] == f"label_studio:{title}", "reviewer"].tolist()
    quarantined = day.table("quarantined_reviews")
    from_label_studio = quarantined[quarantined["source"] == f"label_studio:{title}"]
    assert from_label_studio["line"].tolist() == [2]
    # A Label Studio user is an e-mail address: masked (to a stable token) in both tables, record included.
    assert "example.com" not in reviewer and reviewer == from_label_studio["reviewer"].iloc[0]
    assert "example.com" not in from_label_studio["record"].iloc[0]
    day.run([review_labels])  # back to the files-only configuration
    assert not (day.table("reviewed_cases")["source"] == f"label_studio:{title}").any()
