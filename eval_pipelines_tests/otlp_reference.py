"""The OTLP/JSON reader as it was before it was made faster (bench/bench_otlp.py), kept verbatim.

``reference_read_otlp`` and the per-span functions below are the specification the fast reader in
eval_pipelines.ingestion (readers._read_otlp, otlp.SpanColumns) is tested against (test_otlp_equivalence.py: seeded
files of SDK spans, base64 ids, named enums, arrays and kv-lists, missing fields, broken lines, filtered spans and
feedback lines must give the same rows, dtypes, quarantine and feedback). Only the function names differ
(``reference_`` prefix for the two entry points); the package's unchanged helpers are imported. Not used by the
pipeline.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from functools import lru_cache
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from eval_pipelines.ingestion.otlp import (
    EVALUATION_EVENT,
    SPAN_KINDS,
    STATUS_CODES,
    FeedbackRecord,
    FeedbackSelection,
    OtlpError,
    OtlpLine,
    SpanFilter,
    evaluation_paths,
    feedback_of_line,
    is_feedback_line,
)
from eval_pipelines.ingestion.readers import (
    RECORD_COLUMN,
    ReadResult,
    RejectedLine,
    _decode_line,
    _NotStrictJson,
    _refuse_constant,
    _refuse_duplicate_keys,
    _with_lines,
    _without_bom,
)


def any_value(value: Mapping[str, Any] | None, depth: int = 0, max_depth: int = 64) -> Any:
    """An OTLP ``AnyValue`` as a Python value: str, int, float, bool; arrays and kv-lists as JSON text.

    Arrays and key/value lists may nest; beyond ``max_depth`` levels the line is refused, which is how
    ``ingestion.max_json_depth`` applies to trace files (their envelope alone is a dozen levels deep).
    """
    if not value:
        return None
    if not isinstance(value, dict):
        raise OtlpError(f"attribute value must be an object like {{\"stringValue\": ...}}, got {value!r:.60}")
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])  # decimal string per OTLP/JSON; a JSON number is tolerated
    if "doubleValue" in value:
        return float(value["doubleValue"])  # protobuf JSON writes "NaN"/"Infinity" as strings: float() reads both
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value or "kvlistValue" in value:
        if depth >= max_depth:
            raise OtlpError(f"attribute values nested deeper than {max_depth} levels; refused (raise "
                            "ingestion.max_json_depth if such records are legitimate)")
        if "arrayValue" in value:
            return json.dumps([_nested(v, depth + 1, max_depth) for v in
                               (value["arrayValue"] or {}).get("values", [])], ensure_ascii=False)
        return json.dumps({kv["key"]: _nested(kv.get("value"), depth + 1, max_depth) for kv in
                           (value["kvlistValue"] or {}).get("values", [])}, ensure_ascii=False)
    if "bytesValue" in value:
        return value["bytesValue"]
    raise OtlpError(f"unknown attribute value type {sorted(value)!r}")


def _nested(value: Mapping[str, Any] | None, depth: int, max_depth: int) -> Any:
    """A value inside an array or kv-list, kept as a value (not JSON text) in its parent's JSON."""
    found = any_value(value, depth, max_depth)
    if isinstance(value, dict) and ("arrayValue" in value or "kvlistValue" in value):
        return json.loads(found)
    return found


def attributes(pairs: Iterable[Mapping[str, Any]] | None, prefix: str, max_depth: int = 64) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key = pair.get("key")
        if not isinstance(key, str) or not key:
            raise OtlpError(f"an attribute without a key under {prefix.rstrip('.')}")
        out[prefix + key] = any_value(pair.get("value"), 0, max_depth)
    return out


def _hex_id(raw: Any, size: int, what: str, required: bool) -> str | None:
    """An id as lower-case hex of ``size`` bytes: hex per OTLP/JSON, base64 per protobuf's JSON mapping."""
    if raw in (None, ""):
        if required:
            raise OtlpError(f"span without {what}")
        return None
    if not isinstance(raw, str):
        raise OtlpError(f"{what} must be a string, got {type(raw).__name__}")
    if len(raw) == 2 * size:
        try:
            bytes.fromhex(raw)
            return raw.lower()
        except ValueError:
            pass
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == size:
        return decoded.hex()
    raise OtlpError(f"{what} {raw[:40]!r} is neither {2 * size} hex digits nor base64 of {size} bytes")


def _enum(raw: Any, names: tuple[str, ...], prefix: str, what: str) -> str:
    if raw is None:
        return names[0]
    if isinstance(raw, int) and 0 <= raw < len(names):
        return names[raw]
    if isinstance(raw, str):
        name = raw.removeprefix(prefix)
        if name in names:
            return name
    raise OtlpError(f"{what} {raw!r} is not one of {list(names)} (or their integer codes)")


def _nanos(raw: Any, what: str) -> int | None:
    if raw in (None, "", "0", 0):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise OtlpError(f"{what} {raw!r} is not an integer count of nanoseconds since the epoch") from None


@lru_cache(maxsize=4096)
def _day_prefix(epoch_day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=epoch_day)).isoformat()


def _iso(nanos: int | None) -> str | None:
    """ISO-8601 UTC to the microsecond; integer arithmetic (strftime per span was a tenth of the read time)."""
    if nanos is None:
        return None
    micros = nanos // 1000
    seconds, micro = divmod(micros, 1_000_000)
    day, second = divmod(seconds, 86_400)
    hour, rest = divmod(second, 3600)
    minute, second = divmod(rest, 60)
    return f"{_day_prefix(day)}T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}+00:00"


def span_record(span: Mapping[str, Any], resource: Mapping[str, Any], scope: Mapping[str, Any],
                max_depth: int = 64) -> dict[str, Any]:
    """One span as a flat record (resource and scope attributes copied in)."""
    if not isinstance(span, dict):
        raise OtlpError(f"a span must be a JSON object, got {type(span).__name__}")
    start = _nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = _nanos(span.get("endTimeUnixNano"), "endTimeUnixNano")
    status = span.get("status") or {}
    record: dict[str, Any] = {
        "span.trace_id": _hex_id(span.get("traceId"), 16, "traceId", required=True),
        "span.span_id": _hex_id(span.get("spanId"), 8, "spanId", required=True),
        "span.parent_span_id": _hex_id(span.get("parentSpanId"), 8, "parentSpanId", required=False),
        "span.name": span.get("name"),
        "span.kind": _enum(span.get("kind"), SPAN_KINDS, "SPAN_KIND_", "span kind"),
        "span.start_time": _iso(start),
        "span.end_time": _iso(end),
        "span.duration_ms": (end - start) / 1e6 if start is not None and end is not None else None,
        "span.status": _enum(status.get("code"), STATUS_CODES, "STATUS_CODE_", "status code"),
        "span.status_message": status.get("message") or None,
        **scope,
        **resource,
    }
    record.update(attributes(span.get("attributes"), "attr.", max_depth))
    for event in span.get("events") or ():
        name = event.get("name") if isinstance(event, dict) else None
        if not name:
            continue
        if name == EVALUATION_EVENT:  # one event per evaluation: each keeps its own paths
            for key, value in evaluation_paths(attributes(event.get("attributes"), "", max_depth)).items():
                record.setdefault(key, value)
        prefix = f"event.{name}."
        if any(key.startswith(prefix) for key in record):
            continue  # the first event of a name wins; later ones are usually retries of the same feedback
        record.update(attributes(event.get("attributes"), prefix, max_depth))
    return record


def reference_spans_of_line(document: Any, span_filter: SpanFilter | None = None, max_depth: int = 64) -> OtlpLine:
    """The span records of one parsed TracesData line; raises :class:`OtlpError` on a malformed one."""
    if isinstance(document, dict) and "resourceSpans" not in document and is_feedback_line(document):
        raise OtlpError("OTLP log records or span annotations, not a TracesData object (no resourceSpans); to join "
                        "feedback to its spans, name its events/annotations in source.feedback")
    if not isinstance(document, dict) or "resourceSpans" not in document:
        raise OtlpError("not an OTLP TracesData object (no resourceSpans); is source.format right for this file?")
    records: list[dict[str, Any]] = []
    filtered = 0
    for resource_spans in document["resourceSpans"] or ():
        resource = attributes((resource_spans.get("resource") or {}).get("attributes"), "resource.", max_depth)
        scopes = resource_spans.get("scopeSpans")
        if scopes is None:
            scopes = resource_spans.get("instrumentationLibrarySpans") or ()
        for scope_spans in scopes:
            scope_info = scope_spans.get("scope") or scope_spans.get("instrumentationLibrary") or {}
            scope = {"scope.name": scope_info.get("name"), "scope.version": scope_info.get("version")}
            for span in scope_spans.get("spans") or ():
                record = span_record(span, resource, scope, max_depth)
                if span_filter is None or span_filter.keeps(record):
                    records.append(record)
                else:
                    filtered += 1
    return OtlpLine(records, filtered)


def reference_read_otlp(path: PurePath, fmt: str, data: bytes, max_depth: int, span_filter: SpanFilter | None,
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
    data = _without_bom(data)
    records: list[dict] = []
    lines: list[int] = []
    positions: list[int] = []
    rejected: list[RejectedLine] = []
    filtered = 0
    found: list[tuple[int, FeedbackRecord]] = []
    for line_number, raw in enumerate(data.splitlines(), start=1):
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
            parsed = reference_spans_of_line(document, span_filter, max_depth)
        except (_NotStrictJson, OtlpError) as error:
            rejected.append(RejectedLine(line_number, str(error), text))
            continue
        except RecursionError:
            rejected.append(RejectedLine(line_number, "nesting too deep to parse", text))
            continue
        except json.JSONDecodeError as error:
            rejected.append(RejectedLine(line_number, f"unparseable JSON: {error.msg} at column {error.colno}", text))
            continue
        filtered += parsed.filtered
        records += parsed.records
        lines += [line_number] * len(parsed.records)
        positions += range(len(parsed.records))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(index=range(0))
    frame[RECORD_COLUMN] = np.asarray(positions, dtype=np.int64)
    return ReadResult(path, fmt, _with_lines(frame, np.asarray(lines, dtype=np.int64)), rejected,
                      rows_filtered=filtered, feedback=found)
