"""Drift watches how much of a text system's drafts people keep (edit_similarity, retained_share) — only when a
system has free-text outputs; a label-only configuration monitors exactly what it did before."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eval_pipelines.config import parse_settings
from eval_pipelines.drift.assets import monitors_for
from eval_pipelines.drift.monitors import TEXT_EDIT_COLUMNS, default_monitors
from eval_pipelines.drift.report import compare_frames
from eval_pipelines.drift.settings import DriftConfig


def _mixed_day(rng: np.random.Generator, n: int, heavy_edit_share: float) -> pd.DataFrame:
    """Half label-system rows (no edit signal), half text-system rows whose drafts are lightly edited, except a
    ``heavy_edit_share`` rewritten to a similarity around 0.4."""
    text = np.arange(n) % 2 == 1
    heavy = rng.random(n) < heavy_edit_share
    similarity = np.where(heavy, rng.beta(4, 6, n), rng.beta(18, 1, n))
    retained = np.clip(similarity + rng.normal(0, 0.03, n), 0, 1)
    return pd.DataFrame({
        "system": np.where(text, "reply_drafts", "support_triage"),
        "edit_similarity": np.where(text, similarity, np.nan),
        "retained_share": np.where(text, retained, np.nan),
        "decision_seconds": rng.lognormal(3.0, 0.5, n),
    })


def test_text_systems_add_the_edit_signals_and_label_systems_are_unchanged() -> None:
    label_only = parse_settings({})
    with_text = parse_settings({"labeling": {"systems": {"reply_drafts": {"output_kind": "text"}}}})
    before = [m.key for m in default_monitors(label_only.features.numeric, label_only.features.categorical)]
    assert [m.key for m in monitors_for(label_only)] == before
    assert not {name for name, _ in before} & set(TEXT_EDIT_COLUMNS)
    text_monitors = monitors_for(with_text)
    added = [m for m in text_monitors if m.key not in before]
    assert [(m.column, m.kind, m.group) for m in added] == [(name, "numeric", "human") for name in TEXT_EDIT_COLUMNS]
    # Excluding one keeps the other (drift.exclude works on them as on any monitor).
    kept = default_monitors([], [], exclude=["retained_share"], text_outputs=True)
    assert "edit_similarity" in {m.column for m in kept} and "retained_share" not in {m.column for m in kept}


def test_heavier_editing_is_flagged_as_human_behaviour_drift() -> None:
    rng = np.random.default_rng(5)
    monitors = [m for m in default_monitors([], [], text_outputs=True)
                if m.column in (*TEXT_EDIT_COLUMNS, "decision_seconds")]
    reference = _mixed_day(rng, 4000, heavy_edit_share=0.1)
    same = compare_frames(reference, _mixed_day(rng, 4000, heavy_edit_share=0.1), monitors, DriftConfig(),
                          with_plots=False)
    heavier = compare_frames(reference, _mixed_day(rng, 4000, heavy_edit_share=0.4), monitors, DriftConfig(),
                             with_plots=False)
    drifted = {r.column for r in heavier.drifted}
    assert set(TEXT_EDIT_COLUMNS) <= drifted and "decision_seconds" not in drifted
    assert all(r.group == "human" for r in heavier.results if r.column in TEXT_EDIT_COLUMNS)
    assert not {r.column for r in same.drifted} & set(TEXT_EDIT_COLUMNS)
    # The shift is far beyond noise on 2,000 text rows a day (the label rows are NaN: missing, not zeros).
    row = next(r for r in heavier.results if r.column == "edit_similarity")
    assert row.p_value is not None and row.p_value < 1e-6
