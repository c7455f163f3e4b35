"""Free-text systems: the edit signal in labeled_cases and edits graded by their size (issue 18 item 2)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.labeling.labels import TextGrading, derive_labels
from eval_pipelines.textsim import edit_similarity, retained_share

DRAFT = "Thanks for reaching out. Your refund was issued today and should arrive within five days."


def _events() -> pd.DataFrame:
    light = DRAFT.replace("five", "5")
    heavy = "Thanks for reaching out. Your refund was issued; it can take up to ten business days to arrive."
    rewrite = "Please call our billing line."
    rows = [
        ("reply_drafts", DRAFT, "accepted", None),
        ("reply_drafts", DRAFT, "edited", light),
        ("reply_drafts", DRAFT, "edited", heavy),
        ("reply_drafts", DRAFT, "edited", rewrite),
        ("reply_drafts", DRAFT, "overridden", rewrite),
        ("reply_drafts", DRAFT, "ignored", None),
        ("reply_drafts", DRAFT, "edited", None),  # an edit that recorded no text: a known error
        ("support_triage", "billing/high", "edited", "billing/low"),  # a label system keeps exact semantics
    ]
    frame = pd.DataFrame(rows, columns=["system", "ai_output", "user_action", "final_output"])
    frame["status"] = "ok"
    return frame


def test_text_edits_carry_their_similarity_and_are_graded_by_it() -> None:
    events = _events()
    cases = derive_labels(events, 0.5, 120, {"reply_drafts": TextGrading(0.9, 0.5)})
    finals = events["final_output"].tolist()
    expected_similarity = edit_similarity([DRAFT] * 3, finals[1:4])
    assert cases["edit_similarity"].iloc[1:4].to_numpy() == pytest.approx(expected_similarity)
    assert cases["retained_share"].iloc[1:4].to_numpy() == pytest.approx(retained_share([DRAFT] * 3, finals[1:4]))
    assert expected_similarity[0] >= 0.9 > expected_similarity[1] >= 0.5 > expected_similarity[2]  # the fixture
    assert cases["edit_similarity"].iloc[0] == 1.0 and cases["retained_share"].iloc[0] == 1.0  # accepted whole
    assert list(cases["correctness"]) == ["correct", "correct", "partly_wrong", "wrong", "wrong", "unknown",
                                          "partly_wrong", "partly_wrong"]
    assert list(cases["ai_correct"].astype("object")) == [True, True, False, False, False, pd.NA, False, False]
    assert not np.isnan(cases["edit_similarity"].iloc[4])  # an override has a size too, its verdict stays wrong
    assert np.isnan(cases["edit_similarity"].iloc[5]) and np.isnan(cases["edit_similarity"].iloc[6])
    assert np.isnan(cases["edit_similarity"].iloc[7])  # label system: no edit signal


def test_without_text_systems_nothing_changes() -> None:
    events = _events()
    plain = derive_labels(events, 0.5, 120)
    assert plain["edit_similarity"].isna().all() and plain["retained_share"].isna().all()
    assert plain["correctness"].iloc[1] == "partly_wrong"  # exact semantics: any edit is partly wrong


def test_the_grading_thresholds_are_validated_with_their_path() -> None:
    settings = parse_settings({"labeling": {"systems": {"reply_drafts": {"output_kind": "text"}}}})
    assert settings.labeling.text_systems() == {"reply_drafts": TextGrading(0.9, 0.5)}
    with pytest.raises(ConfigError, match=re.escape("labeling.systems.reply_drafts")):
        parse_settings({"labeling": {"systems": {"reply_drafts": {"output_kind": "text", "light_edit_at_least": 0.4,
                                                                  "heavy_edit_at_least": 0.6}}}})
    with pytest.raises(ConfigError, match="output_kind"):
        parse_settings({"labeling": {"systems": {"reply_drafts": {"output_kind": "prose"}}}})
