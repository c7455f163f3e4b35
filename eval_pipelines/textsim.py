"""How close two texts are: the edit signal of free-text outputs and the text scorers, vectorised with RapidFuzz.

For a system whose output is free text (a drafted reply, a summary), "edited" is the common case and the size of
the edit is the signal. Definitions (all in [0, 1], NaN where a text is missing):

- ``edit_similarity(a, b)``: normalised Levenshtein similarity of the two texts as characters,
  ``1 - lev(a, b) / max(|a|, |b|)`` (1 for two empty texts) — RapidFuzz's ``Levenshtein.normalized_similarity``;
- ``retained_share(ai, final)``: the share of the AI's words kept, in order, in the final text:
  ``LCS(words(ai), words(final)) / |words(ai)|`` (the longest common subsequence of words, RapidFuzz's
  ``LCSseq``), the text analogue of "how much of the suggestion survived"; NaN when the AI text has no words;
- ``token_f1(pred, ref)``: the harmonic mean of precision and recall of the bag of words (SQuAD's F1: the
  multiset overlap), 1 when both are empty;
- ``rouge_l(pred, ref)``: ROUGE-L F1 (Lin 2004), ``2PR / (P + R)`` with ``P = LCS / |pred|``,
  ``R = LCS / |ref|`` over words; equal to Google's ``rouge_score`` (``rougeL``, no stemming) on ASCII text.

Words: maximal runs of Unicode letters and digits, lower-cased (``rouge_score`` keeps ASCII ``[a-z0-9]`` only and
drops every other letter; this keeps them, so non-English text has words too).

Nothing here imports dagster.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import LCSseq, Levenshtein
from rapidfuzz.process import cpdist

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

Texts = Sequence[str | None]


def words(text: str | None) -> list[str]:
    """The lower-cased words of a text (letters and digits of any script); [] for a missing text."""
    return _WORD.findall(text.lower()) if isinstance(text, str) else []


def _present(texts: Texts) -> np.ndarray:
    return np.fromiter((isinstance(t, str) for t in texts), dtype=bool, count=len(texts))


def _pairwise(left: Sequence, right: Sequence, scorer, mask: np.ndarray) -> np.ndarray:
    """``scorer`` on each pair where ``mask`` holds (cpdist: element-wise, in C), NaN elsewhere."""
    out = np.full(len(left), np.nan)
    rows = np.flatnonzero(mask)
    if len(rows):
        out[rows] = cpdist([left[i] for i in rows], [right[i] for i in rows], scorer=scorer, dtype=np.float64,
                           workers=1)
    return out


def edit_similarity(a: Texts, b: Texts) -> np.ndarray:
    """Normalised Levenshtein similarity per pair of texts; NaN where either text is missing."""
    if len(a) != len(b):
        raise ValueError(f"edit_similarity needs texts of equal count, got {len(a)} and {len(b)}")
    similarity = _pairwise(a, b, Levenshtein.normalized_similarity, _present(a) & _present(b))
    both_empty = np.fromiter((x == "" and y == "" for x, y in zip(a, b, strict=True)), dtype=bool, count=len(a))
    similarity[both_empty] = 1.0
    return similarity


def _lcs_lengths(left: list[list[str]], right: list[list[str]], mask: np.ndarray) -> np.ndarray:
    return _pairwise(left, right, LCSseq.similarity, mask & np.fromiter(
        (bool(x) and bool(y) for x, y in zip(left, right, strict=True)), dtype=bool, count=len(left)))


def retained_share(ai_text: Texts, final_text: Texts) -> np.ndarray:
    """Share of the AI's words kept, in order, in the final text; NaN without an AI text with words or a final."""
    if len(ai_text) != len(final_text):
        raise ValueError(f"retained_share needs texts of equal count, got {len(ai_text)} and {len(final_text)}")
    ai_words = [words(t) for t in ai_text]
    final_words = [words(t) for t in final_text]
    present = _present(ai_text) & _present(final_text)
    lengths = np.fromiter((len(w) for w in ai_words), dtype=np.float64, count=len(ai_words))
    common = np.nan_to_num(_lcs_lengths(ai_words, final_words, present))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present & (lengths > 0), common / lengths, np.nan)


def rouge_l(prediction: Texts, reference: Texts) -> np.ndarray:
    """ROUGE-L F1 over words per pair; NaN where either text is missing, 0 when one side has no words."""
    if len(prediction) != len(reference):
        raise ValueError(f"rouge_l needs texts of equal count, got {len(prediction)} and {len(reference)}")
    pred_words = [words(t) for t in prediction]
    ref_words = [words(t) for t in reference]
    present = _present(prediction) & _present(reference)
    common = np.nan_to_num(_lcs_lengths(pred_words, ref_words, present))
    pred_n = np.fromiter((len(w) for w in pred_words), dtype=np.float64, count=len(pred_words))
    ref_n = np.fromiter((len(w) for w in ref_words), dtype=np.float64, count=len(ref_words))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_n > 0, common / pred_n, 0.0)
        recall = np.where(ref_n > 0, common / ref_n, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return np.where(present, f1, np.nan)


def token_f1(prediction: Texts, reference: Texts) -> np.ndarray:
    """Bag-of-words F1 per pair (SQuAD); 1 when both have no words, 0 when only one has; NaN if one is missing."""
    if len(prediction) != len(reference):
        raise ValueError(f"token_f1 needs texts of equal count, got {len(prediction)} and {len(reference)}")
    out = np.full(len(prediction), np.nan)
    for i, (pred, ref) in enumerate(zip(prediction, reference, strict=True)):
        if not (isinstance(pred, str) and isinstance(ref, str)):
            continue
        p, r = Counter(words(pred)), Counter(words(ref))
        if not p and not r:
            out[i] = 1.0
            continue
        overlap = sum((p & r).values())
        if overlap == 0:
            out[i] = 0.0
            continue
        precision, recall = overlap / sum(p.values()), overlap / sum(r.values())
        out[i] = 2 * precision * recall / (precision + recall)
    return out


EDIT_GRADES = ("correct", "partly_wrong", "wrong")


def grade_edits(similarity: np.ndarray, light_edit_at_least: float = 0.9, heavy_edit_at_least: float = 0.5
                ) -> np.ndarray:
    """The correctness an edit implies for the AI's draft: a light edit (similarity ≥ ``light_edit_at_least``)
    leaves it ``correct``, a heavy one (≥ ``heavy_edit_at_least``) ``partly_wrong``, a rewrite ``wrong``; None
    where the similarity is unknown."""
    if not 0.0 <= heavy_edit_at_least <= light_edit_at_least <= 1.0:
        raise ValueError("need 0 <= heavy_edit_at_least <= light_edit_at_least <= 1, got "
                         f"{heavy_edit_at_least} and {light_edit_at_least}")
    similarity = np.asarray(similarity, dtype=np.float64)
    grades = np.where(similarity >= light_edit_at_least, EDIT_GRADES[0],
                      np.where(similarity >= heavy_edit_at_least, EDIT_GRADES[1], EDIT_GRADES[2])).astype(object)
    grades[np.isnan(similarity)] = None
    return grades
