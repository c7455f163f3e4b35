"""Once per finding: what to send given the findings and ``alert_events``, and recording what was sent. No Dagster.

For every finding and channel of its rule (:func:`plan`):

- firing: sent once; nothing more while it keeps firing (a re-tick, a re-materialised day with the same verdict);
- resolved: one "resolved" message, also when its firing message never got through (it says what fired);
- a failed message is retried on the next tick, until ``alerts.max_attempts`` attempts in all;
- a finding never announced whose last firing day is more than ``alerts.max_age_days`` before the newest day is
  left alone (a first run over a year of history does not page anyone for last spring).

Findings of one rule, channel, state and partition travel in one message (a drift day with four drifted columns is
one alert per rule and channel), but each has its own row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from eval_pipelines.alerts.delivery import DeliveryResult, Message, payload_for
from eval_pipelines.alerts.messages import link_partition, render
from eval_pipelines.alerts.rules import DAILY_SOURCES, Finding
from eval_pipelines.alerts.settings import AlertsConfig
from eval_pipelines.alerts.tables import alert_events
from eval_pipelines.warehouse.core import ensure_tables

STATE_COLUMNS = ("id", "finding_id", "rule", "partition_key", "subject", "started", "channel", "state", "status",
                 "attempts")
_CHUNK = 500


@dataclass
class Planned:
    """One message to send: findings of one rule, state and partition, on one channel."""

    rule: str
    channel: str
    state: str
    partition: str
    findings: list[Finding]
    existing: dict[str, dict] = field(default_factory=dict)  # finding id -> its failed row (a retry)
    message: Message | None = None
    payload: dict | None = None


def read_state(engine: sa.Engine, finding_ids: Iterable[str], rules: Sequence[str]) -> pd.DataFrame:
    """The rows of ``finding_ids`` plus the open findings of ``rules`` (firing announced, no resolved row yet)."""
    ensure_tables(engine, [alert_events])
    columns = [alert_events.c[name] for name in STATE_COLUMNS]
    ids = sorted(set(finding_ids))
    frames = []
    with engine.connect() as connection:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            frames.append(pd.DataFrame(connection.execute(
                sa.select(*columns).where(alert_events.c.finding_id.in_(chunk))).mappings().all(),
                columns=list(STATE_COLUMNS)))
        if rules:
            resolved = sa.select(alert_events.c.finding_id).where(alert_events.c.state == "resolved")
            frames.append(pd.DataFrame(connection.execute(
                sa.select(*columns).where(alert_events.c.state == "firing", alert_events.c.rule.in_(list(rules)),
                                          alert_events.c.finding_id.not_in(resolved))).mappings().all(),
                columns=list(STATE_COLUMNS)))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(STATE_COLUMNS))
    return frame.drop_duplicates("id") if len(frame) else frame


def pending_failures(engine: sa.Engine, max_attempts: int) -> int:
    """Messages that failed and will be retried: the sensor ticks for them even when no asset changed."""
    ensure_tables(engine, [alert_events])
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(alert_events).where(
            alert_events.c.status == "failed", alert_events.c.attempts < max_attempts)).scalar_one())


def _adopt_open(findings: Sequence[Finding], state: pd.DataFrame) -> list[Finding]:
    """A truncated episode (it reaches the first loaded day) takes the identity of the open finding it continues."""
    if not any(f.truncated for f in findings) or state.empty:
        return list(findings)
    open_rows = state[state["state"] == "firing"]
    resolved_ids = set(state.loc[state["state"] == "resolved", "finding_id"])
    known: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in open_rows.to_dict("records"):
        if row["finding_id"] not in resolved_ids:
            known[(row["rule"], row["subject"])].append(row)
    adopted = []
    for finding in findings:
        candidates = [r for r in known.get((finding.rule, finding.subject), ())
                      if str(r["started"]) <= finding.started] if finding.truncated else []
        if candidates:
            row = max(candidates, key=lambda r: str(r["started"]))
            finding = replace(finding, partition_key=str(row["partition_key"]), started=str(row["started"]),
                              truncated=False)
        adopted.append(finding)
    return adopted


def plan(findings: Sequence[Finding], state: pd.DataFrame, config: AlertsConfig,
         newest_day: date | None) -> tuple[list[Planned], int]:
    """The messages to send now, grouped, and how many findings were too old to announce (never announced)."""
    findings = _adopt_open(findings, state)
    rows_by_key: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    announced: set[str] = set()
    for row in state.to_dict("records"):
        rows_by_key[(row["finding_id"], row["channel"])][row["state"]] = row
        announced.add(row["finding_id"])
    too_old = 0
    groups: dict[tuple[str, str, str, str], Planned] = {}
    for finding in findings:
        fid = finding.id
        if fid not in announced and newest_day is not None and \
                (newest_day - finding.last_day).days > config.max_age_days:
            too_old += 1
            continue
        for channel in finding.channels:
            rows = rows_by_key.get((fid, channel), {})
            row = rows.get(finding.state)
            if row is not None and (row["status"] == "sent" or row["attempts"] >= config.max_attempts):
                continue  # delivered, or given up after max_attempts
            key = (finding.rule, channel, finding.state, link_partition(finding))
            group = groups.setdefault(key, Planned(finding.rule, channel, finding.state, key[3], []))
            group.findings.append(finding)
            if row is not None:
                group.existing[fid] = row
    ordered = sorted(groups.values(), key=lambda p: (p.state != "firing", p.partition, p.rule, p.channel))
    return ordered, too_old


def prepare(planned: Sequence[Planned], config: AlertsConfig) -> None:
    """Render each message and its channel's payload (what dry-run prints and alert_events keeps)."""
    rules = {r.name: r for r in config.rules}
    for item in planned:
        item.message = render(item.findings, rules[item.rule], config.ui_base_url)
        item.payload = payload_for(config.channel(item.channel).kind, item.message)


def record(engine: sa.Engine, item: Planned, result: DeliveryResult, kind: str, now: datetime) -> None:
    """Write the outcome of one message: insert new rows, update retried ones; one transaction."""
    assert item.message is not None
    payload = json.dumps(item.payload, ensure_ascii=False, default=str)
    status = "sent" if result.ok else "failed"
    with engine.begin() as connection:
        for finding, line in zip(item.findings, item.message.lines, strict=True):
            values = {"status": status, "last_attempt_at": now, "sent_at": now if result.ok else None,
                      "error": None if result.ok else result.error, "last_seen": finding.last,
                      "resolved_on": finding.resolved_on, "value": finding.value, "ci_low": finding.ci_low,
                      "ci_high": finding.ci_high, "threshold": finding.threshold, "cases": finding.cases,
                      "summary": line, "payload": payload}
            existing = item.existing.get(finding.id)
            if existing is not None:
                connection.execute(sa.update(alert_events).where(alert_events.c.id == existing["id"]).values(
                    attempts=alert_events.c.attempts + result.attempts, **values))
            else:
                connection.execute(sa.insert(alert_events).values(
                    finding_id=finding.id, rule=finding.rule, source=finding.source,
                    partition_key=finding.partition_key, subject=finding.subject, started=finding.started,
                    channel=item.channel, channel_kind=kind, state=item.state, attempts=result.attempts,
                    first_attempt_at=now, severity=finding.severity, **values))


def send_all(engine: sa.Engine, planned: Sequence[Planned], config: AlertsConfig,
             deliver: Callable[..., DeliveryResult], now: Callable[[], datetime],
             budget_seconds: float | None = None, clock: Callable[[], float] | None = None) -> tuple[int, int, int]:
    """Deliver up to ``max_deliveries_per_tick`` messages (and within ``budget_seconds``); (sent, failed, left)."""
    import time

    clock = clock or time.monotonic
    started = clock()
    sent = failed = 0
    for index, item in enumerate(planned):
        if index >= config.max_deliveries_per_tick or (
                budget_seconds is not None and clock() - started > budget_seconds):
            return sent, failed, len(planned) - index
        channel = config.channel(item.channel)
        assert item.message is not None
        try:
            result = deliver(channel, item.message)
        except Exception as error:  # a delivery function must not break the tick: record it as failed
            result = DeliveryResult(False, 1, f"{type(error).__name__}: {error}"[:500])
        record(engine, item, result, channel.kind, now())
        sent, failed = sent + int(result.ok), failed + int(not result.ok)
    return sent, failed, 0


def daily(finding: Finding) -> bool:
    return finding.source in DAILY_SOURCES
