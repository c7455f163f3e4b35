"""OTLP/JSON trace lines from the real OpenTelemetry SDK become one flat record per span (issue 17, item 1)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import Status, StatusCode

from eval_pipelines.ingestion.otlp import OtlpError, SpanFilter, any_value, spans_of_line
from eval_pipelines_tests.otlp_traces import otlp_json_line, record_spans


def _llm_day(tracer) -> None:
    # An OpenInference-instrumented request: an agent span with an LLM child and a tool span beside it.
    with tracer.start_as_current_span("triage_request") as root:
        root.set_attribute("openinference.span.kind", "CHAIN")
        with tracer.start_as_current_span("ChatCompletion") as llm:
            llm.set_attribute("openinference.span.kind", "LLM")
            llm.set_attribute("llm.model_name", "triage-v3")
            llm.set_attribute("llm.token_count.prompt", 812)
            llm.set_attribute("input.value", "My invoice is wrong")
            llm.set_attribute("output.value", "billing")
            llm.set_attribute("app.confidence", 0.87)
            llm.set_attribute("app.user_action", "accepted")
            llm.set_attribute("app.accepted", True)
            llm.set_attribute("tag.tags", ["vip", "eu"])
            llm.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "human",
                                                       "gen_ai.evaluation.score.label": "correct"})
        with tracer.start_as_current_span("lookup_customer") as tool:
            tool.set_attribute("openinference.span.kind", "TOOL")
            tool.set_status(Status(StatusCode.ERROR, "CRM timeout"))


def _line() -> tuple[str, list]:
    spans = record_spans("support-triage", _llm_day)
    return otlp_json_line(spans), spans


def test_sdk_spans_become_records_with_the_mapping_paths() -> None:
    line, spans = _line()
    document = json.loads(line)
    assert document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] in (1, 2, 3)  # integer enums
    parsed = spans_of_line(document)
    assert parsed.filtered == 0
    by_name = {record["span.name"]: record for record in parsed.records}
    assert set(by_name) == {"triage_request", "ChatCompletion", "lookup_customer"}
    llm = by_name["ChatCompletion"]
    sdk_llm = next(span for span in spans if span.name == "ChatCompletion")
    assert llm["span.trace_id"] == f"{sdk_llm.context.trace_id:032x}"
    assert llm["span.span_id"] == f"{sdk_llm.context.span_id:016x}"
    assert llm["span.parent_span_id"] == by_name["triage_request"]["span.span_id"]
    assert by_name["triage_request"]["span.parent_span_id"] is None
    assert llm["attr.llm.model_name"] == "triage-v3"  # everything after attr. is the key, dots included
    assert llm["attr.llm.token_count.prompt"] == 812 and isinstance(llm["attr.llm.token_count.prompt"], int)
    assert llm["attr.app.confidence"] == pytest.approx(0.87)
    assert llm["attr.app.accepted"] is True
    assert json.loads(llm["attr.tag.tags"]) == ["vip", "eu"]
    assert llm["event.gen_ai.evaluation.result.gen_ai.evaluation.score.label"] == "correct"
    assert llm["resource.service.name"] == "support-triage"
    assert llm["scope.name"] == "support_triage.app" and llm["scope.version"] == "1.4.0"
    assert llm["span.kind"] == "INTERNAL"
    assert llm["span.status"] == "UNSET"
    assert by_name["lookup_customer"]["span.status"] == "ERROR"
    assert by_name["lookup_customer"]["span.status_message"] == "CRM timeout"
    # Timestamps: ISO-8601 UTC to the microsecond; the duration from the nanosecond clock.
    expected_ms = (sdk_llm.end_time - sdk_llm.start_time) / 1e6
    assert llm["span.duration_ms"] == pytest.approx(expected_ms)
    assert llm["span.start_time"].endswith("+00:00")


def test_the_span_filter_counts_what_it_leaves_out() -> None:
    line, _ = _line()
    only_llm = SpanFilter(attributes={"openinference.span.kind": ("LLM",)})
    parsed = spans_of_line(json.loads(line), only_llm)
    assert [r["span.name"] for r in parsed.records] == ["ChatCompletion"]
    assert parsed.filtered == 2
    assert spans_of_line(json.loads(line), SpanFilter(names=("nope",))).filtered == 3
    assert len(spans_of_line(json.loads(line), SpanFilter(require_attributes=("llm.model_name",))).records) == 1


def test_older_instrumentation_library_spans_and_base64_ids_are_read() -> None:
    line, _ = _line()
    document = json.loads(line)
    resource_spans = document["resourceSpans"][0]
    scope_spans = resource_spans.pop("scopeSpans")
    for block in scope_spans:
        block["instrumentationLibrary"] = block.pop("scope")
        for span in block["spans"]:
            span["spanId"] = __import__("base64").b64encode(bytes.fromhex(span["spanId"])).decode()
            span["kind"] = "SPAN_KIND_CLIENT"
    resource_spans["instrumentationLibrarySpans"] = scope_spans
    records = spans_of_line(document).records
    assert len(records) == 3
    assert all(len(r["span.span_id"]) == 16 for r in records)
    assert {r["span.kind"] for r in records} == {"CLIENT"}
    assert {r["scope.name"] for r in records} == {"support_triage.app"}


@pytest.mark.parametrize(("document", "message"), [
    ({"resource": {}}, "not an OTLP TracesData"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "00" * 16, "name": "x"}]}]}]}, "without spanId"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "00" * 8}]}]}]}, "traceId 'zz'"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "00" * 16, "spanId": "00" * 8, "kind": 9}]}]}]},
     "span kind 9"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "00" * 16, "spanId": "00" * 8,
                                                     "startTimeUnixNano": "soon"}]}]}]}, "startTimeUnixNano"),
])
def test_a_malformed_line_is_refused_with_its_reason(document, message) -> None:
    with pytest.raises(OtlpError, match=message):
        spans_of_line(document)


def test_any_value_covers_every_otlp_value_type() -> None:
    assert any_value({"stringValue": "a"}) == "a"
    assert any_value({"intValue": "9007199254740993"}) == 9007199254740993  # beyond float precision: exact
    assert any_value({"doubleValue": 1.5}) == 1.5
    assert any_value({"boolValue": False}) is False
    assert json.loads(any_value({"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "2"}}]}})) == {"k": 2}
    assert any_value({}) is None
    with pytest.raises(OtlpError, match="unknown attribute value type"):
        any_value({"fooValue": 1})


def test_deeply_nested_attribute_values_are_refused_at_the_configured_depth() -> None:
    value: dict = {"stringValue": "leaf"}
    for _ in range(10):
        value = {"arrayValue": {"values": [value]}}
    assert json.loads(any_value(value, 0, 10)) == [[[[[[[[[["leaf"]]]]]]]]]]
    with pytest.raises(OtlpError, match="nested deeper than 9 levels"):
        any_value(value, 0, 9)
