"""Configuration section ``alerts``: where alerts go (channels) and what fires them (rules). docs/alerts.md.

Secrets and URLs never live in the file: a channel names the environment variables that hold its webhook URL, its
signing secret or its SMTP host and credentials (``*_env`` keys), and a literal URL or secret written where an
environment variable name belongs fails at load, naming the key and the fix, without echoing the value.

A rule reads one source (``on``): drift verdicts, a ``kpi_daily`` metric, release gates, failed blocking checks,
the label-free accuracy estimate or the automation-bias rate. Rules on rates fire on evidence: the confidence
interval, not the point estimate, must lie beyond the threshold (docs/alerts.md#evidence).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from eval_pipelines.kpis.metrics import COUNT_COLUMNS, KEY_COLUMNS, METRIC_COLUMNS, RATIOS
from eval_pipelines.settings_base import StrictModel
from eval_pipelines.url_secrets import looks_like_url

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# kpi_daily columns the review loop adds (docs: /work/briefs/contracts.md "Corrected KPI columns"); rules may name
# them before those columns exist: a rule on a missing column is skipped with a note, never an error at run time.
# Each reviewed rate -> the audited verdicts it is estimated from (its denominator, what min_cases counts): the
# automation-bias rate is a rate among accepted cases, the override error rate among overridden ones. The same
# mapping as eval_pipelines.kpis.reviewed.AUDITED_COUNT (a test pins it), kept here so loading the config does not
# import the review estimators.
REVIEW_KPI_RATES: dict[str, str] = {
    "reviewed_accuracy": "reviewed_cases_audited",
    "automation_bias_rate": "accepted_cases_audited",
    "override_error_rate": "overridden_cases_audited",
}
REVIEW_KPI_COLUMNS: tuple[str, ...] = ("reviewed_cases_audited", *REVIEW_KPI_RATES, "silent_error_cost")
# The cases that are evidence for a row-level figure, which min_cases counts (every other figure: ``cases``, the
# row's population; a rate of counts: its denominator). Silent errors are the automation-bias rate times the
# accepted cases, so they rest on the accepted audited verdicts; the realized accuracy of an estimate, and its gap
# to the label-free estimate, on the day's own trusted labels (realized_cases), not on the day's population; the
# label-free estimate itself on the trusted labels it was calibrated on (calibration_cases).
EVIDENCE_CASES: dict[str, str] = {
    **REVIEW_KPI_RATES,
    "silent_error_cases": "accepted_cases_audited",
    "silent_error_cost": "accepted_cases_audited",
    "realized_accuracy": "realized_cases",
    "estimation_error": "realized_cases",
    # the label-free estimate's evidence is its calibration set of trusted labels, not the day's unlabeled cases
    "estimated_accuracy": "calibration_cases",
}
KPI_METRICS: tuple[str, ...] = (*METRIC_COLUMNS, *REVIEW_KPI_COLUMNS)
ESTIMATE_METRICS: tuple[str, ...] = ("estimated_accuracy", "realized_accuracy", "estimation_error")
Source = Literal["drift", "kpi", "release_gate", "checks", "estimate", "automation_bias"]
Op = Literal["lt", "le", "gt", "ge"]
THRESHOLD_SOURCES = ("kpi", "estimate", "automation_bias")


def _env_name(value: str | None, key: str) -> str | None:
    """``value`` when it is an environment variable name; a clear error (never echoing it) otherwise."""
    if value is None:
        return None
    if looks_like_url(value) or "@" in value or "/" in value:
        raise ValueError(f"{key} names an environment variable, not the value itself: remove the literal URL or "
                         f"secret from the file, set it in an environment variable (e.g. EVAL_PIPELINES_ALERT_...) "
                         f"and write {key}: <THAT_VARIABLE_NAME>")
    if not ENV_NAME.match(value):
        raise ValueError(f"{key} must be an environment variable name (letters, digits, underscore)")
    return value


# Keys people reach for that would put a secret in the file: refused with the fix instead of "unknown key".
_LITERAL_KEYS = {"url": "url_env", "webhook_url": "url_env", "secret": "secret_env", "token": "secret_env",
                 "password": "password_env", "username": "username_env", "host": "host_env", "smtp_host": "host_env"}


class ChannelConfig(StrictModel):
    """Where alerts are delivered. Every location and credential comes from the environment variable named here."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Referenced by rules' channels.")
    kind: Literal["webhook", "slack", "teams", "email"]
    url_env: str | None = Field(None, description="webhook/slack/teams: env var holding the URL to POST to.")
    secret_env: str | None = Field(
        None, description="webhook: env var holding the HMAC-SHA256 signing secret (X-Eval-Pipelines-Signature).")
    host_env: str | None = Field(None, description="email: env var holding the SMTP host name.")
    port: int = Field(587, ge=1, le=65535, description="email: SMTP port (587 STARTTLS, 465 SSL, 25 none).")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="email: STARTTLS upgrade, implicit TLS (SMTP_SSL) or plain (local relays only).")
    username_env: str | None = Field(None, description="email: env var holding the SMTP user (optional).")
    password_env: str | None = Field(None, description="email: env var holding the SMTP password (optional).")
    sender: str | None = Field(None, description="email: From address.")
    recipients: list[str] = Field(default_factory=list, description="email: To addresses.")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Per attempt (connect + send).")
    retries: int = Field(2, ge=0, le=10, description="Retries within one tick after a failed attempt.")
    backoff_seconds: float = Field(
        0.5, ge=0, le=60, description="Wait before retry i (0-based): backoff_seconds * 2**i.")

    @model_validator(mode="before")
    @classmethod
    def _no_literals(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            for key, fix in _LITERAL_KEYS.items():
                if key in raw:
                    raise ValueError(f"'{key}' would put a location or secret in the file; set it in an environment "
                                     f"variable and name that variable with '{fix}'")
        return raw

    @model_validator(mode="after")
    def _kind_needs(self) -> ChannelConfig:
        for key in ("url_env", "secret_env", "host_env", "username_env", "password_env"):
            _env_name(getattr(self, key), key)
        if self.kind in ("webhook", "slack", "teams"):
            if not self.url_env:
                raise ValueError(f"kind {self.kind} needs url_env (the environment variable holding its URL)")
            extra = [k for k in ("host_env", "username_env", "password_env", "sender") if getattr(self, k)]
            if extra or self.recipients:
                raise ValueError(f"kind {self.kind} does not use e-mail settings {extra or ['recipients']}")
            if self.secret_env and self.kind != "webhook":
                raise ValueError("secret_env (HMAC signature) applies to kind webhook only")
        else:
            if not self.host_env or not self.sender or not self.recipients:
                raise ValueError("kind email needs host_env, sender and recipients")
            if self.url_env or self.secret_env:
                raise ValueError("kind email does not use url_env / secret_env")
            if bool(self.username_env) != bool(self.password_env):
                raise ValueError("set both username_env and password_env, or neither")
        return self


class RelativeChange(StrictModel):
    """A threshold relative to the trailing window: the window's value × (1 - by) for lt/le, × (1 + by) for gt/ge."""

    by: float = Field(gt=0, le=10, description="Relative change, 0.2 = 20 %.")
    trailing_days: int = Field(7, ge=1, le=90, description="Days before the day whose pooled value is the base.")
    min_days: int = Field(3, ge=1, le=90, description="Fewer trailing days with data: no verdict for the day.")

    @model_validator(mode="after")
    def _min_le_trailing(self) -> RelativeChange:
        if self.min_days > self.trailing_days:
            raise ValueError(f"min_days {self.min_days} exceeds trailing_days {self.trailing_days}")
        return self


class RuleConfig(StrictModel):
    """One alert rule: a source, a condition, how much evidence it needs, and where it is delivered."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    on: Source
    description: str | None = Field(None, description="Shown in the message.")
    severity: Literal["minor", "major"] = Field(
        "major", description="drift: the smallest drift severity that fires; other sources: the alert's severity.")
    columns: list[str] = Field(default_factory=list, description="drift: only these monitored columns (all: []).")
    exclude_columns: list[str] = Field(default_factory=list, description="drift: never these columns.")
    metric: str | None = Field(None, description="kpi: a kpi_daily column; estimate: estimated_accuracy (default).")
    op: Op | None = Field(None, description="lt | le | gt | ge: the value's side of the threshold that fires.")
    threshold: float | None = Field(None, description="Fixed threshold (or use relative_change).")
    relative_change: RelativeChange | None = Field(None, description="Threshold relative to the trailing window.")
    min_cases: int = Field(0, ge=0, description="Fewer cases behind the figure: no verdict. The cases are a rate's "
                           "denominator, the audited verdicts of a reviewed rate (automation_bias_rate: accepted "
                           "ones), realized_cases for realized_accuracy / estimation_error, else the row's cases.")
    for_days: int = Field(1, ge=1, le=90, description="Fires when the condition holds this many days in a row.")
    by: list[Literal["system", "model_version", "segment"]] | None = Field(
        None, description="kpi/automation_bias/estimate: the keys a finding is per; rows are pooled over the others "
                          "(rates: summed numerators and denominators). Default: kpi [system], others every key.")
    candidates: list[str] = Field(default_factory=list, description="release_gate: only these candidates (all: []).")
    checks: list[str] = Field(default_factory=list,
                              description="checks: only these check names or asset:check (all blocking: []).")
    channels: list[str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, raw: Any) -> Any:
        # YAML 1.1 (PyYAML) reads a bare `on` key as the boolean true; the rule's `on:` means the source.
        if isinstance(raw, dict) and True in raw and "on" not in raw:
            raw = {("on" if key is True else key): value for key, value in raw.items()}
        return raw

    @model_validator(mode="after")
    def _source_needs(self) -> RuleConfig:
        threshold_keys = ("metric", "op", "threshold", "relative_change")
        if self.on in THRESHOLD_SOURCES:
            if self.on == "kpi" and self.metric is None:
                raise ValueError("on: kpi needs metric (a kpi_daily column)")
            if self.on == "kpi" and self.metric not in KPI_METRICS:
                close = difflib.get_close_matches(self.metric or "", KPI_METRICS, n=3)
                raise ValueError(f"metric {self.metric!r} is not a kpi_daily column"
                                 + (f"; did you mean {close}?" if close else "")
                                 + " (every column: docs/warehouse.md#kpi_daily)")
            if self.on == "estimate" and self.metric not in (None, *ESTIMATE_METRICS):
                raise ValueError(f"metric {self.metric!r} is not a performance_estimates figure; allowed: "
                                 f"{list(ESTIMATE_METRICS)}")
            if self.on == "automation_bias" and self.metric not in (None, "automation_bias_rate"):
                raise ValueError("on: automation_bias reads automation_bias_rate; leave metric out")
            if self.op is None:
                raise ValueError(f"on: {self.on} needs op (lt, le, gt, ge)")
            if (self.threshold is None) == (self.relative_change is None):
                raise ValueError("give exactly one of threshold or relative_change")
            metric = self.metric_name()
            if self.by is not None and set(self.by) != set(KEY_COLUMNS) and not poolable(self.on, metric):
                raise ValueError(f"metric {metric!r} cannot be pooled over rows (it is not a count, sum or a ratio of "
                                 f"counts): set by: {list(KEY_COLUMNS)} (one finding per kpi_daily row)")
            if self.by is None and self.on == "kpi" and not poolable(self.on, metric):
                raise ValueError(f"metric {metric!r} cannot be pooled per system: set by: {list(KEY_COLUMNS)}")
        else:
            given = [k for k in threshold_keys if getattr(self, k) is not None]
            if given or self.by is not None:
                raise ValueError(f"on: {self.on} takes no {given or ['by']} (its verdict is the source's own)")
        if self.on != "drift" and (self.columns or self.exclude_columns):
            raise ValueError("columns / exclude_columns apply to on: drift only")
        if self.on != "release_gate" and self.candidates:
            raise ValueError("candidates applies to on: release_gate only")
        if self.on != "checks" and self.checks:
            raise ValueError("checks applies to on: checks only")
        if self.on in ("release_gate", "checks") and self.for_days != 1:
            raise ValueError(f"for_days applies to daily sources; on: {self.on} fires on the latest verdict")
        return self

    def metric_name(self) -> str | None:
        if self.on == "automation_bias":
            return "automation_bias_rate"
        if self.on == "estimate":
            return self.metric or "estimated_accuracy"
        return self.metric

    def keys(self) -> list[str]:
        """The key columns a finding is per (one subject per combination)."""
        if self.by is not None:
            return [k for k in KEY_COLUMNS if k in self.by]
        return ["system"] if self.on == "kpi" else list(KEY_COLUMNS)


def poolable(source: str, metric: str | None) -> bool:
    """Whether rows can be pooled for ``metric``: counts and sums add, ratios of counts are recomputed."""
    if source != "kpi" or metric is None:
        return False
    from eval_pipelines.kpis.metrics import SUM_COLUMNS

    return metric in RATIOS or metric in COUNT_COLUMNS or metric in SUM_COLUMNS


class AlertsConfig(StrictModel):
    """Alert channels and rules (docs/alerts.md). Without rules nothing is evaluated and nothing is sent."""

    ui_base_url: str = Field("http://127.0.0.1:3000",
                             description="Dagster UI base URL for the asset links in messages (no credentials).")
    max_age_days: int = Field(
        14, ge=0, le=3650,
        description="A finding whose last firing day is older than the newest day by more than this is not "
                    "announced (a first run over a year of history does not send a year of alerts).")
    max_deliveries_per_tick: int = Field(50, ge=1, le=10_000, description="The rest waits for the next tick.")
    max_attempts: int = Field(20, ge=1, le=1000,
                              description="Delivery attempts of one message over all ticks before it stays failed.")
    channels: list[ChannelConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> AlertsConfig:
        if looks_like_url(self.ui_base_url):
            from eval_pipelines.url_secrets import url_credentials

            if url_credentials(self.ui_base_url):
                raise ValueError("ui_base_url: no credentials in the UI link (they would be in every message)")
        channels = [c.name for c in self.channels]
        duplicated = sorted({n for n in channels if channels.count(n) > 1})
        if duplicated:
            raise ValueError(f"channels: duplicate names {duplicated}")
        rules = [r.name for r in self.rules]
        duplicated = sorted({n for n in rules if rules.count(n) > 1})
        if duplicated:
            raise ValueError(f"rules: duplicate names {duplicated}")
        for index, rule in enumerate(self.rules):
            for position, channel in enumerate(rule.channels):
                if channel not in channels:
                    raise ValueError(f"rules.{index}.channels.{position}: unknown channel {channel!r}; defined: "
                                     f"{channels}")
        return self

    def channel(self, name: str) -> ChannelConfig:
        return next(c for c in self.channels if c.name == name)
