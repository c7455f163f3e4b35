"""The gate and the projection on trusted vs implicit labels, in a seeded world with automation bias (issue 12).

One production population (``--days`` days x ``--per-day`` cases, 35 % of wrong suggestions accepted) is
re-audited ``--runs`` times (audit ``--audit`` a day, 5 % of tasks unanswered at random) and an eval set of
``--size`` drawn from the trusted labels each time; the implicit-label set (today's design, baseline of the same
run) is drawn ``--implicit-runs`` times. Candidates: better (fixes 60 % of accepted mistakes, breaks 1 % of right
answers), worse (breaks 5 %), and at the margin (breaks just enough to be 2 points worse). Prints the gate's fail
rates, the non-inferiority size at the margin, and the coverage of the corrected projection.

    PYTHONPATH=$PWD python bench/bench_trusted_gate.py [--runs 300]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from eval_pipelines.evalsets.estimation import stratified_estimate
from eval_pipelines_tests.trusted_gate import CRITERION, gate_on, implicit_eval_set, trusted_draw
from eval_pipelines_tests.trusted_world import build_world, candidate_outputs, re_audit, true_accuracy_of


def _rate(flags: list[bool]) -> str:
    n = len(flags)
    p = float(np.mean(flags)) if n else float("nan")
    half = 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / n) if n else float("nan")
    return f"{p:.3f} ± {half:.3f} ({int(np.sum(flags))}/{n})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--implicit-runs", type=int, default=50)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--audit", type=int, default=200)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    began = time.perf_counter()
    world = build_world(11, days=args.days, per_day=args.per_day, audit_size=args.audit)
    better = candidate_outputs(world, 1, fix_accepted=0.6, break_right=0.01)
    worse = candidate_outputs(world, 2, fix_accepted=0.0, break_right=0.05)
    # At the margin: break right answers until the candidate is CRITERION.margin worse (searched on the truth).
    low, high = 0.0, 0.1
    for _ in range(30):
        mid = (low + high) / 2
        gap = true_accuracy_of(world, candidate_outputs(world, 3, 0.0, mid)) - world.true_accuracy
        low, high = (mid, high) if gap > -CRITERION.margin else (low, mid)
    margin = candidate_outputs(world, 3, 0.0, high)
    truth = {name: true_accuracy_of(world, out) - world.true_accuracy
             for name, out in (("better", better), ("worse", worse), ("margin", margin))}
    print(f"population: {args.days} days x {args.per_day} cases, true production accuracy {world.true_accuracy:.4f}")
    print("true differences vs production: " + ", ".join(f"{k} {v:+.4f}" for k, v in truth.items()))
    fails = {"better": [], "worse": [], "margin_passed": []}
    covered, estimates, judged = [], [], []
    for r in range(args.runs):
        audited = re_audit(world, 1000 + r, args.audit)
        cases, strata = trusted_draw(audited, args.size, r)
        y = (cases["label"].to_numpy(dtype=object) == cases["ai_output"].to_numpy(dtype=object)).astype(float)
        found = stratified_estimate(y, cases["stratum"], strata.set_index("stratum")["population"])
        covered.append(found.ci_low <= world.true_accuracy <= found.ci_high)
        estimates.append(found.estimate)
        passed, _, verdict = gate_on((cases, strata), better)
        fails["better"].append(not passed)
        judged.append(verdict != "not_judged")
        fails["worse"].append(not gate_on((cases, strata), worse)[0])
        fails["margin_passed"].append(gate_on((cases, strata), margin)[0])
    implicit_fail, implicit_diff, implicit_estimate = [], [], []
    for r in range(args.implicit_runs):
        eval_set = implicit_eval_set(world, args.size, seed=r)
        passed, diff, _ = gate_on(eval_set, better)
        implicit_fail.append(not passed)
        implicit_diff.append(diff)
        implicit_estimate.append(eval_set.projected.estimate)
    print(f"non-inferiority, margin {CRITERION.margin}, one-sided alpha {CRITERION.alpha}:")
    print(f"  better candidate fails, IMPLICIT labels: {_rate(implicit_fail)}; measured diff "
          f"{np.mean(implicit_diff):+.4f} (truth {truth['better']:+.4f})   <- the baseline, measured in this run")
    print(f"  better candidate fails, trusted labels:  {_rate(fails['better'])} (judged in {np.mean(judged):.1%})")
    print(f"  worse candidate fails (power), trusted:  {_rate(fails['worse'])}")
    print(f"  candidate at the margin passes (size <= alpha), trusted: {_rate(fails['margin_passed'])}")
    print(f"projection of production accuracy: trusted 95% CI coverage {_rate(covered)}, mean estimate "
          f"{np.mean(estimates):.4f} vs truth {world.true_accuracy:.4f}; implicit projection "
          f"{np.mean(implicit_estimate):.4f}")
    print(f"elapsed {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
