"""Configuration section ``scoring``: candidate systems, scorers, the baseline, the paired tests and the release gates.

Every field has a default: NO candidates (a config without a ``scoring`` section scores production only; the demo
config eval_pipelines.yaml lists its two keyword triage systems from :mod:`eval_pipelines.demo.candidates`
explicitly), the usual scorers, production (the logged outputs) as the baseline, and one gate context
``default``. A wrong value fails at load with its dotted path. The reference with worked examples is docs/scoring.md.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from eval_pipelines.settings_base import StrictModel

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

PRODUCTION = "production"
"""The baseline name meaning "the deployed system as logged" (the ``logged`` adapter on the same cases)."""

DEFAULT_CONTEXT = "default"


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{what} must match {_NAME.pattern} (lowercase, digits, underscores), got {value!r}")
    return value


def _check_target(value: str) -> str:
    if not _TARGET.match(value):
        raise ValueError(f"must be an importable 'package.module:function', got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# Candidates (systems under test)
# ----------------------------------------------------------------------------------------------------------------


class CandidateBase(StrictModel):
    name: str = Field(description="Partition key of scored_runs and the name `eval-pipelines gate --candidate` takes.")
    description: str = Field("", description="Shown in the run's metadata.")
    gate: str = Field(DEFAULT_CONTEXT, description="Gate context (key of scoring.gates) this candidate must pass.")
    baseline: str | None = Field(
        None, description="Compare with this candidate, or 'production'; default: scoring.baseline.")
    systems: list[str] | None = Field(
        None, min_length=1,
        description="Replay only the eval-set cases and edge-case entries of these systems (a reply drafter is not "
                    "scored on triage tickets); default: every case. The eval set's strata must keep the systems "
                    "apart (e.g. 'system' or a per-system model_version in eval_set.strata): the estimate then "
                    "projects to these systems' production cases.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "candidate name")


class LoggedCandidate(CandidateBase):
    """The deployed system as logged: its outputs, confidence, latency and cost from labeled_cases (no replay)."""

    adapter: Literal["logged"]


class PythonCandidate(CandidateBase):
    """An importable function ``f(cases: DataFrame) -> outputs`` called on batches of cases."""

    adapter: Literal["python"]
    target: str = Field(description="'package.module:function'. It receives a DataFrame of cases (event_id, "
                                    "timestamp, system, segment, input_text, feature columns) and returns one "
                                    "output per case: a list of strings, a list of dicts, or a DataFrame with "
                                    "'output' and optionally confidence, latency_ms, cost_usd, error.")
    batch_size: int = Field(1000, ge=1, le=1_000_000, description="Cases per call.")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Keyword arguments passed to the function on every call.")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return _check_target(value)


class HttpCandidate(CandidateBase):
    """An HTTP endpoint: POST {"cases": [...]} as JSON, answer {"outputs": [...]} (strings or objects)."""

    adapter: Literal["http"]
    url: str = Field(description="Endpoint URL (http or https); ${NAME} parts are read from the environment.")
    timeout_seconds: float = Field(10.0, gt=0, le=600, description="Per-request socket timeout.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries after a timeout, connection error, 429 or 5xx.")
    backoff_seconds: float = Field(0.5, ge=0, le=60, description="First retry waits this long, then doubles.")
    concurrency: int = Field(4, ge=1, le=256, description="Requests in flight at most.")
    batch_size: int = Field(1, ge=1, le=10_000,
                            description="Cases per request; 1 isolates failures to one case.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers; ${NAME} in a value is read from the environment "
                                          "(tokens stay out of the file).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "${")):
            raise ValueError(f"must be an http:// or https:// URL (or ${{ENV_VAR}}), got {value!r}")
        return value


class PredictionsCandidate(CandidateBase):
    """Outputs computed elsewhere (batch inference), one row per event_id, in a Parquet, CSV or JSONL file."""

    adapter: Literal["predictions"]
    path: str = Field(description="File path (relative to the project root) or fsspec URL.")
    id_column: str = Field("event_id", description="Column holding the event id.")
    output_column: str = Field("output", description="Column holding the system's output.")


Candidate = Annotated[
    LoggedCandidate | PythonCandidate | HttpCandidate | PredictionsCandidate, Field(discriminator="adapter")
]

# ----------------------------------------------------------------------------------------------------------------
# Scorers
# ----------------------------------------------------------------------------------------------------------------

ScorerKind = Literal[
    "exact_match", "normalised_match", "label_set_f1", "edit_similarity", "token_f1", "rouge_l",
    "numeric_tolerance", "brier", "ece", "latency_slo", "latency", "cost", "success", "custom", "llm_judge",
]


class ScorerConfig(StrictModel):
    """One named scorer; ``kind`` picks the function, the other fields are its parameters."""

    name: str = Field(description="Scorer name in scored_cases / scored_runs and in gate criteria.")
    kind: ScorerKind = Field(description="See docs/scoring.md for what each kind measures.")
    separator: str = Field("/", min_length=1, description="label_set_f1: separator of the label set.")
    abs_tol: float = Field(0.0, ge=0, description="numeric_tolerance: absolute tolerance.")
    rel_tol: float = Field(0.0, ge=0, description="numeric_tolerance: tolerance relative to |label|.")
    slo_ms: float = Field(2000.0, gt=0, description="latency_slo: a case meets the SLO when latency_ms <= slo_ms.")
    bins: int = Field(10, ge=2, le=100, description="ece: equal-width confidence bins.")
    correct_by: str = Field("exact_match", description="brier / ece: the binary scorer that says a case is right.")
    function: str | None = Field(None, description="custom: 'package.module:function' returning per-case scores.")
    binary: bool | None = Field(None, description="custom: scores are 0/1 (paired McNemar); default false.")
    higher_is_better: bool | None = Field(None, description="custom: direction of the score; default true.")
    rubric: str | None = Field(None, description="llm_judge: what the judge checks (the system prompt).")
    model: str | None = Field(None, description="llm_judge: the model name sent to the endpoint.")
    url_env: str | None = Field(None, description="llm_judge: env var holding the chat-completions URL.")
    api_key_env: str | None = Field(None, description="llm_judge: env var holding the API key (optional).")
    cache_dir: str = Field("data/judge_cache", description="llm_judge: verdict cache, <cache_dir>/<name>.jsonl.")
    concurrency: int = Field(4, ge=1, le=64, description="llm_judge: requests in flight.")
    timeout_seconds: float = Field(30.0, gt=0, description="llm_judge: per request.")
    max_retries: int = Field(2, ge=0, le=10, description="llm_judge: retries on timeouts, 429/5xx, bad replies.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "scorer name")

    @model_validator(mode="after")
    def _custom_needs_function(self) -> ScorerConfig:
        if self.kind == "custom":
            if self.function is None:
                raise ValueError(f"scorer {self.name!r}: kind custom needs function: 'package.module:function'")
            _check_target(self.function)
        elif self.function is not None or self.binary is not None or self.higher_is_better is not None:
            raise ValueError(f"scorer {self.name!r}: function / binary / higher_is_better apply to kind custom only")
        judge_fields = {"rubric": self.rubric, "model": self.model, "url_env": self.url_env}
        if self.kind == "llm_judge":
            missing = [key for key, value in judge_fields.items() if not value]
            if missing:
                raise ValueError(f"scorer {self.name!r}: kind llm_judge needs {', '.join(missing)} (the URL and key "
                                 "come from the environment variables named by url_env / api_key_env)")
        elif any(judge_fields.values()) or self.api_key_env:
            raise ValueError(f"scorer {self.name!r}: rubric / model / url_env / api_key_env apply to kind "
                             "llm_judge only")
        return self


def _default_scorers() -> list[ScorerConfig]:
    return [
        ScorerConfig(name="exact_match", kind="exact_match"),
        ScorerConfig(name="normalised_match", kind="normalised_match"),
        ScorerConfig(name="label_f1", kind="label_set_f1", separator="/"),
        ScorerConfig(name="brier", kind="brier"),
        ScorerConfig(name="ece", kind="ece", bins=10),
        ScorerConfig(name="latency_slo", kind="latency_slo", slo_ms=2000.0),
        ScorerConfig(name="latency_ms", kind="latency"),
        ScorerConfig(name="cost_usd", kind="cost"),
        ScorerConfig(name="success", kind="success"),
    ]


# ----------------------------------------------------------------------------------------------------------------
# Gates
# ----------------------------------------------------------------------------------------------------------------

ALLOW_MISSING = ("A criterion without enough evidence (no summary row, no value, too few edge-case entries) is "
                 "reported as not_judged and fails the gate; true lets a not-judged criterion pass (still reported).")

Statistic = Literal["estimate", "ci_low", "ci_high", "mean", "p50", "p90", "p95", "p99"]


class ScoreCriterion(StrictModel):
    """``<statistic of scorer on slice> <op> <threshold>``, e.g. accuracy's lower CI bound >= 0.6."""

    kind: Literal["score"] = "score"
    scorer: str
    statistic: Statistic = Field("estimate", description="estimate / ci_low / ci_high: projected to production "
                                                         "through the eval-set weights; p50..p99: weighted "
                                                         "quantiles; mean: unweighted mean over the cases.")
    op: Literal["ge", "le"] = Field("ge", description="ge: value >= threshold passes; le: value <= threshold.")
    threshold: float
    slice: str = Field("all", description="'all' or '<dimension>=<value>' as in scored_runs "
                                          "(e.g. 'segment=enterprise').")
    label: str | None = Field(None, description="Name shown in the gate table; default derived.")
    allow_missing: bool = Field(False, description=ALLOW_MISSING)


class NonInferiorityCriterion(StrictModel):
    """The candidate is at most ``margin`` worse than the baseline in production: passes only when the lower bound
    of the one-sided ``1 - alpha`` design-based interval of the production difference (candidate minus baseline,
    + = better) is >= -margin (0/1 scores: Tango's score interval at the design's effective number of pairs;
    continuous: d̂ - t se). With ``alpha`` 0.025 that bound is the lower end of the two-sided 95 % CI
    (``scored_runs.diff_ci_low``). This is the default comparison: it passes on evidence of no large regression,
    not on the absence of evidence of one (see docs/scoring.md)."""

    kind: Literal["non_inferiority"] = "non_inferiority"
    scorer: str
    margin: float = Field(gt=0, description="Largest acceptable loss, in the scorer's unit (0.02 = 2 points of "
                                            "accuracy; for lower-is-better scorers, the increase).")
    alpha: float = Field(0.025, gt=0, lt=0.5, description="One-sided level: the chance of passing a candidate "
                                                          "that is exactly margin worse.")
    slice: str = "all"
    label: str | None = None
    allow_missing: bool = Field(False, description="Must stay false: a non_inferiority criterion that cannot be "
                                                   "judged (no row, no baseline, or a minimum detectable effect "
                                                   "above the margin) fails the gate.")

    @field_validator("allow_missing")
    @classmethod
    def _never_pass_without_evidence(cls, value: bool) -> bool:
        # "Not judged" here is mostly "the set is too small to show the margin": letting it pass would turn the
        # absence of evidence into a pass, the very thing non_inferiority exists to prevent.
        if value:
            raise ValueError("allow_missing: true is not allowed on a non_inferiority criterion: an underpowered "
                             "or missing comparison would pass the gate unseen; remove the criterion, widen the "
                             "margin or enlarge the eval set instead")
        return value


class RegressionCriterion(StrictModel):
    """No significant regression in production against the baseline on the same cases (one-sided design-based
    paired test at ``alpha``, see docs/scoring.md). Weaker than ``non_inferiority``: it passes whenever the
    regression is not significant, so a small eval set passes real regressions (a 1.1-point regression on 2,000
    cases passed 60 % of 600 seeded samples in test_scoring_gate.py; the issue's 44 % came from an earlier simulation
    with another design)."""

    kind: Literal["no_regression"] = "no_regression"
    scorer: str
    alpha: float = Field(0.05, gt=0, lt=0.5)
    slice: str = "all"
    label: str | None = None
    allow_missing: bool = Field(False, description=ALLOW_MISSING)


class EdgeCaseCriterion(StrictModel):
    """Share of replayed edge-case library entries the candidate passes."""

    kind: Literal["edge_case_pass_rate"] = "edge_case_pass_rate"
    min_pass_rate: float = Field(ge=0, le=1)
    min_entries: int = Field(
        1, ge=0, description="Fewer replayed entries than this (and never fewer than 1) is too little evidence: "
                             "the criterion is reported as not_judged and fails the gate, unless allow_missing.")
    label: str | None = None
    allow_missing: bool = Field(False, description=ALLOW_MISSING)


class JudgeAgreementCriterion(StrictModel):
    """An ``llm_judge`` scorer's scores count only when the judge is shown to agree with people: Cohen's κ between its
    verdicts and the reviewers' (the review loop's adjudicated labels) on the eval-set cases both have. Passes when
    the lower bound of κ's CI (``scored_runs.judge_kappa_ci_low``, at ``comparison.confidence``) is at least
    ``min_kappa`` on at least ``min_pairs`` pairs: the evidence must show the agreement, a point estimate of 0.65 on
    40 pairs (CI about 0.4 – 0.9) does not. Fewer pairs, or a κ that is undefined (one verdict only), is not
    judged and fails the gate."""

    kind: Literal["min_judge_agreement"] = "min_judge_agreement"
    scorer: str = Field(description="An llm_judge scorer of scoring.scorers.")
    min_kappa: float = Field(0.6, ge=-1, le=1, description="Smallest acceptable lower CI bound of κ (0.6: "
                                                           "'substantial' agreement, Landis & Koch 1977).")
    min_pairs: int = Field(30, ge=10, description="Fewer cases with both a judge verdict and a reviewed label "
                                                 "than this is 'not judged: too few pairs' and fails the gate.")
    label: str | None = None
    allow_missing: bool = Field(False, description="Must stay false: a judge whose agreement is unknown must not "
                                                   "pass.")

    @field_validator("allow_missing")
    @classmethod
    def _never_trust_an_unchecked_judge(cls, value: bool) -> bool:
        if value:
            raise ValueError("allow_missing: true is not allowed on a min_judge_agreement criterion: a judge with "
                             "too few reviewed cases to measure its agreement would pass unchecked; lower "
                             "min_pairs or review more cases instead")
        return value


AnyCriterion = (ScoreCriterion | NonInferiorityCriterion | RegressionCriterion | EdgeCaseCriterion
                | JudgeAgreementCriterion)
Criterion = Annotated[AnyCriterion, Field(discriminator="kind")]


def _default_gates() -> dict[str, list[AnyCriterion]]:
    return {DEFAULT_CONTEXT: [
        ScoreCriterion(scorer="exact_match", statistic="ci_low", op="ge", threshold=0.6,
                       label="accuracy, lower 95% CI bound"),
        NonInferiorityCriterion(scorer="exact_match", margin=0.02, alpha=0.025,
                                label="accuracy at most 2 points below the baseline"),
        EdgeCaseCriterion(min_pass_rate=0.5, min_entries=1, label="edge-case pass rate"),
        ScoreCriterion(scorer="latency_ms", statistic="p95", op="le", threshold=2000.0, label="p95 latency (ms)"),
        ScoreCriterion(scorer="cost_usd", statistic="estimate", op="le", threshold=0.002,
                       label="cost per case (USD)"),
    ]}


# ----------------------------------------------------------------------------------------------------------------
# Comparison and the section
# ----------------------------------------------------------------------------------------------------------------


class ComparisonConfig(StrictModel):
    """The unweighted paired tests against the baseline (edge cases; ``sample_*`` columns of eval-set rows, whose
    ``diff`` and p-values are design-based and need no setting but ``confidence``)."""

    continuous_test: Literal["bootstrap", "permutation"] = Field(
        "bootstrap", description="Unweighted paired test for non-binary scores: bootstrap (studentised: "
                                 "bootstrap-t CI and p-values) or permutation (sign flips, exact for a symmetric "
                                 "difference, liberal under skew; CI still from the bootstrap).")
    resamples: int = Field(2000, ge=100, le=100_000, description="Bootstrap / permutation resamples.")
    exact_below: int = Field(
        25, ge=0, description="McNemar uses the exact binomial test when discordant pairs are fewer than this, "
                              "the continuity-corrected chi-square otherwise.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Level of every confidence interval.")
    seed: int = Field(0, ge=0, description="Seed of the resampling, so a run is reproducible.")


class ScoringConfig(StrictModel):
    """Candidates replayed by ``scored_runs``, scorers, the baseline, the paired tests and the gates per context."""

    # No default candidates: a user's config must not score the demo's keyword rules against its own logs.
    candidates: list[Candidate] = Field(
        default_factory=list, description="One scored_runs partition per candidate (none by default).")
    scorers: list[ScorerConfig] = Field(default_factory=_default_scorers, description="Applied to every case.")
    baseline: str = Field(PRODUCTION, description="'production' (the logged outputs on the same cases) or a "
                                                  "candidate name; a candidate may override it.")
    primary_scorer: str = Field(
        "exact_match", description="Binary scorer deciding whether a case passes (edge-case pass rates, wins).")
    edge_cases: bool = Field(True, description="Replay the open (and fixed, to catch regressions) edge cases.")
    edge_case_statuses: list[str] = Field(
        default_factory=lambda: ["open", "regressed", "fixed"],
        description="Library statuses whose entries are replayed; 'fixed' ones can regress.")
    edge_case_min_share: float = Field(
        1.0, gt=0, le=1, description="An entry passes when at least this share of its labeled events pass.")
    slices: list[str] = Field(
        default_factory=lambda: ["segment", "stratum", "failure_mode", "split"],
        description="Slice dimensions summarised in scored_runs besides 'all'.")
    production_slices: list[str] = Field(
        default_factory=lambda: ["model_version", "segment"],
        description="labeled_cases columns production_scores groups by (each alone, plus 'all').")
    comparison: ComparisonConfig = ComparisonConfig()
    lifecycle_policy: Literal["gate_passed", "always", "never"] = Field(
        "gate_passed",
        description="Which runs move the edge-case library's lifecycle (open -> fixed -> regressed): only runs of "
                    "candidates that pass their gate (a candidate that will not ship neither fixes nor breaks "
                    "anything), every run, or none.")
    gates: dict[str, list[Criterion]] = Field(
        default_factory=_default_gates, description="Gate context -> criteria; a candidate names its context.")

    @field_validator("slices")
    @classmethod
    def _known_slices(cls, value: list[str]) -> list[str]:
        allowed = {"segment", "stratum", "failure_mode", "split", "model_version"}
        unknown = [item for item in value if item not in allowed]
        if unknown:
            raise ValueError(f"unknown slice dimension(s) {unknown}; allowed: {sorted(allowed)}")
        return value

    @field_validator("edge_case_statuses")
    @classmethod
    def _known_statuses(cls, value: list[str]) -> list[str]:
        unknown = [item for item in value if item not in ("open", "fixed", "regressed")]
        if unknown:
            raise ValueError(f"unknown edge-case status(es) {unknown}; allowed: open, fixed, regressed")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> ScoringConfig:
        names = [c.name for c in self.candidates]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate candidate names {duplicated}")
        if PRODUCTION in names:
            raise ValueError(f"'{PRODUCTION}' is reserved for the logged baseline; name the candidate differently")
        scorers = {s.name: s for s in self.scorers}
        if len(scorers) != len(self.scorers):
            raise ValueError("scorer names must be distinct")
        for scorer in self.scorers:
            if scorer.kind in ("brier", "ece"):
                target = scorers.get(scorer.correct_by)
                if target is None or target.kind not in ("exact_match", "normalised_match", "numeric_tolerance"):
                    raise ValueError(f"scorer {scorer.name!r}: correct_by must name an exact_match, "
                                     f"normalised_match or numeric_tolerance scorer, got {scorer.correct_by!r}")
        primary = scorers.get(self.primary_scorer)
        if primary is None or primary.kind not in ("exact_match", "normalised_match", "numeric_tolerance",
                                                   "custom"):
            raise ValueError(f"primary_scorer {self.primary_scorer!r} must name a binary scorer in scoring.scorers")
        valid_baselines = {PRODUCTION, *names}
        if self.baseline not in valid_baselines:
            raise ValueError(f"baseline {self.baseline!r} is neither 'production' nor a candidate {names}")
        for candidate in self.candidates:
            if candidate.gate not in self.gates:
                raise ValueError(f"candidate {candidate.name!r}: gate context {candidate.gate!r} is not in "
                                 f"scoring.gates {sorted(self.gates)}")
            if candidate.baseline is not None and candidate.baseline not in valid_baselines:
                raise ValueError(f"candidate {candidate.name!r}: baseline {candidate.baseline!r} is neither "
                                 f"'production' nor a candidate")
            if candidate.baseline == candidate.name:
                raise ValueError(f"candidate {candidate.name!r} cannot be its own baseline")
        for context, criteria in self.gates.items():
            _check_name(context, "gate context")
            if not criteria:
                raise ValueError(f"gates.{context} has no criteria: a gate must check something")
            for position, criterion in enumerate(criteria):
                scorer = getattr(criterion, "scorer", None)
                if scorer is not None and scorer not in scorers:
                    raise ValueError(f"gates.{context}: criterion names unknown scorer {scorer!r}; "
                                     f"known: {sorted(scorers)}")
                if isinstance(criterion, JudgeAgreementCriterion) and scorers[criterion.scorer].kind != "llm_judge":
                    judges = sorted(name for name, s in scorers.items() if s.kind == "llm_judge")
                    raise ValueError(f"gates.{context}.{position}: min_judge_agreement needs an llm_judge scorer, "
                                     f"{criterion.scorer!r} is kind {scorers[criterion.scorer].kind}; llm_judge "
                                     f"scorers: {judges or 'none configured'}")
        return self

    def candidate(self, name: str) -> LoggedCandidate | PythonCandidate | HttpCandidate | PredictionsCandidate:
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate
        raise KeyError(f"unknown candidate {name!r}; configured: {[c.name for c in self.candidates]}")

    def baseline_of(self, name: str) -> str:
        """The candidate's baseline; a top-level baseline naming the candidate itself means production for it."""
        chosen = self.candidate(name).baseline or self.baseline
        return PRODUCTION if chosen == name else chosen

    def scorer(self, name: str) -> ScorerConfig:
        for scorer in self.scorers:
            if scorer.name == name:
                return scorer
        raise KeyError(f"unknown scorer {name!r}")


def scoring_config(settings: object) -> ScoringConfig:
    """The ``scoring`` section of the settings (one seam the tests replace to try other candidates)."""
    return settings.scoring
