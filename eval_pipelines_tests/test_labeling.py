"""derive_labels: a hand-written fixture with the exact expected outputs per row, plus structural properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.ingestion.contract import CANONICAL_COLUMNS
from eval_pipelines.labeling.labels import FAILURE_TAGS, LABEL_COLUMNS, TAG_COLUMNS, derive_labels

LOW = 0.5  # LabelingConfig.low_confidence_below
SLOW = 120.0  # LabelingConfig.slow_decision_seconds

# Inputs: ai_output, status, user_action, final_output, ground_truth, confidence, decision_seconds,
#         compliance_flag, complaint, escalation
# Expected: label, label_source, ai_correct, correctness, failure_tags
N = None
CASES: dict[str, tuple[tuple, tuple]] = {
    "accepted": (
        ("billing/low", "ok", "accepted", "billing/low", N, 0.9, 10.0, False, False, False),
        ("billing/low", "human_action", True, "correct", ""),
    ),
    "edited": (
        ("billing/low", "ok", "edited", "billing/high", N, 0.7, 45.0, N, N, N),
        ("billing/high", "human_action", False, "partly_wrong", "edit"),
    ),
    "overridden_low_conf_slow": (
        ("tech/high", "ok", "overridden", "account/low", N, 0.3, 200.0, N, N, N),
        ("account/low", "human_action", False, "wrong", "override|low_confidence|slow"),
    ),
    "rejected_no_final": (  # a known error with no known answer: labeled (in every denominator), label null
        ("shipping/low", "ok", "rejected", N, N, 0.6, 30.0, N, N, N),
        (N, "human_action", False, "wrong", "reject"),
    ),
    "overridden_no_final": (
        ("shipping/low", "ok", "overridden", N, N, 0.6, 30.0, N, N, N),
        (N, "human_action", False, "wrong", "override"),
    ),
    "rejected_with_final": (
        ("shipping/low", "ok", "rejected", "billing/low", N, 0.6, 30.0, N, N, N),
        ("billing/low", "human_action", False, "wrong", "reject"),
    ),
    "ignored": (
        ("tech/low", "ok", "ignored", N, N, 0.8, N, N, N, N),
        (N, N, N, "unknown", ""),
    ),
    "no_human_null_conf": (
        ("tech/low", "ok", N, N, N, N, N, N, N, N),
        (N, N, N, "unknown", ""),
    ),
    "ground_truth_beats_accept": (
        ("billing/low", "ok", "accepted", "billing/low", "billing/high", 0.9, 5.0, N, N, N),
        ("billing/high", "ground_truth", False, "wrong", ""),
    ),
    "ground_truth_backs_ai_over_override": (
        ("tech/high", "ok", "overridden", "tech/low", "tech/high", 0.95, 20.0, N, N, N),
        ("tech/high", "ground_truth", True, "correct", "override"),
    ),
    "ground_truth_without_human": (
        ("account/low", "ok", N, N, "account/low", 0.4, N, N, N, N),
        ("account/low", "ground_truth", True, "correct", "low_confidence"),
    ),
    "ground_truth_on_ignored_disagrees": (
        ("account/low", "ok", "ignored", N, " account/high ", 0.6, 3.0, N, N, N),
        ("account/high", "ground_truth", False, "wrong", ""),
    ),
    "error_overridden": (
        ("fallback/none", "error", "overridden", "billing/low", N, 0.1, 60.0, N, N, N),
        ("billing/low", "human_action", False, "wrong", "override|error|low_confidence"),
    ),
    "timeout_no_human": (
        ("fallback/none", "timeout", N, N, N, N, N, N, N, N),
        (N, N, N, "unknown", "timeout"),
    ),
    "business_impact_flags": (
        ("billing/high", "ok", "accepted", "billing/high", N, 0.8, 30.0, True, True, True),
        ("billing/high", "human_action", True, "correct", "compliance|complaint|escalation"),
    ),
    "explicit_false_flags": (
        ("billing/high", "ok", "accepted", "billing/high", N, 0.8, 30.0, False, False, False),
        ("billing/high", "human_action", True, "correct", ""),
    ),
    "whitespace_only_edit": (
        ("billing/low", "ok", "edited", "  billing/low ", N, 0.8, 30.0, N, N, N),
        ("billing/low", "human_action", True, "correct", "edit"),
    ),
    "edited_no_final": (
        ("billing/low", "ok", "edited", N, N, 0.8, 30.0, N, True, N),
        (N, "human_action", False, "partly_wrong", "edit|complaint"),
    ),
    "thresholds_are_strict": (
        ("tech/low", "ok", "accepted", "tech/low", N, 0.5, 120.0, N, N, N),
        ("tech/low", "human_action", True, "correct", ""),
    ),
    "just_past_thresholds": (
        ("tech/low", "ok", "accepted", "tech/low", N, 0.49, 120.5, N, N, N),
        ("tech/low", "human_action", True, "correct", "low_confidence|slow"),
    ),
    "blank_ground_truth_is_none": (
        ("tech/low", "ok", "accepted", "tech/low", "   ", 0.9, 1.0, N, N, N),
        ("tech/low", "human_action", True, "correct", ""),
    ),
    "every_tag": (
        ("x/y", "error", "edited", "x/z", N, 0.0, 999.0, True, True, True),
        (
            "x/z",
            "human_action",
            False,
            "partly_wrong",
            "edit|error|low_confidence|slow|compliance|complaint|escalation",
        ),
    ),
}

INPUT_FIELDS = (
    "ai_output", "status", "user_action", "final_output", "ground_truth", "confidence", "decision_seconds",
    "compliance_flag", "complaint", "escalation",
)  # fmt: skip
STRING_FIELDS = (
    "event_id",
    "system",
    "model_version",
    "segment",
    "input_text",
    "ai_output",
    "status",
    "user_action",
    "final_output",
    "ground_truth",
)
FLAG_FIELDS = ("compliance_flag", "complaint", "escalation")


def _events(cases: dict[str, tuple[tuple, tuple]], string_dtype: object = "str") -> pd.DataFrame:
    """A canonical frame as ingestion produces it: every canonical column, strings as ``str``, flags ``boolean``."""
    rows = []
    for event_id, (inputs, _) in cases.items():
        row = dict(zip(INPUT_FIELDS, inputs, strict=True))
        row.update(
            event_id=event_id,
            timestamp=pd.Timestamp("2026-11-26T12:00:00Z"),
            system="triage",
            model_version="v3",
            segment="gold",
            input_text="please help",
            latency_ms=250.0,
            cost_usd=0.002,
        )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(CANONICAL_COLUMNS))
    for name in STRING_FIELDS:
        frame[name] = frame[name].astype(string_dtype)
    for name in FLAG_FIELDS:
        frame[name] = frame[name].astype("boolean")
    for name in ("confidence", "decision_seconds", "latency_ms", "cost_usd"):
        frame[name] = frame[name].astype("float64")
    return frame


def _values(series: pd.Series) -> list:
    """Python values with every null spelled None, so expectations can be written literally."""
    return [None if pd.isna(v) else v for v in series.astype(object)]


@pytest.fixture(params=["str", object], ids=["str", "object"])
def events(request: pytest.FixtureRequest) -> pd.DataFrame:
    return _events(CASES, request.param)


def test_fixture_covers_every_action_status_and_tag() -> None:
    actions = {inputs[2] for inputs, _ in CASES.values()}
    assert actions == {"accepted", "edited", "overridden", "rejected", "ignored", None}
    assert {inputs[1] for inputs, _ in CASES.values()} == {"ok", "error", "timeout"}
    raised = {tag for _, expected in CASES.values() for tag in expected[4].split("|") if tag}
    assert raised == set(FAILURE_TAGS)
    assert {expected[3] for _, expected in CASES.values()} == {"correct", "partly_wrong", "wrong", "unknown"}


def test_exact_outputs_per_row(events: pd.DataFrame) -> None:
    out = derive_labels(events, LOW, SLOW).set_index("event_id")
    for event_id, (_, (label, source, ai_correct, correctness, failure_tags)) in CASES.items():
        row = out.loc[event_id]
        got = {
            "label": None if pd.isna(row["label"]) else row["label"],
            "label_source": None if pd.isna(row["label_source"]) else row["label_source"],
            "is_labeled": row["is_labeled"],
            "ai_correct": None if pd.isna(row["ai_correct"]) else bool(row["ai_correct"]),
            "correctness": row["correctness"],
            "failure_tags": row["failure_tags"],
            "n_failure_tags": row["n_failure_tags"],
            "tags": {tag for tag in FAILURE_TAGS if row[f"tag_{tag}"]},
        }
        expected_tags = [tag for tag in failure_tags.split("|") if tag]
        want = {
            "label": label,
            "label_source": source,
            "is_labeled": ai_correct is not None,  # a verdict is known, with or without a label
            "ai_correct": ai_correct,
            "correctness": correctness,
            "failure_tags": failure_tags,
            "n_failure_tags": len(expected_tags),
            "tags": set(expected_tags),
        }
        assert got == want, event_id


def test_rejections_without_a_final_output_count_as_errors_in_the_accuracy_denominator() -> None:
    """Accuracy over the labeled cases must not improve when wrong outputs are rejected without a replacement."""
    rows = {
        "right": (("a", "ok", "accepted", "a", N, 0.9, 5.0, N, N, N), ()),
        "wrong_replaced": (("a", "ok", "overridden", "b", N, 0.9, 5.0, N, N, N), ()),
        "wrong_rejected": (("a", "ok", "rejected", N, N, 0.9, 5.0, N, N, N), ()),
        "wrong_overridden": (("a", "ok", "overridden", "  ", N, 0.9, 5.0, N, N, N), ()),  # blank = no final
    }
    out = derive_labels(_events(rows), LOW, SLOW)
    labeled = out[out["is_labeled"]]
    assert len(labeled) == 4
    assert labeled["ai_correct"].astype(float).mean() == 0.25
    assert out["label"].isna().sum() == 2  # no correct answer is invented for the unrecorded decisions


def test_output_columns_and_dtypes(events: pd.DataFrame) -> None:
    out = derive_labels(events, LOW, SLOW)
    assert list(out.columns) == list(events.columns) + list(LABEL_COLUMNS)
    assert tuple(f"tag_{tag}" for tag in FAILURE_TAGS) == TAG_COLUMNS
    for name in ("label", "label_source", "correctness", "failure_tags"):
        assert out[name].dtype == "str", name
    assert out["ai_correct"].dtype == "boolean"
    assert out["n_failure_tags"].dtype == np.int64
    for name in ("is_labeled", *TAG_COLUMNS):
        assert out[name].dtype == bool, name
    pd.testing.assert_frame_equal(out[list(events.columns)], events)  # input columns untouched


def test_input_frame_is_not_modified() -> None:
    events = _events(CASES)
    before = events.copy()
    derive_labels(events, LOW, SLOW)
    pd.testing.assert_frame_equal(events, before)


def test_relabeling_a_labeled_frame_is_stable() -> None:
    once = derive_labels(_events(CASES), LOW, SLOW)
    twice = derive_labels(once, LOW, SLOW)
    pd.testing.assert_frame_equal(twice, once)


def test_thresholds_come_from_the_arguments() -> None:
    out = derive_labels(_events(CASES), low_confidence_below=0.0, slow_decision_seconds=1000.0)
    assert not out["tag_low_confidence"].any()
    assert not out["tag_slow"].any()
    out = derive_labels(_events(CASES), low_confidence_below=1.0, slow_decision_seconds=0.5)
    confidence, seconds = out["confidence"], out["decision_seconds"]
    assert out["tag_low_confidence"].tolist() == (confidence.notna() & (confidence < 1.0)).tolist()
    assert out["tag_slow"].tolist() == seconds.notna().tolist()


@pytest.mark.parametrize("null", [None, np.nan], ids=["None", "nan"])
def test_optional_columns_all_null(null: object) -> None:
    events = _events(CASES)
    for name in (
        "user_action",
        "final_output",
        "ground_truth",
        "confidence",
        "decision_seconds",
        *FLAG_FIELDS,
        "input_text",
    ):
        events[name] = pd.Series([null] * len(events), dtype=object)
    out = derive_labels(events, LOW, SLOW)
    assert not out["is_labeled"].any()
    assert out["label"].isna().all() and out["label_source"].isna().all() and out["ai_correct"].isna().all()
    assert set(out["correctness"]) == {"unknown"}
    # only status can still raise a tag
    expected = ["error" if s == "error" else "timeout" if s == "timeout" else "" for s in events["status"]]
    assert out["failure_tags"].tolist() == expected


def test_optional_columns_absent_are_treated_as_null() -> None:
    events = _events(CASES)[["event_id", "ai_output", "status", "user_action", "final_output"]]
    out = derive_labels(events, LOW, SLOW)
    assert out["label_source"].dropna().eq("human_action").all()
    assert not out[["tag_low_confidence", "tag_slow", "tag_compliance", "tag_complaint", "tag_escalation"]].any().any()


def test_missing_required_column_raises() -> None:
    with pytest.raises(KeyError, match="status"):
        derive_labels(_events(CASES).drop(columns="status"), LOW, SLOW)


def test_accepted_without_ai_output_is_unlabeled_and_unknown() -> None:
    events = _events({"x": (("billing/low", "ok", "accepted", "billing/low", N, 0.9, 1.0, N, N, N), ())})
    events["ai_output"] = pd.Series([None], dtype="str")
    out = derive_labels(events, LOW, SLOW)
    assert _values(out["label"]) == [None] and _values(out["correctness"]) == ["unknown"]


def test_empty_frame() -> None:
    out = derive_labels(_events({}), LOW, SLOW)
    assert len(out) == 0
    assert list(out.columns) == list(CANONICAL_COLUMNS) + list(LABEL_COLUMNS)


def test_keeps_a_non_default_index() -> None:
    events = _events(CASES)
    events.index = pd.Index([7] * len(events))  # duplicate labels: nothing may align on the index
    out = derive_labels(events, LOW, SLOW)
    assert out.index.equals(events.index)
    assert out["correctness"].tolist() == [expected[3] for _, expected in CASES.values()]


def test_failure_tags_string_matches_tag_columns_for_every_combination() -> None:
    """The vectorised join agrees with a per-row reference over random rows hitting many tag combinations."""
    rng = np.random.default_rng(7)
    n = 5000
    events = pd.DataFrame(
        {
            "ai_output": "a/b",
            "status": rng.choice(["ok", "error", "timeout"], n),
            "user_action": rng.choice(
                np.array(["accepted", "edited", "overridden", "rejected", "ignored", None], dtype=object), n
            ),
            "confidence": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            "decision_seconds": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 240),
            **{
                name: pd.array(rng.choice(np.array([True, False, None], dtype=object), n), dtype="boolean")
                for name in FLAG_FIELDS
            },
        }
    )
    out = derive_labels(events, LOW, SLOW)
    matrix = out[list(TAG_COLUMNS)].to_numpy()
    reference = ["|".join(tag for tag, on in zip(FAILURE_TAGS, row, strict=True) if on) for row in matrix]
    assert out["failure_tags"].tolist() == reference
    assert out["n_failure_tags"].tolist() == matrix.sum(axis=1).tolist()
    assert out["failure_tags"].nunique() > 100
