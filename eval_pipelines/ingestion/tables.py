"""Warehouse tables written by ingestion. Columns are documented in docs/warehouse.md."""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

ingestion_batches = sa.Table(
    "ingestion_batches",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("files_read", sa.Integer, nullable=False),
    sa.Column("files_failed", sa.Integer, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_valid", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("rows_duplicate", sa.BigInteger, nullable=False),
    sa.Column("rows_conflicting", sa.BigInteger, nullable=False),
    sa.Column("rows_filtered", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_joined", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("quarantine_rate", sa.Float, nullable=False),
    sa.Column("lake_path", sa.Text, nullable=False),
    comment="One row per production_logs partition: conservation rows_read = valid + quarantined + duplicate "
            "+ conflicting.",
)

ingestion_files = sa.Table(
    "ingestion_files",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("source_file", sa.String(1024), primary_key=True),
    sa.Column("file_format", sa.String(16), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_valid", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("rows_duplicate", sa.BigInteger, nullable=False),
    sa.Column("rows_conflicting", sa.BigInteger, nullable=False),
    sa.Column("rows_filtered", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_joined", sa.BigInteger, nullable=False, server_default="0"),
    comment="One row per landing file per partition; failed files carry their reason in error.",
)

quarantined_events = sa.Table(
    "quarantined_events",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("source_file", sa.String(1024), primary_key=True),
    sa.Column("line_number", sa.BigInteger, primary_key=True),
    # An OTLP line holds many spans: the span's position in its line (0 for every other format).
    sa.Column("record_index", sa.BigInteger, primary_key=True, server_default="0"),
    sa.Column("field", sa.String(128)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw_record", sa.Text, nullable=False),
    comment="Rows that failed the contract, with the first problem found and the record as it arrived.",
)

INGESTION_TABLES = (ingestion_batches, ingestion_files, quarantined_events)
