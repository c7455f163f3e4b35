"""Coverage and bias of the review estimates on the seeded automation-bias world, at a larger replication count.

The same world as ``eval_pipelines_tests/test_review_estimation.py`` (one day of N cases where ~35 % of wrong
suggestions are accepted; a perfect reviewer answers every task); prints the truths, the implicit accuracy, and per
estimate the mean over the replications and the 95 % CI coverage with its binomial standard error.
With ``--kpis``: the kpi_daily view instead (kpis/reviewed.py): a 7-day world with two model versions (not a
stratum variable, so a KPI row cuts every cell), the audit redrawn per replication with the design's n_h; coverage
of reviewed_accuracy for the day, a narrow row (s/v2/business, ~10 % of the day), the week (each day's cells
separate strata) and the week's row, and the automation-bias rate's mean error and coverage.
Usage: PYTHONPATH=. python bench/bench_review_coverage.py [--cases 2500] [--size 250] [--reps 1000] [--kpis]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

from eval_pipelines.review.design import AuditDesignConfig, draw_audit_sample
from eval_pipelines.review.estimation import estimate_reviewed, implicit_accuracy
from eval_pipelines_tests.review_sim import simulate_day


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2500)
    parser.add_argument("--size", type=int, default=250)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--kpis", action="store_true", help="coverage of the kpi_daily / kpi_weekly rows")
    args = parser.parse_args()
    if args.kpis:
        kpi_coverage(args.reps)
        return
    cases = simulate_day(args.cases, seed=2024)
    ok = cases[cases["status"] == "ok"]
    truth = ok.set_index("event_id")["true_correct"]
    accepted = ok["user_action"] == "accepted"
    targets = {"reviewed_accuracy": float(ok["true_correct"].mean()),
               "automation_bias_rate": float((~ok.loc[accepted, "true_correct"]).mean()),
               "override_error_rate": float(ok.loc[ok["user_action"] == "overridden", "true_correct"].mean())}
    print(f"implicit accuracy {implicit_accuracy(cases):.4f}; truths "
          + ", ".join(f"{k} {v:.4f}" for k, v in targets.items()))
    config = AuditDesignConfig(daily_size=args.size, seed=5)
    found: dict[str, list[float]] = {k: [] for k in targets}
    covered = dict.fromkeys(targets, 0)
    start = time.perf_counter()
    for k in range(args.reps):
        sample = draw_audit_sample(cases, dt.date(2026, 3, 4) + dt.timedelta(days=k), config)
        ids = sample.tasks["event_id"]
        got = estimate_reviewed(sample.frame, pd.DataFrame({"event_id": ids,
                                                            "ai_correct": truth.reindex(ids).to_numpy()}))
        for name, target in targets.items():
            estimate = getattr(got, name)
            found[name].append(estimate.estimate)
            covered[name] += estimate.ci_low <= target <= estimate.ci_high
    elapsed = time.perf_counter() - start
    for name, target in targets.items():
        share = covered[name] / args.reps
        print(f"{name}: mean {np.mean(found[name]):.4f} (truth {target:.4f}), coverage {share:.3f} "
              f"± {np.sqrt(share * (1 - share) / args.reps):.3f}")
    print(f"{args.reps} replications in {elapsed:.1f} s")


def kpi_coverage(reps: int) -> None:
    """The kpi rows' coverage, the world and redraw of eval_pipelines_tests/test_kpi_reviewed.py at more reps."""
    from eval_pipelines_tests.test_kpi_reviewed import KEYS, Redraw, _estimate, world

    row_key = ("s", "v2", "business")
    days = [world(seed) for seed in range(7)]
    oks = [p for _, p in days]

    def share(frame: pd.DataFrame, row: bool) -> float:
        keep = (frame[KEYS].astype(str).agg("|".join, axis=1) == "|".join(row_key)) if row else \
            pd.Series(True, index=frame.index)
        return float(frame.loc[keep, "true_correct"].mean())

    week = pd.concat(oks)
    accepted = oks[0]["review_action"] == "accepted"
    truths = {"day": share(oks[0], False), "row": share(oks[0], True), "week": share(week, False),
              "week_row": share(week, True), "bias": float((~oks[0].loc[accepted, "true_correct"].astype(bool))
                                                           .mean())}
    redraws = [Redraw(p, row_key) for p in oks]
    rng = np.random.default_rng(7)
    hits = dict.fromkeys(truths, 0)
    bias: list[float] = []
    start = time.perf_counter()
    for _ in range(reps):
        draws = [r.draw(rng) for r in redraws]
        found = {"day": _estimate(redraws[:1], draws[:1], False, ("reviewed_accuracy", "automation_bias_rate")),
                 "row": _estimate(redraws[:1], draws[:1], True, ("reviewed_accuracy",)),
                 "week": _estimate(redraws, draws, False, ("reviewed_accuracy",)),
                 "week_row": _estimate(redraws, draws, True, ("reviewed_accuracy",))}
        for name, estimate in found.items():
            hits[name] += estimate["reviewed_accuracy_ci_low"] <= truths[name] <= estimate["reviewed_accuracy_ci_high"]
        day = found["day"]
        hits["bias"] += day["automation_bias_rate_ci_low"] <= truths["bias"] <= day["automation_bias_rate_ci_high"]
        bias.append(float(day["automation_bias_rate"]))
    for name, truth in truths.items():
        cover = hits[name] / reps
        print(f"{name}: truth {truth:.4f}, 95 % CI coverage {cover:.3f} ± {np.sqrt(cover * (1 - cover) / reps):.3f}")
    errors = np.asarray(bias) - truths["bias"]
    print(f"automation_bias_rate mean error {errors.mean():+.4f} (MC s.e. {errors.std(ddof=1) / np.sqrt(reps):.4f})")
    print(f"{reps} replications in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
