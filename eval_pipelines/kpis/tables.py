"""Warehouse tables of the KPI domain; names and columns are the public contract BI reads (docs/warehouse.md).

``kpi_daily`` / ``kpi_weekly`` / ``kpi_monthly`` share their metric columns (built from ``metrics.METRIC_COLUMNS``
so the code and the schema cannot drift apart): counts are BIGINT, flags (``low_volume``) BOOLEAN, everything
else double precision (SQLAlchemy
``Float``: REAL on SQLite, float8 on PostgreSQL), NULL where a ratio has no denominator.
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.kpis.metrics import COUNT_COLUMNS, FLAG_COLUMNS, KEY_COLUMNS, METRIC_COLUMNS
from eval_pipelines.warehouse.core import metadata


def _key_columns() -> list[sa.Column]:
    return [sa.Column(name, sa.String(), primary_key=True) for name in KEY_COLUMNS]


def _metric_columns() -> list[sa.Column]:
    columns = [sa.Column("currency", sa.String(3), nullable=False,
                         comment="ISO 4217 code of every *_amount column; XXX when a rollup mixes currencies")]
    for name in METRIC_COLUMNS:
        kind = sa.BigInteger if name in COUNT_COLUMNS else sa.Boolean if name in FLAG_COLUMNS else sa.Float
        columns.append(sa.Column(name, kind, nullable=name not in COUNT_COLUMNS))
    columns.append(sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False,
                             comment="When the row was written (UTC)"))
    return columns


kpi_daily = sa.Table(
    "kpi_daily",
    metadata,
    sa.Column("kpi_date", sa.Date, primary_key=True),
    *_key_columns(),
    *_metric_columns(),
    comment="One row per (kpi_date, system, model_version, segment): business KPIs of a day's cases.",
)

kpi_weekly = sa.Table(
    "kpi_weekly",
    metadata,
    sa.Column("week_start", sa.Date, primary_key=True, comment="Monday of the ISO week"),
    *_key_columns(),
    sa.Column("days_with_data", sa.Integer, nullable=False),
    *_metric_columns(),
    comment="kpi_daily rolled up per ISO week: sums of additive columns, ratios of sums, percentiles from cases.",
)

kpi_monthly = sa.Table(
    "kpi_monthly",
    metadata,
    sa.Column("month_start", sa.Date, primary_key=True, comment="First day of the calendar month"),
    *_key_columns(),
    sa.Column("days_with_data", sa.Integer, nullable=False),
    *_metric_columns(),
    comment="kpi_daily rolled up per calendar month, computed like kpi_weekly.",
)

kpi_definitions = sa.Table(
    "kpi_definitions",
    metadata,
    sa.Column("domain", sa.String(32), primary_key=True),
    sa.Column("metric", sa.String(128), primary_key=True),
    sa.Column("label", sa.String(128), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("higher_is_better", sa.Boolean, nullable=True),
    sa.Column("formula", sa.Text, nullable=False),
    comment="What every KPI column means: display label, unit, direction and the formula in words.",
)

kpi_review_cells = sa.Table(
    "kpi_review_cells",
    metadata,
    sa.Column("kpi_date", sa.Date, primary_key=True),
    *_key_columns(),
    sa.Column("cell", sa.String(), primary_key=True,
              comment="Estimation cell: the audit stratum and the user action, '<stratum>|cell_action=<action>'"),
    sa.Column("review_action", sa.String(), nullable=False, comment="user_action, null written 'unreviewed'"),
    sa.Column("population", sa.BigInteger, nullable=False, comment="Phase-one (ok) cases of the row in the cell"),
    sa.Column("audited", sa.BigInteger, nullable=False, comment="Of them, audited with an adjudicated verdict"),
    sa.Column("ai_right", sa.BigInteger, nullable=False, comment="Of the audited, verdicts saying the AI was right"),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    comment="The audit's sufficient statistics per kpi_daily row and estimation cell: what the reviewed_* "
            "columns of kpi_daily and of the rollups are computed from (each day's cells separate strata).",
)

KPI_TABLES = (kpi_daily, kpi_weekly, kpi_monthly, kpi_definitions)
REVIEW_CELL_TABLES = (kpi_review_cells,)  # empty without an audit, so apart from the KPI tables
ROLLUP_TABLES = {"week": kpi_weekly, "month": kpi_monthly}
