"""``eval-pipelines demo-review``: the demo's reviewers answer the outbox into the inbox (docs/review.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval_pipelines.config import load_settings


def _cmd_demo_review(args: argparse.Namespace) -> int:
    from eval_pipelines.demo.reviewers import answer_outbox

    settings = load_settings(args.config)
    truth = Path(args.truth)
    if not truth.is_dir():
        print(f"{truth}: no truth directory; write one with `eval-pipelines generate-logs ... --truth-out {truth}`",
              file=sys.stderr)
        return 2
    if not 0.0 <= args.error_rate <= 1.0:
        print(f"--error-rate must be in [0, 1], got {args.error_rate}", file=sys.stderr)
        return 2
    outbox = settings.resolve_path(settings.review.outbox_dir)
    inbox = settings.resolve_path(settings.review.inbox_dir)
    days = answer_outbox(outbox, inbox, truth, args.error_rate, args.seed)
    if not days:
        print(f"no outbox day of {outbox} has a truth file in {truth}: materialise review_queue first",
              file=sys.stderr)
        return 2
    for item in days:
        print(f"{item.day}: {item.verdicts} verdict(s) on {item.tasks} task(s), {item.errors} deliberate error(s)"
              + (f", {item.without_truth} without truth" if item.without_truth else "")
              + ("" if item.written else " (unchanged)"))
    print(f"answered {len(days)} day(s) into {inbox}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo-review", help="demo only: answer the review outbox from the simulator's truth")
    parser.add_argument("--truth", required=True, help="truth directory written by generate-logs --truth-out")
    parser.add_argument("--error-rate", type=float, default=0.03, help="share of verdicts that are wrong")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=_cmd_demo_review)
