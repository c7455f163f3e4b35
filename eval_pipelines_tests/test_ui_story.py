"""Issue 14: what the UI and the CLI say. Partitioned checks, named jobs, no demo candidates by default, the
materialize command's errors and summary."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from eval_pipelines import cli
from eval_pipelines.config import load_settings
from eval_pipelines.definitions import build_definitions
from eval_pipelines_tests.conftest import Project

ROOT = Path(__file__).resolve().parent.parent


def test_every_check_of_a_partitioned_asset_is_partitioned_like_it():
    graph = build_definitions().resolve_asset_graph()
    checks = list(graph.asset_check_keys)
    assert checks
    for key in checks:
        asset_partitions = graph.get(key.asset_key).partitions_def
        check_partitions = graph.get(key).partitions_def
        assert check_partitions == asset_partitions, key.to_user_string()


def test_jobs_are_named_and_the_sensors_use_them():
    defs = build_definitions()
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert {"daily_chain", "eval_set_refresh", "candidate_runs"} <= names
    assert defs.resolve_sensor_def("landing_sensor").job_name == "daily_chain"
    assert defs.resolve_sensor_def("candidate_change_sensor").job_name == "candidate_runs"
    refresh = defs.resolve_job_def("eval_set_refresh").asset_layer.selected_asset_keys
    assert {dg.AssetKey("eval_set"), dg.AssetKey("edge_case_library")} <= refresh
    assert defs.resolve_job_def("candidate_runs").asset_layer.selected_asset_keys == {dg.AssetKey("scored_runs")}


def test_review_round_job_follows_the_review_group():
    from eval_pipelines.jobs import REVIEW_ROUND_JOB, build_jobs
    from eval_pipelines.partitions import daily_partitions

    @dg.asset(partitions_def=daily_partitions, group_name="labeling")
    def labeled_cases() -> None:
        return None

    @dg.asset(partitions_def=daily_partitions, group_name="review", deps=[labeled_cases])
    def review_queue() -> None:
        return None

    jobs = build_jobs([labeled_cases, review_queue], daily_partitions)
    defs = dg.Definitions(assets=[labeled_cases, review_queue], jobs=jobs)
    assert defs.resolve_job_def(REVIEW_ROUND_JOB).asset_layer.selected_asset_keys == {review_queue.key}
    assert defs.resolve_job_def("daily_chain").asset_layer.selected_asset_keys == {labeled_cases.key}
    # without review assets, no empty review job
    assert REVIEW_ROUND_JOB not in {job.name for job in build_jobs([labeled_cases], daily_partitions)}


def test_a_config_without_scoring_has_no_candidates(tmp_path: Path):
    shipped = yaml.safe_load((ROOT / "eval_pipelines.yaml").read_text())
    demo = ["keyword_rules", "naive_rules", "template_replies"]  # two triage candidates, one reply candidate
    assert [c["name"] for c in shipped["scoring"]["candidates"]] == demo
    assert [c.name for c in load_settings(ROOT / "eval_pipelines.yaml").scoring.candidates] == demo
    del shipped["scoring"]
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump(shipped))
    assert load_settings(path).scoring.candidates == []


@pytest.mark.parametrize(("day", "expected"), [
    ("2026-13-40", "not a date (expected YYYY-MM-DD"),
    ("yesterday", "not a date (expected YYYY-MM-DD"),
    ("2019-01-01", "outside the daily partitions, which run from partitions.start_date"),
])
def test_materialize_tells_a_bad_date_from_a_date_outside_the_partitions(project: Project, monkeypatch,
                                                                         capsys, day: str, expected: str):
    monkeypatch.setenv("DAGSTER_HOME", str(project.root))
    assert cli.main(["--config", str(project.config_path), "materialize", day]) == 2
    err = capsys.readouterr().err
    assert expected in err and day in err


def test_materialize_summary_names_failed_checks_and_the_exit_code():
    failed = ["scored_runs:release_gate[naive_rules]: naive_rules: FAIL: edge-case pass rate (context default)"]
    text = cli._summary(6, [], failed, [], advisory=False, code=1)
    assert "6/6 run(s) completed" in text and failed[0] in text
    assert text.splitlines()[-1] == "exit 1: an ERROR check failed (add --checks-advisory to exit 0)"
    advisory = cli._summary(6, [], failed, ["drift_report:no_major_drift[2026-10-02]: 2026-10-02: 1 major"],
                            advisory=True, code=0)
    assert "advisory (--checks-advisory)" in advisory and "1 warning(s)" in advisory
    assert advisory.endswith("exit 0: only checks failed and --checks-advisory was given")
    crashed = cli._summary(3, ["daily_chain[2026-10-01] (run abcd1234)"], [], [], advisory=True, code=1)
    assert "2/3 run(s) completed; 1 crashed: daily_chain[2026-10-01]" in crashed and crashed.endswith(
        "exit 1: a run crashed")


def test_demo_imperfections_are_flawed_rows_duplicates_and_a_late_file(tmp_path: Path):
    import json
    from datetime import date

    from eval_pipelines.demo.generator import generate_logs
    from eval_pipelines.demo.imperfections import add_flawed_rows, write_late_file

    day = date(2026, 10, 2)
    generate_logs(tmp_path, days=1, events_per_day=50, seed=1, start_date=day, files_per_day=1)
    own = [json.loads(line)["event_id"] for line in (tmp_path / day.isoformat() / "part-000.jsonl").open()]
    flaws = add_flawed_rows(tmp_path, day)
    lines = flaws.path.read_text().splitlines()
    assert len(lines) == flaws.quarantined + flaws.duplicates == 7
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            parsed.append(None)
    assert parsed.count(None) == 1  # the cut-off line
    ids = [row.get("event_id") for row in parsed if row is not None]
    assert ids[:4] == own[:4] and None in ids  # re-sent rows, one without an id
    assert any(row is not None and row.get("confidence") == 1.7 for row in parsed)
    late = write_late_file(tmp_path, day, events=5, seed=1)
    late_ids = [json.loads(line)["event_id"] for line in late.open()]
    assert len(late_ids) == 5 and not set(late_ids) & set(own)  # new events, not re-sends


def test_formatting_helpers_say_their_units():
    from eval_pipelines import metadata as fmt

    assert fmt.percent(0.1234) == "12.3 %" and fmt.percent(float("nan")) == "n/a" and fmt.percent(None) == "n/a"
    assert fmt.percent_points(-0.021) == "-2.1 pp" and fmt.percent_interval(0.102, 0.148) == "[10.2 %, 14.8 %]"
    assert fmt.percent_points_with_interval(-0.021, -0.03, -0.012) == "-2.1 pp [-3.0, -1.2]"
    assert fmt.money(12345.6, "USD") == "12,345.60 USD"
    assert [fmt.duration(s) for s in (0.85, 42, 210, 9000)] == ["850 ms", "42.0 s", "3.5 min", "2.50 h"]
    assert fmt.milliseconds(1834.4) == "1,834 ms"
    assert fmt.ratio(2.002, "net value / full cost") == "2.00× (net value / full cost)"


def test_materialize_downstream_of_runs_only_those_assets_and_names_unknown_ones(project: Project, monkeypatch,
                                                                                capsys):
    # make demo's second pass: after the reviewers answered, only what reads their verdicts runs again.
    from datetime import date

    from eval_pipelines.demo.generator import generate_logs

    monkeypatch.setenv("DAGSTER_HOME", str(project.root))
    config = ["--config", str(project.config_path), "materialize", "--checks-advisory"]
    assert cli.main([*config, "--downstream-of", "review_lables"]) == 2
    assert "unknown asset(s) review_lables; known:" in capsys.readouterr().err
    day = date(2026, 3, 2)
    generate_logs(project.landing_dir, days=1, events_per_day=300, seed=3, start_date=day)
    assert cli.main([*config, day.isoformat()]) == 0
    instance = dg.DagsterInstance.get()
    before = {key: instance.get_latest_materialization_event(key).run_id for key in
              (dg.AssetKey("production_logs"), dg.AssetKey("labeled_cases"), dg.AssetKey("kpi_daily"))}
    capsys.readouterr()
    assert cli.main([*config, day.isoformat(), "--downstream-of", "review_labels", "edge_case_library"]) == 0
    out = capsys.readouterr().out
    after = {key: instance.get_latest_materialization_event(key).run_id for key in before}
    assert after[dg.AssetKey("production_logs")] == before[dg.AssetKey("production_logs")]
    assert after[dg.AssetKey("labeled_cases")] == before[dg.AssetKey("labeled_cases")]
    assert after[dg.AssetKey("kpi_daily")] != before[dg.AssetKey("kpi_daily")]
    assert f"review_round[{day}]" in out and "eval_set_refresh" in out and "candidate_runs[" in out
    chain = next(line for line in out.splitlines() if line.startswith(f"daily_chain[{day}]"))
    selected = {"kpi_daily", "kpi_rollups", "performance_estimates", "production_scores"}
    assert f"{len(selected)} asset(s) materialised" in chain, chain


def test_materialize_runs_a_days_assets_in_dependency_order_across_jobs():
    # labeled_cases (daily_chain) → review_queue → review_labels (review_round) → production_scores (daily_chain):
    # one job's runs for the day, then the other's, would score production before the audit was drawn.
    from eval_pipelines.definitions import ALL_ASSETS
    from eval_pipelines.jobs import DAILY_CHAIN_JOB, REVIEW_ROUND_JOB, job_assets, job_segments
    from eval_pipelines.partitions import daily_partitions

    members = job_assets(ALL_ASSETS, daily_partitions)
    job_of = {a.key: job for job in (DAILY_CHAIN_JOB, REVIEW_ROUND_JOB) for a in members[job]}
    daily = [a for job in (DAILY_CHAIN_JOB, REVIEW_ROUND_JOB) for a in members[job]]

    def plan(selected: set[str] | None) -> list[tuple[str, list[str]]]:
        chosen = [a for a in daily if selected is None or a.key.to_user_string() in selected]
        return [(job, [a.key.to_user_string() for a in assets]) for job, assets in job_segments(chosen, job_of)]

    full = plan(None)
    assert [job for job, _ in full] == [DAILY_CHAIN_JOB, REVIEW_ROUND_JOB, DAILY_CHAIN_JOB]
    position = {name: i for i, (_, names) in enumerate(full) for name in names}
    for asset in daily:
        for dependency in asset.dependency_keys & set(job_of):
            assert position[dependency.to_user_string()] <= position[asset.key.to_user_string()], asset.key
    assert sorted(n for _, names in full for n in names) == sorted(a.key.to_user_string() for a in daily)
    # make demo's second pass (everything but ingestion, labels and the audit sample) needs two runs, not three.
    rest = {a.key.to_user_string() for a in daily} - {"production_logs", "labeled_cases", "review_queue"}
    assert [job for job, _ in plan(rest)] == [REVIEW_ROUND_JOB, DAILY_CHAIN_JOB]


def test_make_demos_two_passes_materialise_every_asset_once_with_the_verdicts_read(project: Project, monkeypatch,
                                                                                    capsys):
    from datetime import date

    import sqlalchemy as sa

    from eval_pipelines.demo.generator import generate_logs

    monkeypatch.setenv("DAGSTER_HOME", str(project.root))
    config = ["--config", str(project.config_path)]
    materialize = [*config, "materialize", "--checks-advisory"]
    assert cli.main([*materialize, "--upstream-of", "review_queue", "--exclude", "review_qeue"]) == 2
    assert "--exclude: unknown asset(s) review_qeue" in capsys.readouterr().err
    assert cli.main([*materialize, "--exclude", "production_logs", "--upstream-of", "production_logs"]) == 2
    assert "selection is empty" in capsys.readouterr().err
    day = date(2026, 3, 2)
    generate_logs(project.landing_dir, days=1, events_per_day=400, seed=3, start_date=day,
                  truth_dir=project.root / "truth")
    assert cli.main([*materialize, day.isoformat(), "--upstream-of", "review_queue"]) == 0
    instance = dg.DagsterInstance.get()
    first = {key for key in instance.get_asset_keys() if instance.get_latest_materialization_event(key)}
    assert {k.to_user_string() for k in first} == {"production_logs", "labeled_cases", "review_queue"}
    assert cli.main([*config, "demo-review", "--truth", str(project.root / "truth"), "--seed", "7"]) == 0
    runs_before = {key: instance.get_latest_materialization_event(key).run_id for key in first}
    capsys.readouterr()
    assert cli.main([*materialize, day.isoformat(), "--exclude", "production_logs", "labeled_cases",
                     "review_queue"]) == 0
    out = capsys.readouterr().out
    assert {key: instance.get_latest_materialization_event(key).run_id for key in first} == runs_before
    from eval_pipelines.definitions import ALL_ASSETS

    assert all(instance.get_latest_materialization_event(a.key) for a in ALL_ASSETS), "every asset materialised"
    assert out.index(f"review_round[{day}]") < out.index(f"daily_chain[{day}]")
    # The KPIs read the verdicts: the reviewed accuracy is filled (it stayed empty when the chain ran first).
    with sa.create_engine(project.warehouse_url).connect() as connection:
        reviewed = connection.execute(sa.text("SELECT COUNT(*) FROM kpi_daily WHERE reviewed_accuracy IS NOT NULL"
                                              )).scalar()
    assert reviewed > 0


def test_a_failed_asset_holds_back_only_what_depends_on_it_in_the_days_later_runs(project: Project, monkeypatch,
                                                                                  capsys):
    from datetime import date

    from eval_pipelines.demo.generator import generate_logs
    from eval_pipelines.drift import assets as drift_assets
    from eval_pipelines.labeling import assets as labeling_assets

    def broken(*_args, **_kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setenv("DAGSTER_HOME", str(project.root))
    day = date(2026, 3, 2)
    generate_logs(project.landing_dir, days=1, events_per_day=300, seed=3, start_date=day)
    materialize = ["--config", str(project.config_path), "materialize", "--checks-advisory", day.isoformat()]
    instance = dg.DagsterInstance.get()
    made = lambda name: instance.get_latest_materialization_event(dg.AssetKey(name)) is not None  # noqa: E731

    # drift_profile is a leaf of the day's first run: the audit sample, the verdicts and the KPIs still run.
    with monkeypatch.context() as patch:
        patch.setattr(drift_assets, "profile_frame", broken)
        assert cli.main(materialize) == 1
    out = capsys.readouterr().out
    assert not made("drift_profile") and not made("drift_report")
    assert all(made(name) for name in ("review_queue", "review_labels", "kpi_daily", "production_scores"))
    assert "skipped" not in out.split("\n\n")[0]

    # labeled_cases feeds everything after it: the day's later runs are skipped, said, and the exit code is 1.
    with monkeypatch.context() as patch:
        patch.setattr(labeling_assets, "label_cases", broken)
        assert cli.main([*materialize, "--downstream-of", "labeled_cases"]) == 1
    out = capsys.readouterr().out
    assert f"review_round[{day}]: skipped review_queue, review_labels" in out
    assert "not materialised because an upstream asset of their day was not" in out
