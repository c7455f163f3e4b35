"""Warehouse table written by drift: ``drift_results``, one row per monitored check per day (docs/drift.md).

The column names are the public contract BI reads. Reference profiles are not in the warehouse: they are arrays
(knots, counts) that only the drift code reads, so they live in the lake as ``<lake>/drift_profile/<day>.parquet``.
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

drift_results = sa.Table(
    "drift_results",
    metadata,
    sa.Column("date", sa.Date, primary_key=True, comment="The day compared with its reference window (UTC)."),
    sa.Column("column", sa.String(256), primary_key=True, comment="Monitored column or derived quantity."),
    sa.Column("kind", sa.String(16), primary_key=True,
              comment="numeric | categorical | missing (the column's missing share) | calibration."),
    sa.Column("test", sa.String(32), nullable=False, comment="ks | chi2_values | chi2 | chi2_by_bin."),
    sa.Column("statistic", sa.Float, comment="KS D or chi-square statistic; NULL when not tested."),
    sa.Column("p_value", sa.Float, comment="Unadjusted p-value of the test."),
    sa.Column("p_adjusted", sa.Float, comment="Benjamini–Hochberg adjusted over every test of the day's report."),
    sa.Column("effect_size", sa.Float,
              comment="numeric: W1 / reference std (or the configured relative shift); categorical: largest share "
                      "change; missing: missing-share change; calibration: accuracy shift at equal confidence."),
    sa.Column("effect_ci_low", sa.Float,
              comment="Lower bound of effect_size's confidence interval (drift.effect_ci_level); severity is major "
                      "only when it reaches the major threshold. NULL when not tested or not estimable."),
    sa.Column("effect_ci_high", sa.Float, comment="Upper bound of effect_size's confidence interval."),
    sa.Column("threshold", sa.Float, nullable=False, comment="Effect size from which the change is material."),
    sa.Column("severity", sa.String(8), nullable=False, comment="none | minor | major."),
    sa.Column("drifted", sa.Boolean, nullable=False, comment="p_adjusted <= alpha and effect_size >= threshold."),
    sa.Column("reason", sa.Text, nullable=False, comment="The verdict in one line of words."),
    comment="Drift of each monitored column of labeled_cases: the day vs its reference window (drift_report).",
)

DRIFT_TABLES = (drift_results,)
