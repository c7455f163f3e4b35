"""The leadership report (issue 14 item 6): every number equals a warehouse query, the page stands alone.

One small warehouse is built by materialising the real upstream assets in process (3 generated days: a Sunday, the
last day of 2026-W40, then the Monday and Tuesday of 2026-W41) from ingestion to kpi_daily, kpi_rollups and the
edge-case library, with the manual baseline measured on a control segment so the value figures carry intervals, and
a PII canary planted in the free text. Drift results and scored runs with their gates are fixture rows written
through the real table definitions (running drift and candidates would triple the test's time). The report of
2026-W41 is then materialised and its numbers, read from the report model, are compared with SQL written here,
independently of the report's own queries.
Optional inputs (the review loop's kpi_daily columns, performance_estimates) are tested on a copy of the warehouse
with fixture rows added, and without them ("not configured").
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import krippendorff
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from eval_pipelines.definitions import ALL_ASSETS
from eval_pipelines.demo.generator import generate_logs
from eval_pipelines.drift.tables import drift_results
from eval_pipelines.edge_cases.assets import edge_case_library
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.kpis.assets import kpi_daily, kpi_definitions, kpi_rollups
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.partitions import weekly_partitions
from eval_pipelines.reporting.assets import quality_report
from eval_pipelines.reporting.model import build_report
from eval_pipelines.reporting.periods import parse_period, week_of
from eval_pipelines.reporting.render import html_report
from eval_pipelines.scoring.tables import release_gates
from eval_pipelines.scoring.tables import scored_runs as scored_runs_table
from eval_pipelines.warehouse.core import PartitionWrite, create_warehouse_engine, replace_partitions
from eval_pipelines_tests.conftest import Project, make_project

START = date(2026, 10, 4)  # a Sunday: the previous week (W40) has one day, W41 two
DAYS = [(START + timedelta(days=i)).isoformat() for i in range(3)]
WEEK = week_of(date(2026, 10, 5))
CANARY = "report.canary@example.com"
NOW = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)  # after the week: complete


def _impact(shipped_root: Path) -> dict:
    import yaml

    impact = yaml.safe_load((shipped_root / "eval_pipelines.yaml").read_text())["impact"]
    # The baseline measured on a control segment: the value figures then have intervals to check.
    impact["systems"]["support_triage"]["baseline_control"] = {"column": "segment", "value": "enterprise"}
    return impact


def _plant(landing: Path) -> None:
    for part in sorted(landing.rglob("*.jsonl")):
        rows = [json.loads(line) for line in part.read_text().splitlines() if line]
        for index, row in enumerate(rows):
            if index % 5 == 0:
                row["input_text"] = f"{row['input_text']} write to {CANARY}"
                row["ai_output"] = row["final_output"] = f"{row['ai_output']} for {CANARY}"
        part.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, dg.ExecuteInProcessResult]]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
            patch.delenv(name, raising=False)
        root = tmp_path_factory.mktemp("report")
        project = make_project(root, {"impact": _impact(Path(__file__).resolve().parent.parent)})
        generate_logs(project.landing_dir, days=len(DAYS), events_per_day=150, seed=7, start_date=START)
        _plant(project.landing_dir)
        with dg.instance_for_test() as instance:
            for day in DAYS:
                assert dg.materialize([production_logs, labeled_cases, kpi_daily, kpi_rollups], partition_key=day,
                                      resources=project.resources(), instance=instance).success
            assert dg.materialize([edge_case_library, kpi_definitions], resources=project.resources(),
                                  instance=instance).success
            _fixture_rows(project)
            result = dg.materialize([quality_report], partition_key=WEEK.partition_key,
                                    resources=project.resources(), instance=instance)
            assert result.success
            yield project, result


def _gate_rows(run_id: str, candidate: str, created_at: datetime, passed: bool) -> list[dict]:
    base = {"run_id": run_id, "candidate": candidate, "context": "default", "created_at": created_at,
            "eval_set_version": "v-test", "op": ">=", "gate_passed": passed}
    return [{**base, "position": 0, "criterion": "exact_match >= 0.7", "value": 0.8, "threshold": 0.7,
             "passed": True, "verdict": "pass", "detail": "ok"},
            {**base, "position": 1, "criterion": "no_regression exact_match", "value": 0.9 if passed else 0.01,
             "threshold": 0.05, "passed": passed, "verdict": "pass" if passed else "fail", "detail": "p one-sided"}]


def _score_row(run_id: str, candidate: str, created_at: datetime, estimate: float) -> dict:
    return {"run_id": run_id, "case_set": "eval_set", "scorer": "exact_match", "slice_dim": "all",
            "slice_value": "all", "candidate": candidate, "created_at": created_at, "eval_set_version": "v-test",
            "baseline": "production", "context": "default", "binary": True, "higher_is_better": True,
            "n_cases": 200, "n_scored": 200, "mean": estimate, "estimate": estimate, "ci_low": estimate - 0.05,
            "ci_high": estimate + 0.05, "diff": estimate - 0.75, "diff_ci_low": estimate - 0.8,
            "diff_ci_high": estimate - 0.7, "p_value": 0.01}


def _fixture_rows(project: Project) -> None:
    """Drift results and two candidates' scored runs with their gates, through the real tables. keyword_rules ran
    twice: inside W41 (passed) and after it (failed), so a W41 report must show the first verdict."""
    inside, after = datetime(2026, 10, 6, 12, tzinfo=UTC), datetime(2026, 10, 20, 9, tzinfo=UTC)
    runs = [("run-good", "keyword_rules", inside, True, 0.82), ("run-weak", "naive_rules", inside, False, 0.41),
            ("run-later", "keyword_rules", after, False, 0.60)]

    def drift_row(day: date, column: str, severity: str, effect: float) -> dict:
        return {"date": day, "column": column, "kind": "numeric", "test": "ks", "statistic": effect,
                "p_value": 1e-6, "p_adjusted": 1e-5, "effect_size": effect, "effect_ci_low": effect / 2,
                "effect_ci_high": effect * 1.5, "threshold": 0.1, "severity": severity,
                "drifted": severity != "none", "reason": f"{column}: {severity}"}

    drift = {date(2026, 10, 5): [drift_row(date(2026, 10, 5), "confidence", "major", 0.5),
                                 drift_row(date(2026, 10, 5), "latency_ms", "minor", 0.15)],
             date(2026, 10, 6): [drift_row(date(2026, 10, 6), "confidence", "major", 0.7),
                                 drift_row(date(2026, 10, 6), "cost_usd", "none", 0.01)],
             date(2026, 10, 4): [drift_row(date(2026, 10, 4), "confidence", "major", 0.9)]}  # W40: not counted
    writes = [PartitionWrite(drift_results, {"date": day}, rows) for day, rows in drift.items()]
    for run_id, candidate, created_at, passed, estimate in runs:
        writes.append(PartitionWrite(release_gates, {"run_id": run_id}, _gate_rows(run_id, candidate, created_at,
                                                                                     passed)))
        writes.append(PartitionWrite(scored_runs_table, {"run_id": run_id},
                                     [_score_row(run_id, candidate, created_at, estimate)]))
    engine = create_warehouse_engine(project.warehouse_url)
    try:
        for write in writes:  # one table per call: ensure_tables creates each table of a call once
            replace_partitions(engine, [write])
    finally:
        engine.dispose()


def _engine(project: Project) -> sa.Engine:
    return sa.create_engine(project.warehouse_url)


def _report(project: Project, url: str | None = None):
    engine = sa.create_engine(url or project.warehouse_url)
    try:
        return build_report(engine, WEEK, project.settings.impact.ci_level,
                            project.settings.impact.low_volume_below, now=NOW)
    finally:
        engine.dispose()


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _sql_hours_interval(connection: sa.Connection, since: date | None, until: date, level: float
                        ) -> tuple[float, float, float]:
    """hours_saved and its interval from kpi_daily rows, re-derived here: within a (day, system) baseline the rows'
    standard deviations add; baselines are independent (variances add, Welch–Satterthwaite df)."""
    where = "kpi_date <= :until" + (" AND kpi_date >= :since" if since else "")
    rows = connection.execute(sa.text(f"SELECT kpi_date, system, hours_saved, hours_saved_variance, "
                                      f"hours_saved_variance_df_term FROM kpi_daily WHERE {where}"),
                              {"since": since.isoformat() if since else None, "until": until.isoformat()}).all()
    hours = sum(r.hours_saved for r in rows)
    baselines: dict[tuple, list] = {}
    for r in rows:
        entry = baselines.setdefault((r.kpi_date, r.system), [0.0, None])
        entry[0] += math.sqrt(max(r.hours_saved_variance, 0.0))
        if r.hours_saved_variance_df_term and r.hours_saved_variance_df_term > 0:
            entry[1] = r.hours_saved_variance ** 2 / r.hours_saved_variance_df_term  # the baseline's n - 1
    variance = sum(sd ** 2 for sd, _ in baselines.values())
    df = variance ** 2 / sum((sd ** 2) ** 2 / n1 for sd, n1 in baselines.values() if sd > 0)
    half = stats.t.ppf((1 + level) / 2, df) * math.sqrt(variance)
    return hours, hours - half, hours + half


def test_value_figures_equal_warehouse_queries(built):
    project, _ = built
    report = _report(project)
    value = report.section("value")
    level = project.settings.impact.ci_level
    with _engine(project).connect() as connection:
        for prefix, since in (("week_", WEEK.start), ("to_date_", None)):
            where = "kpi_date <= :until" + (" AND kpi_date >= :since" if since else "")
            params = {"since": since.isoformat() if since else None, "until": WEEK.end.isoformat()}
            sums = connection.execute(sa.text(
                f"SELECT SUM(hours_saved), SUM(net_value_amount), SUM(total_cost_amount), SUM(cases), "
                f"SUM(assumed_baseline_decisions), SUM(labour_value_saved_amount), SUM(hours_saved * "
                f"labour_cost_per_hour) FROM kpi_daily WHERE {where}"), params).one()
            hours, net, cost, cases, assumed, _, _ = sums
            assert assumed == 0  # the baseline is measured: intervals exist
            assert _close(value.figure(f"{prefix}hours_saved").value, hours)
            assert _close(value.figure(f"{prefix}net_value").value, net)
            assert _close(value.figure(f"{prefix}total_cost").value, cost)
            assert value.figure(f"{prefix}cases").value == cases
            assert _close(value.figure(f"{prefix}roi").value, net / cost)
            expected_hours, low, high = _sql_hours_interval(connection, since, WEEK.end, level)
            hours_figure = value.figure(f"{prefix}hours_saved")
            assert _close(hours_figure.value, expected_hours)
            assert math.isclose(hours_figure.ci_low, low, rel_tol=1e-9)
            assert math.isclose(hours_figure.ci_high, high, rel_tol=1e-9)
            # One labour rate for the system: the value interval is the hours interval times the rate.
            rate = connection.execute(sa.text(f"SELECT MIN(labour_cost_per_hour), MAX(labour_cost_per_hour) FROM "
                                              f"kpi_daily WHERE {where}"), params).one()
            assert rate[0] == rate[1]
            net_figure, roi_figure = value.figure(f"{prefix}net_value"), value.figure(f"{prefix}roi")
            assert math.isclose(net_figure.ci_low, net - (hours - low) * rate[0], rel_tol=1e-9)
            assert math.isclose(net_figure.ci_high, net + (high - hours) * rate[0], rel_tol=1e-9)
            assert math.isclose(roi_figure.ci_low, net_figure.ci_low / cost, rel_tol=1e-9)
            assert roi_figure.ci_low < roi_figure.value < roi_figure.ci_high
        previous = connection.execute(sa.text(
            "SELECT SUM(hours_saved), SUM(cases), SUM(error_cases) FROM kpi_daily WHERE kpi_date >= :s AND "
            "kpi_date <= :e"), {"s": WEEK.previous().start.isoformat(), "e": WEEK.previous().end.isoformat()}).one()
        this = connection.execute(sa.text(
            "SELECT SUM(hours_saved), SUM(cases), SUM(error_cases), COUNT(DISTINCT kpi_date) FROM kpi_daily WHERE "
            "kpi_date >= :s AND kpi_date <= :e"), {"s": WEEK.start.isoformat(), "e": WEEK.end.isoformat()}).one()
    assert previous[1] > 0 and this[3] == 2
    assert _close(value.figure("wow_hours_saved").value, this[0] - previous[0])
    assert value.figure("wow_cases").value == this[1] - previous[1]
    assert _close(value.figure("wow_error_rate").value, this[2] / this[1] - previous[2] / previous[1])
    assert report.days_with_data == 2 and report.partial
    assert report.currency == "USD"


def test_versions_reliability_gates_drift_failures_equal_warehouse_queries(built):
    project, _ = built
    report = _report(project)
    params = {"s": WEEK.start.isoformat(), "e": WEEK.end.isoformat()}
    with _engine(project).connect() as connection:
        versions = connection.execute(sa.text(
            "SELECT system, model_version, SUM(correct_cases), SUM(labeled_cases), SUM(cases) FROM kpi_daily "
            "WHERE kpi_date >= :s AND kpi_date <= :e GROUP BY system, model_version"), params).all()
        errors = connection.execute(sa.text(
            "SELECT SUM(error_cases), SUM(timeout_cases), SUM(slo_met_cases), SUM(cases) FROM kpi_daily WHERE "
            "kpi_date >= :s AND kpi_date <= :e"), params).one()
        latency = connection.execute(sa.text(
            "SELECT system, model_version, segment, latency_ms_p95 FROM kpi_weekly WHERE week_start = :s"),
            params).all()
        gates = connection.execute(sa.text(
            "SELECT candidate, gate_passed FROM release_gates g WHERE created_at = (SELECT MAX(created_at) FROM "
            "release_gates h WHERE h.candidate = g.candidate AND h.created_at < :next_monday) GROUP BY candidate, "
            "gate_passed"), {"next_monday": "2026-10-12"}).all()
        majors = connection.execute(sa.text(
            "SELECT COUNT(*) FROM drift_results WHERE date >= :s AND date <= :e AND drifted AND severity = "
            "'major'"), params).scalar_one()
        modes = connection.execute(sa.text(
            "SELECT e.failure_mode, SUM(d.occurrences) FROM edge_case_days d JOIN edge_cases e USING (entry_id) "
            "WHERE d.partition_date >= :s AND d.partition_date <= :e GROUP BY e.failure_mode"), params).all()
    version_section = report.section("versions")
    assert len(versions) >= 1
    for system, version, correct, labeled, cases in versions:
        assert _close(version_section.figure(f"accuracy:{system}/{version}").value, correct / labeled)
        assert version_section.figure(f"cases:{system}/{version}").value == cases
    reliability = report.section("reliability")
    assert _close(reliability.figure("error_rate").value, errors[0] / errors[3])
    assert _close(reliability.figure("timeout_rate").value, errors[1] / errors[3])
    assert _close(reliability.figure("slo_attainment_rate").value, errors[2] / errors[3])
    assert len(latency) >= 1
    for system, version, segment, p95 in latency:
        assert _close(reliability.figure(f"latency_p95:{system}/{version}/{segment}").value, p95)
    gate_section = report.section("gates")
    assert sorted(gates) == [("keyword_rules", 1), ("naive_rules", 0)]  # the later, failed run is not in W41
    for candidate, passed in gates:
        assert gate_section.figure(f"gate:{candidate}").value == (1.0 if passed else 0.0)
    assert "no_regression exact_match (fail)" in gate_section.figure("gate:naive_rules").note
    scores = gate_section.tables["scores"]
    assert sorted(scores["run_id"]) == ["run-good", "run-weak"]
    assert majors == 2  # the W40 row and the undrifted one are outside the count
    assert report.section("drift").figure("major_drifts").value == majors
    assert report.section("drift").figure("minor_drifts").value == 1
    highlights = report.section("drift").tables["highlights"]
    assert list(highlights["column"]) == ["confidence", "latency_ms"] and list(highlights["major_days"]) == [2, 0]
    top = report.section("failures").tables["top"]
    expected = dict(modes)
    assert len(top) == min(5, len(expected)) >= 1
    for row in top.itertuples(index=False):
        assert row.occurrences == expected[row.failure_mode]
    # The top modes are the most frequent ones.
    assert sorted(expected.values(), reverse=True)[:len(top)] == list(top["occurrences"])


def test_the_html_stands_alone_without_markdown_or_pii(built):
    project, result = built
    path = project.root / "lake" / "quality_report" / f"{WEEK.label}.html"
    assert path.exists()
    page = path.read_text(encoding="utf-8")
    assert page.count("<svg") >= 3  # hours saved, net value and accuracy per day
    # No external resource: the only URLs are the SVG XML namespaces (names, never fetched).
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"\*\*|\|\s*---|^#", page, flags=re.M)  # no literal Markdown
    assert CANARY not in page and "canary@" not in page
    assert re.search(r"&lt;EMAIL_[a-z]{8}&gt;", page)  # the masked examples are there, as tokens
    text = re.sub(r"<[^>]+>", " ", page)
    assert "USD" in text and " %" in text and " h" in text  # units
    assert "ROI (net value / full cost of running)" in text
    assert "Where the numbers come from" in text and "FROM kpi_daily" in text
    materialization = result.asset_materializations_for_node("quality_report")[0]
    metadata = materialization.metadata
    assert isinstance(metadata["summary"], dg.MarkdownMetadataValue)
    assert "2026-W41" in metadata["summary"].value and CANARY not in metadata["summary"].value
    assert metadata["html_report"].value.endswith(f"quality_report/{WEEK.label}.html")
    assert {"hours_saved_week (h)", "net_value_week (USD)", "roi_week (× net value / full cost)"} <= set(metadata)
    report = _report(project)
    assert math.isclose(metadata["roi_week (× net value / full cost)"].value,
                        report.section("value").figure("week_roi").value, rel_tol=1e-6)
    assert "×" in text  # ROI as a multiple, as the kpi_daily metadata shows it


def test_optional_sections_say_why_they_are_empty(built):
    project, _ = built
    report = _report(project)
    review, estimates = report.section("review"), report.section("estimates")
    # kpi_daily always has the reviewed columns; no review round ran on these days, so they are null.
    assert not review.available and review.reason.startswith("no audited day in this period")
    assert not estimates.available and "not configured" in estimates.reason
    page = html_report(report)
    assert "no audited day in this period" in page and "label-free estimation not configured" in page
    database = Path(project.warehouse_url.removeprefix("sqlite:///"))
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        disabled = build_report(engine, WEEK, review_enabled=False).section("review")
    finally:
        engine.dispose()
    assert not disabled.available and disabled.reason.startswith("review loop disabled (review.enabled: false")


def test_optional_sections_read_their_tables_when_present(built, tmp_path):
    project, _ = built
    database = Path(project.warehouse_url.removeprefix("sqlite:///"))
    copy = tmp_path / "with_review.db"
    shutil.copy(database, copy)
    url = f"sqlite:///{copy}"
    engine = sa.create_engine(url)
    existing = {c["name"] for c in sa.inspect(engine).get_columns("kpi_daily")}
    with engine.begin() as connection:
        for column in ("reviewed_cases_audited", "reviewed_accuracy", "reviewed_accuracy_ci_low",
                       "reviewed_accuracy_ci_high", "automation_bias_rate", "automation_bias_rate_ci_low",
                       "automation_bias_rate_ci_high"):
            if column not in existing:  # kpi_daily has them since the review KPIs; older warehouses did not
                connection.execute(sa.text(f"ALTER TABLE kpi_daily ADD COLUMN {column} FLOAT"))
        # Fixture values, different per row, on the W41 rows of one segment.
        connection.execute(sa.text(
            "UPDATE kpi_daily SET reviewed_cases_audited = 20, reviewed_accuracy = 0.5 + cases / 10000.0, "
            "reviewed_accuracy_ci_low = 0.4, reviewed_accuracy_ci_high = 0.9, automation_bias_rate = cases / "
            "20000.0, automation_bias_rate_ci_low = 0.0, automation_bias_rate_ci_high = 0.3 WHERE segment = "
            "'consumer' AND kpi_date >= :s"), {"s": WEEK.start.isoformat()})
        connection.execute(sa.text(
            "CREATE TABLE performance_estimates (partition_date DATE, system VARCHAR, model_version VARCHAR, segment "
            "VARCHAR, cases INTEGER, estimated_accuracy FLOAT, estimated_accuracy_ci_low FLOAT, "
            "estimated_accuracy_ci_high FLOAT, calibration_cases INTEGER, calibration_window VARCHAR, "
            "realized_accuracy FLOAT, realized_cases INTEGER, estimation_error FLOAT)"))
        for offset, realized in ((0, 0.81), (6, None)):
            connection.execute(sa.text(
                "INSERT INTO performance_estimates VALUES (:d, 'support_triage', 'v1', 'all', 100, :a, :l, :h, 500, "
                "'28d', :r, :rc, NULL)"),
                {"d": (WEEK.start + timedelta(days=offset)).isoformat(), "a": 0.8 + offset / 100, "l": 0.75,
                 "h": 0.85 + offset / 100, "r": realized, "rc": 100 if realized else None})
    # Two reviewers on 40 cases over two days of the week (the same event id on both days: two cases), and a
    # verdict pair the week after, which the week's agreement must not read.
    rng = np.random.default_rng(12)
    first = rng.choice(["billing", "bug", "other"], 40)
    second = np.where(rng.random(40) < 0.75, first, rng.choice(["billing", "bug", "other"], 40))
    verdicts = pd.DataFrame({"partition_date": [WEEK.start + timedelta(days=i // 20 * 3) for i in range(40)] * 2,
                             "event_id": [f"e{i % 20}" for i in range(40)] * 2, "system": "support_triage",
                             "reviewer": ["ann"] * 40 + ["bob"] * 40, "label": np.concatenate([first, second])})
    later = pd.DataFrame({"partition_date": [WEEK.end + timedelta(days=1)] * 2, "event_id": "late",
                          "system": "support_triage", "reviewer": ["ann", "bob"], "label": ["bug", "other"]})
    replies = _reply_verdicts(rng)
    pd.concat([verdicts, later, replies]).to_sql("reviewed_cases", engine, index=False)
    with engine.connect() as connection:
        reviewed = connection.execute(sa.text(
            "SELECT kpi_date, system, model_version, segment, reviewed_accuracy, automation_bias_rate FROM kpi_daily "
            "WHERE reviewed_accuracy IS NOT NULL")).all()
    engine.dispose()
    report = _report(project, url)
    review, estimates = report.section("review"), report.section("estimates")
    assert review.available and estimates.available
    assert len(reviewed) == 4  # 2 days x 2 model versions of the consumer segment
    keys = {f.key for f in review.figures}
    for day, system, version, segment, accuracy, bias in reviewed:
        key = f"{day}/{system}/{version}/{segment}"
        assert _close(review.figure(f"reviewed_accuracy:{key}").value, accuracy)
        assert _close(review.figure(f"automation_bias_rate:{key}").value, bias)
    assert len({k for k in keys if not k.startswith("reviewer_agreement")}) == 2 * len(reviewed)
    # Agreement rolled up over the week, against the kept libraries on the week's 40 cases.
    alpha = review.figure("reviewer_agreement_alpha:support_triage")
    codes = {"billing": 0, "bug": 1, "other": 2}
    expected_alpha = krippendorff.alpha(reliability_data=[[codes[v] for v in first], [codes[v] for v in second]],
                                        level_of_measurement="nominal")
    assert alpha.value == pytest.approx(expected_alpha, abs=1e-9)
    assert alpha.ci_low < alpha.value < alpha.ci_high
    agreement = review.tables["agreement"].set_index("system")
    assert sorted(agreement.index) == ["reply_drafts", "support_triage"]
    row = agreement.loc["support_triage"]
    assert row["double_reviewed_cases"] == 40 and row["disputed_cases"] == int((first != second).sum())
    assert row["kappa"] == pytest.approx(cohen_kappa_score(first, second), abs=1e-9)
    # The free-text system: agreement on the stored binary verdict on the draft, not on the reply texts (which
    # never match, so agreement on them would count every double-reviewed case as disputed).
    ann, bob = (replies[replies["reviewer"] == name]["draft_verdict"].to_numpy() for name in ("ann", "bob"))
    text_row = agreement.loc["reply_drafts"]
    assert text_row["double_reviewed_cases"] == len(ann) and text_row["disputed_cases"] == int((ann != bob).sum()) > 0
    assert int((ann != bob).sum()) < len(ann)  # the raw texts differ on every case
    assert text_row["kappa"] == pytest.approx(cohen_kappa_score(ann, bob), abs=1e-9)
    draft_codes = {"draft_right": 0, "draft_wrong": 1}
    text_alpha = review.figure("reviewer_agreement_alpha:reply_drafts")
    assert text_alpha.value == pytest.approx(krippendorff.alpha(
        reliability_data=[[draft_codes[v] for v in ann], [draft_codes[v] for v in bob]],
        level_of_measurement="nominal"), abs=1e-9)
    assert "COALESCE(draft_verdict, label)" in text_alpha.query.sql
    assert not any("draft_verdict" in note for note in review.notes)  # every reply verdict has its binary one
    assert "Reviewer agreement over the week" in html_report(report)
    assert _close(estimates.figure(f"estimated_accuracy:{WEEK.start}/support_triage/v1").value, 0.8)
    last = estimates.figure(f"estimated_accuracy:{WEEK.end}/support_triage/v1")
    assert _close(last.value, 0.86) and last.note == "labels not in yet"
    page = html_report(report)
    assert "not configured" not in page and "reviewed support_triage/" in page  # the accuracy plot's reviewed series


def _reply_verdicts(rng: np.random.Generator, cases: int = 30) -> pd.DataFrame:
    """Two reviewers' replies on a free-text system's drafts, every reply text different, with the binary verdict
    on the draft that review_labels stores beside it (draft_verdict), agreeing on about 80 % of the cases
    (60 % copied, the rest drawn at random)."""
    ann = rng.choice(["draft_right", "draft_wrong"], cases, p=[0.7, 0.3])
    bob = np.where(rng.random(cases) < 0.6, ann, rng.choice(["draft_right", "draft_wrong"], cases))
    return pd.DataFrame({"partition_date": [WEEK.start + timedelta(days=1)] * (2 * cases),
                         "event_id": [f"r{i}" for i in range(cases)] * 2, "system": "reply_drafts",
                         "reviewer": ["ann"] * cases + ["bob"] * cases,
                         "label": [f"reply {i} as {name} would send it" for name in ("ann", "bob")
                                   for i in range(cases)],
                         "draft_verdict": np.concatenate([ann, bob])})


def test_week_agreement_on_a_reviewed_cases_table_from_before_draft_verdict(built, tmp_path):
    """An older reviewed_cases (no draft_verdict column) still gives the agreement of its labels, with a note that
    free-text systems need the column (docs/warehouse.md)."""
    project, _ = built
    copy = tmp_path / "old_reviewed_cases.db"
    shutil.copy(Path(project.warehouse_url.removeprefix("sqlite:///")), copy)
    engine = sa.create_engine(f"sqlite:///{copy}")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE kpi_daily SET reviewed_cases_audited = 20, reviewed_accuracy = 0.7, "
                                   "reviewed_accuracy_ci_low = 0.6, reviewed_accuracy_ci_high = 0.8 WHERE kpi_date "
                                   ">= :s"), {"s": WEEK.start.isoformat()})
    old = _reply_verdicts(np.random.default_rng(3)).drop(columns=["draft_verdict"])
    old.to_sql("reviewed_cases", engine, index=False)
    engine.dispose()
    review = _report(project, f"sqlite:///{copy}").section("review")
    assert any("no draft_verdict column" in note for note in review.notes)
    [row] = review.tables["agreement"].to_dict("records")
    assert row["disputed_cases"] == row["double_reviewed_cases"] == 30  # every reply text differs


def test_the_weekly_partition_of_a_day():
    # Sunday belongs to the week that started on the Monday before; Monday starts a new one.
    assert week_of(date(2026, 10, 11)).partition_key == "2026-10-05"
    assert week_of(date(2026, 10, 12)).partition_key == "2026-10-12"
    assert week_of(date(2026, 10, 11)).label == "2026-W41"
    # ISO years: 2027-01-01 (a Friday) is in 2026-W53.
    assert week_of(date(2027, 1, 1)).label == "2026-W53" and week_of(date(2027, 1, 1)).start == date(2026, 12, 28)
    assert parse_period("2026-W41") == week_of(date(2026, 10, 7)) == parse_period("2026-10-07")
    with pytest.raises(ValueError, match="2026 has no ISO week 54"):
        parse_period("2026-W54")
    with pytest.raises(ValueError, match="YYYY-Www"):
        parse_period("week 41")
    # Dagster's weekly partitions agree: the window of 2026-10-05 is Monday 00:00 to the next Monday, UTC, and
    # every daily partition lies in exactly one weekly partition.
    window = weekly_partitions.time_window_for_partition_key("2026-10-05")
    assert (window.start.isoformat(), window.end.isoformat()) == ("2026-10-05T00:00:00+00:00",
                                                                  "2026-10-12T00:00:00+00:00")
    daily = next(a for a in ALL_ASSETS if a.key.to_user_string() == "kpi_daily").partitions_def
    first = daily.get_first_partition_key()
    assert weekly_partitions.get_first_partition_key() == week_of(date.fromisoformat(first)).partition_key
    mapping = dg.TimeWindowPartitionMapping()
    downstream = mapping.get_downstream_partitions_for_partitions(
        daily.empty_subset().with_partition_keys(["2026-10-11"]), daily, weekly_partitions)
    assert downstream.get_partition_keys() == ["2026-10-05"]


def test_a_week_without_all_its_days_is_partial(built):
    project, _ = built
    engine = _engine(project)
    try:
        previous = build_report(engine, WEEK.previous(), now=NOW)
        current = build_report(engine, WEEK, now=datetime(2026, 10, 7, tzinfo=UTC))
    finally:
        engine.dispose()
    assert previous.partial and previous.days_with_data == 1
    assert current.partial and current.days_with_data == 2
    assert "Partial period: 1 of 7 days have KPI rows." in html_report(previous)
    assert "Partial period: 2 of 7 days have KPI rows and the week is not over." in html_report(current)


def test_report_cli_writes_the_week_and_refuses_a_bad_period(built, tmp_path, monkeypatch, capsys):
    from eval_pipelines.cli import main

    project, _ = built
    monkeypatch.setenv("EVAL_PIPELINES_CONFIG", str(project.config_path))
    out = tmp_path / "out" / "report.html"
    assert main(["--config", str(project.config_path), "report", "--period", "2026-W41", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "**AI quality report 2026-W41**" in printed and f"written to {out}" in printed
    page = out.read_text(encoding="utf-8")
    assert "AI quality report, 2026-W41" in page and "<svg" in page
    # latest: the week of the newest kpi_daily day (Tuesday 2026-10-06), into the lake where the asset writes.
    assert main(["--config", str(project.config_path), "report"]) == 0
    printed = capsys.readouterr().out
    assert "report 2026-W41 (partial) written to" in printed
    assert printed.strip().endswith(f"quality_report/{WEEK.label}.html")
    assert main(["--config", str(project.config_path), "report", "--period", "2026-W60"]) == 2
    assert "2026 has no ISO week 60" in capsys.readouterr().err


def test_the_weekly_cron_requests_the_week_that_ended_and_the_one_that_starts():
    defs = dg.Definitions(assets=[quality_report], resources={"project": dg.ResourceDefinition.none_resource(),
                                                              "warehouse": dg.ResourceDefinition.none_resource()})
    monday = datetime(2026, 11, 30, 5, 50, tzinfo=UTC)  # ten minutes before the Monday 06:00 UTC tick
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=monday)
        assert result.get_requested_partitions(quality_report.key) == set()
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=monday + timedelta(minutes=15))
        assert result.get_requested_partitions(quality_report.key) == {"2026-11-23", "2026-11-30"}
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                                   evaluation_time=monday + timedelta(hours=2))
        assert result.get_requested_partitions(quality_report.key) == set()  # once per tick


def test_the_same_report_on_postgresql(built, postgres_database):
    """The report's SQL is portable: the fixture warehouse copied table by table (through the real table
    definitions) into a real PostgreSQL database gives the same figures, intervals and sections."""
    from eval_pipelines.warehouse.core import metadata

    project, _ = built
    source, target = sa.create_engine(project.warehouse_url), create_warehouse_engine(postgres_database)
    try:
        present = set(sa.inspect(source).get_table_names())
        tables = [t for t in metadata.sorted_tables if t.name in present]
        metadata.create_all(target, tables=tables)
        with source.connect() as reading, target.begin() as writing:
            for table in tables:
                rows = [dict(r) for r in reading.execute(sa.select(table)).mappings()]
                if rows:
                    writing.execute(sa.insert(table), rows)
        on_sqlite = _report(project)
        on_postgres = build_report(target, WEEK, project.settings.impact.ci_level,
                                   project.settings.impact.low_volume_below, now=NOW)
    finally:
        source.dispose()
        target.dispose()
    assert {k: s.available for k, s in on_postgres.sections.items()} == \
        {k: s.available for k, s in on_sqlite.sections.items()}
    expected, got = on_sqlite.figures(), on_postgres.figures()
    assert set(got) == set(expected) and len(expected) > 30
    for key, figure in expected.items():
        for attribute in ("value", "ci_low", "ci_high"):
            assert _close(getattr(got[key], attribute), getattr(figure, attribute)), (key, attribute)
        assert got[key].note == figure.note, key


def test_a_warehouse_with_only_the_kpis_gives_a_report_that_says_what_is_missing(built, tmp_path):
    project, _ = built
    copy = tmp_path / "kpis_only.db"
    shutil.copy(Path(project.warehouse_url.removeprefix("sqlite:///")), copy)
    engine = sa.create_engine(f"sqlite:///{copy}")
    with engine.begin() as connection:
        for table in ("release_gates", "scored_runs", "drift_results", "edge_cases", "edge_case_days"):
            connection.execute(sa.text(f"DROP TABLE {table}"))
    engine.dispose()
    report = _report(project, f"sqlite:///{copy}")
    reasons = {key: s.reason for key, s in report.sections.items() if not s.available}
    assert set(reasons) == {"review", "gates", "drift", "failures", "estimates"}
    assert "no release_gates table" in reasons["gates"] and "no drift_results table" in reasons["drift"]
    assert "no edge_cases table" in reasons["failures"]
    assert report.section("value").figure("week_cases").value == _report(project).section("value").figure(
        "week_cases").value
    page = html_report(report)
    assert all(html.escape(reason) in page for reason in reasons.values())


def test_a_warehouse_without_kpis_is_a_clear_error(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(LookupError, match="no kpi_daily table: materialise kpi_daily first"):
        build_report(engine, WEEK)
    engine.dispose()
