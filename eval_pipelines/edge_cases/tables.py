"""Warehouse tables of the edge-case library.

``edge_cases`` is the current state (one row per entry); ``edge_case_events`` the append-only history of status
changes; ``edge_case_days`` the per-day contributions (the ledger that makes re-merging a day idempotent, and the
occurrence time series for BI); ``edge_case_merges`` the watermark: which labeled_cases days were merged, from
which version of the file.

Text from the data: identifiers (``representative_event_id``, ``system``, ``model_version``, ``segment``) are
VARCHAR(256) because ingestion quarantines longer values; free text (input, outputs, tags, examples) is TEXT, never
capped. The other VARCHARs hold values this project makes (hashes, statuses, run ids, the labeling verdict) or a
``failure_mode`` the config validates to at most 64 characters.
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

edge_cases = sa.Table(
    "edge_cases",
    metadata,
    sa.Column("entry_id", sa.String(32), primary_key=True, comment="hash of failure mode and founding event"),
    sa.Column("creation_seq", sa.BigInteger, nullable=False, unique=True,
              comment="founding order (0, 1, ...): dedup joins a case to the oldest similar entry"),
    sa.Column("failure_mode", sa.String(64), nullable=False, comment="category of the first matching rule"),
    sa.Column("status", sa.String(16), nullable=False, comment="open, fixed or regressed"),
    sa.Column("occurrences", sa.BigInteger, nullable=False, comment="production cases collapsed into the entry"),
    sa.Column("days_seen", sa.Integer, nullable=False, comment="days with at least one occurrence"),
    sa.Column("first_seen", sa.DateTime(timezone=True), comment="earliest occurrence (UTC)"),
    sa.Column("last_seen", sa.DateTime(timezone=True), comment="latest occurrence (UTC)"),
    sa.Column("example_event_ids", sa.Text, nullable=False, comment="JSON list of the founding day's first events"),
    sa.Column("representative_event_id", sa.String(256), nullable=False, comment="the case replayed"),
    sa.Column("input_text", sa.Text, comment="representative input, PII masked"),
    sa.Column("ai_output", sa.Text, comment="what production answered"),
    sa.Column("expected_output", sa.Text, comment="the label: ground truth, else the human's final decision"),
    sa.Column("correctness", sa.String(32), comment="production's verdict: correct, partly_wrong, wrong, unknown"),
    sa.Column("failure_tags", sa.Text, comment="the representative's failure tags joined by a pipe"),
    sa.Column("system", sa.String(256), comment="AI system / use case"),
    sa.Column("model_version", sa.String(256), comment="production version that failed"),
    sa.Column("segment", sa.String(256), comment="business segment of the representative"),
    sa.Column("fingerprint", sa.String(16), nullable=False, comment="hash of the normalised representative input"),
    sa.Column("minhash", sa.LargeBinary, comment="MinHash signature (uint32 little-endian) for dedup"),
    sa.Column("dedup_key", sa.String(16), nullable=False, comment="dedup settings the signature was made with"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="when the entry was founded (UTC)"),
    sa.Column("created_run_id", sa.String(64), comment="Dagster run that founded the entry"),
    sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False,
              comment="when the current status was set (UTC)"),
    sa.Column("status_run_id", sa.String(64), comment="run that set the current status"),
    sa.Column("last_run_id", sa.String(64), comment="latest scored run that replayed the entry"),
    sa.Column("last_run_at", sa.DateTime(timezone=True), comment="when that run replayed it (UTC)"),
    sa.Column("last_run_passed", sa.Boolean, comment="whether that run passed it"),
    sa.Index("ix_edge_cases_mode_status", "failure_mode", "status"),
    comment="The edge-case library: one row per deduplicated production failure, with its lifecycle status.",
)

edge_case_events = sa.Table(
    "edge_case_events",
    metadata,
    sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True, comment="increasing id: the order of the history"),
    sa.Column("entry_id", sa.String(32), nullable=False, index=True, comment="edge_cases.entry_id"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, comment="when (UTC)"),
    sa.Column("run_id", sa.String(64), comment="library run (created/removed) or scored run (fixed/regressed)"),
    sa.Column("from_status", sa.String(16), comment="null when the entry was created"),
    sa.Column("to_status", sa.String(16), nullable=False, comment="open, fixed, regressed or removed"),
    sa.Column("reason", sa.Text, comment="why, in words"),
    comment="History of the library: entry created, fixed by a run, regressed in a later run (append-only).",
)

edge_case_days = sa.Table(
    "edge_case_days",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True, comment="the labeled_cases day (UTC)"),
    sa.Column("entry_id", sa.String(32), primary_key=True, comment="edge_cases.entry_id"),
    sa.Column("occurrences", sa.BigInteger, nullable=False, comment="the day's cases collapsed into the entry"),
    sa.Column("first_seen", sa.DateTime(timezone=True), comment="the day's first occurrence (UTC)"),
    sa.Column("last_seen", sa.DateTime(timezone=True), comment="the day's last occurrence (UTC)"),
    sa.Column("example_event_ids", sa.Text, nullable=False, comment="JSON list of the day's first events"),
    sa.Index("ix_edge_case_days_entry", "entry_id"),
    comment="Per labeled_cases day and entry: the cases the day contributed (replaced whole when a day is re-merged).",
)

edge_case_merges = sa.Table(
    "edge_case_merges",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True, comment="the labeled_cases day merged (UTC)"),
    sa.Column("source_stamp", sa.String(64), nullable=False, comment="change stamp of the labeled_cases file merged"),
    sa.Column("cases", sa.BigInteger, nullable=False, comment="cases of the day"),
    sa.Column("failing_cases", sa.BigInteger, nullable=False, comment="cases matching a failure-mode rule"),
    sa.Column("new_entries", sa.Integer, nullable=False, comment="entries the day founded"),
    sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False, comment="when (UTC)"),
    sa.Column("run_id", sa.String(64), comment="Dagster run of edge_case_library"),
    comment="Watermark of the library: which labeled_cases days are merged, from which file version.",
)

EDGE_CASE_TABLES = (edge_cases, edge_case_events, edge_case_days, edge_case_merges)
