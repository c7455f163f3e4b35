"""Ingestion: landing files or a SQL table -> validated canonical events (``production_logs``)."""
