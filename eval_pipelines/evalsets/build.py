"""Building a versioned eval set from the labeled cases of a window: frame → design → replay rows → version.

``sample_from_lake`` is what the ``eval_set`` asset runs (two lean passes over the window's Parquet files);
``sample_cases`` does the same from an in-memory frame (tests, notebooks). Both return an :class:`EvalSet` whose
``cases`` are the rows of ``eval_set_cases`` and whose ``strata`` are the rows of ``eval_set_strata``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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
from eval_pipelines.evalsets.estimation import Estimate, estimate_from_cases
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.evalsets.window import Window
from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake

REPLAY_COLUMNS: tuple[str, ...] = (
    "event_id", "timestamp", "system", "model_version", "segment", "input_text", "ai_output", "label",
    "ai_correct", "correctness", "failure_tags",
)
"""labeled_cases columns copied into the eval set: what a scored run needs to replay and score a case."""

CASE_COLUMNS: tuple[str, ...] = (
    "event_id", "stratum", "inclusion_prob", "weight", "label", "split", "input_text", "ai_output", "timestamp",
    "system", "model_version", "segment", "ai_correct", "correctness", "failure_tags", "features",
)
"""Columns of an eval set's cases (``eval_set_cases`` without ``version``)."""

PLAN_KEYS: tuple[str, ...] = (
    "window_days", "strata", "size", "allocation", "oversample", "min_per_stratum", "seed", "holdout_fraction",
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
    population: int  # labeled cases in the window (the frame)
    window_accuracy: float  # production accuracy over the whole frame
    projected: Estimate  # the same figure projected from the set alone
    allocation: AllocationResult

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
    features = [json.dumps({name: _json_value(value) for name, value in zip(feature_columns, values, strict=True)},
                           sort_keys=True, ensure_ascii=False)
                for values in replay[list(feature_columns)].itertuples(index=False, name=None)] \
        if feature_columns else ["{}"] * len(replay)
    cases = pd.DataFrame({
        "event_id": replay["event_id"].astype("str"),
        "stratum": pd.array(labels[codes], dtype="str"),
        "inclusion_prob": strata_table["inclusion_prob"].to_numpy()[codes],
        "weight": strata_table["weight"].to_numpy()[codes],
        "label": replay["label"].astype("str"),
        "split": pd.array(holdout_split(replay["event_id"], config.seed, config.holdout_fraction), dtype="str"),
        "input_text": replay["input_text"].astype("str"),
        "ai_output": replay["ai_output"].astype("str"),
        "timestamp": replay["timestamp"],
        "system": replay["system"].astype("str"),
        "model_version": replay["model_version"].astype("str"),
        "segment": replay["segment"].astype("str"),
        "ai_correct": replay["ai_correct"].astype("boolean"),
        "correctness": replay["correctness"].astype("str"),
        "failure_tags": replay["failure_tags"].astype("str"),
        "features": pd.array(features, dtype="str"),
    })
    cases = cases.sort_values(["stratum", "event_id"], kind="stable").reset_index(drop=True)
    holdout = cases.loc[cases["split"] == "holdout"].groupby("stratum").size()
    strata_table = strata_table.assign(
        accuracy=strata_table["correct"] / strata_table["population"].where(strata_table["population"] > 0),
        holdout=holdout.reindex(strata_table["stratum"]).fillna(0).astype("int64").to_numpy(),
    )[["stratum", "population", "correct", "accuracy", "factor", "sample", "holdout", "inclusion_prob", "weight"]]
    plan = plan_of(config, window)
    version = content_version(plan, cases, frame.digest())
    projected = estimate_from_cases(cases, "ai_correct", strata_table[["stratum", "population"]])
    window_accuracy = float(frame.correct.mean()) if frame.size else float("nan")
    return EvalSet(version=version, plan=plan, cases=cases, strata=strata_table, population=frame.size,
                   window_accuracy=window_accuracy, projected=projected, allocation=design.allocation)


def sample_cases(cases: pd.DataFrame, config: EvalSetConfig, window: Window | None = None,
                 feature_columns: Sequence[str] = ()) -> EvalSet:
    """An eval set drawn from an in-memory labeled_cases frame."""
    frame = frame_from_cases(cases, config)
    needed = list(dict.fromkeys([*REPLAY_COLUMNS, *feature_columns]))

    def fetch(_day: np.ndarray, row: np.ndarray) -> pd.DataFrame:
        return cases.iloc[row][needed]

    return build_eval_set(frame, fetch, config, window, feature_columns)


def sample_from_lake(lake: Lake, window: Window, config: EvalSetConfig,
                     feature_columns: Sequence[str] = ()) -> EvalSet:
    """An eval set drawn from the window's labeled_cases files: pass 1 builds the frame, pass 2 reads the replay
    columns of the selected rows only."""
    frame = frame_from_lake(lake, window.days, config)
    needed = list(dict.fromkeys([*REPLAY_COLUMNS, *feature_columns]))

    def fetch(day: np.ndarray, row: np.ndarray) -> pd.DataFrame:
        parts, positions = [], []
        for index in np.unique(day):
            chosen = np.flatnonzero(day == index)
            table = lake.read_columns(LABELED_CASES_ASSET, window.days[int(index)], needed)
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
