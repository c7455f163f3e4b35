"""Ingestion throughput: one day of 1M demo events (JSONL) through the whole partition, next to a bare parse.

Each measured phase runs in its own child process so its peak RSS is its own. Prints events/s, the ratio to a
bare ``pyarrow.json.read_json`` of the same file timed in the same run, and peak RSS, against the targets
(>= 250,000 events/s, <= 4x the bare parse, < 3 GB RSS). The same day is then materialised through Dagster
(the asset with its checks, the IO manager and the event log) and its step time printed beside.
Usage: python bench/bench_ingest.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

DAY = date(2026, 11, 20)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_bare(landing: Path) -> dict:
    import pyarrow.json as pa_json

    path = next((landing / DAY.isoformat()).glob("*.jsonl"))
    started = time.perf_counter()
    table = pa_json.read_json(path)
    return {"seconds": time.perf_counter() - started, "rows": table.num_rows, "peak_rss_mb": _peak_rss_mb()}


def _import_libraries() -> float:
    """Load what a run loads once per process, outside the timing, as the bare side imports pyarrow before its
    clock starts. Returns the seconds spent importing Great Expectations, which the project loads on first use."""
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    return time.perf_counter() - started


def phase_partition(landing: Path, work: Path) -> dict:
    from eval_pipelines.config import parse_settings
    from eval_pipelines.ingestion.assets import read_partition, warehouse_writes
    from eval_pipelines.ingestion.conform import target_fields
    from eval_pipelines.ingestion.expectations import validate_contract
    from eval_pipelines.ingestion.privacy import mask_ingest_result, masker_for
    from eval_pipelines.lake import Lake
    from eval_pipelines.warehouse.core import create_warehouse_engine, replace_partitions

    settings = parse_settings({
        "source": {"landing_dir": str(landing)},
        "storage": {"lake_dir": str(work / "lake"), "warehouse_url": f"sqlite:///{work / 'warehouse.db'}"},
        "features": {"numeric": ["customer_tenure_days"], "categorical": ["channel", "language", "product"]},
    })
    gx_import = _import_libraries()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    raw = read_partition(settings, DAY)
    timings["read_map_validate_dedup"] = time.perf_counter() - started
    mark = time.perf_counter()
    # As in the asset: PII is masked before the lake, the warehouse and the contract check see the rows.
    result, _ = mask_ingest_result(raw, settings, masker_for(settings))
    timings["pii_masking"] = time.perf_counter() - mark
    del raw
    mark = time.perf_counter()
    # As in the asset: the GX suite runs while the Parquet partition is written.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(validate_contract, result.valid, target_fields(settings), DAY, 60)
        uri = Lake(str(work / "lake")).write("production_logs", DAY.isoformat(), result.valid)
        timings["parquet_write"] = time.perf_counter() - mark
        contract = pending.result()
    timings["gx_contract_check_and_parquet_write"] = time.perf_counter() - mark
    mark = time.perf_counter()
    engine = create_warehouse_engine(settings.storage.warehouse_url)
    replace_partitions(engine, warehouse_writes(result, "landing", uri))
    timings["warehouse_write"] = time.perf_counter() - mark
    return {"seconds": time.perf_counter() - started, "rows": result.rows_read, "valid": result.rows_valid,
            "contract_passed": contract.success, "timings": timings, "gx_import_seconds": gx_import,
            "peak_rss_mb": _peak_rss_mb()}


def phase_dagster(landing: Path, work: Path) -> dict:
    """The same day through ``dagster.materialize`` of the real asset (checks, IO manager, event log included)."""
    import dagster as dg

    from eval_pipelines.config import load_settings
    from eval_pipelines.ingestion.assets import production_logs
    from eval_pipelines.resources import build_resources

    config_path = work / "eval_pipelines.yaml"
    config_path.write_text(json.dumps({
        "source": {"landing_dir": str(landing)},
        "storage": {"lake_dir": str(work / "dagster_lake"), "warehouse_url": f"sqlite:///{work / 'dagster.db'}"},
        "features": {"numeric": ["customer_tenure_days"], "categorical": ["channel", "language", "product"]},
    }))  # JSON is YAML
    settings = load_settings(config_path)
    _import_libraries()
    started = time.perf_counter()
    result = dg.materialize([production_logs], partition_key=DAY.isoformat(),
                            resources=build_resources(settings, str(config_path)),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
    wall = time.perf_counter() - started
    step = next(e for e in result.all_events if e.event_type_value == "STEP_SUCCESS")
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    materialization = result.asset_materializations_for_node("production_logs")[0]
    return {"seconds": step.event_specific_data.duration_ms / 1000, "wall_seconds": wall,
            "rows": int(materialization.metadata["rows_read"].value),
            "checks": len(checks), "checks_passed": all(check.passed for check in checks)
            and len(checks) == len(list(production_logs.check_specs)),
            "peak_rss_mb": _peak_rss_mb()}


def _run_child(phase: str, landing: Path, work: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--landing", str(landing), "--work", str(work)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["bare", "partition", "dagster"])
    parser.add_argument("--landing", type=Path)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.phase == "bare":
        print(json.dumps(phase_bare(args.landing)))
        return
    if args.phase == "partition":
        print(json.dumps(phase_partition(args.landing, args.work)))
        return
    if args.phase == "dagster":
        print(json.dumps(phase_dagster(args.landing, args.work)))
        return

    from eval_pipelines.demo.generator import generate_logs

    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        landing, work = Path(tmp) / "landing", Path(tmp) / "work"
        work.mkdir()
        started = time.perf_counter()
        generate_logs(landing, days=1, events_per_day=args.events, seed=1, fmt="jsonl", start_date=DAY,
                      files_per_day=1)
        generated = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in landing.rglob("*.jsonl")) / 1e6
        bare = min((_run_child("bare", landing, work) for _ in range(3)), key=lambda r: r["seconds"])
        # Best of three for both sides: on a shared 2-core machine single runs vary by 2x.
        full = min((_run_child("partition", landing, work) for _ in range(3)), key=lambda r: r["seconds"])
        dagster = min((_run_child("dagster", landing, work) for _ in range(3)), key=lambda r: r["seconds"])

    rate = full["rows"] / full["seconds"]
    ratio = full["seconds"] / bare["seconds"]
    print(f"generated {args.events:,} events ({size_mb:,.0f} MB JSONL) in {generated:.1f} s")
    print(f"bare pyarrow.json.read_json:  {bare['seconds']:.2f} s  ({bare['rows'] / bare['seconds']:,.0f} rows/s, "
          f"peak RSS {bare['peak_rss_mb']:,.0f} MB)")
    print(f"whole partition:              {full['seconds']:.2f} s  ({rate:,.0f} events/s, "
          f"peak RSS {full['peak_rss_mb']:,.0f} MB), contract check passed: {full['contract_passed']}")
    for name, seconds in full["timings"].items():
        print(f"  {name:<26}{seconds:6.2f} s")
    print(f"through dagster.materialize:  {dagster['seconds']:.2f} s step ({dagster['rows'] / dagster['seconds']:,.0f} "
          f"events/s; {dagster['wall_seconds']:.2f} s for the whole materialize call), peak RSS "
          f"{dagster['peak_rss_mb']:,.0f} MB, all {dagster['checks']} checks passed: {dagster['checks_passed']}")
    print(f"not timed above, once per run process: importing great_expectations {full['gx_import_seconds']:.2f} s "
          "(the project imports it on first use, so only runs that validate a contract pay it)")
    targets = [
        ("events/s >= 250,000", rate >= 250_000, f"{rate:,.0f}"),
        ("time <= 4x bare parse", ratio <= 4, f"{ratio:.2f}x"),
        ("peak RSS < 3 GB", full["peak_rss_mb"] < 3072, f"{full['peak_rss_mb']:,.0f} MB"),
    ]
    for name, ok, value in targets:
        print(f"{'PASS' if ok else 'MISS'}  {name:<24} {value}")


if __name__ == "__main__":
    main()
