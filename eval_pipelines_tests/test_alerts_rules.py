"""Alert rules as pure functions: the evidence rule for rates, min_cases, for_days, relative change, episodes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from eval_pipelines.alerts.rules import evaluate, evidence_holds, finding_id, metric_figures
from eval_pipelines.alerts.settings import AlertsConfig, RuleConfig
from eval_pipelines.alerts.state import plan

DAY0 = date(2026, 3, 1)
CHANNELS = [{"name": "ops", "kind": "webhook", "url_env": "ALERT_URL"}]


def config(*rules: dict, **extra) -> AlertsConfig:
    return AlertsConfig.model_validate({"channels": CHANNELS, "rules": [{"channels": ["ops"], **r} for r in rules],
                                        **extra})


def kpi_rows(days: list[tuple[int, int, int]], segments: int = 1) -> pd.DataFrame:
    """kpi_daily-like rows: per day (timeout_cases, cases, accepted_of_reviewed), split evenly over segments."""
    rows = []
    for offset, (timeouts, cases, accepted) in enumerate(days):
        for s in range(segments):
            rows.append({"kpi_date": DAY0 + timedelta(days=offset), "system": "sys", "model_version": "v1",
                         "segment": f"seg{s}", "cases": cases // segments, "timeout_cases": timeouts // segments,
                         "reviewed_cases": cases // segments, "accepted_cases": accepted // segments})
    return pd.DataFrame(rows)


TIMEOUTS = {"name": "timeouts", "on": "kpi", "metric": "timeout_rate", "op": "gt", "threshold": 0.02}


def test_pooled_rates_get_the_wilson_interval_of_summed_counts_as_statsmodels():
    rows = kpi_rows([(30, 1000, 500), (7, 200, 100)], segments=2)
    rule = config({**TIMEOUTS}).rules[0]
    figures = metric_figures(rows, rule, "kpi_date", 0.95)
    assert list(figures["cases"]) == [1000, 200]  # two segments pooled per system and day
    for row, (k, n) in zip(figures.itertuples(), [(30, 1000), (6, 200)], strict=True):
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert row.value == pytest.approx(k / n)
        assert (row.ci_low, row.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_a_rate_fires_on_its_interval_not_its_point_estimate():
    # 3 % of 100 cases: the point is above 2 %, the Wilson interval [1.0 %, 8.5 %] is not: no finding.
    # 3 % of 10,000 cases: the interval [2.7 %, 3.4 %] lies above 2 %: a finding.
    weak = evaluate(config(TIMEOUTS), {"kpi_daily": kpi_rows([(3, 100, 50)])})
    assert weak.findings == []
    strong = evaluate(config(TIMEOUTS), {"kpi_daily": kpi_rows([(300, 10_000, 5000)])})
    (finding,) = strong.findings
    assert finding.state == "firing" and finding.subject == "sys" and finding.partition_key == DAY0.isoformat()
    assert finding.ci_low > 0.02 and finding.value == pytest.approx(0.03)
    assert "timeout_rate 3.0 % (CI 2.7 % – 3.4 %) vs threshold > 2.0 % over 10,000 cases" in finding.detail


def test_too_few_cases_give_no_verdict_even_when_the_whole_interval_crosses():
    # 20 of 40 cases timed out: 50 %, Wilson CI [35 %, 65 %] entirely above 2 %, but 40 < min_cases 200.
    rows = kpi_rows([(20, 40, 20)])
    assert evaluate(config({**TIMEOUTS, "min_cases": 200}), {"kpi_daily": rows}).findings == []
    assert len(evaluate(config({**TIMEOUTS, "min_cases": 40}), {"kpi_daily": rows}).findings) == 1
    holds = evidence_holds("gt", np.array([0.5]), np.array([0.35]), np.array([0.65]), np.array([0.02]),
                           np.array([40.0]), 200)
    assert holds.tolist() == [None]


def test_a_day_with_too_few_cases_neither_resolves_nor_continues_an_episode():
    rule = {**TIMEOUTS, "min_cases": 500}
    rows = kpi_rows([(300, 10_000, 0), (20, 40, 0), (300, 10_000, 0), (10, 10_000, 0)])
    (finding,) = evaluate(config(rule), {"kpi_daily": rows}).findings
    # fired on day 0, the thin day 1 left it open, day 2 held again, day 3 (0.1 %, n=10,000) resolved it
    assert (finding.started, finding.last, finding.resolved_on) == (
        DAY0.isoformat(), (DAY0 + timedelta(days=2)).isoformat(), (DAY0 + timedelta(days=3)).isoformat())


def test_for_days_needs_consecutive_days_and_fires_on_the_last_of_them():
    rule = {"name": "acceptance_drop", "on": "kpi", "metric": "acceptance_rate", "op": "lt", "threshold": 0.5,
            "min_cases": 200, "for_days": 2}
    one_day = kpi_rows([(0, 1000, 800), (0, 1000, 400), (0, 1000, 800), (0, 1000, 400)])
    assert evaluate(config(rule), {"kpi_daily": one_day}).findings == []
    two_days = kpi_rows([(0, 1000, 800), (0, 1000, 400), (0, 1000, 400), (0, 1000, 400)])
    (finding,) = evaluate(config(rule), {"kpi_daily": two_days}).findings
    assert finding.partition_key == (DAY0 + timedelta(days=2)).isoformat() and finding.days == 3
    gap = two_days[two_days["kpi_date"] != DAY0 + timedelta(days=2)]  # a missing day breaks the run
    assert evaluate(config(rule), {"kpi_daily": gap}).findings == []


def test_relative_change_compares_with_the_pooled_trailing_window():
    rule = {"name": "spike", "on": "kpi", "metric": "timeout_rate", "op": "gt",
            "relative_change": {"by": 0.5, "trailing_days": 3, "min_days": 3}}
    # trailing 1 % on 3 x 10,000 cases; threshold 1.5 %. Day 3: 1.4 % (no), day 4: 2.5 % (CI low 2.2 %: yes)
    rows = kpi_rows([(100, 10_000, 0)] * 3 + [(140, 10_000, 0), (250, 10_000, 0)])
    (finding,) = evaluate(config(rule), {"kpi_daily": rows}).findings
    assert finding.partition_key == (DAY0 + timedelta(days=4)).isoformat()
    assert finding.threshold == pytest.approx((100 * 2 + 140) / 30_000 * 1.5)  # window of day 4: days 1..3
    # without min_days of history there is no threshold, hence no verdict
    assert evaluate(config(rule), {"kpi_daily": rows[rows["kpi_date"] >= DAY0 + timedelta(days=3)]}).findings == []


def test_row_level_rates_use_the_rows_stored_interval():
    rows = kpi_rows([(0, 1000, 0)])
    rows["automation_bias_rate"] = 0.30
    rows["automation_bias_rate_ci_low"] = 0.05  # a wide design-based interval: no evidence above 0.2
    rows["automation_bias_rate_ci_high"] = 0.55
    rows["reviewed_cases_audited"] = 200
    rows["accepted_cases_audited"] = 120  # the rate's denominator: audited accepted cases
    rule = {"name": "bias", "on": "automation_bias", "op": "gt", "threshold": 0.2, "min_cases": 100}
    assert evaluate(config(rule), {"kpi_daily": rows}).findings == []
    rows["automation_bias_rate_ci_low"] = 0.25
    (finding,) = evaluate(config(rule), {"kpi_daily": rows}).findings
    assert finding.subject == "sys/v1/seg0" and finding.cases == 120 and finding.ci_low == 0.25
    missing = evaluate(config(rule), {"kpi_daily": kpi_rows([(0, 1000, 0)])})
    assert missing.findings == [] and "no column automation_bias_rate" in missing.notes[0]


def reviewed_rows(audited: int, accepted_audited: int, overridden_audited: int) -> pd.DataFrame:
    """One kpi_daily row whose three reviewed rates all have intervals entirely on the firing side."""
    rows = kpi_rows([(0, 1000, 0)])
    rows["reviewed_cases_audited"] = audited
    rows["accepted_cases_audited"] = accepted_audited
    rows["overridden_cases_audited"] = overridden_audited
    for metric, value, low, high in (("reviewed_accuracy", 0.60, 0.55, 0.65),
                                     ("automation_bias_rate", 0.30, 0.25, 0.35),
                                     ("override_error_rate", 0.50, 0.40, 0.60)):
        rows[metric], rows[f"{metric}_ci_low"], rows[f"{metric}_ci_high"] = value, low, high
    return rows


REVIEWED_RULES = [
    {"name": "accuracy", "on": "kpi", "metric": "reviewed_accuracy", "op": "lt", "threshold": 0.7, "min_cases": 100,
     "by": ["system", "model_version", "segment"]},
    {"name": "bias", "on": "automation_bias", "op": "gt", "threshold": 0.2, "min_cases": 100},
    {"name": "override_errors", "on": "kpi", "metric": "override_error_rate", "op": "gt", "threshold": 0.3,
     "min_cases": 100, "by": ["system", "model_version", "segment"]},
]


def test_min_cases_counts_the_audited_verdicts_of_each_reviewed_rates_denominator():
    # 300 verdicts in all, but only 40 on accepted and 60 on overridden cases: the automation-bias rate (a rate among
    # accepted cases) and the override error rate (among overridden ones) rest on 40 and 60, below min_cases 100,
    # although every interval lies beyond its threshold. Reviewed accuracy rests on all 300 and fires.
    thin = evaluate(config(*REVIEWED_RULES), {"kpi_daily": reviewed_rows(300, 40, 60)})
    assert [(f.rule, f.cases) for f in thin.findings] == [("accuracy", 300)]
    thick = evaluate(config(*REVIEWED_RULES), {"kpi_daily": reviewed_rows(300, 150, 150)})
    assert sorted((f.rule, f.cases) for f in thick.findings) == [("accuracy", 300), ("bias", 150),
                                                                  ("override_errors", 150)]


def test_a_rule_whose_evidence_count_is_missing_is_not_evaluated_rather_than_passing_min_cases():
    rows = reviewed_rows(300, 150, 150).drop(columns=["accepted_cases_audited"])
    evaluation = evaluate(config(REVIEWED_RULES[1]), {"kpi_daily": rows})
    assert evaluation.findings == []
    assert "no column accepted_cases_audited (the cases behind automation_bias_rate" in evaluation.notes[0]
    # without min_cases the count is not needed
    assert len(evaluate(config({**REVIEWED_RULES[1], "min_cases": 0}), {"kpi_daily": rows}).findings) == 1


def test_the_reviewed_rates_denominators_are_the_kpi_domains():
    from eval_pipelines.alerts.settings import REVIEW_KPI_RATES
    from eval_pipelines.kpis.reviewed import AUDITED_COUNT

    assert REVIEW_KPI_RATES == AUDITED_COUNT


def test_a_ratio_of_amounts_counts_the_rows_cases_not_its_denominators_money():
    # roi = net value / total cost: 40 cases that cost 5,000 are 40 cases of evidence, not 5,000.
    rows = kpi_rows([(0, 40, 0)])
    rows["net_value_amount"], rows["total_cost_amount"] = 1000.0, 5000.0  # roi 0.2
    rule = {"name": "roi", "on": "kpi", "metric": "roi", "op": "lt", "threshold": 1.0, "min_cases": 100}
    assert evaluate(config(rule), {"kpi_daily": rows}).findings == []
    rows["cases"] = 400
    (finding,) = evaluate(config(rule), {"kpi_daily": rows}).findings
    assert finding.cases == 400 and finding.value == pytest.approx(0.2)


def estimate_rows(realized_cases: int, calibration_cases: float = 600) -> pd.DataFrame:
    """performance_estimates: 900 cases estimated at 80 % from ``calibration_cases`` trusted labels, realized 40 % on
    ``realized_cases`` trusted labels."""
    return pd.DataFrame([{"partition_date": DAY0, "system": "sys", "model_version": "v1", "segment": "all",
                          "cases": 900, "estimated_accuracy": 0.80, "estimated_accuracy_ci_low": 0.78,
                          "estimated_accuracy_ci_high": 0.82, "calibration_cases": calibration_cases,
                          "realized_cases": realized_cases,
                          "realized_accuracy": 0.40, "realized_accuracy_ci_low": 0.20,
                          "realized_accuracy_ci_high": 0.60, "estimation_error": 0.40,
                          "estimation_error_ci_low": 0.20, "estimation_error_ci_high": 0.60}])


ESTIMATE_RULES = [
    {"name": "estimate_low", "on": "estimate", "op": "lt", "threshold": 0.9, "min_cases": 50},
    {"name": "realized_low", "on": "estimate", "metric": "realized_accuracy", "op": "lt", "threshold": 0.8,
     "min_cases": 50},
    {"name": "gap", "on": "estimate", "metric": "estimation_error", "op": "gt", "threshold": 0.1, "min_cases": 50},
]


def test_realized_figures_of_an_estimate_count_the_days_trusted_labels_not_its_population():
    # 12 trusted labels behind the realized accuracy and the gap: below min_cases 50, no verdict, although the
    # day has 900 cases; the label-free estimate itself rests on its 600 calibration labels and fires.
    thin = evaluate(config(*ESTIMATE_RULES), {"performance_estimates": estimate_rows(12)})
    assert [(f.rule, f.cases) for f in thin.findings] == [("estimate_low", 600)]
    thick = evaluate(config(*ESTIMATE_RULES), {"performance_estimates": estimate_rows(80)})
    assert [(f.rule, f.cases) for f in thick.findings] == [("estimate_low", 600), ("realized_low", 80),
                                                           ("gap", 80)]


def test_the_label_free_estimate_counts_its_calibration_labels_and_an_unknown_count_is_no_evidence():
    # 30 calibration labels behind an estimate of a 900-case day: below min_cases 50, no verdict (the old rule
    # counted the 900 unlabeled cases); a NULL count (a row from before the column existed) is no evidence either.
    few = evaluate(config(ESTIMATE_RULES[0]), {"performance_estimates": estimate_rows(80, calibration_cases=30)})
    assert few.findings == []
    unknown = evaluate(config(ESTIMATE_RULES[0]),
                       {"performance_estimates": estimate_rows(80, calibration_cases=float("nan"))})
    assert unknown.findings == []
    no_minimum = {**ESTIMATE_RULES[0], "min_cases": 0}
    assert [f.rule for f in evaluate(config(no_minimum), {
        "performance_estimates": estimate_rows(80, calibration_cases=float("nan"))}).findings] == ["estimate_low"]


def drift_rows(days: dict[int, dict[str, str]]) -> pd.DataFrame:
    rows = []
    for offset, columns in days.items():
        for column in ("language", "product", "latency_ms"):
            severity = columns.get(column, "none")
            rows.append({"date": DAY0 + timedelta(days=offset), "column": column, "kind": "categorical",
                         "severity": severity, "drifted": severity != "none", "effect_size": 0.2,
                         "effect_ci_low": 0.15, "effect_ci_high": 0.25, "threshold": 0.02, "p_adjusted": 1e-9,
                         "reason": f"{severity} drift"})
    return pd.DataFrame(rows)


def test_drift_episodes_per_column_with_severity_filter_and_exclusions():
    frame = drift_rows({0: {}, 1: {"language": "major", "product": "minor"}, 2: {"language": "major"}, 3: {}})
    major = evaluate(config({"name": "d", "on": "drift", "severity": "major"}), {"drift_results": frame})
    (finding,) = major.findings
    assert (finding.subject, finding.started, finding.resolved_on, finding.days) == (
        "language (categorical)", "2026-03-02", "2026-03-04", 2)
    minor = evaluate(config({"name": "d", "on": "drift", "severity": "minor"}), {"drift_results": frame})
    assert {f.subject for f in minor.findings} == {"language (categorical)", "product (categorical)"}
    excluded = evaluate(config({"name": "d", "on": "drift", "severity": "minor", "exclude_columns": ["language"]}),
                        {"drift_results": frame})
    assert [f.subject for f in excluded.findings] == ["product (categorical)"]


def test_identity_is_stable_and_a_truncated_episode_adopts_the_open_finding():
    frame = drift_rows({d: {"language": "major"} for d in range(5)})
    rule = config({"name": "d", "on": "drift"})
    full = evaluate(rule, {"drift_results": frame}).findings
    again = evaluate(rule, {"drift_results": frame.sample(frac=1, random_state=1)}).findings
    assert [f.id for f in full] == [f.id for f in again]
    assert full[0].id == finding_id("d", "2026-03-01", "language (categorical)", "2026-03-01")
    # Later ticks load a window starting on day 3: the episode looks as if it started there ...
    window = evaluate(rule, {"drift_results": frame[frame["date"] >= DAY0 + timedelta(days=3)]},
                      first_day=DAY0 + timedelta(days=3)).findings
    assert window[0].truncated and window[0].started == "2026-03-04"
    # ... and takes the identity of the finding already announced, so nothing new is planned.
    state = pd.DataFrame([{"id": 1, "finding_id": full[0].id, "rule": "d", "partition_key": "2026-03-01",
                           "subject": "language (categorical)", "started": "2026-03-01", "channel": "ops",
                           "state": "firing", "status": "sent", "attempts": 1}])
    planned, too_old = plan(window, state, rule, DAY0 + timedelta(days=4))
    assert planned == [] and too_old == 0


def test_old_findings_are_not_announced_but_recent_ones_are():
    frame = drift_rows({0: {"language": "major"}, 1: {}, 30: {}, 31: {"product": "major"}})
    rule = config({"name": "d", "on": "drift"}, max_age_days=14)
    evaluation = evaluate(rule, {"drift_results": frame})
    empty = pd.DataFrame(columns=["id", "finding_id", "rule", "partition_key", "subject", "started", "channel",
                                  "state", "status", "attempts"])
    planned, too_old = plan(evaluation.findings, empty, rule, evaluation.newest_day)
    assert too_old == 1 and [p.findings[0].subject for p in planned] == ["product (categorical)"]


def gate_rows(outcomes: list[bool]) -> pd.DataFrame:
    rows = []
    for index, passed in enumerate(outcomes):
        for position, ok in enumerate([True, passed]):
            rows.append({"run_id": f"run{index}", "position": position, "candidate": "naive", "context": "default",
                         "created_at": datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=index),
                         "eval_set_version": "v1", "criterion": f"criterion {position}", "value": 0.5, "op": "≥",
                         "threshold": 0.6, "passed": ok, "verdict": "pass" if ok else "fail", "detail": "",
                         "gate_passed": passed})
    return pd.DataFrame(rows)


def test_release_gate_episodes_follow_the_runs_of_a_candidate():
    rule = config({"name": "gate", "on": "release_gate"})
    (finding,) = evaluate(rule, {"release_gates": gate_rows([True, False, False])}).findings
    assert (finding.partition_key, finding.started, finding.state) == ("naive", "run1", "firing")
    assert "criterion 1: 0.5 (needs ≥ 0.6, fail)" in finding.detail
    (resolved,) = evaluate(rule, {"release_gates": gate_rows([True, False, False, True])}).findings
    assert resolved.id == finding.id and resolved.resolved_on == "run3"
    only_other = config({"name": "gate", "on": "release_gate", "candidates": ["keyword_rules"]})
    assert evaluate(only_other, {"release_gates": gate_rows([False])}).findings == []


def test_checks_fire_on_failed_blocking_evaluations_per_partition():
    rows = [{"asset_key": "production_logs", "check_name": "volume_vs_trailing_days", "partition_key": day,
             "passed": passed, "blocking": True, "run_id": f"r{i}", "storage_id": i, "timestamp": 1.77e9 + i,
             "description": "12 rows, 5 % of the trailing median"}
            for i, (day, passed) in enumerate([("2026-03-01", True), ("2026-03-02", False), ("2026-03-03", True),
                                               ("2026-03-02", True)])]
    rows.append({**rows[1], "check_name": "no_duplicates_across_days", "blocking": False, "storage_id": 9})
    (finding,) = evaluate(config({"name": "dq", "on": "checks"}), {"checks": pd.DataFrame(rows)}).findings
    assert finding.subject == "production_logs:volume_vs_trailing_days[2026-03-02]"
    assert (finding.partition_key, finding.started, finding.resolved_on) == ("2026-03-02", "r1", "r3")
    none = evaluate(config({"name": "dq", "on": "checks", "checks": ["quarantine_rate"]}),
                    {"checks": pd.DataFrame(rows)})
    assert none.findings == []


def test_rule_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="exactly one of threshold or relative_change"):
        RuleConfig.model_validate({**TIMEOUTS, "relative_change": {"by": 0.2}, "channels": ["ops"]})
    with pytest.raises(ValueError, match="cannot be pooled"):
        RuleConfig.model_validate({"name": "p", "on": "kpi", "metric": "latency_ms_p95", "op": "gt",
                                   "threshold": 2000, "channels": ["ops"]})
    ok = RuleConfig.model_validate({"name": "p", "on": "kpi", "metric": "latency_ms_p95", "op": "gt",
                                    "threshold": 2000, "by": ["system", "model_version", "segment"],
                                    "channels": ["ops"]})
    assert ok.keys() == ["system", "model_version", "segment"]
    with pytest.raises(ValueError, match="takes no"):
        RuleConfig.model_validate({"name": "d", "on": "drift", "threshold": 1, "channels": ["ops"]})
