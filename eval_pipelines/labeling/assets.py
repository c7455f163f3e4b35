"""Dagster side of labeling: ``labeled_cases``, the daily cases every evaluation asset reads."""


import dagster as dg
import pandas as pd

from eval_pipelines.automation import FOLLOW_UPSTREAM_ANY_DAY
from eval_pipelines.labeling.labels import FAILURE_TAGS, TextGrading, derive_labels
from eval_pipelines.metadata import column_schema, markdown_table
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource


def label_cases(production_logs: pd.DataFrame, low_confidence_below: float,
                slow_decision_seconds: float, text_systems: dict[str, TextGrading] | None = None) -> pd.DataFrame:
    """Labels and failure tags for a day of events (their text is already PII-masked by production_logs)."""
    return derive_labels(production_logs, low_confidence_below, slow_decision_seconds, text_systems)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="labeling",
    kinds={"python", "parquet"},
    io_manager_key="lake_io_manager",
    automation_condition=FOLLOW_UPSTREAM_ANY_DAY,
    description=(
        "One day of production cases with the implicit label from the human decision (or ground truth), "
        "whether the AI was right, failure-mode tags; free text arrives PII-masked from production_logs. Every "
        "evaluation asset (eval sets, drift, KPIs, edge cases) reads this, never the raw logs."
    ),
)
def labeled_cases(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, production_logs: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    settings = project.load().labeling
    cases = label_cases(production_logs, settings.low_confidence_below, settings.slow_decision_seconds,
                        settings.text_systems())
    labeled = cases["is_labeled"]
    accuracy = cases.loc[labeled, "ai_correct"].astype(float).mean() if labeled.any() else float("nan")
    tag_counts = {tag: int(cases[f"tag_{tag}"].sum()) for tag in FAILURE_TAGS}
    context.log.info(f"{len(cases):,} cases, {int(labeled.sum()):,} labeled")
    return dg.Output(
        cases,
        metadata={
            "dagster/row_count": len(cases),
            "labeled_cases": int(labeled.sum()),
            "labeled_share": dg.MetadataValue.float(float(labeled.mean()) if len(cases) else 0.0),
            "ai_accuracy_on_labeled": dg.MetadataValue.float(round(float(accuracy), 4)),
            "failure_tags": markdown_table(pd.DataFrame(
                {"tag": list(tag_counts), "cases": list(tag_counts.values())}), max_rows=len(tag_counts)),
            "preview": markdown_table(cases[["event_id", "input_text", "ai_output", "user_action", "label",
                                             "correctness", "failure_tags"]]),
            "dagster/column_schema": column_schema(cases),
        },
    )
