"""Configuration section ``edge_cases``: which production failures enter the library, and how duplicates collapse.

A rule is a conjunction of conditions over labeled_cases: tags that must all be raised, tags of which one must be,
tags that must not be, and column comparisons. Rules are tried in order and the first that matches gives the case
its failure mode (``category``), so every failing case is counted once. Defaults cover the four failure modes the
issue names plus errors and accepted-but-wrong (automation bias); see docs/eval_sets.md.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from eval_pipelines.labeling.labels import FAILURE_TAGS
from eval_pipelines.settings_base import StrictModel

_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Operator = Literal["eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "is_null", "not_null"]
Scalar = str | float | int | bool


class ColumnCondition(StrictModel):
    """``<column> <op> <value>`` on a labeled_cases column; a null cell never satisfies a comparison."""

    column: str = Field(min_length=1, description="labeled_cases column, e.g. confidence, user_action, channel.")
    op: Operator = Field(description="eq ne in not_in gt ge lt le is_null not_null")
    value: Scalar | list[Scalar] | None = Field(None, description="a scalar; a list for in / not_in; none for "
                                                                  "is_null / not_null")

    @model_validator(mode="after")
    def _value_fits_op(self) -> ColumnCondition:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"op {self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op} needs a non-empty list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op} needs a scalar value")
        elif self.op in ("gt", "ge", "lt", "le") and (isinstance(self.value, bool)
                                                      or not isinstance(self.value, int | float)):
            raise ValueError(f"op {self.op} compares numbers; got {self.value!r}")
        return self


class FailureModeRule(StrictModel):
    """One failure mode: cases matching every condition enter the library under ``category``."""

    category: str = Field(description="failure-mode name: lowercase letters, digits, underscores.")
    description: str = Field("", description="What the failure mode means, shown in the library.")
    tags_all: list[str] = Field(default_factory=list, description="failure tags that must all be raised.")
    tags_any: list[str] = Field(default_factory=list, description="failure tags of which at least one is raised.")
    tags_none: list[str] = Field(default_factory=list, description="failure tags that must not be raised.")
    where: list[ColumnCondition] = Field(default_factory=list, description="column conditions, all must hold.")

    @field_validator("category")
    @classmethod
    def _category_name(cls, value: str) -> str:
        if not _CATEGORY.match(value):
            raise ValueError(f"category must match {_CATEGORY.pattern}, got {value!r}")
        return value

    @field_validator("tags_all", "tags_any", "tags_none")
    @classmethod
    def _known_tags(cls, value: list[str]) -> list[str]:
        unknown = [tag for tag in value if tag not in FAILURE_TAGS]
        if unknown:
            raise ValueError(f"unknown failure tag(s) {unknown}; allowed: {list(FAILURE_TAGS)}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> FailureModeRule:
        if not (self.tags_all or self.tags_any or self.where):
            raise ValueError(f"rule {self.category!r} has no positive condition: it would match every case")
        return self


def _default_rules() -> list[FailureModeRule]:
    def cond(column: str, op: Operator, value: Scalar | list[Scalar] | None = None) -> ColumnCondition:
        return ColumnCondition(column=column, op=op, value=value)

    return [
        FailureModeRule(category="compliance_flag", tags_all=["compliance"],
                        description="The case raised a compliance flag."),
        FailureModeRule(category="complaint_after_acceptance", tags_all=["complaint"],
                        where=[cond("user_action", "eq", "accepted")],
                        description="The human accepted the recommendation and the customer complained."),
        FailureModeRule(category="accepted_but_wrong", where=[cond("user_action", "eq", "accepted"),
                                                              cond("correctness", "eq", "wrong")],
                        description="Accepted, but later ground truth says the recommendation was wrong."),
        FailureModeRule(category="overridden_high_confidence", tags_all=["override"],
                        where=[cond("confidence", "ge", 0.8)],
                        description="Confidently wrong: overridden although confidence was >= 0.8."),
        FailureModeRule(category="timeout", tags_all=["timeout"], description="The system timed out."),
        FailureModeRule(category="error", tags_all=["error"], description="The system returned an error."),
    ]


class DedupConfig(StrictModel):
    """Near-duplicate detection: cases of one failure mode whose normalised inputs are this similar are one entry."""

    method: Literal["minhash", "fingerprint"] = Field(
        "minhash", description="minhash: Jaccard similarity of character shingles estimated by MinHash with LSH "
                               "banding; fingerprint: identical normalised text only."
    )
    threshold: float = Field(
        0.5, gt=0.0, le=1.0, description="Minimum estimated Jaccard similarity of the shingle sets to merge: at "
                                         "0.5 two texts of equal length share about two thirds of their shingles."
    )
    shingle_size: int = Field(5, ge=2, le=16, description="Characters per shingle (of the normalised text).")
    num_perm: int = Field(128, ge=16, le=512, description="MinHash signature length (hash functions).")
    bands: int = Field(32, ge=1, le=512, description="LSH bands; num_perm / bands rows per band.")
    seed: int = Field(1, ge=0, description="Seed of the MinHash hash functions.")

    @model_validator(mode="after")
    def _bands_divide(self) -> DedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm})")
        return self

    @property
    def rows_per_band(self) -> int:
        return self.num_perm // self.bands


class EdgeCaseConfig(StrictModel):
    """The failure-mode rules and the dedup method of the edge-case library."""

    rules: list[FailureModeRule] = Field(default_factory=_default_rules,
                                         description="Tried in order; the first match is the case's failure mode.")
    dedup: DedupConfig = DedupConfig()
    text_column: str = Field("input_text", description="The (PII-masked) column compared for near-duplicates.")
    max_examples: int = Field(5, ge=1, le=100, description="Example event ids kept per entry (and per entry-day).")

    @field_validator("rules")
    @classmethod
    def _distinct_categories(cls, value: list[FailureModeRule]) -> list[FailureModeRule]:
        names = [rule.category for rule in value]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"duplicate rule categories {duplicated}")
        if not value:
            raise ValueError("at least one rule is needed, or the library stays empty")
        return value
