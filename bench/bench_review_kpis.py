"""Corrected KPIs for a 1M-case day: kpi_daily's maths with the audit (review_queue + review_labels) beside without.

Setup (not timed): review_sim's automation-bias world, 1M cases of one day, two systems × two model versions ×
two segments; the day's audit drawn with ``draw_audit_sample`` (daily_size 2,000) and answered by a perfect
reviewer. Timed, best of ``--repeat``, in this process:

- ``plain``: ``compute_kpis(cases, impact)``, the KPI rows without the audit (today's kpi_daily core);
- ``cells``: ``review_cells(review_queue frame, review_labels frame)``: verdicts joined to phase one and counted
  per (row, cell) — what kpi_daily adds on reading the two lake datasets;
- ``corrected``: ``compute_kpis(cases, impact, cells)``: every KPI plus the reviewed columns and silent errors;
- ``day_total``: the reviewed estimates over the whole day (the asset's headline row).

Target: cells + corrected under 15 s on 2 cores for 1M cases. Parquet reads are not included (bench_kpis.py
measures the asset end to end). Usage: PYTHONPATH=. python bench/bench_review_kpis.py [--cases 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

from eval_pipelines.kpis import reviewed
from eval_pipelines.kpis.metrics import compute_kpis
from eval_pipelines.kpis.settings import ImpactConfig
from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample
from eval_pipelines_tests.review_sim import simulate_day

TARGET_SECONDS = 15.0


def best(repeat: int, function):  # bench helper
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    cases = simulate_day(args.cases, seed=1)
    rng = np.random.default_rng(2)
    cases["system"] = pd.Categorical(np.where(rng.random(args.cases) < 0.5, "triage", "routing"))
    cases["model_version"] = pd.Categorical(np.where(rng.random(args.cases) < 0.6, "v1", "v2"))
    cases["segment"] = pd.Categorical(cases["segment"])
    cases["is_labeled"] = cases["ai_correct"].notna()
    cases["latency_ms"] = rng.lognormal(6, 0.5, args.cases)
    cases["cost_usd"] = 0.002
    sample = draw_audit_sample(cases, dt.date(2026, 3, 2), AuditDesignConfig(daily_size=args.size, seed=1))
    ok = cases[cases["status"] == "ok"]
    keys = ok.set_index("event_id").loc[sample.frame["event_id"], ["system", "model_version", "segment"]]
    # As kpi_daily reads the lake dataset: low-cardinality text as dictionaries (categoricals).
    queue = sample.frame.assign(**{c: keys[c].to_numpy() for c in keys.columns})
    for column in ("system", "model_version", "segment", "stratum", "review_action"):
        queue[column] = pd.Categorical(queue[column])
    truth = ok.set_index("event_id")["true_correct"]
    labels = pd.DataFrame({"event_id": sample.tasks["event_id"],
                           "ai_correct": truth.reindex(sample.tasks["event_id"]).to_numpy()})
    impact = ImpactConfig(systems={"default": {"cost_per_silent_error": 25.0}})
    print(f"{args.cases:,} cases, {len(queue):,} in phase one, {len(labels):,} verdicts")

    plain, _ = best(args.repeat, lambda: compute_kpis(cases, impact))
    cells_time, cells = best(args.repeat, lambda: reviewed.review_cells(queue, labels))
    corrected, frame = best(args.repeat, lambda: compute_kpis(cases, impact, cells))
    total_time, (total, _) = best(args.repeat, lambda: reviewed.estimate_rows(cells, [], 0.95))
    added = cells_time + corrected
    print(f"plain kpi_daily core      {plain:6.2f} s  ({len(frame)} rows)")
    print(f"review_cells              {cells_time:6.2f} s  ({len(cells)} row x cell counts)")
    print(f"corrected kpi_daily core  {corrected:6.2f} s  (reviewed columns on every row)")
    print(f"day-total estimates       {total_time:6.2f} s")
    verdict = "OK" if added < TARGET_SECONDS else "MISSED"
    print(f"corrected total (cells + corrected) {added:.2f} s vs target {TARGET_SECONDS:.0f} s: {verdict}")
    accuracy = float(ok["true_correct"].mean())
    print(f"day: implicit accuracy {cases['ai_correct'].astype('boolean').mean():.4f}, reviewed "
          f"{total['reviewed_accuracy'][0]:.4f} [{total['reviewed_accuracy_ci_low'][0]:.4f}, "
          f"{total['reviewed_accuracy_ci_high'][0]:.4f}], truth {accuracy:.4f}")


if __name__ == "__main__":
    main()
