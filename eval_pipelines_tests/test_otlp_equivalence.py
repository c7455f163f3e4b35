"""The fast OTLP reader gives what the reader before it gave (otlp_reference.py), on seeded varied files.

Each file mixes lines of real SDK spans (otlp_traces.py) with the variations a landing folder holds: base64 ids,
named enums, upper-case hex, arrays and key/value lists, events, missing or empty fields, the older
``instrumentationLibrarySpans``, JSON numbers for 64-bit integers, broken lines of every kind the reader refuses,
feedback lines (log records, annotations), blank lines, CRLF endings and a BOM. Rows (values, dtypes and column
order), rejected lines (number, reason, text), filtered counts and feedback records must all be identical.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from pathlib import Path

import pandas as pd
import pytest
from opentelemetry.trace import Status, StatusCode

from eval_pipelines.ingestion.otlp import FeedbackSelection, SpanFilter
from eval_pipelines.ingestion.readers import _read_otlp
from eval_pipelines_tests.otlp_reference import reference_read_otlp
from eval_pipelines_tests.otlp_traces import otlp_json_line, record_spans

FEEDBACK = FeedbackSelection(events=("gen_ai.evaluation.result",), annotations=("final_answer",))
FILTERS = {
    "none": None,
    "llm": SpanFilter(attributes={"openinference.span.kind": ("LLM",)}),
    "kind_and_name": SpanFilter(names=("ChatCompletion", "lookup"), kinds=("INTERNAL", "CLIENT")),
    "required": SpanFilter(require_attributes=("llm.model_name",)),
}


def _sdk_lines(rng: random.Random, count: int) -> list[dict]:
    """``count`` TracesData documents of SDK spans with seeded attributes, events and statuses."""

    def emit(tracer) -> None:
        for request in range(count * 3):
            with tracer.start_as_current_span("triage_request") as root:
                root.set_attribute("openinference.span.kind", "CHAIN")
                with tracer.start_as_current_span("ChatCompletion") as llm:
                    llm.set_attribute("openinference.span.kind", "LLM")
                    if rng.random() < 0.9:
                        llm.set_attribute("llm.model_name", rng.choice(["triage-v3", "triage-v4"]))
                    llm.set_attribute("llm.token_count.prompt", rng.randrange(10, 5000))
                    llm.set_attribute("input.value", f"Ticket {request}: {rng.choice(['a', 'é', ':', '{}'])}")
                    llm.set_attribute("app.confidence", rng.random())
                    if rng.random() < 0.7:  # present on some spans only: NaN elsewhere, an object column
                        llm.set_attribute("app.accepted", rng.random() < 0.5)
                    if rng.random() < 0.2:
                        llm.set_attribute("tag.tags", ["vip", "eu"][: rng.randrange(1, 3)])
                    if rng.random() < 0.2:
                        llm.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "human",
                                                                   "gen_ai.evaluation.score.label": "correct"})
                    if rng.random() < 0.1:
                        llm.add_event("retry", {"attempt": 2})
                with tracer.start_as_current_span("lookup") as tool:
                    tool.set_attribute("openinference.span.kind", "TOOL")
                    if rng.random() < 0.3:
                        tool.set_status(Status(StatusCode.ERROR, "CRM timeout"))
                    elif rng.random() < 0.3:
                        tool.set_status(Status(StatusCode.OK))

    spans = record_spans("support-triage", emit)
    chunk = max(1, len(spans) // count)
    return [json.loads(otlp_json_line(spans[i:i + chunk])) for i in range(0, len(spans), chunk)]


def _spans(document: dict) -> list[dict]:
    return [span for block in document["resourceSpans"] for scope in block["scopeSpans"] for span in scope["spans"]]


def _vary(rng: random.Random, document: dict) -> dict:
    """One seeded variation of a valid line; most keep it valid, some break one span (the line is refused)."""
    document = copy.deepcopy(document)
    spans = _spans(document)
    span = rng.choice(spans)
    change = rng.randrange(22)
    if change == 0:
        for one in spans:
            one["spanId"] = base64.b64encode(bytes.fromhex(one["spanId"])).decode()
            one["traceId"] = base64.b64encode(bytes.fromhex(one["traceId"])).decode()
    elif change == 1:
        span["kind"] = rng.choice(["SPAN_KIND_CLIENT", "SERVER", True, 9, None, "bogus"])
    elif change == 2:
        span["status"] = rng.choice([{"code": "STATUS_CODE_ERROR", "message": "x"}, {"code": 2}, {"code": 7},
                                     {}, None, {"message": ""}, ["not", "a", "dict"]])
    elif change == 3:
        span["spanId"] = span["spanId"].upper()
        span["traceId"] = span["traceId"].upper()
    elif change == 4:
        span.setdefault("attributes", []).append(
            {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"arrayValue": {
                "values": [{"intValue": "3"}, {"doubleValue": "NaN"}]}}}]}}})
    elif change == 5:
        for key in rng.sample(["startTimeUnixNano", "endTimeUnixNano", "parentSpanId", "name", "kind",
                               "status", "attributes"], 3):
            span.pop(key, None)
    elif change == 6:
        for block in document["resourceSpans"]:
            scopes = block.pop("scopeSpans")
            for scope in scopes:
                scope["instrumentationLibrary"] = scope.pop("scope")
            block["instrumentationLibrarySpans"] = scopes
    elif change == 7:
        span.setdefault("attributes", []).append({"key": "big", "value": {"intValue": 9007199254740993}})
        span["attributes"].append({"key": "empty", "value": {}})
        span["attributes"].append({"key": "bytes", "value": {"bytesValue": "AAE="}})
    elif change == 8:
        span.setdefault("attributes", []).append({"key": "llm.model_name", "value": {"stringValue": "dup-1"}})
        span["attributes"].append({"key": "llm.model_name", "value": {"stringValue": "dup-2"}})
    elif change == 9:
        span["startTimeUnixNano"] = rng.choice(["0", "", 0, "soon", 1_700_000_000_000_000_000])
    elif change == 10:
        span["spanId"] = rng.choice(["zz", "", None, 12, "0" * 15])
    elif change == 11:
        span.setdefault("attributes", []).append(rng.choice([{"value": {"stringValue": "no key"}},
                                                             {"key": "odd", "value": {"fooValue": 1}},
                                                             {"key": "odd", "value": "text"}]))
    elif change == 12:
        span["parentSpanId"] = rng.choice(["", None, "AAECAwQFBgc=", "nothex!!nothex!!"])
    elif change == 13:
        document["resourceSpans"][0]["resource"]["attributes"].append(
            {"key": "host.tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}})
    elif change == 14:
        document["resourceSpans"][0]["scopeSpans"][0]["spans"] = []
    elif change == 15:
        span["events"] = [{"name": "gen_ai.evaluation.result", "attributes": [
            {"key": "gen_ai.evaluation.name", "value": {"stringValue": "user_action"}},
            {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": "edited"}}]}, {"name": ""}]
    elif change == 16:
        document["resourceSpans"].append({"resource": {}, "scopeSpans": [{"spans": [copy.deepcopy(span)]}]})
    elif change == 17:
        span.setdefault("attributes", []).append({"key": "flag", "value": {"boolValue": 1}})
        span["attributes"].append({"key": "ratio", "value": {"doubleValue": "Infinity"}})
    elif change == 18:
        span["droppedAttributesCount"] = 2
        span["links"] = [{"traceId": span["traceId"], "spanId": span["spanId"]}]
    elif change == 19:
        document["resourceSpans"][0]["scopeSpans"] = rng.choice([None, [], {}])
    return document


def _feedback_lines(rng: random.Random, span_ids: list[str]) -> list[str]:
    span_id = rng.choice(span_ids)
    log = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"eventName": "gen_ai.evaluation.result", "spanId": span_id, "timeUnixNano": "1700000000000000000",
         "attributes": [{"key": "gen_ai.evaluation.name", "value": {"stringValue": "user_action"}},
                        {"key": "gen_ai.evaluation.score.label", "value": {"stringValue": "accepted"}}]},
        {"eventName": "other", "spanId": span_id},
        {"eventName": "gen_ai.evaluation.result", "spanId": "bad"}]}]}]}
    annotation = {"span_id": span_id, "name": "final_answer", "annotator_kind": "HUMAN",
                  "result": {"label": "billing", "score": 1}, "updated_at": "2026-03-02T10:00:00+00:00"}
    page = {"data": [annotation, {"span_id": span_id, "name": "ignored"}]}
    return [json.dumps(log), json.dumps(annotation), json.dumps(page)]


BROKEN_LINES = [
    b'{"resourceSpans": [', b"not json at all", b"[1, 2, 3]", b'{"resource": {}}', b'{"resourceSpans": NaN}',
    b'{"resourceSpans": [], "resourceSpans": []}', b'{"resourceSpans": [{"scopeSpans": [{"spans": [\xff]}]}]}',
    b"\xff\xfe not utf-8", b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}",
]


def _day_file(seed: int, lines_per_file: int = 24) -> bytes:
    rng = random.Random(seed)
    documents = _sdk_lines(rng, lines_per_file)
    span_ids = [span["spanId"] for document in documents for span in _spans(document)]
    out: list[bytes] = []
    for document in documents:
        kept = _vary(rng, document) if rng.random() < 0.6 else document
        out.append(json.dumps(kept, separators=(",", ":") if rng.random() < 0.5 else None).encode())
        if rng.random() < 0.15:
            out.append(rng.choice(BROKEN_LINES))
        if rng.random() < 0.1:
            out.append(b"   ")
        if rng.random() < 0.15:
            out += [line.encode() for line in _feedback_lines(rng, span_ids)]
    ending = rng.choice([b"\n", b"\r\n"])
    data = ending.join(out) + (ending if rng.random() < 0.5 else b"")
    return (b"\xef\xbb\xbf" + data) if rng.random() < 0.3 else data


def _assert_same(data: bytes, span_filter: SpanFilter | None, feedback: FeedbackSelection, max_depth: int = 64):
    path = Path("day.jsonl")
    new = _read_otlp(path, "otlp_json", data, max_depth, span_filter, feedback)
    old = reference_read_otlp(path, "otlp_json", data, max_depth, span_filter, feedback)
    assert list(new.rows.columns) == list(old.rows.columns)
    pd.testing.assert_frame_equal(new.rows, old.rows, check_dtype=True, check_exact=True)
    assert new.rejected == old.rejected
    assert new.rows_filtered == old.rows_filtered
    assert new.feedback == old.feedback
    return new


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("filter_name", sorted(FILTERS))
def test_fast_reader_gives_what_the_reference_gave(seed: int, filter_name: str) -> None:
    data = _day_file(seed)
    result = _assert_same(data, FILTERS[filter_name], FEEDBACK if seed % 2 else FeedbackSelection())
    # The seeded files exercise what they are meant to: kept rows, refused lines, and (with a filter) filtered spans.
    assert len(result.rows) > 20 and result.rejected
    assert filter_name == "none" or result.rows_filtered > 0


def test_the_configured_depth_refuses_the_same_lines() -> None:
    data = _day_file(11)
    result = _assert_same(data, None, FEEDBACK, max_depth=1)
    assert any("nested deeper than 1 levels" in line.reason for line in result.rejected)


@pytest.mark.parametrize("bad_value", [{"intValue": "twelve"}, {"doubleValue": "many"}])
def test_a_value_that_fails_the_file_fails_it_the_same_way(bad_value: dict) -> None:
    # Conversion errors outside OtlpError fail the whole file upstream (read_log_file): both readers raise alike.
    document = _sdk_lines(random.Random(3), 1)[0]
    _spans(document)[0]["attributes"].append({"key": "bad", "value": bad_value})
    data = json.dumps(document).encode()
    with pytest.raises(ValueError) as new:
        _read_otlp(Path("day.jsonl"), "otlp_json", data, 64, None, FeedbackSelection())
    with pytest.raises(ValueError) as old:
        reference_read_otlp(Path("day.jsonl"), "otlp_json", data, 64, None, FeedbackSelection())
    assert str(new.value) == str(old.value)


def test_an_empty_file_and_a_file_of_refused_lines_agree() -> None:
    for data in (b"", b"\n\n", b"\n".join(BROKEN_LINES)):
        result = _assert_same(data, None, FeedbackSelection())
        assert len(result.rows) == 0
