"""``eval-pipelines gate --candidate NAME``: the release gate of a candidate's latest scored run, for people and CI.

Prints the table the blocking ``release_gate`` check shows in the Dagster UI, read from the warehouse table
``release_gates``. Exit codes: 0 every criterion passes, 1 at least one fails, 2 a usage or data error (unknown
candidate, no scored run yet, no warehouse tables).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from eval_pipelines.config import PROJECT_ROOT, load_settings
from eval_pipelines.scoring.gate import render_gate
from eval_pipelines.scoring.settings import scoring_config
from eval_pipelines.scoring.store import has_tables, latest_run, read_gate
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url


def utc(value: object) -> pd.Timestamp:
    """A stored ``created_at`` as a UTC timestamp.

    PostgreSQL returns ``timestamptz`` values aware in the session's time zone (not necessarily UTC); SQLite returns
    them naive, as written: the UTC wall clock the asset stored.
    """
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _cmd_gate(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))
    config = scoring_config(settings)
    names = [c.name for c in config.candidates]
    if args.candidate not in names:
        print(f"unknown candidate {args.candidate!r}; configured candidates: {', '.join(names) or 'none'}",
              file=sys.stderr)
        return 2
    engine = create_warehouse_engine(settings.storage.warehouse_url, PROJECT_ROOT)
    if not has_tables(engine):
        print(f"{safe_url(engine)} has no scored runs yet: materialise scored_runs for partition "
              f"{args.candidate!r} first", file=sys.stderr)
        return 2
    run = latest_run(engine, args.candidate)
    if run is None:
        print(f"no scored run of {args.candidate!r} yet: materialise scored_runs for partition {args.candidate!r} "
              "(e.g. in the Dagster UI, or `dagster asset materialize --select scored_runs --partition "
              f"{args.candidate}`)", file=sys.stderr)
        return 2
    gate = read_gate(engine, run["run_id"])
    created = utc(run["created_at"])
    verdict = "PASS" if bool(run["gate_passed"]) else "FAIL"
    print(f"release gate for {args.candidate} (context {run['context']}): {verdict}")
    print(f"run {run['run_id']} at {created:%Y-%m-%d %H:%M:%S} UTC on eval set {run['eval_set_version']}")
    if args.candidate and config.candidate(args.candidate).gate != run["context"]:
        print(f"note: the config now names gate context {config.candidate(args.candidate).gate!r}; re-run the "
              "candidate to judge it there", file=sys.stderr)
    print()
    print(render_gate(gate))
    return 0 if bool(run["gate_passed"]) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gate`` command to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "gate", help="print a candidate's release gate and exit 0 (pass), 1 (fail) or 2 (error)",
        description="The release gate of the candidate's latest scored run, from the warehouse table "
                    "release_gates: every criterion with its value, threshold and verdict. Exit 0 when all pass, "
                    "1 when one fails, 2 on a usage or data error.")
    parser.add_argument("--candidate", required=True, help="candidate name (a scored_runs partition)")
    parser.set_defaults(handler=_cmd_gate)
