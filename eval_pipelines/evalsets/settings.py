"""Configuration section ``eval_set``: how the eval set is sampled from the trailing window of production.

Every field has a default, so the shipped config works without the section. The design it configures (strata,
allocation, over-sampling, minimum, seed, hold-out) is described in docs/eval_sets.md.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from eval_pipelines.labeling.labels import FAILURE_TAGS
from eval_pipelines.settings_base import StrictModel

# Five cron fields of digits, '*', ',', '-', '/' (names such as MON are accepted too); Dagster validates the rest.
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*,/\-?]+$")

Allocation = Literal["proportional", "equal", "neyman"]
Labels = Literal["auto", "trusted", "implicit"]


class EvalSetConfig(StrictModel):
    """The sampling plan of the eval set and its refresh schedule."""

    labels: Labels = Field(
        "auto",
        description="Which labels the set is drawn on (docs/eval_sets.md, 'Trusted labels'). trusted: the audited "
                    "cases of the review loop with their reviewed (else ground-truth) label, weighted through the "
                    "audit to every ok case of the window, so production is never scored against its own output; "
                    "fails when the window has no review data. implicit: the labeled cases with implicit labels "
                    "(an accepted case's label is production's output: biased toward production). auto: trusted "
                    "when the window has review data, else implicit, named as such in eval_set_versions.label_basis.",
    )
    window_days: int = Field(
        28, ge=1, le=366, description="Length of the trailing window of labeled_cases days the set is drawn from."
    )
    include_today: bool = Field(
        False, description="Whether today's partition (still filling up) may end the window; off by default so a "
                           "re-materialisation during the day does not produce a new version every hour."
    )
    refresh_cron: str = Field(
        "0 6 * * 1", description="Cron of the automatic refresh (default: Mondays 06:00); on demand any time."
    )
    cron_timezone: str = Field("UTC", description="Time zone of refresh_cron.")
    strata: list[str] = Field(
        default_factory=lambda: ["segment", "user_action", "model_version"],
        description="labeled_cases columns whose value combinations are the strata (null is its own level).",
    )
    size: int = Field(2000, ge=1, le=1_000_000, description="Number of cases in the set (the total allocation).")
    allocation: Allocation = Field(
        "proportional",
        description="proportional (n_h ~ N_h), equal (same n_h everywhere) or neyman (n_h ~ N_h * S_h, S_h the "
                    "standard deviation of correctness in the stratum). Neyman minimises the variance of the "
                    "projected accuracy but gives few cases to strata the system always gets wrong (S_h ~ 0), "
                    "which are the failures an eval set wants; proportional plus oversample keeps them.",
    )
    oversample: dict[str, float] = Field(
        default_factory=lambda: {"override": 2.0, "error": 2.0, "timeout": 2.0, "low_confidence": 2.0,
                                 "edit": 1.5},
        description="failure tag -> factor >= 1 multiplying the allocation of the strata of cases carrying it. "
                    "Each case belongs to the group of its first tag in order of decreasing factor (ties: the "
                    "order written here), and that group is an extra stratification dimension 'failure'.",
    )
    min_per_stratum: int = Field(
        5, ge=2, le=10_000,
        description="Every stratum gets at least this many cases (all of them when it has fewer); >= 2 so the "
                    "within-stratum variance, hence the confidence interval, can be estimated.",
    )
    seed: int = Field(0, ge=0, description="Seed of the sampling keys; the set is a function of seed and data.")
    holdout_fraction: float = Field(
        0.2, ge=0.0, lt=1.0,
        description="Share of cases held out (split 'holdout', the rest 'dev'); a case's split is a hash of its "
                    "event_id, so it keeps its split in every version.",
    )

    @field_validator("refresh_cron")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
            raise ValueError(f"must be a 5-field cron expression such as '0 6 * * 1', got {value!r}")
        return value

    @field_validator("strata")
    @classmethod
    def _distinct_strata(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"strata columns must be distinct, got {value}")
        if "failure" in value:
            raise ValueError("'failure' is the reserved name of the over-sampling dimension; use oversample")
        return value

    @field_validator("oversample")
    @classmethod
    def _known_tags(cls, value: dict[str, float]) -> dict[str, float]:
        for tag, factor in value.items():
            if tag not in FAILURE_TAGS:
                raise ValueError(f"unknown failure tag {tag!r}; allowed: {list(FAILURE_TAGS)}")
            if not 1.0 <= factor <= 100.0:
                raise ValueError(f"factor for {tag!r} must be in [1, 100], got {factor}")
        return value

    def oversample_order(self) -> list[tuple[str, float]]:
        """Tags by decreasing factor, ties in the written order: the first one a case carries is its group."""
        items = [(tag, factor) for tag, factor in self.oversample.items() if factor > 1.0]
        return sorted(items, key=lambda item: -item[1])
