"""The demo's review team: the simulator's hidden truth answers each day's outbox, with seeded reviewer errors.

For every ``<outbox_dir>/<YYYY-MM-DD>.jsonl`` whose day has a truth file (``generate-logs --truth-out``),
``reviewer_a`` answers every task and ``reviewer_b`` the ``double_review`` ones; each verdict is the true label,
except that with probability ``error_rate`` (independently per verdict) it is another label of the day's
vocabulary of the same system, drawn uniformly (for the free-text reply_drafts system: another ticket's right
reply). The answers go to ``<inbox_dir>/<YYYY-MM-DD>/demo_reviewers.jsonl`` (atomic; not
rewritten when unchanged, so the inbox sensor sees no change on a re-run). Deterministic given (seed, day, outbox).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from eval_pipelines.demo.generator import TRUTH_COLUMN

REVIEWERS = ("reviewer_a", "reviewer_b")
INBOX_FILE = "demo_reviewers.jsonl"


@dataclass(frozen=True)
class DayAnswers:
    day: date
    tasks: int
    verdicts: int
    errors: int  # verdicts deliberately different from the truth
    without_truth: int  # tasks whose event has no truth row (left unanswered)
    written: bool  # False when the inbox file already held exactly these answers


def answer_day(tasks: list[dict[str, object]], truth: pd.DataFrame, day: date, error_rate: float, seed: int
               ) -> tuple[list[dict[str, object]], int, int]:
    """The verdict records for one day's tasks, the number of deliberate errors and of tasks without truth."""
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
    true_label = dict(zip(truth["event_id"].astype(str), truth[TRUTH_COLUMN].astype(str), strict=True))
    # A wrong verdict is another value the same system could have given (truth files written before the system
    # column existed hold one system).
    systems = truth["system"].astype(str) if "system" in truth.columns else pd.Series("", index=truth.index)
    system_of = dict(zip(truth["event_id"].astype(str), systems, strict=True))
    vocabularies = {system: sorted(set(group[TRUTH_COLUMN].astype(str)))
                    for system, group in truth.assign(_system=systems.to_numpy()).groupby("_system")}
    rng = np.random.default_rng([seed, day.toordinal()])
    start = datetime.combine(day + timedelta(days=1), time(9, 0))
    records, errors, missing = [], 0, 0
    for index, task in enumerate(sorted(tasks, key=lambda t: str(t["event_id"]))):
        event_id = str(task["event_id"])
        if event_id not in true_label:
            missing += 1
            continue
        for reviewer in REVIEWERS[:2 if task.get("double_review") else 1]:
            label = true_label[event_id]
            # Both draws are made for every verdict, so one reviewer's error does not shift the other's stream.
            wrong, pick = rng.random() < error_rate, rng.random()
            others = [v for v in vocabularies[system_of[event_id]] if v != label]
            if wrong and others:
                label = others[int(pick * len(others))]
                errors += 1
            stamp = start + timedelta(seconds=30 * index + (7 if reviewer == REVIEWERS[1] else 0))
            records.append({"event_id": event_id, "reviewer": reviewer, "label": label,
                            "reviewed_at": stamp.isoformat() + "Z"})
    return records, errors, missing


def answer_outbox(outbox_dir: Path, inbox_dir: Path, truth_dir: Path, error_rate: float = 0.03, seed: int = 0
                  ) -> list[DayAnswers]:
    """Answer every outbox day that has a truth file (module docstring); one summary per answered day."""
    done = []
    for path in sorted(outbox_dir.glob("*.jsonl")) if outbox_dir.is_dir() else []:
        try:
            day = date.fromisoformat(path.stem)
        except ValueError:
            continue
        truth_path = truth_dir / f"{day.isoformat()}.parquet"
        if not truth_path.is_file():
            continue
        tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        records, errors, missing = answer_day(tasks, pd.read_parquet(truth_path), day, error_rate, seed)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        target = inbox_dir / day.isoformat() / INBOX_FILE
        written = not (target.is_file() and target.read_bytes() == data)
        if written:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, target)
        done.append(DayAnswers(day, len(tasks), len(records), errors, missing, written))
    return done
