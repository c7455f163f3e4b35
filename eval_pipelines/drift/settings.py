"""Configuration section ``drift``: the reference window, the evidence level and what counts as a material change.

A drift verdict needs two things (see docs/drift.md): statistical evidence, a Benjamini–Hochberg adjusted
p-value at most ``alpha``, and a material effect, an effect size at least the ``minor`` threshold of the column's
kind (``major`` makes it a major drift). Every field has a documented default, so the shipped config works without
the section; wrong values fail at load with their dotted path.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from eval_pipelines.settings_base import StrictModel

NumericEffect = Literal["wasserstein", "relative_mean", "relative_median"]


class ReferenceWindowConfig(StrictModel):
    """Which days a day is compared with: the trailing N days, the same weekday of the trailing weeks, or a fixed
    baseline; minus listed days and, optionally, per column the days that are a major drift there against the rest."""

    mode: Literal["trailing", "same_weekday", "fixed"] = Field(
        "trailing", description="trailing: the N days before the day; same_weekday: the same weekday of the "
                                "`weeks` weeks before; fixed: the days start..end (inclusive)."
    )
    trailing_days: int = Field(7, ge=1, le=366, description="Length of the trailing window, days.")
    weeks: int = Field(4, ge=1, le=52, description="same_weekday: how many previous weeks (D-7, D-14, ...).")
    start: date | None = Field(None, description="First day of the fixed baseline (mode: fixed).")
    end: date | None = Field(None, description="Last day of the fixed baseline, inclusive (mode: fixed).")
    exclude_days: list[date] = Field(
        default_factory=list, description="Days never used as reference (incidents, outages, holidays)."
    )
    exclude_major_drift: bool = Field(
        False, description="Leave a day out of a column's reference when that day is a major drift in that "
                           "column against the rest of the window (an incident is not 'normal'); decided from the "
                           "window's own data, so the report does not depend on the order days run."
    )
    exclude_major_drift_max_share: float = Field(
        0.5, gt=0, le=1,
        description="Exclude such days only while they are at most this share of the window's days; beyond it the "
                    "change has lasted and becomes the new normal (nothing is excluded for that column).",
    )
    min_days: int = Field(1, ge=1, description="Fewer reference days with data than this: no report for the day.")

    @model_validator(mode="after")
    def _fixed_needs_bounds(self) -> ReferenceWindowConfig:
        if self.mode == "fixed":
            if self.start is None or self.end is None:
                raise ValueError("mode 'fixed' needs both start and end (YYYY-MM-DD)")
            if self.start > self.end:
                raise ValueError(f"start {self.start} is after end {self.end}")
        if self.mode == "trailing" and self.min_days > self.trailing_days:
            raise ValueError(f"min_days {self.min_days} exceeds trailing_days {self.trailing_days}")
        if self.mode == "same_weekday" and self.min_days > self.weeks:
            raise ValueError(f"min_days {self.min_days} exceeds weeks {self.weeks} (mode same_weekday)")
        return self


class _Thresholds(StrictModel):
    minor: float
    major: float

    @model_validator(mode="after")
    def _ordered(self):  # returns the subclass instance
        if not 0 < self.minor <= self.major:
            raise ValueError(f"need 0 < minor <= major, got minor={self.minor}, major={self.major}")
        return self


class NumericThresholds(_Thresholds):
    """Numeric columns: by default the Wasserstein distance in units of the reference standard deviation."""

    effect: NumericEffect = Field(
        "wasserstein",
        description="wasserstein: W1 / reference std; relative_mean: |Δmean| / |reference mean|; "
                    "relative_median: |Δmedian| / |reference median|.",
    )
    minor: float = Field(0.1, description="Material from this effect size on.")
    major: float = Field(0.25, description="Major drift from this effect size on.")
    discrete_max_values: int = Field(
        50, ge=0, le=100_000,
        description="A column whose exact reference and current day take at most this many distinct values is "
                    "discrete: chi-square on its value counts instead of KS (too conservative with ties); 0: never.",
    )


class CategoricalThresholds(_Thresholds):
    """Categorical columns: the largest absolute change of one category's share (0.02 = 2 percentage points)."""

    minor: float = Field(0.02, le=1)
    major: float = Field(0.05, le=1)


class MissingThresholds(_Thresholds):
    """Missing values: the absolute change of the missing share (0.02 = 2 percentage points)."""

    minor: float = Field(0.02, le=1)
    major: float = Field(0.05, le=1)


class CalibrationThresholds(_Thresholds):
    """Calibration: the change of accuracy at equal confidence (0.05 = 5 points), over confidence bins."""

    minor: float = Field(0.05, le=1)
    major: float = Field(0.10, le=1)
    bins: int = Field(10, ge=2, le=100, description="Equal-width confidence bins over [0, 1].")
    min_bin_rows: int = Field(10, ge=1, description="Bins with fewer labelled rows on either side are left out.")


class ColumnOverride(StrictModel):
    """Per-column thresholds; unset fields fall back to the column kind's defaults."""

    effect: NumericEffect | None = Field(None, description="Numeric columns only.")
    minor: float | None = Field(None, gt=0)
    major: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ColumnOverride:
        if self.minor is not None and self.major is not None and self.minor > self.major:
            raise ValueError(f"minor {self.minor} is above major {self.major}")
        return self


class DriftConfig(StrictModel):
    """Drift reports: the day's cases against a reference window, per monitored column."""

    reference: ReferenceWindowConfig = ReferenceWindowConfig()
    alpha: float = Field(0.01, gt=0, lt=1, description="Benjamini–Hochberg false discovery rate across a report.")
    effect_ci_level: float = Field(
        0.95, gt=0.5, lt=1,
        description="Confidence level of each effect size's CI; severity is major only when the CI's lower bound "
                    "reaches the major threshold.",
    )
    min_rows: int = Field(100, ge=2, description="Fewer non-missing rows on either side: the column is not tested.")
    numeric: NumericThresholds = NumericThresholds()
    categorical: CategoricalThresholds = CategoricalThresholds()
    missing: MissingThresholds = MissingThresholds()
    calibration: CalibrationThresholds = CalibrationThresholds()
    columns: dict[str, ColumnOverride] = Field(default_factory=dict, description="column -> threshold overrides.")
    exclude: list[str] = Field(default_factory=list, description="Monitored columns to leave out of reports.")
    language_column: str = Field(
        "language", description="Column holding the language; without it the script mix of input_text is monitored."
    )
    profile_knots: int = Field(
        2048, ge=16, le=1_000_000,
        description="Knots of a stored numeric profile: KS/Wasserstein against it are within ~1/knots of exact.",
    )
    max_categories: int = Field(1000, ge=2, description="Categories kept per column in a profile; the rest pooled.")
    min_expected: float = Field(5.0, gt=0, description="Chi-square: categories expected below this are pooled.")
    timeline_days: int = Field(14, ge=2, le=366, description="Days shown in the drift-score timeline.")
    plot_columns: int = Field(8, ge=0, le=100, description="Drifted columns plotted in the Markdown summary.")

    @model_validator(mode="after")
    def _exclude_vs_overrides(self) -> DriftConfig:
        overlap = set(self.exclude) & set(self.columns)
        if overlap:
            raise ValueError(f"columns both excluded and given thresholds: {sorted(overlap)}")
        return self
