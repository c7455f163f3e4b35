"""Scoring through real Dagster execution on demo data: production_logs → labeled_cases → eval_set (+ library) →
scored_runs for both demo candidates; the gate check, the warehouse tables, the CLI exit codes, the lifecycle."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.config import load_settings
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.edge_cases.assets import edge_case_library
from eval_pipelines.edge_cases.store import load_events, load_library
from eval_pipelines.evalsets.assets import eval_set
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.scoring import assets as scoring_assets
from eval_pipelines.scoring.assets import GATE_CHECK, candidate_change_sensor, production_scores, scored_runs
from eval_pipelines.scoring.cli import register
from eval_pipelines.scoring.runs import REPLAYABLE_CASES
from eval_pipelines.scoring.settings import ScoringConfig, scoring_config
from eval_pipelines.scoring.store import latest_run, read_cases, read_gate, read_summary
from eval_pipelines.scoring.tables import production_scores as production_scores_table
from eval_pipelines_tests.conftest import Project, make_project
from eval_pipelines_tests.faults import fail_first_call

START = date(2026, 10, 1)
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(3)]
PLAN = {"window_days": 3, "size": 600, "min_per_stratum": 3, "holdout_fraction": 0.25, "seed": 5}
GOOD, WEAK = "keyword_rules", "naive_rules"
TEXT = "template_replies"  # the demo's reply candidate: these triage-only logs hold none of its cases
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "eval_pipelines.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, dg.DagsterInstance]]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            patch.delenv(name, raising=False)
        project = make_project(tmp_path_factory.mktemp("scoring"), {"eval_set": PLAN})
        generate_logs(project.landing_dir, days=len(DAYS), events_per_day=700, seed=11, start_date=START)
        instance = dg.DagsterInstance.ephemeral()
        for day in DAYS:
            assert dg.materialize([production_logs, labeled_cases, production_scores], partition_key=day,
                                  resources=project.resources(), instance=instance).success
        assert dg.materialize([eval_set, edge_case_library], resources=project.resources(),
                              instance=instance).success
        yield project, instance


def _run(project: Project, instance: dg.DagsterInstance, candidate: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([scored_runs], partition_key=candidate, resources=project.resources(), instance=instance,
                          raise_on_error=False)


def _gate_cli(project: Project, candidate: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["gate", "--candidate", candidate])
    args.config = str(project.config_path)
    code = args.handler(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _engine(project: Project) -> sa.Engine:
    return sa.create_engine(project.warehouse_url)


@pytest.fixture(scope="module")
def runs(demo) -> dict[str, dg.ExecuteInProcessResult]:
    project, instance = demo
    return {name: _run(project, instance, name) for name in (GOOD, WEAK, TEXT)}


def test_a_candidate_without_cases_of_its_systems_is_materialised_empty_and_fails_its_gate(demo, runs):
    project, _ = demo
    result = runs[TEXT]
    [materialization] = result.asset_materializations_for_node("scored_runs")
    assert materialization.metadata["dagster/row_count"].value == 0
    assert "no case of systems ['reply_drafts']" in materialization.metadata["skipped"].value
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and "NOT JUDGED → FAIL" in check.description
    # Still a run in the warehouse, so the CLI, the candidates table and the gate_failed alert see its verdict.
    latest = latest_run(_engine(project), TEXT)
    assert latest is not None and not latest["gate_passed"]
    gate = read_gate(_engine(project), latest["run_id"])
    assert gate["criterion"].iloc[0] == REPLAYABLE_CASES and gate["verdict"].iloc[0] == "not_judged"
    assert not gate["passed"].astype(bool).any()
    summary = read_summary(_engine(project), latest["run_id"])
    assert set(summary["scorer"]) == {s.name for s in scoring_config(project.settings).scorers}
    assert (summary["n_scored"] == 0).all() and summary["estimate"].isna().all()


def test_good_candidate_passes_the_gate_and_weak_one_fails(demo, runs):
    project, _ = demo
    good, weak = runs[GOOD], runs[WEAK]
    assert good.success
    (good_check,) = good.get_asset_check_evaluations()
    assert good_check.check_name == GATE_CHECK and good_check.passed
    # The weak candidate's gate fails: a finding, not a crash. The gate is non-blocking with severity ERROR, so the
    # run succeeds (scored_runs is not painted as a failed step) and the check carries the candidate's partition.
    assert weak.success
    (weak_check,) = weak.get_asset_check_evaluations()
    assert not weak_check.passed and weak_check.severity == dg.AssetCheckSeverity.ERROR
    assert good_check.partition == GOOD and weak_check.partition == WEAK
    assert weak_check.description.startswith(f"{WEAK}: FAIL: ")
    assert "| criterion" in weak_check.metadata["gate"].value and "FAIL" in weak_check.metadata["gate"].value

    engine = _engine(project)
    good_gate = read_gate(engine, latest_run(engine, GOOD)["run_id"])
    weak_gate = read_gate(engine, latest_run(engine, WEAK)["run_id"])
    assert good_gate["passed"].all() and len(good_gate) == 5
    failed = set(weak_gate.loc[~weak_gate["passed"], "criterion"])
    assert {"accuracy, lower 95% CI bound", "accuracy at most 2 points below the baseline"} <= failed
    for gate in (good_gate, weak_gate):
        assert gate[["value", "threshold", "op", "detail"]].notna().all().all()


def test_summary_projects_to_production_and_compares_on_the_same_cases(demo, runs):
    project, _ = demo
    engine = _engine(project)
    good = read_summary(engine, latest_run(engine, GOOD)["run_id"])
    weak = read_summary(engine, latest_run(engine, WEAK)["run_id"])
    key = ["case_set", "scorer", "slice_dim", "slice_value"]
    for summary in (good, weak):
        assert not summary.duplicated(key).any()
        assert {"all", "segment", "stratum", "failure_mode", "split"} <= set(summary["slice_dim"])
        overall = summary[(summary["case_set"] == "eval_set") & (summary["slice_dim"] == "all")]
        accuracy = overall[overall["scorer"] == "exact_match"].iloc[0]
        assert accuracy["n_cases"] == PLAN["size"]
        assert accuracy["ci_low"] <= accuracy["estimate"] <= accuracy["ci_high"]
        # The baseline is production on the same cases in both runs: the same projected accuracy.
        assert accuracy["wins"] + accuracy["losses"] + accuracy["ties"] == PLAN["size"]
    good_acc = good.set_index(key).loc[("eval_set", "exact_match", "all", "all")]
    weak_acc = weak.set_index(key).loc[("eval_set", "exact_match", "all", "all")]
    assert good_acc["baseline_estimate"] == pytest.approx(weak_acc["baseline_estimate"])
    assert good_acc["estimate"] > good_acc["baseline_estimate"] > weak_acc["estimate"]
    assert good_acc["diff"] > 0 > weak_acc["diff"]
    assert weak_acc["p_value_regression"] < 1e-6 and good_acc["p_value_regression"] > 0.5
    # The segment slices partition the set: their projected populations add up to the whole.
    segments = good[(good["case_set"] == "eval_set") & (good["scorer"] == "exact_match")
                    & (good["slice_dim"] == "segment")]
    assert segments["population"].sum() == pytest.approx(good_acc["population"])
    assert segments["n_cases"].sum() == PLAN["size"]


def test_per_case_results_in_lake_and_warehouse_with_wins_and_losses(demo, runs):
    project, _ = demo
    engine = _engine(project)
    run_id = latest_run(engine, WEAK)["run_id"]
    lake_frame = Lake(str(project.root / "lake")).read("scored_runs", WEAK)
    cases = read_cases(engine, run_id, scorer="exact_match")
    assert len(cases) == len(lake_frame)
    losses = read_cases(engine, run_id, scorer="exact_match", outcome="loss")
    assert len(losses) > 0
    assert (losses["score"] == 0).all() and (losses["baseline_score"] == 1).all()
    summary = read_summary(engine, run_id)
    row = summary[(summary["case_set"] == "eval_set") & (summary["scorer"] == "exact_match")
                  & (summary["slice_dim"] == "all")].iloc[0]
    assert row["losses"] == int(((cases["case_set"] == "eval_set") & (cases["outcome"] == "loss")).sum())


def test_gate_cli_exit_codes(demo, runs, capsys):
    project, _ = demo
    code, out, _ = _gate_cli(project, GOOD, capsys)
    assert code == 0 and "PASS" in out and "accuracy, lower 95% CI bound" in out
    code, out, _ = _gate_cli(project, WEAK, capsys)
    assert code == 1 and "FAIL" in out
    code, _, err = _gate_cli(project, "no_such_candidate", capsys)
    assert code == 2 and "unknown candidate" in err


def test_gate_cli_without_a_run_is_a_data_error(tmp_path, monkeypatch, capsys):
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path)
    code, _, err = _gate_cli(project, GOOD, capsys)
    assert code == 2 and "no scored runs yet" in err
    with pytest.raises(SystemExit) as exit_info:  # --candidate missing: argparse's usage error
        parser = argparse.ArgumentParser()
        register(parser.add_subparsers())
        parser.parse_args(["gate"])
    assert exit_info.value.code == 2


def test_production_scores_match_labeled_cases(demo):
    project, _ = demo
    engine = _engine(project)
    with engine.connect() as connection:
        rows = pd.DataFrame(connection.execute(sa.select(production_scores_table)).mappings().all())
    assert {d.isoformat() for d in rows["partition_date"]} == set(DAYS)
    lake = Lake(str(project.root / "lake"))
    day = DAYS[0]
    cases = lake.read("labeled_cases", day)
    mine = rows[(rows["partition_date"] == date.fromisoformat(day)) & (rows["scorer"] == "exact_match")
                & (rows["slice_dim"] == "all") & (rows["label_source"] == "all")].iloc[0]
    labeled = cases[cases["is_labeled"]]
    assert mine["n_scored"] == len(labeled)
    assert mine["mean"] == pytest.approx(labeled["ai_correct"].astype(float).mean())
    by_version = rows[(rows["partition_date"] == date.fromisoformat(day)) & (rows["scorer"] == "exact_match")
                      & (rows["slice_dim"] == "model_version") & (rows["label_source"] == "all")]
    assert by_version["n_scored"].sum() == len(labeled)
    truth = rows[(rows["scorer"] == "exact_match") & (rows["slice_dim"] == "all")
                 & (rows["label_source"] == "ground_truth")]
    assert (truth["n_scored"] > 0).all()


def _patch_scoring(monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    # The demo config's candidates unless changed (a ScoringConfig has none by default, issue 14)
    shipped = load_settings(SHIPPED_CONFIG).scoring
    candidates = [c.model_dump() for c in shipped.candidates]
    # The shipped scorers and gates too: the reply candidate's context scores free text.
    config = ScoringConfig.model_validate({"candidates": candidates, "scorers": [s.model_dump() for s in
                                                                               shipped.scorers],
                                           "gates": {k: [c.model_dump() for c in v] for k, v in shipped.gates.items()},
                                           **changes})
    monkeypatch.setattr(scoring_assets, "scoring_config", lambda settings: config)


def test_edge_case_lifecycle_moves_after_runs(demo, runs, monkeypatch):
    project, instance = demo
    engine = _engine(project)
    library = load_library(engine)
    assert len(library) > 0
    # After the passing run (policy gate_passed), the entries the good candidate passed are fixed; the failing
    # weak run did not touch the lifecycle.
    good_run = latest_run(engine, GOOD)["run_id"]
    good_cases = read_cases(engine, good_run, scorer="exact_match")
    edge = good_cases[good_cases["case_set"] == "edge_cases"]
    assert len(edge) == len(library)
    fixed = set(library.loc[library["status"] == "fixed", "entry_id"])
    assert fixed and fixed == set(library.loc[library["last_run_id"] == good_run, "entry_id"]) & set(
        library.loc[library["last_run_passed"].astype(bool), "entry_id"])
    assert set(library["status"]) <= {"open", "fixed"}

    # A run that moves the lifecycle whatever its gate says: the weak candidate breaks fixed entries...
    _patch_scoring(monkeypatch, lifecycle_policy="always")
    _run(project, instance, WEAK)
    after_weak = load_library(engine).set_index("entry_id")
    regressed = set(after_weak.index[after_weak["status"] == "regressed"])
    assert regressed and regressed <= fixed
    # ... and the good one fixes them again.
    assert _run(project, instance, GOOD).success
    after_good = load_library(engine).set_index("entry_id")
    assert set(after_good.index[after_good["status"] == "fixed"]) >= regressed
    events = load_events(engine)
    transitions = set(zip(events["from_status"], events["to_status"], strict=True))
    assert {("open", "fixed"), ("fixed", "regressed"), ("regressed", "fixed")} <= transitions


def test_candidate_change_sensor_requests_changed_candidates(demo, monkeypatch):
    project, instance = demo
    resources = {"project": project.resources()["project"]}
    first = candidate_change_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert not first.run_requests  # first sight: left to the automation condition
    candidates = [c.model_dump() for c in project.settings.scoring.candidates]
    candidates[0]["batch_size"] = 50  # the good candidate changed, the weak one did not
    _patch_scoring(monkeypatch, candidates=candidates)
    second = candidate_change_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                             cursor=first.cursor))
    assert [(r.partition_key, r.job_name) for r in second.run_requests] == [(GOOD, "candidate_runs")]
    third = candidate_change_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                            cursor=second.cursor))
    assert not third.run_requests


def test_scored_runs_follow_a_new_eval_set_version_only(demo, runs):
    project, instance = demo
    defs = dg.Definitions(assets=[production_logs, labeled_cases, eval_set, edge_case_library, scored_runs],
                          resources=project.resources())
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.get_requested_partitions(scored_runs.key) == set()  # both ran on the current version

    # The same eval set again (nothing new): its data version is unchanged, no candidate re-runs.
    assert dg.materialize([eval_set], resources=project.resources(), instance=instance).success
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_requested_partitions(scored_runs.key) == set()

    # A new day moves the window: a new version, and every candidate is replayed on it.
    next_day = START + timedelta(days=len(DAYS))
    generate_logs(project.landing_dir, days=1, events_per_day=700, seed=11, start_date=next_day)
    assert dg.materialize([production_logs, labeled_cases], partition_key=next_day.isoformat(),
                          resources=project.resources(), instance=instance).success
    assert dg.materialize([eval_set], resources=project.resources(), instance=instance).success
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.get_requested_partitions(scored_runs.key) == {GOOD, WEAK, TEXT}


def test_missing_eval_set_fails_with_a_clear_message(tmp_path, monkeypatch):
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    project = make_project(tmp_path)
    result = dg.materialize([scored_runs], partition_key=GOOD, resources=project.resources(),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialise eval_set first" in failure.step_failure_data.error.message


def test_scoring_definitions_load_with_the_graph(project):
    from eval_pipelines.scoring.assets import ASSET_CHECKS, ASSETS, SENSORS

    defs = dg.Definitions(assets=[production_logs, labeled_cases, eval_set, edge_case_library, *ASSETS],
                          asset_checks=ASSET_CHECKS, sensors=SENSORS, resources=project.resources())
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert graph.get(scored_runs.key).parent_keys == {dg.AssetKey("eval_set"), dg.AssetKey("edge_case_library")}
    # production_scores also reads the audit (review_queue + review_labels) for its corrected, reviewed rows.
    assert graph.get(production_scores.key).parent_keys == {dg.AssetKey("labeled_cases"), dg.AssetKey("review_queue"),
                                                            dg.AssetKey("review_labels")}
    assert (scored_runs.key, GATE_CHECK) in {(c.asset_key, c.name) for c in graph.asset_check_keys}
    assert graph.get(scored_runs.key).partitions_def.get_partition_keys() == [GOOD, WEAK, TEXT]
    for key in (scored_runs.key, production_scores.key):
        node = graph.get(key)
        assert node.description and node.group_name == "scoring"
    sensor = defs.resolve_sensor_def("candidate_change_sensor")
    assert defs.resolve_job_def(sensor.job_name).asset_layer.selected_asset_keys == {scored_runs.key}


def test_production_scores_stay_old_or_new_when_the_lake_write_fails(demo, monkeypatch):
    """Issue 15 item 10: the warehouse used to be committed before the IO manager wrote the lake."""
    from eval_pipelines import lake as lake_module

    project, instance = demo
    day = DAYS[1]
    engine, lake = _engine(project), Lake(str(project.root / "lake"))
    # Mark the old state in both stores, so "old" and "new" are told apart.
    with engine.begin() as connection:
        connection.execute(sa.update(production_scores_table)
                           .where(production_scores_table.c.partition_date == date.fromisoformat(day))
                           .values(n_scored=-1))
    lake.write("production_scores", day, pd.DataFrame({"marker": ["old"]}))

    def state() -> tuple[bool, bool]:
        """(warehouse still marked old, lake still marked old)."""
        with engine.connect() as connection:
            counts = set(connection.execute(sa.select(production_scores_table.c.n_scored).where(
                production_scores_table.c.partition_date == date.fromisoformat(day))).scalars())
        return counts == {-1}, list(lake.read("production_scores", day).columns) == ["marker"]

    monkeypatch.setattr(lake_module.pq, "write_table",
                        fail_first_call(lake_module.pq.write_table, "injected: lake write failed"))
    # labeled_cases is only loaded from the lake (selection), production_scores runs.
    run = dg.materialize([production_logs, labeled_cases, production_scores], selection=[production_scores],
                         partition_key=day,
                         resources=project.resources(), instance=instance, raise_on_error=False)
    assert not run.success
    assert state() == (True, True)  # old in both
    run = dg.materialize([production_logs, labeled_cases, production_scores], selection=[production_scores],
                         partition_key=day,
                         resources=project.resources(), instance=instance, raise_on_error=False)
    assert run.success
    assert state() == (False, False)  # new in both


def test_scored_runs_page_compares_candidates_and_the_library_page_follows_the_lifecycle(demo, runs):
    """Issue 14 items 4 and 5: one table of every candidate's latest run; the library observed after a run moved it."""
    project, instance = demo
    weak_meta = runs[WEAK].asset_materializations_for_node("scored_runs")[0].metadata
    table = weak_meta["candidates"].value
    good_line = next(line for line in table.splitlines() if line.startswith(f"| {GOOD}"))
    weak_line = next(line for line in table.splitlines() if line.startswith(f"| {WEAK}"))
    assert "PASS" in good_line and "FAIL" in weak_line and " %" in good_line and " pp " in weak_line
    assert "accuracy, lower 95% CI bound" in weak_line
    observations = instance.fetch_observations(edge_case_library.key, limit=10).records
    assert observations, "a run that moved entries must leave an observation on edge_case_library"
    latest = observations[0].asset_observation
    library = load_library(_engine(project), include_empty=True)
    for status in ("open", "fixed", "regressed"):  # the latest observation is the library as it stands
        assert latest.metadata[f"entries_{status}"].value == int((library["status"] == status).sum()), status
    assert "moved_this_run" in latest.metadata and "failure_mode" in latest.metadata[
        "by_failure_mode_and_status"].value
