"""``eval-pipelines alerts``: evaluate every alert rule once and deliver, for cron or CI (docs/alerts.md#cli).

The same code and the same once-per-finding state (``alert_events``) as ``alerts_sensor``: running both never sends
a finding twice. Failed blocking checks are read from the Dagster instance of ``$DAGSTER_HOME`` when it is set (else
rules on checks see none, with a note). ``--dry-run`` prints what would be sent and records nothing.
Exit codes: 0 evaluated (and everything due was delivered), 1 a delivery failed (recorded, retried next time),
2 a config error or an unreadable warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import sqlalchemy as sa

from eval_pipelines.config import PROJECT_ROOT, load_settings
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url


def _checks(settings) -> tuple[object | None, str | None]:
    if not any(rule.on == "checks" for rule in settings.alerts.rules):
        return None, None
    if not os.environ.get("DAGSTER_HOME"):
        return None, "DAGSTER_HOME is not set: rules on checks see no check evaluations"
    import dagster as dg

    from eval_pipelines.alerts.sensors import blocking_check_keys, check_evaluations
    from eval_pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        return check_evaluations(instance, blocking_check_keys(defs.resolve_asset_graph())), None


def _cmd_alerts(args: argparse.Namespace) -> int:
    from eval_pipelines.alerts.service import run_alerts

    settings = load_settings(getattr(args, "config", None))
    engine = create_warehouse_engine(settings.storage.warehouse_url, PROJECT_ROOT)
    try:
        checks, note = _checks(settings)
        report = run_alerts(settings, engine, checks, dry_run=args.dry_run)
    except sa.exc.OperationalError as error:
        print(f"cannot read the warehouse {safe_url(engine)}: {error.orig}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for line in ([note] if note else []) + report.notes:
        print(f"note: {line}")
    verb = "would send" if args.dry_run else "due"
    for item in report.planned:
        assert item.message is not None
        print(f"\n[{item.channel}] {verb}: {item.message.title}")
        for line in item.message.lines:
            print(f"  - {line}")
        print(f"  {item.message.link}")
        if args.dry_run and args.payload:
            print(json.dumps(item.payload, indent=2, ensure_ascii=False, default=str))
    print(("\ndry run, nothing sent or recorded: " if args.dry_run else "\n") + report.summary())
    return 1 if report.failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``alerts`` command to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "alerts", help="evaluate the alert rules once and deliver what is due",
        description="Evaluate every rule of alerts.rules over the warehouse (and the Dagster instance's blocking "
                    "checks), and deliver each new or resolved finding once per channel, recorded in alert_events.")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent; send and record nothing")
    parser.add_argument("--payload", action="store_true", help="with --dry-run: also print each channel's JSON")
    parser.set_defaults(handler=_cmd_alerts)
