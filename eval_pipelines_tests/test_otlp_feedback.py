"""Feedback recorded apart from its span, joined by span id: GenAI evaluation events written by the real OpenTelemetry
SDK's logs pipeline (LogsData lines, as the Collector's file exporter writes them) and Phoenix span annotations.

The day's spans carry no human action; it arrives in other files of the same day folder. Each span must get its
own feedback (the latest record per evaluation, a separate record over the span's own event), every feedback
record must end in exactly one place (joined, filtered, or quarantined with its reason), and the chain must read
the joined values through to kpi_daily.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from opentelemetry import trace

from eval_pipelines.config import ConfigError
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.ingestion.ingest import ingest_files, landing_files
from eval_pipelines.kpis.assets import kpi_daily
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines_tests.conftest import make_project
from eval_pipelines_tests.otlp_traces import otlp_json_line, otlp_logs_line, record_log_events, record_spans

DAY = "2026-03-02"
SPANS = 60
EVALUATION = "gen_ai.evaluation.result"
BASE = datetime.fromisoformat(DAY).replace(hour=9, tzinfo=UTC)

FEEDBACK_CONFIG = {
    "source": {"format": "otlp_json", "span_filter": {"require_attributes": ["gen_ai.request.model"]},
               "feedback": {"events": [EVALUATION], "annotations": ["final_answer"]}},
    "mapping": {
        "columns": {
            "event_id": "span.span_id", "timestamp": "span.start_time", "system": "resource.service.name",
            "model_version": "attr.gen_ai.request.model", "segment": "attr.app.segment",
            "input_text": "attr.app.input", "ai_output": "attr.app.output", "confidence": "attr.app.confidence",
            "latency_ms": "span.duration_ms", "cost_usd": "attr.app.cost_usd", "status": "span.status",
            "user_action": "evaluation.user_action.score.label",
            "decision_seconds": "evaluation.user_action.score.value",
            "final_output": "annotation.final_answer.label",
            "channel": "attr.app.channel", "language": "attr.app.language", "product": "attr.app.product",
            "customer_tenure_days": "attr.app.customer_tenure_days",
        },
        "value_maps": {"status": {"UNSET": "ok", "OK": "ok", "ERROR": "error"}},
    },
}


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1e9)


def _action(number: int) -> str:
    return "accepted" if number % 3 else "overridden"


def _write_day(folder) -> dict:
    """The day folder: traces, the SDK's evaluation events, Phoenix annotations; returns what was written."""
    contexts: dict[int, trace.SpanContext] = {}

    def emit(tracer) -> None:
        for number in range(SPANS):
            start = BASE + timedelta(minutes=number)
            span = tracer.start_span("chat triage-v3", start_time=_nanos(start))
            span.set_attributes({
                "gen_ai.request.model": "triage-v3", "app.segment": "enterprise" if number % 2 else "consumer",
                "app.input": f"Ticket {number}: my invoice is wrong", "app.output": "billing",
                "app.confidence": 0.5 + (number % 5) / 10, "app.cost_usd": 0.002, "app.channel": "email",
                "app.language": "en", "app.product": "core", "app.customer_tenure_days": 100 + number,
            })
            if number == 0:  # the app recorded a first verdict on the span itself; the later record replaces it
                span.add_event(EVALUATION, {"gen_ai.evaluation.name": "user_action",
                                            "gen_ai.evaluation.score.label": "rejected",
                                            "gen_ai.evaluation.score.value": 99.0}, timestamp=_nanos(start))
            span.end(end_time=_nanos(start + timedelta(milliseconds=300)))
            contexts[number] = span.get_span_context()

    spans = record_spans("support_triage", emit)
    span_ids = {number: format(context.span_id, "016x") for number, context in contexts.items()}

    def feedback(logger) -> None:
        for number, context in contexts.items():
            at = BASE + timedelta(minutes=number, seconds=30)
            span_context = trace.set_span_in_context(trace.NonRecordingSpan(context))
            logger.emit(event_name=EVALUATION, context=span_context, timestamp=_nanos(at), attributes={
                "gen_ai.evaluation.name": "user_action", "gen_ai.evaluation.score.label": _action(number),
                "gen_ai.evaluation.score.value": 4.0 + number})
            logger.emit(event_name=EVALUATION, context=span_context, timestamp=_nanos(at), attributes={
                "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.9})
        # Span 1's user changed their mind: the later verdict is written first, the earlier one last in the file.
        span_context = trace.set_span_in_context(trace.NonRecordingSpan(contexts[1]))
        logger.emit(event_name=EVALUATION, context=span_context, timestamp=_nanos(BASE + timedelta(hours=1)),
                    attributes={"gen_ai.evaluation.name": "user_action", "gen_ai.evaluation.score.label": "edited",
                                "gen_ai.evaluation.score.value": 30.0})
        logger.emit(body="request served")  # an ordinary application log: not feedback
        orphan = trace.SpanContext(contexts[0].trace_id, 0x1234567890ABCDEF, is_remote=False)
        logger.emit(event_name=EVALUATION, context=trace.set_span_in_context(trace.NonRecordingSpan(orphan)),
                    timestamp=_nanos(BASE), attributes={"gen_ai.evaluation.name": "user_action",
                                                        "gen_ai.evaluation.score.label": "accepted"})

    records = record_log_events("support_triage", feedback)
    # Span 1's later "edited" verdict is record 2 * SPANS; move the first one after it in file order.
    ordered = records[2:2 * SPANS] + records[2 * SPANS:] + records[:2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traces.jsonl").write_text(otlp_json_line(spans) + "\n")
    (folder / "feedback.jsonl").write_text("\n".join(otlp_logs_line([record]) for record in ordered) + "\n")
    annotations = [{"span_id": span_ids[n], "name": "final_answer", "annotator_kind": "HUMAN",
                    "result": {"label": "billing" if _action(n) == "accepted" else "technical"},
                    "updated_at": f"{DAY}T12:00:00+00:00"} for n in range(SPANS)]
    page = {"data": annotations[: SPANS // 2]}
    lines = [json.dumps(page)] + [json.dumps(a) for a in annotations[SPANS // 2:]]
    lines.append(json.dumps({"span_id": "not-a-span-id", "name": "final_answer", "result": {"label": "x"}}))
    lines.append(json.dumps({"span_id": span_ids[2], "name": "helpfulness", "result": {"score": 1}}))
    (folder / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return span_ids


def test_each_span_gets_its_own_latest_feedback_and_every_record_ends_in_one_place(tmp_path) -> None:
    project = make_project(tmp_path, FEEDBACK_CONFIG)
    span_ids = _write_day(project.landing_dir / DAY)
    settings = project.settings
    day = datetime.fromisoformat(DAY).date()
    result = ingest_files(landing_files(project.landing_dir, day, "otlp_json"), settings, day,
                          root=project.landing_dir)

    valid = result.valid.set_index("event_id")
    assert len(valid) == SPANS
    for number, span_id in span_ids.items():
        expected = "edited" if number == 1 else _action(number)
        assert valid.loc[span_id, "user_action"] == expected, number
        assert valid.loc[span_id, "decision_seconds"] == (30.0 if number == 1 else 4.0 + number)
        assert valid.loc[span_id, "final_output"] == ("billing" if _action(number) == "accepted" else "technical")

    files = {f.source_file: f for f in result.files}
    traces, logs, notes = (files[f"{DAY}/{name}"] for name in ("traces.jsonl", "feedback.jsonl",
                                                                "annotations.jsonl"))
    # traces: every span an event; feedback: 2 evaluations per span + span 1's second verdict joined, the app log
    # filtered, the orphan quarantined; annotations: one per span joined, the helpfulness one filtered.
    assert (traces.rows_read, traces.rows_joined, traces.rows_filtered) == (SPANS, 0, 0)
    assert (logs.rows_read, logs.rows_joined, logs.rows_filtered, logs.rows_quarantined) == (1, 2 * SPANS + 1, 1, 1)
    assert (notes.rows_read, notes.rows_joined, notes.rows_filtered, notes.rows_quarantined) == (1, SPANS, 1, 1)
    for report in result.files:
        assert report.rows_read == report.rows_valid + report.rows_quarantined + report.rows_duplicate \
            + report.rows_conflicting
    reasons = dict(zip(result.quarantined["source_file"], result.quarantined["reason"], strict=True))
    assert "no span with this id" in reasons[f"{DAY}/feedback.jsonl"]
    assert "1234567890abcdef" in reasons[f"{DAY}/feedback.jsonl"]
    assert "span_id 'not-a-span-id'" in reasons[f"{DAY}/annotations.jsonl"]


def test_the_joined_feedback_reaches_the_lake_the_warehouse_and_kpi_daily(tmp_path) -> None:
    project = make_project(tmp_path, FEEDBACK_CONFIG)
    _write_day(project.landing_dir / DAY)
    outcome = dg.materialize([production_logs, labeled_cases, kpi_daily], partition_key=DAY,
                             resources=project.resources(), instance=dg.DagsterInstance.ephemeral(),
                             raise_on_error=False)
    assert outcome.success
    lake = pq.read_table(project.root / "lake" / "production_logs" / f"{DAY}.parquet").to_pandas()
    overridden = sum(_action(n) == "overridden" for n in range(SPANS))
    assert lake["user_action"].value_counts().to_dict() == {
        "accepted": SPANS - overridden - 1, "overridden": overridden, "edited": 1}
    engine = sa.create_engine(project.warehouse_url)
    with engine.connect() as connection:
        batch = connection.execute(sa.text("SELECT rows_read, rows_valid, rows_quarantined, rows_filtered, "
                                           "rows_joined FROM ingestion_batches")).one()
        kpis = connection.execute(sa.text("SELECT sum(cases), sum(accepted_cases), sum(overridden_cases) "
                                          "FROM kpi_daily")).one()
    assert tuple(batch) == (SPANS + 2, SPANS, 2, 2, 3 * SPANS + 1)
    assert tuple(kpis) == (SPANS, SPANS - overridden - 1, overridden)


def test_without_source_feedback_a_log_line_is_quarantined_naming_the_setting(tmp_path) -> None:
    config = json.loads(json.dumps(FEEDBACK_CONFIG))
    del config["source"]["feedback"]
    project = make_project(tmp_path, config)
    _write_day(project.landing_dir / DAY)
    settings = project.settings
    day = datetime.fromisoformat(DAY).date()
    result = ingest_files(landing_files(project.landing_dir, day, "otlp_json"), settings, day,
                          root=project.landing_dir)
    logs = next(f for f in result.files if f.source_file.endswith("feedback.jsonl"))
    assert logs.rows_read == logs.rows_quarantined == 2 * SPANS + 3  # one line per record, each refused whole
    assert result.quarantined["reason"].str.contains("source.feedback").any()


def test_feedback_needs_the_otlp_format(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"source\.feedback applies to source\.format: otlp_json"):
        make_project(tmp_path, {"source": {"feedback": {"events": [EVALUATION]}}})
