"""Calibration maps ``confidence -> P(AI output right)`` fitted on trusted labels with scikit-learn.

Top-label calibration: whatever the task (binary or multi-class), the target is whether the output the system gave
was right (``ai_output == trusted label``), regressed on the confidence of that output. For a binary classifier
that logs the probability of its positive class, :func:`top_label_confidence` turns the score into the confidence
of the label it output first, so both cases reduce to the same one-dimensional problem.

Trusted labels come from designs with unequal inclusion probabilities (the audit over-samples overrides and low
confidence; ground truth arrives more often for complaints): every fit takes ``sample_weight`` = 1 / inclusion
probability, so the calibration curve is the population's, not the sample's. No dagster, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported where a fit runs: the code location loads without it
    from sklearn.linear_model import LogisticRegression

Method = Literal["isotonic", "platt"]
# Platt scaling works on logit(confidence); confidences of exactly 0 or 1 are pulled in by this much.
_LOGIT_EPS = 1e-6


def top_label_confidence(score: np.ndarray, ai_output: np.ndarray, positive_label: str) -> np.ndarray:
    """Confidence of the output given, from a binary classifier's P(positive_label): p when it output the
    positive label, 1 - p otherwise."""
    score = np.asarray(score, dtype="float64")
    return np.where(np.asarray(ai_output, dtype=object) == positive_label, score, 1.0 - score)


def _logit(confidence: np.ndarray) -> np.ndarray:
    clipped = np.clip(confidence, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return (np.log(clipped) - np.log1p(-clipped)).reshape(-1, 1)


@dataclass(frozen=True)
class Calibrator:
    """A fitted map; ``predict`` gives P(right | confidence) in [0, 1].

    Isotonic fits are stored as their knots (``x``, ``y``) and predicted by linear interpolation, clipped to the
    fitted range: exactly what :class:`sklearn.isotonic.IsotonicRegression` (``out_of_bounds="clip"``) does.
    """

    method: Method
    model: LogisticRegression | float | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def predict(self, confidence: np.ndarray) -> np.ndarray:
        confidence = np.asarray(confidence, dtype="float64")
        if isinstance(self.model, float):
            return np.full(confidence.shape, self.model)
        if self.x is not None and self.y is not None:
            return np.interp(confidence, self.x, self.y)  # np.interp holds the end values: the clip
        assert self.model is not None
        return self.model.predict_proba(_logit(confidence))[:, 1]


class CalibrationSet:
    """Trusted labels of one system x model version, prepared once for many weighted fits (the bootstrap).

    The cases are reduced to their distinct confidences (as sklearn's IsotonicRegression does with ties: the
    weighted mean of the labels and the summed weight per distinct value), so a refit under new weights is a
    ``bincount`` plus one pool-adjacent-violators pass (:func:`sklearn.isotonic.isotonic_regression`).
    """

    def __init__(self, confidence: np.ndarray, correct: np.ndarray, weight: np.ndarray | None = None,
                 method: Method = "isotonic") -> None:
        confidence = np.asarray(confidence, dtype="float64")
        if len(confidence) == 0:
            raise ValueError("no calibration cases")
        if method not in ("isotonic", "platt"):
            raise ValueError(f"unknown calibration method {method!r}; use isotonic or platt")
        self.method: Method = method
        self.correct = np.asarray(correct, dtype="float64")
        self.weight = np.ones_like(confidence) if weight is None else np.asarray(weight, dtype="float64")
        if not (np.isfinite(confidence).all() and np.isfinite(self.correct).all() and np.isfinite(self.weight).all()
                and (self.weight > 0).all()):
            raise ValueError("calibration cases need finite confidence and label and a weight > 0")
        self.values, self.index = np.unique(confidence, return_inverse=True)
        self.n = len(confidence)

    def fit(self, counts: np.ndarray | None = None) -> Calibrator:
        """Fit under ``weight * counts`` (counts: how often each case is drawn; None: once)."""
        from sklearn.isotonic import isotonic_regression
        from sklearn.linear_model import LogisticRegression

        w = self.weight if counts is None else self.weight * counts
        w_sum = np.bincount(self.index, weights=w, minlength=len(self.values))
        y_sum = np.bincount(self.index, weights=w * self.correct, minlength=len(self.values))
        keep = w_sum > 0
        x, w_u, y_u = self.values[keep], w_sum[keep], y_sum[keep] / w_sum[keep]
        if np.all(y_u == y_u[0]):
            return Calibrator(self.method, float(y_u[0]))
        if self.method == "isotonic":
            return Calibrator(self.method, x=x, y=isotonic_regression(y_u, sample_weight=w_u, y_min=0.0, y_max=1.0))
        # Platt: C=inf, no penalty: the maximum-likelihood logistic fit, on the distinct values with their weights
        # (the label as a weighted share: each value enters once as right and once as wrong).
        features = _logit(np.concatenate([x, x]))
        labels = np.concatenate([np.ones(len(x), int), np.zeros(len(x), int)])
        weights = np.concatenate([w_u * y_u, w_u * (1 - y_u)])
        use = weights > 0
        model = LogisticRegression(C=np.inf, max_iter=200)
        model.fit(features[use], labels[use], sample_weight=weights[use])
        return Calibrator(self.method, model)

    def bootstrap(self, grid: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
        """``replicates`` refits on case resamples (with replacement, weights kept), each evaluated on ``grid``."""
        import sklearn

        curves = np.empty((replicates, len(grid)))
        # The inputs are checked once here (finite, shapes); sklearn's per-call validation would cost more than
        # the pool-adjacent-violators pass itself.
        with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            for b in range(replicates):
                counts = np.bincount(rng.integers(0, self.n, self.n), minlength=self.n)
                curves[b] = self.fit(counts).predict(grid)
        return curves


def fit_calibrator(confidence: np.ndarray, correct: np.ndarray, weight: np.ndarray | None = None,
                   method: Method = "isotonic") -> Calibrator:
    """Fit P(correct | confidence) with weights (None: all 1).

    ``isotonic``: isotonic regression as :class:`sklearn.isotonic.IsotonicRegression` (increasing, in [0, 1],
    clipped outside the fitted range, so a confidence beyond the calibration set gets the nearest calibrated value:
    see the support share). ``platt``: unpenalised :class:`sklearn.linear_model.LogisticRegression` on
    logit(confidence). A fit whose labels are all equal is that constant (a logistic fit would not converge).
    """
    return CalibrationSet(confidence, correct, weight, method).fit()
