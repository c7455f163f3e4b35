"""Reading one landing file into a flat frame, without losing a row.

Each reader has a fast, vectorised path (pyarrow) for well-formed files and a line-by-line fallback that runs
only when the fast path refuses the file (a broken JSON line, mixed types in a column, non-UTF-8 bytes, a CSV row
with the wrong number of fields). The fallback isolates the bad lines so the good ones still land, and every
line that is neither parsed nor blank is reported as a :class:`RejectedLine`.

Nested JSON objects are flattened to dotted column names (``request.text``), which is what the config's dotted
paths address.
"""

from __future__ import annotations

import gzip
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

SUPPORTED_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".ndjson", ".csv", ".csv.gz", ".parquet")
LINE_COLUMN = "__line__"
RAW_COLUMN = "__raw__"
# pyarrow parses blocks in parallel: small blocks keep both cores busy; a line longer than a block (a 1 MB text
# field) makes the parse retry with larger blocks instead of failing the file.
_JSON_BLOCK_BYTES = 8 << 20
_MAX_JSON_BLOCK_BYTES = 512 << 20
_COUNT_CHUNK = 32 << 20


@dataclass(frozen=True)
class RejectedLine:
    line_number: int
    reason: str
    raw_record: str


@dataclass
class ReadResult:
    """What one file yielded: parsed rows (``LINE_COLUMN`` holds each row's 1-based line) and rejected lines."""

    path: Path
    file_format: str
    rows: pd.DataFrame | None
    rejected: list[RejectedLine] = field(default_factory=list)
    error: str | None = None
    used_fallback: bool = False

    @property
    def rows_read(self) -> int:
        return (0 if self.rows is None else len(self.rows)) + len(self.rejected)


def file_format(path: Path) -> str | None:
    """The format named by a file's suffix, or None when the file is not a log file we read."""
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return "jsonl" if suffix == ".ndjson" else suffix.lstrip(".")
    return None


def read_log_file(path: Path, csv_delimiter: str = ",") -> ReadResult:
    """Read one landing file; a file that cannot be read at all comes back with ``error`` set, never raises."""
    fmt = file_format(path)
    if fmt is None:
        return ReadResult(path, "unknown", None, error=f"unsupported file type; expected one of {SUPPORTED_SUFFIXES}")
    try:
        if fmt == "parquet":
            return _read_parquet(path)
        data = path.read_bytes()
        if fmt.endswith(".gz"):
            data = gzip.decompress(data)
        if fmt.startswith("jsonl"):
            return _read_jsonl(path, fmt, data)
        return _read_csv(path, fmt, data, csv_delimiter)
    except (OSError, EOFError, gzip.BadGzipFile, pa.ArrowException, ValueError) as error:
        return ReadResult(path, fmt, None, error=f"{type(error).__name__}: {error}")


def _flatten(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(column.type) for column in table.columns):
        table = table.flatten()
    return table


def _with_lines(frame: pd.DataFrame, line_numbers: np.ndarray) -> pd.DataFrame:
    frame[LINE_COLUMN] = line_numbers
    return frame


def _read_parquet(path: Path) -> ReadResult:
    table = _flatten(pq.read_table(path))
    frame = table.to_pandas()
    return ReadResult(path, "parquet", _with_lines(frame, np.arange(1, len(frame) + 1)))


def _line_count(data: bytes | pa.Buffer) -> int:
    """Lines in ``data``; numpy compares in chunks and releases the GIL, so this overlaps pyarrow's parse."""
    view = np.frombuffer(data, dtype=np.uint8)
    newlines = sum(int(np.count_nonzero(view[i:i + _COUNT_CHUNK] == 10)) for i in range(0, len(view), _COUNT_CHUNK))
    return newlines + (1 if len(view) and view[-1] != 10 else 0)


def _parse_json_lines(data: pa.Buffer) -> pa.Table:
    """pyarrow's multithreaded parse; blocks grow only when one line is longer than a block."""
    block = _JSON_BLOCK_BYTES
    while True:
        try:
            return pa_json.read_json(pa.BufferReader(data), read_options=pa_json.ReadOptions(block_size=block))
        except pa.ArrowInvalid as error:
            if "straddling" not in str(error) or block >= _MAX_JSON_BLOCK_BYTES:
                raise
            block *= 8


def _read_jsonl(path: Path, fmt: str, data: bytes) -> ReadResult:
    # Reading into memory beat a memory map here: the parser's threads stalled on page faults.
    buffer = pa.py_buffer(data)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            lines = pool.submit(_line_count, buffer)
            table = _parse_json_lines(buffer)
            table.validate(full=True)  # pyarrow does not reject invalid UTF-8 on parse; this does
            # pyarrow skips blank lines and accepts several objects on one line or one object over several lines;
            # only when rows and lines agree one to one can a row be traced back to its line.
            if table.num_rows == lines.result():
                frame = _flatten(table).to_pandas()
                return ReadResult(path, fmt, _with_lines(frame, np.arange(1, len(frame) + 1)))
    except pa.ArrowInvalid:
        pass
    return _read_jsonl_by_line(path, fmt, data)


def _decode_line(raw: bytes, line_number: int) -> tuple[str | None, RejectedLine | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        text = raw.decode("utf-8", errors="backslashreplace")
        reason = f"non-UTF-8 bytes at byte {error.start} of the line; re-export the file as UTF-8"
        return None, RejectedLine(line_number, reason, text)


def _read_jsonl_by_line(path: Path, fmt: str, data: bytes) -> ReadResult:
    records: list[dict] = []
    raws: list[str] = []
    lines: list[int] = []
    rejected: list[RejectedLine] = []
    for line_number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        text, problem = _decode_line(raw, line_number)
        if problem is not None:
            rejected.append(problem)
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            rejected.append(RejectedLine(line_number, f"unparseable JSON: {error.msg} at column {error.colno}", text))
            continue
        if not isinstance(record, dict):
            rejected.append(RejectedLine(line_number, f"not a JSON object (got {type(record).__name__})", text))
            continue
        records.append(record)
        raws.append(text)
        lines.append(line_number)
    frame = pd.json_normalize(records) if records else pd.DataFrame(index=range(0))
    frame[RAW_COLUMN] = pd.Series(raws, dtype=object)
    return ReadResult(path, fmt, _with_lines(frame, np.asarray(lines, dtype=np.int64)), rejected,
                      used_fallback=True)


def _csv_header(data: bytes, delimiter: str) -> list[str]:
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    return list(pd.read_csv(io.StringIO(first_line), sep=delimiter, nrows=0).columns)


def _read_csv(path: Path, fmt: str, data: bytes, delimiter: str) -> ReadResult:
    """CSV values are read as text and typed later by the contract, so one bad cell cannot fail a column."""
    try:
        header = _csv_header(data, delimiter)
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        return ReadResult(path, fmt, None, error=f"no readable header line: {error}")
    lines = data.split(b"\n")
    rejected: list[RejectedLine] = []
    # Non-UTF-8 bytes would fail the whole pyarrow read: take those lines out first, keeping their numbers.
    try:
        data.decode("utf-8")
        kept_line_numbers = None
    except UnicodeDecodeError:
        kept: list[bytes] = []
        kept_line_numbers = []
        for line_number, raw in enumerate(lines, start=1):
            text, problem = _decode_line(raw, line_number)
            if problem is not None:
                rejected.append(problem)
            else:
                kept.append(raw)
                kept_line_numbers.append(line_number)
        data = b"\n".join(kept)

    bad_rows: list[tuple[int | None, str, str]] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        bad_rows.append((row.number, f"wrong number of fields: expected {row.expected_columns}, "
                         f"got {row.actual_columns}", row.text))
        return "skip"

    table = pa_csv.read_csv(
        io.BytesIO(data),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid_row,
                                          newlines_in_values=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True
        ),
    )
    # pyarrow numbers rows from 1 at the header; map them back to the file's physical lines.
    physical = (lambda n: kept_line_numbers[n - 1]) if kept_line_numbers is not None else (lambda n: n)
    text_lines = data.split(b"\n")
    if any(number is None for number, _, _ in bad_rows):
        # Multithreaded parsing does not know row numbers: find each bad row by its text instead.
        unclaimed = {}
        for n, raw in enumerate(text_lines, start=1):
            unclaimed.setdefault(raw.rstrip(b"\r").decode("utf-8"), []).append(n)
        bad_rows = [(number if number is not None else unclaimed.get(text, [-1]).pop(0), reason, text)
                    for number, reason, text in bad_rows]
    skipped = {number for number, _, _ in bad_rows}
    for number, reason, text in bad_rows:
        rejected.append(RejectedLine(physical(number) if number > 0 else -1, reason, text))
    non_blank = [n for n, raw in enumerate(text_lines, start=1) if raw.strip()]
    row_lines = [physical(n) for n in non_blank[1:] if n not in skipped]
    frame = table.to_pandas()
    if len(row_lines) != len(frame):  # quoted newlines inside values: fall back to record numbers
        row_lines = list(range(2, len(frame) + 2))
    used_fallback = bool(rejected)
    rejected.sort(key=lambda item: item.line_number)
    return ReadResult(path, fmt, _with_lines(frame, np.asarray(row_lines, dtype=np.int64)), rejected,
                      used_fallback=used_fallback)
