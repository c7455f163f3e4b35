"""OTLP/JSON trace ingestion: one day of N LLM spans through the reader and the contract, next to bare parses.

Writes a Collector-style file (one TracesData line per export batch of 50 spans: 40 LLM spans with OpenInference
attributes, 10 chain spans the filter leaves out; the shape the SDK produces, checked in test_otlp.py), then times,
in the same run: a bare ``json.loads`` of every line, a bare ``pyarrow.json.read_json`` of the file, the OTLP reader
(spans → flat rows) and the reader plus conform (the canonical contract, as production_logs does it).
Usage: python bench/bench_otlp.py [--spans 1000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

DAY = date(2026, 11, 20)
BATCH_LLM, BATCH_OTHER = 40, 10


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def write_day(path: Path, llm_spans: int) -> int:
    start = int(datetime(DAY.year, DAY.month, DAY.day, 8, tzinfo=UTC).timestamp() * 1e9)
    written = 0
    with path.open("w") as handle:
        batch = 0
        while written < llm_spans:
            spans = []
            for k in range(BATCH_LLM + BATCH_OTHER):
                n = batch * 1000 + k
                t0 = start + n * 1_000_000
                llm = k < BATCH_LLM
                attributes = [_attr("openinference.span.kind", "LLM" if llm else "CHAIN")]
                if llm:
                    attributes += [_attr("llm.model_name", "triage-v3"), _attr("llm.token_count.prompt", 800 + k),
                                   _attr("input.value", f"Ticket {n}: my invoice is wrong, order {n % 997}"),
                                   _attr("output.value", "billing"), _attr("app.segment", "consumer"),
                                   _attr("app.confidence", 0.5 + (k % 5) / 10), _attr("app.cost_usd", 0.002),
                                   _attr("app.user_action", "accepted"), _attr("app.final_output", "billing"),
                                   _attr("app.decision_seconds", 4.0 + k % 7)]
                spans.append({"traceId": f"{n:032x}", "spanId": f"{n + 1:016x}", "name": "ChatCompletion",
                              "kind": 1, "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 350_000_000),
                              "attributes": attributes, "status": {}})
            document = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "support_triage")]},
                                           "scopeSpans": [{"scope": {"name": "app", "version": "1"},
                                                           "spans": spans}]}]}
            handle.write(json.dumps(document, separators=(",", ":")) + "\n")
            written += BATCH_LLM
            batch += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="LLM spans in the day (others on top)")
    args = parser.parse_args()

    import pyarrow.json as pa_json

    from eval_pipelines.config import parse_settings
    from eval_pipelines.ingestion.conform import conform
    from eval_pipelines.ingestion.readers import read_log_file

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "traces.jsonl"
        spans = write_day(path, args.spans)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {spans:,} LLM spans + {spans * BATCH_OTHER // BATCH_LLM:,} chain spans, {size_mb:,.0f} MB")

        started = time.perf_counter()
        with path.open("rb") as handle:
            for line in handle:
                json.loads(line)
        bare_json = time.perf_counter() - started
        started = time.perf_counter()
        pa_json.read_json(path)
        bare_arrow = time.perf_counter() - started

        mapping = {"event_id": "span.span_id", "timestamp": "span.start_time", "system": "resource.service.name",
                   "model_version": "attr.llm.model_name", "segment": "attr.app.segment",
                   "input_text": "attr.input.value", "ai_output": "attr.output.value",
                   "confidence": "attr.app.confidence", "latency_ms": "span.duration_ms",
                   "cost_usd": "attr.app.cost_usd", "status": "span.status", "user_action": "attr.app.user_action",
                   "final_output": "attr.app.final_output", "decision_seconds": "attr.app.decision_seconds"}
        settings = parse_settings({
            "source": {"format": "otlp_json", "span_filter": {"attributes": {"openinference.span.kind": "LLM"}}},
            "features": {"numeric": [], "categorical": []},
            "mapping": {"columns": mapping, "value_maps": {"status": {"UNSET": "ok", "OK": "ok", "ERROR": "error"}}},
        })
        started = time.perf_counter()
        result = read_log_file(path, source_format="otlp_json", span_filter=settings.source.span_filter_spec())
        read_seconds = time.perf_counter() - started
        assert result.error is None and len(result.rows) == spans, (result.error, result.rows_read)
        started = time.perf_counter()
        conformed = conform(result.rows, settings, DAY, path.name)
        conform_seconds = time.perf_counter() - started
        assert conformed.valid_count == spans, conformed.quarantined.head()

    total = read_seconds + conform_seconds
    print(f"bare json.loads per line:   {bare_json:7.2f} s  {spans / bare_json:>10,.0f} LLM spans/s")
    print(f"bare pyarrow read_json:     {bare_arrow:7.2f} s  {spans / bare_arrow:>10,.0f} LLM spans/s")
    print(f"OTLP reader (spans → rows): {read_seconds:7.2f} s  {spans / read_seconds:>10,.0f} spans/s")
    print(f"reader + conform:           {total:7.2f} s  {spans / total:>10,.0f} events/s "
          f"({total / bare_json:.1f}x the bare json.loads)")


if __name__ == "__main__":
    main()
