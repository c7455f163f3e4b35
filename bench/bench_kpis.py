"""KPI throughput: ``kpi_daily`` for a 1M-case day, next to a bare pandas groupby over the same cases.

Setup (not timed): one day of demo events is generated, labeled with ``derive_labels`` and written to a throw-away
lake as ``labeled_cases``. Then each measured phase runs in its own child process, so its peak RSS is its own:

- ``baseline``: ``pd.read_parquet`` of the same columns and a bare ``groupby(system, model_version, segment)``
  computing a handful of counts, means and two quantiles: the floor for "read the day and aggregate it";
- ``kpi_daily``: the real asset through ``dagster.materialize`` (read, every KPI, Wilson intervals, percentiles,
  headline metadata, the transactional warehouse write to SQLite), with the core phases also timed on their own;
- ``kpi_rollups``: the week and month containing the day, recomputed from the warehouse rows and the period's
  cases, with the day's file copied to the other days of its week (``--rollup-days``, default 7).

Targets: kpi_daily under 10 s and peak RSS under 2 GB for 1M cases.
Usage: python bench/bench_kpis.py [--cases N] [--rollup-days D]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

DAY = date(2026, 3, 2)  # a Monday: the week is DAY .. DAY + 6
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 2048.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _config(work: Path) -> Path:
    import yaml

    config = {
        "storage": {"lake_dir": str(work / "lake"), "warehouse_url": f"sqlite:///{work / 'warehouse.db'}"},
        "source": {"landing_dir": str(work / "landing")},
        "features": {"numeric": ["customer_tenure_days"], "categorical": ["channel", "language", "product"]},
        "impact": {"systems": {"support_triage": {
            "labour_cost_per_hour": 38, "manual_baseline_seconds": 150, "cost_per_compliance_flag": 250,
            "cost_per_complaint": 30, "cost_per_escalation": 60}}},
    }
    path = work / "eval_pipelines.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def setup(work: Path, cases: int, rollup_days: int) -> dict:
    from eval_pipelines.demo.generator import DayConditions, generate_day_frame
    from eval_pipelines.labeling.labels import derive_labels
    from eval_pipelines.lake import Lake

    started = time.perf_counter()
    # Mid-rollout, after the launch: two model versions x three segments, the richest day of the demo story.
    conditions = DayConditions(v2_share=0.5, launched=True)
    labeled = derive_labels(generate_day_frame(DAY, cases, seed=7, conditions=conditions), 0.5, 120.0)
    lake = Lake(str(work / "lake"))
    lake.write("labeled_cases", DAY.isoformat(), labeled)
    source = Path(lake.path("labeled_cases", DAY.isoformat()))
    for offset in range(1, rollup_days):
        shutil.copyfile(source, source.with_name(f"{DAY + timedelta(days=offset)}.parquet"))
    _config(work)
    return {"setup_seconds": time.perf_counter() - started, "parquet_mb": source.stat().st_size / 2**20}


def phase_baseline(work: Path) -> dict:
    import pandas as pd

    from eval_pipelines.kpis.metrics import CASE_COLUMNS

    path = work / "lake" / "labeled_cases" / f"{DAY}.parquet"
    started = time.perf_counter()
    frame = pd.read_parquet(path, columns=list(CASE_COLUMNS))
    read = time.perf_counter() - started
    mark = time.perf_counter()
    frame = frame.assign(accepted=frame["user_action"] == "accepted", overridden=frame["user_action"] == "overridden",
                         ai_correct=frame["ai_correct"].astype("float64"))
    grouped = frame.groupby(["system", "model_version", "segment"], observed=True)
    table = grouped.agg(cases=("status", "size"), accepted=("accepted", "sum"), overridden=("overridden", "sum"),
                        accuracy=("ai_correct", "mean"), cost_usd=("cost_usd", "sum"),
                        decision_s=("decision_seconds", "sum"))
    table["latency_ms_p95"] = grouped["latency_ms"].quantile(0.95)
    table["decision_seconds_p50"] = grouped["decision_seconds"].quantile(0.5)
    groupby = time.perf_counter() - mark
    return {"seconds": read + groupby, "read_seconds": read, "groupby_seconds": groupby, "rows": len(frame),
            "groups": len(table), "peak_rss_mb": _peak_rss_mb()}


def phase_kpi_daily(work: Path) -> dict:
    from datetime import UTC, datetime

    import dagster as dg

    from eval_pipelines.config import load_settings
    from eval_pipelines.kpis.assets import day_total, kpi_daily
    from eval_pipelines.kpis.metrics import daily_kpis
    from eval_pipelines.kpis.store import read_cases, write_daily
    from eval_pipelines.lake import Lake
    from eval_pipelines.resources import build_resources
    from eval_pipelines.warehouse.core import create_warehouse_engine

    config = str(work / "eval_pipelines.yaml")
    settings = load_settings(config)
    resources = build_resources(settings, config)
    started = time.perf_counter()
    result = dg.materialize([kpi_daily], partition_key=DAY.isoformat(), resources=resources,
                            instance=dg.DagsterInstance.ephemeral())
    asset_seconds = time.perf_counter() - started
    assert result.success
    rss_after_asset = _peak_rss_mb()

    timings: dict[str, float] = {}
    mark = time.perf_counter()
    cases = read_cases(Lake(str(work / "lake")), DAY)
    timings["read"] = time.perf_counter() - mark
    mark = time.perf_counter()
    frame = daily_kpis(cases, settings.impact, DAY)
    timings["compute"] = time.perf_counter() - mark
    mark = time.perf_counter()
    day_total(frame, cases, settings.impact.ci_level)
    timings["headline"] = time.perf_counter() - mark
    mark = time.perf_counter()
    write_daily(create_warehouse_engine(settings.storage.warehouse_url), frame, DAY, datetime.now(UTC))
    timings["write"] = time.perf_counter() - mark
    return {"seconds": asset_seconds, "rows": len(frame), "cases": len(cases), "core": timings,
            "peak_rss_mb": rss_after_asset}


def phase_rollups(work: Path, rollup_days: int) -> dict:
    from eval_pipelines.config import load_settings
    from eval_pipelines.kpis.metrics import daily_kpis
    from eval_pipelines.kpis.store import read_cases, refresh_rollups, write_daily
    from eval_pipelines.lake import Lake
    from eval_pipelines.warehouse.core import create_warehouse_engine

    settings = load_settings(str(work / "eval_pipelines.yaml"))
    engine = create_warehouse_engine(settings.storage.warehouse_url)
    lake = Lake(str(work / "lake"))
    cases = read_cases(lake, DAY)
    frame = daily_kpis(cases, settings.impact, DAY)
    del cases
    for offset in range(1, rollup_days):  # the copies have the same cases: same rows under their own date
        day = DAY + timedelta(days=offset)
        write_daily(engine, frame.assign(kpi_date=day), day)
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    result = refresh_rollups(engine, lake, DAY, settings.impact.ci_level)
    return {"seconds": time.perf_counter() - started, "week_rows": len(result["week"]),
            "month_rows": len(result["month"]), "cases": int(result["week"]["cases"].sum()),
            "month_cases": int(result["month"]["cases"].sum()),
            "rss_before_mb": rss_before, "peak_rss_mb": _peak_rss_mb()}


def _child(phase: str, work: Path, extra: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "--phase", phase, "--work", str(work), *extra],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--rollup-days", type=int, default=7)
    parser.add_argument("--phase", choices=["setup", "baseline", "kpi_daily", "rollups"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        work = Path(args.work)
        result = {"setup": lambda: setup(work, args.cases, args.rollup_days),
                  "baseline": lambda: phase_baseline(work),
                  "kpi_daily": lambda: phase_kpi_daily(work),
                  "rollups": lambda: phase_rollups(work, args.rollup_days)}[args.phase]()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench_kpis_") as tmp:
        work = Path(tmp)
        extra = ["--cases", str(args.cases), "--rollup-days", str(args.rollup_days)]
        prepared = _child("setup", work, extra)
        print(f"setup: {args.cases:,} labeled cases generated and written ({prepared['parquet_mb']:.0f} MB Parquet) "
              f"in {prepared['setup_seconds']:.1f} s (not timed below)")
        baseline = _child("baseline", work, extra)
        daily = _child("kpi_daily", work, extra)
        rollups = _child("rollups", work, extra)

    core = daily["core"]
    ratio = daily["seconds"] / baseline["seconds"]
    print(f"baseline  pandas read + groupby: {baseline['seconds']:.2f} s (read {baseline['read_seconds']:.2f} s, "
          f"groupby {baseline['groupby_seconds']:.2f} s), peak RSS {baseline['peak_rss_mb']:.0f} MB")
    print(f"kpi_daily dagster.materialize:   {daily['seconds']:.2f} s for {daily['cases']:,} cases -> {daily['rows']} "
          f"rows ({daily['cases'] / daily['seconds']:,.0f} cases/s), {ratio:.1f}x the baseline, "
          f"peak RSS {daily['peak_rss_mb']:.0f} MB")
    print(f"          core: read {core['read']:.2f} s, KPIs {core['compute']:.2f} s, headline "
          f"{core['headline']:.2f} s, warehouse write {core['write']:.3f} s")
    print(f"kpi_rollups week ({rollups['cases']:,} cases) + month ({rollups['month_cases']:,} cases): "
          f"{rollups['seconds']:.2f} s, peak RSS {rollups['peak_rss_mb']:.0f} MB")
    ok = daily["seconds"] < TARGET_SECONDS and daily["peak_rss_mb"] < TARGET_RSS_MB
    print(f"target kpi_daily < {TARGET_SECONDS:.0f} s and < {TARGET_RSS_MB:.0f} MB RSS: {'MET' if ok else 'MISSED'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
