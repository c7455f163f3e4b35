"""A day of SDK-produced OpenInference LLM spans ingested by configuration alone, with exact conservation.

The spans come from the real OpenTelemetry SDK and are written as the Collector's file exporter writes them
(eval_pipelines_tests/otlp_traces.py); the file also holds chain and tool spans (filtered out, counted), two
broken lines and two LLM spans whose attributes break the contract (quarantined with their span id).
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from opentelemetry.trace import Status, StatusCode

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.drift.assets import drift_profile, drift_report
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.kpis.assets import kpi_daily
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.lake import Lake
from eval_pipelines.resources import lake_root
from eval_pipelines_tests.conftest import make_project
from eval_pipelines_tests.otlp_traces import otlp_json_line, record_spans

DAY = "2026-03-02"
LLM_SPANS = 80
BAD_SPANS = 2  # LLM spans whose confidence is text
OTHER_SPANS = LLM_SPANS  # a chain parent and a tool span per two LLM spans
BROKEN_LINES = 2

OPENINFERENCE_CONFIG = {
    "source": {"format": "otlp_json", "span_filter": {"attributes": {"openinference.span.kind": "LLM"}}},
    "mapping": {
        "columns": {
            "event_id": "span.span_id", "timestamp": "span.start_time", "system": "resource.service.name",
            "model_version": "attr.llm.model_name", "segment": "attr.app.segment", "input_text": "attr.input.value",
            "ai_output": "attr.output.value", "confidence": "attr.app.confidence", "latency_ms": "span.duration_ms",
            "cost_usd": "attr.app.cost_usd", "status": "span.status", "user_action": "attr.app.user_action",
            "final_output": "attr.app.final_output", "decision_seconds": "attr.app.decision_seconds",
            "channel": "attr.app.channel", "language": "attr.app.language", "product": "attr.app.product",
            "customer_tenure_days": "attr.app.customer_tenure_days",
        },
        "value_maps": {"status": {"UNSET": "ok", "OK": "ok", "ERROR": "error"}},
    },
}


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1e9)


def _emit_pair(tracer, index: int, start: datetime, latency_shift_ms: int = 0) -> None:
    """A chain span holding a tool span and two LLM spans (indices 2*index, 2*index + 1)."""
    chain = tracer.start_span("triage_request", start_time=_nanos(start))
    chain.set_attribute("openinference.span.kind", "CHAIN")
    from opentelemetry import trace
    context = trace.set_span_in_context(chain)
    tool = tracer.start_span("lookup_customer", context=context, start_time=_nanos(start))
    tool.set_attribute("openinference.span.kind", "TOOL")
    tool.end(end_time=_nanos(start + timedelta(milliseconds=20)))
    for offset in range(2):
        number = 2 * index + offset
        llm = tracer.start_span("ChatCompletion", context=context, start_time=_nanos(start))
        bad = number < BAD_SPANS
        accepted = number % 3 != 0
        llm.set_attributes({
            "openinference.span.kind": "LLM",
            "llm.model_name": "triage-v3",
            "llm.token_count.prompt": 800 + number,
            "input.value": f"Ticket {number}: my invoice is wrong",
            "output.value": "billing",
            "app.segment": "enterprise" if number % 2 else "consumer",
            "app.confidence": "high" if bad else 0.5 + (number % 5) / 10,
            "app.cost_usd": 0.002,
            "app.user_action": "accepted" if accepted else "overridden",
            "app.final_output": "billing" if accepted else "technical",
            "app.decision_seconds": 4.0 + number,
            "app.channel": "email", "app.language": "en", "app.product": "core",
            "app.customer_tenure_days": 100 + number,
        })
        if number == 5:
            llm.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        llm.end(end_time=_nanos(start + timedelta(milliseconds=300 + number + latency_shift_ms)))
    chain.end(end_time=_nanos(start + timedelta(milliseconds=400)))


def _write_day(folder, gz: bool = False, day: str = DAY, latency_shift_ms: int = 0) -> None:
    base = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)
    lines = []
    for batch in range(LLM_SPANS // 4):  # a line per export batch of two chains (8 spans incl. 2 chains, 2 tools)
        spans = record_spans("support_triage", lambda tracer, batch=batch: [
            _emit_pair(tracer, 2 * batch + k, base + timedelta(minutes=batch, seconds=k), latency_shift_ms)
            for k in range(2)])
        lines.append(otlp_json_line(spans))
    lines.insert(3, '{"resourceSpans": [{"scopeSpans": [')  # cut off mid-write
    lines.insert(7, '{"resourceLogs": []}')  # a log record batch in the traces folder
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if gz:
        (folder / "traces.json.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (folder / "traces.jsonl").write_text(text)


def _state(url: str) -> dict[str, list[dict]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        return {table: [dict(row._mapping) for row in connection.execute(sa.text(f'SELECT * FROM "{table}"'))]
                for table in ("ingestion_batches", "ingestion_files", "quarantined_events")}


@pytest.mark.parametrize("gz", [False, True])
def test_a_day_of_sdk_spans_is_ingested_by_config_alone_with_exact_conservation(tmp_path, gz) -> None:
    project = make_project(tmp_path, OPENINFERENCE_CONFIG)
    _write_day(project.landing_dir / DAY, gz=gz)
    result = dg.materialize([production_logs, labeled_cases, kpi_daily], partition_key=DAY,
                            resources=project.resources(),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success

    state = _state(project.warehouse_url)
    (batch,) = state["ingestion_batches"]
    (file,) = state["ingestion_files"]
    assert file["file_format"] == ("otlp_json.gz" if gz else "otlp_json")
    assert batch["rows_filtered"] == file["rows_filtered"] == OTHER_SPANS
    assert batch["rows_read"] == LLM_SPANS + BROKEN_LINES
    assert batch["rows_valid"] == LLM_SPANS - BAD_SPANS
    assert batch["rows_quarantined"] == BAD_SPANS + BROKEN_LINES
    assert batch["rows_read"] == batch["rows_valid"] + batch["rows_quarantined"] + batch["rows_duplicate"] \
        + batch["rows_conflicting"]

    quarantined = sorted(state["quarantined_events"], key=lambda r: (r["line_number"], r["record_index"]))
    broken = [r for r in quarantined if r["field"] is None]
    assert [r["line_number"] for r in broken] == [4, 8]
    assert "resourceSpans" in broken[1]["reason"] or "TracesData" in broken[1]["reason"]
    spans = [r for r in quarantined if r["field"] == "confidence"]
    assert len(spans) == BAD_SPANS
    for row in spans:  # the span is named, and its position in the line keeps the key unique
        span_id = json.loads(row["raw_record"])["span.span_id"]
        assert row["reason"].startswith(f"span {span_id}: ")
    assert len({(r["line_number"], r["record_index"]) for r in quarantined}) == len(quarantined)

    logs = pq.read_table(project.root / "lake" / "production_logs" / f"{DAY}.parquet").to_pandas()
    assert len(logs) == LLM_SPANS - BAD_SPANS
    assert logs["event_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert set(logs["system"]) == {"support_triage"}
    assert set(logs["model_version"]) == {"triage-v3"}
    assert logs["latency_ms"].between(300, 400).all()
    assert (logs["status"] == "error").sum() == 1
    assert logs["timestamp"].dt.strftime("%Y-%m-%d").eq(DAY).all()

    cases = pq.read_table(project.root / "lake" / "labeled_cases" / f"{DAY}.parquet").to_pandas()
    assert len(cases) == len(logs)
    overridden = cases["user_action"] == "overridden"
    assert overridden.any() and (cases.loc[overridden, "final_output"] == "technical").all()

    engine = sa.create_engine(project.warehouse_url)  # the KPIs of the day, by segment, from the spans
    with engine.connect() as connection:
        kpis = connection.execute(sa.text(
            "SELECT segment, cases, overridden_cases, error_cases FROM kpi_daily WHERE system = 'support_triage' "
            "AND segment <> 'all'")).all()
    by_segment = {row.segment: row for row in kpis}
    assert set(by_segment) == set(logs["segment"])
    assert sum(row.cases for row in kpis) == len(logs)
    assert sum(row.overridden_cases for row in kpis) == int((logs["user_action"] == "overridden").sum())
    assert sum(row.error_cases for row in kpis) == 1


def test_sdk_spans_of_three_days_reach_the_drift_report_which_sees_a_latency_regression(tmp_path) -> None:
    """The whole chain on traces alone: two quiet days are the reference of a third whose LLM calls are 400 ms slower
    (an upstream slowdown): drift_report flags latency_ms as major and nothing else moves."""
    days = ["2026-03-02", "2026-03-03", "2026-03-04"]
    config = {**OPENINFERENCE_CONFIG, "drift": {"reference": {"trailing_days": 2}, "min_rows": 20}}
    project = make_project(tmp_path, config)
    for day in days:
        _write_day(project.landing_dir / day, day=day, latency_shift_ms=400 if day == days[-1] else 0)
    instance = dg.DagsterInstance.ephemeral()
    for day in days:
        result = dg.materialize([production_logs, labeled_cases, drift_profile, kpi_daily], partition_key=day,
                                resources=project.resources(), instance=instance)
        assert result.success
    result = dg.materialize([production_logs, labeled_cases, drift_profile, drift_report],
                            selection=[drift_report], partition_key=days[-1], resources=project.resources(),
                            instance=instance)
    assert result.success
    report = Lake(lake_root(project.settings)).read("drift_report", days[-1])
    drifted = {(row.column, row.severity) for row in report.itertuples() if row.drifted}
    assert ("latency_ms", "major") in drifted
    assert {column for column, _ in drifted} == {"latency_ms"}, drifted
    engine = sa.create_engine(project.warehouse_url)
    with engine.connect() as connection:
        per_day = dict(connection.execute(sa.text(
            "SELECT kpi_date, sum(cases) FROM kpi_daily WHERE segment <> 'all' GROUP BY kpi_date")).all())
    assert sorted(str(day) for day in per_day) == days
    assert set(per_day.values()) == {LLM_SPANS - BAD_SPANS}


def test_span_filter_without_the_otlp_format_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError, match=re.escape("source.span_filter applies to source.format: otlp_json")):
        parse_settings({"source": {"span_filter": {"names": ["x"]}}})
    with pytest.raises(ConfigError, match=re.escape("source.span_filter.kinds")):
        parse_settings({"source": {"format": "otlp_json", "span_filter": {"kinds": ["LLM"]}}})
