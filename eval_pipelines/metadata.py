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


# ------------------------------------------------------------------------------------------------------------------
# Units and formats: what a number means must be readable at a glance in the UI (issue 14 item 7). Rates are
# fractions in the data and percentages on screen; money carries its currency; durations their unit; a ratio says
# what over what. Missing values read "n/a", never "nan".
# ------------------------------------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``"12.3 %"``."""
    return "n/a" if _missing(fraction) else f"{float(fraction) * 100:.{digits}f} %"


def percent_points(difference: float | None, digits: int = 1) -> str:
    """A difference of two fractions in percentage points, signed: ``-0.021`` -> ``"-2.1 pp"``."""
    return "n/a" if _missing(difference) else f"{float(difference) * 100:+.{digits}f} pp"


def percent_interval(low: float | None, high: float | None, digits: int = 1) -> str:
    """``"[10.2 %, 14.8 %]"``."""
    if _missing(low) or _missing(high):
        return "n/a"
    return f"[{float(low) * 100:.{digits}f} %, {float(high) * 100:.{digits}f} %]"


def money(amount: float | None, currency: str, digits: int = 2) -> str:
    """An amount with its currency and thousands separators: ``"12,345.60 USD"``."""
    return "n/a" if _missing(amount) else f"{float(amount):,.{digits}f} {currency}"


def duration(seconds: float | None) -> str:
    """A duration with a unit that fits its size: ``"850 ms"``, ``"42.0 s"``, ``"3.5 min"``, ``"2.25 h"``."""
    if _missing(seconds):
        return "n/a"
    value = float(seconds)
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    if abs(value) < 120:
        return f"{value:.1f} s"
    if abs(value) < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.2f} h"


def milliseconds(ms: float | None) -> str:
    return "n/a" if _missing(ms) else f"{float(ms):,.0f} ms"


def ratio(value: float | None, what: str, digits: int = 2) -> str:
    """A ratio named for what it is: ``ratio(2.002, "net value / full cost")`` -> ``"2.00× (net value / full cost)"``.

    ROI is a ratio, not a percentage: 2.00× net value per unit of cost is 200 %, and saying which keeps a reader from
    mistaking one for the other.
    """
    return "n/a" if _missing(value) else f"{float(value):.{digits}f}× ({what})"


def percent_points_with_interval(difference: float | None, low: float | None, high: float | None,
                                 digits: int = 1) -> str:
    """``"-2.1 pp [-3.0, -1.2]"``: a difference of fractions in percentage points with its interval."""
    if _missing(difference):
        return "n/a"
    if _missing(low) or _missing(high):
        return percent_points(difference, digits)
    return f"{percent_points(difference, digits)} [{float(low) * 100:+.{digits}f}, {float(high) * 100:+.{digits}f}]"
