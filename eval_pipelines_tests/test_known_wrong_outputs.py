"""Known errors in replayed runs: production's output on an unrecorded edit/override/rejection is known wrong.

Such a case enters the eval set labeled with a null ``label`` (issue 11 item 7). A replay of production must score
it wrong (the eval set's own projection counts it wrong); a candidate is wrong there only when it repeats the
known-wrong output (or fails), otherwise unscored, and the gate says how many. Each test fails on the code that
scored replayed frames against ``label`` alone.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.demo.generator import DayConditions, generate_day_frame
from eval_pipelines.evalsets.build import sample_cases
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.labeling.assets import label_cases
from eval_pipelines.scoring.adapters import LoggedSystem, PythonSystem
from eval_pipelines.scoring.runs import UNSCORED_KNOWN_ERRORS, attach_logged, eval_set_cases_frame, score_run
from eval_pipelines.scoring.scorers import KNOWN_WRONG_NORMALISED, KNOWN_WRONG_OUTPUT, score_frame
from eval_pipelines.scoring.settings import ScoreCriterion, ScorerConfig, ScoringConfig
from eval_pipelines.scoring.summarise import baseline_column, score_column

CONFIG = ScoringConfig.model_validate({"comparison": {"resamples": 200}})
FEATURES = ["channel", "language", "product", "customer_tenure_days"]


def test_scorers_judge_only_the_known_wrong_output():
    nan = np.nan
    frame = pd.DataFrame({
        "label": [None] * 8 + ["billing/high"],
        "output": [" billing/high", "Billing / High", "refund/low", None] * 2 + ["billing/high"],
        KNOWN_WRONG_OUTPUT: ["billing/high"] * 8 + [None],
        # rows 0-3: an override (replaced decision); rows 4-7: an unrecorded edit
        KNOWN_WRONG_NORMALISED: [True] * 4 + [False] * 5,
        "confidence": [0.8] * 9,
    })
    scorers = [ScorerConfig(name="exact", kind="exact_match"),
               ScorerConfig(name="norm", kind="normalised_match"),
               ScorerConfig(name="brier", kind="brier", correct_by="exact")]
    scores = score_frame(frame, scorers)
    np.testing.assert_array_equal(scores["exact"], [0, 0, nan, 0, 0, nan, nan, 0, 1])
    np.testing.assert_array_equal(scores["norm"], [0, 0, nan, 0, nan, nan, nan, 0, 1])
    np.testing.assert_allclose(scores["brier"], [0.64, 0.64, nan, 0.64, 0.64, nan, nan, 0.64, 0.04])


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """An eval set drawn from demo days where a third of the changed decisions lost their final output."""
    days = [generate_day_frame(date(2026, 10, d), 1500, 13, day_index=d, conditions=DayConditions(0.5, True))
            for d in (1, 2)]
    events = pd.concat(days, ignore_index=True)
    changed = events["user_action"].isin(["rejected", "overridden", "edited"]) & events["ground_truth"].isna()
    events.loc[changed & (np.arange(len(events)) % 3 == 0), "final_output"] = None
    labeled = label_cases(events, 0.5, 120.0)
    built = sample_cases(labeled, EvalSetConfig(size=600, min_per_stratum=3), feature_columns=FEATURES)
    cases = attach_logged(eval_set_cases_frame(built.cases),
                          labeled[["event_id", "confidence", "latency_ms", "cost_usd", "status"]])
    assert (built.cases["label"].isna() & built.cases["ai_correct"].eq(False)).sum() > 20
    return cases, built.strata[["stratum", "population", "sample"]], built


def test_replayed_production_scores_the_projection_the_eval_set_made(world):
    cases, strata, built = world
    run = score_run(cases, strata, LoggedSystem(), LoggedSystem(), CONFIG, [])
    overall = run.summary.set_index(["case_set", "scorer", "slice_dim", "slice_value"]).loc[
        ("eval_set", "exact_match", "all", "all")]
    assert overall["n_scored"] == len(cases)
    assert overall["estimate"] == pytest.approx(built.projected.estimate, rel=1e-12)
    assert overall["baseline_estimate"] == pytest.approx(built.projected.estimate, rel=1e-12)
    assert overall[UNSCORED_KNOWN_ERRORS] == 0


def test_a_candidate_is_wrong_only_where_it_repeats_the_known_wrong_output(world):
    cases, strata, _ = world
    known = cases[KNOWN_WRONG_OUTPUT].notna().to_numpy()
    # Repeats production on every other known error (upper-cased: same after normalisation), answers the label
    # elsewhere and something new on the rest of the known errors.
    repeat = known & (np.arange(len(cases)) % 2 == 0)
    answers = np.where(repeat, cases["ai_output"].str.upper(), np.where(known, "other/none", cases["label"]))
    by_id = dict(zip(cases["event_id"], answers, strict=True))

    def candidate(batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"output": batch["event_id"].map(by_id)})

    criterion = ScoreCriterion(kind="score", scorer="exact_match", statistic="estimate", op="ge", threshold=0.0)
    run = score_run(cases, strata, PythonSystem("c", candidate, batch_size=10_000), LoggedSystem(), CONFIG,
                    [criterion])
    frame = run.cases[run.cases["case_set"] == "eval_set"].reset_index(drop=True)
    normalised = frame[score_column("normalised_match")].to_numpy()
    replaced = frame[KNOWN_WRONG_NORMALISED].to_numpy(dtype=bool)
    # an upper-cased repeat is known wrong after normalisation only where the human replaced the decision
    assert (normalised[repeat & replaced] == 0).all()
    assert np.isnan(normalised[(repeat & ~replaced) | (known & ~repeat)]).all()
    exact = frame[score_column("exact_match")].to_numpy()
    assert (exact[repeat & replaced] == 0).all() and np.isnan(exact[known & ~(repeat & replaced)]).all()
    assert (exact[~known] == 1).all()
    assert (frame[baseline_column("exact_match")].to_numpy()[known] == 0).all()
    unscored = int(np.sum(known & ~(repeat & replaced)))
    assert unscored > 0
    overall = run.summary.set_index(["case_set", "scorer", "slice_dim", "slice_value"]).loc[
        ("eval_set", "exact_match", "all", "all")]
    assert overall[UNSCORED_KNOWN_ERRORS] == unscored and overall["n_scored"] == len(frame) - unscored
    assert f"{unscored} known-error case(s) unscored for the candidate" in run.gate.loc[0, "detail"]
