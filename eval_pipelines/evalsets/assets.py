"""Dagster side of the eval sets: the ``eval_set`` asset, refreshed weekly (cron) and on demand.

The asset is not partitioned: each materialisation is a snapshot of the trailing window. It reads the window's
labeled_cases files straight from the lake (two column-pruned passes, see ``evalsets.build``), and writes a new
version to the warehouse only when the content hash is new; the hash is also the asset's data version, so
downstream scored runs can tell a real refresh from a no-op.
"""


from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from eval_pipelines.config import load_settings
from eval_pipelines.evalsets.build import EvalSet, review_days, sample_from_lake, sample_trusted_from_lake
from eval_pipelines.evalsets.design import FAILURE_DIMENSION, NO_FAILURE
from eval_pipelines.evalsets.estimation import describe_interval
from eval_pipelines.evalsets.store import write_version
from eval_pipelines.evalsets.window import Window, lake_days, trailing_window
from eval_pipelines.lake import Lake
from eval_pipelines.metadata import column_schema, markdown_table, percent, percent_interval
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root

DESIGN_CHECK = "eval_set_design"

_SCHEDULE = load_settings().eval_set
# Weekly by default; on_cron also waits until labeled_cases has been updated since the tick, so the refresh sees
# the newest day. A manual materialisation refreshes on demand.
# review_queue (phase one: N per cell) and review_labels (the trusted labels) are dependencies but not triggers:
# with the review loop off or late they never update, and the weekly refresh must not wait for them (labels: auto
# then falls back to the implicit design, said in the metadata).
REFRESH = dg.AutomationCondition.on_cron(_SCHEDULE.refresh_cron, _SCHEDULE.cron_timezone).ignore(
    dg.AssetSelection.assets("review_queue", "review_labels"))


def design_problems(eval_set: EvalSet, requested_size: int, minimum: int) -> list[str]:
    """What is wrong with a drawn design, if anything (empty list: the design is what the plan asked for)."""
    strata = eval_set.strata
    problems = []
    allocation = eval_set.allocation
    if not (allocation.census or allocation.size_raised) and int(strata["sample"].sum()) != requested_size:
        problems.append(f"allocation sums to {int(strata['sample'].sum())}, not {requested_size}")
    # The draw's frame per stratum: its labeled cases (implicit) or its trusted-label cases (trusted).
    available = strata["trusted"] if "trusted" in strata.columns else strata["population"]
    short = strata[(available >= minimum) & (strata["sample"] < minimum)]
    if len(short):
        problems.append(f"{len(short)} stratum/strata with >= {minimum} cases got fewer than {minimum}")
    if len(eval_set.cases) != int(strata["sample"].sum()):
        problems.append("cases and strata sample sizes disagree")
    sampled = strata[strata["sample"] > 0]
    if not np.allclose(sampled["sample"] * sampled["weight"], sampled["population"]):
        problems.append("design weights do not add up to the stratum populations")
    probabilities = eval_set.cases["inclusion_prob"]
    if len(probabilities) and not ((probabilities > 0) & (probabilities <= 1)).all():
        problems.append("inclusion probabilities outside (0, 1]")
    return problems


def _accuracy_table(eval_set: EvalSet) -> pd.DataFrame:
    """Every accuracy figure of the version with its labels and population, corrected and implicit side by side."""
    projected = eval_set.projected
    if eval_set.label_basis != "trusted":
        return pd.DataFrame({
            "figure": ["implicit-label accuracy, whole window", "projected from the eval set (implicit labels)"],
            "value": [percent(eval_set.window_accuracy, 2), percent(projected.estimate, 2)],
            "95% CI": ["exact (census of the window's implicit labels)",
                       percent_interval(projected.ci_low, projected.ci_high, 2)],
            "population": [f"{eval_set.implicit_population:,} labeled cases"] * 2,
            "cases": [eval_set.population, projected.n],
        })
    audit = eval_set.audit
    target = f"{eval_set.target_population:,} ok cases of the window"
    return pd.DataFrame({
        "figure": ["production accuracy from every trusted label (audit)",
                   "production accuracy projected from the eval set", "implicit-label accuracy (biased)"],
        "value": [percent(audit.estimate, 2) if audit else "n/a", percent(projected.estimate, 2),
                  percent(eval_set.window_accuracy, 2)],
        "95% CI": [percent_interval(audit.ci_low, audit.ci_high, 2) if audit else "n/a",
                   percent_interval(projected.ci_low, projected.ci_high, 2), "none (accepted = right by construction)"],
        "population": [target, target, f"{eval_set.implicit_population:,} labeled cases"],
        "cases": [audit.n if audit else 0, projected.n, eval_set.implicit_population],
    })


def _failure_share(strata: pd.DataFrame) -> tuple[float, float]:
    failing = ~strata["stratum"].str.endswith(f"{FAILURE_DIMENSION}={NO_FAILURE}")
    population = float(strata["population"].sum()) or 1.0
    sample = float(strata["sample"].sum()) or 1.0
    return float(strata.loc[failing, "population"].sum()) / population, \
        float(strata.loc[failing, "sample"].sum()) / sample


def eval_set_metadata(eval_set: EvalSet, window: Window, written: bool) -> dict[str, object]:
    projected = eval_set.projected
    population_failing, sample_failing = _failure_share(eval_set.strata)
    strata_preview = eval_set.strata.sort_values("population", ascending=False)[
        ["stratum", "population", "sample", "holdout", "inclusion_prob", "weight", "accuracy"]
    ].round({"inclusion_prob": 5, "weight": 2, "accuracy": 4})
    return {
        "dagster/row_count": eval_set.size,
        "version": eval_set.version,
        "new_version_written": written,
        "window": f"{window.start} – {window.end}",
        "days_in_window": len(window.days),
        "days_missing": dg.MetadataValue.json(window.missing),
        "population": eval_set.population,
        "strata": len(eval_set.strata),
        "holdout_cases": int((eval_set.cases["split"] == "holdout").sum()),
        "label_basis": eval_set.label_basis,
        "target_population": eval_set.target_population,
        "window_accuracy": dg.MetadataValue.float(round(eval_set.window_accuracy, 6)),
        "projected_accuracy": dg.MetadataValue.float(round(projected.estimate, 6)),
        "projected_ci_low": dg.MetadataValue.float(round(projected.ci_low, 6)),
        "projected_ci_high": dg.MetadataValue.float(round(projected.ci_high, 6)),
        "projected_interval": dg.MetadataValue.text(describe_interval(projected)),
        "accuracy": markdown_table(_accuracy_table(eval_set), max_rows=3),
        **({"audit_accuracy": dg.MetadataValue.float(round(eval_set.audit.estimate, 6)),
            "uncovered_population": eval_set.uncovered_population,
            "ground_truth_outside_audit": eval_set.ground_truth_outside_audit,
            "days_without_review": dg.MetadataValue.json(list(eval_set.days_without_review))}
           if eval_set.audit is not None else {}),
        "oversampled_share": dg.MetadataValue.md(
            f"cases in over-sampled failure groups: {population_failing:.1%} of the window, "
            f"{sample_failing:.1%} of the set"),
        "allocation": dg.MetadataValue.json({
            "requested": eval_set.plan["size"], "allocated": int(eval_set.strata["sample"].sum()),
            "census": eval_set.allocation.census, "size_raised_for_minimums": eval_set.allocation.size_raised}),
        "strata_table": markdown_table(strata_preview, max_rows=40, max_chars=120),
        "plan": dg.MetadataValue.json(eval_set.plan),
        "preview": markdown_table(eval_set.cases[["event_id", "stratum", "split", "weight", "label", "ai_output",
                                                  "input_text"]], max_chars=60),
        "dagster/column_schema": column_schema(eval_set.cases),
    }


@dg.asset(
    deps=["labeled_cases", "review_queue", "review_labels"],
    group_name="evaluation",
    kinds={"python", "parquet", "sql"},
    pool="warehouse",
    automation_condition=REFRESH,
    description=(
        "A versioned eval set of the trailing window (eval_set.window_days) on trusted labels: a stratified "
        "random sample of the review loop's audited cases with their reviewed (else ground-truth) label, each "
        "with its inclusion probability through window -> audit -> draw, so scores on it project back to all ok "
        "cases of production with a confidence interval and production is never scored against its own output "
        "(reads review_queue for each day's audit-stratum sizes N and selection, review_labels for the verdicts) "
        "(eval_set.labels: auto falls back to the implicit-label design when the window has no review data, "
        "named in label_basis). Written to "
        "eval_set_versions / eval_set_strata / eval_set_cases; a version (content hash) is immutable and an "
        "unchanged input writes nothing. Refreshed on eval_set.refresh_cron and on demand."
    ),
    check_specs=[dg.AssetCheckSpec(DESIGN_CHECK, asset="eval_set",
                                   description="The drawn design matches the plan: size, minimum per stratum, "
                                               "weights adding up to the stratum populations.")],
)
def eval_set(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    settings = project.load()
    config = settings.eval_set
    lake = Lake(lake_root(settings))
    window = trailing_window(lake_days(lake), config.window_days, datetime.now(UTC).date(), config.include_today)
    features = [*settings.features.numeric, *settings.features.categorical]
    # Trusted labels whenever the window has review data (auto) or always (trusted): production is then never
    # scored against its own output (docs/eval_sets.md, "Trusted labels"). Implicit only by choice or for want of
    # a review loop, and named as such (label_basis).
    trusted = config.labels == "trusted" or (config.labels == "auto" and bool(review_days(lake, window.days)))
    built = None
    basis_reason = {"trusted": "eval_set.labels: trusted", "implicit": "eval_set.labels: implicit",
                    "auto": "eval_set.labels: auto, review data in the window"}[config.labels]
    if config.labels == "auto" and not trusted:
        basis_reason = "eval_set.labels: auto, no review_queue / review_labels in the window: implicit fallback"
    if trusted:
        try:
            built = sample_trusted_from_lake(lake, window, config, features)
        except LookupError as error:
            if config.labels == "trusted":
                raise dg.Failure(f"eval set on trusted labels: {error}") from None
            context.log.warning(f"{error}; falling back to implicit labels (eval_set.labels: auto)")
            basis_reason = f"eval_set.labels: auto, implicit fallback: {error}"
        except ValueError as error:
            raise dg.Failure(f"eval set on trusted labels: {error}") from None
    if built is None:
        built = sample_from_lake(lake, window, config, features)
        if config.labels == "auto":
            context.log.warning("eval set on IMPLICIT labels (no trusted label in the window): an accepted case's "
                                "label is production's own output, so comparisons with production are biased toward "
                                "it. Run the review loop for trusted labels.")
    if built.population == 0:
        raise dg.Failure(f"no labeled case in labeled_cases {window.start} – {window.end}: nothing to sample "
                         "(is the human-in-the-loop data or ground truth reaching the logs?)")
    if built.days_without_review:
        context.log.warning(f"{len(built.days_without_review)} day(s) of the window have no review data and are "
                            f"outside the projection: {list(built.days_without_review)}")
    written = write_version(warehouse.engine(), built, datetime.now(UTC), context.run.run_id)
    context.log.info(
        f"eval set {built.version}: {built.size:,} of {built.population:,} labeled cases "
        f"({window.start} – {window.end}); {'written' if written else 'unchanged, nothing written'}"
    )
    if window.missing:
        context.log.warning(f"{len(window.missing)} day(s) of the window have no labeled_cases: {window.missing}")
    problems = design_problems(built, config.size, config.min_per_stratum)
    return dg.MaterializeResult(
        metadata={**eval_set_metadata(built, window, written), "label_basis_reason": basis_reason},
        data_version=dg.DataVersion(built.version),
        check_results=[dg.AssetCheckResult(
            check_name=DESIGN_CHECK, passed=not problems,
            description="; ".join(problems) or "design as planned",
            metadata={"strata": len(built.strata), "allocated": int(built.strata["sample"].sum()),
                      "requested": config.size},
        )],
    )


ASSETS = [eval_set]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []
