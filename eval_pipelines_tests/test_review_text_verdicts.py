"""Free-text verdicts read as a binary verdict on the AI draft (issue 18)."""

import pandas as pd

from eval_pipelines.review.adjudication import adjudicate, adjudicate_reviews

DRAFT = "thanks for your message we will refund the order today"


def _tasks(system: str = "reply") -> pd.DataFrame:
    return pd.DataFrame({"event_id": ["e1", "e2"], "partition_date": ["2026-01-01"] * 2, "system": [system] * 2,
                         "stratum": ["s"] * 2, "inclusion_prob": [0.5, 0.5], "certainty": [False, False],
                         "ai_output": [DRAFT, DRAFT]})


def test_two_different_corrections_of_a_wrong_draft_agree_that_it_is_wrong() -> None:
    verdicts = pd.DataFrame({"event_id": ["e1", "e1", "e2"], "reviewer": ["ann", "bob", "ann"], "system": ["reply"] * 3,
                             "label": ["we cannot refund this", "no refund is possible here", DRAFT + "!"]})
    old = adjudicate(_tasks(), verdicts)
    assert bool(old.loc[0, "disputed"])  # the bias: a wrong draft dropped as disputed
    new = adjudicate_reviews(_tasks(), verdicts, light_edit_at_least={"reply": 0.9})
    assert not bool(new.loc[0, "disputed"]) and new.loc[0, "ai_correct"] == False  # noqa: E712
    assert new.loc[0, "reviewed_label"] == "we cannot refund this"  # first reviewer by name on the winning side
    assert new.loc[1, "ai_correct"] == True  # noqa: E712 - a light edit counts as right, as in labels.py


def test_label_systems_are_unchanged() -> None:
    verdicts = pd.DataFrame({"event_id": ["e1", "e1"], "reviewer": ["ann", "bob"], "label": ["a", "b"]})
    tasks = _tasks("clf")
    pd.testing.assert_frame_equal(adjudicate(tasks, verdicts),
                                  adjudicate_reviews(tasks, verdicts, light_edit_at_least={"reply": 0.9}))
