"""The review loop's functions as they were before they were vectorised (bench/bench_review.py), kept verbatim.

The per-row / per-group Python loops below are the specification the fast versions in eval_pipelines.review are
tested against (test_review_vectorised.py: seeded random inputs with ties, disputed cases, a senior reviewer,
empty strata and a certainty stratum must give identical output). Only renamed references to the package's own
helpers differ (they are imported). Not used by the pipeline.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from eval_pipelines.evalsets.design import assign_strata, draw, sampling_keys
from eval_pipelines.frames import flag_column
from eval_pipelines.review.adjudication import LABEL_COLUMNS  # noqa: F401  (the columns both versions return)
from eval_pipelines.review.design import (
    ACTION_COLUMN,
    CERTAINTY_STRATUM,
    CERTAINTY_TAG_ALIASES,
    CONFIDENCE_BAND_COLUMN,
    RISK_GROUPS,
    UNREVIEWED,
    AuditDesignConfig,
    AuditSample,
    _double_review,
    _number,
    confidence_bands,
    day_seed,
    risk_flags,
)
from eval_pipelines.review.estimation import CELL_SEPARATOR, ReviewEstimates, _domain_estimate
from eval_pipelines.review.inbox import ACCEPTED_COLUMNS, QUARANTINE_COLUMNS, REQUIRED_FIELDS, VerdictRead

OUTBOX_FIELDS = ("event_id", "partition_date", "system", "model_version", "segment", "input_text", "ai_output",
                 "user_action", "final_output", "confidence", "stratum", "certainty", "double_review")


def review_actions(user_action: pd.Series) -> pd.Series:
    """``user_action`` as a string with null (no human in the loop) as ``unreviewed``."""
    return user_action.astype("object").where(user_action.notna(), UNREVIEWED).astype(str)


def draw_audit_sample(cases: pd.DataFrame, day: dt.date | str, config: AuditDesignConfig | None = None
                      ) -> AuditSample:
    """Draw the day's audit sample from ``cases`` (the day's labeled cases; only status ``ok`` ones are eligible).

    Needs ``event_id``, ``status``, the strata columns and the certainty columns (``complaint`` and
    ``compliance_flag`` by default, or labeling's ``tag_complaint`` / ``tag_compliance`` when the raw field is
    absent; null reads as not flagged). ``user_action``, ``confidence`` and ``decision_seconds`` are read as null
    when absent. Strata columns other than the two derived ones (``review_action``, ``confidence_band``) are read
    from ``cases`` as they are.
    """
    config = config or AuditDesignConfig()
    if "event_id" not in cases.columns or "status" not in cases.columns:
        raise KeyError("cases need event_id and status columns")
    ok_rows = np.flatnonzero(cases["status"].astype("object").to_numpy() == "ok")
    # Only the columns the design reads are copied for the whole day; the tasks' other fields are taken at the end
    # for the selected rows alone (a full copy of a wide day per draw dominated the run time).
    certainty_sources = [column if column in cases.columns else CERTAINTY_TAG_ALIASES.get(column, column)
                         for column in config.certainty_columns]
    needed = ["event_id", "user_action", "confidence", "decision_seconds", *certainty_sources,
              *config.strata_columns]
    ok = cases[[c for c in dict.fromkeys(needed) if c in cases.columns]].iloc[ok_rows].reset_index(drop=True)
    if ok["event_id"].duplicated().any():
        raise ValueError("event_id must be unique among the day's ok cases")
    seed = day_seed(config.seed, day)
    actions = review_actions(ok["user_action"]) if "user_action" in ok.columns \
        else pd.Series(UNREVIEWED, index=ok.index, dtype=object)
    certainty = np.zeros(len(ok), dtype=bool)
    for column in certainty_sources:
        if column not in ok.columns:
            # Silently reading a missing flag as "never" would empty the certainty stratum: refuse instead.
            raise KeyError(f"certainty column {column!r} is not in the cases; available: {list(cases.columns)}")
        certainty |= flag_column(ok, column)

    # Only what the strata need, built in one go (a copy of every column per draw is what made it slow).
    derived = {ACTION_COLUMN: actions.to_numpy(),
               CONFIDENCE_BAND_COLUMN: confidence_bands(_number(ok, "confidence"), config.confidence_band_edges)}
    columns = {column: derived[column] if column in derived else ok[column].to_numpy()
               for column in config.strata_columns if column in derived or column in ok.columns}
    # assign_strata reads over-sampling groups from tag_<name> columns.
    columns.update({f"tag_{group}": flags for group, flags in risk_flags(ok, actions.to_numpy(), config).items()})
    work = pd.DataFrame(columns)
    factors = {"fast_accept": config.fast_accept_factor,
               "high_confidence_accept": config.high_confidence_accept_factor,
               "high_confidence_override": config.high_confidence_override_factor}
    oversample = [(group, factors[group]) for group in RISK_GROUPS]

    stratum = np.full(len(ok), CERTAINTY_STRATUM, dtype=object)
    inclusion = np.ones(len(ok), dtype=np.float64)
    selected = certainty.copy()
    sampled_rows = np.flatnonzero(~certainty)
    strata_rows = []
    allocation = None
    if len(sampled_rows):
        frame = work if len(sampled_rows) == len(work) else work.iloc[sampled_rows].reset_index(drop=True)
        strata = assign_strata(frame, config.strata_columns, oversample)
        keys = sampling_keys(ok["event_id"].iloc[sampled_rows].astype(str).reset_index(drop=True), seed,
                             purpose="review")
        design = draw(strata, keys, np.zeros(len(frame)), config.daily_size, "proportional",
                      config.minimum_per_stratum)
        allocation = design.allocation
        stratum[sampled_rows] = np.asarray(strata.labels, dtype=object)[strata.codes]
        inclusion[sampled_rows] = design.strata["inclusion_prob"].to_numpy()[strata.codes]
        selected[sampled_rows[design.selected]] = True
        strata_rows.append(design.strata[["stratum", "population", "factor", "sample", "inclusion_prob"]])
    if certainty.any():
        count = int(certainty.sum())
        strata_rows.append(pd.DataFrame({"stratum": [CERTAINTY_STRATUM], "population": [count], "factor": [np.inf],
                                         "sample": [count], "inclusion_prob": [1.0]}))
    strata_table = (pd.concat(strata_rows, ignore_index=True) if strata_rows else
                    pd.DataFrame(columns=["stratum", "population", "factor", "sample", "inclusion_prob"]))
    strata_table["stratum"] = strata_table["stratum"].astype(str)

    phase_one = pd.DataFrame({
        "event_id": ok["event_id"].to_numpy(),
        "stratum": stratum.astype(str),
        ACTION_COLUMN: actions.to_numpy(),
        "certainty": certainty,
        "inclusion_prob": inclusion,
        "selected": selected,
    })
    chosen = cases.iloc[ok_rows[selected]].reset_index(drop=True)
    added = pd.DataFrame({
        ACTION_COLUMN: actions.to_numpy()[selected],
        CONFIDENCE_BAND_COLUMN: work[CONFIDENCE_BAND_COLUMN].to_numpy()[selected] if CONFIDENCE_BAND_COLUMN in work
        else confidence_bands(_number(chosen, "confidence"), config.confidence_band_edges),
        "stratum": stratum[selected].astype(str),
        "inclusion_prob": inclusion[selected],
        "weight": 1.0 / inclusion[selected],
        "certainty": certainty[selected],
        "double_review": _double_review(chosen["event_id"].astype(str), seed, config.double_review_share),
    })
    tasks = pd.concat([chosen.drop(columns=[c for c in added.columns if c in chosen.columns]), added], axis=1)
    tasks = tasks.sort_values("event_id", kind="stable").reset_index(drop=True)
    return AuditSample(frame=phase_one, tasks=tasks, strata=strata_table, day_seed=seed, allocation=allocation)


def _settle(labels: list[str], reviewers: list[str], mode: str, senior: str | None) -> tuple[str | None, str]:
    if not labels:
        return None, "unanswered"
    if len(labels) == 1:
        return labels[0], "single"
    if mode == "senior" and senior in reviewers:
        return labels[reviewers.index(senior)], "senior"
    counts = pd.Series(labels).value_counts()
    if mode == "disputed" and len(counts) > 1:
        return None, "disputed"
    if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
        return None, "disputed"
    return str(counts.index[0]), "majority"


def adjudicate(tasks: pd.DataFrame, verdicts: pd.DataFrame, mode: str = "majority", senior: str | None = None
               ) -> pd.DataFrame:
    """One row per task (``LABEL_COLUMNS``), unanswered tasks included.

    ``tasks``: the selected tasks with ``event_id``, ``partition_date``, ``system``, ``stratum``,
    ``inclusion_prob``, ``certainty`` and ``ai_output``; ``verdicts``: accepted verdicts (``event_id``,
    ``reviewer``, ``label``), at most one per (event, reviewer).
    """
    if mode not in ("majority", "senior", "disputed"):
        raise ValueError(f"unknown adjudication mode {mode!r}")
    grouped = {event_id: (list(group["label"].astype(str)), list(group["reviewer"].astype(str)))
               for event_id, group in verdicts.sort_values(["event_id", "reviewer"]).groupby("event_id", sort=False)}
    settled = [_settle(*grouped.get(event_id, ([], [])), mode, senior) for event_id in tasks["event_id"]]
    labels = pd.Series([label for label, _ in settled], index=tasks.index, dtype="object")
    how = [rule for _, rule in settled]
    ai_output = tasks["ai_output"].astype("object")
    correct = pd.array([None if label is None else bool(out == label) if pd.notna(out) else False
                        for label, out in zip(labels, ai_output, strict=True)], dtype="boolean")
    frame = pd.DataFrame({
        "event_id": tasks["event_id"].astype(str).to_numpy(),
        "partition_date": tasks["partition_date"].to_numpy(),
        "system": tasks["system"].astype(str).to_numpy(),
        "stratum": tasks["stratum"].astype(str).to_numpy(),
        "inclusion_prob": tasks["inclusion_prob"].astype(float).to_numpy(),
        "certainty": tasks["certainty"].astype(bool).to_numpy(),
        "reviewed_label": labels.to_numpy(),
        "ai_correct": correct,
        "review_count": np.array([len(grouped.get(e, ([], []))[0]) for e in tasks["event_id"]], dtype=np.int64),
        "disputed": np.array([rule == "disputed" for rule in how], dtype=bool),
        "adjudication": how,
    })
    return frame.reset_index(drop=True)


def _text(value: object) -> str | None:
    """A non-empty string value, else None (numbers are not accepted: ids and names are text)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _field_problem(row: Mapping[str, object]) -> str | None:
    for name in REQUIRED_FIELDS:
        if _text(row[name]) is None:
            value = row[name]
            return f"{name}: missing or empty" if value is None or value == "" else \
                f"{name}: must be a non-empty string, got {type(value).__name__} {value!r}"
    comment = row["comment"]
    if comment is not None and not isinstance(comment, str):
        return f"comment: must be a string, got {type(comment).__name__}"
    stamp = row["reviewed_at"]
    if stamp is not None and (not isinstance(stamp, str) or pd.isna(
            pd.to_datetime(stamp, utc=True, errors="coerce", format="ISO8601"))):
        return f"reviewed_at: {stamp!r} is not an ISO 8601 timestamp (e.g. 2026-03-02T14:05:00Z)"
    return None


def validate_verdicts(read: VerdictRead, tasks: pd.DataFrame, vocabulary: Mapping[str, Sequence[str]]
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the records into accepted verdicts and quarantined records (module docstring for the rules).

    ``tasks``: the day's selected tasks, ``event_id`` and ``system``; ``vocabulary``: system -> allowed labels.
    Returns (accepted with ``ACCEPTED_COLUMNS``, quarantined with ``QUARANTINE_COLUMNS``).
    """
    system_of = dict(zip(tasks["event_id"].astype(str), tasks["system"].astype(str), strict=True))
    allowed = {system: set(labels) for system, labels in vocabulary.items()}
    accepted: list[dict[str, object]] = []
    quarantined: list[dict[str, object]] = []
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for raw in read.records.to_dict("records"):
        # Frames turn a missing value into NaN; every field is text or absent.
        row = {key: None if value is pd.NA or (isinstance(value, float) and value != value) else value
               for key, value in raw.items()}
        event_id, reviewer, label = (_text(row[name]) for name in REQUIRED_FIELDS)
        reason = row["problem"] if isinstance(row["problem"], str) else _field_problem(row)
        if reason is None and event_id not in system_of:
            reason = (f"event_id {event_id!r} is not a review task of this day; verdicts belong in the inbox "
                      "folder of the task's partition_date (see the outbox file)")
        if reason is None:
            system = system_of[event_id]
            labels = allowed.get(system, set())
            if label not in labels:
                shown = ", ".join(sorted(labels)[:20]) + (" ..." if len(labels) > 20 else "")
                reason = (f"label {label!r} is not in the vocabulary of system {system!r} ({shown}); use one of "
                          "them or add it to review.vocabulary")
        if reason is None:
            first = seen.get((event_id, reviewer))
            if first is not None:
                reason = (f"duplicate: reviewer {reviewer!r} already gave a verdict on {event_id!r} in "
                          f"{first[0]} line {first[1]}; the first one is kept (edit it there to change it)")
        if reason is not None:
            quarantined.append({"source": row["source"], "line": int(row["line"]),
                                "event_id": event_id if event_id is not None else None,
                                "reviewer": reviewer, "reason": str(reason), "record": str(row["record"])})
            continue
        seen[(event_id, reviewer)] = (str(row["source"]), int(row["line"]))
        stamp = row["reviewed_at"]
        accepted.append({"event_id": event_id, "reviewer": reviewer, "system": system_of[event_id], "label": label,
                         "comment": row["comment"] if isinstance(row["comment"], str) else None,
                         "reviewed_at": pd.to_datetime(stamp, utc=True, format="ISO8601") if stamp else pd.NaT,
                         "source": row["source"], "line": int(row["line"])})
    accepted_frame = pd.DataFrame(accepted, columns=list(ACCEPTED_COLUMNS))
    accepted_frame["reviewed_at"] = pd.to_datetime(accepted_frame["reviewed_at"], utc=True)
    return accepted_frame, pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS))


def day_vocabulary(cases: pd.DataFrame, configured: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The labels a reviewer may give per system: ``review.vocabulary`` when it lists the system, else the
    distinct ``ai_output``, ``final_output`` and ``ground_truth`` values of the system's cases that day."""
    vocabulary: dict[str, tuple[str, ...]] = {}
    columns = [c for c in ("ai_output", "final_output", "ground_truth") if c in cases.columns]
    for system, group in cases.groupby(cases["system"].astype(str), sort=True, observed=True):
        if system in configured:
            vocabulary[system] = tuple(configured[system])
            continue
        values = pd.concat([group[c].astype("object") for c in columns], ignore_index=True).dropna()
        vocabulary[system] = tuple(sorted({str(v) for v in values if str(v)}))
    return vocabulary


def estimation_cells(frame: pd.DataFrame) -> pd.Series:
    """The estimation cell of each phase-one case: its design stratum crossed with its user action."""
    return frame["stratum"].astype(str) + CELL_SEPARATOR + frame[ACTION_COLUMN].astype(str)


def _verdict_values(frame: pd.DataFrame, verdicts: pd.DataFrame) -> np.ndarray:
    """Per phase-one row, 1.0/0.0 for a verdict "AI right"/"AI wrong", NaN when not audited or not answered."""
    if not {"event_id", "ai_correct"} <= set(verdicts.columns):
        raise KeyError("verdicts need event_id and ai_correct columns")
    if verdicts["event_id"].duplicated().any():
        raise ValueError("one trusted verdict per event_id (adjudicate multiple reviews first)")
    position = pd.Index(frame["event_id"]).get_indexer(verdicts["event_id"])
    if (position < 0).any():
        raise ValueError(f"{int((position < 0).sum())} verdict(s) for events not among the day's ok cases")
    if not frame["selected"].to_numpy()[position].all():
        # A verdict on a case outside the probability sample has no known inclusion probability: it cannot
        # enter a design-based estimate (it belongs in the edge-case library, not here).
        raise ValueError("verdict(s) for cases that were not in the audit sample")
    flags = verdicts["ai_correct"].astype("boolean")
    values = np.full(len(frame), np.nan)
    answered = flags.notna().to_numpy()
    values[position[answered]] = flags[answered].to_numpy(dtype=bool).astype(np.float64)
    return values


def estimate_reviewed(frame: pd.DataFrame, verdicts: pd.DataFrame, confidence: float = 0.95,
                      override_actions: tuple[str, ...] = ("overridden",)) -> ReviewEstimates:
    """Reviewed accuracy, automation-bias rate and override error rate of one day.

    ``frame``: phase one, :attr:`AuditSample.frame` (every ok case with ``event_id``, ``stratum``,
    ``review_action``, ``selected``). ``verdicts``: one trusted (adjudicated) verdict per audited event,
    ``event_id`` and ``ai_correct`` (True when the AI output was right; null for a task left unanswered).
    """
    values = _verdict_values(frame, verdicts)
    cells = estimation_cells(frame)
    actions = frame[ACTION_COLUMN].astype(str).to_numpy()
    codes, uniques = pd.factorize(cells, sort=True)
    names = np.asarray(uniques, dtype=object)
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    everyone = np.ones(len(frame), dtype=bool)
    accuracy = _domain_estimate("reviewed_accuracy", "all the day's cases with status ok (reviewed or not)",
                                codes, names, values, everyone, confidence)
    bias = _domain_estimate("automation_bias_rate",
                            "the day's ok cases whose suggestion was accepted; share where the AI was wrong",
                            codes, names, 1.0 - values, actions == "accepted", confidence)
    override = _domain_estimate("override_error_rate",
                                f"the day's ok cases with action in {list(override_actions)}; share where the AI "
                                "was in fact right", codes, names, values, np.isin(actions, override_actions),
                                confidence)
    answered = ~np.isnan(values)
    audited = np.bincount(codes[answered], minlength=len(names))
    right = np.bincount(codes[answered], weights=values[answered], minlength=len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_correct = np.where(audited > 0, right / np.maximum(audited, 1), np.nan)
    summary = pd.DataFrame({"cell": names, ACTION_COLUMN: actions[first],
                            "population": np.bincount(codes, minlength=len(names)), "audited": audited,
                            "mean_correct": mean_correct})
    return ReviewEstimates(accuracy, bias, override, summary)


def phase_one(sample: AuditSample, cases: pd.DataFrame) -> pd.DataFrame:
    """The review_queue lake dataset: every ok case with its stratum, inclusion probability and selection."""
    frame = sample.frame
    ok = cases.set_index(cases["event_id"].astype(str)).loc[frame["event_id"].astype(str)]
    double = set(sample.tasks.loc[sample.tasks["double_review"], "event_id"].astype(str))
    out = pd.DataFrame({
        "event_id": frame["event_id"].astype(str).to_numpy(),
        "system": ok["system"].astype("object").to_numpy(),
        "model_version": ok["model_version"].astype("object").to_numpy(),
        "segment": ok["segment"].astype("object").to_numpy(),
        "user_action": ok["user_action"].astype("object").to_numpy(),
        ACTION_COLUMN: frame[ACTION_COLUMN].to_numpy(),
        "stratum": frame["stratum"].to_numpy(),
        "certainty": frame["certainty"].to_numpy(dtype=bool),
        "inclusion_prob": frame["inclusion_prob"].to_numpy(dtype=float),
        "selected": frame["selected"].to_numpy(dtype=bool),
    })
    out["double_review"] = out["event_id"].isin(double).to_numpy()
    return out


def outbox_lines(tasks: pd.DataFrame) -> bytes:
    """One JSON object per task, in event_id order (a re-run writes the same bytes)."""
    lines = []
    for record in tasks[list(OUTBOX_FIELDS)].to_dict("records"):
        clean = {}
        for key, value in record.items():
            if key == "partition_date":
                value = value.isoformat()
            elif value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            clean[key] = value
        lines.append(json.dumps(clean, ensure_ascii=False, sort_keys=False))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def selected_tasks(first: pd.DataFrame, cases: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """review_labels' selected tasks as the asset built them inline (a merge over the whole day)."""
    selected = first[first["selected"]].merge(
        cases[["event_id", "ai_output"]].astype({"event_id": str}), on="event_id", how="left")
    selected["partition_date"] = day
    return selected
