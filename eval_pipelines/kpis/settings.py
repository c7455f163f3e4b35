"""Configuration section ``impact``: the business impact model that turns cases into time and money.

Per AI system (the events' ``system`` value) the model says what an hour of the people in the loop costs, how long
a decision takes without the AI, what each kind of error costs, and the latency the service promises. A system not
listed uses the ``default`` entry; a listed system inherits every key it does not set from ``default`` (and
``default`` from the built-in values below), so a per-system entry only states what differs.

Worked example (the demo's ``support_triage``: labour 38 USD/h, manual baseline 150 s, override wastes 40 s,
edit 20 s, compliance flag 250 USD, complaint 30 USD, escalation 60 USD). A day with 1,000 cases of which 900 are
credited decisions (reviewed with ``decision_seconds`` and accepted or edited, or automated, status ok and not
known to be wrong), taking 27,000 s of human time in all, 60 overrides (not credited), 80 edits, 2 compliance
flags of which one a human caught, 15 complaints, 20 escalations and 3.10 USD of inference:

- manual baseline = 900 × 150 s = 37.5 h; review = 27,000 s = 7.5 h; hours saved = 30 h → 30 × 38 = 1,140.00 USD;
- wasted effort = (60 × 40 s + 80 × 20 s) / 3600 × 38 = 42.22 USD; compliance = 1 uncaught × 250 = 250.00 USD;
  complaints 15 × 30 = 450.00 USD; escalations 20 × 60 = 1,200.00 USD → error cost 1,942.22 USD;
- with a platform cost of 100 USD/day: full cost = 3.10 inference + 7.5 h × 38 = 285.00 review labour + 100.00
  platform = 388.10 USD;
- net value = 1,140.00 − 3.10 − 100.00 − 1,942.22 = −905.32 USD; ROI = −905.32 / 388.10 = −2.33 (the errors
  outweigh the time saved: the tables make that visible per model version and segment); over inference alone it
  would read −905.32 / 3.10 = −292.0. The caught compliance case is reported as risk mitigated (250.00 USD), to the
  credit of the human review, not of the AI.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from eval_pipelines.settings_base import StrictModel

DEFAULT_SYSTEM = "default"
DEFAULT_LOW_VOLUME_BELOW = 30
DEFAULT_REVIEWED_MIN_AUDITED = 10


class ControlGroup(StrictModel):
    """The cases decided *without* the AI, whose human decision times measure the manual baseline."""

    column: str = Field(min_length=1, description="labeled_cases column that marks the control cases: segment, "
                                                  "model_version or a flag column of the events.")
    value: str | bool = Field(description="Value of `column` on the control cases (true for a flag column).")


class SystemImpact(StrictModel):
    """The impact model of one AI system. Money is in ``currency``; times in seconds unless the name says hours."""

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$",
                          description="ISO 4217 code of every *_amount column for this system's rows.")
    usd_to_currency: float = Field(
        1.0, gt=0,
        description="Units of `currency` per US dollar, to convert the logged cost_usd (must be 1 for USD).",
    )
    labour_cost_per_hour: float = Field(
        40.0, ge=0, description="Fully loaded cost of one hour of the people who review the AI, in `currency`.")
    manual_baseline_seconds: float = Field(
        180.0, gt=0, description="Seconds one decision takes without the AI (the counterfactual): an assumption, "
                                 "used unless `baseline_control` measures it.")
    baseline_control: ControlGroup | None = Field(
        None,
        description="Measure the baseline instead of assuming it: the mean decision_seconds of the day's control "
                    "cases (decided without the AI) of this system, with a t interval carried into the "
                    "hours_saved and value intervals. Days with fewer than 2 timed control cases fall back to "
                    "`manual_baseline_seconds`. Control cases are never credited hours saved.",
    )
    wasted_seconds_per_override: float = Field(
        30.0, ge=0, description="Reviewer seconds lost to a wrong suggestion that was overridden, beyond the "
                                "decision time already logged (re-reading, undoing, second look).")
    wasted_seconds_per_edit: float = Field(
        15.0, ge=0, description="Reviewer seconds lost to a suggestion that had to be edited, beyond decision time.")
    wasted_seconds_per_reject: float = Field(
        30.0, ge=0, description="Reviewer seconds lost to a suggestion that was rejected, beyond decision time.")
    cost_per_compliance_flag: float = Field(
        0.0, ge=0, description="Cost of a compliance issue that went through (not caught by the reviewer).")
    cost_per_complaint: float = Field(0.0, ge=0, description="Cost of handling one customer complaint.")
    cost_per_escalation: float = Field(0.0, ge=0, description="Cost of one escalation.")
    cost_per_silent_error: float = Field(
        0.0, ge=0,
        description="Cost of one accepted mistake (a wrong suggestion a human accepted: a silent error), beyond the "
                    "complaint/escalation costs already counted when it surfaces. Priced on the audit's estimate "
                    "of accepted mistakes: silent_error_cost = automation_bias_rate × ok accepted cases × this.",
    )
    value_per_correct_automated_decision: float | None = Field(
        None, ge=0,
        description="Optional extra value of a verified-correct AI decision used as is (accepted, or taken without "
                    "a human); null counts no such value.",
    )
    latency_slo_ms: float = Field(
        2000.0, gt=0, description="Latency objective: a case meets the SLO when status is ok and latency_ms <= this.")
    platform_cost_per_day: float = Field(
        0.0, ge=0,
        description="Fixed cost of running the system per day with cases (hosting, licences, monitoring, support), "
                    "in `currency`; part of the full cost ROI divides by. A day's amount is shared among the "
                    "system's KPI rows of that day in proportion to their cases.",
    )

    @model_validator(mode="after")
    def _usd_is_usd(self) -> SystemImpact:
        if self.currency == "USD" and self.usd_to_currency != 1.0:
            raise ValueError("usd_to_currency must be 1 when currency is USD")
        return self


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, SystemImpact):
        return value.model_dump(exclude_unset=True)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"each system entry must be a mapping of impact settings, got {type(value).__name__}")
    return dict(value)


class ImpactConfig(StrictModel):
    """Business impact model per system, plus the confidence level of the accuracy intervals."""

    ci_level: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of accuracy_ci_low/high (Wilson).")
    low_volume_below: int = Field(
        DEFAULT_LOW_VOLUME_BELOW, ge=1,
        description="A KPI row (a day's, week's or month's system/model_version/segment) with fewer cases than "
                    "this is flagged low_volume and gets no ROI: a ratio of money over a handful of cases is noise, "
                    "not a headline. 1 disables the flag.",
    )
    reviewed_min_audited: int = Field(
        DEFAULT_REVIEWED_MIN_AUDITED, ge=1,
        description="A reviewed estimate (reviewed_accuracy, automation_bias_rate, override_error_rate) of a KPI "
                    "row rests on the audited verdicts of its own domain; with fewer than this it is null (not "
                    "available) rather than a number from a handful of cases.",
    )
    systems: dict[str, SystemImpact] = Field(
        default_factory=lambda: {DEFAULT_SYSTEM: SystemImpact()},
        description="system name -> impact model; `default` applies to systems not listed and fills unset keys.",
    )

    @model_validator(mode="before")
    @classmethod
    def _inherit_default(cls, raw: Any) -> Any:
        """Merge each system's keys over ``default`` before validation, so errors keep their own key path."""
        if not isinstance(raw, dict) or not isinstance(raw.get("systems"), dict):
            return raw
        systems = dict(raw["systems"])
        try:
            base = _as_mapping(systems.get(DEFAULT_SYSTEM))
        except ValueError:
            return raw  # let field validation report it under systems.default
        merged: dict[str, Any] = {DEFAULT_SYSTEM: systems.get(DEFAULT_SYSTEM) or {}}
        for name, entry in systems.items():
            if name == DEFAULT_SYSTEM:
                continue
            try:
                merged[name] = {**base, **_as_mapping(entry)}
            except ValueError:
                merged[name] = entry
        return {**raw, "systems": merged}

    def control_columns(self) -> list[str]:
        """The labeled_cases columns the configured control groups are read from (beyond the KPI columns)."""
        return sorted({s.baseline_control.column for s in self.systems.values() if s.baseline_control is not None})

    def for_system(self, system: str) -> SystemImpact:
        """The model of ``system``: its own entry, else ``default``."""
        return self.systems.get(system) or self.systems[DEFAULT_SYSTEM]
