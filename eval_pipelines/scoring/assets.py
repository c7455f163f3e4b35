"""Dagster side of scoring: ``production_scores`` (daily), ``scored_runs`` (one partition per candidate) and its
non-blocking ``release_gate`` check (severity ERROR), plus the sensor that re-runs a candidate whose definition changed.

The maths is in the plain modules next to this one (runs, summarise, stats, gate); here is only wiring, I/O and
metadata.
"""


import hashlib
import importlib.util
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from eval_pipelines.automation import follow_upstream_any_day_ignoring_missing
from eval_pipelines.config import Settings, load_settings
from eval_pipelines.edge_cases.assets import lifecycle_observation
from eval_pipelines.edge_cases.store import load_library, record_run_results
from eval_pipelines.evalsets.store import load_eval_set
from eval_pipelines.jobs import CANDIDATE_RUNS_JOB, candidate_runs_job
from eval_pipelines.lake import InLake, Lake
from eval_pipelines.metadata import (
    column_schema,
    markdown_table,
    percent,
    percent_interval,
    percent_points_with_interval,
)
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.scoring.adapters import HttpSystem, LoggedSystem, SystemUnderTest, build_system
from eval_pipelines.scoring.gate import render_gate
from eval_pipelines.scoring.production import (
    POPULATIONS,
    score_production,
    score_reviewed,
    summarise_production,
    summarise_reviewed,
)
from eval_pipelines.scoring.runs import (
    UNSCORED_KNOWN_ERRORS,
    ScoredRun,
    attach_logged,
    edge_cases_frame,
    eval_set_cases_frame,
    restrict_to_systems,
    score_run,
    unreplayable_run,
)
from eval_pipelines.scoring.settings import (
    PRODUCTION,
    LoggedCandidate,
    PredictionsCandidate,
    PythonCandidate,
    ScoringConfig,
    scoring_config,
)
from eval_pipelines.scoring.store import (
    RunInfo,
    candidate_comparison,
    logged_details,
    write_production_scores,
    write_run,
)
from eval_pipelines.scoring.summarise import ALL, EDGE_CASE_PASS, EDGE_CASES, EVAL_SET

GATE_CHECK = "release_gate"
SCORED_RUNS = dg.AssetKey("scored_runs")


def _candidate_names() -> list[str]:
    # No candidates configured (the default): no partitions, so nothing is replayed and no run fails for want of one.
    return [c.name for c in scoring_config(load_settings()).candidates]


candidate_partitions = dg.StaticPartitionsDefinition(_candidate_names())

# A scored run follows a *new* eval-set version (the eval_set asset's data version is its content hash, so a
# refresh that changed nothing does not re-run every candidate) and runs a newly configured candidate once. A
# changed candidate is picked up by ``candidate_change_sensor``. It waits for an eval set to exist, and never runs
# while one of its inputs is being written.
FOLLOW_EVAL_SET = (
    (dg.AutomationCondition.newly_missing()
     | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
     .allow(dg.AssetSelection.assets("eval_set"))).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing().allow(dg.AssetSelection.assets("eval_set"))
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("new eval-set version or new candidate")


# ----------------------------------------------------------------------------------------------------------------
# production_scores
# ----------------------------------------------------------------------------------------------------------------


def _headline(rows: pd.DataFrame, scorer: str) -> pd.DataFrame:
    selected = rows[(rows["scorer"] == scorer) & (rows["label_source"] == ALL)]
    return selected[["system", "slice_dim", "slice_value", "n_scored", "mean", "ci_low", "ci_high"]].round(4)


@dg.asset(
    partitions_def=daily_partitions,
    group_name="scoring",
    kinds={"python", "parquet", "sql"},
    io_manager_key="lake_io_manager",
    pool="warehouse",
    deps=[dg.AssetKey("review_queue"), dg.AssetKey("review_labels")],
    # A missing audit never holds the scores back; verdicts arriving later re-run them.
    automation_condition=follow_upstream_any_day_ignoring_missing("review_queue", "review_labels"),
    description=(
        "The deployed system scored against the humans' decisions of the day (accept and override as implicit "
        "labels, ground truth where present) with every configured scorer, by system, model_version and segment "
        "and by label source. Beside the implicit figure (label_source human_action), label_source reviewed projects "
        "the score against the reviewers' adjudicated labels to all the ok cases of the system by the audit's "
        "two-phase design (review_queue + review_labels lake datasets; absent without an audit). Per-case scores "
        "in the lake; summaries in the warehouse table production_scores."
    ),
)
def production_scores(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, warehouse: WarehouseResource,
    labeled_cases: pd.DataFrame,
) -> dg.Output:
    settings = project.load()
    config = scoring_config(settings)
    scored = score_production(labeled_cases, config.scorers)
    rows = summarise_production(scored, config.scorers, config.production_slices, config.comparison.confidence)
    lake = Lake(lake_root(settings))
    audit = "no audit (review_queue / review_labels not in the lake): no reviewed rows"
    try:
        phase_one = lake.read_columns("review_queue", context.partition_key,
                                      ["event_id", "system", "stratum", "review_action", "selected"],
                                      optional=["model_version", "segment"]).to_pandas()
        verdicts = lake.read_columns("review_labels", context.partition_key,
                                     ["event_id", "reviewed_label"]).to_pandas()
    except FileNotFoundError:
        phase_one = None
    if phase_one is not None:
        reviewed = score_reviewed(labeled_cases, phase_one, verdicts, config.scorers)
        reviewed_rows = summarise_reviewed(reviewed, phase_one, config.scorers, config.production_slices,
                                           config.comparison.confidence)
        rows = pd.concat([rows, reviewed_rows], ignore_index=True) if len(reviewed_rows) else rows
        audit = (f"{len(reviewed):,} audited case(s) with a reviewed label projected to {len(phase_one):,} ok "
                 f"cases; {len(reviewed_rows)} reviewed row(s)")
    # Per-case Parquet and warehouse summaries old-or-new together (Lake.publishing; docs/ingestion.md).
    with lake.publishing() as publication:
        uri = publication.stage_table("/".join(context.asset_key.path), context.partition_key, scored)
        write_production_scores(warehouse.engine(), date.fromisoformat(context.partition_key), rows,
                                before_commit=publication.publish)
    overall = rows[(rows["slice_dim"] == ALL) & (rows["label_source"] == ALL)]
    by_scorer = overall.drop_duplicates("scorer").set_index("scorer")
    primary = by_scorer["mean"].get(config.primary_scorer, float("nan")) if len(by_scorer) else float("nan")
    return dg.Output(InLake(uri, len(scored)), metadata={
        "dagster/row_count": len(scored),
        "warehouse_rows": len(rows),
        f"{config.primary_scorer}": dg.MetadataValue.float(round(float(primary), 6)),
        "scores": markdown_table(overall[["system", "scorer", "n_scored", "mean", "ci_low", "ci_high", "p95"]]
                                 .round(6), max_rows=60),
        "by_slice": markdown_table(_headline(rows, config.primary_scorer), max_rows=60),
        "by_label_source": markdown_table(
            rows[(rows["scorer"] == config.primary_scorer) & (rows["slice_dim"] == ALL)]
            [["system", "label_source", "n_scored", "mean", "ci_low", "ci_high"]].round(4), max_rows=20),
        "dagster/column_schema": column_schema(scored),
        "review_audit": dg.MetadataValue.text(audit),
        "populations": dg.MetadataValue.md("\n".join(f"- `{source}`: {text}"
                                                     for source, text in POPULATIONS.items())),
    })


# ----------------------------------------------------------------------------------------------------------------
# scored_runs
# ----------------------------------------------------------------------------------------------------------------


def _baseline_system(settings: Settings, config: ScoringConfig, candidate: str) -> tuple[str, SystemUnderTest]:
    name = config.baseline_of(candidate)
    if name == PRODUCTION:
        return name, LoggedSystem(PRODUCTION)
    return name, build_system(config.candidate(name), settings.resolve_path)


def _needs_logged(config: ScoringConfig, candidate: str) -> bool:
    return isinstance(config.candidate(candidate), LoggedCandidate) or config.baseline_of(candidate) == PRODUCTION \
        or isinstance(config.candidate(config.baseline_of(candidate)), LoggedCandidate)


def _summary_preview(run: ScoredRun, case_set: str) -> pd.DataFrame:
    summary = run.summary
    rows = summary[(summary["case_set"] == case_set) & (summary["slice_dim"] == ALL)]
    return rows[["scorer", "n_scored", "estimate", "ci_low", "ci_high", "p95", "baseline_estimate", "diff",
                 "diff_ci_low", "diff_ci_high", "mde", "p_value", "p_value_regression", "sample_diff", "test", "wins",
                 "losses"]]


def _slice_preview(run: ScoredRun, scorer: str, dimensions: tuple[str, ...]) -> pd.DataFrame:
    summary = run.summary
    rows = summary[(summary["case_set"] == EVAL_SET) & (summary["scorer"] == scorer)
                   & summary["slice_dim"].isin(dimensions)]
    return rows[["slice_dim", "slice_value", "n_scored", "estimate", "ci_low", "ci_high", "baseline_estimate",
                 "diff", "mde", "p_value", "q_value", "p_value_regression", "q_value_regression"]]


def _edge_preview(run: ScoredRun) -> pd.DataFrame:
    summary = run.summary
    rows = summary[(summary["case_set"] == EDGE_CASES) & (summary["scorer"] == EDGE_CASE_PASS)]
    return rows[["slice_value", "n_scored", "mean", "baseline_mean", "wins", "losses"]].rename(
        columns={"slice_value": "failure_mode", "n_scored": "entries", "mean": "pass_rate",
                 "baseline_mean": "baseline_pass_rate"})


def _reviewed_labels(settings: Settings, config: ScoringConfig, timestamps: pd.Series) -> pd.DataFrame | None:
    """The review loop's adjudicated labels (``event_id``, ``reviewed_label``) of the eval-set cases' days, which
    an llm_judge scorer's agreement is measured on; None when no scorer is a judge (nothing to read)."""
    if not any(s.kind == "llm_judge" for s in config.scorers):
        return None
    lake = Lake(lake_root(settings))
    days = sorted({stamp.date().isoformat() for stamp in pd.to_datetime(timestamps, utc=True).dropna()})
    frames = [lake.read_columns("review_labels", day, ["event_id", "reviewed_label"]).to_pandas()
              for day in days if lake.exists("review_labels", day)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["event_id", "reviewed_label"])


def _judge_preview(run: ScoredRun) -> pd.DataFrame:
    return pd.DataFrame([{"judge": name, "pairs": a.n_units, "kappa": a.estimate, "ci_low": a.ci_low,
                          "ci_high": a.ci_high, "note": a.reason} for name, a in run.judge_agreements.items()])


def _lifecycle_applies(config: ScoringConfig, run: ScoredRun) -> bool:
    if config.lifecycle_policy == "never":
        return False
    return config.lifecycle_policy == "always" or run.passed


@dg.asset(
    partitions_def=candidate_partitions,
    deps=["eval_set", "edge_case_library"],
    group_name="scoring",
    kinds={"python", "parquet", "sql"},
    io_manager_key="lake_io_manager",
    pool="warehouse",
    automation_condition=FOLLOW_EVAL_SET,
    description=(
        "One partition per candidate in scoring.candidates: the candidate replayed on the current eval set and the "
        "edge-case library, every case scored, summarised per scorer and slice with the estimate projected to "
        "production (95% CI), compared with the baseline on the same cases (the difference in production with a "
        "design-based test; the unweighted McNemar / paired bootstrap kept for inspection), and "
        "judged by the release gate of its context. Per-case results in the lake and scored_cases; summaries in "
        "scored_runs; the gate in release_gates; edge-case results move the library's lifecycle."
    ),
    # Not blocking: a candidate failing its gate is a finding about the candidate, not a failure of the pipeline.
    # The run succeeds, the asset is materialised (its results are the evidence) and the check reads FAIL (severity
    # ERROR, so `eval-pipelines materialize` still exits 1 without --checks-advisory). Nothing downstream must wait
    # on a verdict: the gate is what people and CI read. Partitioned like the asset, so the check history names
    # the candidate ("naive_rules: FAIL").
    check_specs=[dg.AssetCheckSpec(GATE_CHECK, asset="scored_runs", blocking=False,
                                   partitions_def=candidate_partitions,
                                   description="The release gate of the candidate's context: every criterion "
                                               "with its value, threshold and verdict.")],
)
def scored_runs(
    context: dg.AssetExecutionContext, project: ProjectConfigResource, warehouse: WarehouseResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    settings = project.load()
    config = scoring_config(settings)
    name = context.partition_key
    try:
        candidate = config.candidate(name)
    except KeyError as error:
        raise dg.Failure(str(error.args[0])) from None
    engine = warehouse.engine()
    try:
        version, eval_cases, strata = load_eval_set(engine)
    except LookupError as error:
        raise dg.Failure(f"{error}; scored runs replay the current eval set") from None

    cases = eval_set_cases_frame(eval_cases)
    entries = load_library(engine, config.edge_case_statuses) if config.edge_cases else pd.DataFrame()
    edge = edge_cases_frame(entries) if len(entries) else None
    try:
        cases, strata, edge = restrict_to_systems(cases, strata, edge, candidate.systems)
    except ValueError as error:
        raise dg.Failure(f"candidate {name}: {error}") from None
    if not len(cases):
        # Nothing this candidate can be replayed on (e.g. a reply drafter on a triage-only eval set). Still a run:
        # its rows reach scored_runs and release_gates (a gate NOT JUDGED → FAIL that alerts and the CLI see), and
        # the asset is materialised with no cases.
        reason = f"the eval set {version} has no case of systems {list(candidate.systems or ())}: nothing to replay"
        context.log.warning(f"{name}: {reason}")
        run = unreplayable_run(config, config.gates[candidate.gate], reason)
        info = RunInfo(context.run.run_id, name, datetime.now(UTC), version, config.baseline_of(name),
                       candidate.gate)
        with Lake(lake_root(settings)).publishing() as publication:
            uri = publication.stage_table("/".join(context.asset_key.path), name, run.cases)
            write_run(engine, run, info, [s.name for s in config.scorers], before_commit=publication.publish)
        yield dg.Output(InLake(uri, 0), metadata={"dagster/row_count": 0, "candidate": name,
                                                  "eval_set_version": version, "gate_passed": False,
                                                  "skipped": reason, "gate": dg.MetadataValue.md(render_gate(run.gate)),
                                                  "candidates": _candidates_table(engine, config)})
        yield dg.AssetCheckResult(check_name=GATE_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                  description=f"{name}: NOT JUDGED → FAIL: {reason}",
                                  metadata={"gate": dg.MetadataValue.md(render_gate(run.gate)),
                                            "criteria": len(run.gate), "failed": len(run.failures),
                                            "not_judged": int((run.gate["verdict"] == "not_judged").sum()),
                                            "eval_set_version": version, "run_id": context.run.run_id})
        return
    if _needs_logged(config, name):
        lake = Lake(lake_root(settings))
        details = logged_details(lake, cases["timestamp"], cases["event_id"])
        cases = attach_logged(cases, details)
    baseline_name, baseline = _baseline_system(settings, config, name)
    system = build_system(candidate, settings.resolve_path)
    criteria = config.gates[candidate.gate]
    context.log.info(f"replaying {name} ({candidate.adapter}) on eval set {version}: {len(cases):,} cases"
                     f"{f' + {len(edge):,} library entries' if edge is not None else ''}; baseline {baseline_name}")
    reviewed = _reviewed_labels(settings, config, cases["timestamp"])
    run = score_run(cases, strata, system, baseline, config, criteria, edge, reviewed)

    created_at = datetime.now(UTC)
    info = RunInfo(context.run.run_id, name, created_at, version, baseline_name, candidate.gate)
    cases_out = run.cases.drop(columns=["features"])
    with Lake(lake_root(settings)).publishing() as publication:
        uri = publication.stage_table("/".join(context.asset_key.path), name, cases_out)
        write_run(engine, run, info, [s.name for s in config.scorers], before_commit=publication.publish)
    lifecycle = "not applied"
    if len(run.edge_outcomes) and _lifecycle_applies(config, run):
        update = record_run_results(engine, run.edge_outcomes[["entry_id", "passed"]], context.run.run_id, created_at)
        moved = update.changes.groupby(["from_status", "to_status"]).size()
        lifecycle = ", ".join(f"{a} → {b}: {n}" for (a, b), n in moved.items()) or "no transitions"
        # The library's page follows: its status counts as an observation (issue 14 item 5).
        context.log_event(lifecycle_observation(engine, update.changes, f"scored run of {name}"))
    elif len(run.edge_outcomes):
        lifecycle = f"not applied (lifecycle_policy {config.lifecycle_policy}, gate passed: {run.passed})"

    errors = int((run.cases["status"] != "ok").sum())
    metadata: dict[str, object] = {
        "dagster/row_count": len(run.cases),
        "candidate": name,
        "adapter": candidate.adapter,
        "eval_set_version": version,
        "baseline": baseline_name,
        "gate_context": candidate.gate,
        "gate_passed": run.passed,
        "eval_set_cases": int((run.cases["case_set"] == EVAL_SET).sum()),
        "edge_case_entries": len(run.edge_outcomes),
        "errors": errors,
        "scores": markdown_table(_summary_preview(run, EVAL_SET).round(5), max_rows=30),
        "by_segment": markdown_table(_slice_preview(run, config.primary_scorer, ("segment",)).round(4),
                                     max_rows=30),
        "by_failure_mode": markdown_table(_slice_preview(run, config.primary_scorer, ("failure_mode",)).round(4),
                                          max_rows=30),
        "edge_cases": markdown_table(_edge_preview(run).round(4), max_rows=30),
        "edge_case_lifecycle": lifecycle,
        "losses": markdown_table(run.cases.loc[run.cases["outcome"] == "loss",
                                               ["case_set", "event_id", "input_text", "label", "output",
                                                "baseline_output"]], max_rows=10, max_chars=60),
        "timings_s": dg.MetadataValue.json({k: round(v, 3) for k, v in run.timings.items()}),
        "gate": dg.MetadataValue.md(render_gate(run.gate)),
        "candidates": _candidates_table(engine, config),
    }
    for label, value in (("primary_estimate", _primary(run, config, "estimate")),
                         ("primary_ci_low", _primary(run, config, "ci_low"))):
        metadata[label] = dg.MetadataValue.float(round(value, 6))
    # Known errors (no label, production known wrong) the candidate answered differently: no verdict there.
    unscored = _primary(run, config, UNSCORED_KNOWN_ERRORS)
    metadata["primary_unscored_known_errors"] = 0 if pd.isna(unscored) else int(unscored)
    # Trusted (reviewed / ground-truth) or implicit labels: an implicit set scores production against its own
    # output on accepted cases (docs/scoring.md, "Labels").
    basis = run.summary.loc[run.summary["case_set"] == EVAL_SET, "label_basis"]
    metadata["label_basis"] = str(basis.iloc[0]) if len(basis) else "none"
    self_labeled = _primary(run, config, "n_self_labeled")
    metadata["self_labeled_cases"] = 0 if pd.isna(self_labeled) else int(self_labeled)
    if run.judge_agreements:
        # A judge is trusted only as far as it agrees with people (docs/scoring.md, "LLM judges").
        metadata["judge_agreement"] = markdown_table(_judge_preview(run).round(4), max_rows=10)
        for judge, agreement in run.judge_agreements.items():
            metadata[f"judge_kappa[{judge}]"] = dg.MetadataValue.float(round(agreement.estimate, 6))
            metadata[f"judge_kappa_ci_low[{judge}]"] = dg.MetadataValue.float(round(agreement.ci_low, 6))
            metadata[f"judge_agreement_pairs[{judge}]"] = agreement.n_units
    if isinstance(system, HttpSystem):
        metadata["http"] = dg.MetadataValue.json(vars(system.stats))
    yield dg.Output(InLake(uri, len(cases_out)), metadata=metadata)
    failed = run.failures["criterion"].tolist()
    yield dg.AssetCheckResult(
        check_name=GATE_CHECK,
        passed=run.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{name}: " + ("PASS, all criteria pass" if run.passed else f"FAIL: {', '.join(failed)}")
        + f" (context {candidate.gate}, {len(run.gate)} criteria)",
        metadata={
            "gate": dg.MetadataValue.md(render_gate(run.gate)),
            "criteria": len(run.gate),
            "failed": len(failed),
            "not_judged": int((run.gate["verdict"] == "not_judged").sum()),
            "eval_set_version": version,
            "run_id": context.run.run_id,
        },
    )


def _candidates_table(engine, config: ScoringConfig) -> dg.MetadataValue:
    """Every candidate's latest run side by side (this one included), so one page compares them."""
    frame = candidate_comparison(engine, [c.name for c in config.candidates], config.primary_scorer)
    shown = pd.DataFrame({
        "candidate": frame["candidate"],
        "gate": frame["gate_passed"].map({True: "PASS", False: "FAIL"}).fillna("not run"),
        "failed criteria": frame["failed_criteria"].fillna(""),
        f"{config.primary_scorer} (production)": frame["estimate"].map(percent),
        "95% CI": [percent_interval(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)],
        "vs baseline (95% CI)": [percent_points_with_interval(d, lo, hi) for d, lo, hi in
                                 zip(frame["diff"], frame["diff_ci_low"], frame["diff_ci_high"], strict=True)],
        "baseline": frame["baseline"].fillna(""),
        "eval set": frame["eval_set_version"].fillna(""),
    })
    return markdown_table(shown, max_rows=50, max_chars=120)


def _primary(run: ScoredRun, config: ScoringConfig, statistic: str) -> float:
    summary = run.summary
    row = summary[(summary["case_set"] == EVAL_SET) & (summary["scorer"] == config.primary_scorer)
                  & (summary["slice_dim"] == ALL)]
    return float(row[statistic].iloc[0]) if len(row) else float("nan")


# ----------------------------------------------------------------------------------------------------------------
# Re-run a candidate whose definition changed
# ----------------------------------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def candidate_fingerprint(settings: Settings, config: ScoringConfig, name: str) -> str:
    """A hash of everything that defines a candidate's run: its config, the scorers and gates, and the code or
    file it points at (a python target's module source, a predictions file's size and mtime)."""
    candidate = config.candidate(name)
    parts = [candidate.model_dump_json(), json.dumps([s.model_dump() for s in config.scorers], sort_keys=True,
                                                     default=str),
             json.dumps([c.model_dump() for c in config.gates[candidate.gate]], sort_keys=True, default=str)]
    if isinstance(candidate, PythonCandidate):
        try:
            spec = importlib.util.find_spec(candidate.target.partition(":")[0])
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        parts.append(hashlib.sha256(Path(origin).read_bytes()).hexdigest() if origin and Path(origin).is_file()
                     else "unresolved")
    elif isinstance(candidate, PredictionsCandidate) and "://" not in candidate.path:
        parts.append(_file_digest(settings.resolve_path(candidate.path)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dg.sensor(
    name="candidate_change_sensor",
    job=candidate_runs_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a scored run for every candidate whose definition changed (config, scorers, gate, the "
                "python module's source or the predictions file) since the sensor last looked.",
)
def candidate_change_sensor(context: dg.SensorEvaluationContext, project: ProjectConfigResource) -> \
        dg.SensorResult:
    settings = project.load()
    config = scoring_config(settings)
    known = set(candidate_partitions.get_partition_keys())
    previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = {c.name: candidate_fingerprint(settings, config, c.name) for c in config.candidates
               if c.name in known}
    requests = [dg.RunRequest(run_key=f"{name}:{fingerprint}", partition_key=name, job_name=CANDIDATE_RUNS_JOB,
                              tags={"eval_pipelines/trigger": "candidate_changed"})
                for name, fingerprint in current.items()
                if name in previous and previous[name] != fingerprint]
    # A candidate seen for the first time is left to the asset's automation condition (newly missing).
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))


ASSETS = [production_scores, scored_runs]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []
SENSORS = [candidate_change_sensor]
