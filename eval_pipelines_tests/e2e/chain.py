"""What the daemon must materialise after files land, derived from the code location itself, and waiting for it.

The asset graph grows while the project does, so nothing here lists assets by name. From
``build_definitions()`` we take the landing sensor's targets (one partition per landed day), then, in topological
order, every asset that (a) has an automation condition, (b) has at least one parent and (c) has only expected
parents. Such an asset is *automation-driven* when its condition holds no cron tick (it follows data), or
*launched by hand* when it does (a cron refresh, e.g. a weekly eval set: the test launches it through GraphQL as
the UI's Materialize button would, once its parents are in). Daily assets are expected for every landed day,
coarser time partitions (the weekly report) for the periods holding those days, other partitioned assets for all
their partitions, unpartitioned assets once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.declarative_automation.operands.operands import CronTickPassedCondition

from eval_pipelines.partitions import partitions_holding
from eval_pipelines_tests.e2e.stack import LOCATION_NAME, ProductionStack, wait_for

LANDING_SENSOR = "landing_sensor"
KPI_ASSET = dg.AssetKey("kpi_daily")
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# A run whose only step failures are blocking checks that said "no" (e.g. a candidate failing its release gate)
# did its job: the asset was materialised and the verdict recorded.
CHECK_VERDICT_ERROR = "DagsterAssetCheckFailedError"


@dataclass(frozen=True)
class Expected:
    key: dg.AssetKey
    partitions: frozenset[str] | None  # None: unpartitioned
    trigger: str  # "landing_sensor" | "automation" | "manual"

    def describe(self) -> str:
        return self.key.to_user_string() + (f"[{','.join(sorted(self.partitions))}]" if self.partitions else "")


def _has_cron(condition: dg.AutomationCondition) -> bool:
    return isinstance(condition, CronTickPassedCondition) or any(_has_cron(c) for c in condition.children)


def expected_materialisations(defs: dg.Definitions, days: list[str]) -> dict[dg.AssetKey, Expected]:
    graph = defs.resolve_asset_graph()
    sensor = defs.resolve_sensor_def(LANDING_SENSOR)
    roots = defs.resolve_job_def(sensor.job_name).asset_layer.selected_asset_keys
    expected: dict[dg.AssetKey, Expected] = {}
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        parents = node.parent_keys
        if key in roots:
            trigger = "landing_sensor"
        elif node.automation_condition is None or not parents or not parents <= expected.keys():
            continue
        else:
            trigger = "manual" if _has_cron(node.automation_condition) else "automation"
        partitions_def = node.partitions_def
        if partitions_def is None:
            partitions = None
        elif isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            # Daily assets: the landed days; coarser ones (the weekly report): the periods holding them.
            partitions = frozenset(partitions_holding(partitions_def, days))
        else:
            partitions = frozenset(partitions_def.get_partition_keys())
        if trigger == "manual" and partitions is not None and \
                not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            raise NotImplementedError(f"{key.to_user_string()}: launching a cron asset with static partitions by "
                                      "hand is not implemented in this test; extend launch_materialisation")
        expected[key] = Expected(key, partitions, trigger)
    return expected


def missing(instance: dg.DagsterInstance, expected: Mapping[dg.AssetKey, Expected]) -> dict[dg.AssetKey, set[str]]:
    """Expected materialisations not yet recorded (an unpartitioned asset missing is ``{"<unpartitioned>"}``)."""
    out: dict[dg.AssetKey, set[str]] = {}
    for key, item in expected.items():
        if item.partitions is None:
            if instance.get_latest_materialization_event(key) is None:
                out[key] = {"<unpartitioned>"}
        else:
            absent = set(item.partitions) - set(instance.get_materialized_partitions(key))
            if absent:
                out[key] = absent
    return out


def run_failures(instance: dg.DagsterInstance) -> list[str]:
    """Failed runs whose failure is something other than a blocking check's verdict, with their errors."""
    problems = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE,
                                                                 dg.DagsterRunStatus.CANCELED])):
        errors = []
        for record in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                             dg.DagsterEventType.RUN_FAILURE}):
            error = getattr(record.dagster_event.event_specific_data, "error", None)
            if error is not None:
                errors.append(error)
        step_errors = [e for e in errors if e.cls_name != CHECK_VERDICT_ERROR]
        if run.status == dg.DagsterRunStatus.CANCELED or not errors or step_errors:
            detail = "; ".join(f"{e.cls_name}: {e.message.strip()[:600]}" for e in step_errors) or "no step error"
            problems.append(f"run {run.run_id[:8]} {run.status.value} {dict(run.tags)}: {detail}")
    return problems


def unfinished_runs(instance: dg.DagsterInstance) -> int:
    return instance.get_runs_count(filters=dg.RunsFilter(statuses=UNFINISHED))


LAUNCH_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}
"""


def launch_materialisation(stack: ProductionStack, defs: dg.Definitions, key: dg.AssetKey,
                           partition: str | None = None) -> str:
    """Launch one asset (with the checks it carries; one partition of it when given) through the webserver's
    GraphQL, as the UI's button does."""
    checks = [c for c in defs.resolve_asset_graph().asset_check_keys if c.asset_key == key]
    tags = [{"key": "eval_pipelines/e2e", "value": "manual"}]
    if partition is not None:
        tags.append({"key": "dagster/partition", "value": partition})
    params = {
        "selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__",
                     "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": key.path}],
                     "assetCheckSelection": [{"assetKey": {"path": c.asset_key.path}, "name": c.name}
                                             for c in checks]},
        "mode": "default",
        "executionMetadata": {"tags": tags},
    }
    result = stack.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", f"launching {key.to_user_string()} failed: {result}"
    return result["run"]["runId"]


@dataclass
class ChainOutcome:
    expected: dict[dg.AssetKey, Expected]
    launched_by_hand: list[str] = field(default_factory=list)
    seconds_to_daily_chain: float = 0.0
    seconds_to_kpis: float = 0.0  # file-to-KPI: until every landed day has its kpi_daily rows
    seconds_to_first_kpi: float = 0.0  # until the first landed day has them (one file's way, days dropped together)
    seconds_to_quiet: float = 0.0


def drive_chain(stack: ProductionStack, instance: dg.DagsterInstance, defs: dg.Definitions, days: list[str],
                dropped_at: float, timeout: float) -> ChainOutcome:
    """Wait (bounded) until every expected materialisation exists and no run is left, launching cron-driven
    assets by hand once their parents are in; fails at once on a run failure other than a check verdict."""
    outcome = ChainOutcome(expected_materialisations(defs, days))
    services = tuple(stack.services)
    graph = defs.resolve_asset_graph()
    manual = {k for k, e in outcome.expected.items() if e.trigger == "manual"}
    # What files alone drive (the daily chain), as opposed to what waits for a hand-launched asset.
    data_driven = {k for k in outcome.expected if k not in manual and not (manual & _ancestors(graph, k))}
    deadline = dropped_at + timeout

    def progress() -> str:
        absent = missing(instance, outcome.expected)
        return (f"missing {({k.to_user_string(): sorted(v) for k, v in absent.items()})}, "
                f"{unfinished_runs(instance)} unfinished run(s), failures {run_failures(instance)}")

    runs_seen = {"count": -1, "since": time.monotonic()}
    # Longer than the interval of the sensors that drive the chain (30 s for landing_sensor and automation_sensor).
    drivers = [s for s in defs.sensors
               if s.name == LANDING_SENSOR or isinstance(s, dg.AutomationConditionSensorDefinition)]
    quiet = max(s.minimum_interval_seconds or 30 for s in drivers) + 10.0

    def step() -> bool:
        failures = run_failures(instance)
        if failures:
            raise AssertionError("runs failed:\n" + "\n".join(failures))
        absent = missing(instance, outcome.expected)
        for key in sorted(manual - {dg.AssetKey.from_user_string(k) for k in outcome.launched_by_hand},
                          key=lambda k: k.to_user_string()):
            if not (graph.get(key).parent_keys & absent.keys()):
                for partition in sorted(outcome.expected[key].partitions or [None]):
                    launch_materialisation(stack, defs, key, partition)
                outcome.launched_by_hand.append(key.to_user_string())
        if (not outcome.seconds_to_first_kpi and KPI_ASSET in outcome.expected
                and len(absent.get(KPI_ASSET, ())) < len(outcome.expected[KPI_ASSET].partitions or [None])):
            outcome.seconds_to_first_kpi = time.monotonic() - dropped_at
        if not outcome.seconds_to_kpis and KPI_ASSET in outcome.expected and KPI_ASSET not in absent:
            outcome.seconds_to_kpis = time.monotonic() - dropped_at
        if not outcome.seconds_to_daily_chain and not (data_driven & absent.keys()):
            outcome.seconds_to_daily_chain = time.monotonic() - dropped_at
        count = instance.get_runs_count()
        if count != runs_seen["count"]:
            runs_seen.update(count=count, since=time.monotonic())
        # Done when everything is in, nothing runs, and no tick has launched anything for longer than the sensors'
        # interval: a follow-up requested by the last tick (e.g. a cumulative asset seeing a late day) is awaited.
        return not absent and unfinished_runs(instance) == 0 and time.monotonic() - runs_seen["since"] > quiet

    wait_for(step, max(deadline - time.monotonic(), 1), "the sensor and automation to materialise "
             + ", ".join(e.describe() for e in outcome.expected.values()), interval=3.0, services=services,
             progress=progress)
    outcome.seconds_to_quiet = time.monotonic() - dropped_at
    return outcome


def _ancestors(graph: AssetGraph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    todo = list(graph.get(key).parent_keys)
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(graph.get(parent).parent_keys)
    return seen


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block only (the instance resolves its env vars when it is built)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def open_instance(stack: ProductionStack) -> dg.DagsterInstance:
    """The stack's instance (deploy/dagster.yaml on PostgreSQL) opened from the test process."""
    with environment(stack.instance_env):
        return dg.DagsterInstance.from_config(str(stack.dagster_home))
