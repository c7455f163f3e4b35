"""Delivering one alert message: Slack, Microsoft Teams, a signed JSON webhook, or e-mail over SMTP. No Dagster.

Payloads follow each receiver's documented format:

- **Slack incoming webhook**: ``{"text": ..., "blocks": [...]}`` (Block Kit ``header``, ``section`` with ``mrkdwn``
  text, ``context``); ``text`` is the notification fallback.
- **Microsoft Teams** (Workflows "When a Teams webhook request is received", and the older connectors): a message
  with one Adaptive Card attachment, ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": {"type": "AdaptiveCard", ...}}]}``.
- **Generic webhook**: the message as JSON, signed when ``secret_env`` is set: header ``X-Eval-Pipelines-Signature:
  sha256=<hex>`` is HMAC-SHA256 over ``<timestamp>.<body>`` with the timestamp (Unix seconds) in
  ``X-Eval-Pipelines-Timestamp``, so a receiver can reject replays (:func:`verify_signature`).
- **E-mail**: a plain-text message over SMTP (``smtplib``), STARTTLS or implicit TLS, optional login.

:func:`deliver` never raises: it retries transient failures (connection errors, timeouts, HTTP 429 and 5xx) with
exponential backoff, and returns what happened, so a failed delivery is recorded and retried on the next tick and
never fails the pipeline step that found the problem. Secrets (URL, signing secret, SMTP password) are read from
the environment at send time and never appear in the result, the payload or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from eval_pipelines.alerts.settings import ChannelConfig

SIGNATURE_HEADER = "X-Eval-Pipelines-Signature"
TIMESTAMP_HEADER = "X-Eval-Pipelines-Timestamp"
USER_AGENT = "eval-pipelines-alerts/1"


@dataclass(frozen=True)
class Message:
    """What a person reads, independent of the channel."""

    title: str
    lines: tuple[str, ...]  # one line per finding (figure, CI, threshold)
    link: str
    facts: tuple[tuple[str, str], ...]  # (label, value): rule, state, day, severity ...
    data: Mapping[str, Any]  # the machine-readable body of the generic webhook (no secrets)

    @property
    def text(self) -> str:
        return "\n".join([self.title, *(f"- {line}" for line in self.lines), f"Open in Dagster: {self.link}"])


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    attempts: int
    error: str | None = None  # what failed, never a secret
    status_code: int | None = None


# ---------------------------------------------------------------------------------------------------------- payloads


def slack_payload(message: Message) -> dict[str, Any]:
    fields = "  ".join(f"*{label}:* {value}" for label, value in message.facts)
    body = "\n".join(f"• {line}" for line in message.lines)
    return {
        "text": f"{message.title} <{message.link}|open in Dagster>",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.title[:150], "emoji": False}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": fields[:3000]}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{message.link}|Open the asset in Dagster>"}},
        ],
    }


def teams_payload(message: Message) -> dict[str, Any]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in message.facts]},
            *({"type": "TextBlock", "text": line, "wrap": True} for line in message.lines),
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Dagster", "url": message.link}],
    }
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def webhook_payload(message: Message) -> dict[str, Any]:
    return {"title": message.title, "text": message.text, "link": message.link, **message.data}


def payload_for(kind: str, message: Message) -> dict[str, Any]:
    """The JSON body a channel of ``kind`` receives (e-mail: the subject and text)."""
    if kind == "slack":
        return slack_payload(message)
    if kind == "teams":
        return teams_payload(message)
    if kind == "webhook":
        return webhook_payload(message)
    return {"subject": message.title, "text": message.text}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None,
                     tolerance_seconds: float = 300.0) -> bool:
    """What a receiver does: the signature matches (constant-time) and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(sign(secret, timestamp, body), signature)


# ---------------------------------------------------------------------------------------------------------- sending


class _Permanent(Exception):
    """A failure a retry cannot fix (HTTP 4xx other than 429, missing configuration, SMTP refusal)."""


def _env(name: str | None, what: str) -> str:
    value = os.environ.get(name or "")
    if not value:
        raise _Permanent(f"environment variable {name} ({what}) is not set")
    return value


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT,
                                              **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as error:
        code = int(error.code)
        if code == 429 or code >= 500:
            raise OSError(f"HTTP {code} from the receiver") from None
        raise _Permanent(f"HTTP {code} from the receiver (check the channel's URL and payload)") from None


def _send_http(channel: ChannelConfig, message: Message) -> int:
    url = _env(channel.url_env, "the channel's URL")
    if not url.startswith(("http://", "https://")):
        raise _Permanent(f"{channel.url_env} does not hold an http(s) URL")
    body = json.dumps(payload_for(channel.kind, message), ensure_ascii=False, default=str).encode("utf-8")
    headers: dict[str, str] = {}
    if channel.kind == "webhook" and channel.secret_env:
        timestamp = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(_env(channel.secret_env, "the signing secret"), timestamp, body)}
    return _post(url, body, headers, channel.timeout_seconds)


def _send_email(channel: ChannelConfig, message: Message) -> int:
    host = _env(channel.host_env, "the SMTP host")
    email = EmailMessage()
    email["Subject"] = message.title
    email["From"] = channel.sender or ""
    email["To"] = ", ".join(channel.recipients)
    email.set_content(message.text)
    context = ssl.create_default_context() if channel.security != "none" else None
    try:
        if channel.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, channel.port, timeout=channel.timeout_seconds,
                                                    context=context)
        else:
            client = smtplib.SMTP(host, channel.port, timeout=channel.timeout_seconds)
        with client:
            if channel.security == "starttls":
                client.starttls(context=context)
            if channel.username_env:
                client.login(_env(channel.username_env, "the SMTP user"),
                             _env(channel.password_env, "the SMTP password"))
            refused = client.send_message(email)
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
            smtplib.SMTPNotSupportedError) as error:
        raise _Permanent(f"SMTP refused: {type(error).__name__}") from None
    except smtplib.SMTPException as error:
        raise OSError(f"SMTP error: {type(error).__name__}: {error}") from None
    if refused:
        raise _Permanent(f"SMTP refused {len(refused)} recipient(s)")
    return 250


def deliver(channel: ChannelConfig, message: Message, sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """Send ``message`` on ``channel``: 1 + ``retries`` attempts, waiting ``backoff_seconds * 2**i`` between them.

    Never raises; the result says whether it was delivered, how many attempts it took and, if not, why.
    """
    send = _send_email if channel.kind == "email" else _send_http
    attempts = 0
    error = "not attempted"
    for attempt in range(channel.retries + 1):
        attempts += 1
        try:
            return DeliveryResult(True, attempts, None, send(channel, message))
        except _Permanent as failure:
            return DeliveryResult(False, attempts, str(failure))
        except (OSError, TimeoutError, ValueError) as failure:  # refused, reset, timed out, 5xx
            reason = getattr(failure, "reason", None)
            error = f"{type(failure).__name__}: {reason if reason is not None else failure}"
        except Exception as failure:  # never into the caller: record it instead
            error = f"{type(failure).__name__}: {failure}"
        if attempt < channel.retries:
            sleep(channel.backoff_seconds * 2 ** attempt)
    return DeliveryResult(False, attempts, error[:500])
