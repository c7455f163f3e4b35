"""Reviewed accepted-but-wrong cases enter the edge-case library as their own failure mode, with the reviewed label."""

from __future__ import annotations

import pandas as pd

from eval_pipelines.edge_cases.library import ACCEPTED_BUT_WRONG, empty_entries, merge_day, reviewed_mistakes
from eval_pipelines_tests.test_edge_case_library import AT, CONFIG, PARCEL, REFUND, hand_day


def accepted_day() -> pd.DataFrame:
    day = hand_day("2026-10-02", [
        ("a1", "08:00", REFUND, 0.95, set()),  # accepted: implicitly right, the rules see nothing
        ("a2", "08:10", REFUND.upper(), 0.97, set()),  # accepted, near-duplicate of a1
        ("a3", "09:00", PARCEL, 0.92, set()),  # accepted, reviewed right
        ("a4", "10:00", PARCEL, 0.60, set()),  # accepted, not audited
        ("o1", "11:00", REFUND, 0.95, {"override"}),  # overridden, found wrong: the rules' own mode
    ])
    # labeling's implicit label of an accepted case is its own output
    accepted = day["user_action"] == "accepted"
    day.loc[accepted, "label"] = day.loc[accepted, "ai_output"]
    day.loc[accepted, "correctness"] = "right"
    return day


REVIEWED = pd.DataFrame({"event_id": ["a1", "a2", "a3", "o1", "x9"],
                         "ai_correct": pd.array([False, False, True, False, None], dtype="boolean"),
                         "reviewed_label": ["refund/high", "refund/high", "billing/low", "refund/high", None]})


def test_an_accepted_case_the_reviewers_found_wrong_is_its_own_failure_mode_with_the_reviewed_label():
    day = accepted_day()
    without = merge_day(empty_entries(), day, "2026-10-02", CONFIG, "run-1", AT)
    assert ACCEPTED_BUT_WRONG not in set(without.entries["failure_mode"])  # invisible to the rules
    merge = merge_day(empty_entries(), day, "2026-10-02", CONFIG, "run-1", AT, reviewed=REVIEWED)
    lib = merge.entries.set_index("representative_event_id")
    silent = lib[lib["failure_mode"] == ACCEPTED_BUT_WRONG]
    assert list(silent.index) == ["a1"]  # a1 and a2 deduplicated into one entry, a3 (right) and a4 (unaudited) out
    assert silent.loc["a1", "occurrences"] == 2
    assert silent.loc["a1", "expected_output"] == "refund/high" != silent.loc["a1", "ai_output"]
    assert silent.loc["a1", "correctness"] == "wrong"
    # the overridden case keeps the rules' mode (only accepted cases are silent errors)
    assert lib.loc["o1", "failure_mode"] == without.entries.set_index("representative_event_id").loc[
        "o1", "failure_mode"]
    assert merge.stats["failing_cases"] == without.stats["failing_cases"] + 2
    # merging the same day with the same verdicts again gives the same library (idempotent)
    again = merge_day(empty_entries(), day, "2026-10-02", CONFIG, "run-1", AT, reviewed=REVIEWED)
    pd.testing.assert_frame_equal(again.entries, merge.entries)


def test_reviewed_mistakes_touch_only_accepted_cases_with_a_wrong_verdict():
    day = accepted_day()
    cases, mask = reviewed_mistakes(day, REVIEWED)
    assert list(day.loc[mask, "event_id"]) == ["a1", "a2"]
    assert list(cases.loc[~mask, "label"]) == list(day.loc[~mask, "label"])  # nothing else relabelled
    assert reviewed_mistakes(day, None)[1].sum() == 0
