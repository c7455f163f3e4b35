"""The release gate: a context's criteria evaluated on a run's summary rows, one verdict row per criterion.

The same function builds the table the blocking asset check shows and the table ``eval-pipelines gate`` prints
(from the rows stored in the warehouse), so the UI and CI can never disagree.

A gate passes on evidence, not on its absence. Each row has a ``verdict``: ``pass``, ``fail``, or ``not_judged``
when the criterion has too little evidence to be judged (no summary row for its scorer and slice, no value — e.g.
no baseline or no scored case —, fewer edge-case entries than ``min_entries``). A not-judged criterion fails the
gate (``passed`` false) unless the criterion sets ``allow_missing: true``; either way it is shown as not judged.
A ``non_inferiority`` criterion whose interval holds ``-margin`` while its minimum detectable effect exceeds the
margin is not judged too: the eval set is too small to show that margin, so the failure says nothing about the
candidate (an interval wholly below ``-margin`` fails). ``allow_missing`` is refused on ``non_inferiority`` (config
validation), and a not-judged ``non_inferiority`` row always fails: absence of evidence never passes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from eval_pipelines.multiplicity import holm_adjusted
from eval_pipelines.scoring.settings import (
    AnyCriterion,
    JudgeAgreementCriterion,
    NonInferiorityCriterion,
    RegressionCriterion,
    ScoreCriterion,
)
from eval_pipelines.scoring.stats import (
    minimum_detectable_effect,
    non_inferiority_score_test,
    non_inferiority_test,
    paired_proportion_score_bounds,
    score_minimum_detectable_effect,
)
from eval_pipelines.scoring.summarise import ALL, EDGE_CASE_PASS, EDGE_CASES, EVAL_SET

GATE_COLUMNS: tuple[str, ...] = ("criterion", "value", "op", "threshold", "passed", "verdict", "detail")
_OPS = {"ge": "≥", "le": "≤"}
PASS, FAIL, NOT_JUDGED = "pass", "fail", "not_judged"

Criterion = AnyCriterion


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
    if isinstance(criterion, NonInferiorityCriterion):
        where = "" if criterion.slice == ALL else f" [{criterion.slice}]"
        return f"{criterion.scorer} at most {_fmt(criterion.margin)} worse than the baseline{where}"
    if isinstance(criterion, JudgeAgreementCriterion):
        return f"judge {criterion.scorer} agrees with the reviewers (κ lower CI bound)"
    return "edge-case pass rate"


def _judged(label: str, value: float, op: str, threshold: float, passed: bool, detail: str) -> dict[str, object]:
    return {"criterion": label, "value": value, "op": op, "threshold": threshold, "passed": passed,
            "verdict": PASS if passed else FAIL, "detail": detail}


def _not_judged(criterion: Criterion, label: str, value: float, op: str, threshold: float,
                reason: str) -> dict[str, object]:
    # Config validation refuses allow_missing on non_inferiority and min_judge_agreement; a criterion built around
    # it still fails.
    never_allowed = isinstance(criterion, (NonInferiorityCriterion, JudgeAgreementCriterion))
    allowed = criterion.allow_missing and not never_allowed
    if allowed:
        consequence = "allowed (allow_missing)"
    elif never_allowed:
        consequence = "fails the gate"
    else:
        consequence = "fails the gate (set allow_missing to accept)"
    return {"criterion": label, "value": value, "op": op, "threshold": threshold, "passed": allowed,
            "verdict": NOT_JUDGED, "detail": f"not judged: {reason}; {consequence}"}


def evaluate_criterion(criterion: Criterion, summary: pd.DataFrame,
                       family: tuple[float, int] | None = None) -> dict[str, object]:
    """One gate row: value, op, threshold, passed, verdict and a sentence of context.

    ``family``: for a ``no_regression`` criterion, its Holm-adjusted p-value and the number of such criteria in
    the context (:func:`evaluate_gate`); without it the criterion is judged alone on its raw p-value.
    """
    label = criterion_label(criterion)
    if isinstance(criterion, ScoreCriterion):
        op = _OPS[criterion.op]
        row = _row(summary, EVAL_SET, criterion.scorer, criterion.slice)
        if row is None:
            return _not_judged(criterion, label, float("nan"), op, criterion.threshold,
                               f"no summary row for scorer {criterion.scorer} on slice {criterion.slice}")
        value = _number(row[criterion.statistic])
        if math.isnan(value):
            return _not_judged(criterion, label, value, op, criterion.threshold,
                               f"no {criterion.statistic} ({int(row['n_scored'])} of {int(row['n_cases'])} cases "
                               f"scored)")
        passed = value >= criterion.threshold if criterion.op == "ge" else value <= criterion.threshold
        detail = (f"estimate {_fmt(_number(row['estimate']))} (95% CI {_fmt(_number(row['ci_low']))} – "
                  f"{_fmt(_number(row['ci_high']))}), {int(row['n_scored'])} of {int(row['n_cases'])} cases scored")
        return _judged(label, value, op, criterion.threshold, passed, detail)
    if isinstance(criterion, NonInferiorityCriterion):
        return _non_inferiority(criterion, label, summary)
    if isinstance(criterion, JudgeAgreementCriterion):
        return _judge_agreement(criterion, label, summary)
    if isinstance(criterion, RegressionCriterion):
        row = _row(summary, EVAL_SET, criterion.scorer, criterion.slice)
        value = float("nan") if row is None else _number(row["p_value_regression"])
        if row is None or math.isnan(value):
            return _not_judged(criterion, label, value, "≥", criterion.alpha,
                               "no paired comparison with the baseline")
        mde = minimum_detectable_effect(_number(row.get("diff_std_error")), _number(row.get("diff_df")),
                                        criterion.alpha)
        raw = value
        if family is not None and family[1] > 1:
            value = family[0]
        holm = (f"Holm-adjusted over the context's {family[1]} no_regression criteria (raw p {_fmt(raw)}); "
                if family is not None and family[1] > 1 else "")
        detail = (f"{holm}{_comparison_text(row)}, design-based one-sided p; a regression smaller than the MDE "
                  f"{_fmt(mde)} (80% power at α {_fmt(criterion.alpha)}) is likely to pass unseen; "
                  f"{_sample_text(row)}")
        return _judged(label, value, "≥", criterion.alpha, value >= criterion.alpha, detail)
    row = _row(summary, EDGE_CASES, EDGE_CASE_PASS, ALL)
    entries = 0 if row is None else int(row["n_scored"])
    value = float("nan") if row is None else _number(row["mean"])
    needed = max(criterion.min_entries, 1)
    if entries < needed or math.isnan(value):
        return _not_judged(criterion, label, value, "≥", criterion.min_pass_rate,
                           f"only {entries} entr{'y' if entries == 1 else 'ies'} replayed (< {needed})")
    passes = round(value * entries)
    return _judged(label, value, "≥", criterion.min_pass_rate, value >= criterion.min_pass_rate,
                   f"{passes} of {entries} library entries passed")


def _orientation(row: pd.Series) -> str:
    """How to read the signed differences: + is always the candidate's improvement, whatever the direction."""
    higher = row.get("higher_is_better")
    if isinstance(higher, (bool, np.bool_)) and not higher:
        return " (+ = candidate better; lower is better, so diff = baseline − candidate)"
    return " (+ = candidate better)"


def _comparison_text(row: pd.Series) -> str:
    return (f"production diff {_number(row['diff']):+.4f} (95% CI {_number(row['diff_ci_low']):+.4f} – "
            f"{_number(row['diff_ci_high']):+.4f}) vs baseline{_orientation(row)}")


def _sample_text(row: pd.Series) -> str:
    return (f"on the cases as sampled (unweighted): diff {_number(row['sample_diff']):+.4f}, {row['test']} p "
            f"{_fmt(_number(row['sample_p_value_regression']))}, {int(row['wins'])} wins / "
            f"{int(row['losses'])} losses (cases the candidate scored better / worse on)")


def _is_binary(row: pd.Series) -> bool:
    """Whether the row's scorer is 0/1 (a warehouse read may give the flag as bool or as 0/1)."""
    binary = row.get("binary")
    return isinstance(binary, (bool, np.bool_, int, np.integer)) and bool(binary)


def _non_inferiority(criterion: NonInferiorityCriterion, label: str, summary: pd.DataFrame) -> dict[str, object]:
    """Passes when the lower bound of the one-sided ``1 - alpha`` interval of the production difference is at least
    ``-margin``; an inconclusive failure (the interval holds ``-margin``) whose MDE exceeds the margin is not judged
    (the set cannot show that margin), one whose interval lies wholly below ``-margin`` fails."""
    threshold = -criterion.margin
    row = _row(summary, EVAL_SET, criterion.scorer, criterion.slice)
    if row is None or math.isnan(_number(row["diff"])):
        return _not_judged(criterion, label, float("nan"), "≥", threshold, "no paired comparison with the baseline")
    std_error, degrees = _number(row.get("diff_std_error")), _number(row.get("diff_df"))
    if math.isnan(std_error):
        return _not_judged(criterion, label, float("nan"), "≥", threshold,
                           "no standard error of the difference (a run scored before diff_std_error existed)")
    diff = _number(row["diff"])
    if _is_binary(row):
        # Paired 0/1 scores: Tango's score test at the design's effective number of pairs; the Wald bound
        # d̂ - t se passed twice its level at the margin when few pairs were discordant (docs/scoring.md).
        share, effective_n = _number(row.get("diff_discordant_share")), _number(row.get("diff_effective_n"))
        if math.isnan(share) or math.isnan(effective_n):
            return _not_judged(criterion, label, float("nan"), "≥", threshold,
                               "no discordant share / effective number of pairs (a run scored before the score "
                               "test's columns existed)")
        lower, p_value = non_inferiority_score_test(diff, share, effective_n, degrees, criterion.margin,
                                                    criterion.alpha)
        upper = paired_proportion_score_bounds(diff, share, effective_n, degrees, criterion.alpha)[1]
        mde = score_minimum_detectable_effect(share, effective_n, degrees, criterion.alpha)
    else:
        lower, p_value = non_inferiority_test(diff, std_error, degrees, criterion.margin, criterion.alpha)
        upper = diff + (diff - lower)  # the one-sided 1 - α upper bound
        mde = minimum_detectable_effect(std_error, degrees, criterion.alpha)
    level = f"one-sided {1 - criterion.alpha:.1%} lower bound"
    if lower >= threshold:
        detail = (f"{level} {lower:+.4f} ≥ −{_fmt(criterion.margin)} (p {_fmt(p_value)}); "
                  f"{_comparison_text(row)}; MDE {_fmt(mde)}; {_sample_text(row)}")
        return _judged(label, lower, "≥", threshold, True, detail)
    if mde > criterion.margin and upper >= threshold:
        # Inconclusive (the interval holds -margin) on a set that could not show the margin: no verdict on the
        # candidate. A candidate whose whole interval is below -margin is shown worse and fails.
        return _not_judged(criterion, label, lower, "≥", threshold,
                           f"too little evidence: the minimum detectable effect {_fmt(mde)} (80% power, one-sided "
                           f"α {_fmt(criterion.alpha)}, {int(row['n_scored'])} cases) exceeds the margin "
                           f"{_fmt(criterion.margin)}, so even an equal candidate would usually fail; "
                           f"{level} {lower:+.4f}, {_comparison_text(row)}")
    detail = (f"{level} {lower:+.4f} < −{_fmt(criterion.margin)} (p {_fmt(p_value)}); {_comparison_text(row)}; "
              f"MDE {_fmt(mde)}; {_sample_text(row)}")
    return _judged(label, lower, "≥", threshold, False, detail)


def _judge_agreement(criterion: JudgeAgreementCriterion, label: str, summary: pd.DataFrame) -> dict[str, object]:
    """Passes when κ's lower CI bound is at least ``min_kappa`` on at least ``min_pairs`` pairs; fewer pairs or an
    undefined κ is not judged (and fails): an unchecked judge never passes."""
    row = _row(summary, EVAL_SET, criterion.scorer, ALL)
    pairs = _number(row.get("judge_agreement_pairs")) if row is not None else float("nan")
    if row is None or math.isnan(pairs):
        return _not_judged(criterion, label, float("nan"), "≥", criterion.min_kappa,
                           f"no agreement measured for judge {criterion.scorer} (no summary row, or a run scored "
                           "before the judge_* columns existed)")
    lower, kappa = _number(row.get("judge_kappa_ci_low")), _number(row.get("judge_kappa"))
    observed = _number(row.get("judge_observed_agreement"))
    if pairs < criterion.min_pairs:
        return _not_judged(criterion, label, lower, "≥", criterion.min_kappa,
                           f"too few pairs: {int(pairs)} case(s) with both a judge verdict and a reviewed label "
                           f"(< min_pairs {criterion.min_pairs}); review more eval-set cases")
    if math.isnan(kappa) or math.isnan(lower):
        return _not_judged(criterion, label, lower, "≥", criterion.min_kappa,
                           f"κ is undefined on {int(pairs)} pairs (the judge and the reviewers used a single "
                           f"verdict; observed agreement {_fmt(observed)})")
    detail = (f"κ {_fmt(kappa)} (CI {_fmt(lower)} – {_fmt(_number(row.get('judge_kappa_ci_high')))}) on "
              f"{int(pairs)} pairs, observed agreement {_fmt(observed)}; the judge's scores count only when the "
              f"lower bound is ≥ {_fmt(criterion.min_kappa)}")
    return _judged(label, lower, "≥", criterion.min_kappa, lower >= criterion.min_kappa, detail)


def evaluate_gate(criteria: Sequence[Criterion], summary: pd.DataFrame) -> pd.DataFrame:
    """Every criterion of a context as a row (``GATE_COLUMNS``); the gate passes when all rows pass.

    The ``no_regression`` criteria of a context are one family: each is judged on its Holm-adjusted p-value, so
    with several of them an equal candidate still fails at most α of the time (not 1 - (1 - α)^k). The
    ``non_inferiority`` criteria need no adjustment: the gate passes only when every one of them passes (an
    intersection-union test, Berger 1982), so the chance of passing a candidate worse than some margin stays at
    most its α; adjusting them would only cost power.
    """
    regression = [i for i, c in enumerate(criteria) if isinstance(c, RegressionCriterion)]
    raw = np.full(len(regression), np.nan)
    for slot, index in enumerate(regression):
        criterion = criteria[index]
        row = _row(summary, EVAL_SET, criterion.scorer, criterion.slice)
        raw[slot] = np.nan if row is None else _number(row["p_value_regression"])
    adjusted = holm_adjusted(raw)
    members = int(np.sum(~np.isnan(raw)))
    family = {index: (float(adjusted[slot]), members) for slot, index in enumerate(regression)}
    return pd.DataFrame([evaluate_criterion(c, summary, family.get(i)) for i, c in enumerate(criteria)],
                        columns=list(GATE_COLUMNS))


def gate_passed(table: pd.DataFrame) -> bool:
    return bool(len(table)) and bool(table["passed"].astype(bool).all())


def _verdicts(table: pd.DataFrame) -> list[str]:
    """The verdict per row; rows stored before the column existed (NULL) are derived from ``passed``."""
    verdicts = table["verdict"] if "verdict" in table.columns else pd.Series([None] * len(table), dtype="object")
    return [str(v) if isinstance(v, str) and v else (PASS if bool(p) else FAIL)
            for v, p in zip(verdicts, table["passed"], strict=True)]


def _verdict_text(verdict: str, passed: bool) -> str:
    if verdict == NOT_JUDGED:
        return "NOT JUDGED (allowed)" if passed else "NOT JUDGED → FAIL"
    return "PASS" if passed else "FAIL"


def render_gate(table: pd.DataFrame) -> str:
    """The gate as a Markdown table (value, threshold and verdict per criterion), for the UI and the terminal."""
    shown = pd.DataFrame({
        "criterion": table["criterion"],
        "value": [_fmt(_number(v)) for v in table["value"]],
        "rule": [f"{op} {_fmt(_number(t))}" for op, t in zip(table["op"], table["threshold"], strict=True)],
        "verdict": [_verdict_text(v, p) for v, p in zip(_verdicts(table), table["passed"].astype(bool),
                                                         strict=True)],
        "detail": table["detail"],
    })
    return shown.to_markdown(index=False) if len(shown) else "_no criteria_"
