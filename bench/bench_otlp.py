"""OTLP/JSON trace ingestion: one day of N LLM spans through the reader and the contract, next to bare parses.

Writes a Collector-style file (one TracesData line per export batch of 50 spans: 40 LLM spans with OpenInference
attributes, 10 chain spans the filter leaves out; the shape the SDK produces, checked in test_otlp.py), then times,
in the same run: a bare ``json.loads`` of every line, a bare ``pyarrow.json.read_json`` of the file, the OTLP reader
(spans → flat rows) and the reader plus conform (the canonical contract, as production_logs does it); with
``--reference``, the reader before its speed-up (eval_pipelines_tests/otlp_reference.py) as the baseline. Each phase
runs in its own forked process, so its peak RSS is its own; the load average is printed at the start and the end.
Usage: PYTHONPATH=. python bench/bench_otlp.py [--spans 1000000] [--reference]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _bare_json(path: Path) -> dict:
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
    return {"seconds": time.perf_counter() - started}


def _bare_arrow(path: Path) -> dict:
    import pyarrow.json as pa_json

    started = time.perf_counter()
    pa_json.read_json(path)
    return {"seconds": time.perf_counter() - started}


def _settings():
    from eval_pipelines.config import parse_settings

    mapping = {"event_id": "span.span_id", "timestamp": "span.start_time", "system": "resource.service.name",
               "model_version": "attr.llm.model_name", "segment": "attr.app.segment",
               "input_text": "attr.input.value", "ai_output": "attr.output.value",
               "confidence": "attr.app.confidence", "latency_ms": "span.duration_ms",
               "cost_usd": "attr.app.cost_usd", "status": "span.status", "user_action": "attr.app.user_action",
               "final_output": "attr.app.final_output", "decision_seconds": "attr.app.decision_seconds"}
    return parse_settings({
        "source": {"format": "otlp_json", "span_filter": {"attributes": {"openinference.span.kind": "LLM"}}},
        "features": {"numeric": [], "categorical": []},
        "mapping": {"columns": mapping, "value_maps": {"status": {"UNSET": "ok", "OK": "ok", "ERROR": "error"}}},
    })


def _reader(path: Path, spans: int, reference: bool = False, then_conform: bool = False) -> dict:
    """The reader as production_logs calls it (or the reader before the speed-up), then optionally conform."""
    from eval_pipelines.ingestion.conform import conform
    from eval_pipelines.ingestion.otlp import FeedbackSelection
    from eval_pipelines.ingestion.readers import read_log_file

    settings = _settings()
    span_filter = settings.source.span_filter_spec()
    started = time.perf_counter()
    if reference:
        from eval_pipelines_tests.otlp_reference import reference_read_otlp

        result = reference_read_otlp(path, "otlp_json", path.read_bytes(), 64, span_filter, FeedbackSelection())
    else:
        result = read_log_file(path, source_format="otlp_json", span_filter=span_filter)
    read_seconds = time.perf_counter() - started
    assert result.error is None and len(result.rows) == spans, (result.error, result.rows_read)
    out = {"seconds": read_seconds, "read_peak_mb": _peak_rss_mb()}
    if then_conform:
        started = time.perf_counter()
        conformed = conform(result.rows, settings, DAY, path.name)
        out["conform_seconds"] = time.perf_counter() - started
        assert conformed.valid_count == spans, conformed.quarantined.head()
    return out


def _phase(function, *args) -> dict:
    """Run one phase in a forked child, so each peak RSS is that phase's own (plus the imports all share)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(_measured, function, *args).result()


def _measured(function, *args) -> dict:
    start_mb = _peak_rss_mb()
    out = function(*args)
    out.update(start_mb=start_mb, peak_mb=_peak_rss_mb())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="LLM spans in the day (others on top)")
    parser.add_argument("--reference", action="store_true",
                        help="also time the reader before the speed-up (eval_pipelines_tests/otlp_reference.py)")
    args = parser.parse_args()

    import eval_pipelines.ingestion.readers  # noqa: F401  (imported before the forks: every phase shares it)

    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "traces.jsonl"
        spans = write_day(path, args.spans)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {spans:,} LLM spans + {spans * BATCH_OTHER // BATCH_LLM:,} chain spans, {size_mb:,.0f} MB")
        bare_json = _phase(_bare_json, path)
        bare_arrow = _phase(_bare_arrow, path)
        reference = _phase(_reader, path, spans, True) if args.reference else None
        reader = _phase(_reader, path, spans, False, True)

    def line(name: str, seconds: float, unit: str, phase: dict) -> str:
        return (f"{name:<34}{seconds:7.2f} s  {spans / seconds:>10,.0f} {unit}  "
                f"peak RSS {phase['peak_mb']:6,.0f} MB (from {phase['start_mb']:,.0f} MB)")

    print(line("bare json.loads per line:", bare_json["seconds"], "LLM spans/s", bare_json))
    print(line("bare pyarrow read_json:", bare_arrow["seconds"], "LLM spans/s", bare_arrow))
    if reference is not None:
        print(line("reference reader (before):", reference["seconds"], "spans/s    ", reference))
    print(line("OTLP reader (spans → rows):", reader["seconds"], "spans/s    ",
               {**reader, "peak_mb": reader["read_peak_mb"]}))
    total = reader["seconds"] + reader["conform_seconds"]
    print(line("reader + conform:", total, "events/s   ", reader)
          + f"  ({total / bare_json['seconds']:.1f}x the bare json.loads)")
    if reference is not None:
        print(f"reader speed-up over the reference: {reference['seconds'] / reader['seconds']:.2f}x, peak RSS "
              f"{reference['peak_mb'] / reader['read_peak_mb']:.2f}x lower")
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
