"""Configuration section ``review``: the daily audit sample, where tasks go and verdicts come from, adjudication.

The design keys map one to one onto :class:`eval_pipelines.review.design.AuditDesignConfig` (``strata`` is its
``strata_columns``); docs/review.md explains each. Paths are relative to the project root. Label Studio is
reached only when ``label_studio`` is set, its URL and token read from the environment variables it names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from eval_pipelines.review.design import (
    ACTION_COLUMN,
    CONFIDENCE_BAND_COLUMN,
    AuditDesignConfig,
    rate_key_problems,
)
from eval_pipelines.settings_base import StrictModel

DEFAULT_DAILY_SIZE = 200
"""Sampled tasks per day when the config gives neither daily_size nor rates."""
DERIVED_STRATA_COLUMNS = (ACTION_COLUMN, CONFIDENCE_BAND_COLUMN)
"""Strata columns the design derives itself (the others must be labeled_cases columns)."""


class AdjudicationConfig(StrictModel):
    """How several verdicts on one case become its reviewed label (docs/review.md#adjudication)."""

    mode: Literal["majority", "senior", "disputed"] = Field(
        "majority", description="majority: the most frequent label, ties disputed; senior: the senior reviewer's "
                                "label when they reviewed the case, else majority; disputed: any disagreement "
                                "leaves the case disputed (no reviewed label).")
    senior_reviewer: str | None = Field(None, min_length=1,
                                        description="Reviewer name whose verdict wins in mode senior.")

    @model_validator(mode="after")
    def _senior_named(self) -> AdjudicationConfig:
        if self.mode == "senior" and self.senior_reviewer is None:
            raise ValueError("mode 'senior' needs senior_reviewer (the reviewer name whose verdict wins)")
        return self


class LabelStudioConfig(StrictModel):
    """A Label Studio server: one project per system, ``<project_prefix> <system>``."""

    url_env: str = Field("EVAL_PIPELINES_LABEL_STUDIO_URL", min_length=1,
                         description="Environment variable holding the server URL.")
    token_env: str = Field("EVAL_PIPELINES_LABEL_STUDIO_TOKEN", min_length=1,
                           description="Environment variable holding the API token.")
    project_prefix: str = Field("eval_pipelines", min_length=1, description="Project title prefix.")
    timeout_seconds: float = Field(30.0, gt=0, description="HTTP timeout per request.")


class ReviewConfig(StrictModel):
    """The review loop (docs/review.md)."""

    enabled: bool = Field(True, description="false: review_queue selects no task (and writes no outbox file).")
    daily_size: int | None = Field(
        None, ge=1, description=f"Sampled tasks per day, on top of the certainty stratum (default "
                                f"{DEFAULT_DAILY_SIZE} when rates is not given either).")
    rates: dict[str, float] | None = Field(
        None, description="Instead of daily_size: per-stratum sampling rates in (0, 1], keyed 'default' (needed) "
                          "or <strata column>=<value> or failure=<risk group|none>; a stratum takes the largest "
                          "rate of the keys matching it, else default (docs/review.md#sampling-rates).")
    seed: int = Field(0, description="Seed of the sample; each day's draw is a hash of (seed, day).")
    strata: list[str] = Field(
        default_factory=lambda: [ACTION_COLUMN, CONFIDENCE_BAND_COLUMN, "segment"],
        description="Stratification columns: review_action (user_action, null as unreviewed), confidence_band, or "
                    "labeled_cases columns.")
    confidence_band_edges: list[float] = Field(
        default_factory=lambda: [0.5, 0.8], description="Inner edges of the confidence bands, strictly increasing.")
    high_confidence: float = Field(0.8, ge=0, le=1, description="Confidence from which an output is high-confidence.")
    fast_accept_seconds: float = Field(5.0, gt=0, description="An accept faster than this is a fast accept.")
    fast_accept_factor: float = Field(3.0, gt=0, description="Over-sampling factor of fast accepts.")
    high_confidence_accept_factor: float = Field(2.0, gt=0, description="Over-sampling of high-confidence accepts.")
    high_confidence_override_factor: float = Field(2.0, gt=0,
                                                   description="Over-sampling of high-confidence overrides.")
    certainty_columns: list[str] = Field(
        default_factory=lambda: ["complaint", "compliance_flag"],
        description="Flag columns whose cases are all reviewed (the certainty stratum).")
    minimum_per_stratum: int = Field(2, ge=0, description="Tasks per stratum at least (2 gives every stratum a "
                                                          "variance).")
    double_review_share: float = Field(0.1, ge=0, le=1, description="Share of tasks given to a second reviewer.")
    outbox_dir: str = Field("data/review/outbox", min_length=1,
                            description="Tasks are written to <outbox_dir>/<YYYY-MM-DD>.jsonl.")
    inbox_dir: str = Field("data/review/inbox", min_length=1,
                           description="Verdicts are read from <inbox_dir>/<YYYY-MM-DD>/*.jsonl|csv.")
    vocabulary: dict[str, list[str]] = Field(
        default_factory=dict,
        description="system -> the labels a reviewer may give; a system not listed: the distinct ai_output, "
                    "final_output and ground_truth values of its cases that day.")
    adjudication: AdjudicationConfig = AdjudicationConfig()
    label_studio: LabelStudioConfig | None = Field(
        None, description="Export tasks to and pull annotations from Label Studio; null: files only.")

    @field_validator("vocabulary")
    @classmethod
    def _vocabulary_usable(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for system, labels in value.items():
            if not labels:
                raise ValueError(f"{system}: list at least one label")
            if len(set(labels)) != len(labels):
                raise ValueError(f"{system}: labels must be distinct, got {labels}")
        return value

    @field_validator("strata", "certainty_columns")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"columns must be distinct, got {value}")
        return value

    @field_validator("confidence_band_edges")
    @classmethod
    def _edges(cls, value: list[float]) -> list[float]:
        if value != sorted(set(value)) or any(not 0 < edge < 1 for edge in value):
            raise ValueError(f"must be strictly increasing values inside (0, 1), got {value}")
        return value

    @model_validator(mode="after")
    def _size_or_rates(self) -> ReviewConfig:
        if self.daily_size is not None and self.rates is not None:
            raise ValueError("give either daily_size (tasks per day) or rates (per-stratum sampling rates), "
                             "not both")
        if self.rates is not None:
            problems = rate_key_problems(self.rates, self.strata)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def design(self) -> AuditDesignConfig:
        """The audit design these settings describe."""
        return AuditDesignConfig(
            daily_size=self.daily_size or DEFAULT_DAILY_SIZE, seed=self.seed,
            rates=tuple(sorted(self.rates.items())) if self.rates is not None else None,
            strata_columns=tuple(self.strata),
            confidence_band_edges=tuple(self.confidence_band_edges), high_confidence=self.high_confidence,
            fast_accept_seconds=self.fast_accept_seconds, fast_accept_factor=self.fast_accept_factor,
            high_confidence_accept_factor=self.high_confidence_accept_factor,
            high_confidence_override_factor=self.high_confidence_override_factor,
            certainty_columns=tuple(self.certainty_columns), minimum_per_stratum=self.minimum_per_stratum,
            double_review_share=self.double_review_share)

    @model_validator(mode="after")
    def _design_valid(self) -> ReviewConfig:
        try:
            self.design()
        except ValueError as error:  # the dataclass's own checks, reported under the section
            raise ValueError(str(error)) from None
        return self
