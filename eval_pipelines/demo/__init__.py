"""Demo data: a deterministic generator of production logs for a support-ticket triage copilot."""

from eval_pipelines.demo.generator import (
    FEATURE_COLUMNS,
    MANIFEST_NAME,
    OUTPUT_COLUMNS,
    DayConditions,
    DayCounts,
    GenerationSummary,
    ScenarioPlan,
    generate_day_frame,
    generate_day_table,
    generate_logs,
    plan_scenario,
)

__all__ = [
    "FEATURE_COLUMNS",
    "MANIFEST_NAME",
    "OUTPUT_COLUMNS",
    "DayConditions",
    "DayCounts",
    "GenerationSummary",
    "ScenarioPlan",
    "generate_day_frame",
    "generate_day_table",
    "generate_logs",
    "plan_scenario",
]
