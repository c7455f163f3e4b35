"""Rollups equal the KPIs recomputed directly over the period's cases: ratios, sums and percentiles alike."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.demo.generator import generate_day_frame
from eval_pipelines.kpis.metrics import (
    ADDITIVE_COLUMNS,
    AMOUNT_COLUMNS,
    COUNT_COLUMNS,
    KEY_COLUMNS,
    METRIC_COLUMNS,
    PERCENTILE_COLUMNS,
    RATIOS,
    compute_kpis,
    daily_kpis,
)
from eval_pipelines.kpis.rollups import period_end, period_start, rollup_from_cases
from eval_pipelines.kpis.settings import ImpactConfig
from eval_pipelines.labeling.labels import derive_labels

IMPACT = ImpactConfig.model_validate({"systems": {"support_triage": {
    "labour_cost_per_hour": 38, "manual_baseline_seconds": 150, "cost_per_compliance_flag": 250,
    "cost_per_complaint": 30, "cost_per_escalation": 60, "value_per_correct_automated_decision": 0.5}}})


def day_cases(day: date, n: int) -> pd.DataFrame:
    # One seed (the generator caches its text pool per seed); days differ through their own RNG stream.
    index = (day - date(2026, 2, 23)).days
    return derive_labels(generate_day_frame(day, n, seed=7, day_index=index), 0.5, 120.0)


@pytest.fixture(scope="module")
def ten_days() -> dict[date, pd.DataFrame]:
    """Ten days across a month end (Thu 2026-02-26 .. Sat 2026-03-07), volumes varying 3x."""
    first = date(2026, 2, 26)
    return {first + timedelta(days=i): day_cases(first + timedelta(days=i), 300 + 100 * (i % 4))
            for i in range(10)}


def assert_same_kpis(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual[list(KEY_COLUMNS)].itertuples(index=False)) == \
        list(expected[list(KEY_COLUMNS)].itertuples(index=False))
    for column in METRIC_COLUMNS:
        a, e = actual[column].to_numpy(), expected[column].to_numpy()
        if column in COUNT_COLUMNS or column in PERCENTILE_COLUMNS:
            np.testing.assert_array_equal(a, e, err_msg=column)  # exact: same cases, same method
        else:
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, err_msg=column)


def test_period_bounds():
    assert period_start(date(2026, 3, 1), "week") == date(2026, 2, 23)  # a Sunday belongs to the week before
    assert period_end(date(2026, 3, 1), "week") == date(2026, 3, 1)
    assert period_start(date(2026, 3, 2), "week") == date(2026, 3, 2)
    assert period_start(date(2026, 2, 17), "month") == date(2026, 2, 1)
    assert period_end(date(2026, 2, 17), "month") == date(2026, 2, 28)
    assert period_end(date(2028, 2, 3), "month") == date(2028, 2, 29)


def test_weekly_and_monthly_rollups_equal_a_direct_recompute(ten_days):
    daily = pd.concat([daily_kpis(cases, IMPACT, day) for day, cases in ten_days.items()], ignore_index=True)
    rollups = rollup_from_cases(daily, ten_days.items(), ("week", "month"), IMPACT.ci_level)

    for period, column in (("week", "week_start"), ("month", "month_start")):
        frame = rollups[period]
        starts = sorted({period_start(day, period) for day in ten_days})
        assert sorted(set(frame[column])) == starts
        for start in starts:
            days = [d for d in ten_days if period_start(d, period) == start]
            direct = compute_kpis(pd.concat([ten_days[d] for d in days], ignore_index=True), IMPACT)
            rolled = frame[frame[column] == start].reset_index(drop=True)
            assert_same_kpis(rolled, direct)
            assert (rolled["days_with_data"] == len(days)).all()


def test_the_check_can_fail_averaging_daily_values_is_not_the_same(ten_days):
    """The equality above is not vacuous: the shortcuts a rollup must not take give different numbers."""
    daily = pd.concat([daily_kpis(cases, IMPACT, day) for day, cases in ten_days.items()], ignore_index=True)
    week = [d for d in ten_days if period_start(d, "week") == date(2026, 3, 2)]
    direct = compute_kpis(pd.concat([ten_days[d] for d in week], ignore_index=True), IMPACT)
    in_week = daily[daily["kpi_date"].isin(week)]
    averaged = in_week.groupby(list(KEY_COLUMNS), sort=True)[["acceptance_rate", "latency_ms_p95"]].mean()
    assert not np.allclose(averaged["acceptance_rate"].to_numpy(), direct["acceptance_rate"].to_numpy(), rtol=1e-6)
    assert not np.allclose(averaged["latency_ms_p95"].to_numpy(), direct["latency_ms_p95"].to_numpy(), rtol=1e-6)


def test_rollup_sums_money_as_recorded_when_the_model_changes(ten_days):
    """A mid-week change of the labour cost applies from that day on; history is not re-priced."""
    cheaper = ImpactConfig.model_validate({"systems": {"support_triage": {
        **IMPACT.systems["support_triage"].model_dump(), "labour_cost_per_hour": 19}}})
    week = [d for d in ten_days if period_start(d, "week") == date(2026, 3, 2)]
    frames = [daily_kpis(ten_days[d], IMPACT if i < 3 else cheaper, d) for i, d in enumerate(week)]
    daily = pd.concat(frames, ignore_index=True)
    weekly = rollup_from_cases(daily, [(d, ten_days[d]) for d in week], ("week",), IMPACT.ci_level)["week"]
    for column in ADDITIVE_COLUMNS:
        expected = daily.groupby(list(KEY_COLUMNS), sort=True)[column].sum().to_numpy()
        np.testing.assert_allclose(weekly[column].to_numpy(), expected, rtol=1e-12, err_msg=column)
    for column, (numerator, denominator) in RATIOS.items():
        expected = weekly[numerator] / weekly[denominator]
        np.testing.assert_allclose(weekly[column].to_numpy(), expected.to_numpy(), rtol=1e-12, err_msg=column)


def test_a_currency_change_mid_period_gives_no_currency_and_null_amounts(ten_days):
    euros = ImpactConfig.model_validate({"systems": {"support_triage": {"currency": "EUR",
                                                                        "usd_to_currency": 0.9}}})
    week = [d for d in ten_days if period_start(d, "week") == date(2026, 3, 2)]
    daily = pd.concat([daily_kpis(ten_days[d], IMPACT if i == 0 else euros, d) for i, d in enumerate(week)],
                      ignore_index=True)
    weekly = rollup_from_cases(daily, [(d, ten_days[d]) for d in week], ("week",), IMPACT.ci_level)["week"]
    assert set(weekly["currency"]) == {"XXX"}
    assert weekly[list(AMOUNT_COLUMNS)].isna().all().all()
    assert weekly["ai_cost_usd"].notna().all() and (weekly["cases"] > 0).all()  # non-money figures still add up
