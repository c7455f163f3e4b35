"""Seeded synthetic classifier days for the estimation tests and bench (no dagster, numpy only).

A ``classes``-way classifier outputs softmax probabilities of random logits (``spread`` scales them: a larger
spread gives more confident outputs). Its top-label confidence ``c`` is miscalibrated on purpose: the output is
right with probability ``h(c) = c ** 1.6`` (over-confident), and a wrong output's truth is one of the other classes
at random. ``P(y | x)`` is therefore fixed for a given input, and the confidence carries everything the input says
about being right: the setting where CBPE's assumption, ``P(right | c)`` unchanged, holds under covariate shift.

- covariate shift: change ``spread`` (the inputs get harder or easier: confidences move, ``h`` does not);
- concept drift: ``concept_drop`` > 0 lowers ``h`` at every confidence (the same inputs are now answered worse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticDay:
    probabilities: np.ndarray  # (n, classes) the model's scores
    prediction: np.ndarray  # (n,) argmax
    confidence: np.ndarray  # (n,) top-label confidence
    truth: np.ndarray  # (n,)
    correct: np.ndarray  # (n,) bool


def true_accuracy_curve(confidence: np.ndarray, concept_drop: float = 0.0) -> np.ndarray:
    """P(right | confidence) of the simulated system."""
    return np.clip(confidence**1.6 - concept_drop, 0.0, 1.0)


def simulate_day(rng: np.random.Generator, n: int, classes: int = 4, spread: float = 1.5,
                 concept_drop: float = 0.0) -> SyntheticDay:
    logits = rng.normal(0.0, spread, size=(n, classes))
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    prediction = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(n), prediction]
    correct = rng.random(n) < true_accuracy_curve(confidence, concept_drop)
    other = (prediction + rng.integers(1, classes, size=n)) % classes
    truth = np.where(correct, prediction, other)
    return SyntheticDay(probabilities, prediction, confidence, truth, correct)
