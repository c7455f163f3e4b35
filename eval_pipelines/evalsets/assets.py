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
from eval_pipelines.evalsets.build import EvalSet, sample_from_lake
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
REFRESH = dg.AutomationCondition.on_cron(_SCHEDULE.refresh_cron, _SCHEDULE.cron_timezone)


def design_problems(eval_set: EvalSet, requested_size: int, minimum: int) -> list[str]:
    """What is wrong with a drawn design, if anything (empty list: the design is what the plan asked for)."""
    strata = eval_set.strata
    problems = []
    allocation = eval_set.allocation
    if not (allocation.census or allocation.size_raised) and int(strata["sample"].sum()) != requested_size:
        problems.append(f"allocation sums to {int(strata['sample'].sum())}, not {requested_size}")
    short = strata[(strata["population"] >= minimum) & (strata["sample"] < minimum)]
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
    projected = eval_set.projected
    return pd.DataFrame({
        "figure": ["production accuracy, whole window", "projected from the eval set"],
        "value": [percent(eval_set.window_accuracy, 2), percent(projected.estimate, 2)],
        "95% CI": ["exact (census of the window)", percent_interval(projected.ci_low, projected.ci_high, 2)],
        "cases": [eval_set.population, projected.n],
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
        "window_accuracy": dg.MetadataValue.float(round(eval_set.window_accuracy, 6)),
        "projected_accuracy": dg.MetadataValue.float(round(projected.estimate, 6)),
        "projected_ci_low": dg.MetadataValue.float(round(projected.ci_low, 6)),
        "projected_ci_high": dg.MetadataValue.float(round(projected.ci_high, 6)),
        "projected_interval": dg.MetadataValue.text(describe_interval(projected)),
        "accuracy": markdown_table(_accuracy_table(eval_set), max_rows=2),
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
    deps=["labeled_cases"],
    group_name="evaluation",
    kinds={"python", "parquet", "sql"},
    pool="warehouse",
    automation_condition=REFRESH,
    description=(
        "A versioned eval set: a stratified random sample of the labeled cases of the trailing window "
        "(eval_set.window_days), rich in failure-prone strata, with each case's inclusion probability and design "
        "weight so scores on it project back to production with a confidence interval. Written to "
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
    built = sample_from_lake(lake, window, config, features)
    if built.population == 0:
        raise dg.Failure(f"no labeled case in labeled_cases {window.start} – {window.end}: nothing to sample "
                         "(is the human-in-the-loop data or ground truth reaching the logs?)")
    written = write_version(warehouse.engine(), built, datetime.now(UTC), context.run.run_id)
    context.log.info(
        f"eval set {built.version}: {built.size:,} of {built.population:,} labeled cases "
        f"({window.start} – {window.end}); {'written' if written else 'unchanged, nothing written'}"
    )
    if window.missing:
        context.log.warning(f"{len(window.missing)} day(s) of the window have no labeled_cases: {window.missing}")
    problems = design_problems(built, config.size, config.min_per_stratum)
    return dg.MaterializeResult(
        metadata=eval_set_metadata(built, window, written),
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
