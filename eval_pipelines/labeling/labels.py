"""Implicit labels, correctness and failure-mode tags for canonical events.

Most production decisions never get an authoritative outcome, but the human in the loop leaves one behind: what
they accepted, or what they changed the recommendation into. ``derive_labels`` turns that trail (and ground truth,
when the business has it) into a label per event, a verdict on the AI output, and boolean failure-mode tags that
the scores, KPIs, edge-case library and eval sets all slice by. It is a pure function over a DataFrame: no I/O,
no dagster, fully vectorised (about 0.4 s per million rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from eval_pipelines import textsim

LABELED_CASES_ASSET = "labeled_cases"
"""The asset (and lake folder) holding labeled cases: what every evaluation domain reads."""

FAILURE_TAGS: tuple[str, ...] = (
    "override",
    "edit",
    "reject",
    "error",
    "timeout",
    "low_confidence",
    "slow",
    "compliance",
    "complaint",
    "escalation",
)
"""Failure-mode tag names, in the order they appear in ``failure_tags`` and as ``tag_<name>`` columns."""

TAG_COLUMNS: tuple[str, ...] = tuple(f"tag_{tag}" for tag in FAILURE_TAGS)

LABEL_COLUMNS: tuple[str, ...] = (
    "label",
    "label_source",
    "is_labeled",
    "ai_correct",
    "correctness",
    *TAG_COLUMNS,
    "failure_tags",
    "n_failure_tags",
    "edit_similarity",
    "retained_share",
)
"""Columns ``derive_labels`` appends (or overwrites), in order."""


@dataclass(frozen=True)
class TextGrading:
    """How an edit of a free-text output grades the AI's draft (``labeling.systems.<name>``, output_kind text)."""

    light_edit_at_least: float = 0.9
    heavy_edit_at_least: float = 0.5

CORRECTNESS_VALUES: tuple[str, ...] = ("correct", "partly_wrong", "wrong", "unknown")
LABEL_SOURCES: tuple[str, ...] = ("ground_truth", "human_action")

# Columns this module cannot do without; the optional ones are treated as all-null when absent.
_REQUIRED_INPUTS: tuple[str, ...] = ("ai_output", "status")

# pandas' default ``str`` dtype, pinned to pyarrow storage so the string work runs in Arrow kernels.
_STR = pd.StringDtype(storage="pyarrow", na_value=np.nan)

# Every possible tag combination, as its joined string, indexed by the combination's bitmask (bit j = FAILURE_TAGS[j]).
# 2**10 = 1024 short strings built once; per row the joined string is then a single gather by bitmask, instead of
# ten string concatenations over the whole column.
_JOINED_TAGS: pa.Array = pa.array(
    [
        "|".join(tag for bit, tag in enumerate(FAILURE_TAGS) if code >> bit & 1)
        for code in range(1 << len(FAILURE_TAGS))
    ],
    type=pa.large_string(),
)
_TAG_BITS = np.left_shift(1, np.arange(len(FAILURE_TAGS), dtype=np.int64))


def _text(events: pd.DataFrame, name: str) -> pd.Series:
    """Column as stripped ``str``; null, absent and blank values all become null (a blank label is no label)."""
    if name not in events.columns:
        return pd.Series(np.nan, index=events.index, dtype=_STR)
    values = events[name].astype(_STR).str.strip()
    return values.mask(values == "")


def _number(events: pd.DataFrame, name: str) -> np.ndarray:
    if name not in events.columns:
        return np.full(len(events), np.nan)
    return events[name].to_numpy(dtype="float64", na_value=np.nan)


def _flag(events: pd.DataFrame, name: str) -> np.ndarray:
    """Boolean column with null (and absent) read as False: an event nobody flagged is not flagged."""
    if name not in events.columns:
        return np.zeros(len(events), dtype=bool)
    return events[name].astype("boolean").fillna(False).to_numpy(dtype=bool)


def _pick(codes: np.ndarray, choices: Sequence[str] | pa.Array) -> pd.api.extensions.ExtensionArray:
    """``choices[codes]`` as a ``str`` array, code -1 giving null; one Arrow gather, no per-row Python."""
    table = choices if isinstance(choices, pa.Array) else pa.array(list(choices), type=pa.large_string())
    taken = table.take(pa.array(codes, mask=codes < 0))
    return pd.array(taken, dtype=_STR)


def derive_labels(events: pd.DataFrame, low_confidence_below: float, slow_decision_seconds: float,
                  text_systems: Mapping[str, TextGrading] | None = None) -> pd.DataFrame:
    """Add implicit labels, a correctness verdict and failure-mode tags to canonical events.

    ``events`` has the canonical columns (``eval_pipelines.ingestion.contract``); optional ones may be all-null or
    absent. The thresholds are ``LabelingConfig.low_confidence_below`` and ``slow_decision_seconds``. Returns a new
    frame (``events`` is not modified) with every input column plus ``LABEL_COLUMNS``, overwriting any of those
    already present so re-labeling a labeled frame is safe.

    Text values are compared after stripping surrounding whitespace, and a blank value counts as null. Outputs
    are opaque strings (``"<category>/<priority>"`` here, but nothing relies on that): equality is exact.

    Columns added:

    - ``label`` (``str``, nullable): the implicit label, stripped: the correct answer when one is known. Ground
      truth wins when present. Otherwise the human's decision: ``accepted`` → ``ai_output``; ``edited``,
      ``overridden``, ``rejected`` → ``final_output`` (null when that is null: we know the AI was not taken, not
      what was wanted); ``ignored`` or no action (no human in the loop) → null.
    - ``label_source`` (``str``, nullable): ``"ground_truth"``, ``"human_action"``, or null when unlabeled.
    - ``is_labeled`` (bool): the AI output has a known verdict, so the case counts in every accuracy denominator
      (KPIs, production scores, eval-set frames): ``label`` is not null, *or* the human edited, overrode or
      rejected the output without a ``final_output`` (a *known error*: ``label`` stays null because the right
      answer is unknown, but the AI was not right).
    - ``ai_correct`` (nullable ``boolean``): ``ai_output == label``, False on known errors; null when unlabeled.
      This is the exact-match score production metrics average.
    - ``correctness`` (``str``): the verdict on the AI output, first matching rule wins:

      1. ground truth present and equal to ``ai_output`` → ``"correct"``;
      2. ground truth present (and different) → ``"wrong"``;
      3. label from the human equal to ``ai_output`` → ``"correct"`` (every labeled ``accepted``, and an edit or
         override that ended where the AI started, e.g. a whitespace-only edit: the AI was right);
      4. ``edited`` → ``"partly_wrong"`` (the human kept the recommendation but had to fix it);
      5. ``overridden`` or ``rejected`` → ``"wrong"``, also when ``final_output`` is null;
      6. otherwise (``ignored``, no action, or ``accepted`` with a null ``ai_output``) → ``"unknown"``.

      So on labeled rows ``ai_correct`` is True exactly when ``correctness`` is ``"correct"``; ``correctness``
      adds the grade of wrongness (an edit without a final output is ``partly_wrong``, ``ai_correct`` False).
    - ``tag_<name>`` (bool), one per ``FAILURE_TAGS`` entry: ``override``/``edit``/``reject`` — ``user_action`` is
      ``overridden``/``edited``/``rejected``; ``error``/``timeout`` — ``status`` is that value; ``low_confidence``
      — ``confidence < low_confidence_below``; ``slow`` — ``decision_seconds > slow_decision_seconds``;
      ``compliance``/``complaint``/``escalation`` — ``compliance_flag``/``complaint``/``escalation`` is True.
      Null inputs never raise a tag: an unknown confidence is not a low one.
    - ``failure_tags`` (``str``): the raised tags joined by ``"|"`` in ``FAILURE_TAGS`` order, e.g.
      ``"override|low_confidence"``; ``""`` when none.
    - ``n_failure_tags`` (int64): how many tags are raised.
    - ``edit_similarity``, ``retained_share`` (float64, NaN for label systems): for the systems in
      ``text_systems`` (free-text outputs), how close the final text is to the AI's draft and the share of the
      draft's words kept (:mod:`eval_pipelines.textsim`), where the human accepted (1.0), edited or overrode it
      with a final text. For those systems an edit is graded by its size instead of rule 4: similarity ≥
      ``light_edit_at_least`` → ``"correct"`` (``ai_correct`` True: the draft was good enough to send with
      touches), ≥ ``heavy_edit_at_least`` → ``"partly_wrong"``, below → ``"wrong"`` (a rewrite). Ground truth, an
      override and a rejection keep their rules (exact equality is rarely what ground truth of a text means: map
      it to a label system if that is what you have).
    """
    missing = [name for name in _REQUIRED_INPUTS if name not in events.columns]
    if missing:
        raise KeyError(f"derive_labels: events lack required canonical column(s) {missing}")

    ai_output = _text(events, "ai_output")
    final_output = _text(events, "final_output")
    ground_truth = _text(events, "ground_truth")
    action = _text(events, "user_action")
    status = _text(events, "status")

    accepted = (action == "accepted").to_numpy(dtype=bool)
    edited = (action == "edited").to_numpy(dtype=bool)
    overridden = (action == "overridden").to_numpy(dtype=bool)
    rejected = (action == "rejected").to_numpy(dtype=bool)
    has_ground_truth = ground_truth.notna().to_numpy(dtype=bool)

    changed = edited | overridden | rejected
    label = final_output.where(changed)
    label = label.mask(accepted, ai_output)
    label = label.mask(has_ground_truth, ground_truth)
    has_label = label.notna().to_numpy(dtype=bool)
    # A human who edited, overrode or rejected the output without recording what they wanted still told us the
    # AI was not right: a known error with no known answer. Leaving it out of the denominator would make a system
    # look better the more of its outputs are thrown away unrecorded.
    known_error = changed & ~has_label
    is_labeled = has_label | known_error
    # str arrays compare to a numpy bool array; a null on either side is "not equal".
    matches = np.asarray(ai_output.array == label.array, dtype=bool)
    ai_correct = pd.arrays.BooleanArray(matches, mask=~is_labeled)

    source_codes = np.select([has_ground_truth, is_labeled], [0, 1], default=-1)
    correctness_codes = np.select(
        [has_ground_truth & matches, has_ground_truth, matches, edited, overridden | rejected],
        [0, 2, 0, 1, 2],
        default=3,
    )
    similarity = np.full(len(events), np.nan)
    retained = np.full(len(events), np.nan)
    if text_systems:
        system = _text(events, "system")
        graded_edit = np.zeros(len(events), dtype=bool)
        for name, grading in text_systems.items():
            rows = (system == name).to_numpy(dtype=bool)
            if not rows.any():
                continue
            compared = rows & (edited | overridden) & final_output.notna().to_numpy(dtype=bool) \
                & ai_output.notna().to_numpy(dtype=bool)
            at = np.flatnonzero(compared)
            drafts = ai_output.to_numpy(dtype=object, na_value=None)[at].tolist()
            finals = final_output.to_numpy(dtype=object, na_value=None)[at].tolist()
            similarity[at] = textsim.edit_similarity(drafts, finals)
            retained[at] = textsim.retained_share(drafts, finals)
            kept_whole = rows & accepted & ai_output.notna().to_numpy(dtype=bool)
            similarity[kept_whole] = 1.0
            retained[kept_whole] = 1.0
            grade_at = np.flatnonzero(compared & edited & ~has_ground_truth)
            grades = textsim.grade_edits(similarity[grade_at], grading.light_edit_at_least,
                                         grading.heavy_edit_at_least)
            correctness_codes[grade_at] = np.select([grades == "correct", grades == "partly_wrong"], [0, 1], 2)
            graded_edit[grade_at] = True
        # ai_correct follows the graded verdict for text edits: a light edit left the draft right.
        matches = np.where(graded_edit, correctness_codes == 0, matches)
        ai_correct = pd.arrays.BooleanArray(matches, mask=~is_labeled)

    confidence = _number(events, "confidence")
    decision_seconds = _number(events, "decision_seconds")
    tags = np.column_stack(
        [
            overridden,
            edited,
            rejected,
            (status == "error").to_numpy(dtype=bool),
            (status == "timeout").to_numpy(dtype=bool),
            confidence < low_confidence_below,  # NaN compares False
            decision_seconds > slow_decision_seconds,
            _flag(events, "compliance_flag"),
            _flag(events, "complaint"),
            _flag(events, "escalation"),
        ]
    )
    tag_codes = tags.astype(np.int64) @ _TAG_BITS

    columns: dict[str, object] = {
        "label": label.array,
        "label_source": _pick(source_codes, LABEL_SOURCES),
        "is_labeled": is_labeled,
        "ai_correct": ai_correct,
        "correctness": _pick(correctness_codes, CORRECTNESS_VALUES),
        **{column: tags[:, j] for j, column in enumerate(TAG_COLUMNS)},
        "failure_tags": _pick(tag_codes, _JOINED_TAGS),
        "n_failure_tags": tags.sum(axis=1, dtype=np.int64),
        "edit_similarity": similarity,
        "retained_share": retained,
    }
    return events.assign(**columns)
