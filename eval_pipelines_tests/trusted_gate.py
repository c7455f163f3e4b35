"""One seeded replicate of the gate on a world with automation bias: the trusted-label eval set against the
implicit-label one, for the tests (test_evalset_trusted.py) and the bench (bench/bench_trusted_gate.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eval_pipelines.evalsets.build import EvalSet, sample_cases, sample_trusted
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.evalsets.trusted import combine_days, draw_trusted, trusted_day
from eval_pipelines.scoring.gate import evaluate_gate
from eval_pipelines.scoring.scorers import ScorerTraits
from eval_pipelines.scoring.settings import ComparisonConfig, NonInferiorityCriterion
from eval_pipelines.scoring.summarise import ALL, EVAL_SET, Design, baseline_column, score_column, summarise
from eval_pipelines_tests.trusted_world import World, build_world, candidate_outputs, true_accuracy_of

MARGIN = 0.02
CRITERION = NonInferiorityCriterion(scorer="exact_match", margin=MARGIN, alpha=0.025)
TRAITS = {"exact_match": ScorerTraits(True, True)}
COMPARISON = ComparisonConfig(resamples=100)  # binary scores: McNemar, no resampling


def implicit_eval_set(world: World, size: int, seed: int = 0) -> EvalSet:
    """Today's design: the labeled cases of the window with implicit labels (accepted -> label = ai_output)."""
    labeled = pd.concat([frame for frame, _, _ in world.days.values()], ignore_index=True)
    labeled = labeled.assign(tag_override=labeled["failure_tags"] == "override")
    config = EvalSetConfig(size=size, strata=["segment", "user_action"], oversample={"override": 2.0},
                           min_per_stratum=2, labels="implicit", seed=seed)
    return sample_cases(labeled, config)


def trusted_eval_set(world: World, size: int) -> EvalSet:
    return sample_trusted(world.days, EvalSetConfig(size=size, min_per_stratum=2))


def trusted_draw(world: World, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trusted eval set's design without the replay plumbing of :func:`sample_trusted` (same core functions):
    ``(cases with event_id, stratum, weight, label, ai_output; strata)``, for loops of thousands of replicates."""
    parts = [trusted_day(day, queue, labels, None) for day, (_, queue, labels) in world.days.items()]
    frame = combine_days(parts)
    drawn = draw_trusted(frame, size, 2, seed)
    chosen = frame.cases.iloc[drawn.selected].reset_index(drop=True)
    weight = drawn.strata.set_index("stratum")["weight"].reindex(chosen["cell"].astype(str)).to_numpy()
    production = pd.concat([f.set_index("event_id")["ai_output"] for f, _, _ in world.days.values()])
    cases = pd.DataFrame({"event_id": chosen["event_id"], "stratum": chosen["cell"].astype(str), "weight": weight,
                          "label": chosen["label"],
                          "ai_output": production.reindex(chosen["event_id"]).to_numpy(dtype=object)})
    return cases, drawn.strata


def gate_on(eval_set: EvalSet | tuple[pd.DataFrame, pd.DataFrame], outputs: pd.Series) -> tuple[bool, float, str]:
    """(passed, production diff estimate, verdict) of the non-inferiority criterion, candidate vs production."""
    cases, strata = (eval_set.cases, eval_set.strata) if isinstance(eval_set, EvalSet) else eval_set
    label = cases["label"].astype("str")
    candidate = outputs.reindex(cases["event_id"]).to_numpy(dtype=object)
    frame = pd.DataFrame({
        "stratum": cases["stratum"].astype(str).to_numpy(),
        "weight": cases["weight"].to_numpy(dtype=np.float64),
        score_column("exact_match"): np.where(label.notna(), candidate == label.to_numpy(dtype=object), np.nan)
        .astype(np.float64),
        baseline_column("exact_match"): np.where(label.notna(), cases["ai_output"].to_numpy(dtype=object)
                                                 == label.to_numpy(dtype=object), np.nan).astype(np.float64),
    })
    summary = summarise(frame, TRAITS, [], COMPARISON, Design.from_strata(strata), EVAL_SET, True)
    gate = evaluate_gate([CRITERION], summary)
    whole = summary[summary["slice_dim"] == ALL].iloc[0]
    return bool(gate["passed"].iloc[0]), float(whole["diff"]), str(gate["verdict"].iloc[0])


def replicate(seed: int, fix_accepted: float, break_right: float, size: int = 600, days: int = 3,
              per_day: int = 1500, audit_size: int = 200) -> dict[str, float]:
    """One world, one candidate, both eval sets: true and measured differences and whether each gate passed."""
    world = build_world(seed, days=days, per_day=per_day, audit_size=audit_size)
    outputs = candidate_outputs(world, seed + 7, fix_accepted, break_right)
    production = pd.concat([frame.set_index("event_id")["ai_output"] for frame, _, _ in world.days.values()])
    true_diff = true_accuracy_of(world, outputs) - world.true_accuracy
    trusted_passed, trusted_diff, trusted_verdict = gate_on(trusted_eval_set(world, size), outputs)
    implicit_passed, implicit_diff, _ = gate_on(implicit_eval_set(world, size), outputs)
    assert abs(true_accuracy_of(world, production) - world.true_accuracy) < 1e-12
    return {"true_diff": true_diff, "trusted_passed": trusted_passed, "trusted_diff": trusted_diff,
            "trusted_judged": trusted_verdict != "not_judged", "implicit_passed": implicit_passed,
            "implicit_diff": implicit_diff}
