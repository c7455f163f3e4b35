"""Coverage and bias of the review estimates on the seeded automation-bias world, at a larger replication count.

The same world as ``eval_pipelines_tests/test_review_estimation.py`` (one day of N cases where ~35 % of wrong
suggestions are accepted; a perfect reviewer answers every task); prints the truths, the implicit accuracy, and per
estimate the mean over the replications and the 95 % CI coverage with its binomial standard error.
Usage: PYTHONPATH=. python bench/bench_review_coverage.py [--cases 2500] [--size 250] [--reps 1000]
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
