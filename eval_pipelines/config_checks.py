"""Checks of the configuration that need more than the file: crons as Dagster parses them, time zones, and the
callables the config names (importable, callable). ``eval-pipelines check-config`` runs them after loading, so a
value that would only fail when a run or the code location starts is reported here, with its key path.
"""

from __future__ import annotations

import importlib
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from eval_pipelines.config import Settings


def _callable_problem(target: str) -> str | None:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import failure is the user's to see, with its type
        return f"cannot import module {module_name!r}: {type(error).__name__}: {error}"
    function = getattr(module, attribute, None)
    if function is None:
        return f"module {module_name!r} has no attribute {attribute!r}"
    if not callable(function):
        return f"{target!r} is a {type(function).__name__}, not a function"
    return None


def runtime_problems(settings: Settings) -> list[str]:
    """``<key path>: <problem>`` for every value that would fail at run time."""
    from dagster._utils.schedules import is_valid_cron_string  # Dagster's own parser: what the asset will use

    problems = []
    cron = settings.eval_set.refresh_cron
    if not is_valid_cron_string(cron):
        problems.append(f"eval_set.refresh_cron: {cron!r} is not a valid cron expression (minute hour day-of-month "
                        "month day-of-week, e.g. '0 6 * * 1')")
    try:
        ZoneInfo(settings.eval_set.cron_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"eval_set.cron_timezone: {settings.eval_set.cron_timezone!r} is not an IANA time zone "
                        "(e.g. UTC, Europe/Berlin)")
    for index, candidate in enumerate(settings.scoring.candidates):
        target = getattr(candidate, "target", None)
        if target and (problem := _callable_problem(target)):
            problems.append(f"scoring.candidates.{index}.target: {problem}")
    for index, scorer in enumerate(settings.scoring.scorers):
        if scorer.function and (problem := _callable_problem(scorer.function)):
            problems.append(f"scoring.scorers.{index}.function: {problem}")
    return problems


def unmatched_mappings(settings: Settings, rows: pd.DataFrame) -> list[str]:
    """One warning per field that ``mapping.columns`` maps explicitly but that has no value in any of ``rows``.

    Optional fields and features read as all-null when their source column is absent, which silently labels
    nothing; a required field is already quarantined with its own reason. Empty ``rows`` say nothing.
    """
    if rows.empty:
        return []
    warnings = []
    for field, source_column in settings.mapping.columns.items():
        if field in settings.mapping.constants or field not in rows.columns or rows[field].notna().any():
            continue
        warnings.append(f"mapping.columns.{field}: source column {source_column!r} gave no value in any of the "
                        f"{len(rows):,} valid row(s) (is it in the files?); {field} is null for the whole day")
    return warnings
