"""Trace and log files made by the real OpenTelemetry SDK, serialised as the Collector's file exporter writes them.

The SDK's spans go through the OTLP protobuf encoder (``opentelemetry-exporter-otlp-proto-common``); protobuf's JSON
mapping then differs from OTLP/JSON in one documented way — ids are base64 where OTLP/JSON wants hex — which
``otlp_json_line`` corrects, with integer enums and 64-bit integers as strings as the file exporter writes them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import Logger, LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: (base64.b64decode(value).hex() if key in ("traceId", "spanId", "parentSpanId") and value
                      else _hex_ids(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json_line(spans: list[ReadableSpan]) -> str:
    """One TracesData line as the Collector's file exporter writes it (hex ids, integer enums)."""
    request = encode_spans(spans)
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(_hex_ids(document), separators=(",", ":"))


def record_spans(service: str, emit: Callable[[Tracer], None]) -> list[ReadableSpan]:
    """The finished spans of ``emit(tracer)`` with a real SDK tracer provider and an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emit(provider.get_tracer("support_triage.app", "1.4.0"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def otlp_logs_line(records: list[ReadableLogRecord]) -> str:
    """One LogsData line as the Collector's file exporter writes a logs pipeline (hex ids, integer enums)."""
    document = json_format.MessageToDict(encode_logs(records), use_integers_for_enums=True)
    return json.dumps(_hex_ids(document), separators=(",", ":"))


def record_log_events(service: str, emit: Callable[[Logger], None]) -> list[ReadableLogRecord]:
    """The log records (events: ``logger.emit(event_name=..., context=<the span's>)``) of ``emit(logger)``, made by
    a real SDK logger provider with an in-memory exporter."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit(provider.get_logger("support_triage.feedback", "1.4.0"))
    provider.shutdown()
    return list(exporter.get_finished_logs())
