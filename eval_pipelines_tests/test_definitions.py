"""The code location loads, validates and exposes exactly the graph we promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from eval_pipelines.definitions import build_definitions

ROOT = Path(__file__).resolve().parent.parent


def test_definitions_validate_and_pin_the_graph():
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "production_logs", "labeled_cases", "kpi_daily", "kpi_rollups", "kpi_definitions", "drift_profile",
        "drift_report", "eval_set", "edge_case_library", "production_scores", "scored_runs", "review_queue",
        "review_labels", "performance_estimates", "quality_report"}
    assert {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys} == {
        ("production_logs", "contract_expectations"), ("production_logs", "quarantine_rate"),
        ("production_logs", "files_readable"),
        ("production_logs", "no_duplicates_across_days"), ("production_logs", "volume_vs_trailing_days"),
        ("kpi_daily", "kpi_daily_consistent"), ("drift_report", "no_major_drift"), ("eval_set", "eval_set_design"),
        ("edge_case_library", "edge_case_ledger"), ("scored_runs", "release_gate"),
        ("review_labels", "review_files_conserved"), ("performance_estimates", "estimate_matches_realized")}
    parents = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
               for key in graph.get_all_asset_keys()}
    assert parents["drift_report"] == {"labeled_cases", "drift_profile"}
    assert parents["scored_runs"] == {"eval_set", "edge_case_library"}
    assert parents["quality_report"] == {
        "kpi_daily", "drift_report", "scored_runs", "edge_case_library", "performance_estimates", "review_labels"
    }
    assert all(parents[name] == {"labeled_cases"} for name in
               ("drift_profile", "edge_case_library"))
    # production_scores projects the reviewed labels by the audit's design beside the implicit figure.
    assert parents["production_scores"] == {"labeled_cases", "review_queue", "review_labels"}
    # The corrected KPI columns read the day's audit (phase one and the adjudicated verdicts).
    assert parents["kpi_daily"] == {"labeled_cases", "review_queue", "review_labels"}
    # The eval set draws on the review loop's trusted labels (docs/eval_sets.md, "Trusted labels").
    assert parents["eval_set"] == {"labeled_cases", "review_queue", "review_labels"}
    assert parents["review_queue"] == {"labeled_cases"} and parents["review_labels"] == {"review_queue"}
    assert parents["performance_estimates"] == {"labeled_cases", "review_labels"}
    assert graph.get(dg.AssetKey("labeled_cases")).parent_keys == {dg.AssetKey("production_logs")}
    assert {s.name for s in defs.sensors} == {"landing_sensor", "automation_sensor", "candidate_change_sensor",
                                             "review_inbox_sensor", "alerts_sensor"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and node.group_name != "default", key


def test_landing_sensor_targets_the_daily_chain_job():
    """Issue 14 item 2: the landing sensor launches the day's whole chain as one named run (it used to target
    production_logs alone and leave the rest to automation ticks)."""
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.job_name == "daily_chain"
    job = defs.resolve_job_def(sensor.job_name)
    keys = job.asset_layer.selected_asset_keys
    assert {dg.AssetKey(k) for k in ("production_logs", "labeled_cases", "kpi_daily", "drift_report",
                                     "production_scores")} <= keys
    graph = defs.resolve_asset_graph()
    # only daily assets, none of the review round, every one with its checks
    assert all(graph.get(k).partitions_def == job.partitions_def for k in keys)
    assert not any(graph.get(k).group_name == "review" for k in keys)
    assert {c for c in graph.asset_check_keys if c.asset_key in keys} <= job.asset_layer.asset_graph.asset_check_keys


def test_every_job_forks_its_steps_from_a_preloaded_forkserver():
    """Issue 14 item 2: a spawned step re-imports the libraries (2.5 s, 6 s with Great Expectations) before it does
    anything; every job, the automation's implicit asset job included, forks its steps from one forkserver that
    imported them once. The preload list must import, or every step of every run would fail to start."""
    from eval_pipelines.jobs import FORKSERVER_PRELOAD

    defs = build_definitions()
    jobs = [defs.resolve_job_def(name) for name in ("daily_chain", "review_round", "eval_set_refresh",
                                                    "candidate_runs")]
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    for job in jobs:
        assert job.executor_def.name == "forkserver_multiprocess", job.name
    code = f"import importlib; [importlib.import_module(m) for m in {FORKSERVER_PRELOAD!r}]; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_workspace_yaml_loads_with_the_dagster_cli(tmp_path: Path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "eval_pipelines" in completed.stdout + completed.stderr


def test_local_dagster_yaml_is_a_valid_instance_config(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_coordinator is not None
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_loading_the_code_location_leaves_the_heavy_libraries_for_the_runs_that_use_them():
    """Every run process loads the code location: GX (over a second to import) loads only where the contract check
    runs, scipy.stats (0.4 s) only where a test statistic is computed."""
    code = ("import sys, eval_pipelines.definitions; "
            "print(sorted({'great_expectations', 'scipy.stats'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
