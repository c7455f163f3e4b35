"""``eval-pipelines``: the command line for people and CI.

Exit codes: 0 success, 1 the work ran but something failed (a run, a check), 2 a usage, config or data error.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from eval_pipelines.config import CONFIG_ENV_VAR, ConfigError, load_settings

# Here, not imported from run_control: that imports Dagster, which `--help` and generate-logs do not need.
DEFAULT_WAIT_TIMEOUT_S = 600.0


def _cmd_generate_logs(args: argparse.Namespace) -> int:
    from eval_pipelines.demo.generator import generate_logs

    if args.late_file_for is not None:
        from eval_pipelines.demo.imperfections import write_late_file

        events = max(1, args.events_per_day // 10)
        path = write_late_file(Path(args.out), args.late_file_for, events, args.seed, args.reply_share)
        print(f"wrote a late file for {args.late_file_for}: {path} ({events:,} events)")
        return 0
    start = args.start_date or (datetime.now(UTC).date() - timedelta(days=args.days))
    summary = generate_logs(Path(args.out), days=args.days, events_per_day=args.events_per_day, seed=args.seed,
                            fmt=args.format, start_date=start, files_per_day=args.files_per_day,
                            truth_dir=Path(args.truth_out) if args.truth_out else None,
                            reply_share=args.reply_share)
    print(f"wrote {summary.total_events:,} events over {args.days} day(s) from {start} to {args.out} "
          f"({args.format}, seed {args.seed})")
    if args.imperfect:
        from eval_pipelines.demo.imperfections import add_flawed_rows

        if args.format != "jsonl":
            print("--imperfect needs --format jsonl", file=sys.stderr)
            return 2
        flaws = add_flawed_rows(Path(args.out), start + timedelta(days=args.days // 3))
        print(f"added {flaws.quarantined} rows to quarantine and {flaws.duplicates} re-sent duplicates to "
              f"{flaws.day} ({flaws.path.name})")
    return 0


def _landing_days(settings) -> list[str]:
    from eval_pipelines.ingestion.location import landing_days

    return sorted(landing_days(settings))


def _partition_days(days: list[str], valid: set[str], start: date) -> str | None:
    """The error for the first day named on the command line that is not a date, or not a partition; else None."""
    not_dates = []
    for day in days:
        try:
            if date.fromisoformat(day).isoformat() != day:
                raise ValueError(day)
        except ValueError:
            not_dates.append(day)
    if not_dates:
        return f"not a date (expected YYYY-MM-DD, e.g. {start.isoformat()}): {', '.join(not_dates)}"
    outside = [d for d in days if d not in valid]
    if outside:  # a day named on the command line is never skipped silently
        last = max(valid) if valid else "none"
        return (f"day(s) outside the daily partitions, which run from partitions.start_date {start} to {last} "
                f"(today, UTC): {', '.join(outside)}")
    return None


def _cmd_materialize(args: argparse.Namespace) -> int:
    import dagster as dg

    from eval_pipelines.definitions import ALL_ASSET_CHECKS, ALL_ASSETS, JOBS
    from eval_pipelines.jobs import (
        CANDIDATE_RUNS_JOB,
        DAILY_CHAIN_JOB,
        EVAL_SET_REFRESH_JOB,
        REVIEW_ROUND_JOB,
        downstream_of,
        job_segments,
    )
    from eval_pipelines.jobs import job_assets as named_job_assets
    from eval_pipelines.partitions import daily_partitions, partitions_holding
    from eval_pipelines.resources import build_resources

    settings = load_settings(args.config)
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run through `make demo` or export DAGSTER_HOME=$PWD/.dagster_home",
              file=sys.stderr)
        return 2
    selected = _selected_keys(ALL_ASSETS, args.downstream_of, args.upstream_of, args.exclude)
    if isinstance(selected, str):
        print(selected, file=sys.stderr)
        return 2
    valid = set(daily_partitions.get_partition_keys())
    problem = _partition_days(args.days, valid, settings.partitions.start_date)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    days = [d for d in (args.days or _landing_days(settings)) if d in valid]
    if not days:
        print("no partition days to materialise: the landing directory has no day folders inside the partitions",
              file=sys.stderr)
        return 2
    from eval_pipelines.run_control import RunStopped, RunSupervisor, RunWaitTimeout

    instance = dg.DagsterInstance.get()
    resources = build_resources(settings, args.config)
    run_config = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    supervisor = RunSupervisor(instance, wait_timeout_s=args.wait_timeout)
    # The named jobs (eval_pipelines/jobs.py) bound to this config's resources, so the Runs page shows
    # daily_chain / eval_set_refresh / candidate_runs for CLI runs too.
    definitions = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_ASSET_CHECKS, jobs=JOBS, resources=resources)
    members = named_job_assets(ALL_ASSETS, daily_partitions)
    in_a_job = {a.key for assets in members.values() for a in assets}
    failed_checks: list[str] = []
    warned_checks: list[str] = []
    crashed_runs: list[str] = []
    skipped_assets: list[str] = []
    made_by_last_run: set = set()  # the asset keys the latest run materialised

    def run(job: str | None, assets: list, partition_key: str | None, label: str) -> bool:
        chosen = [a.key for a in assets if selected is None or a.key in selected]
        # A run of a named job executes the whole job unless given the subset: a segment of a day or a selection.
        whole_job = {a.key for a in members[job]} if job is not None else set(chosen)
        subset = chosen if set(chosen) != whole_job else None
        assets = [a for a in assets if a.key in chosen]
        pools = {asset.op.pool for asset in assets if asset.op.pool}
        tags = {"eval_pipelines/trigger": "cli"}
        if job is None:  # an asset in no named job (e.g. one downstream of the candidate runs)
            def launch(extra: dict[str, str]):
                return dg.materialize(assets, partition_key=partition_key, instance=instance, resources=resources,
                                      raise_on_error=False, tags={**tags, **extra}, run_config=run_config)
        else:
            def launch(extra: dict[str, str]):
                return definitions.resolve_job_def(job).execute_in_process(
                    partition_key=partition_key, instance=instance, raise_on_error=False, tags={**tags, **extra},
                    run_config=run_config, asset_selection=subset)
        result = supervisor.run(launch, pools)
        evaluations = [c for c in result.get_asset_check_evaluations() if not c.passed]
        # A failed WARN check (drift, for instance) is news, not a failure: only ERROR checks fail the command.
        # Each failed check is named with its partition and its own one-line description (a failing release gate
        # reads "naive_rules: FAIL: <criteria> (context default, 5 criteria)").
        failed = [_check_line(c) for c in evaluations if c.severity == dg.AssetCheckSeverity.ERROR]
        warned = [_check_line(c) for c in evaluations if c.severity != dg.AssetCheckSeverity.ERROR]
        failed_checks.extend(failed)
        warned_checks.extend(warned)
        materialized = len(result.get_asset_materialization_events())
        # A run that fails only because a blocking check failed did its work: the check is the verdict.
        crashed = not result.success and not failed
        if crashed:
            crashed_runs.append(f"{label} (run {result.run_id[:8]})")
        ok = not crashed and (not failed or args.checks_advisory)
        status = "ok" if result.success and not failed else ("FAILED" if crashed else "CHECK FAILED")
        print(f"{label}: run {result.run_id[:8]} {status}: {materialized} asset(s) materialised"
              + (f"; failed: {'; '.join(failed)}" if failed else "")
              + (f"; warnings: {len(warned)}" if warned else ""), flush=True)
        made_by_last_run.clear()
        made_by_last_run.update(event.asset_key for event in result.get_asset_materialization_events())
        return ok

    # Daily assets day by day, oldest first (the daily chain, then the review round); then the assets over the
    # whole history (eval set, library, definitions); then one run per candidate; then anything left.
    leftover = [a for a in ALL_ASSETS if a.key not in in_a_job]
    outcomes: list[bool] = []
    try:
        with supervisor:
            def wanted(assets: list) -> bool:
                return any(selected is None or a.key in selected for a in assets)

            # A day's assets in dependency order, one run per stretch of the same job (ingestion and labels, the
            # audit sample and its verdicts, then what reads them): see jobs.job_segments.
            daily = [a for job in (DAILY_CHAIN_JOB, REVIEW_ROUND_JOB) for a in members[job] if wanted([a])]
            job_of = {a.key: job for job in (DAILY_CHAIN_JOB, REVIEW_ROUND_JOB) for a in members[job]}
            segments = job_segments(daily, job_of)
            for day in days:
                blocked: set = set()  # the day's assets not made, and everything downstream of them
                for job, assets in segments:
                    runnable = [a for a in assets if a.key not in blocked]
                    held = [a.key.to_user_string() for a in assets if a.key in blocked]
                    if held:
                        # A crash or a failed blocking check upstream, in an earlier run of the day: as steps of one
                        # run would, these wait for the next materialisation (and the command does not exit 0).
                        print(f"{job}[{day}]: skipped {', '.join(held)}: an upstream asset of the day was not "
                              "materialised above", flush=True)
                        skipped_assets.extend(f"{name}[{day}]" for name in held)
                    if not runnable:
                        continue
                    outcomes.append(run(job, runnable, day, f"{job}[{day}]"))
                    for key in {a.key for a in runnable} - made_by_last_run:
                        blocked |= {key} | downstream_of(ALL_ASSETS, key)
            if members[EVAL_SET_REFRESH_JOB] and wanted(members[EVAL_SET_REFRESH_JOB]):
                outcomes.append(run(EVAL_SET_REFRESH_JOB, members[EVAL_SET_REFRESH_JOB], None,
                                    EVAL_SET_REFRESH_JOB))
            for asset in members[CANDIDATE_RUNS_JOB]:
                if not wanted([asset]):
                    continue
                for key in asset.partitions_def.get_partition_keys():
                    outcomes.append(run(CANDIDATE_RUNS_JOB, [asset], key, f"{CANDIDATE_RUNS_JOB}[{key}]"))
            for asset in (a for a in leftover if wanted([a])):
                # The landed days of a daily asset, the weeks holding them for the weekly quality report.
                keys = partitions_holding(asset.partitions_def, days) if asset.partitions_def is not None \
                    else [None]
                for key in keys:
                    name = asset.key.to_user_string()
                    outcomes.append(run(None, [asset], key, f"{name}[{key}]" if key else name))
    except RunWaitTimeout as error:
        print(f"\n{sum(outcomes)}/{len(outcomes)} run(s) ok before: {error}", file=sys.stderr)
        return 1
    except RunStopped as stopped:
        print(f"\n{sum(outcomes)}/{len(outcomes)} run(s) ok, then {stopped}; the run in progress ended canceled "
              "and its pool slots are free", file=sys.stderr, flush=True)
        if supervisor.abandoned_worker:
            sys.stdout.flush()
            # The stopped run's thread is stuck in a C call; interpreter shutdown would wait on Dagster's threads.
            os._exit(stopped.exit_code)
        return stopped.exit_code
    code = 0 if all(outcomes) and not skipped_assets else 1
    print(_summary(len(outcomes), crashed_runs, failed_checks, warned_checks, args.checks_advisory, code,
                   skipped_assets))
    return code


def _selected_keys(assets: list, downstream: list[str] | None, upstream: list[str] | None = None,
                   excluded: list[str] | None = None) -> set | str | None:
    """The keys ``--downstream-of`` / ``--upstream-of`` select (the roots and everything downstream / upstream of
    them; both given: the union), minus ``--exclude``; None for every asset; or the error message naming an
    unknown asset and the known ones."""
    if not downstream and not upstream and not excluded:
        return None
    import dagster as dg

    from eval_pipelines.jobs import downstream_of, upstream_of

    known = {a.key.to_user_string(): a.key for a in assets}
    for option, names in (("--downstream-of", downstream), ("--upstream-of", upstream), ("--exclude", excluded)):
        unknown = [name for name in names or () if name not in known]
        if unknown:
            return f"{option}: unknown asset(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
    keys: set[dg.AssetKey] = set(known.values()) if not downstream and not upstream else set()
    for name in downstream or ():
        keys |= {known[name]} | downstream_of(assets, known[name])
    for name in upstream or ():
        keys |= {known[name]} | upstream_of(assets, known[name])
    keys -= {known[name] for name in excluded or ()}
    if not keys:
        return "the selection is empty: every selected asset is excluded"
    return keys


def _check_line(evaluation) -> str:
    """``asset:check[partition]: description``, one line."""
    key = evaluation.asset_check_key.to_user_string()
    partition = getattr(evaluation, "partition", None)
    description = " ".join((evaluation.description or "failed").split())
    return f"{key}[{partition}]: {description}" if partition else f"{key}: {description}"


def _summary(runs: int, crashed: list[str], failed: list[str], warned: list[str], advisory: bool,
             code: int, skipped: list[str] | None = None) -> str:
    """The closing lines of ``materialize``: what ran, what failed, what was skipped, the exit code and why."""
    skipped = skipped or []
    lines = [f"\n{runs - len(crashed)}/{runs} run(s) completed"
             + (f"; {len(crashed)} crashed: {', '.join(crashed)}" if crashed else "")]
    if skipped:
        lines.append(f"{len(skipped)} asset partition(s) not materialised because an upstream asset of their day "
                     f"was not: {', '.join(skipped[:20])}{' …' if len(skipped) > 20 else ''}")
    if failed:
        lines.append(f"{len(failed)} check(s) failed (severity ERROR)"
                     + (", advisory (--checks-advisory)" if advisory else "") + ":")
        lines.extend(f"  - {line}" for line in failed)
    if warned:
        lines.append(f"{len(warned)} warning(s) (severity WARN, never fail the command):")
        lines.extend(f"  - {line}" for line in warned)
    reason = ("every run completed and no ERROR check failed" if code == 0 and not failed
              else "only checks failed and --checks-advisory was given" if code == 0
              else "a run crashed" if crashed
              else "an ERROR check failed (add --checks-advisory to exit 0)" if failed and not advisory
              else "assets were skipped after a failed blocking check")
    lines.append(f"exit {code}: {reason}")
    return "\n".join(lines)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from eval_pipelines.config_checks import runtime_problems

    settings = load_settings(args.config)
    problems = runtime_problems(settings)
    if problems:
        print(f"{args.config or os.environ.get(CONFIG_ENV_VAR) or 'eval_pipelines.yaml'}: invalid configuration "
              f"({len(problems)} problem(s)):\n" + "\n".join(f"  - {problem}" for problem in problems),
              file=sys.stderr)
        return 2
    print(f"configuration OK: source {settings.source.kind}, "
          f"{len(settings.features.numeric)} numeric / {len(settings.features.categorical)} categorical features")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eval-pipelines", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help=f"config file (default: ${CONFIG_ENV_VAR} or eval_pipelines.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate-logs", help="write demo production logs in the landing layout",
        description="Write demo production logs of a support-ticket triage copilot in the landing layout "
                    "<out>/<YYYY-MM-DD>/part-NNN.<format>, plus _generator_manifest.json (what was written, for "
                    "reconciliation). Deterministic: the same options give byte-identical files.")
    generate.add_argument("--out", required=True, help="landing directory to write into (created if missing)")
    generate.add_argument("--days", type=int, default=21,
                          help="number of consecutive days to write (default 21; `make demo` writes 35 so the "
                               "28-day eval window is full)")
    generate.add_argument("--events-per-day", type=int, default=3000, help="events in each day (default 3000)")
    generate.add_argument("--seed", type=int, default=7,
                          help="random seed; different seeds never produce colliding event ids (default 7)")
    generate.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl",
                          help="file format of the parts (default jsonl)")
    generate.add_argument("--files-per-day", type=int, default=2,
                          help="parts each day is split into, in time order (default 2)")
    generate.add_argument("--start-date", type=date.fromisoformat, default=None,
                          help="first day, YYYY-MM-DD (default: DAYS days before today, so the last day is yesterday)")
    generate.add_argument("--truth-out", default=None, help="also write the hidden true labels, one parquet per day, "
                                                            "here (outside --out), for demo-review")
    generate.add_argument("--reply-share", type=float, default=0.0, metavar="SHARE",
                          help="also write reply_drafts events, a free-text system drafting the reply to this share "
                               "of each day's tickets (0-1, default 0: triage only; `make demo` uses 0.2)")
    generate.add_argument("--imperfect", action="store_true",
                          help="also write, into the day a third of the way in, extra-000.jsonl with 3 rows "
                               "ingestion quarantines (not JSON, confidence 1.7, no event_id) and 4 re-sent "
                               "duplicates (jsonl only)")
    generate.add_argument("--late-file-for", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                          help="write ONLY a late file <day>/late-000.jsonl (EVENTS_PER_DAY/10 new events) into "
                               "that day's folder, as a late upload would, and nothing else")
    generate.set_defaults(handler=_cmd_generate_logs)

    materialize = commands.add_parser("materialize", help="materialise the asset graph for landing days")
    materialize.add_argument("days", nargs="*", help="partition days YYYY-MM-DD (default: every landing day)")
    materialize.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                             help="Dagster console log level (the full event log is in the UI either way)")
    materialize.add_argument("--checks-advisory", action="store_true",
                             help="exit 0 when runs only failed blocking checks (the demo's weak candidate fails its "
                                  "release gate on purpose); runs that crash still exit 1")
    materialize.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT_TIMEOUT_S, metavar="SECONDS",
                             help="give up (exit 1) when a run has waited this long for a pool slot held by another "
                                  "run; the holders are printed every few seconds while waiting "
                                  f"(default {DEFAULT_WAIT_TIMEOUT_S:.0f})")
    materialize.add_argument("--downstream-of", nargs="+", default=None, metavar="ASSET",
                             help="only these assets and every asset downstream of them (e.g. after the reviewers "
                                  "answered: --downstream-of review_labels edge_case_library); their checks run "
                                  "too; default: every asset")
    materialize.add_argument("--upstream-of", nargs="+", default=None, metavar="ASSET",
                             help="only these assets and every asset they depend on (e.g. before a review round: "
                                  "--upstream-of review_queue draws the audit samples and nothing else); with "
                                  "--downstream-of, the union")
    materialize.add_argument("--exclude", nargs="+", default=None, metavar="ASSET",
                             help="leave these assets out of the selection (e.g. what an earlier pass made); "
                                  "runs read their latest materialisation")
    materialize.set_defaults(handler=_cmd_materialize)

    check = commands.add_parser("check-config", help="validate the configuration file and exit")
    check.set_defaults(handler=_cmd_check_config)

    from eval_pipelines.alerts.cli import register as register_alerts
    from eval_pipelines.drift.cli import register as register_drift
    from eval_pipelines.kpis.cli import register as register_kpis
    from eval_pipelines.reporting.cli import register as register_report
    from eval_pipelines.review.cli import register as register_review
    from eval_pipelines.scoring.cli import register as register_gate

    for register in (register_drift, register_kpis, register_gate, register_review, register_alerts, register_report):
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.config:
        # The asset modules read the config when imported (partitions, candidates, cron): point them at the
        # same file as the resources before any handler imports them.
        os.environ[CONFIG_ENV_VAR] = str(Path(args.config).resolve())
    if getattr(args, "days", None) is not None and args.command == "generate-logs" and args.days < 1:
        print("--days must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
