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


LIGHT = {"reply": 0.9}


def _replies(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["event_id", "reviewer", "label"]).assign(system="reply")


def _light(name: str) -> str:
    """A reviewer's own light edit of the draft: a different text per reviewer, a right draft for everyone."""
    return f"{DRAFT}, {name}"


def test_the_fixture_texts_are_on_the_sides_of_the_threshold_they_stand_for() -> None:
    from eval_pipelines import textsim

    similarity = textsim.edit_similarity([DRAFT] * 4, [_light("ann"), _light("bob"), "we cannot refund this",
                                                       "no refund is possible here"])
    assert (similarity[:2] >= LIGHT["reply"]).all() and (similarity[2:] < LIGHT["reply"]).all()


def test_senior_mode_takes_the_senior_binary_verdict_and_their_text() -> None:
    verdicts = _replies([("e1", "ann", _light("ann")), ("e1", "bob", "we cannot refund this"),
                         ("e1", "carol", "no refund is possible here"),
                         ("e2", "ann", _light("ann")), ("e2", "bob", _light("bob"))])
    senior = adjudicate_reviews(_tasks(), verdicts, "senior", "ann", LIGHT)
    assert list(senior["adjudication"]) == ["senior", "senior"]
    assert senior.loc[0, "ai_correct"] == True and senior.loc[0, "reviewed_label"] == _light("ann")  # noqa: E712
    # The senior outvotes two corrections; under majority the two corrections win, with the first by name.
    majority = adjudicate_reviews(_tasks(), verdicts, "majority", None, LIGHT)
    assert majority.loc[0, "adjudication"] == "majority" and majority.loc[0, "ai_correct"] == False  # noqa: E712
    assert majority.loc[0, "reviewed_label"] == "we cannot refund this"
    # On the winning side the senior's text is the reference, though not first by name.
    by_bob = adjudicate_reviews(_tasks(), verdicts, "senior", "bob", LIGHT)
    assert by_bob.loc[1, "reviewed_label"] == _light("bob") and by_bob.loc[1, "ai_correct"] == True  # noqa: E712
    assert by_bob.loc[0, "adjudication"] == "senior" and by_bob.loc[0, "reviewed_label"] == "we cannot refund this"


def test_senior_mode_without_the_senior_falls_back_to_majority_and_a_tie_is_disputed() -> None:
    verdicts = _replies([("e1", "ann", _light("ann")), ("e1", "bob", "we cannot refund this"),
                         ("e2", "ann", "we cannot refund this"), ("e2", "bob", "no refund is possible here")])
    found = adjudicate_reviews(_tasks(), verdicts, "senior", "carol", LIGHT)
    assert list(found["adjudication"]) == ["disputed", "majority"]
    assert bool(found.loc[0, "disputed"]) and pd.isna(found.loc[0, "ai_correct"])
    assert pd.isna(found.loc[0, "reviewed_label"])
    assert found.loc[1, "ai_correct"] == False and not bool(found.loc[1, "disputed"])  # noqa: E712


def test_disputed_mode_settles_only_unanimous_binary_verdicts() -> None:
    verdicts = _replies([("e1", "ann", _light("ann")), ("e1", "bob", _light("bob")),
                         ("e2", "ann", _light("ann")), ("e2", "bob", "we cannot refund this"),
                         ("e2", "carol", "no refund is possible here")])
    found = adjudicate_reviews(_tasks(), verdicts, "disputed", None, LIGHT)
    # Two different light edits are one verdict (the draft was right): unanimous, although the texts differ.
    assert found.loc[0, "adjudication"] == "majority" and found.loc[0, "ai_correct"] == True  # noqa: E712
    assert found.loc[0, "reviewed_label"] == _light("ann")
    # 2 against 1 is settled by majority, not by this mode.
    assert found.loc[1, "adjudication"] == "disputed" and pd.isna(found.loc[1, "ai_correct"])
    assert adjudicate_reviews(_tasks(), verdicts, "majority", None, LIGHT).loc[1, "adjudication"] == "majority"


def test_text_and_label_systems_in_one_day_keep_the_task_order() -> None:
    tasks = pd.concat([_tasks("clf").assign(event_id=["c1", "c2"], ai_output=["a", "b"]), _tasks()]).iloc[[0, 2, 1, 3]]
    verdicts = pd.concat([_replies([("e1", "ann", _light("ann")), ("e2", "ann", "we cannot refund this")]),
                          pd.DataFrame({"event_id": ["c1", "c2"], "reviewer": ["ann"] * 2, "system": ["clf"] * 2,
                                        "label": ["a", "a"]})], ignore_index=True)
    found = adjudicate_reviews(tasks, verdicts, light_edit_at_least=LIGHT)
    assert list(found["event_id"]) == ["c1", "e1", "c2", "e2"]
    assert list(found["ai_correct"]) == [True, True, False, False]
    assert list(found["reviewed_label"]) == ["a", _light("ann"), "a", "we cannot refund this"]
