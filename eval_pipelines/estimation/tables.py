"""Warehouse table of the estimation domain: ``performance_estimates`` (docs/warehouse.md, docs/estimation.md)."""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

_F = sa.Float

performance_estimates = sa.Table(
    "performance_estimates",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True, comment="The estimated day (UTC partition)."),
    sa.Column("system", sa.String(256), primary_key=True),
    sa.Column("model_version", sa.String(256), primary_key=True),
    sa.Column("segment", sa.String(256), primary_key=True, comment="A segment, or 'all' for the version's day."),
    sa.Column("status", sa.String(32), nullable=False,
              comment="estimated | not_enough_calibration | no_confidence."),
    sa.Column("reason", sa.Text, nullable=False, comment="Why there is no estimate; empty when estimated."),
    sa.Column("cases", sa.BigInteger, nullable=False, comment="The day's ok cases with a confidence: the population."),
    sa.Column("cases_without_confidence", sa.BigInteger, nullable=False,
              comment="ok cases with no confidence, outside the estimate."),
    sa.Column("estimated_accuracy", _F, comment="Mean calibrated top-label confidence over the cases."),
    sa.Column("estimated_accuracy_ci_low", _F, comment="Lower bound (estimation.ci_level) of the realized accuracy."),
    sa.Column("estimated_accuracy_ci_high", _F, comment="Upper bound."),
    sa.Column("day_variation_std_error", _F, comment="Poisson-binomial standard error of the day's accuracy."),
    sa.Column("calibration_std_error", _F, comment="Bootstrap standard error from the calibration fit."),
    sa.Column("calibration_method", sa.String(16), nullable=False, comment="isotonic | platt."),
    sa.Column("calibration_cases", sa.BigInteger, nullable=False, comment="Trusted labels in the window."),
    sa.Column("calibration_reviewed_cases", sa.BigInteger, nullable=False),
    sa.Column("calibration_ground_truth_cases", sa.BigInteger, nullable=False),
    sa.Column("calibration_implicit_cases", sa.BigInteger, nullable=False,
              comment="Implicit labels used (0 unless estimation.allow_implicit: biased)."),
    sa.Column("calibration_window", sa.String(64), nullable=False, comment="First..last day of the window."),
    sa.Column("outside_support_share", _F, comment="Share of the cases in confidence bins the calibration lacks."),
    sa.Column("realized_accuracy", _F, comment="Weighted accuracy of the day's own trusted labels."),
    sa.Column("realized_accuracy_ci_low", _F),
    sa.Column("realized_accuracy_ci_high", _F),
    sa.Column("realized_cases", sa.BigInteger, nullable=False, comment="Trusted labels of the day itself."),
    sa.Column("estimation_error", _F, comment="estimated_accuracy - realized_accuracy."),
    sa.Column("estimation_error_ci_low", _F),
    sa.Column("estimation_error_ci_high", _F),
    sa.Column("gap_flagged", sa.Boolean, nullable=False,
              comment="The gap's interval excludes 0 with >= min_realized_cases labels: concept-drift signal."),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, comment="When the row was written (UTC)."),
    comment="Label-free accuracy per day x system x model_version x segment, checked against realized labels.",
)

ESTIMATION_TABLES = (performance_estimates,)
