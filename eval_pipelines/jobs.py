"""The named jobs: what the Runs page and the Overview timeline show instead of ``__ASSET_JOB``.

* ``daily_chain`` (one run per day): every daily asset but the review round, from production_logs to the KPIs,
  drift and production scores, with their checks. The landing sensor launches it for each new or changed day, so a
  landed file reaches kpi_daily in ONE run (one run start, no automation tick between the steps); the blocking
  checks still stop the steps downstream of a failed check inside that run.
* ``review_round`` (one run per day): the daily assets of group ``review`` (audit sample and reviewed labels).
  Found by group, so review assets added later join it without a change here.
* ``eval_set_refresh``: the assets over the whole history (eval set, edge-case library, KPI definitions) that the
  candidate runs read.
* ``candidate_runs`` (one run per candidate): ``scored_runs`` and its release gate.

The sensors and ``eval-pipelines materialize`` launch these jobs. Declarative automation (the automation sensor)
cannot: Dagster launches every automation-requested run under its implicit asset job, so follow-ups of late data
and the eval set's cron refresh still appear as ``__ASSET_JOB`` runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

DAILY_CHAIN_JOB = "daily_chain"
REVIEW_ROUND_JOB = "review_round"
EVAL_SET_REFRESH_JOB = "eval_set_refresh"
CANDIDATE_RUNS_JOB = "candidate_runs"
REVIEW_GROUP = "review"
SCORED_RUNS = dg.AssetKey("scored_runs")


def _group(asset: dg.AssetsDefinition) -> str | None:
    return next(iter(asset.group_names_by_key.values()), None)


def downstream_of(assets: Sequence[dg.AssetsDefinition], root: dg.AssetKey) -> set[dg.AssetKey]:
    """Keys of the assets that depend, directly or not, on ``root`` (not ``root`` itself)."""
    found: set[dg.AssetKey] = set()
    changed = True
    while changed:
        changed = False
        for asset in assets:
            if asset.key not in found and asset.dependency_keys & (found | {root}):
                found.add(asset.key)
                changed = True
    return found


def upstream_of(assets: Sequence[dg.AssetsDefinition], root: dg.AssetKey) -> set[dg.AssetKey]:
    """Keys of the assets ``root`` depends on, directly or not (not ``root`` itself); source assets excluded."""
    by_key = {asset.key: asset for asset in assets}
    found: set[dg.AssetKey] = set()
    frontier = [root]
    while frontier:
        key = frontier.pop()
        for dependency in by_key[key].dependency_keys if key in by_key else ():
            if dependency in by_key and dependency not in found:
                found.add(dependency)
                frontier.append(dependency)
    return found


def job_segments(assets: Sequence[dg.AssetsDefinition], job_of: dict[dg.AssetKey, str]
                 ) -> list[tuple[str, list[dg.AssetsDefinition]]]:
    """The runs one partition of ``assets`` needs when they belong to several jobs: ``(job, assets)`` in an order
    that respects every dependency among them, with as few runs as that allows.

    A day's assets cross jobs both ways (labeled_cases → review_queue → review_labels → production_scores), so
    running one job's assets for the day and then the other's would read the audit before it was drawn. Each run
    takes every asset of its job whose dependencies (among ``assets``) are done; the first job is chosen so the
    number of runs is smallest (ties: the order of ``assets``).
    """
    keys = {asset.key for asset in assets}

    def plan(first: str) -> list[tuple[str, list[dg.AssetsDefinition]]]:
        done: set[dg.AssetKey] = set()
        segments: list[tuple[str, list[dg.AssetsDefinition]]] = []
        job = first
        while len(done) < len(assets):
            taken: list[dg.AssetsDefinition] = []
            progress = True
            while progress:  # the closure: an asset of this job whose inputs this run makes is taken too
                progress = False
                for asset in assets:
                    if asset.key in done or asset in taken or job_of[asset.key] != job:
                        continue
                    if (asset.dependency_keys & keys) <= done | {a.key for a in taken}:
                        taken.append(asset)
                        progress = True
            if taken:
                segments.append((job, taken))
                done |= {a.key for a in taken}
            left = [a for a in assets if a.key not in done]
            ready = [job_of[a.key] for a in left if (a.dependency_keys & keys) <= done]
            if left and not ready:
                raise ValueError("dependency cycle among " + ", ".join(sorted(a.key.to_user_string() for a in left)))
            job = ready[0] if ready else job
        return segments

    jobs = list(dict.fromkeys(job_of[asset.key] for asset in assets))
    return min((plan(job) for job in jobs), key=len) if jobs else []


def job_assets(assets: Sequence[dg.AssetsDefinition], daily: dg.PartitionsDefinition
               ) -> dict[str, list[dg.AssetsDefinition]]:
    """The assets of each named job (a job whose list is empty is not defined), in the order the CLI runs them.

    Unpartitioned assets downstream of the candidate runs (a report over them, say) are in no job: the CLI runs
    them last, after the candidates.
    """
    after_candidates = downstream_of(assets, SCORED_RUNS)
    return {
        DAILY_CHAIN_JOB: [a for a in assets if a.partitions_def == daily and _group(a) != REVIEW_GROUP],
        REVIEW_ROUND_JOB: [a for a in assets if a.partitions_def == daily and _group(a) == REVIEW_GROUP],
        EVAL_SET_REFRESH_JOB: [a for a in assets if a.partitions_def is None and a.key not in after_candidates],
        CANDIDATE_RUNS_JOB: [a for a in assets if a.key == SCORED_RUNS],
    }


# Every run's steps (named jobs and automation's __ASSET_JOB alike) start as forks of one forkserver that has
# already imported the code location and Great Expectations, instead of spawning fresh interpreters: a spawned step
# re-imports dagster, pandas and scipy (2.5 s) and the ingestion check Great Expectations (3.7 s more), which was
# most of a landed file's way to kpi_daily (issue 14: 8 steps of one day took 58 s wall, 40 s CPU with spawn).
# Still a process per step, unlike the in-process executor, which busy-waits for pool slots (run_control.py).
FORKSERVER_PRELOAD = ["eval_pipelines.definitions", "great_expectations", "great_expectations.expectations"]
step_executor = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}}, name="forkserver_multiprocess")


_DESCRIPTIONS = {
    DAILY_CHAIN_JOB: "One landing day through ingestion, labels, drift, KPIs and production scores, with every "
                     "check (blocking checks stop what depends on them). Launched by landing_sensor.",
    REVIEW_ROUND_JOB: "One day's review round: the audit sample sent to reviewers and the reviewed labels.",
    EVAL_SET_REFRESH_JOB: "The assets over the whole history: eval set, edge-case library, KPI definitions.",
    CANDIDATE_RUNS_JOB: "One candidate replayed on the current eval set and judged by its release gate. Launched by "
                        "candidate_change_sensor.",
}


# Built here, by key, so candidate_change_sensor can target the job object itself: any Definitions holding the
# sensor then holds its job (a domain's tests build Definitions from the domain's own lists).
candidate_runs_job = dg.define_asset_job(CANDIDATE_RUNS_JOB, selection=dg.AssetSelection.assets(SCORED_RUNS),
                                         description=_DESCRIPTIONS[CANDIDATE_RUNS_JOB],
                                         tags={"eval_pipelines/job": CANDIDATE_RUNS_JOB})


def build_jobs(assets: Sequence[dg.AssetsDefinition], daily: dg.PartitionsDefinition
               ) -> list[dg.UnresolvedAssetJobDefinition]:
    jobs = []
    for name, members in job_assets(assets, daily).items():
        if not members:
            continue
        if name == CANDIDATE_RUNS_JOB:
            jobs.append(candidate_runs_job)
            continue
        # By key, from the lists above: the review round is every DAILY asset of group "review" (found by group, so
        # it grows with the group; a non-daily asset there would give the job two partitionings, which Dagster
        # refuses, so such an asset joins eval_set_refresh instead).
        jobs.append(dg.define_asset_job(name, selection=dg.AssetSelection.assets(*members),
                                        description=_DESCRIPTIONS[name],
                                        tags={"eval_pipelines/job": name}))
    return jobs
