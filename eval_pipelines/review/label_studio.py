"""Label Studio as the reviewers' tool: one project per system, tasks exported to it, annotations pulled back.

Plain ``requests`` against Label Studio's documented REST API, no Dagster. Why not the official
``label-studio-sdk``: its 2.x wheel pulls opencv-python-headless, nltk, Pillow, datamodel-code-generator, jsf and
requests-mock as *runtime* dependencies (hundreds of MB) for the five endpoints used here; ``requests`` is already
in every install (Dagster depends on it). Checked against a real Label Studio 1.23 server by
``eval_pipelines_tests/e2e/test_label_studio_roundtrip.py``.

Endpoints used (all under ``<url>/api/``): ``projects/`` (list with ``title`` filter, create, PATCH
``label_config``), ``projects/<id>/import`` (bulk task import), ``tasks/?project=<id>&fields=all`` (paged task
list with their annotations), ``tasks/<id>/`` (PATCH ``overlap``), ``users/`` (annotator emails),
``token/refresh/`` (personal access tokens).

What a project looks like (see docs/review.md, "Connecting Label Studio"):

- one task per selected review task; its ``data`` holds every column of the review_tasks frame (JSON-safe) and the
  display fields the labelling config shows (``input_text``, ``ai_output``, ``user_action``, ``final_output``,
  ``confidence_text``, ``review_note``) as strings;
- the reviewer picks the correct output in a single-choice ``label`` control built from the output vocabulary and
  may write a ``comment``;
- **double review**: a task flagged ``double_review`` gets ``overlap = 2`` (Label Studio's per-task "annotations
  needed"), so the label stream keeps serving it until two *different* annotators have submitted it; the project
  itself keeps ``maximum_annotations = 1``. The task also says so to the reviewer in ``review_note``. Changing the
  project's "Annotations per task" setting in the UI rewrites every task's overlap: don't (documented);
- **idempotency**: a task is identified by ``data.event_id``; an export first lists the project's event_ids and
  imports only the missing ones, so re-running a day creates nothing. An import whose response is lost (timeout,
  5xx) is not blindly retried: the next attempt lists the project again and imports what is still missing.

Tokens: Label Studio 1.18+ gives *personal access tokens* (a JWT refresh token, exchanged at ``/api/token/refresh/``
for a short-lived access token sent as ``Authorization: Bearer``) and, where the organisation enables them,
*legacy tokens* (40 hex characters, sent as ``Authorization: Token``). Both work: a token that parses as a JWT is
treated as a personal access token, anything else as a legacy token. Tokens never appear in messages or reprs.

Reviewer comments come back as typed: callers mask them (PII) before they reach the warehouse.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests

from eval_pipelines.url_secrets import mask_url, url_credentials

LABEL_FROM_NAME = "label"
COMMENT_FROM_NAME = "comment"
DOUBLE_REVIEW_OVERLAP = 2
PAGE_SIZE = 100
IMPORT_CHUNK = 500
RETRY_ATTEMPTS = 4
RETRY_BACKOFF_SECONDS = 0.5
ANNOTATION_COLUMNS = ["event_id", "partition_date", "reviewer", "label", "comment", "reviewed_at", "source"]
REQUIRED_TASK_COLUMNS = ("event_id", "partition_date", "input_text", "ai_output", "user_action", "final_output",
                         "confidence", "double_review")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class LabelStudioError(RuntimeError):
    """A Label Studio call failed or a setting is missing; the message names the (masked) URL and what to do."""


@dataclass(frozen=True)
class LabelStudioConnection:
    """Where the Label Studio server is and the API token to use (read from env vars by ``connection_from_env``)."""

    url: str
    token: str = field(repr=False)
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        return (f"LabelStudioConnection(url={mask_url(self.url)!r}, token='***', "
                f"timeout_seconds={self.timeout_seconds!r})")

    __str__ = __repr__

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


def connection_from_env(url_env: str, token_env: str, timeout_seconds: float = 30.0,
                        environ: Mapping[str, str] | None = None) -> LabelStudioConnection:
    """The connection named by two environment variables; a missing or unsafe one fails naming it and the fix."""
    env = os.environ if environ is None else environ
    url = (env.get(url_env) or "").strip()
    if not url:
        raise LabelStudioError(
            f"review.label_studio is configured but the environment variable {url_env} is not set: set it to the "
            f"Label Studio server's base URL (e.g. export {url_env}=http://label-studio.internal:8080), or remove "
            "review.label_studio from the config to review with files only")
    if not url.lower().startswith(("http://", "https://")):
        raise LabelStudioError(f"{url_env}={mask_url(url)!r} is not an http(s) URL: set it to the Label Studio "
                               "server's base URL, e.g. http://label-studio.internal:8080")
    found = url_credentials(url)
    if found:
        raise LabelStudioError(
            f"{url_env}={mask_url(url)!r} holds a credential ({', '.join(found)}): URLs end up in logs and run "
            f"metadata. Put only the server's address in {url_env} and the API token in {token_env}")
    token = (env.get(token_env) or "").strip()
    if not token:
        raise LabelStudioError(
            f"review.label_studio is configured but the environment variable {token_env} is not set: set it to a "
            "Label Studio API token (Label Studio → Account & Settings → Personal Access Token, or the legacy "
            f"Access Token where your organisation enables it), e.g. export {token_env}=<token>")
    if timeout_seconds <= 0 or not math.isfinite(timeout_seconds):
        raise LabelStudioError(f"review.label_studio.timeout_seconds must be a positive number, got {timeout_seconds}")
    return LabelStudioConnection(url=url, token=token, timeout_seconds=float(timeout_seconds))


# ---------------------------------------------------------------------------------------------- labelling config
def _vocabulary(values: Iterable[Any]) -> list[str]:
    """Distinct non-empty labels, first-seen order (the order reviewers see)."""
    seen: dict[str, None] = {}
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        text = str(value)
        if text.strip():
            seen.setdefault(text, None)
    return list(seen)


def labelling_config(vocabulary: Sequence[str]) -> str:
    """Label Studio labelling-config XML: the case shown read-only, one single choice per vocabulary value, a comment.

    Built with ElementTree so every value is XML-escaped (``&``, ``<``, quotes) exactly once.
    """
    choices = _vocabulary(vocabulary)
    if not choices:
        raise LabelStudioError("labelling_config needs a non-empty output vocabulary (the systems' possible outputs)")
    view = ET.Element("View")
    for title, name, value in (("Request (PII-masked)", "input_text", "$input_text"),
                               ("AI output", "ai_output", "$ai_output"),
                               ("What the human did", "user_action", "$user_action"),
                               ("Final output (what was decided)", "final_output", "$final_output"),
                               ("AI confidence", "confidence", "$confidence_text"),
                               ("Review", "review_note", "$review_note")):
        ET.SubElement(view, "Header", {"value": title, "size": "5"})
        ET.SubElement(view, "Text", {"name": name, "value": value})
    ET.SubElement(view, "Header", {"value": "What is the correct output?"})
    control = ET.SubElement(view, "Choices", {"name": LABEL_FROM_NAME, "toName": "input_text", "choice": "single",
                                              "required": "true", "showInline": "false"})
    for value in choices:
        ET.SubElement(control, "Choice", {"value": value})
    ET.SubElement(view, "Header", {"value": "Comment (optional: why, what was wrong)"})
    ET.SubElement(view, "TextArea", {"name": COMMENT_FROM_NAME, "toName": "input_text", "rows": "3",
                                     "editable": "true", "maxSubmissions": "1"})
    return ET.tostring(view, encoding="unicode")


def config_choices(label_config: str) -> list[str]:
    """The choice values of the ``label`` control of a labelling config (empty when it has none)."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError:
        return []
    for control in root.iter("Choices"):
        if control.get("name") == LABEL_FROM_NAME:
            return [choice.get("value", "") for choice in control.iter("Choice")]
    return []


# ---------------------------------------------------------------------------------------------- HTTP
def _is_jwt(token: str) -> bool:
    """A personal access token is a JWT (header.payload.signature, the header a JSON object naming ``alg``)."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and "alg" in header


class _Client:
    """One session against one server: auth header, timeouts, retries with backoff, errors that say what to do."""

    def __init__(self, conn: LabelStudioConnection, session: requests.Session | None = None) -> None:
        self.conn = conn
        self.session = session or requests.Session()
        self.personal_token = _is_jwt(conn.token)
        self._access: str | None = None

    # Auth ------------------------------------------------------------------------------------------------------
    def _refresh_access(self) -> None:
        response = self._send("POST", "/api/token/refresh/", json_body={"refresh": self.conn.token},
                              authorized=False, retry=True)
        access = response.json().get("access") if response.headers.get("content-type", "").startswith(
            "application/json") else None
        if not access:
            raise LabelStudioError(f"Label Studio at {self._where('/api/token/refresh/')} did not return an access "
                                   "token for the personal access token: create a new token in Account & Settings")
        self._access = str(access)

    def _auth_header(self) -> dict[str, str]:
        if not self.personal_token:
            return {"Authorization": f"Token {self.conn.token}"}
        if self._access is None:
            self._refresh_access()
        return {"Authorization": f"Bearer {self._access}"}

    # Requests --------------------------------------------------------------------------------------------------
    def _where(self, path: str) -> str:
        return mask_url(self.conn.base_url + path)

    def _scrub(self, text: str) -> str:
        return text.replace(self.conn.token, "***") if self.conn.token else text

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
              authorized: bool = True, retry: bool = True) -> requests.Response:
        attempts = RETRY_ATTEMPTS if retry else 1
        last: str = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
            headers = {"Accept": "application/json", **(self._auth_header() if authorized else {})}
            try:
                response = self.session.request(method, self.conn.base_url + path, params=params, json=json_body,
                                                headers=headers, timeout=self.conn.timeout_seconds)
            except (requests.ConnectionError, requests.Timeout) as error:
                last = f"{type(error).__name__}: {self._scrub(str(error))[:300]}"
                continue
            if response.status_code in _RETRY_STATUS and attempt + 1 < attempts:
                last = f"HTTP {response.status_code}"
                continue
            return response
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        raise LabelStudioError(
            f"Label Studio at {self._where(path)} could not be reached{tries} ({last}; timeout "
            f"{self.conn.timeout_seconds:g} s): check that the server is running and the URL is its base address")

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
                retry: bool = True, ok: Sequence[int] = (200, 201, 204)) -> requests.Response:
        response = self._send(method, path, params=params, json_body=json_body, retry=retry)
        if response.status_code == 401 and self.personal_token:  # the access token expired: refresh once
            self._access = None
            response = self._send(method, path, params=params, json_body=json_body, retry=retry)
        if response.status_code not in ok:
            raise LabelStudioError(self._failure(method, path, response))
        return response

    def _failure(self, method: str, path: str, response: requests.Response) -> str:
        status = response.status_code
        body = self._scrub(response.text or "").strip().replace("\n", " ")[:400]
        if status in (401, 403):
            hint = ("the API token was refused: check the token variable holds a valid token of a user of this "
                    "server's organisation (personal access token, or a legacy token where the organisation enables "
                    "legacy tokens: Organization → API Tokens Settings)")
        elif status == 404:
            hint = "not found: check the URL is Label Studio's base address (no /api suffix) and the project exists"
        elif status == 400:
            hint = "Label Studio rejected the request: read its message above (often the labelling config or data)"
        elif status >= 500:
            hint = f"the server failed (retried {RETRY_ATTEMPTS} times): check its logs and retry the run"
        else:
            hint = "unexpected answer: check the server's version (tested with Label Studio 1.23)"
        return f"Label Studio {method} {self._where(path)} answered HTTP {status}: {body!r}; {hint}"

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as error:
            raise LabelStudioError(f"Label Studio {method} {self._where(path)} did not answer JSON ({error}): check "
                                   "the URL points at Label Studio, not a proxy's login page") from error


# ---------------------------------------------------------------------------------------------- projects
def _results(page: Any) -> list[dict[str, Any]]:
    if isinstance(page, list):
        return page
    if isinstance(page, dict):
        for key in ("results", "tasks"):
            if isinstance(page.get(key), list):
                return page[key]
    return []


def _find_project(client: _Client, title: str) -> dict[str, Any] | None:
    page_number = 1
    while True:
        page = client.json("GET", "/api/projects/", params={"title": title, "page": page_number,
                                                            "page_size": PAGE_SIZE})
        for project in _results(page):
            if project.get("title") == title:  # the filter is icontains: keep only the exact title
                return project
        if not (isinstance(page, dict) and page.get("next")):
            return None
        page_number += 1


def _ensure_project(client: _Client, title: str, vocabulary: Sequence[str]) -> int:
    wanted = _vocabulary(vocabulary)
    if not wanted:
        raise LabelStudioError(f"Label Studio project {title!r}: the output vocabulary is empty")
    project = _find_project(client, title)
    if project is None:
        body = {"title": title, "label_config": labelling_config(wanted), "maximum_annotations": 1,
                "show_skip_button": True, "enable_empty_annotation": False,
                "description": "eval_pipelines audit sample: pick the correct output for each case. Tasks marked "
                               "'double review' are also labelled by a second reviewer."}
        try:
            created = client.json("POST", "/api/projects/", json_body=body, retry=False)
        except LabelStudioError:
            # the create may have happened with its answer lost: look again before failing
            project = _find_project(client, title)
            if project is None:
                raise
        else:
            return int(created["id"])
    project_id = int(project["id"])
    current = project.get("label_config")
    if current is None:
        current = client.json("GET", f"/api/projects/{project_id}/").get("label_config", "")
    have = config_choices(current or "")
    missing = [value for value in wanted if value not in have]
    if missing:
        # choices are only ever added: existing annotations may use any old value (Label Studio refuses removing them)
        client.json("PATCH", f"/api/projects/{project_id}/",
                    json_body={"label_config": labelling_config([*have, *missing])})
    return project_id


def ensure_project(conn: LabelStudioConnection, title: str, vocabulary: Sequence[str]) -> int:
    """Id of the project called ``title``, created when missing; its choices extended when the vocabulary grew."""
    return _ensure_project(_Client(conn), title, vocabulary)


def _project_tasks(client: _Client, project_id: int, fields: str = "all") -> list[dict[str, Any]]:
    """Every task of a project with its data, overlap and annotations (paged)."""
    tasks: list[dict[str, Any]] = []
    page_number = 1
    while True:
        response = client.request("GET", "/api/tasks/", params={"project": project_id, "page": page_number,
                                                               "page_size": PAGE_SIZE, "fields": fields},
                                  ok=(200, 404))
        if response.status_code == 404:  # DRF's answer to a page past the end
            return tasks
        page = response.json()
        batch = _results(page)
        tasks.extend(batch)
        total = page.get("total") if isinstance(page, dict) else None
        if not batch or len(batch) < PAGE_SIZE or (isinstance(total, int) and len(tasks) >= total):
            return tasks
        page_number += 1


# ---------------------------------------------------------------------------------------------- export
def _json_safe(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:  # NaT is a datetime: test it before isoformat()
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _display(value: Any) -> str:
    value = _json_safe(value)
    return "" if value is None else str(value)


def task_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """A review task's Label Studio ``data``: every column JSON-safe, plus the strings the config displays."""
    data = {str(key): _json_safe(value) for key, value in row.items()}
    data["event_id"] = str(data["event_id"])
    data["partition_date"] = _display(row["partition_date"])[:10]
    for name in ("input_text", "ai_output", "user_action", "final_output"):
        data[name] = _display(row.get(name))
    confidence = _json_safe(row.get("confidence"))
    data["confidence_text"] = "" if confidence is None else f"{float(confidence):.3f}"
    double = bool(_json_safe(row.get("double_review")) or False)
    data["double_review"] = double
    data["review_note"] = ("Double review: a second reviewer labels this case too; answer on your own."
                           if double else "Single review.")
    return data


def export_tasks(conn: LabelStudioConnection, project_title: str, vocabulary: Sequence[str],
                 tasks: pd.DataFrame) -> dict[str, int]:
    """Import the review tasks not yet in the project; ``{"created", "already_present", "project_id"}``.

    Idempotent by ``data.event_id``; double-review tasks get ``overlap = 2`` (also repaired on a re-run).
    """
    missing_columns = [name for name in REQUIRED_TASK_COLUMNS if name not in tasks.columns]
    if missing_columns:
        raise LabelStudioError(f"export_tasks: the review tasks frame lacks columns {missing_columns} "
                               f"(has {list(tasks.columns)}); build it from review_tasks")
    duplicated = tasks["event_id"].astype(str).duplicated()
    if duplicated.any():
        raise LabelStudioError(f"export_tasks: event_id {tasks['event_id'][duplicated].iloc[0]!r} appears twice in "
                               "the review tasks: one task per event")
    client = _Client(conn)
    project_id = _ensure_project(client, project_title, vocabulary)
    wanted = {str(row["event_id"]): task_data(row) for row in tasks.to_dict(orient="records")}
    present_before: set[str] | None = None
    for attempt in range(RETRY_ATTEMPTS):
        existing = {str((task.get("data") or {}).get("event_id")): task
                    for task in _project_tasks(client, project_id, fields="all")}
        if present_before is None:
            present_before = set(existing) & set(wanted)
        todo = [data for event_id, data in wanted.items() if event_id not in existing]
        if not todo:
            break
        try:
            for start in range(0, len(todo), IMPORT_CHUNK):
                client.json("POST", f"/api/projects/{project_id}/import", retry=False,
                            json_body=[{"data": data} for data in todo[start:start + IMPORT_CHUNK]])
        except LabelStudioError:
            if attempt + 1 == RETRY_ATTEMPTS:
                raise
            time.sleep(RETRY_BACKOFF_SECONDS * 2 ** attempt)  # then list again: only what is still missing
    existing = {str((task.get("data") or {}).get("event_id")): task
                for task in _project_tasks(client, project_id, fields="all")}
    absent = sorted(set(wanted) - set(existing))
    if absent:
        raise LabelStudioError(f"Label Studio project {project_title!r} (id {project_id}) still lacks "
                               f"{len(absent)} task(s) after import, e.g. event_id {absent[0]!r}")
    for event_id, data in wanted.items():
        task = existing[event_id]
        if data["double_review"] and int(task.get("overlap") or 1) < DOUBLE_REVIEW_OVERLAP:
            client.json("PATCH", f"/api/tasks/{int(task['id'])}/", json_body={"overlap": DOUBLE_REVIEW_OVERLAP})
    already = len(present_before or set())
    return {"created": len(wanted) - already, "already_present": already, "project_id": project_id}


# ---------------------------------------------------------------------------------------------- pull
def _annotation_choice(result: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    label: str | None = None
    comment: str | None = None
    for region in result or []:
        value = region.get("value") or {}
        if region.get("from_name") == LABEL_FROM_NAME and region.get("type") == "choices":
            picked = value.get("choices") or []
            label = str(picked[0]) if picked else None
        elif region.get("from_name") == COMMENT_FROM_NAME and region.get("type") == "textarea":
            text = [str(part) for part in (value.get("text") or []) if str(part).strip()]
            comment = "\n".join(text) if text else None
    return label, comment


def _reviewer(completed_by: Any, users: Mapping[int, str]) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("username") or completed_by.get("id"))
    if completed_by is None:
        return "unknown"
    try:
        return users.get(int(completed_by), f"user-{completed_by}")
    except (TypeError, ValueError):
        return str(completed_by)


def annotations_frame(tasks: Sequence[Mapping[str, Any]], users: Mapping[int, str]) -> pd.DataFrame:
    """One row per submitted annotation of Label Studio tasks (``GET /api/tasks/?fields=all`` shape).

    Cancelled (skipped) annotations are left out: a skip is not a verdict. An annotation without a choice keeps
    its row with ``label`` null, so the caller's validation quarantines it with a reason instead of losing it.
    ``reviewed_at`` is the annotation's last update (a reviewer who corrects a verdict dates it then) as an ISO 8601
    UTC string (``2026-03-02T14:05:00.123456Z``), the inbox files' format.
    """
    rows = []
    for task in tasks:
        data = task.get("data") or {}
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            label, comment = _annotation_choice(annotation.get("result") or [])
            rows.append({"event_id": None if data.get("event_id") is None else str(data["event_id"]),
                         "partition_date": None if data.get("partition_date") is None
                         else str(data["partition_date"])[:10],
                         "reviewer": _reviewer(annotation.get("completed_by"), users),
                         "label": label, "comment": comment,
                         "reviewed_at": annotation.get("updated_at") or annotation.get("created_at"),
                         "source": "label_studio"})
    frame = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS)
    stamps = pd.to_datetime(frame["reviewed_at"], utc=True, format="ISO8601")
    # ISO 8601 strings in UTC ("...Z"), the inbox files' format, so review_labels validates both alike
    frame["reviewed_at"] = [None if pd.isna(stamp) else stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for stamp in stamps]
    frame = frame.astype("object").where(frame.notna(), None)
    return frame.sort_values(["event_id", "reviewer", "reviewed_at"], kind="stable").reset_index(drop=True)


def _users(client: _Client) -> dict[int, str]:
    page = client.json("GET", "/api/users/")
    users = {}
    for user in _results(page):
        if user.get("id") is not None:
            users[int(user["id"])] = str(user.get("email") or user.get("username") or user["id"])
    return users


def pull_annotations(conn: LabelStudioConnection, project_title: str) -> pd.DataFrame:
    """Every submitted annotation of the project, one row each (``ANNOTATION_COLUMNS``); empty when no project."""
    client = _Client(conn)
    project = _find_project(client, project_title)
    if project is None:
        return annotations_frame([], {})
    tasks = _project_tasks(client, int(project["id"]), fields="all")
    return annotations_frame(tasks, _users(client))
