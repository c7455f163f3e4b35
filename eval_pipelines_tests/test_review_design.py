"""The audit sample: a stratified probability sample of the day's ok cases with a certainty stratum."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.review.design import (
    CERTAINTY_STRATUM,
    AuditDesignConfig,
    day_seed,
    draw_audit_sample,
)
from eval_pipelines_tests.review_sim import simulate_day

DAY = dt.date(2026, 3, 4)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return simulate_day(20_000, seed=7)


def test_inclusion_probabilities_sum_to_the_sample_size_and_certainty_is_one(cases):
    sample = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=300))
    frame, tasks = sample.frame, sample.tasks
    assert len(frame) == int((cases["status"] == "ok").sum())  # phase one is every ok case, nothing else
    assert frame["inclusion_prob"].sum() == pytest.approx(len(tasks))  # Σ π_i = n (Horvitz–Thompson identity)
    certain = frame["certainty"].to_numpy()
    ok = cases[cases["status"] == "ok"]
    assert certain.sum() == int((ok["complaint"] | ok["compliance_flag"]).sum()) > 0
    assert (frame.loc[certain, "inclusion_prob"] == 1.0).all()
    assert frame.loc[certain, "selected"].all()  # taken whole
    assert (frame.loc[certain, "stratum"] == CERTAINTY_STRATUM).all()
    assert len(tasks) == 300 + certain.sum()  # the certainty stratum comes on top of daily_size
    assert (tasks["weight"] * tasks["inclusion_prob"]).round(12).eq(1.0).all()
    # Within every sampled stratum the probability is exactly n_h / N_h.
    per_stratum = frame.groupby("stratum").agg(N=("event_id", "size"), n=("selected", "sum"),
                                               pi=("inclusion_prob", "first"))
    assert np.allclose(per_stratum["pi"], per_stratum["n"] / per_stratum["N"])


def test_every_action_is_eligible_including_ignored_and_unreviewed(cases):
    tasks = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=300)).tasks
    assert {"accepted", "overridden", "ignored", "unreviewed"} <= set(tasks["review_action"])
    assert (tasks["status"] == "ok").all()


def test_risky_strata_are_over_sampled(cases):
    sample = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=400, fast_accept_factor=4.0))
    frame = sample.frame[~sample.frame["certainty"]]
    fast = frame["stratum"].str.contains("failure=fast_accept")
    plain = frame["stratum"].str.contains("failure=none")
    # Proportional × factor: fast accepts are sampled at about 4× the rate of plain cases.
    ratio = frame.loc[fast, "selected"].mean() / frame.loc[plain, "selected"].mean()
    assert 3.0 < ratio < 5.0
    ok = cases[cases["status"] == "ok"].reset_index(drop=True)
    accepted_fast = (ok["user_action"] == "accepted") & (ok["decision_seconds"] < 5.0) \
        & ~(ok["complaint"] | ok["compliance_flag"])
    assert fast.sum() == accepted_fast.sum()


def test_deterministic_per_day_and_independent_of_row_order(cases):
    config = AuditDesignConfig(daily_size=200, seed=11)
    first = draw_audit_sample(cases, DAY, config).tasks
    shuffled = cases.sample(frac=1.0, random_state=3)
    again = draw_audit_sample(shuffled, DAY, config).tasks
    pd.testing.assert_series_equal(first["event_id"], again["event_id"])
    assert first["double_review"].tolist() == again["double_review"].tolist()
    next_day = draw_audit_sample(cases, DAY + dt.timedelta(days=1), config).tasks
    assert set(next_day["event_id"]) != set(first["event_id"])
    assert day_seed(11, DAY) == day_seed(11, "2026-03-04") != day_seed(12, DAY)


def test_double_review_share_is_exact(cases):
    tasks = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=200, double_review_share=0.25)).tasks
    assert tasks["double_review"].sum() == round(0.25 * len(tasks))
    none = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=200, double_review_share=0.0)).tasks
    assert not none["double_review"].any()


def test_each_stratum_gets_its_minimum(cases):
    sample = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=300, minimum_per_stratum=2))
    strata = sample.strata
    assert (strata["sample"] >= np.minimum(2, strata["population"])).all()


def test_selection_is_a_simple_random_sample_within_strata():
    # Each case of a stratum is selected with probability n_h / N_h: over many days the empirical frequency
    # matches π_i for every case (chi-square-free check: max deviation within 5 binomial SDs).
    cases = simulate_day(600, seed=1, complaint_rate=0.0)
    config = AuditDesignConfig(daily_size=60, strata_columns=("review_action",))
    days = 200
    hits = np.zeros(int((cases["status"] == "ok").sum()))
    pis = None
    for k in range(days):
        sample = draw_audit_sample(cases, DAY + dt.timedelta(days=k), config)
        hits += sample.frame["selected"].to_numpy()
        pis = sample.frame["inclusion_prob"].to_numpy()
    sd = np.sqrt(pis * (1 - pis) / days)
    assert np.max(np.abs(hits / days - pis) / np.maximum(sd, 1e-9)) < 5.0


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="double_review_share"):
        AuditDesignConfig(double_review_share=1.5)
    with pytest.raises(ValueError, match="daily_size"):
        AuditDesignConfig(daily_size=0)


def test_certainty_flags_are_read_from_labeling_tags_when_the_raw_fields_are_absent(cases):
    raw = draw_audit_sample(cases, DAY, AuditDesignConfig(daily_size=100))
    tagged = cases.rename(columns={"complaint": "tag_complaint", "compliance_flag": "tag_compliance"})
    via_tags = draw_audit_sample(tagged, DAY, AuditDesignConfig(daily_size=100))
    assert via_tags.frame["certainty"].tolist() == raw.frame["certainty"].tolist()
    with pytest.raises(KeyError, match="certainty column"):
        draw_audit_sample(cases.drop(columns=["complaint"]), DAY, AuditDesignConfig(daily_size=100))


def test_runs_on_labeling_output(cases):
    from eval_pipelines.labeling.labels import derive_labels

    events = cases.drop(columns=["ai_correct", "true_correct"]).assign(
        ai_output=np.where(cases["true_correct"], "approve", "deny"), final_output=pd.NA,
        partition_date=str(DAY))
    labeled = derive_labels(events, low_confidence_below=0.5, slow_decision_seconds=60.0)
    sample = draw_audit_sample(labeled, DAY, AuditDesignConfig(daily_size=150))
    assert sample.frame["inclusion_prob"].sum() == pytest.approx(len(sample.tasks))
    assert {"ai_output", "partition_date", "segment", "confidence"} <= set(sample.tasks.columns)
