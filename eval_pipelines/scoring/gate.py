"""The release gate: a context's criteria evaluated on a run's summary rows, one verdict row per criterion.

The same function builds the table the blocking asset check shows and the table ``eval-pipelines gate`` prints
(from the rows stored in the warehouse), so the UI and CI can never disagree. A criterion whose value cannot be
computed (no scored case, no baseline) fails: a gate passes on evidence, not on its absence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from eval_pipelines.scoring.settings import EdgeCaseCriterion, RegressionCriterion, ScoreCriterion
from eval_pipelines.scoring.summarise import ALL, EDGE_CASE_PASS, EDGE_CASES, EVAL_SET

GATE_COLUMNS: tuple[str, ...] = ("criterion", "value", "op", "threshold", "passed", "detail")
_OPS = {"ge": "≥", "le": "≤"}

Criterion = ScoreCriterion | RegressionCriterion | EdgeCaseCriterion


def _slice(spec: str) -> tuple[str, str]:
    if spec == ALL:
        return ALL, ALL
    dimension, _, value = spec.partition("=")
    return dimension, value


def _row(summary: pd.DataFrame, case_set: str, scorer: str, spec: str) -> pd.Series | None:
    dimension, value = _slice(spec)
    found = summary[(summary["case_set"] == case_set) & (summary["scorer"] == scorer)
                    & (summary["slice_dim"] == dimension) & (summary["slice_value"] == value)]
    return None if found.empty else found.iloc[0]


def _number(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return number


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def criterion_label(criterion: Criterion) -> str:
    if criterion.label:
        return criterion.label
    if isinstance(criterion, ScoreCriterion):
        where = "" if criterion.slice == ALL else f" [{criterion.slice}]"
        return f"{criterion.scorer} {criterion.statistic}{where}"
    if isinstance(criterion, RegressionCriterion):
        where = "" if criterion.slice == ALL else f" [{criterion.slice}]"
        return f"no significant regression in {criterion.scorer}{where}"
    return "edge-case pass rate"


def evaluate_criterion(criterion: Criterion, summary: pd.DataFrame) -> dict[str, object]:
    """One gate row: value, op, threshold, verdict and a sentence of context."""
    label = criterion_label(criterion)
    if isinstance(criterion, ScoreCriterion):
        row = _row(summary, EVAL_SET, criterion.scorer, criterion.slice)
        value = float("nan") if row is None else _number(row[criterion.statistic])
        passed = not math.isnan(value) and (value >= criterion.threshold if criterion.op == "ge"
                                            else value <= criterion.threshold)
        if row is None:
            detail = f"no summary row for scorer {criterion.scorer} on slice {criterion.slice}"
        else:
            detail = (f"estimate {_fmt(_number(row['estimate']))} (95% CI {_fmt(_number(row['ci_low']))} – "
                      f"{_fmt(_number(row['ci_high']))}), {int(row['n_scored'])} of {int(row['n_cases'])} cases "
                      f"scored")
        return {"criterion": label, "value": value, "op": _OPS[criterion.op], "threshold": criterion.threshold,
                "passed": passed, "detail": detail}
    if isinstance(criterion, RegressionCriterion):
        row = _row(summary, EVAL_SET, criterion.scorer, criterion.slice)
        value = float("nan") if row is None else _number(row["p_value_regression"])
        passed = not math.isnan(value) and value >= criterion.alpha
        if row is None or math.isnan(value):
            detail = "no paired comparison with the baseline"
        else:
            detail = (f"diff {_number(row['diff']):+.4f} (CI {_number(row['diff_ci_low']):+.4f} – "
                      f"{_number(row['diff_ci_high']):+.4f}) vs baseline, {row['test']}, "
                      f"{int(row['wins'])} wins / {int(row['losses'])} losses; one-sided p")
        return {"criterion": label, "value": value, "op": "≥", "threshold": criterion.alpha, "passed": passed,
                "detail": detail}
    row = _row(summary, EDGE_CASES, EDGE_CASE_PASS, ALL)
    entries = 0 if row is None else int(row["n_scored"])
    value = float("nan") if row is None else _number(row["mean"])
    if entries < criterion.min_entries:
        return {"criterion": label, "value": value, "op": "≥", "threshold": criterion.min_pass_rate,
                "passed": True, "detail": f"only {entries} entr{'y' if entries == 1 else 'ies'} replayed "
                                          f"(< min_entries {criterion.min_entries}): not judged"}
    passed = not math.isnan(value) and value >= criterion.min_pass_rate
    passes = 0 if row is None or math.isnan(value) else round(value * entries)
    return {"criterion": label, "value": value, "op": "≥", "threshold": criterion.min_pass_rate, "passed": passed,
            "detail": f"{passes} of {entries} library entries passed"}


def evaluate_gate(criteria: Sequence[Criterion], summary: pd.DataFrame) -> pd.DataFrame:
    """Every criterion of a context as a row (``GATE_COLUMNS``); the gate passes when all rows pass."""
    return pd.DataFrame([evaluate_criterion(c, summary) for c in criteria], columns=list(GATE_COLUMNS))


def gate_passed(table: pd.DataFrame) -> bool:
    return bool(len(table)) and bool(table["passed"].astype(bool).all())


def render_gate(table: pd.DataFrame) -> str:
    """The gate as a Markdown table (value, threshold and verdict per criterion), for the UI and the terminal."""
    shown = pd.DataFrame({
        "criterion": table["criterion"],
        "value": [_fmt(_number(v)) for v in table["value"]],
        "rule": [f"{op} {_fmt(_number(t))}" for op, t in zip(table["op"], table["threshold"], strict=True)],
        "verdict": ["PASS" if p else "FAIL" for p in table["passed"].astype(bool)],
        "detail": table["detail"],
    })
    return shown.to_markdown(index=False) if len(shown) else "_no criteria_"
