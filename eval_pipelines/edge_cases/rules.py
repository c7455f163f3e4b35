"""Failure-mode rules over labeled_cases: which cases enter the edge-case library, and under which category.

Vectorised: every condition is one boolean mask over the day's frame; rules are tried in configuration order and
the first match wins, so each failing case has exactly one failure mode and counts add up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from eval_pipelines.edge_cases.settings import ColumnCondition, EdgeCaseConfig, FailureModeRule


def rule_columns(rules: Sequence[FailureModeRule]) -> list[str]:
    """labeled_cases columns the rules read."""
    columns: list[str] = []
    for rule in rules:
        columns += [f"tag_{tag}" for tag in (*rule.tags_all, *rule.tags_any, *rule.tags_none)]
        columns += [condition.column for condition in rule.where]
    return list(dict.fromkeys(columns))


def _flag(cases: pd.DataFrame, column: str) -> np.ndarray:
    return cases[column].astype("boolean").fillna(False).to_numpy(dtype=bool)


def condition_mask(cases: pd.DataFrame, condition: ColumnCondition) -> np.ndarray:
    """Rows satisfying one column condition; a null cell satisfies only ``is_null``."""
    if condition.column not in cases.columns:
        raise KeyError(f"edge_cases rule condition: column {condition.column!r} is not in labeled_cases")
    values = cases[condition.column]
    present = values.notna().to_numpy(dtype=bool)
    op, value = condition.op, condition.value
    if op == "is_null":
        return ~present
    if op == "not_null":
        return present
    if op in ("gt", "ge", "lt", "le"):
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            compare = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}[op]
            return compare(numbers, float(value)) & present  # type: ignore[arg-type]
    if op in ("in", "not_in"):
        inside = values.isin(list(value)).to_numpy(dtype=bool)  # type: ignore[arg-type]
        return (inside if op == "in" else ~inside) & present
    if isinstance(value, bool):
        equal = values.astype("boolean").eq(value).fillna(False).to_numpy(dtype=bool)
    elif isinstance(value, int | float) and pd.api.types.is_numeric_dtype(values):
        equal = (pd.to_numeric(values, errors="coerce") == value).fillna(False).to_numpy(dtype=bool)
    else:
        equal = (values.astype("str") == str(value)).fillna(False).to_numpy(dtype=bool)
    return (equal if op == "eq" else ~equal) & present


def rule_mask(cases: pd.DataFrame, rule: FailureModeRule) -> np.ndarray:
    """Rows matching every condition of ``rule``."""
    mask = np.ones(len(cases), dtype=bool)
    for tag in rule.tags_all:
        mask &= _flag(cases, f"tag_{tag}")
    if rule.tags_any:
        mask &= np.logical_or.reduce([_flag(cases, f"tag_{tag}") for tag in rule.tags_any])
    for tag in rule.tags_none:
        mask &= ~_flag(cases, f"tag_{tag}")
    for condition in rule.where:
        mask &= condition_mask(cases, condition)
    return mask


def classify(cases: pd.DataFrame, config: EdgeCaseConfig) -> pd.Series:
    """The failure mode of each case (first matching rule), null for cases no rule matches."""
    codes = np.full(len(cases), -1, dtype=np.int64)
    for index in range(len(config.rules) - 1, -1, -1):  # first rule wins: assign it last
        codes[rule_mask(cases, config.rules[index])] = index
    names = np.array([rule.category for rule in config.rules] + [None], dtype=object)
    return pd.Series(names[codes], index=cases.index, dtype="str")
