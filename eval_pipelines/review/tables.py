"""Warehouse tables of the review loop; names and columns are the public contract (docs/warehouse.md#review-loop).

Every table is replaced per ``partition_date`` in one transaction with the lake partition of its asset, so a
re-materialised day never duplicates rows and BI sees the day old or new.
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

review_tasks = sa.Table(
    "review_tasks",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("system", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(256)),
    sa.Column("segment", sa.String(256)),
    sa.Column("user_action", sa.String(32), comment="NULL: no human in the loop"),
    sa.Column("review_action", sa.String(32), nullable=False, comment="user_action with NULL as 'unreviewed'"),
    sa.Column("confidence", sa.Float),
    sa.Column("ai_output", sa.Text),
    sa.Column("final_output", sa.Text),
    sa.Column("input_text", sa.Text, comment="PII-masked at ingestion"),
    sa.Column("stratum", sa.String(512), nullable=False),
    sa.Column("inclusion_prob", sa.Float, nullable=False),
    sa.Column("certainty", sa.Boolean, nullable=False),
    sa.Column("double_review", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    comment="The day's audit sample: one row per case selected for expert review.",
)

reviewed_cases = sa.Table(
    "reviewed_cases",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("system", sa.String(256), nullable=False),
    sa.Column("reviewer", sa.String(256), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("draft_verdict", sa.String(16),
              comment="text systems: draft_right / draft_wrong, the verdict adjudicated; NULL for label systems"),
    sa.Column("comment", sa.Text, comment="PII-masked"),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    sa.Column("source", sa.String(1024), nullable=False),
    comment="One accepted verdict per (event, reviewer).",
)

quarantined_reviews = sa.Table(
    "quarantined_reviews",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("line", sa.BigInteger, primary_key=True),
    sa.Column("event_id", sa.String(256)),
    sa.Column("reviewer", sa.String(256)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False, comment="PII-masked, cut to privacy.max_raw_record_bytes"),
    comment="Verdict records that were refused, with the reason.",
)

review_agreement = sa.Table(
    "review_agreement",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("system", sa.String(256), primary_key=True),
    sa.Column("double_reviewed_cases", sa.BigInteger, nullable=False),
    sa.Column("kappa", sa.Float),
    sa.Column("kappa_ci_low", sa.Float),
    sa.Column("kappa_ci_high", sa.Float),
    sa.Column("alpha", sa.Float),
    sa.Column("alpha_ci_low", sa.Float),
    sa.Column("alpha_ci_high", sa.Float),
    sa.Column("disputed_cases", sa.BigInteger, nullable=False),
    comment="Reviewer agreement per day and system on the cases with two or more verdicts.",
)

REVIEW_TABLES = (review_tasks, reviewed_cases, quarantined_reviews, review_agreement)
