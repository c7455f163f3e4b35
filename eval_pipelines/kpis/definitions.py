"""What every KPI column means, as rows of the ``kpi_definitions`` table, so BI tools can label and format them.

One entry per column of ``kpi_daily`` / ``kpi_weekly`` / ``kpi_monthly`` beyond the keys; a test pins that the two
lists agree, so a new metric cannot ship undocumented. ``higher_is_better`` is null for volumes and settings that
are neither good nor bad in themselves. Units: ``count``, ``fraction`` (0 to 1), ``seconds``, ``milliseconds``,
``hours``, ``currency`` (the row's ``currency`` column), ``USD``, ``ratio``, ``days``, ``flag`` (true/false),
``hours^2`` / ``hours^4`` (variance terms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eval_pipelines.kpis.metrics import METRIC_COLUMNS

DOMAIN = "kpis"


@dataclass(frozen=True)
class MetricDefinition:
    metric: str
    label: str
    category: str
    unit: str
    higher_is_better: bool | None
    formula: str


_R = "reviewed cases (a user_action is present)"

DEFINITIONS: tuple[MetricDefinition, ...] = (
    # volume
    MetricDefinition("cases", "Cases", "volume", "count", None, "Number of AI recommendations (labeled_cases rows)."),
    MetricDefinition("low_volume", "Low volume", "volume", "flag", None,
                     "cases < impact.low_volume_below (default 30), recomputed for weeks and months: too few cases "
                     "for a headline, so roi and roi_over_inference_cost are null on the row."),
    MetricDefinition("reviewed_cases", "Reviewed cases", "volume", "count", None,
                     "Cases where a human acted on the recommendation (user_action not null)."),
    MetricDefinition("automated_cases", "Automated cases", "volume", "count", None,
                     "Cases with no human in the loop (user_action null)."),
    MetricDefinition("automation_rate", "Automation rate", "volume", "fraction", None,
                     "automated_cases / cases."),
    # adoption
    MetricDefinition("accepted_cases", "Accepted", "adoption", "count", None, "Reviewed cases accepted as suggested."),
    MetricDefinition("edited_cases", "Edited", "adoption", "count", None, "Reviewed cases the human edited."),
    MetricDefinition("overridden_cases", "Overridden", "adoption", "count", None,
                     "Reviewed cases the human overrode with another decision."),
    MetricDefinition("rejected_cases", "Rejected", "adoption", "count", None, "Reviewed cases the human rejected."),
    MetricDefinition("ignored_cases", "Ignored", "adoption", "count", None, "Reviewed cases where the suggestion "
                     "was ignored."),
    MetricDefinition("acceptance_rate", "Acceptance rate", "adoption", "fraction", True,
                     f"accepted_cases / {_R}."),
    MetricDefinition("edit_rate", "Edit rate", "adoption", "fraction", False, f"edited_cases / {_R}."),
    MetricDefinition("override_rate", "Override rate", "adoption", "fraction", False, f"overridden_cases / {_R}."),
    MetricDefinition("reject_rate", "Reject rate", "adoption", "fraction", False, f"rejected_cases / {_R}."),
    MetricDefinition("ignore_rate", "Ignore rate", "adoption", "fraction", False, f"ignored_cases / {_R}."),
    # quality
    MetricDefinition("labeled_cases", "Labeled cases", "quality", "count", None,
                     "Cases with a known verdict on the AI output: a label (ground truth, else the human's final "
                     "decision), or an edit, override or rejection without a final output (a known error: no "
                     "label, but the AI was not right)."),
    MetricDefinition("correct_cases", "Correct cases", "quality", "count", True,
                     "Labeled cases where the AI output equals the label (never a known error)."),
    MetricDefinition("accuracy", "Accuracy", "quality", "fraction", True,
                     "correct_cases / labeled_cases: agreement of the AI with human decisions (or ground truth); "
                     "rejections and overrides without a final output count as errors."),
    MetricDefinition("accuracy_ci_low", "Accuracy CI low", "quality", "fraction", True,
                     "Lower bound of the Wilson score interval of accuracy at impact.ci_level (default 95 %)."),
    MetricDefinition("accuracy_ci_high", "Accuracy CI high", "quality", "fraction", True,
                     "Upper bound of the Wilson score interval of accuracy at impact.ci_level (default 95 %)."),
    # quality corrected by the audit (eval_pipelines/kpis/reviewed.py, docs/review.md "Corrected estimates")
    MetricDefinition("reviewed_population_cases", "Audit population", "quality", "count", None,
                     "The row's cases in the audit's phase one (review_queue): its cases with status ok when the day "
                     "was audited, 0 without an audit. The reviewed_* estimates are null unless this equals cases − "
                     "error_cases − timeout_cases (the audit covers the whole row, every day of a period)."),
    MetricDefinition("reviewed_cases_audited", "Audited verdicts", "quality", "count", None,
                     "Adjudicated review verdicts (review_labels.ai_correct not null) on the row's ok cases: the "
                     "verdicts reviewed_accuracy uses. Sums to the day's answered verdicts."),
    MetricDefinition("accepted_cases_audited", "Audited accepted verdicts", "quality", "count", None,
                     "Of reviewed_cases_audited, those on accepted cases: the verdicts automation_bias_rate uses."),
    MetricDefinition("overridden_cases_audited", "Audited overridden verdicts", "quality", "count", None,
                     "Of reviewed_cases_audited, those on overridden cases: the verdicts override_error_rate uses."),
    MetricDefinition("reviewed_accuracy", "Reviewed accuracy", "quality", "fraction", True,
                     "Population: the row's cases with status ok, all of them, reviewed or not. Share where the AI "
                     "output was right per the expert audit: Σ w_i δ_i y_i / Σ w_i δ_i over the audited verdicts "
                     "(w = N_g/n_g of the cell stratum × user action, δ = in the row, y = ai_correct), the "
                     "domain estimator of a stratified two-phase design; rollups pool the days' cells as separate "
                     "strata. Null (not available) when the audit does not cover the row, a cell of the row has no "
                     "verdict, or reviewed_cases_audited < impact.reviewed_min_audited (default 10). Unlike "
                     "accuracy (implicit labels, kept beside it) it sees accepted mistakes."),
    MetricDefinition("reviewed_accuracy_ci_low", "Reviewed accuracy CI low", "quality", "fraction", True,
                     "Lower bound of the Korn–Graubard interval of reviewed_accuracy at impact.ci_level "
                     "(linearisation variance with finite population correction, Satterthwaite df)."),
    MetricDefinition("reviewed_accuracy_ci_high", "Reviewed accuracy CI high", "quality", "fraction", True,
                     "Upper bound of the Korn–Graubard interval of reviewed_accuracy."),
    MetricDefinition("automation_bias_rate", "Automation-bias rate", "quality", "fraction", False,
                     "Population: the row's ok cases whose suggestion was accepted. Estimated share where the AI "
                     "output was in fact wrong (the same domain estimator, y = not ai_correct, over the accepted "
                     "cells): how often a wrong suggestion is waved through. Null by the reviewed_accuracy rules, "
                     "with accepted_cases_audited as the count."),
    MetricDefinition("automation_bias_rate_ci_low", "Automation-bias rate CI low", "quality", "fraction", False,
                     "Lower bound of the Korn–Graubard interval of automation_bias_rate."),
    MetricDefinition("automation_bias_rate_ci_high", "Automation-bias rate CI high", "quality", "fraction", False,
                     "Upper bound of the Korn–Graubard interval of automation_bias_rate."),
    MetricDefinition("override_error_rate", "Override error rate", "quality", "fraction", False,
                     "Population: the row's ok cases whose suggestion was overridden. Estimated share where the AI "
                     "was in fact right (y = ai_correct over the overridden cells): work thrown away by the "
                     "human. Null by the reviewed_accuracy rules, with overridden_cases_audited as the count."),
    MetricDefinition("override_error_rate_ci_low", "Override error rate CI low", "quality", "fraction", False,
                     "Lower bound of the Korn–Graubard interval of override_error_rate."),
    MetricDefinition("override_error_rate_ci_high", "Override error rate CI high", "quality", "fraction", False,
                     "Upper bound of the Korn–Graubard interval of override_error_rate."),
    # speed
    MetricDefinition("timed_decisions", "Timed decisions", "speed", "count", None,
                     "Cases with a known human decision time, plus automated cases with status ok (0 s of human "
                     "time); credited_decisions is the part hours_saved is computed over."),
    MetricDefinition("human_timed_decisions", "Human-timed decisions", "speed", "count", None,
                     "Cases with decision_seconds recorded (the population of the decision-time percentiles)."),
    MetricDefinition("credited_decisions", "Credited decisions", "speed", "count", None,
                     "Timed decisions the AI is credited for, the population of hours_saved: reviewed cases whose "
                     "AI output was used, accepted or edited (an ignored, overridden or rejected suggestion was "
                     "decided by hand: credited nothing), plus automated cases with status ok that are not known "
                     "to be wrong (ai_correct false)."),
    MetricDefinition("credited_human_decisions", "Credited human decisions", "speed", "count", None,
                     "Credited decisions with decision_seconds recorded (the population of decision_seconds_mean)."),
    MetricDefinition("decision_seconds_p50", "Median decision time", "speed", "seconds", False,
                     "Median of decision_seconds over human-timed decisions (linear interpolation), recomputed from "
                     "the cases for weeks and months."),
    MetricDefinition("decision_seconds_p90", "p90 decision time", "speed", "seconds", False,
                     "90th percentile of decision_seconds over human-timed decisions."),
    MetricDefinition("decision_seconds_mean", "Mean decision time", "speed", "seconds", False,
                     "review_hours × 3600 / credited_human_decisions: mean human time per credited decision."),
    MetricDefinition("baseline_seconds_per_decision", "Manual baseline per decision", "speed", "seconds", None,
                     "Time one decision takes without the AI. Measured when impact.systems.<system>."
                     "baseline_control is set and the day has >= 2 timed control cases: their mean decision_seconds "
                     "(baseline_control_decisions > 0). Otherwise ASSUMED: the configured manual_baseline_seconds, a "
                     "guess that hours_saved and every value column move linearly with (assumed_baseline_decisions "
                     "> 0, and no intervals). Case-weighted mean over the days in rollups."),
    MetricDefinition("baseline_control_decisions", "Control decisions", "speed", "count", None,
                     "Timed control cases (decided without the AI: the configured control segment, model_version or "
                     "flag) the baseline was measured on; 0 when the baseline is the assumed constant."),
    MetricDefinition("assumed_baseline_decisions", "Decisions at the assumed baseline", "speed", "count", None,
                     "credited_decisions priced at the assumed constant manual_baseline_seconds rather than a "
                     "measured baseline; when > 0 the hours_saved and value intervals are null."),
    MetricDefinition("baseline_seconds_ci_low", "Baseline CI low", "speed", "seconds", None,
                     "Lower bound of the t interval of the measured baseline, mean ± t(n−1) · s/√n over the day's "
                     "control decisions at impact.ci_level; null when assumed, and in rollups."),
    MetricDefinition("baseline_seconds_ci_high", "Baseline CI high", "speed", "seconds", None,
                     "Upper bound of the t interval of the measured baseline; null when assumed, and in rollups."),
    MetricDefinition("decision_time_to_baseline_ratio", "Mean decision time vs baseline", "speed", "ratio", False,
                     "decision_seconds_mean / baseline_seconds_per_decision (a mean over a mean, like "
                     "hours_saved); below 1 the AI speeds decisions up."),
    # free-text outputs
    MetricDefinition("edit_compared_cases", "Drafts compared", "adoption", "count", None,
                     "Cases of a text system (labeling.systems.<name>.output_kind: text) whose draft was accepted "
                     "(similarity 1) or edited/overridden into a recorded final text: the cases edit_similarity_mean "
                     "is over. 0 for label systems."),
    MetricDefinition("edit_similarity_sum", "Edit similarity (sum)", "adoption", "fraction", None,
                     "Σ edit_similarity over edit_compared_cases (additive, so rollups recompute the mean)."),
    MetricDefinition("edit_similarity_mean", "Mean edit similarity", "adoption", "fraction", True,
                     "edit_similarity_sum / edit_compared_cases: how close the final texts stayed to the AI's "
                     "drafts (normalised Levenshtein, 1 = sent as drafted). A census of the row's compared cases, "
                     "so no sampling interval; null without compared cases."),
    MetricDefinition("retained_compared_cases", "Drafts with words compared", "adoption", "count", None,
                     "Of the compared drafts, those with at least one word (retained_share is defined)."),
    MetricDefinition("retained_share_sum", "Retained share (sum)", "adoption", "fraction", None,
                     "Σ retained_share over retained_compared_cases."),
    MetricDefinition("retained_share_mean", "Mean retained share", "adoption", "fraction", True,
                     "retained_share_sum / retained_compared_cases: the mean share of the drafts' words kept, in "
                     "order, in the final texts (Copilot's 'retained' figure, per draft). A census, no interval."),
    MetricDefinition("manual_baseline_hours", "Manual baseline hours", "speed", "hours", None,
                     "credited_decisions × baseline_seconds_per_decision / 3600: the hours these decisions would "
                     "have taken without the AI."),
    MetricDefinition("review_hours", "Review hours", "speed", "hours", False,
                     "Sum of decision_seconds of the credited decisions / 3600: human time spent deciding with the "
                     "AI's suggestion (accepted and edited cases; ignored, overridden and rejected ones excluded)."),
    MetricDefinition("hours_saved", "Hours saved", "speed", "hours", True,
                     "manual_baseline_hours − review_hours over the credited decisions; negative when the AI adds "
                     "friction. Ignored, overridden and rejected cases, automated cases known to be wrong and "
                     "control cases contribute nothing."),
    MetricDefinition("hours_saved_ci_low", "Hours saved CI low", "speed", "hours", True,
                     "hours_saved − t(df) · √hours_saved_variance: the uncertainty of the measured baseline carried "
                     "through (linear in it); df = n−1 for a day, Welch–Satterthwaite over the days in rollups. Null "
                     "when any credited decision used the assumed baseline."),
    MetricDefinition("hours_saved_ci_high", "Hours saved CI high", "speed", "hours", True,
                     "hours_saved + t(df) · √hours_saved_variance (see hours_saved_ci_low)."),
    MetricDefinition("hours_saved_variance", "Hours saved variance", "speed", "hours^2", None,
                     "(credited_decisions / 3600)² × s²/n of the measured baseline (0 when assumed). Not additive: "
                     "rows of one system's day share the baseline, so their standard deviations add; variances add "
                     "across baselines (systems, days) in rollups."),
    MetricDefinition("hours_saved_variance_df_term", "Hours saved df term", "speed", "hours^4", None,
                     "hours_saved_variance² / (n − 1): the denominator of the Welch–Satterthwaite degrees of "
                     "freedom; in rollups one term per baseline (system, day), summed over the baselines."),
    # money
    MetricDefinition("labour_cost_per_hour", "Labour cost per hour", "money", "currency", None,
                     "impact.systems.<system>.labour_cost_per_hour (case-weighted mean over the days in rollups)."),
    MetricDefinition("labour_value_saved_amount", "Labour value saved", "money", "currency", True,
                     "hours_saved × labour_cost_per_hour."),
    MetricDefinition("labour_value_saved_ci_low_amount", "Labour value saved CI low", "money", "currency", True,
                     "labour_value_saved_amount − (hours_saved − hours_saved_ci_low) × labour_cost_per_hour; null "
                     "with the hours interval."),
    MetricDefinition("labour_value_saved_ci_high_amount", "Labour value saved CI high", "money", "currency", True,
                     "labour_value_saved_amount + (hours_saved_ci_high − hours_saved) × labour_cost_per_hour."),
    MetricDefinition("ai_cost_usd", "AI cost (USD)", "money", "USD", False,
                     "Sum of cost_usd as logged (inference cost)."),
    MetricDefinition("ai_cost_amount", "AI cost", "money", "currency", False,
                     "ai_cost_usd × usd_to_currency."),
    MetricDefinition("ai_cost_per_decision_amount", "AI cost per decision", "money", "currency", False,
                     "ai_cost_amount / cases."),
    MetricDefinition("review_cost_amount", "Review cost", "money", "currency", False,
                     "review_hours × labour_cost_per_hour (already netted out of labour_value_saved_amount; "
                     "shown, not subtracted again)."),
    MetricDefinition("platform_cost_amount", "Platform cost", "money", "currency", False,
                     "impact.systems.<system>.platform_cost_per_day × cases / the system's cases that day: the "
                     "row's share of the fixed daily cost of running the system (sums of the days' shares in "
                     "rollups)."),
    MetricDefinition("total_cost_amount", "Full cost of running", "money", "currency", False,
                     "ai_cost_amount + review_cost_amount + platform_cost_amount: inference, review labour and the "
                     "fixed platform cost."),
    # errors
    MetricDefinition("compliance_flags", "Compliance flags", "errors", "count", False,
                     "Cases with compliance_flag true (compliance-relevant cases)."),
    MetricDefinition("complaints", "Complaints", "errors", "count", False, "Cases with complaint true."),
    MetricDefinition("escalations", "Escalations", "errors", "count", False, "Cases with escalation true."),
    MetricDefinition("override_waste_cost_amount", "Wasted effort: overrides", "errors", "currency", False,
                     "overridden_cases × wasted_seconds_per_override / 3600 × labour_cost_per_hour."),
    MetricDefinition("edit_waste_cost_amount", "Wasted effort: edits", "errors", "currency", False,
                     "edited_cases × wasted_seconds_per_edit / 3600 × labour_cost_per_hour."),
    MetricDefinition("reject_waste_cost_amount", "Wasted effort: rejects", "errors", "currency", False,
                     "rejected_cases × wasted_seconds_per_reject / 3600 × labour_cost_per_hour."),
    MetricDefinition("compliance_cost_amount", "Compliance cost", "errors", "currency", False,
                     "(compliance_flags − risk_mitigated_cases) × cost_per_compliance_flag: flagged cases that "
                     "went through."),
    MetricDefinition("complaint_cost_amount", "Complaint cost", "errors", "currency", False,
                     "complaints × cost_per_complaint."),
    MetricDefinition("escalation_cost_amount", "Escalation cost", "errors", "currency", False,
                     "escalations × cost_per_escalation."),
    MetricDefinition("error_cost_amount", "Error cost", "errors", "currency", False,
                     "Sum of the three wasted-effort costs and the compliance, complaint and escalation costs."),
    # silent errors
    MetricDefinition("cost_per_silent_error", "Cost per silent error", "errors", "currency", None,
                     "impact.systems.<system>.cost_per_silent_error: the cost of one accepted mistake (case-weighted "
                     "mean over the days in rollups)."),
    MetricDefinition("silent_error_cases", "Silent errors (estimated)", "errors", "count", False,
                     "Estimated accepted mistakes: automation_bias_rate × the row's ok accepted cases (known exactly "
                     "from the audit's phase one). Fractional: an estimate, not a count of identified cases."),
    MetricDefinition("silent_error_cost", "Silent error cost", "errors", "currency", False,
                     "silent_error_cases × cost_per_silent_error = automation_bias_rate × ok accepted cases × "
                     "cost_per_silent_error: the cost of mistakes the humans accepted, invisible to error_cost_amount "
                     "(which counts only what surfaced). Null when automation_bias_rate is, or currencies mix."),
    MetricDefinition("silent_error_cost_ci_low", "Silent error cost CI low", "errors", "currency", False,
                     "automation_bias_rate_ci_low × ok accepted cases × cost_per_silent_error."),
    MetricDefinition("silent_error_cost_ci_high", "Silent error cost CI high", "errors", "currency", False,
                     "automation_bias_rate_ci_high × ok accepted cases × cost_per_silent_error."),
    # risk
    MetricDefinition("risk_mitigated_cases", "Risk mitigated (cases)", "risk", "count", True,
                     "Compliance-flagged cases where a human caught a wrong suggestion (edited, overridden or "
                     "rejected, and correctness wrong or partly_wrong)."),
    MetricDefinition("risk_mitigated_amount", "Risk mitigated", "risk", "currency", True,
                     "risk_mitigated_cases × cost_per_compliance_flag: exposure avoided by human review (reported, "
                     "not added to net value)."),
    # value
    MetricDefinition("correct_automated_decisions", "Correct automated decisions", "value", "count", True,
                     "Status ok, AI output verified correct and used as is (accepted, or no human in the loop)."),
    MetricDefinition("correct_decision_value_amount", "Value of correct decisions", "value", "currency", True,
                     "correct_automated_decisions × value_per_correct_automated_decision (0 when not configured)."),
    MetricDefinition("net_value_amount", "Net value", "value", "currency", True,
                     "labour_value_saved_amount + correct_decision_value_amount − ai_cost_amount − "
                     "platform_cost_amount − error_cost_amount (labour_value_saved_amount is already net of the "
                     "review labour)."),
    MetricDefinition("net_value_ci_low_amount", "Net value CI low", "value", "currency", True,
                     "net_value_amount minus the labour-value half-width: the baseline's uncertainty (the only "
                     "uncertain input; the rest is a census of the day). Null with the hours interval."),
    MetricDefinition("net_value_ci_high_amount", "Net value CI high", "value", "currency", True,
                     "net_value_amount plus the labour-value half-width."),
    MetricDefinition("net_value_after_silent_errors_amount", "Net value after silent errors", "value", "currency",
                     True, "net_value_amount − silent_error_cost: the net value once the estimated cost of accepted "
                     "mistakes is charged (null when silent_error_cost is)."),
    MetricDefinition("net_value_after_silent_errors_ci_low_amount", "Net value after silent errors CI low", "value",
                     "currency", True,
                     "point − √((net_value_amount − net_value_ci_low_amount)² + (silent_error_cost_ci_high − "
                     "silent_error_cost)²): the two half-widths in quadrature (independent samples: control group "
                     "and audit); the silent-error part alone when net value has no interval."),
    MetricDefinition("net_value_after_silent_errors_ci_high_amount", "Net value after silent errors CI high",
                     "value", "currency", True,
                     "point + √((net_value_ci_high_amount − net_value_amount)² + (silent_error_cost − "
                     "silent_error_cost_ci_low)²)."),
    MetricDefinition("roi", "ROI", "value", "ratio", True,
                     "net_value_amount / total_cost_amount: (value created − full cost of running − cost of "
                     "errors) / full cost of running, the full cost being inference + review labour + platform "
                     "(null when the full cost is 0, or the row is low_volume)."),
    MetricDefinition("roi_over_inference_cost", "ROI over inference cost", "value", "ratio", True,
                     "net_value_amount / ai_cost_amount: the older inference-only ratio, far larger than roi "
                     "because it ignores review labour and platform cost; kept for comparison (null when the AI "
                     "cost is 0, or the row is low_volume)."),
    # reliability
    MetricDefinition("error_cases", "Errors", "reliability", "count", False, "Cases with status error."),
    MetricDefinition("timeout_cases", "Timeouts", "reliability", "count", False, "Cases with status timeout."),
    MetricDefinition("error_rate", "Error rate", "reliability", "fraction", False, "error_cases / cases."),
    MetricDefinition("timeout_rate", "Timeout rate", "reliability", "fraction", False, "timeout_cases / cases."),
    MetricDefinition("latency_ms_p50", "Median latency", "reliability", "milliseconds", False,
                     "Median of latency_ms over all cases (linear interpolation), recomputed from the cases for "
                     "weeks and months."),
    MetricDefinition("latency_ms_p95", "p95 latency", "reliability", "milliseconds", False,
                     "95th percentile of latency_ms over all cases."),
    MetricDefinition("latency_ms_p99", "p99 latency", "reliability", "milliseconds", False,
                     "99th percentile of latency_ms over all cases."),
    MetricDefinition("latency_slo_ms", "Latency SLO", "reliability", "milliseconds", None,
                     "impact.systems.<system>.latency_slo_ms (case-weighted mean over the days in rollups)."),
    MetricDefinition("slo_met_cases", "Cases within SLO", "reliability", "count", True,
                     "Cases with status ok and latency_ms <= latency_slo_ms."),
    MetricDefinition("slo_attainment_rate", "SLO attainment", "reliability", "fraction", True,
                     "slo_met_cases / cases (errors and timeouts count as misses)."),
    # rollups only
    MetricDefinition("days_with_data", "Days with data", "volume", "days", None,
                     "kpi_weekly / kpi_monthly only: days of the period with kpi_daily rows for the group."),
)

BY_METRIC: dict[str, MetricDefinition] = {d.metric: d for d in DEFINITIONS}


def definition_rows() -> list[dict[str, Any]]:
    """The ``kpi_definitions`` rows, in table column order."""
    return [{"domain": DOMAIN, **asdict(d)} for d in DEFINITIONS]


def undocumented_metrics() -> list[str]:
    """KPI columns without a definition (should be none; a test pins it)."""
    return [m for m in METRIC_COLUMNS if m not in BY_METRIC]
