"""Edit similarity, retention and the text scorers against hand-computed fixtures and the libraries' own results."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rouge_score import rouge_scorer

from eval_pipelines.textsim import edit_similarity, grade_edits, retained_share, rouge_l, token_f1, words


def test_words_are_unicode_letters_and_digits_lower_cased() -> None:
    assert words("Hello, World! Order #42") == ["hello", "world", "order", "42"]
    assert words("Grüße aus Köln – 東京") == ["grüße", "aus", "köln", "東京"]
    assert words(None) == [] and words("") == []


def test_edit_similarity_by_hand() -> None:
    # kitten -> sitting: Levenshtein 3, longer text 7 characters.
    got = edit_similarity(["kitten", "same", "", "abc", None], ["sitting", "same", "", "", "x"])
    assert got[0] == pytest.approx(1 - 3 / 7)
    assert got[1] == 1.0 and got[2] == 1.0  # identical; two empty texts are identical
    assert got[3] == 0.0  # everything deleted
    assert np.isnan(got[4])


def test_edit_similarity_equals_a_plain_levenshtein() -> None:
    def levenshtein(a: str, b: str) -> int:
        row = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            prev, row[0] = row[0], i
            for j, cb in enumerate(b, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
        return row[-1]

    rng = random.Random(3)
    a = ["".join(rng.choice("abcde ") for _ in range(rng.randint(0, 30))) for _ in range(200)]
    b = ["".join(rng.choice("abcde ") for _ in range(rng.randint(1, 30))) for _ in range(200)]
    expected = [1 - levenshtein(x, y) / max(len(x), len(y)) for x, y in zip(a, b, strict=True)]
    assert edit_similarity(a, b) == pytest.approx(expected)


def test_retained_share_by_hand() -> None:
    ai = ["Thanks for reaching out, your refund is on its way", "Please restart the router", "ok", None, "!!!"]
    final = ["Thanks for reaching out! The refund is on its way today", "Call us", "ok then", "x", "fine"]
    got = retained_share(ai, final)
    # Ten AI words; "thanks for reaching out" + "refund is on its way" = 9 kept in order ("your" dropped).
    assert got[0] == pytest.approx(9 / 10)
    assert got[1] == 0.0  # nothing of the draft survived
    assert got[2] == 1.0  # the draft kept whole, words added after it
    assert np.isnan(got[3]) and np.isnan(got[4])  # no AI text; an AI text without words


def test_rouge_l_equals_googles_rouge_score_on_ascii() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = random.Random(5)
    vocabulary = ["the", "refund", "is", "on", "its", "way", "please", "restart", "router", "order", "42"]
    preds = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 15))) for _ in range(300)]
    refs = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 15))) for _ in range(300)]
    preds[0], refs[0] = "The cat, sat!", "the cat was sat"
    expected = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(preds, refs, strict=True)]
    assert rouge_l(preds, refs) == pytest.approx(expected)
    assert rouge_l(["the cat sat"], ["the cat was sat"])[0] == pytest.approx(2 * 0.75 * 1.0 / 1.75)


def test_token_f1_is_the_multiset_overlap() -> None:
    got = token_f1(["the the cat", "", "dog", "a b", None], ["the cat cat", "", "", "c d", "x"])
    # overlap {the: 1, cat: 1} = 2 of 3 on both sides.
    assert got[0] == pytest.approx(2 / 3)
    assert got[1] == 1.0 and got[2] == 0.0 and got[3] == 0.0
    assert np.isnan(got[4])


def test_edits_are_graded_by_the_thresholds() -> None:
    grades = grade_edits(np.array([1.0, 0.9, 0.89, 0.5, 0.49, np.nan]), 0.9, 0.5)
    assert list(grades) == ["correct", "correct", "partly_wrong", "partly_wrong", "wrong", None]
    with pytest.raises(ValueError, match="heavy_edit_at_least"):
        grade_edits(np.array([0.5]), 0.4, 0.6)


def test_unequal_lengths_are_refused() -> None:
    for function in (edit_similarity, retained_share, rouge_l, token_f1):
        with pytest.raises(ValueError, match="equal count"):
            function(["a"], ["a", "b"])


def test_the_text_scorers_score_a_replayed_frame() -> None:
    import pandas as pd

    from eval_pipelines.scoring.scorers import KNOWN_WRONG_NORMALISED, KNOWN_WRONG_OUTPUT, score_frame, traits
    from eval_pipelines.scoring.settings import ScorerConfig

    frame = pd.DataFrame({
        "label": ["the refund is on its way", "restart the router", None, None, "hello"],
        "output": ["your refund is on its way", None, "sorry, no refund", "anything else", "hello"],
        "status": ["ok", "error", "ok", "ok", "ok"],
        KNOWN_WRONG_OUTPUT: [None, None, "sorry, no refund", "sorry, no refund", None],
        KNOWN_WRONG_NORMALISED: [False, False, True, True, False],
    })
    configs = [ScorerConfig(name=kind, kind=kind) for kind in ("edit_similarity", "token_f1", "rouge_l")]
    scores = score_frame(frame, configs)
    for config in configs:
        assert traits(config).higher_is_better and not traits(config).binary
        values = scores[config.name]
        assert values[1] == 0.0  # a failed call on a labeled case
        assert values[2] == 0.0  # the known-wrong output itself
        assert np.isnan(values[3])  # another output on a known error: its right answer is unknown
        assert values[4] == 1.0
    assert scores["edit_similarity"][0] == pytest.approx(edit_similarity([frame.output[0]], [frame.label[0]])[0])
    assert scores["rouge_l"][0] == pytest.approx(5 / 6)  # LCS 5 of 6 words on both sides
    assert scores["token_f1"][0] == pytest.approx(5 / 6)
