"""The SQL warehouse BI reads: table definitions per domain on one MetaData, and transactional writes."""
