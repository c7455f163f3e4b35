"""Configuration section ``estimation``: label-free accuracy from calibrated confidence (docs/estimation.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eval_pipelines.settings_base import StrictModel


class EstimationConfig(StrictModel):
    """How ``performance_estimates`` calibrates confidence and how wide its intervals are."""

    enabled: bool = Field(True, description="false: performance_estimates writes no rows (the asset still runs).")
    method: Literal["isotonic", "platt"] = Field(
        "isotonic", description="Calibration map of P(AI right | confidence): isotonic regression (monotone, "
                                "no shape assumption) or Platt scaling (logistic on logit(confidence)); both "
                                "scikit-learn, fitted with sample weights.")
    calibration_window_days: int = Field(
        14, ge=1, description="Trusted labels of the N days before the estimated day calibrate it (the day itself "
                              "is never used: its labels are the out-of-sample check).")
    min_calibration_cases: int = Field(
        200, ge=10, description="A system x model_version with fewer trusted labels in the window gets no estimate "
                                "(reason in the row).")
    score: Literal["top_label", "positive_class"] = Field(
        "top_label", description="top_label: `confidence` is the confidence of the output given (multi-class or "
                                 "binary); positive_class: it is P(positive_label) of a binary classifier and is "
                                 "turned into top-label confidence first.")
    positive_label: str | None = Field(None, description="The positive class when score is positive_class.")
    use_reviewed: bool = Field(True, description="Use reviewed labels (lake dataset review_labels) weighted by "
                                                 "1 / inclusion_prob.")
    use_ground_truth: bool = Field(True, description="Use the events' ground_truth.")
    ground_truth_cells: list[str] = Field(
        default_factory=list,
        description="labeled_cases columns within whose cells ground truth is assumed missing at random; each "
                    "ground-truth case is weighted by (cases in its cell) / (ground-truth cases in its cell). "
                    "Empty: ground truth is assumed a simple random subset of the system's day (weight N / n).")
    allow_implicit: bool = Field(
        False, description="Also calibrate on implicit (accept-based) labels. BIASED: a wrong suggestion a human "
                           "accepted counts as right (automation bias), so the estimate is too high; off by default.")
    bootstrap: int = Field(200, ge=20, description="Bootstrap refits over the calibration set (calibration "
                                                   "uncertainty).")
    seed: int = Field(13, description="Seed of the bootstrap (per day and group, so re-runs are identical).")
    ci_level: float = Field(0.95, gt=0.5, lt=1.0, description="Level of every interval of the table.")
    support_bins: int = Field(20, ge=2, le=1000, description="Equal-width confidence bins of [0, 1] used to judge "
                                                             "the calibration's support.")
    min_support_cases: int = Field(5, ge=1, description="A confidence bin with fewer calibration cases is outside "
                                                        "the calibration support.")
    min_realized_cases: int = Field(
        30, ge=1, description="Trusted labels of the day itself needed before the estimated-vs-realized gap is "
                              "tested (realized_accuracy is filled from 1 case).")
    timeline_days: int = Field(30, ge=2, description="Days shown in the estimated-vs-realized plot (metadata).")

    @model_validator(mode="after")
    def _positive_label_given(self) -> EstimationConfig:
        if self.score == "positive_class" and not self.positive_label:
            raise ValueError("estimation.positive_label is required when estimation.score is positive_class")
        return self
