"""The demo's reply drafts (eval_pipelines.demo.replies): same tickets, triage unchanged, edits of the sizes the
labels grade, a truth the reviewers can give, and reviewer errors that stay within a system."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from eval_pipelines import textsim
from eval_pipelines.demo.generator import TRUTH_COLUMN, generate_day_frame
from eval_pipelines.demo.replies import REPLY_SYSTEM
from eval_pipelines.demo.reviewers import answer_day

DAY = date(2026, 10, 3)


def test_replies_answer_the_same_tickets_and_leave_triage_unchanged() -> None:
    plain = generate_day_frame(DAY, 800, 5, with_truth=True)
    both = generate_day_frame(DAY, 800, 5, with_truth=True, reply_share=0.25)
    again = generate_day_frame(DAY, 800, 5, with_truth=True, reply_share=0.25)
    pd.testing.assert_frame_equal(both, again)  # deterministic
    triage = both[both["system"] == "support_triage"].reset_index(drop=True)
    pd.testing.assert_frame_equal(triage, plain)
    replies = both[both["system"] == REPLY_SYSTEM]
    assert len(replies) == 200
    assert list(both["timestamp"]) == sorted(both["timestamp"])
    tickets = plain.set_index("event_id").loc[replies["event_id"].str.removesuffix("-reply")]
    for column in ("input_text", "segment", "timestamp", "product", "language"):
        assert (replies[column].to_numpy() == tickets[column].to_numpy()).all(), column


def test_edit_sizes_and_truth() -> None:
    frame = generate_day_frame(DAY, 4000, 6, with_truth=True, reply_share=0.5)
    replies = frame[(frame["system"] == REPLY_SYSTEM) & (frame["status"] == "ok")]
    similarity = textsim.edit_similarity(replies["ai_output"].tolist(), replies["final_output"].tolist())
    action = replies["user_action"].to_numpy()
    assert (similarity[action == "accepted"] == 1.0).all()
    assert (similarity[action == "overridden"] < 0.5).all()
    edited = similarity[action == "edited"]
    light, heavy = np.mean(edited >= 0.85), np.mean((edited >= 0.5) & (edited < 0.85))
    assert 0.3 < light < 0.8 and 0.2 < heavy < 0.7  # both kinds of edit are common
    # The truth is the draft exactly when the draft was right: every lightly edited draft, no rewritten one.
    kept = (replies[TRUTH_COLUMN] == replies["ai_output"]).to_numpy()
    assert kept[(action == "edited")][edited >= 0.85].all()
    assert not kept[action == "overridden"].any()
    # Automation bias: some accepted drafts were not right.
    assert 0.0 < np.mean(~kept[action == "accepted"]) < 0.3


def test_a_reviewer_error_is_another_value_of_the_same_system() -> None:
    frame = generate_day_frame(DAY, 300, 8, with_truth=True, reply_share=0.5)
    truth = frame[["event_id", "system", TRUTH_COLUMN]]
    tasks = [{"event_id": e} for e in frame["event_id"]]
    records, errors, _ = answer_day(tasks, truth, DAY, error_rate=0.5, seed=1)
    assert errors > 100
    by_system = truth.groupby("system")[TRUTH_COLUMN].agg(set)
    system_of = dict(zip(truth["event_id"], truth["system"], strict=True))
    assert all(r["label"] in by_system[system_of[r["event_id"]]] for r in records)
