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

    start = args.start_date or (datetime.now(UTC).date() - timedelta(days=args.days))
    summary = generate_logs(Path(args.out), days=args.days, events_per_day=args.events_per_day, seed=args.seed,
                            fmt=args.format, start_date=start, files_per_day=args.files_per_day)
    print(f"wrote {summary.total_events:,} events over {args.days} day(s) from {start} to {args.out} "
          f"({args.format}, seed {args.seed})")
    return 0


def _landing_days(settings) -> list[str]:
    from eval_pipelines.ingestion.landing import scan_landing

    return sorted(scan_landing(settings.resolve_path(settings.source.landing_dir), settings.source.format))


def _cmd_materialize(args: argparse.Namespace) -> int:
    import dagster as dg

    from eval_pipelines.definitions import ALL_ASSETS
    from eval_pipelines.partitions import daily_partitions
    from eval_pipelines.resources import build_resources

    settings = load_settings(args.config)
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run through `make demo` or export DAGSTER_HOME=$PWD/.dagster_home",
              file=sys.stderr)
        return 2
    valid = set(daily_partitions.get_partition_keys())
    outside = [d for d in args.days if d not in valid]
    if outside:  # a day named on the command line is never skipped silently
        print(f"day(s) outside the daily partitions ({settings.partitions.start_date} .. today, YYYY-MM-DD): "
              f"{', '.join(outside)}", file=sys.stderr)
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

    def run(assets: list, partition_key: str | None, label: str) -> bool:
        pools = {asset.op.pool for asset in assets if asset.op.pool}
        result = supervisor.run(
            lambda tags: dg.materialize(assets, partition_key=partition_key, instance=instance, resources=resources,
                                        raise_on_error=False, tags={"eval_pipelines/trigger": "cli", **tags},
                                        run_config=run_config),
            pools)
        evaluations = [c for c in result.get_asset_check_evaluations() if not c.passed]
        # A failed WARN check (drift, for instance) is news, not a failure: only ERROR checks fail the command.
        failed = [c.asset_check_key.to_user_string() for c in evaluations
                  if c.severity == dg.AssetCheckSeverity.ERROR]
        warned = [c.asset_check_key.to_user_string() for c in evaluations
                  if c.severity != dg.AssetCheckSeverity.ERROR]
        materialized = len(result.get_asset_materialization_events())
        # A run that fails only because a blocking check failed did its work: the check is the verdict.
        crashed = not result.success and not failed
        ok = not crashed and (not failed or args.checks_advisory)
        status = "ok" if result.success and not failed else ("FAILED" if crashed else "CHECK FAILED")
        print(f"{label}: run {result.run_id[:8]} {status}: {materialized} asset(s) materialised"
              + (f", failed checks: {', '.join(failed)}" if failed else "")
              + (f", warnings: {', '.join(warned)}" if warned else ""), flush=True)
        return ok

    # Daily assets day by day, oldest first; then the assets over the whole history (eval set, library,
    # definitions); then assets partitioned otherwise (one run per candidate), which read what came before.
    daily = [a for a in ALL_ASSETS if a.partitions_def == daily_partitions]
    unpartitioned = [a for a in ALL_ASSETS if a.partitions_def is None]
    other = [a for a in ALL_ASSETS if a.partitions_def is not None and a.partitions_def != daily_partitions]
    outcomes: list[bool] = []
    try:
        with supervisor:
            outcomes.extend(run(daily, day, day) for day in days)
            if unpartitioned:
                outcomes.append(run(unpartitioned, None, "whole history"))
            for asset in other:
                for key in asset.partitions_def.get_partition_keys():
                    outcomes.append(run([asset], key, f"{asset.key.to_user_string()}[{key}]"))
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
    print(f"\n{sum(outcomes)}/{len(outcomes)} run(s) ok")
    return 0 if all(outcomes) else 1


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

    generate = commands.add_parser("generate-logs", help="write demo production logs in the landing layout")
    generate.add_argument("--out", required=True, help="landing directory to write into")
    generate.add_argument("--days", type=int, default=21)
    generate.add_argument("--events-per-day", type=int, default=3000)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl")
    generate.add_argument("--files-per-day", type=int, default=2)
    generate.add_argument("--start-date", type=date.fromisoformat, default=None,
                          help="first day, YYYY-MM-DD (default: DAYS days before today, so the last day is yesterday)")
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
    materialize.set_defaults(handler=_cmd_materialize)

    check = commands.add_parser("check-config", help="validate the configuration file and exit")
    check.set_defaults(handler=_cmd_check_config)

    from eval_pipelines.drift.cli import register as register_drift
    from eval_pipelines.kpis.cli import register as register_kpis
    from eval_pipelines.scoring.cli import register as register_gate

    for register in (register_drift, register_kpis, register_gate):
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
