"""OTLP/JSON trace files (the OpenTelemetry Collector's file exporter) read as one row per span.

The file exporter writes JSON Lines, one ``TracesData`` object per line:
``resourceSpans[].scopeSpans[].spans[]`` (older collectors: ``instrumentationLibrarySpans``). Per the OTLP/JSON
encoding, trace and span ids are hex strings, 64-bit integers (timestamps, ``intValue``) are decimal strings, and
enums (span kind, status code) are integers; attributes are ``{"key": ..., "value": {"stringValue": ...}}`` lists.
Protobuf's generic JSON mapping writes ids in base64 and enums by name; both are accepted too, so a file produced
by another tool is not refused for a cosmetic difference.

Each span becomes a flat record whose column names are the mapping paths of ``source.format: otlp_json``:
``span.trace_id``, ``span.span_id``, ``span.parent_span_id``, ``span.name``, ``span.kind``, ``span.start_time``
(ISO-8601 UTC), ``span.end_time``, ``span.duration_ms``, ``span.status`` (UNSET|OK|ERROR),
``span.status_message``, ``scope.name``, ``scope.version``, ``resource.<key>``, ``attr.<key>`` (everything after
``attr.`` is the attribute key, dots included), ``event.<event name>.<key>`` for the first event of each name
and ``evaluation.<gen_ai.evaluation.name>.<key>`` for each GenAI evaluation event (``gen_ai.evaluation.result``
events carry feedback). Arrays and key/value lists become JSON text. Feedback recorded apart from the span (OTLP
log records, Phoenix span annotations) is read here too and joined by span id in ``ingest.join_feedback``.

A line that is not valid JSON, not a ``TracesData`` object, or holds a span without a valid span id is rejected
whole (its spans cannot be counted reliably); spans that do not pass ``source.span_filter`` are counted as
filtered, not read. Nothing here imports dagster.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
SPAN_FIELDS = ("span.trace_id", "span.span_id", "span.parent_span_id", "span.name", "span.kind", "span.start_time",
               "span.end_time", "span.duration_ms", "span.status", "span.status_message", "scope.name",
               "scope.version")
FIXED_PREFIXES = ("span.", "scope.", "resource.", "attr.", "event.", "evaluation.", "annotation.")


class OtlpError(ValueError):
    """A TracesData line that cannot be turned into span rows; the message says what is wrong and where."""


@dataclass(frozen=True)
class SpanFilter:
    """Which spans are events: all conditions must hold (an empty filter keeps every span).

    ``names``: span names kept; ``kinds``: span kinds kept (INTERNAL, SERVER, CLIENT, ...); ``attributes``: an
    attribute key → the values kept (a span without the attribute fails); ``require_attributes``: keys that
    must be present with any value.
    """

    names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    require_attributes: tuple[str, ...] = ()

    def keeps(self, record: Mapping[str, Any]) -> bool:
        if self.names and record.get("span.name") not in self.names:
            return False
        if self.kinds and record.get("span.kind") not in self.kinds:
            return False
        for key in self.require_attributes:
            if record.get(f"attr.{key}") is None:
                return False
        for key, allowed in self.attributes.items():
            value = record.get(f"attr.{key}")
            if value is None or str(value) not in allowed:
                return False
        return True


@dataclass
class OtlpLine:
    """The spans of one line: kept records (in file order), and how many the filter left out."""

    records: list[dict[str, Any]]
    filtered: int


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


# "YYYY-MM-DDTHH:MM:SS" by second since the epoch: a day's spans share few seconds (two per span: start and end),
# so the split into day/hour/minute/second is done once per second rather than twice per span.
_SECOND_PREFIXES: dict[int, str] = {}
_SECOND_PREFIXES_MAX = 200_000  # above two days of distinct seconds: cleared, not grown without bound


def _second_prefix(seconds: int) -> str:
    day, second = divmod(seconds, 86_400)
    hour, rest = divmod(second, 3600)
    minute, second = divmod(rest, 60)
    if len(_SECOND_PREFIXES) >= _SECOND_PREFIXES_MAX:
        _SECOND_PREFIXES.clear()
    prefix = _SECOND_PREFIXES[seconds] = f"{_day_prefix(day)}T{hour:02d}:{minute:02d}:{second:02d}"
    return prefix


def _iso(nanos: int | None) -> str | None:
    """ISO-8601 UTC to the microsecond; integer arithmetic (strftime per span was a tenth of the read time)."""
    if nanos is None:
        return None
    seconds, micro = divmod(nanos // 1000, 1_000_000)
    prefix = _SECOND_PREFIXES.get(seconds) or _second_prefix(seconds)
    return f"{prefix}.{micro:06d}+00:00"


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


EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_PREFIX = "gen_ai.evaluation."


def evaluation_paths(values: Mapping[str, Any]) -> dict[str, Any]:
    """A GenAI evaluation event's attributes under ``evaluation.<gen_ai.evaluation.name>.<key>``.

    The GenAI conventions record every evaluation of a call (relevance, the user's verdict...) as an event of the
    same name, ``gen_ai.evaluation.result``, told apart by ``gen_ai.evaluation.name``; keyed by that name, two
    evaluations of one span do not hide each other: ``evaluation.user_action.score.label``. Keys lose their
    ``gen_ai.evaluation.`` prefix (``score.label``, ``score.value``, ``explanation``); others keep theirs.
    """
    evaluation = values.get(EVALUATION_PREFIX + "name")
    if evaluation in (None, ""):
        return {}
    return {f"evaluation.{evaluation}.{key.removeprefix(EVALUATION_PREFIX)}": value
            for key, value in values.items() if key != EVALUATION_PREFIX + "name"}


def spans_of_line(document: Any, span_filter: SpanFilter | None = None, max_depth: int = 64) -> OtlpLine:
    """The span records of one parsed TracesData line; raises :class:`OtlpError` on a malformed one.

    Lines shaped as the file exporter writes them (hex ids, integer enums, scalar attributes) take a fast path;
    any other line, malformed ones included, is read by the general reader, which alone decides what a line
    yields or why it is refused, so both paths give the same records and the same errors.
    """
    try:
        return _regular_spans_of_line(document, span_filter, max_depth)
    except Exception:  # any surprise, an error or not, is the general reader's to decide
        return _spans_of_any_line(document, span_filter, max_depth)


def _spans_of_any_line(document: Any, span_filter: SpanFilter | None, max_depth: int) -> OtlpLine:
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


class _Irregular(Exception):
    """A line the fast path does not read (it is read by the general one)."""


# "attr." + key, shared: a day has few attribute keys, and one string object per key (hash computed once) makes
# building and comparing records cheaper than a fresh concatenation per span.
_ATTR_PATHS: dict[str, str] = {}
_ATTR_PATHS_MAX = 100_000


def _attr_path(key: str) -> str:
    if len(_ATTR_PATHS) >= _ATTR_PATHS_MAX:
        _ATTR_PATHS.clear()
    path = _ATTR_PATHS[key] = "attr." + key
    return path


def _list(value: Any) -> list:
    """A list, or [] for what the general reader's ``value or ()`` skips; anything else is irregular."""
    if not value:
        return []
    if type(value) is not list:
        raise _Irregular
    return value


def _dict(value: Any) -> dict:
    if not value:
        return {}
    if type(value) is not dict:
        raise _Irregular
    return value


def _hex(raw: Any, size: int) -> str:
    """A hex id of ``size`` digits, as the general reader reads it (``bytes.fromhex`` accepts the same text)."""
    if type(raw) is not str or len(raw) != size:
        raise _Irregular
    bytes.fromhex(raw)
    return raw.lower()


def _time(raw: Any) -> int | None:
    if raw is None:
        return None
    if type(raw) is not str:
        raise _Irregular
    return None if raw in ("", "0") else int(raw)


def _regular_spans_of_line(document: Any, span_filter: SpanFilter | None, max_depth: int) -> OtlpLine:
    """:func:`_spans_of_any_line` for a regular line, without its per-field calls; raises on anything else.

    Every check below mirrors a case of the general reader: what passes gives the record it would give, field by
    field and in the same key order; what does not raises (:class:`_Irregular` or the error of the conversion).
    Resource attributes, spans with events and attribute values other than scalars go through
    :func:`attributes`, :func:`span_record` and :func:`any_value` themselves.
    """
    if type(document) is not dict or "resourceSpans" not in document:
        raise _Irregular
    records: list[dict[str, Any]] = []
    filtered = 0
    attr_paths = _ATTR_PATHS
    kinds = SPAN_KINDS
    codes = STATUS_CODES
    for resource_spans in _list(document["resourceSpans"]):
        if type(resource_spans) is not dict:
            raise _Irregular
        resource = attributes(_dict(resource_spans.get("resource")).get("attributes"), "resource.", max_depth)
        scopes = resource_spans.get("scopeSpans")
        if scopes is None:
            scopes = _list(resource_spans.get("instrumentationLibrarySpans"))
        elif type(scopes) is not list:  # iterated as it is by the general reader, without "or ()"
            raise _Irregular
        for scope_spans in scopes:
            if type(scope_spans) is not dict:
                raise _Irregular
            scope_info = _dict(scope_spans.get("scope") or scope_spans.get("instrumentationLibrary"))
            scope = {"scope.name": scope_info.get("name"), "scope.version": scope_info.get("version")}
            for span in _list(scope_spans.get("spans")):
                if type(span) is not dict:
                    raise _Irregular
                if span.get("events"):
                    record = span_record(span, resource, scope, max_depth)
                else:
                    get = span.get
                    start = _time(get("startTimeUnixNano"))
                    end = _time(get("endTimeUnixNano"))
                    status = _dict(get("status"))
                    parent = get("parentSpanId")
                    kind = get("kind")
                    code = status.get("code")
                    record = {
                        "span.trace_id": _hex(get("traceId"), 32),
                        "span.span_id": _hex(get("spanId"), 16),
                        "span.parent_span_id": None if parent is None or parent == "" else _hex(parent, 16),
                        "span.name": get("name"),
                        "span.kind": kinds[kind] if type(kind) is int and 0 <= kind < len(kinds) else (
                            kinds[0] if kind is None else _enum(kind, kinds, "SPAN_KIND_", "span kind")),
                        "span.start_time": _iso(start),
                        "span.end_time": _iso(end),
                        "span.duration_ms": (end - start) / 1e6 if start is not None and end is not None else None,
                        "span.status": codes[code] if type(code) is int and 0 <= code < len(codes) else (
                            codes[0] if code is None else _enum(code, codes, "STATUS_CODE_", "status code")),
                        "span.status_message": status.get("message") or None,
                        **scope,
                        **resource,
                    }
                    for pair in _list(get("attributes")):
                        if type(pair) is not dict:
                            raise _Irregular
                        key = pair.get("key")
                        value = pair.get("value")
                        if type(key) is not str or not key:
                            raise _Irregular
                        if type(value) is not dict:
                            value = any_value(value, 0, max_depth)
                        elif "stringValue" in value:  # any_value's own order of cases
                            value = value["stringValue"]
                        elif "intValue" in value:
                            value = int(value["intValue"])
                        elif "doubleValue" in value:
                            value = float(value["doubleValue"])
                        elif "boolValue" in value:
                            value = bool(value["boolValue"])
                        else:  # arrays, key/value lists, bytes, empty
                            value = any_value(value, 0, max_depth)
                        record[attr_paths.get(key) or _attr_path(key)] = value
                if span_filter is None or span_filter.keeps(record):
                    records.append(record)
                else:
                    filtered += 1
    return OtlpLine(records, filtered)


class SpanColumns:
    """Span records gathered column by column, in the order and with the values ``DataFrame.from_records`` gives.

    A list per mapping path instead of a dict per span: a day of a million spans held as dicts cost gigabytes
    before pandas copied them again. Columns appear in the order their path first occurs; a path a span lacks
    holds NaN there and an explicit null holds None, as in ``from_records``.
    """

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {}
        self.rows = 0
        self._last_paths: tuple[str, ...] = ()
        self._last_columns: list[list[Any]] = []

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        columns = self.columns
        for record in records:
            paths = tuple(record)
            row = self.rows
            if paths == self._last_paths:  # the previous span's shape: every one of its columns is row long
                for column, value in zip(self._last_columns, record.values(), strict=True):
                    column.append(value)
            else:
                shape: list[list[Any]] = []
                for path, value in record.items():
                    column = columns.get(path)
                    if column is None:
                        column = columns[path] = [_MISSING] * row
                    elif len(column) < row:
                        column.extend([_MISSING] * (row - len(column)))
                    column.append(value)
                    shape.append(column)
                self._last_paths, self._last_columns = paths, shape
            self.rows = row + 1

    def finish(self) -> dict[str, list[Any]]:
        """The columns, all padded to the same length (the accumulator is emptied)."""
        columns, rows = self.columns, self.rows
        for column in columns.values():
            if len(column) < rows:
                column.extend([_MISSING] * (rows - len(column)))
        self.columns, self.rows, self._last_paths, self._last_columns = {}, 0, (), []
        return columns


_MISSING = float("nan")  # what from_records puts where a record lacks a key


# --- Feedback recorded apart from the span, joined to it by span id --------------------------------------------
#
# Two shapes reach a landing folder beside the trace lines:
# - OTLP/JSON *log* lines (``LogsData``: ``resourceLogs[].scopeLogs[].logRecords[]``), the Collector's file exporter
#   output of a logs pipeline. OpenTelemetry events (the GenAI ``gen_ai.evaluation.result`` among them) are log
#   records with an event name (``eventName``; older SDKs set the attribute ``event.name``) and the trace context
#   of the span they are about (``traceId``/``spanId``). Their attributes map as ``event.<name>.<key>``, the
#   same paths an event carried on the span itself has, and the body as ``event.<name>.body``; a GenAI
#   evaluation event as ``evaluation.<gen_ai.evaluation.name>.<key>`` only (see evaluation_paths).
# - Phoenix (OpenInference) span annotations as its API and clients write them: one JSON object per line
#   ``{"span_id", "name", "annotator_kind", "result": {"label", "score", "explanation"}, "metadata", ...}`` or a
#   ``{"data": [...]}`` page of them. They map as ``annotation.<name>.label`` / ``.score`` / ``.explanation`` /
#   ``.annotator_kind`` / ``.identifier`` / ``.metadata`` (JSON text).
# Only the names listed in ``source.feedback`` are feedback; other log records and annotations are counted as
# filtered, as spans the span filter leaves out are.

ANNOTATION_FIELDS = ("label", "score", "explanation")


@dataclass(frozen=True)
class FeedbackSelection:
    """Which separately recorded records are joined to their span: log-record event names, annotation names."""

    events: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.events or self.annotations)


@dataclass(frozen=True)
class FeedbackRecord:
    """One feedback record of a line: the span it is about, its values under their mapping paths, or a problem.

    ``time`` (nanoseconds since the epoch, None when the record has none) decides which of several records of the
    same name about one span wins: the latest. ``problem`` is set for a selected record that cannot be joined
    (no or a malformed span id, a value that cannot be read); such a record is quarantined alone.
    """

    kind: str  # "event" or "annotation"
    name: str
    span_id: str | None
    time: int | None
    values: dict[str, Any]
    position: int  # the record's place among the line's records, quarantine's record_index
    problem: str | None = None


@dataclass
class FeedbackLine:
    records: list[FeedbackRecord]
    filtered: int


def is_feedback_line(document: Any) -> bool:
    """Whether a parsed line holds feedback (OTLP log records or span annotations) rather than spans."""
    if not isinstance(document, dict):
        return False
    return "resourceLogs" in document or _annotations_of(document) is not None


def _annotations_of(document: Mapping[str, Any]) -> list[Any] | None:
    if "span_id" in document and "name" in document:
        return [document]
    data = document.get("data")
    if isinstance(data, list) and "resourceSpans" not in document and all(
            isinstance(item, dict) and "span_id" in item for item in data):
        return data
    return None


def feedback_of_line(document: Mapping[str, Any], selection: FeedbackSelection,
                     max_depth: int = 64) -> FeedbackLine:
    """The feedback records of one parsed log or annotation line (see :func:`is_feedback_line`)."""
    if "resourceLogs" in document:
        return _log_records(document, selection, max_depth)
    return _annotations(_annotations_of(document) or [], selection)


def _log_records(document: Mapping[str, Any], selection: FeedbackSelection, max_depth: int) -> FeedbackLine:
    records: list[FeedbackRecord] = []
    filtered = position = 0
    for resource_logs in document["resourceLogs"] or ():
        scopes = resource_logs.get("scopeLogs")
        if scopes is None:
            scopes = resource_logs.get("instrumentationLibraryLogs") or ()
        for scope_logs in scopes:
            for log in scope_logs.get("logRecords") or ():
                position += 1
                if not isinstance(log, dict):
                    raise OtlpError(f"a log record must be a JSON object, got {type(log).__name__}")
                pairs = log.get("attributes") or ()
                name = log.get("eventName") or next(
                    (any_value(pair.get("value")) for pair in pairs if pair.get("key") == "event.name"), None)
                if name not in selection.events:
                    filtered += 1
                    continue
                prefix = f"event.{name}."
                try:
                    span_id = _hex_id(log.get("spanId"), 8, "spanId", required=True)
                    plain = attributes([p for p in pairs if p.get("key") != "event.name"], "", max_depth)
                    values = evaluation_paths(plain) if name == EVALUATION_EVENT else {}
                    if values:  # told apart by its evaluation name: see evaluation_paths
                        name = f"{name}/{plain[EVALUATION_PREFIX + 'name']}"
                    else:
                        values = {prefix + key: value for key, value in plain.items()}
                        if log.get("body") is not None:
                            values[prefix + "body"] = any_value(log["body"], 0, max_depth)
                    time = _nanos(log.get("timeUnixNano"), "timeUnixNano") or _nanos(
                        log.get("observedTimeUnixNano"), "observedTimeUnixNano")
                except OtlpError as error:
                    records.append(FeedbackRecord("event", name, None, None, {}, position - 1,
                                                  f"log record {name!r}: {error}"))
                    continue
                records.append(FeedbackRecord("event", name, span_id, time, values, position - 1))
    return FeedbackLine(records, filtered)


def _annotations(items: list[Any], selection: FeedbackSelection) -> FeedbackLine:
    records: list[FeedbackRecord] = []
    filtered = 0
    for position, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if name not in selection.annotations:
            filtered += 1
            continue
        prefix = f"annotation.{name}."
        try:
            span_id = _hex_id(item.get("span_id"), 8, "span_id", required=True)
            result = item.get("result") or {}
            if not isinstance(result, dict):
                raise OtlpError(f"result must be an object with label/score/explanation, got {result!r:.60}")
            values: dict[str, Any] = {prefix + key: result.get(key) for key in ANNOTATION_FIELDS}
            values[prefix + "annotator_kind"] = item.get("annotator_kind")
            values[prefix + "identifier"] = item.get("identifier") or None
            metadata = item.get("metadata")
            values[prefix + "metadata"] = json.dumps(metadata, ensure_ascii=False) if metadata else None
            time = _iso_nanos(item.get("updated_at") or item.get("created_at"))
        except OtlpError as error:
            records.append(FeedbackRecord("annotation", name, None, None, {}, position,
                                          f"annotation {name!r}: {error}"))
            continue
        records.append(FeedbackRecord("annotation", name, span_id, time, values, position))
    return FeedbackLine(records, filtered)


def _iso_nanos(text: Any) -> int | None:
    if text in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise OtlpError(f"updated_at/created_at {text!r:.40} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise OtlpError(f"updated_at/created_at {text!r:.40} has no UTC offset")
    return int(moment.timestamp() * 1_000_000) * 1000
