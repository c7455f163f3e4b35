"""Warehouse tables of scoring. Columns and units are documented in docs/scoring.md (and docs/warehouse.md).

``production_scores`` is replaced per day; the three run tables are written per scored run (key ``run_id``) in one
transaction and kept as history, so BI can follow a candidate across eval-set versions and the CLI reads the
latest run of a candidate.

Sign convention of every comparison column: ``diff`` is the candidate's improvement over the baseline, positive
when the candidate is better, in the scorer's unit, whatever the scorer's direction (for lower-is-better scorers
such as latency or Brier, ``diff = baseline - candidate``).
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata


def _summary_stats() -> list[sa.Column]:
    """Fresh copies of the statistics columns both summary tables share (a Column belongs to one table)."""
    return [
        sa.Column("binary", sa.Boolean, nullable=False, comment="0/1 scores (McNemar) or continuous (bootstrap)"),
        sa.Column("higher_is_better", sa.Boolean, nullable=False),
        sa.Column("n_cases", sa.Integer, nullable=False, comment="cases in the slice"),
        sa.Column("n_scored", sa.Integer, nullable=False, comment="cases with a score (label, confidence... present)"),
        sa.Column("mean", sa.Float, comment="unweighted mean of the scores over the slice's cases"),
        sa.Column("std_error", sa.Float),
        sa.Column("ci_low", sa.Float, comment="95% CI of the estimate"),
        sa.Column("ci_high", sa.Float),
        sa.Column("p50", sa.Float, comment="median score (weighted by design weights for eval-set rows)"),
        sa.Column("p90", sa.Float),
        sa.Column("p95", sa.Float),
        sa.Column("p99", sa.Float),
    ]


production_scores = sa.Table(
    "production_scores",
    metadata,
    sa.Column("partition_date", sa.Date, primary_key=True),
    sa.Column("system", sa.String(256), primary_key=True),
    sa.Column("slice_dim", sa.String(64), primary_key=True, comment="'all' or a labeled_cases column"),
    sa.Column("slice_value", sa.String(256), primary_key=True),
    sa.Column("label_source", sa.String(16), primary_key=True, comment="all | ground_truth | human_action"),
    sa.Column("scorer", sa.String(64), primary_key=True),
    *_summary_stats(),
    comment="The deployed system scored against human decisions (and ground truth), per day, slice and scorer.",
)

scored_runs = sa.Table(
    "scored_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True, comment="Dagster run id of the scored run"),
    sa.Column("case_set", sa.String(16), primary_key=True, comment="eval_set | edge_cases"),
    sa.Column("scorer", sa.String(64), primary_key=True, comment="scorer name, or edge_case_pass (entries)"),
    sa.Column("slice_dim", sa.String(64), primary_key=True,
              comment="all | segment | stratum | failure_mode | split | model_version"),
    sa.Column("slice_value", sa.String(512), primary_key=True),
    sa.Column("candidate", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("eval_set_version", sa.String(32), nullable=False),
    sa.Column("baseline", sa.String(64), nullable=False, comment="'production' or a candidate name"),
    sa.Column("context", sa.String(64), nullable=False, comment="gate context the candidate is judged in"),
    *_summary_stats(),
    sa.Column("estimate", sa.Float,
              comment="eval_set: mean projected to production through the design weights; edge_cases: mean"),
    sa.Column("population", sa.Float, comment="production cases the estimate stands for (eval_set rows)"),
    sa.Column("baseline_mean", sa.Float),
    sa.Column("baseline_estimate", sa.Float),
    sa.Column("diff", sa.Float,
              comment="candidate improvement over the baseline on the same cases (+ = better); eval_set: "
                      "projected to production through the design weights; edge_cases: mean over the entries"),
    sa.Column("diff_ci_low", sa.Float,
              comment="95% CI of diff (eval_set: design-based on cases - strata df; binary scores: Tango score "
                      "interval at diff_effective_n, which the non-inferiority gate reads; continuous: d ± t se)"),
    sa.Column("diff_ci_high", sa.Float),
    sa.Column("diff_std_error", sa.Float,
              comment="standard error of diff (eval_set: design-based; edge_cases: s_d / sqrt(n)); the CI is "
                      "clipped to [-1, 1], this is not"),
    sa.Column("diff_df", sa.Float, comment="degrees of freedom of diff_std_error (eval_set: scored pairs - strata)"),
    sa.Column("diff_discordant_share", sa.Float,
              comment="binary scores: share of pairs that differ (eval_set: design-based), input of the score test"),
    sa.Column("diff_effective_n", sa.Float,
              comment="binary scores: effective number of pairs of the score test (eval_set: design McNemar "
                      "effective discordant pairs / diff_discordant_share, at most the pairs sampled)"),
    sa.Column("mde", sa.Float,
              comment="minimum detectable effect: (t_{1-a} + t_{0.8}) * se, a = (1 - confidence) / 2 one-sided "
                      "(2.5 %), 80 % power, se = diff_std_error (continuous) or sqrt(diff_discordant_share / "
                      "diff_effective_n) (binary); a margin or a difference below it cannot be shown"),
    sa.Column("p_value", sa.Float,
              comment="two-sided paired test of diff = 0; eval_set: design-based (binary: design-adjusted exact "
                      "McNemar; continuous: design t-test); edge_cases: the unweighted test in 'test'"),
    sa.Column("p_value_regression", sa.Float,
              comment="one-sided, H1 the candidate is worse (same test as p_value); the no_regression gate reads it"),
    sa.Column("q_value", sa.Float,
              comment="Benjamini-Hochberg q-value of p_value over the slice rows of the scorer and case set (not "
                      "'all'); compare q, not p, when scanning slices"),
    sa.Column("q_value_regression", sa.Float, comment="the same for p_value_regression"),
    sa.Column("test", sa.String(32),
              comment="the unweighted paired test behind sample_*: mcnemar_exact | mcnemar_chi2 | bootstrap | "
                      "permutation"),
    sa.Column("sample_diff", sa.Float,
              comment="unweighted mean improvement over the slice's cases as sampled (eval_set over-samples "
                      "failures: not production's)"),
    sa.Column("sample_p_value", sa.Float, comment="two-sided p of 'test' on the cases as sampled (unweighted)"),
    sa.Column("sample_p_value_regression", sa.Float,
              comment="one-sided p (candidate worse) of 'test' on the cases as sampled (unweighted)"),
    sa.Column("wins", sa.Integer, comment="cases (unweighted count) where the candidate scored better"),
    sa.Column("losses", sa.Integer, comment="cases (unweighted count) where the candidate scored worse"),
    sa.Column("ties", sa.Integer),
    sa.Column("label_basis", sa.String(16),
              comment="trusted (every eval-set case labeled by review or ground truth) | implicit | mixed | library "
                      "(edge-case rows)"),
    sa.Column("n_self_labeled", sa.Integer,
              comment="eval-set cases of the slice labeled with production's own output from an implicit source "
                      "(the baseline right by construction); 0 on trusted sets"),
    sa.Column("judge_agreement_pairs", sa.Integer,
              comment="llm_judge scorers' eval_set/all row: cases with both a judge verdict and a reviewed label "
                      "(the candidate's call ok); NULL on other rows"),
    sa.Column("judge_observed_agreement", sa.Float,
              comment="share of those pairs where the judge and the reviewers' verdict agree"),
    sa.Column("judge_kappa", sa.Float,
              comment="Cohen's kappa of the judge's pass/fail against the reviewers' verdict on the output (the "
                      "primary scorer applied to the reviewed label) on those pairs"),
    sa.Column("judge_kappa_ci_low", sa.Float,
              comment="CI of judge_kappa at scoring.comparison.confidence (review.agreement.cohens_kappa: Wald with "
                      "the Fleiss-Cohen-Everitt 1969 se, widened by Clopper-Pearson on the agreement when a verdict "
                      "class is sparse); the min_judge_agreement gate criterion reads this bound"),
    sa.Column("judge_kappa_ci_high", sa.Float),
    sa.Index("ix_scored_runs_candidate", "candidate", "created_at"),
    comment="One row per scored run, case set, scorer and slice: estimate, 95% CI, paired comparison.",
)

scored_cases = sa.Table(
    "scored_cases",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("case_set", sa.String(16), primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("scorer", sa.String(64), primary_key=True),
    sa.Column("candidate", sa.String(64), nullable=False),
    sa.Column("entry_id", sa.String(32), primary_key=True,
              comment="edge-case library entry (edge_cases rows); '' for eval_set rows. In the key: after a rule "
                      "change two entries can share a representative event"),
    sa.Column("stratum", sa.String(512)),
    sa.Column("split", sa.String(16)),
    sa.Column("segment", sa.String(256)),
    sa.Column("failure_mode", sa.String(256), comment="production failure tags, or the entry's failure mode"),
    sa.Column("weight", sa.Float, comment="design weight (eval-set cases)"),
    sa.Column("label", sa.Text),
    sa.Column("label_source", sa.String(16),
              comment="reviewed | ground_truth | human_action (implicit) | library (edge-case entries)"),
    sa.Column("output", sa.Text),
    sa.Column("status", sa.String(16), comment="ok | error | timeout (the candidate's call)"),
    sa.Column("error", sa.Text),
    sa.Column("latency_ms", sa.Float),
    sa.Column("cost_usd", sa.Float),
    sa.Column("confidence", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("baseline_output", sa.Text),
    sa.Column("baseline_score", sa.Float),
    sa.Column("outcome", sa.String(8), comment="win | loss | tie against the baseline on this scorer"),
    sa.Index("ix_scored_cases_outcome", "run_id", "scorer", "outcome"),
    comment="Per scored run, case and scorer: output, score, the baseline's, and the win/loss for inspection.",
)

release_gates = sa.Table(
    "release_gates",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, comment="order of the criterion in the context"),
    sa.Column("candidate", sa.String(64), nullable=False),
    sa.Column("context", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("eval_set_version", sa.String(32), nullable=False),
    sa.Column("criterion", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("op", sa.String(4), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("verdict", sa.String(16),
              comment="pass | fail | not_judged (too little evidence: fails unless the criterion allows it)"),
    sa.Column("detail", sa.Text),
    sa.Column("gate_passed", sa.Boolean, nullable=False, comment="every criterion of the run passed"),
    sa.Index("ix_release_gates_candidate", "candidate", "created_at"),
    comment="The release gate of each scored run: one row per criterion with value, threshold and verdict.",
)

RUN_TABLES = (scored_runs, scored_cases, release_gates)
SCORING_TABLES = (production_scores, *RUN_TABLES)
