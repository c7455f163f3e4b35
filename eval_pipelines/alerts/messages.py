"""The message a person reads: what fired, where, the figure with its interval and threshold, and a link. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from eval_pipelines.alerts.delivery import Message
from eval_pipelines.alerts.rules import DAILY_SOURCES, Finding
from eval_pipelines.alerts.settings import RuleConfig

MAX_SUBJECTS_IN_TITLE = 3


def asset_link(base_url: str, asset: str, partition: str) -> str:
    """``<ui_base_url>/assets/<key path>?partition=<partition>``: the asset's page in the Dagster UI."""
    path = "/".join(quote(part, safe="") for part in asset.split("/") if part)
    query = f"?{urlencode({'partition': partition})}" if partition else ""
    return f"{base_url.rstrip('/')}/assets/{path}{query}"


def link_partition(finding: Finding) -> str:
    """The partition the link opens: the day it fired, the day it resolved, or the candidate / check partition."""
    if finding.resolved_on is not None and finding.source in DAILY_SOURCES:
        return finding.resolved_on
    return finding.partition_key


def _line(finding: Finding) -> str:
    if finding.resolved_on is None:
        held = f" (held {finding.days} day(s) in a row)" if finding.days > 1 and finding.source in DAILY_SOURCES \
            else ""
        return f"{finding.subject}: {finding.detail}{held}"
    since = finding.started if finding.started == finding.last else f"{finding.started} .. {finding.last}"
    now = f"; now: {finding.resolved_detail}" if finding.resolved_detail else ""
    return f"{finding.subject}: fired {since}, no longer on {finding.resolved_on}{now}"


def render(findings: Sequence[Finding], rule: RuleConfig, base_url: str) -> Message:
    """One message for findings of one rule, state and partition (grouped: one alert per rule and channel)."""
    first = findings[0]
    state = first.state
    partition = link_partition(first)
    subjects = [f.subject for f in findings]
    shown = ", ".join(subjects[:MAX_SUBJECTS_IN_TITLE]) + (
        f" +{len(subjects) - MAX_SUBJECTS_IN_TITLE} more" if len(subjects) > MAX_SUBJECTS_IN_TITLE else "")
    where = f"on {partition}" if first.source in DAILY_SOURCES else f"for {partition or 'the asset'}"
    fired = f" (fired {first.partition_key})" if state == "resolved" and first.source in DAILY_SOURCES else ""
    title = f"{state.upper()} [{first.severity}] {rule.name} {where}{fired}: {shown}"
    facts = [("Rule", rule.name), ("State", state), ("Source", first.source),
             ("Day" if first.source in DAILY_SOURCES else "Partition", partition or "-"),
             ("Severity", first.severity), ("Findings", str(len(findings)))]
    if rule.description:
        facts.append(("What", rule.description))
    link = asset_link(base_url, first.asset, partition)
    data = {
        "version": 1, "rule": rule.name, "source": first.source, "state": state, "severity": first.severity,
        "partition_key": partition, "asset": first.asset, "description": rule.description,
        "findings": [{
            "finding_id": f.id, "subject": f.subject, "partition_key": f.partition_key, "started": f.started,
            "last": f.last, "resolved_on": f.resolved_on, "metric": f.metric, "op": f.op, "value": f.value,
            "ci_low": f.ci_low, "ci_high": f.ci_high, "threshold": f.threshold, "cases": f.cases,
            "detail": f.detail, "days": f.days} for f in findings],
    }
    return Message(title=title, lines=tuple(_line(f) for f in findings), link=link, facts=tuple(facts), data=data)
