"""Map a raw frame onto the canonical contract and validate every row, vectorised.

A row is valid only if every field maps, types and passes its rule; otherwise it is quarantined with the first
problem found (the field and a reason that says what to fix). Checks run column by column over the whole frame,
so the cost is a handful of vectorised passes, not a Python loop per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.config import Settings
from eval_pipelines.ingestion.contract import CANONICAL_FIELDS, IDENTIFIER_MAX_CHARS, FieldKind, FieldSpec
from eval_pipelines.ingestion.readers import LINE_COLUMN, RAW_COLUMN, RECORD_COLUMN

SOURCE_FILE_COLUMN = "source_file"
SOURCE_LINE_COLUMN = "source_line"
_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")
_CONFORM_THREADS = 2


@dataclass(frozen=True)
class Conformed:
    """Every row mapped to canonical columns, and which of them were rejected (and why, in ``quarantined``).

    The valid rows are not filtered out here: the day's deduplication removes more rows, and filtering a
    million rows of text once instead of twice is a large share of the cost of a clean day.
    """

    rows: pd.DataFrame
    rejected: np.ndarray  # bool per row of ``rows``
    quarantined: pd.DataFrame  # source_file, line_number, record_index, reason, field, raw_record

    @property
    def valid_count(self) -> int:
        return len(self.rows) - int(self.rejected.sum())



_Reason = str | Callable[[np.ndarray], Sequence[str]]


class _Problems:
    """First problem per row: later checks never overwrite an earlier reason.

    Reasons are built only for the rows that need one (``reason`` may be a function of the offending rows'
    positions), so a clean million-row file costs a few boolean passes, not a million formatted strings.
    """

    def __init__(self, n_rows: int) -> None:
        self.reason = np.full(n_rows, None, dtype=object)
        self.field = np.full(n_rows, None, dtype=object)
        self._flagged = np.zeros(n_rows, dtype=bool)

    def add(self, mask: pd.Series | np.ndarray, field: str, reason: _Reason) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self._flagged
        if not mask.any():
            return
        positions = np.flatnonzero(mask)
        self.reason[positions] = reason if isinstance(reason, str) else list(reason(positions))
        self.field[positions] = field
        self._flagged[positions] = True

    @property
    def any_row(self) -> np.ndarray:
        return self._flagged


class _Findings:
    """One field's problems in the order its checks found them, to be merged into :class:`_Problems` later.

    Fields are converted in parallel threads; merging in contract order keeps "first problem per row"
    deterministic.
    """

    def __init__(self) -> None:
        self.items: list[tuple[np.ndarray, str, _Reason]] = []

    def add(self, mask: pd.Series | np.ndarray, field: str, reason: _Reason) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.items.append((mask, field, reason))


def target_fields(settings: Settings) -> list[FieldSpec]:
    """The canonical fields plus the configured features, as contract entries."""
    features = [FieldSpec(name, FieldKind.FLOAT, False, "numeric feature") for name in settings.features.numeric]
    features += [FieldSpec(name, FieldKind.STRING, False, "categorical feature", max_chars=IDENTIFIER_MAX_CHARS,
                           low_cardinality=True)
                 for name in settings.features.categorical]
    return [*CANONICAL_FIELDS, *features]


def _quoted(values: pd.Series, prefix: str, suffix: str = "", limit: int = 60) -> Callable[[np.ndarray], list[str]]:
    """A reason builder quoting each offending value (cut to ``limit`` characters)."""
    return lambda positions: [f"{prefix}{str(v)[:limit]!r}{suffix}" for v in values.iloc[positions]]


def _blank_where(series: pd.Series, mask: np.ndarray) -> pd.Series:
    """``series.mask(mask)``, skipped when nothing is masked: on a clean million rows each mask is a full copy."""
    return series.mask(mask) if mask.any() else series


def _structured(series: pd.Series) -> np.ndarray:
    """Rows holding a JSON object or list where a scalar was expected (only possible on the fallback path)."""
    if series.dtype != object:
        return np.zeros(len(series), dtype=bool)
    return series.map(lambda value: isinstance(value, (dict, list))).to_numpy(dtype=bool)


def _utf8_bytes(text: pd.Series) -> np.ndarray:
    """Each value's length in UTF-8 bytes (read from Arrow's offsets, not counted); 0 for nulls."""
    lengths = pc.binary_length(pa.array(text, type=pa.large_string()))
    return pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False)


def _to_text(series: pd.Series, spec: FieldSpec, settings: Settings, findings: _Findings) -> pd.Series:
    structured = _structured(series)
    findings.add(structured, spec.name, f"wrong type for {spec.name}: expected text, got a JSON object or list")
    series = _blank_where(series, structured)
    if pd.api.types.is_float_dtype(series) and not series.dropna().empty:
        # 1234.0 from a numeric id column reads back as "1234", not "1234.0"
        whole = series.dropna() % 1 == 0
        if whole.all():
            series = series.astype("Int64")
    text = series.astype("str")
    if not spec.free_text:  # identifiers and vocabularies: " accepted " means "accepted"; free text stays as sent
        text = text.str.strip()
    if spec.required or not spec.free_text:
        text = _blank_where(text, _utf8_bytes(text) == 0)
    value_map = settings.mapping.value_maps.get(spec.name)
    if value_map:
        text = text.where(~text.isin(list(value_map)), text.map(value_map))
    if spec.max_chars is not None and spec.max_chars < settings.source.max_text_chars:
        limit, rule = spec.max_chars, "identifiers and categories are keys in the warehouse; map a shorter value"
    else:
        limit, rule = settings.source.max_text_chars, "raise source.max_text_chars if such values are legitimate"
    # A value has at least as many bytes as characters, so only values over the limit in bytes are counted in
    # characters: counting code points in every value was the costliest step of conforming a clean file.
    too_long = _utf8_bytes(text) > limit
    if too_long.any():
        candidates = np.flatnonzero(too_long)
        too_long[candidates] = text.iloc[candidates].str.len().to_numpy() > limit
    findings.add(too_long, spec.name, lambda positions: [
        f"{spec.name} is {n:,.0f} characters, over the limit of {limit:,}; {rule}"
        for n in text.iloc[positions].str.len()])
    if spec.allowed is not None:
        unknown = text.notna() & ~text.isin(spec.allowed)
        findings.add(unknown, spec.name, _quoted(text, "unknown value ", f" for {spec.name}; allowed: "
                     f"{list(spec.allowed)} (map other vocabularies under mapping.value_maps.{spec.name})"))
    return _blank_where(text, too_long)


def _to_float(series: pd.Series, spec: FieldSpec, settings: Settings, findings: _Findings) -> pd.Series:
    structured = _structured(series)
    series = _blank_where(series, structured)
    if pd.api.types.is_bool_dtype(series):
        numbers = pd.Series(np.nan, index=series.index)
        wrong = series.notna().to_numpy()
    else:
        numbers = pd.to_numeric(series, errors="coerce").astype("float64")
        wrong = series.notna().to_numpy() & numbers.isna().to_numpy()
    findings.add(structured | wrong, spec.name, _quoted(series, f"wrong type for {spec.name}: expected a number, got "))
    numbers = numbers * settings.mapping.scale.get(spec.name, 1.0)
    not_finite = numbers.notna() & ~np.isfinite(numbers)
    findings.add(not_finite, spec.name, f"{spec.name} is not a finite number")
    out_of_range = pd.Series(False, index=numbers.index)
    if spec.minimum is not None:
        out_of_range |= numbers < spec.minimum
    if spec.maximum is not None:
        out_of_range |= numbers > spec.maximum
    bounds = f"[{spec.minimum if spec.minimum is not None else '-inf'}, " \
             f"{spec.maximum if spec.maximum is not None else 'inf'}]"
    findings.add(out_of_range, spec.name, lambda positions: [
        f"{spec.name} out of range {bounds}: got {v:g} (after mapping.scale; check the unit)"
        for v in numbers.iloc[positions]])
    return _blank_where(numbers, (not_finite | out_of_range).to_numpy(dtype=bool))


def _to_bool(series: pd.Series, spec: FieldSpec, settings: Settings, findings: _Findings) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    value_map = {**{w: "true" for w in _TRUE_WORDS}, **{w: "false" for w in _FALSE_WORDS},
                 **{str(k).lower(): str(v).lower() for k, v in settings.mapping.value_maps.get(spec.name, {}).items()}}
    structured = _structured(series)
    if pd.api.types.is_numeric_dtype(series):
        words = series.map({1: "true", 0: "false"})
    else:
        words = series.mask(structured).astype("str").str.strip().str.lower().map(value_map)
    wrong = series.notna().to_numpy() & ~words.isin(["true", "false"]).to_numpy()
    findings.add(wrong | structured, spec.name, _quoted(
        series, f"wrong type for {spec.name}: expected true/false, got ",
        f" (map it under mapping.value_maps.{spec.name})"))
    return words.map({"true": True, "false": False}).astype("boolean")


def _to_timestamp(series: pd.Series, spec: FieldSpec, settings: Settings, findings: _Findings) -> pd.Series:
    fmt = settings.mapping.timestamp_format
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    elif fmt in ("epoch_s", "epoch_ms"):
        numbers = pd.to_numeric(series.mask(_structured(series)), errors="coerce")
        parsed = pd.to_datetime(numbers, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce")
    else:
        text = series.mask(_structured(series)).astype("str")
        parsed = _iso8601_with_offsets(text) if fmt == "iso8601" else None
        if parsed is None:
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601" if fmt == "iso8601" else fmt)
    wrong = series.notna().to_numpy() & parsed.isna().to_numpy()
    findings.add(wrong, spec.name, _quoted(series, f"unparseable {spec.name} ",
                                           f"; expected mapping.timestamp_format {fmt!r}"))
    return parsed.dt.as_unit("us")


def _iso8601_with_offsets(text: pd.Series) -> pd.Series | None:
    """Arrow's strict ISO-8601 parse, about ten times faster than pandas', or None if any value needs pandas.

    Arrow accepts only full date-times with a ``Z`` or an offset, which it reads exactly as pandas does; a date
    alone, a naive time or nanoseconds make the whole column fall back to ``pd.to_datetime``.
    """
    try:
        stamps = pc.cast(pa.array(text, type=pa.large_string()), pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return None
    # The parsed values belong to the rows in order: take the array, so the raw frame's index labels them as is.
    return pd.Series(stamps.to_pandas().array, index=text.index)


_CONVERTERS = {
    FieldKind.STRING: _to_text,
    FieldKind.FLOAT: _to_float,
    FieldKind.BOOL: _to_bool,
    FieldKind.TIMESTAMP: _to_timestamp,
}


def day_window(day: date, tolerance_minutes: float) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The accepted timestamp range for a partition day: [D - tolerance, D + 1 day + tolerance)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    slack = timedelta(minutes=tolerance_minutes)
    return pd.Timestamp(start - slack), pd.Timestamp(start + timedelta(days=1) + slack)


def _conform_field(raw: pd.DataFrame, spec: FieldSpec, settings: Settings) -> tuple[pd.Series, _Findings]:
    findings = _Findings()
    source_name = settings.source_column(spec.name)
    if source_name in raw.columns:
        values = _CONVERTERS[spec.kind](raw[source_name], spec, settings, findings)
    elif spec.name in settings.mapping.constants:
        constant = pd.Series(settings.mapping.constants[spec.name], index=raw.index, dtype=object)
        values = _CONVERTERS[spec.kind](constant, spec, settings, findings)
    else:
        values = _CONVERTERS[spec.kind](pd.Series(None, index=raw.index, dtype=object), spec, settings, findings)
        if spec.required:
            findings.add(np.ones(len(raw), dtype=bool), spec.name,
                         f"missing required field {spec.name}: source column {source_name!r} is not in the file "
                         f"(set mapping.columns.{spec.name} or mapping.constants.{spec.name})")
    if spec.required:
        findings.add(values.isna(), spec.name, f"missing required field {spec.name} (null or empty)")
    return values, findings


def conform(raw: pd.DataFrame, settings: Settings, day: date, source_file: str) -> Conformed:
    """Map ``raw`` (a reader's frame) to canonical columns; split it into valid rows and quarantined rows."""
    specs = target_fields(settings)
    # Most of a field's conversion runs in Arrow and numpy, which release the GIL: two threads nearly halve it.
    with ThreadPoolExecutor(max_workers=_CONFORM_THREADS, thread_name_prefix="conform") as pool:
        converted = list(pool.map(lambda spec: _conform_field(raw, spec, settings), specs))
    problems = _Problems(len(raw))
    columns: dict[str, pd.Series] = {}
    for spec, (values, findings) in zip(specs, converted, strict=True):
        for mask, field, reason in findings.items:
            problems.add(mask, field, reason)
        columns[spec.name] = values

    start, end = day_window(day, settings.source.timestamp_tolerance_minutes)
    stamps = columns["timestamp"]
    outside = stamps.notna() & ((stamps < start) | (stamps >= end))
    problems.add(outside, "timestamp", lambda positions: [
        f"timestamp {stamp.isoformat()} is outside partition day {day} by more than "
        f"source.timestamp_tolerance_minutes ({settings.source.timestamp_tolerance_minutes:g}); "
        "is the file in the right day folder?" for stamp in stamps.iloc[positions]])

    canonical = pd.DataFrame(columns, index=raw.index)
    canonical[SOURCE_FILE_COLUMN] = source_file
    canonical[SOURCE_LINE_COLUMN] = raw[LINE_COLUMN].to_numpy(dtype=np.int64)
    bad = problems.any_row
    offending = raw.iloc[np.flatnonzero(bad)]
    reasons = problems.reason[bad]
    if SPAN_ID_COLUMN in offending.columns:  # an OTLP span: say which one, a line holds many
        reasons = np.asarray([f"span {span_id}: {reason}" for span_id, reason in
                              zip(offending[SPAN_ID_COLUMN].astype(str), reasons, strict=True)], dtype=object)
    quarantined = pd.DataFrame({
        "source_file": source_file,
        "line_number": offending[LINE_COLUMN].to_numpy(dtype=np.int64),
        "record_index": (offending[RECORD_COLUMN].to_numpy(dtype=np.int64) if RECORD_COLUMN in offending.columns
                         else np.zeros(len(offending), dtype=np.int64)),
        "reason": reasons,
        "field": problems.field[bad],
        "raw_record": _raw_records(offending),
    })
    return Conformed(canonical, bad.copy(), quarantined)


SPAN_ID_COLUMN = "span.span_id"


def _raw_records(rows: pd.DataFrame) -> list[str]:
    """The record as it arrived: the original line when the reader kept it, else the parsed fields as JSON."""
    if rows.empty:
        return []
    if RAW_COLUMN in rows.columns:
        return rows[RAW_COLUMN].tolist()
    fields = rows.drop(columns=[c for c in (LINE_COLUMN, RECORD_COLUMN) if c in rows.columns])
    return [json.dumps({k: v for k, v in record.items() if not _is_missing(v)}, default=str, ensure_ascii=False)
            for record in fields.to_dict(orient="records")]


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
