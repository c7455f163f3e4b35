"""Building a versioned eval set from the labeled cases of a window: frame → design → replay rows → version.

``sample_from_lake`` is what the ``eval_set`` asset runs (two lean passes over the window's Parquet files);
``sample_cases`` does the same from an in-memory frame (tests, notebooks). Both return an :class:`EvalSet` whose
``cases`` are the rows of ``eval_set_cases`` and whose ``strata`` are the rows of ``eval_set_strata``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.evalsets.design import (
    AllocationResult,
    Strata,
    assign_strata,
    content_version,
    draw,
    frame_digest,
    holdout_split,
    sampling_keys,
)
from eval_pipelines.evalsets.estimation import Estimate, estimate_from_cases, stratified_estimate
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.evalsets.trusted import (
    GROUND_TRUTH,
    TrustedFrame,
    combine_days,
    draw_trusted,
    trusted_day,
    trusted_frame_from_days,
)
from eval_pipelines.evalsets.window import Window
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake

REPLAY_COLUMNS: tuple[str, ...] = (
    "event_id", "timestamp", "system", "model_version", "segment", "input_text", "ai_output", "label",
    "label_source", "ai_correct", "correctness", "failure_tags",
)
"""labeled_cases columns copied into the eval set: what a scored run needs to replay and score a case."""

OPTIONAL_REPLAY_COLUMNS: tuple[str, ...] = ("label_source",)
"""Replay columns read when present (frames built before labeling wrote them, and hand-made test frames)."""

CASE_COLUMNS: tuple[str, ...] = (
    "event_id", "stratum", "inclusion_prob", "weight", "label", "label_source", "split", "input_text", "ai_output",
    "timestamp", "system", "model_version", "segment", "ai_correct", "correctness", "failure_tags", "features",
)
"""Columns of an eval set's cases (``eval_set_cases`` without ``version``)."""

PLAN_KEYS: tuple[str, ...] = (
    "labels", "window_days", "strata", "size", "allocation", "oversample", "min_per_stratum", "seed",
    "holdout_fraction",
)


@dataclass(frozen=True)
class SamplingFrame:
    """The labeled cases of the window, reduced to what the design needs: one entry per case."""

    strata: Strata
    keys: np.ndarray  # uint64 sampling key per case
    correct: np.ndarray  # bool: production's ai_correct
    day: np.ndarray  # int64 index into ``days``
    row: np.ndarray  # int64 row position in that day's data
    days: list[str]

    @property
    def size(self) -> int:
        return len(self.keys)

    def digest(self) -> str:
        return frame_digest(self.keys, self.strata.codes, self.strata.labels, self.correct)


@dataclass(frozen=True)
class EvalSet:
    version: str
    plan: dict[str, Any]
    cases: pd.DataFrame  # CASE_COLUMNS, one row per sampled case, ordered by stratum then event_id
    strata: pd.DataFrame  # stratum, population, correct, accuracy, factor, sample, holdout, inclusion_prob, weight
    population: int  # cases in the sampling frame: labeled cases (implicit) or trusted-label cases (trusted)
    window_accuracy: float  # implicit-label accuracy over the window's labeled cases (a census, biased upward)
    projected: Estimate  # production accuracy projected from the set alone, about target_population
    allocation: AllocationResult
    label_basis: str = "implicit"  # trusted (reviewed / ground-truth labels, docs/eval_sets.md) | implicit
    target_population: int = 0  # production cases the projections stand for (trusted: ok cases of the window)
    audit: Estimate | None = None  # trusted: production accuracy from every trusted-label case of the window
    implicit_population: int = 0  # labeled cases of the window: the population of window_accuracy
    uncovered_population: int = 0  # trusted: ok cases in cells without any trusted label (not projected)
    ground_truth_outside_audit: int = 0  # trusted: ground-truth cases not audited (not used: no known probability)
    days_without_review: tuple[str, ...] = ()  # trusted: window days without review_queue / review_labels

    @property
    def size(self) -> int:
        return len(self.cases)

    def strata_counts(self) -> dict[str, dict[str, int]]:
        return {row.stratum: {"population": int(row.population), "sample": int(row.sample),
                              "holdout": int(row.holdout)}
                for row in self.strata.itertuples(index=False)}


def _frame_columns(config: EvalSetConfig) -> list[str]:
    tags = [f"tag_{tag}" for tag, _ in config.oversample_order()]
    return list(dict.fromkeys(["event_id", "is_labeled", "ai_correct", *config.strata, *tags]))


class _FrameBuilder:
    """Accumulates per-day parts of the frame under one global set of stratum labels."""

    def __init__(self, config: EvalSetConfig) -> None:
        self.config = config
        self.order = config.oversample_order()
        self.label_ids: dict[str, int] = {}
        self.factors: dict[str, float] = {}
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, cases: pd.DataFrame, rows: np.ndarray, day_index: int) -> None:
        strata = assign_strata(cases, self.config.strata, self.order)
        to_global = np.empty(len(strata.labels), dtype=np.int64)
        for local, (label, factor) in enumerate(zip(strata.labels, strata.factors, strict=True)):
            to_global[local] = self.label_ids.setdefault(label, len(self.label_ids))
            self.factors[label] = float(factor)
        keys = sampling_keys(cases["event_id"], self.config.seed)
        correct = cases["ai_correct"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        self.parts.append((to_global[strata.codes], keys, correct,
                           np.full(len(cases), day_index, dtype=np.int64), rows.astype(np.int64)))

    def finish(self, days: list[str]) -> SamplingFrame:
        labels = sorted(self.label_ids)
        remap = np.empty(len(labels), dtype=np.int64)
        for rank, label in enumerate(labels):
            remap[self.label_ids[label]] = rank
        parts = self.parts or [(np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, bool),
                                np.empty(0, np.int64), np.empty(0, np.int64))]
        codes, keys, correct, day, row = (np.concatenate([p[i] for p in parts]) for i in range(5))
        strata = Strata(codes=remap[codes], labels=labels,
                        factors=np.array([self.factors[label] for label in labels], dtype=np.float64))
        return SamplingFrame(strata, keys, correct, day, row, days)


def frame_from_cases(cases: pd.DataFrame, config: EvalSetConfig) -> SamplingFrame:
    """The sampling frame of an in-memory labeled_cases frame: its labeled rows (an unlabeled case cannot be
    scored, so it cannot be in an eval set)."""
    labeled = cases["is_labeled"].to_numpy(dtype=bool)
    rows = np.flatnonzero(labeled)
    builder = _FrameBuilder(config)
    builder.add(cases.iloc[rows][_frame_columns(config)].reset_index(drop=True), rows, 0)
    return builder.finish(["memory"])


def frame_from_lake(lake: Lake, days: Sequence[str], config: EvalSetConfig) -> SamplingFrame:
    """Pass 1: the frame of the window's days, reading only the design's columns, one day at a time."""
    builder = _FrameBuilder(config)
    columns = _frame_columns(config)
    for index, day in enumerate(days):
        table = lake.read_columns(LABELED_CASES_ASSET, day, columns)
        labeled = table.column("is_labeled").to_numpy(zero_copy_only=False).astype(bool)
        rows = np.flatnonzero(labeled)
        part = table.take(pa.array(rows)).to_pandas() if len(rows) < table.num_rows else table.to_pandas()
        del table
        builder.add(part, rows, index)
    return builder.finish(list(days))


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def plan_of(config: EvalSetConfig, window: Window | None) -> dict[str, Any]:
    """The plan recorded with (and hashed into) a version: the design settings and the window."""
    plan: dict[str, Any] = {key: getattr(config, key) for key in PLAN_KEYS}
    plan["oversample_order"] = [tag for tag, _ in config.oversample_order()]
    plan["window_start"] = window.start.isoformat() if window else None
    plan["window_end"] = window.end.isoformat() if window else None
    plan["days_missing"] = list(window.missing) if window else []
    plan["estimator"] = "stratified (Horvitz-Thompson under STSI), normal 95% CI"
    return plan


class SourceChangedError(RuntimeError):
    """A labeled_cases day read by pass 1 no longer holds the same cases when pass 2 reads the selected rows."""

    def __init__(self, days: Sequence[str]) -> None:
        self.days = sorted(set(days))
        super().__init__(f"labeled_cases {', '.join(self.days)} changed during the eval-set build; re-run")


def check_replay_identity(frame: SamplingFrame, selected: np.ndarray, replay: pd.DataFrame, seed: int) -> None:
    """Raise :class:`SourceChangedError` naming the day(s) whose replayed rows are not the selected cases.

    Pass 2 reads the selected rows back *by position*; if a day is re-materialised between the two passes, the same
    positions hold other cases (or are gone). Comparing the replayed rows' sampling keys (a 64-bit hash of their
    event_id) with the keys the design selected catches that instead of silently versioning the wrong cases.
    """
    days = frame.day[selected]
    if len(replay) != len(selected):
        raise SourceChangedError([frame.days[int(d)] for d in np.unique(days)])
    keys = sampling_keys(replay["event_id"].reset_index(drop=True), seed)
    wrong = keys != frame.keys[selected]
    if wrong.any():
        raise SourceChangedError([frame.days[int(d)] for d in np.unique(days[wrong])])


def build_eval_set(frame: SamplingFrame, fetch: Callable[[np.ndarray, np.ndarray], pd.DataFrame],
                   config: EvalSetConfig, window: Window | None, feature_columns: Sequence[str] = ()) -> EvalSet:
    """Draw the design on ``frame``, fetch the selected rows' replay columns and version the result.

    ``fetch(day, row)`` returns the ``REPLAY_COLUMNS`` plus feature columns of the given cases, in that order. The
    fetched rows must be the selected cases (same event ids, in order), else :class:`SourceChangedError`.
    """
    design = draw(frame.strata, frame.keys, frame.correct, config.size, config.allocation, config.min_per_stratum)
    selected = design.selected
    replay = fetch(frame.day[selected], frame.row[selected]).reset_index(drop=True)
    check_replay_identity(frame, selected, replay, config.seed)
    codes = frame.strata.codes[selected]
    strata_table = design.strata
    labels = np.asarray(frame.strata.labels, dtype=object)
    cases = case_table(replay, labels[codes], strata_table["inclusion_prob"].to_numpy()[codes],
                       strata_table["weight"].to_numpy()[codes], replay["label"],
                       replay["label_source"] if "label_source" in replay.columns else None,
                       replay["ai_correct"], replay["correctness"], config, feature_columns)
    holdout = cases.loc[cases["split"] == "holdout"].groupby("stratum").size()
    strata_table = strata_table.assign(
        accuracy=strata_table["correct"] / strata_table["population"].where(strata_table["population"] > 0),
        holdout=holdout.reindex(strata_table["stratum"]).fillna(0).astype("int64").to_numpy(),
    )[["stratum", "population", "correct", "accuracy", "factor", "sample", "holdout", "inclusion_prob", "weight"]]
    plan = plan_of(config, window)
    plan["labels"] = "implicit"
    version = content_version(plan, cases, frame.digest())
    projected = estimate_from_cases(cases, "ai_correct", strata_table[["stratum", "population"]])
    window_accuracy = float(frame.correct.mean()) if frame.size else float("nan")
    return EvalSet(version=version, plan=plan, cases=cases, strata=strata_table, population=frame.size,
                   window_accuracy=window_accuracy, projected=projected, allocation=design.allocation,
                   label_basis="implicit", target_population=frame.size, implicit_population=frame.size)


def case_table(replay: pd.DataFrame, strata: np.ndarray, inclusion: np.ndarray, weight: np.ndarray,
               label: pd.Series, label_source: pd.Series | None, ai_correct: pd.Series, correctness: pd.Series,
               config: EvalSetConfig, feature_columns: Sequence[str]) -> pd.DataFrame:
    """The eval set's case rows (``CASE_COLUMNS``), ordered by stratum then event_id."""
    replay = replay.reset_index(drop=True)
    features = [json.dumps({name: _json_value(value) for name, value in zip(feature_columns, values, strict=True)},
                           sort_keys=True, ensure_ascii=False)
                for values in replay[list(feature_columns)].itertuples(index=False, name=None)] \
        if feature_columns else ["{}"] * len(replay)

    def values(series: pd.Series) -> np.ndarray:
        return series.to_numpy() if isinstance(series, pd.Series) else np.asarray(series)

    cases = pd.DataFrame({
        "event_id": replay["event_id"].astype("str"),
        "stratum": pd.array(np.asarray(strata, dtype=object), dtype="str"),
        "inclusion_prob": np.asarray(inclusion, dtype=np.float64),
        "weight": np.asarray(weight, dtype=np.float64),
        "label": pd.array(values(label), dtype="str"),
        "label_source": pd.array(values(label_source) if label_source is not None else [None] * len(replay),
                                 dtype="str"),
        "split": pd.array(holdout_split(replay["event_id"], config.seed, config.holdout_fraction), dtype="str"),
        "input_text": replay["input_text"].astype("str"),
        "ai_output": replay["ai_output"].astype("str"),
        "timestamp": replay["timestamp"],
        "system": replay["system"].astype("str"),
        "model_version": replay["model_version"].astype("str"),
        "segment": replay["segment"].astype("str"),
        "ai_correct": pd.array(values(ai_correct), dtype="boolean"),
        "correctness": pd.array(values(correctness), dtype="str"),
        "failure_tags": replay["failure_tags"].astype("str"),
        "features": pd.array(features, dtype="str"),
    })
    return cases.sort_values(["stratum", "event_id"], kind="stable").reset_index(drop=True)


def sample_cases(cases: pd.DataFrame, config: EvalSetConfig, window: Window | None = None,
                 feature_columns: Sequence[str] = ()) -> EvalSet:
    """An eval set drawn from an in-memory labeled_cases frame."""
    frame = frame_from_cases(cases, config)
    needed = [c for c in dict.fromkeys([*REPLAY_COLUMNS, *feature_columns])
              if c in cases.columns or c not in OPTIONAL_REPLAY_COLUMNS]

    def fetch(_day: np.ndarray, row: np.ndarray) -> pd.DataFrame:
        return cases.iloc[row][needed]

    return build_eval_set(frame, fetch, config, window, feature_columns)


def sample_from_lake(lake: Lake, window: Window, config: EvalSetConfig,
                     feature_columns: Sequence[str] = ()) -> EvalSet:
    """An eval set drawn from the window's labeled_cases files: pass 1 builds the frame, pass 2 reads the replay
    columns of the selected rows only."""
    frame = frame_from_lake(lake, window.days, config)
    needed = [c for c in dict.fromkeys([*REPLAY_COLUMNS, *feature_columns]) if c not in OPTIONAL_REPLAY_COLUMNS]

    def fetch(day: np.ndarray, row: np.ndarray) -> pd.DataFrame:
        parts, positions = [], []
        for index in np.unique(day):
            chosen = np.flatnonzero(day == index)
            table = lake.read_columns(LABELED_CASES_ASSET, window.days[int(index)], needed,
                                      optional=OPTIONAL_REPLAY_COLUMNS)
            if len(chosen) and int(row[chosen].max()) >= table.num_rows:  # the day shrank since pass 1
                raise SourceChangedError([window.days[int(index)]])
            parts.append(table.take(pa.array(row[chosen])).to_pandas())
            positions.append(chosen)
        if not parts:
            return pd.DataFrame({column: pd.Series(dtype="object") for column in needed})
        merged = pd.concat(parts, ignore_index=True)
        order = np.argsort(np.concatenate(positions), kind="stable")
        return merged.iloc[order]

    return build_eval_set(frame, fetch, config, window, feature_columns)


# ----------------------------------------------------------------------------------------------------------------
# Trusted labels: the eval set as the third phase of the review loop's audit (eval_pipelines.evalsets.trusted)
# ----------------------------------------------------------------------------------------------------------------


def _ground_truth_rows(labeled: pd.DataFrame) -> pd.DataFrame:
    """The day's labeled cases whose label is ground truth (``event_id``, ``label``, ``ai_correct``)."""
    if "label_source" not in labeled.columns:
        return pd.DataFrame(columns=["event_id", "label", "ai_correct"])
    rows = labeled["label_source"].astype("object").to_numpy() == GROUND_TRUTH
    return labeled.loc[rows, ["event_id", "label", "ai_correct"]].reset_index(drop=True)


def _trusted_digest(frame: TrustedFrame, seed: int) -> str:
    """Order-independent digest of the trusted frame: its cases (key, cell, correctness) and every cell's sizes."""
    labels = frame.cells["cell"].astype(str).tolist()
    codes_of = {label: i for i, label in enumerate(labels)}
    codes = np.array([codes_of[c] for c in frame.cases["cell"].astype(str)], dtype=np.int64)
    keys = sampling_keys(frame.cases["event_id"].astype(str).reset_index(drop=True), seed)
    cases = frame_digest(keys, codes, labels, frame.cases["ai_correct"].to_numpy(dtype=bool))
    sizes = hashlib.sha256(json.dumps(frame.cells[["cell", "population", "audited", "trusted"]].astype(str)
                                      .values.tolist()).encode()).hexdigest()[:16]
    labels_hash = hashlib.sha256(json.dumps(frame.cases[["event_id", "label", "label_source"]].astype(str)
                                            .values.tolist()).encode()).hexdigest()[:16]
    return f"{cases}-{sizes}-{labels_hash}"


def build_trusted_eval_set(frame: TrustedFrame, fetch: Callable[[np.ndarray, np.ndarray], pd.DataFrame],
                           config: EvalSetConfig, window: Window | None, feature_columns: Sequence[str] = (),
                           implicit: tuple[float, int] = (float("nan"), 0),
                           days_without_review: Sequence[str] = ()) -> EvalSet:
    """Draw phase three on the trusted frame, fetch the selected cases' replay columns and version the result.

    ``fetch(days, event_ids)`` returns the ``REPLAY_COLUMNS`` plus feature columns of those labeled cases, in that
    order. ``implicit``: the window's implicit-label accuracy and its population (labeled cases), kept beside the
    corrected figures.
    """
    drawn = draw_trusted(frame, config.size, config.min_per_stratum, config.seed)
    chosen = frame.cases.iloc[drawn.selected].reset_index(drop=True)
    replay = fetch(chosen["day"].to_numpy(), chosen["event_id"].astype(str).to_numpy()).reset_index(drop=True)
    if len(replay) != len(chosen) or (replay["event_id"].astype(str).to_numpy()
                                      != chosen["event_id"].astype(str).to_numpy()).any():
        found = set(replay["event_id"].astype(str)) if len(replay) else set()
        lost = chosen.loc[~chosen["event_id"].astype(str).isin(found), "day"]
        raise SourceChangedError(list(lost.unique()) or list(chosen["day"].unique()))
    strata = drawn.strata.set_index("stratum")
    cells = chosen["cell"].astype(str)
    correct = chosen["ai_correct"].to_numpy(dtype=bool)
    cases = case_table(replay, cells.to_numpy(), strata["inclusion_prob"].reindex(cells).to_numpy(),
                       strata["weight"].reindex(cells).to_numpy(), chosen["label"], chosen["label_source"],
                       chosen["ai_correct"], pd.Series(np.where(correct, "correct", "wrong")), config,
                       feature_columns)
    holdout = cases.loc[cases["split"] == "holdout"].groupby("stratum").size()
    strata_table = drawn.strata.assign(
        holdout=holdout.reindex(drawn.strata["stratum"]).fillna(0).astype("int64").to_numpy(),
    )[["stratum", "population", "audited", "trusted", "correct", "accuracy", "factor", "sample", "holdout",
       "inclusion_prob", "weight"]]
    plan = plan_of(config, window)
    plan["labels"] = "trusted"
    plan["estimator"] = ("stratified over day x audit-stratum cells (window -> audit -> eval-set draw, weight "
                         "N_c / k_c), Korn-Graubard 95% CI; trusted labels only (reviewed, else ground truth)")
    plan["days_without_review"] = list(days_without_review)
    version = content_version(plan, cases, _trusted_digest(frame, config.seed))
    populations = strata_table[["stratum", "population"]]
    projected = estimate_from_cases(cases, "ai_correct", populations)
    covered = frame.cells[frame.cells["trusted"] > 0]
    audit = stratified_estimate(frame.cases["ai_correct"].to_numpy(dtype=np.float64), frame.cases["cell"].astype(str),
                                covered.set_index("cell")["population"].astype("int64"))
    target = frame.target_population
    if target:
        # The audit estimate covers its cells only; say so in population_covered over the whole target.
        audit = Estimate(**{**audit.as_dict(), "population_covered": audit.population / target})
    allocation = AllocationResult(drawn.strata["sample"].to_numpy(dtype=np.int64), drawn.size, drawn.size_raised,
                                  drawn.census)
    return EvalSet(version=version, plan=plan, cases=cases, strata=strata_table, population=len(frame.cases),
                   window_accuracy=implicit[0], projected=projected, allocation=allocation, label_basis="trusted",
                   target_population=target, audit=audit, implicit_population=int(implicit[1]),
                   uncovered_population=frame.uncovered_population,
                   ground_truth_outside_audit=frame.ground_truth_outside_audit,
                   days_without_review=tuple(days_without_review))


def sample_trusted(days: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]], config: EvalSetConfig,
                   window: Window | None = None, feature_columns: Sequence[str] = ()) -> EvalSet:
    """A trusted-label eval set from in-memory days: ``{day: (labeled_cases, review_queue, review_labels)}``."""
    parts = [trusted_day(day, queue, verdicts, _ground_truth_rows(labeled))
             for day, (labeled, queue, verdicts) in sorted(days.items())]
    frame = combine_days(parts)
    needed = list(dict.fromkeys([*REPLAY_COLUMNS, *feature_columns]))
    by_day = {day: labeled.set_index(labeled["event_id"].astype(str), drop=False)
              for day, (labeled, _, _) in days.items()}

    def fetch(day: np.ndarray, event_id: np.ndarray) -> pd.DataFrame:
        parts, positions = [], []
        for name in np.unique(day.astype(str)):
            chosen = np.flatnonzero(day.astype(str) == name)
            parts.append(by_day[name].reindex(event_id[chosen].astype(str))[needed])
            positions.append(chosen)
        if not parts:
            return pd.DataFrame(columns=needed)
        merged = pd.concat(parts, ignore_index=True)
        return merged.iloc[np.argsort(np.concatenate(positions), kind="stable")]

    labeled_all = pd.concat([labeled for labeled, _, _ in days.values()], ignore_index=True)
    flags = labeled_all["is_labeled"].to_numpy(dtype=bool)
    correct = labeled_all.loc[flags, "ai_correct"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    implicit = (float(correct.mean()) if len(correct) else float("nan"), int(flags.sum()))
    return build_trusted_eval_set(frame, fetch, config, window, feature_columns, implicit)


REVIEW_QUEUE_ASSET = "review_queue"
REVIEW_LABELS_ASSET = "review_labels"
"""The review loop's lake datasets (phase one and the adjudicated verdicts; docs/review.md)."""


def review_days(lake: Lake, days: Sequence[str]) -> list[str]:
    """The days of ``days`` with both a review queue and review labels in the lake."""
    return [day for day in days if lake.exists(REVIEW_QUEUE_ASSET, day) and lake.exists(REVIEW_LABELS_ASSET, day)]


def _implicit_window_accuracy(lake: Lake, days: Sequence[str]) -> tuple[float, int]:
    """Implicit-label accuracy over the window's labeled cases and their count (a census of implicit labels)."""
    right = labeled = 0
    for day in days:
        table = lake.read_columns(LABELED_CASES_ASSET, day, ["is_labeled", "ai_correct"]).to_pandas()
        flags = table["is_labeled"].to_numpy(dtype=bool)
        right += int(table.loc[flags, "ai_correct"].astype("boolean").fillna(False).sum())
        labeled += int(flags.sum())
    return (right / labeled if labeled else float("nan")), labeled


def sample_trusted_from_lake(lake: Lake, window: Window, config: EvalSetConfig,
                             feature_columns: Sequence[str] = ()) -> EvalSet:
    """A trusted-label eval set from the lake: per window day the review queue (cell sizes), the review labels
    (trusted labels) and labeled_cases' ground truth; then the selected cases' replay columns.

    Days of the window without review data are outside the projection: listed in ``days_without_review``.
    """
    with_review = review_days(lake, window.days)
    if not with_review:
        raise LookupError(f"no review_queue / review_labels in the window {window.start} – {window.end}: run the "
                          "review loop (docs/review.md) or set eval_set.labels: implicit")

    def read_queue(day: str) -> pd.DataFrame:
        return lake.read_columns(REVIEW_QUEUE_ASSET, day, ["event_id", "stratum", "selected"]).to_pandas()

    def read_verdicts(day: str) -> pd.DataFrame:
        return lake.read_columns(REVIEW_LABELS_ASSET, day, ["event_id", "reviewed_label", "ai_correct"]).to_pandas()

    def read_ground_truth(day: str) -> pd.DataFrame:
        table = lake.read_columns(LABELED_CASES_ASSET, day, ["event_id", "label", "ai_correct"],
                                  optional=["label_source"]).to_pandas()
        return _ground_truth_rows(table)

    frame, _ = trusted_frame_from_days(with_review, read_queue, read_verdicts, read_ground_truth)
    if frame.cases.empty:
        raise LookupError(f"review data in {len(with_review)} day(s) of the window but no audited case has a trusted "
                          "label yet (no verdict answered, no ground truth): answer the review tasks, or set "
                          "eval_set.labels: implicit")
    needed = [c for c in dict.fromkeys([*REPLAY_COLUMNS, *feature_columns]) if c not in OPTIONAL_REPLAY_COLUMNS]

    def fetch(day: np.ndarray, event_id: np.ndarray) -> pd.DataFrame:
        parts, positions = [], []
        names = day.astype(str)
        for name in np.unique(names):
            chosen = np.flatnonzero(names == name)
            table = lake.read_columns(LABELED_CASES_ASSET, name, needed, optional=OPTIONAL_REPLAY_COLUMNS)
            ids = pa.array(event_id[chosen].astype(str))
            found = table.filter(pc.is_in(pc.cast(table.column("event_id"), pa.string()), value_set=ids))
            part = found.to_pandas()
            part = part.set_index(part["event_id"].astype(str), drop=False).reindex(event_id[chosen].astype(str))
            parts.append(part.reset_index(drop=True))
            positions.append(chosen)
        if not parts:
            return pd.DataFrame({column: pd.Series(dtype="object") for column in needed})
        merged = pd.concat(parts, ignore_index=True)
        return merged.iloc[np.argsort(np.concatenate(positions), kind="stable")]

    without = [day for day in window.days if day not in set(with_review)]
    return build_trusted_eval_set(frame, fetch, config, window, feature_columns,
                                  _implicit_window_accuracy(lake, window.days), without)
