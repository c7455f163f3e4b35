"""drift_profile + drift_report in Dagster on demo data: scenario drift shows on its days, quiet days are quiet."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from eval_pipelines.demo.generator import MANIFEST_NAME, generate_logs
from eval_pipelines.drift.assets import ASSETS, DRIFT_CHECK, load_reference, monitors_for
from eval_pipelines.drift.tables import drift_results
from eval_pipelines.ingestion.assets import production_logs, read_partition
from eval_pipelines.labeling.assets import label_cases, labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.resources import lake_root
from eval_pipelines.warehouse.core import create_warehouse_engine
from eval_pipelines_tests.conftest import make_project
from eval_pipelines_tests.faults import fail_first_rename

START = date(2026, 3, 1)
DAYS = 12


@pytest.fixture(scope="module")
def labelled_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 demo days (3,000 events a day) landed and labelled into a lake once; every project below starts from a
    copy, since neither generating nor labelling reads the drift settings the projects differ by."""
    root = tmp_path_factory.mktemp("drift_days")
    project = make_project(root)
    generate_logs(project.landing_dir, days=DAYS, events_per_day=3000, seed=7, start_date=START)
    lake = Lake(lake_root(project.settings))
    for offset in range(DAYS):
        day = date.fromordinal(START.toordinal() + offset)
        cases = label_cases(read_partition(project.settings, day).valid, 0.5, 120.0)
        lake.write("labeled_cases", day.isoformat(), cases)
    return root


def _demo_project(tmp_path_factory: pytest.TempPathFactory, labelled: Path, reference: dict):
    root = tmp_path_factory.mktemp("drift_demo")
    project = make_project(root, {"drift": {"reference": {"trailing_days": 3, **reference}}})
    shutil.copytree(labelled / "landing", project.landing_dir, dirs_exist_ok=True)
    shutil.copytree(labelled / "lake" / "labeled_cases", root / "lake" / "labeled_cases")
    scenario = json.loads((project.landing_dir / MANIFEST_NAME).read_text())["scenario"]
    return project, Lake(lake_root(project.settings)), scenario, dg.DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, labelled_days: Path):
    """12 demo days ingested and labelled into the lake (core functions, no Dagster), plus the scenario dates."""
    return _demo_project(tmp_path_factory, labelled_days, {"exclude_major_drift": False})


@pytest.fixture(scope="module")
def demo_excluding(tmp_path_factory: pytest.TempPathFactory, labelled_days: Path):
    """The same demo days with drift.reference.exclude_major_drift on."""
    return _demo_project(tmp_path_factory, labelled_days, {"exclude_major_drift": True})


def _materialize(demo, day: str) -> tuple[pd.DataFrame, dg.ExecuteInJobResult]:
    project, lake, _, instance = demo
    result = dg.materialize([production_logs, labeled_cases, *ASSETS], selection=ASSETS, partition_key=day,
                            resources=project.resources(), instance=instance)
    assert result.success
    return lake.read("drift_report", day), result


def _drifted(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {(row.column, row.kind): row.severity for row in frame.itertuples() if row.drifted}


def _check(result: dg.ExecuteInJobResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == DRIFT_CHECK
    return evaluation


def test_scenario_days_are_quiet_before_and_drift_on_the_right_columns(demo) -> None:
    scenario = demo[2]
    assert scenario["rollout_start"] > "2026-03-04"

    for quiet in ("2026-03-03", "2026-03-04"):
        frame, result = _materialize(demo, quiet)
        assert len(frame) > 15 and _drifted(frame) == {}, quiet
        assert _check(result).passed

    frame, result = _materialize(demo, scenario["rollout_start"])
    drifted = _drifted(frame)
    assert drifted[("model_version", "categorical")] == "major"
    model = frame.set_index(["column", "kind"]).loc[("model_version", "categorical")]
    assert "unseen: 'triage-v2'" in model["reason"]
    assert not {("product", "categorical"), ("language", "categorical"), ("latency_ms", "numeric"),
                ("status", "categorical")} & set(drifted)

    frame, result = _materialize(demo, scenario["launch_day"])
    drifted = _drifted(frame)
    assert {("product", "categorical"), ("language", "categorical")} <= set(drifted)
    reasons = frame.set_index(["column", "kind"])["reason"]
    assert "unseen: 'nova'" in reasons[("product", "categorical")]
    assert "'pt'" in reasons[("language", "categorical")] and "'ja'" in reasons[("language", "categorical")]
    assert not {("latency_ms", "numeric"), ("status", "categorical")} & set(drifted)

    frame, result = _materialize(demo, scenario["incident_day"])
    drifted = _drifted(frame)
    assert drifted[("latency_ms", "numeric")] == "major" and drifted[("status", "categorical")] == "major"
    assert "'timeout'" in frame.set_index(["column", "kind"])["reason"][("status", "categorical")]
    assert not {("product", "categorical"), ("language", "categorical")} & set(drifted)
    evaluation = _check(result)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "latency_ms (numeric)" in evaluation.description and "status (categorical)" in evaluation.description


def test_report_writes_warehouse_html_and_metadata_and_reruns_cleanly(demo, tmp_path: Path) -> None:
    project, lake, scenario, _ = demo
    day = scenario["incident_day"]
    _materialize(demo, day)
    frame, result = _materialize(demo, day)  # a re-run replaces the day, never duplicates it
    engine = create_warehouse_engine(project.warehouse_url)
    with engine.connect() as connection:
        rows = pd.DataFrame(connection.execute(
            sa.select(drift_results).where(drift_results.c.date == date.fromisoformat(day))).mappings().all())
    assert len(rows) == len(frame) and not rows.duplicated(["column", "kind"]).any()
    assert list(rows.columns) == ["date", "column", "kind", "test", "statistic", "p_value", "p_adjusted",
                                  "effect_size", "effect_ci_low", "effect_ci_high", "threshold", "severity",
                                  "drifted", "reason"]
    assert set(rows.loc[rows["drifted"], "column"]) >= {"latency_ms", "status"}

    page = Path(lake.path("drift_report", day).removesuffix(".parquet") + ".html").read_text(encoding="utf-8")
    assert "latency_ms" in page and "<svg" in page and "Timeline of drift scores" in page

    (materialization,) = [m for m in result.asset_materializations_for_node("drift_report")]
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == len(frame)
    assert metadata["major"].value >= 2
    summary = metadata["summary"].value
    assert "latency_ms" in summary and "█" in summary and "#### Timeline" in summary
    assert metadata["html_report"].value.endswith(f"drift_report/{day}.html")

    # the day profile is stored, and a later report reads it without the raw cases
    stored = lake.read("drift_profile", day)
    assert {"latency_ms", "status", "confidence", "user_action"} <= set(stored["column"])
    profiles_only = Lake(str(tmp_path / "lake"))
    profiles_only.write("drift_profile", day, stored)
    reference, used = load_reference(profiles_only, [date.fromisoformat(day)], monitors_for(project.settings),
                                     project.settings)
    assert used == [day] and reference.rows == 3000
    assert reference.columns[("latency_ms", "numeric")].n == 3000


def test_no_reference_days_means_no_comparison_and_a_passing_check(demo) -> None:
    frame, result = _materialize(demo, START.isoformat())
    assert frame.empty
    evaluation = _check(result)
    assert evaluation.passed and "no reference data" in evaluation.description


class _InterleavingFS:
    """A real filesystem whose first binary write runs ``during`` right after it: a second writer of the same file
    gets in between the first writer's temporary write and its rename, as two runs of one day can."""

    def __init__(self, fs, during) -> None:
        self._fs, self._during, self._fired = fs, during, False

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def open(self, path, mode="rb", **kwargs):
        handle = self._fs.open(path, mode, **kwargs)
        if "w" not in mode or self._fired:
            return handle
        self._fired = True
        during = self._during

        class Handle:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return handle.__exit__(*exc)

            def write(self, data):
                written = handle.write(data)
                handle.flush()
                during()
                return written

        return Handle()


def test_two_writers_of_the_same_html_report_do_not_collide(tmp_path: Path) -> None:
    from eval_pipelines.drift.assets import write_html

    root = str(tmp_path / "lake")
    first, second = "<html>first run " + "x" * 5000 + "</html>", "<html>second</html>"
    racing = Lake(root)
    racing.fs = _InterleavingFS(racing.fs, lambda: write_html(Lake(root), "2026-03-04", second))
    uri = write_html(racing, "2026-03-04", first)  # the second run writes and renames while the first is mid-write
    final = Path(uri)
    assert final.read_text(encoding="utf-8") == first  # whole: the last rename wins, no mix of the two files
    assert sorted(p.name for p in final.parent.iterdir()) == ["2026-03-04.html"]  # no temporary file left behind


def test_a_failed_html_rename_leaves_report_table_and_page_old(demo, monkeypatch) -> None:
    """Issue 15 item 10: drift_results, the HTML page and the Parquet move together (old-or-new)."""
    from eval_pipelines import lake as lake_module

    project, lake, scenario, instance = demo
    day = scenario["incident_day"]
    _materialize(demo, day)
    engine = create_warehouse_engine(project.warehouse_url)
    page = Path(lake.path("drift_report", day).removesuffix(".parquet") + ".html")
    with engine.begin() as connection:  # mark the old state in all three places
        connection.execute(sa.update(drift_results).where(drift_results.c.date == date.fromisoformat(day))
                           .values(reason="old"))
    page.write_text("old page")
    lake.write("drift_report", day, pd.DataFrame({"marker": ["old"]}))
    monkeypatch.setattr(lake_module.os, "replace", fail_first_rename(f"{day}.html", "injected: page rename failed"))
    result = dg.materialize([production_logs, labeled_cases, *ASSETS], selection=ASSETS, partition_key=day,
                            resources=project.resources(), instance=instance, raise_on_error=False)
    assert not result.success
    with engine.connect() as connection:
        reasons = set(connection.execute(sa.select(drift_results.c.reason).where(
            drift_results.c.date == date.fromisoformat(day))).scalars())
    assert reasons == {"old"} and page.read_text() == "old page"
    assert list(lake.read("drift_report", day).columns) == ["marker"]
    frame, _ = _materialize(demo, day)  # and a re-run makes all three new
    assert "marker" not in frame.columns and page.read_text() != "old page"


def _next_days(day: str, count: int) -> list[str]:
    return [date.fromordinal(date.fromisoformat(day).toordinal() + i).isoformat() for i in range(1, count + 1)]


def test_the_return_to_normal_after_an_incident_is_drift_unless_the_incident_leaves_the_reference(
        demo, demo_excluding) -> None:
    incident = demo[2]["incident_day"]
    after = _next_days(incident, 2)
    # plain trailing window: the incident day is in the next days' references, so normal latency looks drifted
    _materialize(demo, incident)
    plain = _drifted(_materialize(demo, after[0])[0])
    assert ("latency_ms", "numeric") in plain

    frame, _ = _materialize(demo_excluding, incident)  # the incident itself is still a major drift
    assert _drifted(frame)[("latency_ms", "numeric")] == "major"
    for day in after:
        frame, result = _materialize(demo_excluding, day)
        drifted = _drifted(frame)
        assert not {("latency_ms", "numeric"), ("status", "categorical")} & set(drifted), day
        latency = frame.set_index(["column", "kind"]).loc[("latency_ms", "numeric")]
        assert f"reference without {incident}" in latency["reason"]
        assert incident in json.loads(latency["details"])["reference_days_excluded"]
        metadata = result.asset_materializations_for_node("drift_report")[0].metadata
        assert f"latency_ms: {incident}" in metadata["reference_excluded"].value


def test_excluding_major_drift_gives_the_same_reports_in_reverse_order(demo_excluding, labelled_days,
                                                                      tmp_path_factory) -> None:
    """A backfill newest first (no earlier report written yet) gives the same reports as day by day."""
    incident = demo_excluding[2]["incident_day"]
    days = [incident, *_next_days(incident, 2)]
    reverse = _demo_project(tmp_path_factory, labelled_days, {"exclude_major_drift": True})
    backwards = {day: _materialize(reverse, day)[0] for day in reversed(days)}
    forwards = {day: _materialize(demo_excluding, day)[0] for day in days}
    for day in days:
        pd.testing.assert_frame_equal(backwards[day], forwards[day], obj=day)
    latency = forwards[days[1]].set_index(["column", "kind"]).loc[("latency_ms", "numeric")]
    assert f"reference without {incident}" in latency["reason"] and not latency["drifted"]
    # and a re-run of a day, after its neighbours ran, gives the same report again
    pd.testing.assert_frame_equal(_materialize(demo_excluding, days[1])[0], forwards[days[1]])
