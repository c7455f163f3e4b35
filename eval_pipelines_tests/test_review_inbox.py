"""Verdicts coming back, without Dagster: reading inbox files, quarantine of each bad kind with conservation per
file, duplicates, adjudication, per-day agreement against scikit-learn / krippendorff, the demo reviewers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from eval_pipelines.demo.generator import TRUTH_COLUMN
from eval_pipelines.demo.reviewers import answer_day, answer_outbox
from eval_pipelines.review.adjudication import adjudicate, agreement_by_system
from eval_pipelines.review.agreement import cohens_kappa, krippendorff_alpha_nominal
from eval_pipelines.review.inbox import (
    annotation_records,
    combine,
    conservation,
    day_vocabulary,
    read_inbox,
    scan_inbox,
    validate_verdicts,
)

DAY = date(2026, 3, 2)
TASKS = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "system": ["s", "s", "s"]})
VOCABULARY = {"s": ("billing/high", "billing/low", "tech/high")}


def write(inbox: Path, name: str, text: str | bytes) -> Path:
    path = inbox / DAY.isoformat() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def line(**fields: object) -> str:
    return json.dumps(fields) + "\n"


def test_each_bad_kind_is_quarantined_with_its_reason_and_every_file_balances(tmp_path: Path):
    good = line(event_id="e1", reviewer="ann", label="billing/high", comment="ok", reviewed_at="2026-03-03T09:00Z")
    write(tmp_path, "a.jsonl", good
          + line(event_id="e9", reviewer="ann", label="billing/high")      # not a task of the day
          + line(event_id="e2", reviewer="ann", label="refund/now")        # outside the vocabulary
          + line(event_id="e1", reviewer="ann", label="billing/low")       # duplicate of line 1
          + "\n"                                                           # blank: not a record
          + "{not json\n"
          + "[1, 2]\n"
          + line(event_id="e3", label="tech/high")                        # no reviewer
          + line(event_id="e3", reviewer="bob", label="tech/high", reviewed_at="yesterday"))
    write(tmp_path, "b.csv", "event_id,reviewer,label,comment\ne2,bob,billing/low,\ne3,bob,tech/high,a,extra\n")
    write(tmp_path, "c.csv", "event_id,reviewer\ne1,bob\n")               # header lacks label
    write(tmp_path, "d.csv", b"event_id,reviewer,label\n\xff\xfe,bob,x\n")  # not UTF-8
    write(tmp_path, "ignored.txt", "e1,bob,billing/high\n")               # not a verdict file

    read = read_inbox(tmp_path, DAY)
    accepted, quarantined = validate_verdicts(read, TASKS, VOCABULARY)
    assert sorted(read.rows_in.items()) == [("2026-03-02/a.jsonl", 8), ("2026-03-02/b.csv", 2),
                                            ("2026-03-02/c.csv", 1), ("2026-03-02/d.csv", 1)]
    balance = conservation(read, accepted, quarantined)
    assert balance["balanced"].all() and int(balance["rows_in"].sum()) == len(accepted) + len(quarantined) == 12
    assert list(zip(accepted["event_id"], accepted["reviewer"], accepted["label"], strict=True)) == [
        ("e1", "ann", "billing/high"), ("e2", "bob", "billing/low")]
    assert accepted["reviewed_at"].iloc[0] == pd.Timestamp("2026-03-03T09:00Z")
    assert pd.isna(accepted["reviewed_at"].iloc[1]) and accepted["comment"].iloc[0] == "ok"
    reasons = {(row.source.split("/")[-1], row.line): row.reason for row in quarantined.itertuples()}
    expected = {("a.jsonl", 2): "is not a review task", ("a.jsonl", 3): "not in the vocabulary",
                ("a.jsonl", 4): "duplicate", ("a.jsonl", 6): "not valid JSON", ("a.jsonl", 7): "not a JSON object",
                ("a.jsonl", 8): "reviewer: missing", ("a.jsonl", 9): "not an ISO 8601 timestamp",
                ("b.csv", 3): "fields but the header has", ("c.csv", 2): "lacks column(s) ['label']",
                ("d.csv", 0): "not UTF-8"}
    assert set(reasons) == set(expected)
    for key, fragment in expected.items():
        assert fragment in reasons[key], (key, reasons[key])
    assert "a.jsonl line 1" in reasons[("a.jsonl", 4)]  # the duplicate names the verdict that was kept


def test_label_studio_annotations_are_validated_like_inbox_rows():
    pulled = pd.DataFrame({"event_id": ["e1", "e1", "zz"], "partition_date": [DAY.isoformat()] * 3,
                           "reviewer": ["ann", "ann", "ann"], "label": ["tech/high", "tech/high", "tech/high"],
                           "comment": [None, None, None], "reviewed_at": ["2026-03-03T10:00:00Z"] * 3,
                           "source": ["label_studio"] * 3})
    read = combine([annotation_records(pulled, "label_studio:p s")])
    accepted, quarantined = validate_verdicts(read, TASKS, VOCABULARY)
    assert accepted["source"].tolist() == ["label_studio:p s"]
    assert [r.split(":")[0] for r in quarantined["reason"]] == ["duplicate", "event_id 'zz' is not a review task of "
                                                                             "this day; verdicts belong in the inbox "
                                                                             "folder of the task's partition_date (see "
                                                                             "the outbox file)"]
    assert conservation(read, accepted, quarantined)["balanced"].all()


def test_vocabulary_defaults_to_the_days_outputs_and_config_wins():
    cases = pd.DataFrame({"system": ["s", "s", "t"], "ai_output": ["a", "b", "x"], "final_output": ["c", None, "x"],
                          "ground_truth": [None, "d", None]})
    assert day_vocabulary(cases, {}) == {"s": ("a", "b", "c", "d"), "t": ("x",)}
    assert day_vocabulary(cases, {"t": ["y", "x"]})["t"] == ("y", "x")


TASK_FRAME = pd.DataFrame({"event_id": ["e1", "e2", "e3", "e4", "e5"], "partition_date": [DAY] * 5,
                           "system": ["s"] * 5, "stratum": ["h1"] * 5, "inclusion_prob": [0.5] * 5,
                           "certainty": [False] * 5, "ai_output": ["A", "A", "A", "B", "A"]})
VERDICTS = pd.DataFrame({
    "event_id": ["e1", "e2", "e2", "e3", "e3", "e3", "e4", "e4"],
    "reviewer": ["ann", "ann", "bob", "ann", "bob", "sue", "ann", "sue"],
    "label":    ["A",   "A",   "B",   "B",   "B",   "A",   "B",   "B"],
})


@pytest.mark.parametrize(("mode", "senior", "e2", "e3"), [
    ("majority", None, (None, "disputed"), ("B", "majority")),
    ("senior", "bob", ("B", "senior"), ("B", "senior")),
    ("senior", "sue", (None, "disputed"), ("A", "senior")),
    ("disputed", None, (None, "disputed"), (None, "disputed")),
])
def test_adjudication_modes(mode, senior, e2, e3):
    labels = adjudicate(TASK_FRAME, VERDICTS, mode, senior).set_index("event_id")
    assert (labels.loc["e1", "reviewed_label"], labels.loc["e1", "adjudication"]) == ("A", "single")
    assert (labels.loc["e4", "reviewed_label"], labels.loc["e4", "adjudication"]) == \
        ("B", "senior" if senior == "sue" else "majority")
    for event_id, (label, how) in (("e2", e2), ("e3", e3)):
        got = labels.loc[event_id, "reviewed_label"]
        assert (None if pd.isna(got) else got, labels.loc[event_id, "adjudication"]) == (label, how)
        assert bool(labels.loc[event_id, "disputed"]) == (how == "disputed")
        expected = pd.NA if label is None else label == "A"
        assert (pd.isna(labels.loc[event_id, "ai_correct"]) and expected is pd.NA) or \
            labels.loc[event_id, "ai_correct"] == expected
    assert labels.loc["e5", "adjudication"] == "unanswered" and pd.isna(labels.loc["e5", "ai_correct"])
    assert bool(labels.loc["e4", "ai_correct"]) is True  # the AI said B, the reviewers too
    assert labels["review_count"].tolist() == [1, 2, 3, 2, 0]


def test_agreement_rows_match_scikit_learn_and_krippendorff():
    rng = np.random.default_rng(3)
    truth = rng.choice(["a", "b", "c"], 120, p=[0.5, 0.3, 0.2])
    noisy = [np.where(rng.random(120) < 0.2, rng.choice(["a", "b", "c"], 120), truth) for _ in range(3)]
    ids = [f"e{i:03d}" for i in range(120)]
    two = pd.DataFrame({"event_id": ids * 2, "reviewer": ["x"] * 120 + ["y"] * 120,
                        "label": np.concatenate(noisy[:2]), "system": "s"})
    single = pd.DataFrame({"event_id": ["solo"], "reviewer": ["x"], "label": ["a"], "system": "s"})
    [row] = agreement_by_system(pd.concat([two, single], ignore_index=True))
    assert row.double_reviewed_cases == 120
    assert row.kappa.estimate == pytest.approx(cohen_kappa_score(noisy[0], noisy[1]), abs=1e-12)
    reference = krippendorff.alpha(reliability_data=np.vstack([pd.factorize(np.concatenate(noisy[:2]))[0]
                                                               .reshape(2, 120)]).astype(float),
                                   level_of_measurement="nominal")
    assert row.alpha.estimate == pytest.approx(reference, abs=1e-12)
    assert row.row()["disputed_cases"] == int((noisy[0] != noisy[1]).sum())
    # Three reviewers: no κ (a two-rater statistic), α still matches the package.
    three = pd.DataFrame({"event_id": ids * 3, "reviewer": np.repeat(["x", "y", "z"], 120),
                          "label": np.concatenate(noisy), "system": "t"})
    [row3] = agreement_by_system(three)
    codes = pd.factorize(np.concatenate(noisy))[0].reshape(3, 120).astype(float)
    assert row3.kappa is None and np.isnan(row3.row()["kappa"])
    assert row3.alpha.estimate == pytest.approx(krippendorff.alpha(reliability_data=codes,
                                                                   level_of_measurement="nominal"), abs=1e-12)
    assert row3.alpha.ci_low <= row3.alpha.estimate <= row3.alpha.ci_high
    # The same numbers as calling agreement.py directly.
    assert row.kappa == cohens_kappa(noisy[0], noisy[1])
    assert row3.alpha == krippendorff_alpha_nominal(three["event_id"], three["label"])


def test_demo_reviewers_answer_from_the_truth_with_the_seeded_error_rate(tmp_path: Path):
    n = 2000
    truth = pd.DataFrame({"event_id": [f"e{i:05d}" for i in range(n)],
                          TRUTH_COLUMN: np.random.default_rng(0).choice(["a", "b", "c"], n)})
    tasks = [{"event_id": f"e{i:05d}", "double_review": i % 10 == 0} for i in range(n)]
    records, errors, missing = answer_day([*tasks, {"event_id": "ghost"}], truth, DAY, 0.1, seed=5)
    assert missing == 1 and len(records) == n + n // 10
    frame = pd.DataFrame(records).merge(truth, on="event_id")
    wrong = int((frame["label"] != frame[TRUTH_COLUMN]).sum())
    assert wrong == errors
    assert abs(errors / len(records) - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(records))  # binomial, 4 SE
    assert set(frame.loc[frame["event_id"] == "e00000", "reviewer"]) == {"reviewer_a", "reviewer_b"}
    assert answer_day(tasks, truth, DAY, 0.1, seed=5)[0] == records  # seeded
    assert answer_day(tasks, truth, DAY, 0.0, seed=5)[1] == 0

    outbox, inbox, truth_dir = tmp_path / "outbox", tmp_path / "inbox", tmp_path / "truth"
    outbox.mkdir()
    truth_dir.mkdir()
    truth.to_parquet(truth_dir / f"{DAY}.parquet")
    (outbox / f"{DAY}.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks[:50]))
    [first] = answer_outbox(outbox, inbox, truth_dir, 0.1, 5)
    fingerprint = scan_inbox(inbox)
    [again] = answer_outbox(outbox, inbox, truth_dir, 0.1, 5)
    assert first.written and not again.written and scan_inbox(inbox) == fingerprint  # unchanged: not rewritten
    read = read_inbox(inbox, DAY)
    accepted, quarantined = validate_verdicts(read, pd.DataFrame({"event_id": truth["event_id"], "system": "s"}),
                                              {"s": ("a", "b", "c")})
    assert len(accepted) == first.verdicts == 55 and quarantined.empty


def test_the_truth_sidecar_leaves_the_logs_unchanged_and_must_lie_outside_the_landing_dir(tmp_path: Path):
    from eval_pipelines.cli import main
    from eval_pipelines.demo.generator import generate_logs

    plain, with_truth, truth = tmp_path / "plain", tmp_path / "with", tmp_path / "truth"
    generate_logs(plain, days=2, events_per_day=40, seed=3, start_date=DAY)
    generate_logs(with_truth, days=2, events_per_day=40, seed=3, start_date=DAY, truth_dir=truth)
    logs = sorted(p.relative_to(plain) for p in plain.rglob("part-*"))
    assert logs and logs == sorted(p.relative_to(with_truth) for p in with_truth.rglob("part-*"))
    assert all((plain / p).read_bytes() == (with_truth / p).read_bytes() for p in logs)
    frame = pd.read_parquet(truth / f"{DAY}.parquet")
    events = pd.concat([pd.read_json(p, lines=True) for p in sorted((plain / DAY.isoformat()).glob("*.jsonl"))])
    # The system column lets the demo reviewers draw a wrong verdict from the same system's values.
    assert list(frame.columns) == ["event_id", "system", TRUTH_COLUMN] and sorted(frame["event_id"]) == sorted(
        events["event_id"])
    audited = events.dropna(subset=["ground_truth"]).merge(frame, on="event_id")
    assert (audited["ground_truth"] == audited[TRUTH_COLUMN]).all()  # ground truth, where logged, is the truth
    with pytest.raises(ValueError, match="inside the landing directory"):
        generate_logs(plain, days=1, events_per_day=5, seed=3, start_date=DAY, truth_dir=plain / "truth")
    assert main(["demo-review", "--truth", str(tmp_path / "nowhere")]) == 2
