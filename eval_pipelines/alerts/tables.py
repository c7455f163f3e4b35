"""Warehouse table of alerting: ``alert_events``, one row per finding, channel and state (docs/alerts.md).

The table is the once-per-finding memory shared by the sensor and ``eval-pipelines alerts``: a (finding, channel,
state) that has a row with status ``sent`` is never sent again; a ``failed`` row is retried on the next tick and
updated in place (``attempts`` counts every attempt over all ticks).
"""

from __future__ import annotations

import sqlalchemy as sa

from eval_pipelines.warehouse.core import metadata

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, comment="Row id."),
    sa.Column("finding_id", sa.String(32), nullable=False,
              comment="sha256 of (rule, partition_key, subject, started), first 32 hex chars: the finding's identity."),
    sa.Column("rule", sa.String(128), nullable=False, comment="Rule name (alerts.rules[].name)."),
    sa.Column("source", sa.String(32), nullable=False,
              comment="drift | kpi | release_gate | checks | estimate | automation_bias."),
    sa.Column("partition_key", sa.String(256), nullable=False,
              comment="Partition the finding is on: the day it fired (daily sources), the candidate (release "
                      "gates), the check's partition ('' when unpartitioned)."),
    sa.Column("subject", sa.String(512), nullable=False,
              comment="What it is about: 'column (kind)', system[/model_version/segment], candidate/context, "
                      "asset:check[partition]."),
    sa.Column("started", sa.String(256), nullable=False,
              comment="Where the episode started: the day (ISO) or the run id of the first failing run/evaluation."),
    sa.Column("last_seen", sa.String(256), nullable=False,
              comment="The last day / run where the condition held when the row was written."),
    sa.Column("resolved_on", sa.String(256), comment="First day / run where it no longer held (state resolved)."),
    sa.Column("channel", sa.String(128), nullable=False, comment="Channel name (alerts.channels[].name)."),
    sa.Column("channel_kind", sa.String(16), nullable=False, comment="webhook | slack | teams | email."),
    sa.Column("state", sa.String(16), nullable=False, comment="firing | resolved: what this message announced."),
    sa.Column("status", sa.String(16), nullable=False, comment="sent | failed (retried on the next tick)."),
    sa.Column("attempts", sa.Integer, nullable=False, comment="Delivery attempts over all ticks (count)."),
    sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False, comment="UTC."),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False, comment="UTC."),
    sa.Column("sent_at", sa.DateTime(timezone=True), comment="UTC time of the successful delivery; NULL if failed."),
    sa.Column("error", sa.Text, comment="Why the last attempt failed (never a URL or secret); NULL when sent."),
    sa.Column("severity", sa.String(16), nullable=False, comment="minor | major (the rule's)."),
    sa.Column("value", sa.Float, comment="The figure that fired (rate, effect size, failed criteria)."),
    sa.Column("ci_low", sa.Float, comment="Lower bound of its confidence interval, when it has one."),
    sa.Column("ci_high", sa.Float, comment="Upper bound of its confidence interval."),
    sa.Column("threshold", sa.Float, comment="The threshold it was compared with (relative rules: that day's)."),
    sa.Column("cases", sa.Float, comment="Cases behind the figure, what min_cases counts: a rate's denominator, a "
                                         "reviewed rate's audited verdicts, an estimate's realized_cases "
                                         "(docs/alerts.md#min_cases-for_days-and-relative-thresholds)."),
    sa.Column("summary", sa.Text, nullable=False, comment="The finding's line of the message."),
    sa.Column("payload", sa.Text, nullable=False,
              comment="The JSON the channel received (or would have), without URL or secret."),
    sa.UniqueConstraint("finding_id", "channel", "state", name="uq_alert_events_finding_channel_state"),
    sa.Index("ix_alert_events_status", "status", "state"),
    comment="Alerts: one row per finding, channel and state (firing, resolved), with delivery status and attempts.",
)

ALERT_TABLES = (alert_events,)
