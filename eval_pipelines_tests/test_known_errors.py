"""Issue 11 item 7: an edit, override or rejection without a final output is an AI error in every accuracy.

Labeling marks it labeled (``is_labeled``, ``ai_correct`` False) with a null ``label``; the KPIs and the production
scores then count it in their denominators. Each assertion here fails on the code that left such cases out.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.demo.generator import generate_day_frame
from eval_pipelines.kpis.metrics import compute_kpis
from eval_pipelines.kpis.settings import ImpactConfig
from eval_pipelines.labeling.labels import derive_labels
from eval_pipelines.scoring.production import score_production, summarise_production
from eval_pipelines.scoring.settings import ScorerConfig
from eval_pipelines.scoring.summarise import score_column


def _day_with_unrecorded_rejections() -> pd.DataFrame:
    """A demo day where a third of the rejections and overrides lost their final output."""
    events = generate_day_frame(date(2026, 3, 2), 3000, seed=11)
    changed = events["user_action"].isin(["rejected", "overridden"]) & events["ground_truth"].isna()
    drop = changed & (np.arange(len(events)) % 3 == 0)
    events.loc[drop, "final_output"] = None
    assert drop.sum() > 100
    return derive_labels(events, 0.5, 120.0)


def test_kpi_accuracy_counts_unrecorded_rejections_as_errors():
    cases = _day_with_unrecorded_rejections()
    unrecorded = cases["user_action"].isin(["rejected", "overridden"]) & cases["label"].isna()
    assert cases.loc[unrecorded, "is_labeled"].all() and not cases.loc[unrecorded, "ai_correct"].any()
    frame = compute_kpis(cases, ImpactConfig())
    known = cases["label"].notna() | unrecorded
    assert frame["labeled_cases"].sum() == int(known.sum())
    correct = (cases["ai_output"] == cases["label"]).fillna(False)
    assert frame["correct_cases"].sum() == int(correct.sum())
    accuracy = frame["correct_cases"].sum() / frame["labeled_cases"].sum()
    assert accuracy == pytest.approx(correct.sum() / known.sum())


SCORERS = [
    ScorerConfig(name="exact_match", kind="exact_match"),
    ScorerConfig(name="normalised_match", kind="normalised_match"),
    ScorerConfig(name="label_f1", kind="label_set_f1"),
    ScorerConfig(name="brier", kind="brier"),
]


def test_production_scores_count_unrecorded_rejections_as_errors():
    cases = _day_with_unrecorded_rejections()
    scored = score_production(cases, SCORERS)
    unrecorded = (cases["is_labeled"] & cases["label"].isna()).to_numpy()
    assert (scored[score_column("exact_match")].to_numpy()[unrecorded] == 0).all()
    rows = summarise_production(scored, SCORERS, [])
    overall = rows[(rows["slice_dim"] == "all") & (rows["label_source"] == "all")].set_index("scorer")
    labeled = cases[cases["is_labeled"]]
    assert overall.loc["exact_match", "n_scored"] == len(labeled)
    assert overall.loc["exact_match", "mean"] == pytest.approx(labeled["ai_correct"].astype(float).mean())
    # overrides and rejections replaced the decision, so a normalised match is ruled out as well
    assert overall.loc["normalised_match", "n_scored"] == len(labeled)
    # the set F1 needs the answer itself: unscored where no answer is known
    assert overall.loc["label_f1", "n_scored"] == int(cases["label"].notna().sum())
    # brier reads the corrected correctness: (confidence - 0)^2 on the known errors
    confidence = cases["confidence"].to_numpy(dtype=float)
    brier = scored[score_column("brier")].to_numpy()
    np.testing.assert_allclose(brier[unrecorded], confidence[unrecorded] ** 2)
