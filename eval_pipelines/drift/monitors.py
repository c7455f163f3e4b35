"""What a drift report watches, and how each watched quantity is read from a frame of cases.

A :class:`Monitor` names one row of the report (``column`` + ``kind``) and where its values come from: a column
as it is, or a quantity derived from one (the length of ``input_text``, its writing script when the data has no
language column, accuracy by confidence bin for calibration). :func:`default_monitors` lists the fixed set for
``labeled_cases`` (inputs, outputs, confidence, human behaviour, operations) plus the configured features;
:func:`infer_monitors` guesses kinds for an arbitrary file (the ``drift`` CLI). Extraction is vectorised in
numpy / pyarrow; nothing here loops over rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MonitorKind = Literal["numeric", "categorical", "calibration"]
Derive = Literal["value", "length", "script", "calibration"]

CONFIDENCE = "confidence"
CORRECT = "ai_correct"
TEXT = "input_text"

# Writing scripts, checked in this order; the first one present in a text names it, Latin only when no other is.
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("cjk", r"[\p{Han}\p{Hiragana}\p{Katakana}]"),
    ("hangul", r"\p{Hangul}"),
    ("cyrillic", r"\p{Cyrillic}"),
    ("arabic", r"\p{Arabic}"),
    ("hebrew", r"\p{Hebrew}"),
    ("greek", r"\p{Greek}"),
    ("devanagari", r"\p{Devanagari}"),
    ("thai", r"\p{Thai}"),
    ("latin", r"\p{Latin}"),
)


@dataclass(frozen=True)
class Monitor:
    """One monitored quantity: the report row ``(column, kind)`` and the frame column it is read from."""

    column: str
    kind: MonitorKind
    source: str
    derive: Derive = "value"
    group: str = "input"

    @property
    def key(self) -> tuple[str, str]:
        return self.column, self.kind

    @property
    def sources(self) -> tuple[str, ...]:
        return (CONFIDENCE, CORRECT) if self.derive == "calibration" else (self.source,)


TEXT_EDIT_COLUMNS: tuple[str, ...] = ("edit_similarity", "retained_share")
"""labeled_cases columns of free-text systems (NaN on label systems' rows): how much of the AI's draft survived."""


def default_monitors(numeric_features: Sequence[str], categorical_features: Sequence[str],
                     exclude: Iterable[str] = (), language_column: str = "language",
                     text_outputs: bool = False) -> list[Monitor]:
    """The monitors of a ``labeled_cases`` report, grouped as the issue asks: inputs, outputs, confidence, humans.

    Without a ``language_column`` among the features, the writing-script mix of ``input_text`` stands in for the
    language mix. ``exclude`` drops monitors by column name. ``text_outputs`` (some system has
    ``output_kind: text``) adds ``edit_similarity`` and ``retained_share`` as human-behaviour signals: people editing
    drafts more heavily is drift in how the AI is received before any label shows it. Their values exist only on
    the text systems' rows (NaN elsewhere, counted as missing), so a label-only configuration is unchanged.
    """
    monitors: list[Monitor] = [Monitor(name, "numeric", name, group="input") for name in numeric_features]
    monitors += [Monitor(name, "categorical", name, group="input") for name in categorical_features]
    monitors.append(Monitor("input_text_length", "numeric", TEXT, "length", "input"))
    if language_column not in categorical_features:
        monitors.append(Monitor("input_text_script", "categorical", TEXT, "script", "input"))
    monitors += [
        Monitor("segment", "categorical", "segment", group="input"),
        Monitor("model_version", "categorical", "model_version", group="output"),
        Monitor("ai_output", "categorical", "ai_output", group="output"),
        Monitor(CONFIDENCE, "numeric", CONFIDENCE, group="confidence"),
        Monitor(CONFIDENCE, "calibration", CONFIDENCE, "calibration", "confidence"),
        Monitor("user_action", "categorical", "user_action", group="human"),
        Monitor("decision_seconds", "numeric", "decision_seconds", group="human"),
        *(Monitor(name, "numeric", name, group="human") for name in (TEXT_EDIT_COLUMNS if text_outputs else ())),
        Monitor("status", "categorical", "status", group="operations"),
        Monitor("latency_ms", "numeric", "latency_ms", group="operations"),
        Monitor("cost_usd", "numeric", "cost_usd", group="operations"),
    ]
    excluded = set(exclude)
    return [m for m in monitors if m.column not in excluded]


def available(monitors: Iterable[Monitor], columns: Iterable[str]) -> tuple[list[Monitor], list[Monitor]]:
    """Split monitors into those whose source columns are present and those that are not."""
    present = set(columns)
    usable, absent = [], []
    for monitor in monitors:
        (usable if all(s in present for s in monitor.sources) else absent).append(monitor)
    return usable, absent


@dataclass(frozen=True)
class InferredKinds:
    monitors: list[Monitor]
    skipped: dict[str, str]  # column -> why it was not monitored


# Columns that record where and when a row came from, not what it says: a new day always has new file names, new
# ids, new row numbers and new timestamps, so "drift" there is certain and meaningless (issue 14 item 8).
BOOKKEEPING_COLUMNS = frozenset({"source_file", "source_line", "source_row", "file", "filename", "path", "line",
                                 "row_number", "index", "event_id", "id", "uuid", "timestamp", "ts",
                                 "created_at", "updated_at", "ingested_at", "partition_date"})
_BOOKKEEPING_SUFFIXES = ("_id", "_ids", "_uuid", "_at", "_ts", "_timestamp", "_file", "_path", "_line")


def is_bookkeeping(column: str) -> bool:
    """Whether ``column`` names provenance (file, id, row number, timestamp) rather than content."""
    name = column.lower()
    return name in BOOKKEEPING_COLUMNS or name.endswith(_BOOKKEEPING_SUFFIXES) or name.startswith("__")


def infer_monitors(frame: pd.DataFrame, numeric: Sequence[str] = (), categorical: Sequence[str] = (),
                   max_categories: int = 200) -> InferredKinds:
    """Monitors for an arbitrary frame: the given columns with the given kinds, else every column by its type.

    When neither list is given, bookkeeping columns (:func:`is_bookkeeping`) are skipped; numbers (not booleans) are
    numeric; booleans, categoricals and strings with at most ``max_categories`` distinct values are categorical;
    other strings (ids, free text) and dates are skipped with the reason. When a list is given only the listed
    columns are monitored.
    """
    missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
    if missing:
        raise KeyError(f"column(s) not found: {', '.join(missing)}; available: {', '.join(map(str, frame.columns))}")
    if numeric or categorical:
        both = set(numeric) & set(categorical)
        if both:
            raise ValueError(f"column(s) given as both numeric and categorical: {', '.join(sorted(both))}")
        monitors = [Monitor(c, "numeric", c) for c in numeric] + [Monitor(c, "categorical", c) for c in categorical]
        return InferredKinds(monitors, {})
    monitors: list[Monitor] = []
    skipped: dict[str, str] = {}
    for name in frame.columns:
        column = str(name)
        series = frame[name]
        dtype = series.dtype
        if is_bookkeeping(column):
            skipped[column] = ("bookkeeping column (source file, id, row number or timestamp): its drift says "
                               f"nothing about the data; pass --numeric/--categorical {column} to compare it")
        elif pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            monitors.append(Monitor(column, "categorical", column))
        elif pd.api.types.is_numeric_dtype(dtype):
            monitors.append(Monitor(column, "numeric", column))
        elif pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            skipped[column] = "date/time column (pass it with --numeric after converting it to a number)"
        else:
            distinct = series.nunique(dropna=True)
            if distinct <= max_categories:
                monitors.append(Monitor(column, "categorical", column))
            else:
                skipped[column] = (f"{distinct:,} distinct values: looks like an id or free text "
                                   f"(pass --categorical {column} to force)")
    return InferredKinds(monitors, skipped)


# ----------------------------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------------------------


def _arrow_strings(series: pd.Series) -> pa.Array:
    array = pa.array(series, from_pandas=True)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.large_string())
    return array


def numeric_values(frame: pd.DataFrame, monitor: Monitor) -> np.ndarray:
    """float64 values of a numeric monitor; missing and non-finite values are NaN."""
    series = frame[monitor.source]
    if monitor.derive == "length":
        lengths = pc.utf8_length(_arrow_strings(series))
        values = lengths.to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        if pd.api.types.is_bool_dtype(series.dtype):
            series = series.astype("float64")
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.nan)
    return values


def _scripts(series: pd.Series) -> pd.Series:
    text = _arrow_strings(series)
    empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True).to_numpy(
        zero_copy_only=False)
    labels = np.full(len(series), "other", dtype=object)
    undecided = np.ones(len(series), dtype=bool)
    for name, pattern in _SCRIPTS:
        hit = pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(zero_copy_only=False)
        labels[hit & undecided] = name
        undecided &= ~hit
    labels[empty] = None
    return pd.Series(labels, dtype="str")


def categorical_counts(frame: pd.DataFrame, monitor: Monitor) -> tuple[list[str], np.ndarray, int]:
    """(categories, counts, missing) of a categorical monitor; categories as strings, counts > 0, largest first."""
    series = _scripts(frame[monitor.source]) if monitor.derive == "script" else frame[monitor.source]
    missing = int(series.isna().sum())
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        counts = np.bincount(codes[codes >= 0], minlength=len(series.cat.categories)).astype(np.int64)
        names = [str(c) for c in series.cat.categories]
    else:
        if pd.api.types.is_float_dtype(series.dtype) or series.dtype == object:
            series = series.astype("str")  # one spelling per value: 1.0 and "1.0" are the same category
        counted = series.value_counts(dropna=True, sort=False)
        names = [str(c) for c in counted.index]
        counts = counted.to_numpy(dtype=np.int64)
    if len(set(names)) != len(names):  # distinct values with the same spelling (e.g. 1 and "1"): add them up
        merged = pd.Series(counts).groupby(pd.Index(names), sort=False).sum()
        names, counts = [str(c) for c in merged.index], merged.to_numpy(dtype=np.int64)
    order = np.lexsort((np.array(names, dtype=object).astype(str), -counts)) if len(names) else np.zeros(0, int)
    keep = order[counts[order] > 0]
    return [names[i] for i in keep], counts[keep], missing


def calibration_values(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """(confidence, correct as 0/1) of rows with both a confidence and a verdict; plus the count of other rows."""
    confidence = frame[CONFIDENCE].to_numpy(dtype=np.float64, na_value=np.nan)
    correct = frame[CORRECT].astype("boolean").to_numpy(dtype=np.float64, na_value=np.nan)
    usable = np.isfinite(confidence) & np.isfinite(correct)
    return confidence[usable], correct[usable], int(len(frame) - usable.sum())
