"""The code location: every asset, check, sensor and resource of eval_pipelines.

Loading is light (one YAML parse, no data access), so the location starts in about a second.
"""


import dagster as dg

from eval_pipelines.alerts import assets as alerts
from eval_pipelines.config import load_settings
from eval_pipelines.drift import assets as drift
from eval_pipelines.edge_cases import assets as edge_cases
from eval_pipelines.estimation import assets as estimation
from eval_pipelines.evalsets import assets as evalsets
from eval_pipelines.ingestion.assets import production_logs
from eval_pipelines.ingestion.sensors import landing_sensor
from eval_pipelines.jobs import build_jobs, step_executor
from eval_pipelines.kpis import assets as kpis
from eval_pipelines.labeling.assets import labeled_cases
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.reporting import assets as reporting
from eval_pipelines.resources import build_resources
from eval_pipelines.review import assets as review
from eval_pipelines.scoring import assets as scoring

# One module per domain; each exports ASSETS and ASSET_CHECKS (checks declared on an asset travel with it).
DOMAINS = [drift, kpis, evalsets, edge_cases, scoring, review, estimation, alerts, reporting]
ALL_ASSETS = [production_logs, labeled_cases, *(a for domain in DOMAINS for a in domain.ASSETS)]
ALL_ASSET_CHECKS = [c for domain in DOMAINS for c in domain.ASSET_CHECKS]
DOMAIN_SENSORS = [s for domain in DOMAINS for s in getattr(domain, "SENSORS", [])]
# Named jobs (daily_chain, review_round, eval_set_refresh, candidate_runs): eval_pipelines/jobs.py.
JOBS = build_jobs(ALL_ASSETS, daily_partitions)

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition (eager follow-ups, cron refreshes).",
)


def build_definitions() -> dg.Definitions:
    """The code location for the config named by ``$EVAL_PIPELINES_CONFIG`` (else the shipped demo config).

    The environment variable, not an argument, selects the file: partitions, candidate partitions and cron
    conditions are built when their modules are imported, so everything must read the same file.
    """
    settings = load_settings()
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_ASSET_CHECKS,
        jobs=JOBS,
        executor=step_executor,
        sensors=[landing_sensor, automation_sensor, *DOMAIN_SENSORS],
        resources=build_resources(settings),
    )


defs = build_definitions()
