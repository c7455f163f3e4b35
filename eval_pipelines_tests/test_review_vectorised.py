"""The vectorised review functions give exactly what their per-row predecessors (review_reference.py) gave.

Seeded random inputs with the edge cases that loops handle one by one: null actions, confidences and segments,
strata with a single case, a day that is all certainty stratum or has none, ties and disputes between reviewers,
a senior reviewer, verdicts for events outside the sample, and malformed records.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.review import adjudication, design, estimation, inbox
from eval_pipelines.review import assets as review_assets
from eval_pipelines_tests import review_reference as reference

DAY = dt.date(2026, 3, 2)
ACTIONS = np.array(["accepted", "edited", "overridden", "rejected", "ignored", None], dtype=object)
LABELS = ("billing", "refund", "tech", "account")


def random_cases(seed: int, n: int, certainty_rate: float = 0.03, as_categories: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    confidence = rng.beta(4, 2, n)
    confidence[rng.random(n) < 0.05] = np.nan
    segment = rng.choice(np.array(["consumer", "business", "enterprise", None], dtype=object), n,
                         p=[0.5, 0.3, 0.15, 0.05])
    frame = pd.DataFrame({
        "event_id": [f"e{seed}-{i:05d}" for i in rng.permutation(n)],
        "status": rng.choice(["ok", "ok", "ok", "error", "timeout"], n),
        "system": rng.choice(["triage", "routing"], n),
        "model_version": rng.choice(["v1", "v2"], n),
        "segment": segment,
        "user_action": rng.choice(ACTIONS, n, p=[0.5, 0.1, 0.15, 0.05, 0.1, 0.1]),
        "confidence": confidence,
        "decision_seconds": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(8.0, n)),
        "ai_output": rng.choice(np.array([*LABELS, None], dtype=object), n),
        "final_output": rng.choice(np.array([*LABELS, None], dtype=object), n),
        "ground_truth": rng.choice(np.array([*LABELS, None], dtype=object), n, p=[0.05] * 4 + [0.8]),
        "input_text": [f"text {i} ✓" for i in range(n)],
        "complaint": rng.random(n) < certainty_rate,
        "compliance_flag": pd.array(np.where(rng.random(n) < 0.02, None, rng.random(n) < certainty_rate / 2),
                                    dtype="boolean"),
    })
    if as_categories:
        for column in ("status", "segment", "user_action"):
            frame[column] = frame[column].astype("category")
    return frame


CASE_SHAPES = [
    # (seed, n, certainty_rate, daily_size, double_review_share, as_categories)
    (1, 3000, 0.03, 200, 0.1, False),
    (2, 800, 0.0, 50, 0.3, False),  # no certainty stratum
    (3, 300, 1.0, 40, 0.5, False),  # every case in the certainty stratum
    (4, 2500, 0.05, 2400, 0.0, False),  # almost a census: strata taken whole
    (5, 1200, 0.02, 30, 1.0, True),  # categoricals, more strata than tasks (the minimum decides)
    (6, 40, 0.1, 10, 0.2, False),  # strata with a single case
]


def _equal_samples(fast: design.AuditSample, slow: design.AuditSample) -> None:
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    pd.testing.assert_frame_equal(fast.tasks, slow.tasks)
    pd.testing.assert_frame_equal(fast.strata, slow.strata)
    assert fast.day_seed == slow.day_seed
    assert (fast.allocation is None) == (slow.allocation is None)
    if fast.allocation is not None:
        assert np.array_equal(fast.allocation.sizes, slow.allocation.sizes)
        assert (fast.allocation.size, fast.allocation.size_raised, fast.allocation.census) == \
            (slow.allocation.size, slow.allocation.size_raised, slow.allocation.census)


@pytest.mark.parametrize(("seed", "n", "certainty_rate", "size", "share", "categories"), CASE_SHAPES)
def test_draw_audit_sample_matches_reference(seed: int, n: int, certainty_rate: float, size: int, share: float,
                                             categories: bool) -> None:
    cases = random_cases(seed, n, certainty_rate, categories)
    config = design.AuditDesignConfig(daily_size=size, seed=seed, double_review_share=share)
    fast = design.draw_audit_sample(cases, DAY, config)
    slow = reference.draw_audit_sample(cases, DAY, config)
    _equal_samples(fast, slow)
    assert fast.tasks["certainty"].sum() == (fast.frame["certainty"]).sum()  # the certainty stratum is whole


def test_draw_audit_sample_matches_reference_on_other_strata_and_tag_aliases() -> None:
    cases = random_cases(7, 2000).rename(columns={"complaint": "tag_complaint", "compliance_flag": "tag_compliance"})
    config = design.AuditDesignConfig(daily_size=120, seed=3, strata_columns=("segment", "model_version"),
                                      minimum_per_stratum=0)
    _equal_samples(design.draw_audit_sample(cases, "2026-03-04", config),
                   reference.draw_audit_sample(cases, "2026-03-04", config))
    no_action = cases.drop(columns=["user_action"])
    _equal_samples(design.draw_audit_sample(no_action, DAY, config),
                   reference.draw_audit_sample(no_action, DAY, config))


def test_draw_audit_sample_still_refuses_duplicate_ids() -> None:
    cases = random_cases(8, 50).assign(status="ok")
    cases.loc[3, "event_id"] = cases.loc[4, "event_id"]
    with pytest.raises(ValueError, match="unique"):
        design.draw_audit_sample(cases, DAY)


def random_verdicts(tasks: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Zero to four reviewers per task, labels drawn from a small vocabulary so ties and disputes are common;
    ``lead`` (the senior) on some of them, and verdicts for events that are not tasks."""
    rng = np.random.default_rng(seed)
    rows = []
    for event_id in tasks["event_id"]:
        reviewers = rng.choice(["ann", "bob", "lead", "zoe"], rng.choice([0, 1, 2, 3, 4], p=[.2, .3, .3, .1, .1]),
                               replace=False)
        for reviewer in reviewers:
            rows.append({"event_id": event_id, "reviewer": reviewer, "label": rng.choice(LABELS[:3])})
    rows += [{"event_id": "not-a-task", "reviewer": "ann", "label": "tech"}]
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order])


@pytest.mark.parametrize("mode", ["majority", "senior", "disputed"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_adjudicate_matches_reference(mode: str, seed: int) -> None:
    sample = design.draw_audit_sample(random_cases(seed, 2000), DAY, design.AuditDesignConfig(daily_size=300))
    tasks = sample.tasks.assign(partition_date=DAY)
    verdicts = random_verdicts(tasks, seed)
    senior = "lead" if mode == "senior" else None
    fast = adjudication.adjudicate(tasks, verdicts, mode, senior)
    slow = reference.adjudicate(tasks, verdicts, mode, senior)
    pd.testing.assert_frame_equal(fast, slow)
    assert set(fast["adjudication"]) >= {"unanswered", "single", "majority", "disputed"} | (
        {"senior"} if mode == "senior" else set())  # every rule was exercised
    assert not fast["ai_correct"].isna().all()


def test_adjudicate_matches_reference_without_verdicts_or_tasks() -> None:
    sample = design.draw_audit_sample(random_cases(9, 500), DAY, design.AuditDesignConfig(daily_size=40))
    tasks = sample.tasks.assign(partition_date=DAY)
    none = pd.DataFrame({"event_id": pd.Series([], dtype=object), "reviewer": pd.Series([], dtype=object),
                         "label": pd.Series([], dtype=object)})
    pd.testing.assert_frame_equal(adjudication.adjudicate(tasks, none), reference.adjudicate(tasks, none))
    pd.testing.assert_frame_equal(adjudication.adjudicate(tasks.iloc[0:0], random_verdicts(tasks, 9)),
                                  reference.adjudicate(tasks.iloc[0:0], random_verdicts(tasks, 9)))


def random_read(tasks: pd.DataFrame, seed: int) -> inbox.VerdictRead:
    """Inbox records with every kind of problem, in random order over two sources."""
    rng = np.random.default_rng(seed)
    ids = list(tasks["event_id"])
    stamps = ["2026-03-03T09:00:00Z", "2026-03-03T09:00:00.123456+02:00", "2026-03-03 10:00", "2026-03-03",
              "yesterday", "", None, 5]
    rows = []
    for number in range(1, 1500):
        kind = rng.random()
        event_id = ids[rng.integers(len(ids))] if kind > 0.05 else rng.choice(["unknown", "", None, 7])
        reviewer = rng.choice(["ann", "bob", " ann ", "", None, 3.0], p=[.45, .4, .05, .04, .04, .02])
        label = rng.choice([*LABELS, "not-a-label", "", None], p=[.22] * 4 + [.06, .02, .04])
        comment = rng.choice(["fine", None, 12], p=[.2, .75, .05])
        stamp = stamps[rng.integers(len(stamps))]
        problem = "not valid JSON: Expecting value at column 1" if rng.random() < 0.02 else None
        rows.append({"source": f"2026-03-02/{'a.jsonl' if number % 3 else 'b.csv'}", "line": number,
                     "event_id": event_id, "reviewer": reviewer, "label": label, "comment": comment,
                     "reviewed_at": stamp, "record": f"raw {number}", "problem": problem})
    records = pd.DataFrame(rows, columns=list(inbox.RECORD_COLUMNS))
    return inbox.VerdictRead(records, dict(records["source"].value_counts()))


@pytest.mark.parametrize("seed", [1, 2])
def test_validate_verdicts_matches_reference(seed: int) -> None:
    sample = design.draw_audit_sample(random_cases(seed, 2000), DAY, design.AuditDesignConfig(daily_size=200))
    tasks = sample.tasks[["event_id", "system"]]
    read = random_read(tasks, seed)
    vocabulary = {"triage": LABELS, "routing": LABELS[:2]}
    fast_accepted, fast_quarantined = inbox.validate_verdicts(read, tasks, vocabulary)
    slow_accepted, slow_quarantined = reference.validate_verdicts(read, tasks, vocabulary)
    pd.testing.assert_frame_equal(fast_accepted, slow_accepted)
    pd.testing.assert_frame_equal(fast_quarantined, slow_quarantined)
    assert len(fast_accepted) > 100 and len(fast_quarantined) > 100
    reasons = " ".join(fast_quarantined["reason"])
    for words in ("missing or empty", "must be a non-empty string", "not an ISO 8601", "not a review task",
                  "not in the vocabulary", "duplicate", "comment: must be a string", "not valid JSON"):
        assert words in reasons


def test_validate_verdicts_matches_reference_when_nothing_is_accepted() -> None:
    tasks = design.draw_audit_sample(random_cases(3, 300), DAY).tasks[["event_id", "system"]]
    read = random_read(tasks, 3)
    read = inbox.VerdictRead(read.records.assign(label="nope"), read.rows_in)
    for fast, slow in zip(inbox.validate_verdicts(read, tasks, {"triage": LABELS}),
                          reference.validate_verdicts(read, tasks, {"triage": LABELS}), strict=True):
        pd.testing.assert_frame_equal(fast, slow)


def _equal_estimates(fast: estimation.ReviewEstimates, slow: estimation.ReviewEstimates) -> None:
    for name in ("reviewed_accuracy", "automation_bias_rate", "override_error_rate"):
        left, right = getattr(fast, name).as_dict(), getattr(slow, name).as_dict()
        assert left.keys() == right.keys()
        for key, value in left.items():
            assert value == right[key] or (value != value and right[key] != right[key]), (name, key)
    pd.testing.assert_frame_equal(fast.cells, slow.cells)


@pytest.mark.parametrize(("seed", "answered_share"), [(1, 1.0), (2, 0.8), (3, 0.0), (4, 0.97)])
def test_estimate_reviewed_matches_reference(seed: int, answered_share: float) -> None:
    sample = design.draw_audit_sample(random_cases(seed, 3000), DAY, design.AuditDesignConfig(daily_size=300))
    rng = np.random.default_rng(seed)
    flags = pd.array(rng.random(len(sample.tasks)) < 0.7, dtype="boolean")
    flags[rng.random(len(flags)) >= answered_share] = pd.NA  # unanswered or disputed: some cells left blind
    verdicts = pd.DataFrame({"event_id": sample.tasks["event_id"], "ai_correct": flags})
    for overrides in (("overridden",), ("overridden", "rejected"), ("no-such-action",)):
        _equal_estimates(estimation.estimate_reviewed(sample.frame, verdicts, 0.9, overrides),
                         reference.estimate_reviewed(sample.frame, verdicts, 0.9, overrides))


def test_estimate_reviewed_refuses_the_same_verdicts_as_the_reference() -> None:
    sample = design.draw_audit_sample(random_cases(5, 1000), DAY, design.AuditDesignConfig(daily_size=50))
    outside = sample.frame.loc[~sample.frame["selected"], "event_id"].iloc[:1]
    for ids, message in ((["nowhere"], "not among the day's ok cases"), (list(outside), "not in the audit sample")):
        verdicts = pd.DataFrame({"event_id": [*sample.tasks["event_id"].iloc[:3], *ids],
                                 "ai_correct": pd.array([True, False, None, True], dtype="boolean")})
        for function in (estimation.estimate_reviewed, reference.estimate_reviewed):
            with pytest.raises(ValueError, match=message):
                function(sample.frame, verdicts)


def test_phase_one_and_outbox_match_reference() -> None:
    cases = review_assets._design_inputs(random_cases(6, 3000))
    sample = design.draw_audit_sample(cases, DAY, design.AuditDesignConfig(daily_size=200, double_review_share=.3))
    pd.testing.assert_frame_equal(review_assets.phase_one(sample, cases), reference.phase_one(sample, cases))
    shuffled = cases.sample(frac=1.0, random_state=1)  # not in phase-one order: looked up by event_id
    pd.testing.assert_frame_equal(review_assets.phase_one(sample, shuffled), reference.phase_one(sample, shuffled))
    tasks = review_assets.task_rows(sample, DAY, dt.datetime(2026, 3, 3, tzinfo=dt.UTC))
    assert review_assets.outbox_lines(tasks) == reference.outbox_lines(tasks)
    assert review_assets.outbox_lines(tasks.iloc[0:0]) == reference.outbox_lines(tasks.iloc[0:0]) == b""


def test_day_vocabulary_matches_reference() -> None:
    cases = random_cases(10, 4000)
    cases.loc[cases.index[:50], "system"] = None  # a case of no system adds to none
    cases.loc[cases.index[50:60], "ai_output"] = ""  # an empty output is not a label
    cases.loc[cases.index[60:70], "system"] = "audit_only"
    for configured in ({}, {"routing": ["a", "b"]}):
        assert inbox.day_vocabulary(cases, configured) == reference.day_vocabulary(cases, configured)
    categories = cases.astype({"system": "category", "ai_output": "category"}).drop(columns=["ground_truth"])
    assert inbox.day_vocabulary(categories, {}) == reference.day_vocabulary(categories, {})
    assert list(inbox.day_vocabulary(cases, {})) == ["audit_only", "routing", "triage"]


def test_selected_tasks_match_reference() -> None:
    cases = review_assets._design_inputs(random_cases(11, 3000))
    sample = design.draw_audit_sample(cases, DAY, design.AuditDesignConfig(daily_size=200))
    first = review_assets.phase_one(sample, cases)
    for given in (cases, cases.sample(frac=1.0, random_state=2)):  # in phase-one order, and shuffled
        fast = review_assets.selected_tasks(first, given, DAY)
        pd.testing.assert_frame_equal(fast, reference.selected_tasks(first, given, DAY))
        assert len(fast) == len(sample.tasks) and fast["ai_output"].notna().any()
