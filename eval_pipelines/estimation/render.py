"""Markdown for people: the day's estimates and the estimated-vs-realized timeline (Unicode bars, like drift)."""

from __future__ import annotations

import math

import pandas as pd

from eval_pipelines.drift.render import bar


def _pct(value: object) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) or pd.isna(value) \
        else f"{float(value):.1%}"


def day_table(rows: pd.DataFrame) -> str:
    """One line per group of the day: estimate with its interval, realized, gap, support, why not estimated."""
    if rows.empty:
        return "_no cases_"
    lines = ["| system | model_version | segment | cases | estimated accuracy (95 % CI) | realized (labels) | "
             "gap | outside support | note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows.itertuples(index=False):
        estimate = (f"{_pct(r.estimated_accuracy)} ({_pct(r.estimated_accuracy_ci_low)}–"
                    f"{_pct(r.estimated_accuracy_ci_high)})") if r.status == "estimated" else "–"
        realized = f"{_pct(r.realized_accuracy)} ({int(r.realized_cases):,})" if r.realized_cases else "–"
        gap = "–" if pd.isna(r.estimation_error) else f"{float(r.estimation_error) * 100:+.1f} pts" + (
            " 🔴" if r.gap_flagged else "")
        note = str(r.reason).replace("|", "\\|") if r.reason else ""
        lines.append(f"| {r.system} | {r.model_version} | {r.segment} | {int(r.cases):,} | {estimate} | {realized} "
                     f"| {gap} | {_pct(r.outside_support_share)} | {note} |")
    return "\n".join(lines)


def timeline(history: pd.DataFrame) -> str:
    """Estimated vs realized accuracy per day (segment ``all``), bars on a common 0–100 % scale."""
    if history.empty:
        return "_no history yet_"
    lines = ["| day | system / version | estimated | 95 % CI | realized | gap |", "|---|---|---|---|---|---|"]
    for r in history.sort_values(["partition_date", "system", "model_version"]).itertuples(index=False):
        est = r.estimated_accuracy
        real = r.realized_accuracy
        est_bar = bar(float(est), 1.0) if pd.notna(est) else ""
        real_bar = bar(float(real), 1.0) if pd.notna(real) else ""
        gap = "–" if pd.isna(r.estimation_error) else f"{float(r.estimation_error) * 100:+.1f} pts" + (
            " 🔴" if r.gap_flagged else "")
        lines.append(f"| {r.partition_date} | {r.system} / {r.model_version} | {est_bar} {_pct(est)} | "
                     f"{_pct(r.estimated_accuracy_ci_low)}–{_pct(r.estimated_accuracy_ci_high)} | "
                     f"{real_bar} {_pct(real)} | {gap} |")
    return "\n".join(lines)
