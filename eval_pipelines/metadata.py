"""Helpers that turn frames into Dagster metadata the UI can show (Markdown tables, column schemas)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

_TYPE_NAMES = {"float64": "float", "int64": "integer", "boolean": "boolean", "bool": "boolean", "str": "string",
               "object": "string"}


def markdown_table(frame: pd.DataFrame, max_rows: int = 10, max_chars: int = 80) -> dg.MetadataValue:
    """A Markdown preview; long cells are cut so one ticket text does not swamp the page."""
    preview = frame.head(max_rows).copy()
    for column in preview.columns:
        if preview[column].dtype == object or pd.api.types.is_string_dtype(preview[column]):
            preview[column] = preview[column].astype(str).str.slice(0, max_chars).str.replace("|", "\\|")
    return dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "_no rows_")


def column_schema(frame: pd.DataFrame, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[
        dg.TableColumn(name=str(name), type=_TYPE_NAMES.get(str(dtype), str(dtype)),
                       description=descriptions.get(str(name)))
        for name, dtype in frame.dtypes.items()
    ])
