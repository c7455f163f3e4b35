"""Reading one landing file into a flat frame, without losing a row.

Each reader has a fast, vectorised path (pyarrow) for well-formed files and a line-by-line fallback that runs
only when the fast path refuses the file (a broken JSON line, mixed types in a column, non-UTF-8 bytes, a CSV row
with the wrong number of fields). The fallback isolates the bad lines so the good ones still land, and every
line that is neither parsed nor blank is reported as a :class:`RejectedLine`.

Nested JSON objects are flattened to dotted column names (``request.text``), which is what the config's dotted
paths address.
"""

from __future__ import annotations

import codecs
import csv
import gc
import gzip
import io
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from eval_pipelines.ingestion.otlp import (
    FeedbackRecord,
    FeedbackSelection,
    OtlpError,
    SpanColumns,
    SpanFilter,
    feedback_of_line,
    is_feedback_line,
    spans_of_line,
)

SUPPORTED_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".ndjson", ".csv", ".csv.gz", ".parquet")
LINE_COLUMN = "__line__"
RAW_COLUMN = "__raw__"
RECORD_COLUMN = "__record__"  # a record's position within its line: OTLP lines hold many spans; absent otherwise
OTLP_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz")
# pyarrow parses blocks in parallel: small blocks keep both cores busy; a line longer than a block (a 1 MB text
# field) makes the parse retry with larger blocks instead of failing the file.
_JSON_BLOCK_BYTES = 8 << 20
_MAX_JSON_BLOCK_BYTES = 512 << 20
# Chunks that stay in the CPU cache: counting 32 MB chunks was memory-bound and slowed the parse beside it.
_COUNT_CHUNK = 256 << 10
DEFAULT_MAX_JSON_DEPTH = 64
# pyarrow's JSON parser recurses once per level and overflows its stack (a segfault) somewhere between 5,000 and
# 10,000 levels (measured with pyarrow 2x on Linux); lines with more opening brackets than this never reach it.
_PYARROW_SAFE_OPENS = 1_000
_TAIL_BYTES = 16 << 10  # where the last line break of a chunk is looked for first
# A JSON string (escapes included, an unterminated one up to the end of the line) or one bracket: brackets inside
# strings are text, not nesting.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|$)|[\[\]{}]')


@dataclass(frozen=True)
class RejectedLine:
    line_number: int
    reason: str
    raw_record: str


@dataclass
class ReadResult:
    """What one file yielded: parsed rows (``LINE_COLUMN`` holds each row's 1-based line) and rejected lines."""

    path: PurePath
    file_format: str
    rows: pd.DataFrame | None
    rejected: list[RejectedLine] = field(default_factory=list)
    error: str | None = None
    used_fallback: bool = False
    rows_filtered: int = 0  # OTLP spans left out by source.span_filter, feedback not named in source.feedback
    # OTLP feedback recorded apart from its span (log-record events, span annotations) with each one's line, to be
    # joined to the day's spans by span id (ingest.join_feedback): not events, so not in rows_read.
    feedback: list[tuple[int, FeedbackRecord]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return (0 if self.rows is None else len(self.rows)) + len(self.rejected)


def file_format(path: PurePath, source_format: str = "auto") -> str | None:
    """The format of a log file: named by its suffix (``auto``), or OTLP trace lines (``otlp_json``); else None."""
    name = path.name.lower()
    if source_format == "otlp_json":
        return next(("otlp_json.gz" if suffix.endswith(".gz") else "otlp_json" for suffix in OTLP_SUFFIXES
                     if name.endswith(suffix)), None)
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return "jsonl" if suffix == ".ndjson" else suffix.lstrip(".")
    return None


def read_log_file(path: PurePath, csv_delimiter: str = ",", max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
                  source_format: str = "auto", span_filter: SpanFilter | None = None,
                  feedback: FeedbackSelection | None = None,
                  open_file: Callable[[], IO[bytes]] | None = None) -> ReadResult:
    """Read one landing file; a file that cannot be read at all comes back with ``error`` set, never raises.

    JSON lines nested deeper than ``max_json_depth`` are quarantined before any parser sees them: deep nesting
    makes ``json.loads`` raise RecursionError and crashes pyarrow's parser outright (20,000 levels: a segfault).
    ``source_format="otlp_json"`` reads OpenTelemetry trace lines, one row per span passing ``span_filter``, and
    the log records / span annotations named in ``feedback`` as feedback records for their spans.
    ``open_file`` opens an object in a store (``path`` is then its name): it is streamed, never copied to disk;
    Parquet is read by ranges, the other formats into memory once, as a ``.gz`` file on disk is.
    """
    fmt = file_format(path, source_format)
    if fmt is None:
        expected = OTLP_SUFFIXES if source_format == "otlp_json" else SUPPORTED_SUFFIXES
        return ReadResult(path, "unknown", None, error=f"unsupported file type; expected one of {expected}")
    try:
        if open_file is not None:
            return _read_opened(path, fmt, open_file, csv_delimiter, max_json_depth, span_filter,
                                feedback or FeedbackSelection())
        assert isinstance(path, Path)
        if fmt.startswith("otlp_json"):
            data = path.read_bytes()
            return _read_otlp(path, fmt, gzip.decompress(data) if fmt.endswith(".gz") else data, max_json_depth,
                              span_filter, feedback or FeedbackSelection())
        if fmt == "parquet":
            return _read_parquet(path)
        if fmt == "jsonl":  # parsed straight from the file; bytes are read into memory only for the fallback
            return _read_jsonl(path, fmt, None, max_json_depth)
        data = path.read_bytes()
        if fmt.endswith(".gz"):
            data = gzip.decompress(data)
        if fmt.startswith("jsonl"):
            return _read_jsonl(path, fmt, data, max_json_depth)
        return _read_csv(path, fmt, data, csv_delimiter)
    except (OSError, EOFError, gzip.BadGzipFile, pa.ArrowException, ValueError) as error:
        return ReadResult(path, fmt, None, error=f"{type(error).__name__}: {error}")


def _read_opened(name: PurePath, fmt: str, open_file: Callable[[], IO[bytes]], csv_delimiter: str,
                 max_json_depth: int, span_filter: SpanFilter | None, feedback: FeedbackSelection) -> ReadResult:
    """The same readers over a stream from a store: the same rows, rejections and line numbers as from disk."""
    with open_file() as handle:
        if fmt == "parquet":
            return _read_parquet(name, handle)
        # Decompressed while it streams in: the compressed object is never held whole beside its content.
        data = gzip.GzipFile(fileobj=handle).read() if fmt.endswith(".gz") else handle.read()
    if fmt.startswith("otlp_json"):
        return _read_otlp(name, fmt, data, max_json_depth, span_filter, feedback)
    if fmt.startswith("jsonl"):
        return _read_jsonl(name, fmt, data, max_json_depth)
    return _read_csv(name, fmt, data, csv_delimiter)


def _flatten(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(column.type) for column in table.columns):
        table = table.flatten()
    return table


def _with_lines(frame: pd.DataFrame, line_numbers: np.ndarray) -> pd.DataFrame:
    frame[LINE_COLUMN] = line_numbers
    return frame


def _read_parquet(path: PurePath, handle: IO[bytes] | None = None) -> ReadResult:
    table = _flatten(pq.read_table(path if handle is None else handle))
    frame = table.to_pandas()
    # A file written from pandas brings its index back: a named one (``df.set_index("event_id")``) is data and
    # becomes a column again; an unnamed one (a slice or concat of a bigger frame) is only row labels.
    frame = frame.reset_index(drop=all(name is None for name in frame.index.names))
    return ReadResult(path, "parquet", _with_lines(frame, np.arange(1, len(frame) + 1)))


def _line_count(source: Path | bytes) -> int:
    """Lines in a file or a buffer, counted in chunks by numpy, which releases the GIL: this overlaps the parse."""
    newlines, last = 0, 10
    for chunk in _chunks(source):
        newlines += int(np.count_nonzero(chunk == 10))
        last = int(chunk[-1])
    return newlines + (last != 10)


def _may_crash_pyarrow(source: Path | bytes, limit: int | None = None) -> bool:
    """Whether some line may nest deeper than pyarrow's parser survives (more than ``limit`` ``[``/``{`` on it).

    A line cannot nest deeper than the number of opening brackets on it. Counted per chunk: only a chunk holding
    more than ``limit`` of them (with those carried over from the line it continues) is counted line by line, so a
    normal file costs one compare-and-count pass. The exact limit (``max_json_depth``) is checked on the parsed
    schema, which pyarrow reaches safely for anything this lets through.
    """
    limit = _PYARROW_SAFE_OPENS if limit is None else limit
    open_on_line = 0  # opening brackets since the last line break
    for chunk in _chunks(source):
        # "[" is 0x5B and "{" 0x7B: one OR and one compare find both.
        opens = (chunk | 0x20) == 0x7B
        total = int(np.count_nonzero(opens))
        tail = chunk[-_TAIL_BYTES:]
        tail_breaks = np.flatnonzero(tail == 10)
        if open_on_line + total <= limit and len(tail_breaks):
            open_on_line = int(np.count_nonzero(opens[len(chunk) - len(tail) + int(tail_breaks[-1]):]))
            continue
        if open_on_line + total <= limit and not np.any(chunk == 10):
            open_on_line += total
            continue
        # Possibly over the limit: count per line (opens before each break, by bisecting breaks into opens).
        breaks = np.flatnonzero(chunk == 10)
        positions = np.flatnonzero(opens)
        per_line = np.diff(np.searchsorted(positions, breaks), prepend=0, append=len(positions))
        per_line[0] += open_on_line
        if per_line.max() > limit:
            return True
        open_on_line = int(per_line[-1])
    return False


def _schema_depth(schema: pa.Schema, stop_above: int) -> int:
    """How deep objects and arrays nest in the parsed rows (the row object is level 1); stops past ``stop_above``."""
    deepest = 0
    stack: list[tuple[pa.DataType, int]] = [(field.type, 2) for field in schema]
    while stack:
        kind, level = stack.pop()
        if pa.types.is_struct(kind):
            children = [kind.field(i).type for i in range(kind.num_fields)]
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            children = [kind.value_type]
        else:
            continue
        deepest = max(deepest, level)
        if deepest > stop_above:
            return deepest
        stack += [(child, level + 1) for child in children]
    return max(deepest, 1)


def json_depth(raw: bytes, stop_above: int | None = None) -> int:
    """How deep objects and arrays nest in one JSON text (brackets inside strings do not count).

    Stops counting once the depth exceeds ``stop_above``: the line is refused either way.
    """
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(raw):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        elif bracket in (b"]", b"}"):
            depth -= 1
    return deepest


def _chunks(source: Path | bytes) -> Iterator[np.ndarray]:
    if not isinstance(source, Path):
        view = np.frombuffer(source, dtype=np.uint8)
        yield from (view[i:i + _COUNT_CHUNK] for i in range(0, len(view), _COUNT_CHUNK))
        return
    # One reused buffer: reading a large file whole costs more in fresh pages than the count itself.
    buffer = bytearray(_COUNT_CHUNK)
    view = np.frombuffer(buffer, dtype=np.uint8)
    with source.open("rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            yield view[:size]


def _parse_json_lines(source: Path | bytes) -> pa.Table:
    """pyarrow's multithreaded parse; blocks grow only when one line is longer than a block."""
    block = _JSON_BLOCK_BYTES
    while True:
        stream = source if isinstance(source, Path) else pa.BufferReader(source)
        try:
            return pa_json.read_json(stream, read_options=pa_json.ReadOptions(block_size=block))
        except pa.ArrowInvalid as error:
            if "straddling" not in str(error) or block >= _MAX_JSON_BLOCK_BYTES:
                raise
            block *= 8


def _read_jsonl(path: PurePath, fmt: str, data: bytes | None, max_depth: int) -> ReadResult:
    """``data`` is the decompressed content of a ``.gz`` file; a plain file is parsed from disk."""
    source: Path | bytes = path if data is None else data
    # The bound runs before the parse, never beside it: pyarrow must not see a line that could crash it.
    if not _may_crash_pyarrow(source):
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                lines = pool.submit(_line_count, source)
                table = _parse_json_lines(source)
                # Deeper than max_json_depth somewhere: the line reader finds and quarantines those lines.
                shallow = _schema_depth(table.schema, max_depth) <= max_depth
                if shallow:
                    table.validate(full=True)  # pyarrow does not reject invalid UTF-8 on parse; this does
                # pyarrow skips blank lines and accepts several objects on one line or one object over several
                # lines; only when rows and lines agree one to one can a row be traced back to its line.
                if shallow and table.num_rows == lines.result():
                    flat = _flatten(table)
                    # pyarrow reads a NaN literal as a float NaN, which would pass as "missing"; the line reader
                    # names the lines. (Duplicate keys already make pyarrow refuse the file.)
                    if not _has_nan(flat):
                        frame = flat.to_pandas()
                        return ReadResult(path, fmt, _with_lines(frame, np.arange(1, len(frame) + 1)))
        except pa.ArrowInvalid:
            pass
    return _read_jsonl_by_line(path, fmt, path.read_bytes() if data is None else data, max_depth)


def _has_nan(table: pa.Table) -> bool:
    return any(pc.any(pc.is_nan(column)).as_py() for column in table.columns if pa.types.is_floating(column.type))


class _NotStrictJson(ValueError):
    """A JSON text that Python's parser would accept but that silently loses or invents data."""


def _refuse_constant(name: str) -> float:
    raise _NotStrictJson(f"{name} literal is not JSON (send null for a missing value, or a number)")


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _NotStrictJson(f"duplicate key {repeated[:60]!r} in one JSON object: which value is meant is unknown")
    return record


def _decode_line(raw: bytes, line_number: int) -> tuple[str | None, RejectedLine | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        text = raw.decode("utf-8", errors="backslashreplace")
        reason = f"non-UTF-8 bytes at byte {error.start} of the line; re-export the file as UTF-8"
        return None, RejectedLine(line_number, reason, text)


def _too_deep(raw: bytes, max_depth: int, line_number: int) -> RejectedLine | None:
    if raw.count(b"[") + raw.count(b"{") <= max_depth:  # the cheap bound settles almost every line
        return None
    if json_depth(raw, stop_above=max_depth) <= max_depth:
        return None
    reason = (f"nesting deeper than {max_depth} levels of JSON objects/arrays; refused before parsing "
              "(raise ingestion.max_json_depth if such records are legitimate)")
    return RejectedLine(line_number, reason, raw.decode("utf-8", errors="backslashreplace"))


def _without_bom(data: bytes) -> bytes:
    """Drop a leading UTF-8 byte-order mark (Excel and PowerShell write one); pyarrow's fast paths skip it too."""
    return data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data


def _read_jsonl_by_line(path: PurePath, fmt: str, data: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> ReadResult:
    data = _without_bom(data)
    records: list[dict] = []
    raws: list[str] = []
    lines: list[int] = []
    rejected: list[RejectedLine] = []
    for line_number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        problem = _too_deep(raw, max_depth, line_number)
        if problem is not None:
            rejected.append(problem)
            continue
        text, problem = _decode_line(raw, line_number)
        if problem is not None:
            rejected.append(problem)
            continue
        try:
            record = json.loads(text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant)
        except _NotStrictJson as error:
            rejected.append(RejectedLine(line_number, str(error), text))
            continue
        except RecursionError:  # unreachable below the depth limit; kept so one line can never stop the day
            rejected.append(RejectedLine(line_number, "nesting too deep to parse", text))
            continue
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


def _read_csv(path: PurePath, fmt: str, data: bytes, delimiter: str) -> ReadResult:
    """CSV values are read as text and typed later by the contract, so one bad cell cannot fail a column.

    The fast path is pyarrow's parser. Any irregularity (a record with the wrong number of fields, non-UTF-8
    bytes, a quoted value spanning lines) sends the file to the record-by-record path, which knows the physical
    line every record starts on, so quarantined rows and valid rows carry their true line numbers.
    """
    data = _without_bom(data)
    header_fields = _header(data, delimiter)
    if len(header_fields) == 1:
        # A one-column header is almost always a delimiter mismatch; every row would otherwise be quarantined
        # as missing its fields, which hides the one setting to fix.
        return ReadResult(path, fmt, None, error=(
            f"the header has one column: is `source.csv_delimiter` right? (it is {delimiter!r}; the header reads "
            f"{header_fields[0][:80]!r})"))
    irregular = False

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        nonlocal irregular
        irregular = True
        return "skip"

    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=None),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid_row,
                                              newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(strings_can_be_null=True, column_types=_all_text(data, delimiter)),
        )
        table.validate(full=True)
    except (pa.ArrowInvalid, UnicodeDecodeError, ValueError):
        irregular = True
    if not irregular:
        lines = [n for n, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]
        if len(lines) == table.num_rows + 1:  # one physical line per record: line numbers are exact
            frame = table.to_pandas()
            return ReadResult(path, fmt, _with_lines(frame, np.asarray(lines[1:], dtype=np.int64)))
    return _read_csv_by_record(path, fmt, data, delimiter)


def _header(data: bytes, delimiter: str) -> list[str]:
    first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    return next(csv.reader([first], delimiter=delimiter), [])


def _all_text(data: bytes, delimiter: str) -> dict[str, pa.DataType]:
    return {name: pa.string() for name in _header(data, delimiter)}


def _read_csv_by_record(path: PurePath, fmt: str, data: bytes, delimiter: str) -> ReadResult:
    rejected: list[RejectedLine] = []
    kept_lines: list[str] = []
    physical: list[int] = []  # physical line number of each kept line
    for line_number, raw in enumerate(data.split(b"\n"), start=1):
        text, problem = _decode_line(raw.rstrip(b"\r"), line_number)
        if problem is not None:
            rejected.append(problem)
        else:
            kept_lines.append(text + "\n")  # the csv module keeps newlines inside quoted values only if given
            physical.append(line_number)
    reader = csv.reader(kept_lines, delimiter=delimiter)
    header: list[str] | None = None
    records: list[list[str]] = []
    starts: list[int] = []
    consumed = 0  # kept lines consumed by the reader so far
    for fields in reader:
        start, consumed = physical[consumed], reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if header is None:
            header = fields
            continue
        if len(fields) != len(header):
            raw = "".join(kept_lines[physical.index(start):consumed]).rstrip("\n")
            rejected.append(RejectedLine(start, f"wrong number of fields: expected {len(header)}, got {len(fields)}",
                                         raw))
            continue
        records.append(fields)
        starts.append(start)
    if header is None:
        return ReadResult(path, fmt, None, error="no readable header line")
    frame = pd.DataFrame(records, columns=header, dtype=object).replace({"": None})
    rejected.sort(key=lambda item: item.line_number)
    return ReadResult(path, fmt, _with_lines(frame, np.asarray(starts, dtype=np.int64)), rejected,
                      used_fallback=True)


def _read_otlp(path: PurePath, fmt: str, data: bytes, max_depth: int, span_filter: SpanFilter | None,
               feedback: FeedbackSelection) -> ReadResult:
    """OTLP/JSON trace lines: one row per span that passes the filter; a malformed line is rejected whole.

    Log lines (``resourceLogs``) and span-annotation lines give feedback records instead (``otlp.feedback_of_line``);
    a file may hold both kinds of line.

    Each row keeps its line (``LINE_COLUMN``) and its position among the line's spans (``RECORD_COLUMN``); a
    quarantined span shows its own flat record (span id and attributes) as JSON, built only for those rows.
    ``max_depth`` bounds the nesting of attribute values (see :func:`otlp.any_value`): a trace line is wide, so
    the bracket pre-scan of plain JSON lines would cost more than the parse; Python's parser turns extreme
    nesting into a RecursionError, caught below, and no pyarrow parser sees these lines.
    """
    with _collector_paused():
        return _read_otlp_lines(path, fmt, _without_bom(data), max_depth, span_filter, feedback)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration (as it was before, after).

    Each full collection walks every value the reader has gathered so far, and parsing a wide line allocates
    enough containers to start collections over and over: a third of the read time at 200,000 spans, and more as
    the day grows (bench/bench_otlp.py). Parse trees and records hold no reference cycles; reference counting
    frees each line's tree as the next one is read.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_otlp_lines(path: PurePath, fmt: str, data: bytes, max_depth: int, span_filter: SpanFilter | None,
                     feedback: FeedbackSelection) -> ReadResult:
    spans = SpanColumns()  # a list per path, not a dict per span: see SpanColumns
    lines: list[int] = []
    positions: list[int] = []
    rejected: list[RejectedLine] = []
    filtered = 0
    found: list[tuple[int, FeedbackRecord]] = []
    for line_number, raw in enumerate(_split_lines(data), start=1):
        if not raw.strip():
            continue
        text, problem = _decode_line(raw, line_number)
        if problem is not None:
            rejected.append(problem)
            continue
        try:
            document = json.loads(text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant)
            if feedback and is_feedback_line(document):
                lines_feedback = feedback_of_line(document, feedback, max_depth)
                filtered += lines_feedback.filtered
                found += [(line_number, record) for record in lines_feedback.records]
                continue
            parsed = spans_of_line(document, span_filter, max_depth)
        except (_NotStrictJson, OtlpError) as error:
            rejected.append(RejectedLine(line_number, str(error), text))
            continue
        except RecursionError:
            rejected.append(RejectedLine(line_number, "nesting too deep to parse", text))
            continue
        except json.JSONDecodeError as error:
            rejected.append(RejectedLine(line_number, f"unparseable JSON: {error.msg} at column {error.colno}", text))
            continue
        del document, text  # the line's parse tree is the bulk of what it holds: not kept to the next line
        filtered += parsed.filtered
        spans.extend(parsed.records)
        lines += [line_number] * len(parsed.records)
        positions += range(len(parsed.records))
    frame = pd.DataFrame(spans.finish()) if spans.rows else pd.DataFrame(index=range(0))
    frame[RECORD_COLUMN] = np.asarray(positions, dtype=np.int64)
    return ReadResult(path, fmt, _with_lines(frame, np.asarray(lines, dtype=np.int64)), rejected,
                      rows_filtered=filtered, feedback=found)


def _split_lines(data: bytes, chunk_bytes: int = 8 << 20) -> Iterator[bytes]:
    """``data.splitlines()``, one chunk at a time: the list of a whole day's lines doubled the reader's memory.

    Chunks end just after a ``\n``, which ends a line whatever precedes it (``\r\n`` stays whole), so the lines
    and their numbers are those of ``data.splitlines()``.
    """
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + chunk_bytes)
        end = len(data) if end < 0 else end + 1
        yield from data[start:end].splitlines()
        start = end
