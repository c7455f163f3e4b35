"""A seeded world with automation bias, for the review tests: hidden truth, human actions, implicit labels."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_day(n: int, seed: int, wrong_accept_rate: float = 0.35, complaint_rate: float = 0.01) -> pd.DataFrame:
    """``n`` cases of one day; ``true_correct`` is the hidden truth a perfect reviewer would give.

    The AI is right more often when confident; a wrong suggestion is accepted with ``wrong_accept_rate`` (faster,
    and more so at high confidence: rubber-stamping), overridden or left unreviewed otherwise. Implicit labels
    follow labeling's rule: accepted → correct, overridden → wrong, ignored/unreviewed → unlabeled.
    """
    rng = np.random.default_rng(seed)
    confidence = rng.beta(5, 2, n)
    segment = rng.choice(["consumer", "business"], n, p=[0.7, 0.3])
    p_correct = 0.45 + 0.45 * confidence - 0.05 * (segment == "business")
    true_correct = rng.random(n) < p_correct
    u = rng.random(n)
    accept_wrong = np.clip(wrong_accept_rate * (0.6 + 0.8 * confidence), 0, 1)  # mean ≈ wrong_accept_rate
    action = np.where(
        true_correct,
        np.where(u < 0.83, "accepted", np.where(u < 0.87, "overridden", np.where(u < 0.94, "ignored", None))),
        np.where(u < accept_wrong, "accepted", np.where(u < accept_wrong + 0.5, "overridden", None)),
    ).astype(object)
    seconds = np.where(action == "accepted", rng.exponential(np.where(true_correct, 8.0, 4.0)), rng.exponential(20.0))
    status = np.where(rng.random(n) < 0.03, "error", "ok")
    implicit = pd.array(np.where(action == "accepted", True, np.where(action == "overridden", False, False)),
                        dtype="boolean")
    implicit[(action != "accepted") & (action != "overridden")] = pd.NA
    return pd.DataFrame({
        "event_id": [f"d{seed}-{i:06d}" for i in range(n)],
        "status": status,
        "user_action": action,
        "confidence": confidence,
        "decision_seconds": np.where(pd.isna(action), np.nan, seconds),
        "segment": segment,
        "complaint": rng.random(n) < complaint_rate,
        "compliance_flag": rng.random(n) < complaint_rate / 2,
        "ai_correct": implicit,
        "true_correct": true_correct,
    })
