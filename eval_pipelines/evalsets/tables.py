"""Warehouse tables of the eval sets. A version's rows are written once, in one transaction, and never changed.

BI reads them; issue "scored runs" replays ``eval_set_cases`` of a version and projects its scores with
``eval_set_strata.population`` (see :func:`eval_pipelines.evalsets.estimation.stratified_estimate`).

Text from the data: identifiers (``event_id``, ``system``, ``model_version``, ``segment``) are VARCHAR(256) because
ingestion quarantines longer values; everything else that comes from the data — free text, and stratum labels, which
join several such values — is TEXT, never capped (PostgreSQL enforces a VARCHAR length, SQLite does not).
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

eval_set_versions = sa.Table(
    "eval_set_versions",
    metadata,
    sa.Column("version", sa.String(32), primary_key=True, comment="content hash of the plan, frame and cases"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="UTC time the version was written"),
    sa.Column("window_start", sa.Date, nullable=False, comment="first day of the trailing window (UTC)"),
    sa.Column("window_end", sa.Date, nullable=False, comment="last day of the trailing window (UTC)"),
    sa.Column("plan", sa.Text, nullable=False, comment="JSON: strata, size, allocation, oversample, minimum, "
                                                        "seed, holdout fraction, missing days"),
    sa.Column("size", sa.Integer, nullable=False, comment="cases in the set"),
    sa.Column("holdout_size", sa.Integer, nullable=False, comment="cases with split = 'holdout'"),
    sa.Column("population", sa.BigInteger, nullable=False,
              comment="cases in the sampling frame: labeled cases (implicit) or trusted-label cases (trusted)"),
    sa.Column("label_basis", sa.String(16),
              comment="trusted (reviewed, else ground-truth labels of audited cases) | implicit; null: older version"),
    sa.Column("target_population", sa.BigInteger,
              comment="production cases the projections stand for: ok cases of the window (trusted), labeled "
                      "cases (implicit)"),
    sa.Column("strata", sa.Integer, nullable=False, comment="number of non-empty strata"),
    sa.Column("strata_counts", sa.Text, nullable=False,
              comment="JSON: stratum -> {population, sample, holdout}; also as rows in eval_set_strata"),
    sa.Column("window_accuracy", sa.Float,
              comment="implicit-label accuracy over every labeled case of the window (accepted = right: biased up)"),
    sa.Column("implicit_population", sa.BigInteger,
              comment="labeled cases of the window: window_accuracy's population"),
    sa.Column("projected_accuracy", sa.Float,
              comment="production accuracy projected from the set alone, about target_population"),
    sa.Column("projected_ci_low", sa.Float, comment="95% confidence interval of projected_accuracy"),
    sa.Column("projected_ci_high", sa.Float, comment="upper end of that interval"),
    sa.Column("audit_accuracy", sa.Float,
              comment="trusted: production accuracy from every trusted-label case of the window (about "
                      "target_population); null for implicit"),
    sa.Column("audit_ci_low", sa.Float, comment="95% confidence interval of audit_accuracy"),
    sa.Column("audit_ci_high", sa.Float, comment="upper end of that interval"),
    sa.Column("uncovered_population", sa.BigInteger,
              comment="trusted: ok cases in audit cells without a trusted label, outside the projections"),
    sa.Column("ground_truth_outside_audit", sa.BigInteger,
              comment="trusted: ground-truth cases not in the audit, not used (no known inclusion probability)"),
    sa.Column("run_id", sa.String(64), comment="Dagster run that wrote the version"),
    comment="One row per eval-set version; immutable once written.",
)

eval_set_strata = sa.Table(
    "eval_set_strata",
    metadata,
    sa.Column("version", sa.String(32), primary_key=True, comment="eval_set_versions.version"),
    sa.Column("stratum", sa.Text, primary_key=True,
              comment="col=value pairs joined by a pipe, the over-sampling group failure=<tag> last"),
    sa.Column("population", sa.BigInteger, nullable=False,
              comment="N_h: cases of the stratum in the window (trusted: ok cases of the day's audit stratum)"),
    sa.Column("audited", sa.BigInteger, comment="trusted: audit tasks of the stratum; null for implicit"),
    sa.Column("trusted_labels", sa.BigInteger,
              comment="trusted: audited cases with a trusted label, the frame of the eval-set draw; null for implicit"),
    sa.Column("sample", sa.Integer, nullable=False, comment="n_h: cases of the stratum in the set"),
    sa.Column("holdout", sa.Integer, nullable=False, comment="of which split = 'holdout'"),
    sa.Column("inclusion_prob", sa.Float, nullable=False, comment="n_h / N_h"),
    sa.Column("weight", sa.Float, comment="N_h / n_h (design weight); null when n_h = 0"),
    sa.Column("accuracy", sa.Float,
              comment="production accuracy over the stratum: implicit labels of its whole population (implicit), "
                      "its trusted-label cases (trusted)"),
    sa.Column("oversample_factor", sa.Float, nullable=False, comment="factor applied to the stratum's allocation"),
    comment="Per version and stratum: population, sample size and probabilities; N_h for projections.",
)

eval_set_cases = sa.Table(
    "eval_set_cases",
    metadata,
    sa.Column("version", sa.String(32), primary_key=True, comment="eval_set_versions.version"),
    sa.Column("event_id", sa.String(256), primary_key=True, comment="the production case (labeled_cases.event_id)"),
    sa.Column("stratum", sa.Text, nullable=False, comment="eval_set_strata.stratum of the case"),
    sa.Column("inclusion_prob", sa.Float, nullable=False, comment="probability the case was drawn, n_h / N_h"),
    sa.Column("weight", sa.Float, nullable=False, comment="design weight 1 / inclusion_prob"),
    sa.Column("label", sa.Text,
              comment="the expected output: trusted sets the reviewed label, else ground truth; implicit sets "
                      "ground truth, else the human's final decision"),
    sa.Column("label_source", sa.String(16), comment="reviewed | ground_truth | human_action (implicit)"),
    sa.Column("split", sa.String(16), nullable=False, comment="'dev' or 'holdout'"),
    sa.Column("input_text", sa.Text, comment="the request, PII masked"),
    sa.Column("ai_output", sa.Text, comment="what the production system answered"),
    sa.Column("timestamp", sa.DateTime(timezone=True), comment="when production answered (UTC)"),
    sa.Column("system", sa.String(256), comment="AI system / use case"),
    sa.Column("model_version", sa.String(256), comment="production version that answered"),
    sa.Column("segment", sa.String(256), comment="business segment"),
    sa.Column("ai_correct", sa.Boolean, comment="whether production's output matched the label"),
    sa.Column("correctness", sa.String(32), comment="production's verdict: correct, partly_wrong, wrong, unknown"),
    sa.Column("failure_tags", sa.Text, comment="production failure tags joined by a pipe, empty when none"),
    sa.Column("features", sa.Text, comment="JSON of the configured feature columns, for replay"),
    comment="The cases of each eval-set version, with what a scored run needs to replay and project them.",
)

EVAL_SET_TABLES = (eval_set_versions, eval_set_strata, eval_set_cases)
