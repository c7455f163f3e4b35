"""The KPI formulas against a hand-computed fixture, and the statistics against scipy, numpy and closed forms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval_pipelines.kpis.definitions import BY_METRIC, undocumented_metrics
from eval_pipelines.kpis.metrics import (
    COUNT_COLUMNS,
    KEY_COLUMNS,
    METRIC_COLUMNS,
    PERCENTILE_COLUMNS,
    compute_kpis,
    daily_kpis,
    grouped_quantiles,
    headline_table,
    render_markdown,
    wilson_interval,
)
from eval_pipelines.kpis.settings import ImpactConfig
from eval_pipelines.warehouse.core import insert_records

N = None
NAN = float("nan")
Z95 = 1.959963984540054  # standard normal 97.5 % quantile

# Impact model of the fixture. System "s": EUR at 0.5 EUR per USD, 36 EUR/h = 0.01 EUR per second.
IMPACT = ImpactConfig.model_validate({
    "ci_level": 0.95,
    "low_volume_below": 2,  # group C (one case) is low volume; A and B keep their ROI
    "systems": {
        "default": {"labour_cost_per_hour": 60.0, "manual_baseline_seconds": 120.0,
                    "wasted_seconds_per_override": 0.0, "wasted_seconds_per_edit": 0.0,
                    "wasted_seconds_per_reject": 0.0, "latency_slo_ms": 500.0},
        "s": {"currency": "EUR", "usd_to_currency": 0.5, "labour_cost_per_hour": 36.0,
              "manual_baseline_seconds": 100.0, "wasted_seconds_per_override": 60.0,
              "wasted_seconds_per_edit": 30.0, "wasted_seconds_per_reject": 90.0,
              "cost_per_compliance_flag": 200.0, "cost_per_complaint": 20.0, "cost_per_escalation": 50.0,
              "value_per_correct_automated_decision": 2.0, "latency_slo_ms": 1000.0,
              "platform_cost_per_day": 1.2},
    },
})

COLUMNS = ("system", "model_version", "segment", "user_action", "status", "latency_ms", "cost_usd",
           "decision_seconds", "is_labeled", "ai_correct", "correctness", "compliance_flag", "complaint",
           "escalation")
ROWS = [
    # group A = (s, v1, seg1): ten cases
    ("s", "v1", "seg1", "accepted", "ok", 100.0, 0.02, 10.0, True, True, "correct", False, False, False),   # 1
    ("s", "v1", "seg1", "accepted", "ok", 300.0, 0.02, 20.0, True, True, "correct", N, True, N),             # 2
    ("s", "v1", "seg1", "edited", "ok", 500.0, 0.02, 40.0, True, False, "partly_wrong", True, N, N),         # 3
    ("s", "v1", "seg1", "overridden", "ok", 2000.0, 0.02, 60.0, True, False, "wrong", N, N, True),           # 4
    ("s", "v1", "seg1", "rejected", "ok", 900.0, 0.02, 30.0, True, False, "wrong", True, N, N),              # 5
    ("s", "v1", "seg1", "ignored", "ok", 700.0, 0.02, NAN, False, N, "unknown", N, True, N),                 # 6
    ("s", "v1", "seg1", N, "ok", 200.0, 0.02, NAN, True, True, "correct", N, N, N),                          # 7
    ("s", "v1", "seg1", N, "error", 50.0, 0.0, NAN, False, N, "unknown", N, N, N),                           # 8
    ("s", "v1", "seg1", N, "timeout", 30000.0, 0.02, NAN, False, N, "unknown", N, N, N),                     # 9
    ("s", "v1", "seg1", "accepted", "ok", 400.0, 0.02, 50.0, True, False, "wrong", True, N, N),              # 10
    # group B = (s, v2, seg1)
    ("s", "v2", "seg1", "overridden", "timeout", 30000.0, 0.04, 100.0, True, False, "wrong", N, N, N),       # 11
    ("s", "v2", "seg1", "accepted", "ok", 600.0, 0.04, 5.0, True, True, "correct", N, N, N),                 # 12
    # group C = (t, v1, seg2): system t is not configured, so `default` applies (USD)
    ("t", "v1", "seg2", "accepted", "ok", 100.0, 0.01, 12.0, True, True, "correct", N, N, N),                # 13
]


def fixture_cases() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=list(COLUMNS))
    for column in ("ai_correct", "compliance_flag", "complaint", "escalation"):
        frame[column] = frame[column].astype("boolean")
    frame["is_labeled"] = frame["is_labeled"].astype(bool)
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # order must not matter


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Closed form, written out independently of the implementation."""
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


# Hand-computed, case by case (see the numbered rows above). Times: group A decisions 10+20+40+60+30+50 = 210 s
# over 6 human-timed cases, plus case 7 automated with status ok = 7 timed decisions; credited (AI output used):
# accepted 1, 2, 10 and edited 3 (10+20+50+40 = 120 s) plus automated 7, not overridden 4 or rejected 5.
EXPECTED: dict[tuple[str, str, str], dict[str, float | str]] = {
    ("s", "v1", "seg1"): {
        "currency": "EUR", "cases": 10, "low_volume": False,
        "reviewed_cases": 7, "automated_cases": 3, "automation_rate": 0.3,
        "accepted_cases": 3, "edited_cases": 1, "overridden_cases": 1, "rejected_cases": 1, "ignored_cases": 1,
        "acceptance_rate": 3 / 7, "edit_rate": 1 / 7, "override_rate": 1 / 7, "reject_rate": 1 / 7,
        "ignore_rate": 1 / 7,
        # case 5 was rejected without a final output: a known error, labeled with a null label
        "labeled_cases": 7, "correct_cases": 3, "accuracy": 3 / 7,
        "accuracy_ci_low": wilson(3, 7)[0], "accuracy_ci_high": wilson(3, 7)[1],
        "timed_decisions": 7, "human_timed_decisions": 6, "credited_decisions": 5, "credited_human_decisions": 4,
        "decision_seconds_p50": 35.0, "decision_seconds_p90": 55.0,   # [10,20,30,40,50,60]: 2.5th and 4.5th index
        "decision_seconds_mean": 30.0,  # credited: accepted 1, 2, 10 and edited 3
        # the constant baseline is an assumption: no interval anywhere
        "baseline_control_decisions": 0, "assumed_baseline_decisions": 5,
        "baseline_seconds_ci_low": NAN, "baseline_seconds_ci_high": NAN, "hours_saved_ci_low": NAN,
        "hours_saved_ci_high": NAN, "hours_saved_variance": 0.0, "hours_saved_variance_df_term": 0.0,
        "labour_cost_per_hour": 36.0, "labour_value_saved_ci_low_amount": NAN,
        "labour_value_saved_ci_high_amount": NAN, "net_value_ci_low_amount": NAN, "net_value_ci_high_amount": NAN,
        "baseline_seconds_per_decision": 100.0, "decision_time_to_baseline_ratio": 0.3,
        "manual_baseline_hours": 500 / 3600, "review_hours": 120 / 3600, "hours_saved": 380 / 3600,
        "labour_value_saved_amount": 3.80, "ai_cost_usd": 0.18, "ai_cost_amount": 0.09,
        "ai_cost_per_decision_amount": 0.009, "review_cost_amount": 1.20,
        "platform_cost_amount": 1.0, "total_cost_amount": 0.09 + 1.20 + 1.0,  # 10 of system s's 12 cases × 1.2
        "compliance_flags": 3, "complaints": 2, "escalations": 1,
        "override_waste_cost_amount": 0.60, "edit_waste_cost_amount": 0.30, "reject_waste_cost_amount": 0.90,
        "compliance_cost_amount": 200.0,    # flags 3, 5, 10; 3 (edited) and 5 (rejected) caught: only 10 costs
        "complaint_cost_amount": 40.0, "escalation_cost_amount": 50.0, "error_cost_amount": 291.80,
        "risk_mitigated_cases": 2, "risk_mitigated_amount": 400.0,
        "correct_automated_decisions": 3, "correct_decision_value_amount": 6.0,   # cases 1, 2, 7
        "net_value_amount": 3.80 + 6.0 - 0.09 - 1.0 - 291.80, "roi": (3.80 + 6.0 - 0.09 - 1.0 - 291.80) / 2.29,
        "roi_over_inference_cost": (3.80 + 6.0 - 0.09 - 1.0 - 291.80) / 0.09,
        "error_cases": 1, "timeout_cases": 1, "error_rate": 0.1, "timeout_rate": 0.1,
        # sorted latency 50,100,200,300,400,500,700,900,2000,30000: index 4.5, 8.55, 8.91
        "latency_ms_p50": 450.0, "latency_ms_p95": 17400.0, "latency_ms_p99": 27480.0,
        "latency_slo_ms": 1000.0, "slo_met_cases": 7, "slo_attainment_rate": 0.7,
    },
    ("s", "v2", "seg1"): {
        "currency": "EUR", "cases": 2, "low_volume": False,
        "reviewed_cases": 2, "automated_cases": 0, "automation_rate": 0.0,
        "accepted_cases": 1, "edited_cases": 0, "overridden_cases": 1, "rejected_cases": 0, "ignored_cases": 0,
        "acceptance_rate": 0.5, "edit_rate": 0.0, "override_rate": 0.5, "reject_rate": 0.0, "ignore_rate": 0.0,
        "labeled_cases": 2, "correct_cases": 1, "accuracy": 0.5,
        "accuracy_ci_low": wilson(1, 2)[0], "accuracy_ci_high": wilson(1, 2)[1],
        "timed_decisions": 2, "human_timed_decisions": 2, "credited_decisions": 1, "credited_human_decisions": 1,
        "decision_seconds_p50": 52.5, "decision_seconds_p90": 90.5, "decision_seconds_mean": 5.0,
        # the constant baseline is an assumption: no interval anywhere
        "baseline_control_decisions": 0, "assumed_baseline_decisions": 1,
        "baseline_seconds_ci_low": NAN, "baseline_seconds_ci_high": NAN, "hours_saved_ci_low": NAN,
        "hours_saved_ci_high": NAN, "hours_saved_variance": 0.0, "hours_saved_variance_df_term": 0.0,
        "labour_cost_per_hour": 36.0, "labour_value_saved_ci_low_amount": NAN,
        "labour_value_saved_ci_high_amount": NAN, "net_value_ci_low_amount": NAN, "net_value_ci_high_amount": NAN,
        "baseline_seconds_per_decision": 100.0, "decision_time_to_baseline_ratio": 0.05,
        "manual_baseline_hours": 100 / 3600, "review_hours": 5 / 3600, "hours_saved": 95 / 3600,  # case 12 only
        "labour_value_saved_amount": 0.95, "ai_cost_usd": 0.08, "ai_cost_amount": 0.04,
        "ai_cost_per_decision_amount": 0.02, "review_cost_amount": 0.05,
        "platform_cost_amount": 0.2, "total_cost_amount": 0.04 + 0.05 + 0.2,  # 2 of 12 cases × 1.2
        "compliance_flags": 0, "complaints": 0, "escalations": 0,
        "override_waste_cost_amount": 0.60, "edit_waste_cost_amount": 0.0, "reject_waste_cost_amount": 0.0,
        "compliance_cost_amount": 0.0, "complaint_cost_amount": 0.0, "escalation_cost_amount": 0.0,
        "error_cost_amount": 0.60, "risk_mitigated_cases": 0, "risk_mitigated_amount": 0.0,
        "correct_automated_decisions": 1, "correct_decision_value_amount": 2.0,
        "net_value_amount": 2.31 - 0.2, "roi": 2.11 / 0.29, "roi_over_inference_cost": 2.11 / 0.04,
        "error_cases": 0, "timeout_cases": 1, "error_rate": 0.0, "timeout_rate": 0.5,
        "latency_ms_p50": 15300.0, "latency_ms_p95": 28530.0, "latency_ms_p99": 29706.0,
        "latency_slo_ms": 1000.0, "slo_met_cases": 1, "slo_attainment_rate": 0.5,
    },
    ("t", "v1", "seg2"): {
        "currency": "USD", "cases": 1, "low_volume": True,
        "reviewed_cases": 1, "automated_cases": 0, "automation_rate": 0.0,
        "accepted_cases": 1, "edited_cases": 0, "overridden_cases": 0, "rejected_cases": 0, "ignored_cases": 0,
        "acceptance_rate": 1.0, "edit_rate": 0.0, "override_rate": 0.0, "reject_rate": 0.0, "ignore_rate": 0.0,
        "labeled_cases": 1, "correct_cases": 1, "accuracy": 1.0,
        # 1/1: the Wilson interval is [z²/(2(1+z²))... ] -> [1/(1+z²), 1]
        "accuracy_ci_low": 1 / (1 + Z95 * Z95), "accuracy_ci_high": 1.0,
        "timed_decisions": 1, "human_timed_decisions": 1, "credited_decisions": 1, "credited_human_decisions": 1,
        "decision_seconds_p50": 12.0, "decision_seconds_p90": 12.0, "decision_seconds_mean": 12.0,
        # the constant baseline is an assumption: no interval anywhere
        "baseline_control_decisions": 0, "assumed_baseline_decisions": 1,
        "baseline_seconds_ci_low": NAN, "baseline_seconds_ci_high": NAN, "hours_saved_ci_low": NAN,
        "hours_saved_ci_high": NAN, "hours_saved_variance": 0.0, "hours_saved_variance_df_term": 0.0,
        "labour_cost_per_hour": 60.0, "labour_value_saved_ci_low_amount": NAN,
        "labour_value_saved_ci_high_amount": NAN, "net_value_ci_low_amount": NAN, "net_value_ci_high_amount": NAN,
        "baseline_seconds_per_decision": 120.0, "decision_time_to_baseline_ratio": 0.1,
        "manual_baseline_hours": 120 / 3600, "review_hours": 12 / 3600, "hours_saved": 0.03,
        "labour_value_saved_amount": 1.8, "ai_cost_usd": 0.01, "ai_cost_amount": 0.01,
        "ai_cost_per_decision_amount": 0.01, "review_cost_amount": 0.2,
        "platform_cost_amount": 0.0, "total_cost_amount": 0.21,  # default: no platform cost configured
        "compliance_flags": 0, "complaints": 0, "escalations": 0,
        "override_waste_cost_amount": 0.0, "edit_waste_cost_amount": 0.0, "reject_waste_cost_amount": 0.0,
        "compliance_cost_amount": 0.0, "complaint_cost_amount": 0.0, "escalation_cost_amount": 0.0,
        "error_cost_amount": 0.0, "risk_mitigated_cases": 0, "risk_mitigated_amount": 0.0,
        "correct_automated_decisions": 1, "correct_decision_value_amount": 0.0,   # default: no value configured
        # one case: below low_volume_below = 2, so no ROI (it would read 1.79 / 0.21 and 179.0)
        "net_value_amount": 1.79, "roi": NAN, "roi_over_inference_cost": NAN,
        "error_cases": 0, "timeout_cases": 0, "error_rate": 0.0, "timeout_rate": 0.0,
        "latency_ms_p50": 100.0, "latency_ms_p95": 100.0, "latency_ms_p99": 100.0,
        "latency_slo_ms": 500.0, "slo_met_cases": 1, "slo_attainment_rate": 1.0,
    },
}

# Without an audit (no review cells) the reviewed columns are not available: counts 0, estimates and the silent
# error cost null, and so the net value after silent errors (cost_per_silent_error is not configured: 0).
NO_AUDIT = {"reviewed_population_cases": 0, "reviewed_cases_audited": 0, "accepted_cases_audited": 0,
            "overridden_cases_audited": 0, "cost_per_silent_error": 0.0, "silent_error_cases": NAN,
            **{f"{name}{suffix}": NAN for name in ("reviewed_accuracy", "automation_bias_rate",
                                                   "override_error_rate", "silent_error_cost")
               for suffix in ("", "_ci_low", "_ci_high")},
            **{f"net_value_after_silent_errors{suffix}_amount": NAN for suffix in ("", "_ci_low", "_ci_high")}}
# Label systems only: no draft compared, the free-text means null.
NO_TEXT = {"edit_compared_cases": 0, "retained_compared_cases": 0, "edit_similarity_sum": 0.0,
           "retained_share_sum": 0.0, "edit_similarity_mean": NAN, "retained_share_mean": NAN}
for _expected in EXPECTED.values():
    _expected.update(NO_AUDIT)
    _expected.update(NO_TEXT)


def test_expected_covers_every_metric():
    for expected in EXPECTED.values():
        assert set(expected) == {"currency", *METRIC_COLUMNS}


@pytest.mark.parametrize("key", list(EXPECTED), ids=["/".join(k) for k in EXPECTED])
def test_every_kpi_formula_matches_the_hand_computed_fixture(key):
    frame = compute_kpis(fixture_cases(), IMPACT)
    assert list(frame.columns) == [*KEY_COLUMNS, "currency", *METRIC_COLUMNS]
    assert [tuple(k) for k in frame[list(KEY_COLUMNS)].itertuples(index=False)] == sorted(EXPECTED)
    row = frame.set_index(list(KEY_COLUMNS)).loc[key]
    wrong = {}
    for column, expected in EXPECTED[key].items():
        actual = row[column]
        if column in COUNT_COLUMNS:
            ok = int(actual) == expected and frame[column].dtype == np.int64
        elif isinstance(expected, str | bool):
            ok = actual == expected
        elif math.isnan(expected):
            ok = math.isnan(actual)
        else:
            ok = math.isclose(actual, expected, rel_tol=1e-7, abs_tol=1e-9)
        if not ok:
            wrong[column] = (actual, expected)
    assert not wrong, wrong


def test_money_identities_hold():
    frame = compute_kpis(fixture_cases(), IMPACT)
    rate = np.array([36.0, 36.0, 60.0])
    np.testing.assert_allclose(frame["labour_value_saved_amount"] + frame["review_cost_amount"],
                               frame["manual_baseline_hours"] * rate)
    np.testing.assert_allclose(
        frame["net_value_amount"],
        frame["labour_value_saved_amount"] + frame["correct_decision_value_amount"] - frame["ai_cost_amount"]
        - frame["platform_cost_amount"] - frame["error_cost_amount"])
    np.testing.assert_allclose(frame["total_cost_amount"],
                               frame["ai_cost_amount"] + frame["review_cost_amount"] + frame["platform_cost_amount"])
    # value created (baseline labour + correct decisions) - full cost - errors = net value, so ROI is on full cost
    np.testing.assert_allclose(
        frame["net_value_amount"],
        frame["manual_baseline_hours"] * rate + frame["correct_decision_value_amount"] - frame["total_cost_amount"]
        - frame["error_cost_amount"])
    # the platform cost of a system's day is shared out exactly among its rows
    assert frame.groupby("system")["platform_cost_amount"].sum().to_dict() == pytest.approx({"s": 1.2, "t": 0.0})


def test_undefined_ratios_are_nan_not_zero():
    cases = fixture_cases()
    automated_error = cases[(cases["user_action"].isna()) & (cases["status"] == "error")]
    frame = compute_kpis(automated_error, IMPACT)
    row = frame.iloc[0]
    assert row["cases"] == 1 and row["reviewed_cases"] == 0 and row["labeled_cases"] == 0
    for column in ("acceptance_rate", "override_rate", "accuracy", "accuracy_ci_low", "decision_seconds_p50",
                   "roi_over_inference_cost", "decision_time_to_baseline_ratio"):
        assert math.isnan(row[column]), column
    assert row["error_rate"] == 1.0 and row["ai_cost_amount"] == 0.0
    records = insert_records(daily_kpis(automated_error, IMPACT, date(2026, 3, 2)))
    assert records[0]["accuracy"] is None and records[0]["roi_over_inference_cost"] is None
    assert records[0]["cases"] == 1
    assert type(records[0]["cases"]) is int and records[0]["kpi_date"] == date(2026, 3, 2)


def test_empty_day_gives_an_empty_frame_with_the_schema():
    frame = daily_kpis(fixture_cases().iloc[:0], IMPACT, date(2026, 3, 2))
    assert frame.empty and list(frame.columns) == ["kpi_date", *KEY_COLUMNS, "currency", *METRIC_COLUMNS]
    assert render_markdown(headline_table(frame)) == "_no rows_"


def test_labeled_cases_from_derive_labels_are_accepted_as_input():
    """The real upstream frame (pandas str dtype, nullable booleans) goes through unchanged."""
    from eval_pipelines.demo.generator import generate_day_frame
    from eval_pipelines.labeling.labels import derive_labels

    cases = derive_labels(generate_day_frame(date(2026, 3, 2), 2000, seed=5), 0.5, 120.0)
    frame = compute_kpis(cases, ImpactConfig())
    assert frame["cases"].sum() == len(cases)
    assert frame["correct_cases"].sum() == int(cases["ai_correct"].sum())
    assert frame["labeled_cases"].sum() == int(cases["is_labeled"].sum())
    assert frame["overridden_cases"].sum() == int(cases["tag_override"].sum())
    assert frame["compliance_flags"].sum() == int(cases["tag_compliance"].sum())


def test_low_volume_rows_are_flagged_and_get_no_roi():
    """A day of three cases gets no headline ROI; a week of such days that reaches the minimum does."""
    from eval_pipelines.kpis.metrics import combine, percentiles_by_group

    impact = ImpactConfig.model_validate({**IMPACT.model_dump(), "low_volume_below": 5})
    cases = fixture_cases()
    tiny = cases[(cases["model_version"] == "v1") & (cases["system"] == "s")].iloc[:3]
    day = compute_kpis(tiny, impact).iloc[0]
    assert day["cases"] == 3 and day["low_volume"]
    assert math.isnan(day["roi"]) and math.isnan(day["roi_over_inference_cost"])
    assert not math.isnan(day["net_value_amount"]) and not math.isnan(day["total_cost_amount"])  # still reported
    rows = pd.concat([daily_kpis(tiny, impact, date(2026, 3, d)) for d in (2, 3)], ignore_index=True)
    ids = np.zeros(6, dtype=np.int64)
    two = pd.concat([tiny, tiny], ignore_index=True)
    percentiles = percentiles_by_group(1, {s: (ids, two[s].to_numpy(dtype=float)) for s in ("decision_seconds",
                                                                                         "latency_ms")})
    week = combine(rows, percentiles, [], impact.ci_level, impact.low_volume_below).iloc[0]
    assert week["cases"] == 6 and not week["low_volume"]
    assert week["roi"] == pytest.approx(week["net_value_amount"] / week["total_cost_amount"])
    assert render_markdown(headline_table(compute_kpis(tiny, impact))).count("low volume") == 1


def test_hours_saved_credit_only_what_the_ai_did():
    """Only AI output that was used earns credit: ignored, overridden and rejected suggestions earn nothing (the
    human decided by hand), automated decisions known to be wrong earn nothing, and the decision-time ratio is a
    mean over the (mean) baseline. System "s": baseline 100 s."""
    rows = [  # user_action, status, decision_seconds, is_labeled, ai_correct, correctness
        ("accepted", "ok", 20.0, True, True, "correct"),
        ("ignored", "ok", 40.0, False, N, "unknown"),      # decided by hand: neither baseline nor time counts
        ("overridden", "ok", 30.0, True, False, "wrong"),   # replaced by the human's decision: no credit
        ("rejected", "ok", 10.0, True, False, "wrong"),     # thrown away: no credit
        (N, "ok", NAN, True, False, "wrong"),               # automated, ground truth says wrong: no credit
        (N, "ok", NAN, True, True, "correct"),              # automated and right: credited, 0 s of human time
        (N, "ok", NAN, False, N, "unknown"),                # automated, not known to be wrong: credited
        ("accepted", "ok", 80.0, True, True, "correct"),
        ("edited", "ok", 140.0, True, False, "partly_wrong"),
    ]
    cases = pd.DataFrame([("s", "v1", "seg1", action, status, 100.0, 0.01, seconds, labeled, correct, verdict,
                           N, N, N) for action, status, seconds, labeled, correct, verdict in rows],
                         columns=list(COLUMNS))
    for column in ("ai_correct", "compliance_flag", "complaint", "escalation"):
        cases[column] = cases[column].astype("boolean")
    row = compute_kpis(cases, IMPACT).iloc[0]
    assert row["timed_decisions"] == 9 and row["credited_decisions"] == 5
    assert row["credited_human_decisions"] == 3 and row["human_timed_decisions"] == 6
    assert row["manual_baseline_hours"] == pytest.approx(5 * 100 / 3600)
    assert row["review_hours"] == pytest.approx((20 + 80 + 140) / 3600)
    assert row["hours_saved"] == pytest.approx((500 - 240) / 3600)
    assert row["labour_value_saved_amount"] == pytest.approx(260 / 3600 * 36.0)
    assert row["decision_seconds_mean"] == pytest.approx(80.0)
    # the median is over every human-timed decision, [10,20,30,40,80,140]
    assert row["decision_seconds_p50"] == pytest.approx(35.0)
    assert row["decision_time_to_baseline_ratio"] == pytest.approx(0.8)  # mean / mean, not the median's 0.35


# ---------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(("k", "n", "level"), [(0, 1, 0.95), (1, 1, 0.95), (3, 6, 0.95), (97, 100, 0.95),
                                                (500, 1000, 0.9), (12, 40, 0.99), (0, 250, 0.95)])
def test_wilson_interval_matches_scipy(k, n, level):
    low, high = wilson_interval(k, n, level)
    reference = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert low == pytest.approx(reference.low, abs=1e-12)
    assert high == pytest.approx(reference.high, abs=1e-12)


def test_wilson_interval_is_vectorised_and_nan_without_trials():
    low, high = wilson_interval(np.array([3, 0]), np.array([6, 0]))
    assert low[0] == pytest.approx(wilson(3, 6)[0]) and math.isnan(low[1]) and math.isnan(high[1])


def test_wilson_coverage_exact_and_simulated():
    """Coverage of the 95 % interval: exact (binomial sum) and by seeded simulation, which must agree."""
    n, level = 80, 0.95
    ks = np.arange(n + 1)
    low, high = wilson_interval(ks, np.full(n + 1, n), level)
    grid = np.linspace(0.05, 0.95, 91)
    exact = np.array([stats.binom.pmf(ks, n, p)[(low <= p) & (p <= high)].sum() for p in grid])
    assert 0.945 <= exact.mean() <= 0.96  # Wilson's mean coverage sits at the nominal level
    assert exact.min() >= 0.90  # and its oscillations stay shallow in the interior

    rng = np.random.default_rng(20260302)
    p = 0.83
    draws = rng.binomial(n, p, size=40_000)
    lo, hi = wilson_interval(draws, np.full(draws.shape, n), level)
    simulated = float(np.mean((lo <= p) & (p <= hi)))
    exact_p = stats.binom.pmf(ks, n, p)[(low <= p) & (p <= high)].sum()
    assert abs(simulated - exact_p) < 4 * math.sqrt(exact_p * (1 - exact_p) / draws.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_quantiles_equal_numpy_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 7, size=5000)
    values = rng.lognormal(3.0, 1.0, size=5000).round(2)  # ties included
    values[rng.random(5000) < 0.1] = np.nan
    qs = [0.0, 0.5, 0.9, 0.95, 0.99, 1.0]
    result = grouped_quantiles(ids, values, 8, qs)  # group 7 has no cases
    for group in range(7):
        known = values[(ids == group) & ~np.isnan(values)]
        np.testing.assert_array_equal(result[group], np.quantile(known, qs))
    assert np.isnan(result[7]).all()


def test_grouped_quantiles_single_and_two_values():
    result = grouped_quantiles(np.array([0, 1, 1]), np.array([5.0, 1.0, 3.0]), 2, [0.5, 0.9])
    np.testing.assert_array_equal(result, [[5.0, 5.0], [2.0, 2.8]])


# -------------------------------------------------------------------------------------------- definitions


def test_every_kpi_column_has_a_definition_with_a_unit():
    assert undocumented_metrics() == []
    units = {"count", "fraction", "seconds", "milliseconds", "hours", "currency", "USD", "ratio", "days", "flag",
             "hours^2", "hours^4"}
    for definition in BY_METRIC.values():
        assert definition.unit in units, definition
        assert definition.formula and definition.label
    for column in METRIC_COLUMNS:
        unit = BY_METRIC[column].unit
        if column.endswith("_amount"):
            assert unit == "currency", column
        if column.endswith("_rate"):
            assert unit == "fraction", column
        if column in COUNT_COLUMNS:
            assert unit == "count", column
        if "_ms" in column:
            assert unit == "milliseconds", column
        if column.endswith("_hours") or column == "hours_saved":
            assert unit == "hours", column


def test_headline_table_formats_the_fixture():
    frame = daily_kpis(fixture_cases(), IMPACT, date(2026, 3, 2))
    text = render_markdown(headline_table(frame))
    lines = text.splitlines()
    assert len(lines) == 2 + 3 and all(line.startswith("| 2026-03-02 ") for line in lines[2:])
    assert "42.9%" in text  # group A acceptance 3/7
    assert "42.9% [15.8%, 75.0%]" in text  # group A accuracy 3/7 and its Wilson interval
    assert "-283.09 EUR" in text


# --------------------------------------------------------------------------- the baseline: assumed or measured


def _control_day(rng: np.random.Generator, n_ai: int, n_control: int, mean_seconds: float,
                 sigma: float = 0.6) -> pd.DataFrame:
    """Accepted AI cases (10 s each) and control cases decided by hand, log-normal times with mean mean_seconds."""
    mu = math.log(mean_seconds) - sigma ** 2 / 2
    control = rng.lognormal(mu, sigma, n_control)
    rows = [("s", "v1", "seg1", "accepted", "ok", 100.0, 0.01, 10.0, True, True, "correct", N, N, N)] * n_ai
    rows += [("s", "v1", "manual", "accepted", "ok", 100.0, 0.0, float(t), False, N, "unknown", N, N, N)
             for t in control]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("ai_correct", "compliance_flag", "complaint", "escalation"):
        frame[column] = frame[column].astype("boolean")
    return frame


MEASURED = ImpactConfig.model_validate({
    **IMPACT.model_dump(exclude={"systems"}),
    "systems": {**{k: v.model_dump() for k, v in IMPACT.systems.items()},
                "s": {**IMPACT.systems["s"].model_dump(), "baseline_control": {"column": "segment",
                                                                                "value": "manual"}}},
})


def test_baseline_estimate_is_the_t_interval_of_scipy():
    from eval_pipelines.kpis.metrics import baseline_estimate

    values = np.random.default_rng(1).lognormal(4.0, 0.7, 25)
    estimate = baseline_estimate(values, 0.9)
    low, high = stats.t.interval(0.9, 24, loc=values.mean(), scale=stats.sem(values))
    assert estimate.n == 25 and estimate.mean == pytest.approx(values.mean())
    assert (estimate.low, estimate.high) == pytest.approx((low, high), rel=1e-12)
    assert baseline_estimate(np.array([5.0, np.nan]), 0.95) is None  # one value: no variance, no estimate


def test_measured_baseline_replaces_the_assumption_and_carries_its_interval():
    cases = _control_day(np.random.default_rng(3), n_ai=40, n_control=30, mean_seconds=150.0)
    frame = compute_kpis(cases, MEASURED).set_index("segment")
    control = cases.loc[cases["segment"] == "manual", "decision_seconds"].to_numpy()
    ai = frame.loc["seg1"]
    b, se = control.mean(), stats.sem(control)
    t = stats.t.ppf(0.975, len(control) - 1)
    assert ai["baseline_seconds_per_decision"] == pytest.approx(b)  # not the configured 100 s
    assert ai["baseline_control_decisions"] == 0 and frame.loc["manual", "baseline_control_decisions"] == 30
    assert ai["assumed_baseline_decisions"] == 0
    assert (ai["baseline_seconds_ci_low"], ai["baseline_seconds_ci_high"]) == pytest.approx((b - t * se, b + t * se))
    assert ai["hours_saved"] == pytest.approx(40 * (b - 10.0) / 3600)
    assert ai["hours_saved_ci_low"] == pytest.approx(40 * (b - t * se - 10.0) / 3600)
    assert ai["hours_saved_ci_high"] == pytest.approx(40 * (b + t * se - 10.0) / 3600)
    rate = 36.0
    assert ai["labour_value_saved_ci_low_amount"] == pytest.approx(ai["hours_saved_ci_low"] * rate)
    assert ai["net_value_ci_high_amount"] - ai["net_value_amount"] == pytest.approx(40 * t * se / 3600 * rate)
    # the control cases were decided without the AI: they earn no hours saved
    assert frame.loc["manual", "credited_decisions"] == 0 and frame.loc["manual", "hours_saved"] == 0


def test_hours_saved_interval_covers_at_the_nominal_level():
    """Seeded: skewed (log-normal, σ = 0.6) control times. hours_saved is linear in the baseline, so its interval
    covers the true C·(μ − 10 s)/3600 exactly when the baseline interval covers μ (checked on 25 days through
    compute_kpis); the baseline's t interval then covers 95 % ± 3 binomial se of 4,000 days with 200 control
    decisions a day. (With 40 a day the skew costs about 1.5 points: 93.5 %.)"""
    from eval_pipelines.kpis.metrics import baseline_estimate

    rng = np.random.default_rng(20261202)
    true_mean, n_ai = 150.0, 50
    truth = n_ai * (true_mean - 10.0) / 3600
    for _ in range(25):
        day = _control_day(rng, n_ai, 40, true_mean)
        row = compute_kpis(day, MEASURED).set_index("segment").loc["seg1"]
        baseline_covers = row["baseline_seconds_ci_low"] <= true_mean <= row["baseline_seconds_ci_high"]
        assert (row["hours_saved_ci_low"] <= truth <= row["hours_saved_ci_high"]) == baseline_covers
    sigma, runs = 0.6, 4000
    mu = math.log(true_mean) - sigma ** 2 / 2
    covered = 0
    for _ in range(runs):
        estimate = baseline_estimate(rng.lognormal(mu, sigma, 200), 0.95)
        covered += estimate.low <= true_mean <= estimate.high
    assert abs(covered / runs - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / runs), covered / runs


def test_rollup_interval_sums_the_days_variances_with_satterthwaite_df():
    from eval_pipelines.kpis.metrics import combine, percentiles_by_group

    rng = np.random.default_rng(5)
    days = [_control_day(rng, 30, n, 150.0) for n in (8, 20)]
    rows = pd.concat([daily_kpis(c, MEASURED, date(2026, 3, 2 + i)) for i, c in enumerate(days)], ignore_index=True)
    seg1 = rows[rows["segment"] == "seg1"]
    both = pd.concat(days, ignore_index=True)
    both = both[both["segment"] == "seg1"]
    ids = np.zeros(len(both), dtype=np.int64)
    percentiles = percentiles_by_group(1, {s: (ids, both[s].to_numpy(dtype=float)) for s in ("decision_seconds",
                                                                                           "latency_ms")})
    week = combine(seg1, percentiles, [], MEASURED.ci_level, 1).iloc[0]
    v = [(30 / 3600) ** 2 * stats.sem(c.loc[c["segment"] == "manual", "decision_seconds"]) ** 2 for c in days]
    df = sum(v) ** 2 / (v[0] ** 2 / 7 + v[1] ** 2 / 19)
    half = stats.t.ppf(0.975, df) * math.sqrt(sum(v))
    assert week["hours_saved_variance"] == pytest.approx(sum(v))
    assert week["hours_saved_ci_high"] - week["hours_saved"] == pytest.approx(half)
    assert math.isnan(week["baseline_seconds_ci_low"])  # days' baseline intervals do not combine
    # a day priced at the assumed constant leaves the period without an interval
    assumed = daily_kpis(days[0], IMPACT, date(2026, 3, 4))
    mixed = combine(pd.concat([seg1, assumed[assumed["segment"] == "seg1"]], ignore_index=True), percentiles, [],
                    MEASURED.ci_level, 1).iloc[0]
    assert mixed["assumed_baseline_decisions"] == 30 and math.isnan(mixed["hours_saved_ci_low"])


def test_a_control_flag_column_and_too_few_control_cases():
    cases = _control_day(np.random.default_rng(8), n_ai=20, n_control=10, mean_seconds=120.0)
    cases["manual_review"] = (cases["segment"] == "manual").astype("boolean")
    cases["segment"] = "seg1"
    flagged = ImpactConfig.model_validate({**MEASURED.model_dump(), "systems": {
        "s": {**MEASURED.systems["s"].model_dump(), "baseline_control": {"column": "manual_review",
                                                                          "value": True}}}})
    row = compute_kpis(cases, flagged).iloc[0]
    control = cases.loc[cases["manual_review"].astype(bool), "decision_seconds"]
    assert row["baseline_seconds_per_decision"] == pytest.approx(control.mean())
    assert row["credited_decisions"] == 20 and row["baseline_control_decisions"] == 10
    one = cases.iloc[:21]  # a single control decision has no variance: the assumed constant stays
    row = compute_kpis(one, flagged).iloc[0]
    assert row["baseline_seconds_per_decision"] == 100.0 and row["assumed_baseline_decisions"] == 20
    assert math.isnan(row["hours_saved_ci_low"])


def _segments_day(rng: np.random.Generator, n_ai: Sequence[int], n_control: int, mean_seconds: float,
                  sd_seconds: float) -> pd.DataFrame:
    """Accepted AI cases (10 s each) in segments seg0, seg1, ... and one normal control group 'manual' they share."""
    rows = [("s", "v1", f"seg{i}", "accepted", "ok", 100.0, 0.01, 10.0, True, True, "correct", N, N, N)
            for i, count in enumerate(n_ai) for _ in range(count)]
    rows += [("s", "v1", "manual", "accepted", "ok", 100.0, 0.0, float(t), False, N, "unknown", N, N, N)
             for t in rng.normal(mean_seconds, sd_seconds, n_control)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("ai_correct", "compliance_flag", "complaint", "escalation"):
        frame[column] = frame[column].astype("boolean")
    return frame


def _all_rows(rows: pd.DataFrame) -> pd.Series:
    """``combine`` of every row into one (what the day total and a rollup over segments do)."""
    from eval_pipelines.kpis.metrics import combine

    percentiles = pd.DataFrame({column: [np.nan] for column in PERCENTILE_COLUMNS})
    return combine(rows, percentiles, [], MEASURED.ci_level, 1).iloc[0]


def test_rows_sharing_one_baseline_combine_with_perfectly_correlated_errors():
    """k segments priced with one control group: the combined hours_saved error is (Σ C_r)(b̂ − b)/3600, so its
    variance is (Σ C_r)² s²/n / 3600² on n − 1 df (closed form), not Σ C_r² s²/n / 3600² (√k too narrow)."""
    day = _segments_day(np.random.default_rng(11), (30, 30, 30, 30), 15, 150.0, 40.0)
    rows = daily_kpis(day, MEASURED, date(2026, 3, 2))
    total = _all_rows(rows)
    control = day.loc[day["segment"] == "manual", "decision_seconds"]
    variance = (120 / 3600) ** 2 * stats.sem(control) ** 2
    assert total["hours_saved_variance"] == pytest.approx(variance, rel=1e-12)
    half = stats.t.ppf(0.975, len(control) - 1) * math.sqrt(variance)
    assert total["hours_saved_ci_high"] - total["hours_saved"] == pytest.approx(half, rel=1e-9)
    # two days: independent baselines, variances add across them with Welch–Satterthwaite df
    other = _segments_day(np.random.default_rng(12), (10, 50), 40, 150.0, 40.0)
    both = pd.concat([rows, daily_kpis(other, MEASURED, date(2026, 3, 3))], ignore_index=True)
    control_2 = other.loc[other["segment"] == "manual", "decision_seconds"]
    v = [variance, (60 / 3600) ** 2 * stats.sem(control_2) ** 2]
    week = _all_rows(both)
    assert week["hours_saved_variance"] == pytest.approx(sum(v), rel=1e-12)
    df = sum(v) ** 2 / (v[0] ** 2 / 14 + v[1] ** 2 / 39)
    assert week["hours_saved_ci_high"] - week["hours_saved"] == pytest.approx(
        stats.t.ppf(0.975, df) * math.sqrt(sum(v)), rel=1e-9)


def test_a_combined_row_of_segments_sharing_a_control_group_covers_at_95_percent():
    """Seeded: 4 segments share one normal control group of 12 decisions (the t interval is exact there); the
    combined row's interval covers the true (Σ C)(μ − 10 s)/3600 in 95 % ± 3 binomial se of 400 replications.
    Measured: 96.3 %; summing the rows' variances (the old rule) halves the width and covered 71.8 %. Each
    replication is its own system (with its own control group), so one compute_kpis and one combine do all 400."""
    from eval_pipelines.kpis.metrics import combine

    rng = np.random.default_rng(20261203)
    true_mean, n_ai, runs = 150.0, (20, 30, 40, 50), 400
    truth = sum(n_ai) * (true_mean - 10.0) / 3600
    days = []
    for run in range(runs):
        day = _segments_day(rng, n_ai, 12, true_mean, 40.0)
        day["system"] = f"s{run}"
        days.append(day)
    per_system = ImpactConfig.model_validate({**IMPACT.model_dump(exclude={"systems"}), "systems": {"default": {
        **IMPACT.systems["s"].model_dump(), "baseline_control": {"column": "segment", "value": "manual"}}}})
    rows = compute_kpis(pd.concat(days, ignore_index=True), per_system)
    assert (rows.groupby("system")["segment"].count() == len(n_ai) + 1).all()
    percentiles = pd.DataFrame({"system": sorted(rows["system"].unique()),
                                **{column: np.nan for column in PERCENTILE_COLUMNS}})
    totals = combine(rows, percentiles, ["system"], per_system.ci_level, 1)
    assert (totals["credited_decisions"] == sum(n_ai)).all()
    covered = int(((totals["hours_saved_ci_low"] <= truth) & (truth <= totals["hours_saved_ci_high"])).sum())
    assert abs(covered / runs - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / runs), covered / runs


def test_free_text_means_are_ratios_of_sums_and_roll_up_as_such():
    from eval_pipelines.kpis.metrics import finalize

    cases = fixture_cases().head(4).copy()
    cases["edit_similarity"] = [1.0, 0.5, np.nan, 0.8]
    cases["retained_share"] = [1.0, np.nan, np.nan, 0.6]
    frame = compute_kpis(cases, IMPACT)
    assert frame["edit_compared_cases"].sum() == 3 and frame["retained_compared_cases"].sum() == 2
    total = frame[["edit_similarity_sum", "edit_compared_cases", "retained_share_sum", "retained_compared_cases"]].sum()
    assert total["edit_similarity_sum"] / total["edit_compared_cases"] == pytest.approx((1.0 + 0.5 + 0.8) / 3)
    assert total["retained_share_sum"] / total["retained_compared_cases"] == pytest.approx(0.8)
    for row in frame.itertuples():
        if row.edit_compared_cases:
            assert row.edit_similarity_mean == pytest.approx(row.edit_similarity_sum / row.edit_compared_cases)
        else:
            assert np.isnan(row.edit_similarity_mean)
    assert finalize(frame, 0.95)["edit_similarity_mean"].equals(frame["edit_similarity_mean"])
