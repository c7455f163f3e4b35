"""The Label Studio client without a server: labelling config, connection settings, annotation parsing, retries.

The annotation JSON fixture (fixtures/label_studio_tasks.json) was recorded from a real Label Studio 1.23.2
(``GET /api/tasks/?project=<id>&fields=all`` after the e2e round trip's annotations), trimmed to three tasks.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import requests

from eval_pipelines.review import label_studio as ls

FIXTURE = Path(__file__).parent / "fixtures" / "label_studio_tasks.json"


def test_labelling_config_parses_and_holds_every_value_escaped() -> None:
    vocabulary = ["refund", "R&D <team>", 'say "hi"', "it's", "refund", "naïve – café"]
    xml = ls.labelling_config(vocabulary)
    root = ET.fromstring(xml)  # well-formed XML despite &, <, > and quotes in the values
    assert root.tag == "View"
    choices = root.find("Choices")
    assert choices is not None
    assert (choices.get("name"), choices.get("choice"), choices.get("toName")) == ("label", "single", "input_text")
    assert [c.get("value") for c in choices.iter("Choice")] == ["refund", "R&D <team>", 'say "hi"', "it's",
                                                                "naïve – café"]  # deduplicated, order kept
    assert "R&amp;D &lt;team&gt;" in xml and "&quot;hi&quot;" in xml  # escaped in the text, not raw
    assert "<team>" not in xml
    shown = {t.get("name"): t.get("value") for t in root.iter("Text")}
    assert shown == {"input_text": "$input_text", "ai_output": "$ai_output", "user_action": "$user_action",
                     "final_output": "$final_output", "confidence": "$confidence_text",
                     "review_note": "$review_note"}
    textarea = root.find("TextArea")
    assert textarea is not None and textarea.get("name") == "comment"
    assert ls.config_choices(xml) == ["refund", "R&D <team>", 'say "hi"', "it's", "naïve – café"]


def test_labelling_config_refuses_an_empty_vocabulary() -> None:
    with pytest.raises(ls.LabelStudioError, match="non-empty output vocabulary"):
        ls.labelling_config(["", "  ", None])  # type: ignore[list-item]


URL_ENV, TOKEN_ENV = "EVAL_PIPELINES_LABEL_STUDIO_URL", "EVAL_PIPELINES_LABEL_STUDIO_TOKEN"


def test_connection_from_env_reads_both_and_masks_the_token() -> None:
    conn = ls.connection_from_env(URL_ENV, TOKEN_ENV, 12.5,
                                  environ={URL_ENV: " http://ls.internal:8080/ ", TOKEN_ENV: "s3cr3t-token-value"})
    assert conn == ls.LabelStudioConnection("http://ls.internal:8080/", "s3cr3t-token-value", 12.5)
    assert conn.base_url == "http://ls.internal:8080"
    assert "s3cr3t" not in repr(conn) and "s3cr3t" not in str(conn) and "***" in repr(conn)


@pytest.mark.parametrize(("environ", "message"), [
    ({TOKEN_ENV: "t"}, f"environment variable {URL_ENV} is not set.*export {URL_ENV}="),
    ({URL_ENV: "http://ls:8080"}, f"environment variable {TOKEN_ENV} is not set.*Personal Access Token"),
    ({URL_ENV: "ls.internal:8080", TOKEN_ENV: "t"}, "is not an http\\(s\\) URL"),
    ({URL_ENV: "http://admin:hunter2@ls:8080", TOKEN_ENV: "t"},
     f"holds a credential \\(a password in the URL's user info.*API token in {TOKEN_ENV}"),
    ({URL_ENV: "https://ls:8080/?token=abc123", TOKEN_ENV: "t"}, "query parameter 'token'"),
])
def test_connection_from_env_errors_name_the_variable_and_the_fix(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ls.LabelStudioError, match=message) as caught:
        ls.connection_from_env(URL_ENV, TOKEN_ENV, environ=environ)
    assert "hunter2" not in str(caught.value) and "abc123" not in str(caught.value)


def test_annotations_frame_from_the_recorded_server_answer() -> None:
    recorded = json.loads(FIXTURE.read_text())
    frame = ls.annotations_frame(recorded["tasks"], {int(k): v for k, v in recorded["users"].items()})
    assert list(frame.columns) == ls.ANNOTATION_COLUMNS
    assert frame["reviewed_at"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z").all()  # ISO, UTC
    # one row per submitted annotation; the skipped (was_cancelled) one is left out
    submitted = sum(1 for t in recorded["tasks"] for a in t["annotations"] if not a["was_cancelled"])
    skipped = sum(1 for t in recorded["tasks"] for a in t["annotations"] if a["was_cancelled"])
    assert skipped >= 1 and len(frame) == submitted
    expected = []
    for task in recorded["tasks"]:
        for annotation in task["annotations"]:
            if annotation["was_cancelled"]:
                continue
            choice = next(r["value"]["choices"][0] for r in annotation["result"] if r["from_name"] == "label")
            expected.append((task["data"]["event_id"], recorded["users"][str(annotation["completed_by"])], choice))
    got = list(frame[["event_id", "reviewer", "label"]].itertuples(index=False, name=None))
    assert sorted(got) == sorted(expected)
    assert set(frame["source"]) == {"label_studio"}
    assert frame["partition_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert frame["comment"].notna().any()
    first = recorded["tasks"][0]["annotations"][0]
    assert pd.Timestamp(frame.loc[0, "reviewed_at"]) == pd.Timestamp(first["updated_at"])


def test_annotations_frame_keeps_an_annotation_without_a_choice_and_empty_input() -> None:
    tasks = [{"data": {"event_id": "e1", "partition_date": "2026-01-02"},
              "annotations": [{"completed_by": 7, "was_cancelled": False, "result": [],
                               "created_at": "2026-01-02T10:00:00+01:00", "updated_at": None}]}]
    frame = ls.annotations_frame(tasks, {})
    assert frame.to_dict(orient="records")[0] == {
        "event_id": "e1", "partition_date": "2026-01-02", "reviewer": "user-7", "label": None, "comment": None,
        "reviewed_at": "2026-01-02T09:00:00.000000Z", "source": "label_studio"}  # +01:00 converted to UTC
    empty = ls.annotations_frame([], {})
    assert list(empty.columns) == ls.ANNOTATION_COLUMNS and empty.empty


class _FakeResponse:
    def __init__(self, status: int, body: object) -> None:
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)
        self.headers = {"content-type": "application/json"}

    def json(self) -> object:
        return self._body


class _FakeSession:
    def __init__(self, answers: list[object]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, dict]] = []

    def request(self, method: str, url: str, **kwargs: object) -> _FakeResponse:
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, _FakeResponse)
        return answer


def test_client_retries_5xx_and_connection_errors_then_names_url_and_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ls, "RETRY_BACKOFF_SECONDS", 0.0)
    conn = ls.LabelStudioConnection("http://ls:8080", "legacy-token-abc", 3.0)
    session = _FakeSession([requests.ConnectionError("refused"), _FakeResponse(502, {}), _FakeResponse(200, [1])])
    client = ls._Client(conn, session)  # type: ignore[arg-type]
    assert client.json("GET", "/api/users/") == [1]
    assert len(session.calls) == 3
    assert session.calls[0][2]["headers"]["Authorization"] == "Token legacy-token-abc"
    assert session.calls[0][2]["timeout"] == 3.0

    session = _FakeSession([_FakeResponse(503, {"detail": "down"})] * ls.RETRY_ATTEMPTS)
    with pytest.raises(ls.LabelStudioError, match=r"http://ls:8080/api/projects/ answered HTTP 503.*retried"):
        ls._Client(conn, session).json("GET", "/api/projects/")  # type: ignore[arg-type]
    assert len(session.calls) == ls.RETRY_ATTEMPTS

    session = _FakeSession([_FakeResponse(401, {"detail": "Invalid token legacy-token-abc"})])
    with pytest.raises(ls.LabelStudioError, match=r"HTTP 401.*API token was refused") as caught:
        ls._Client(conn, session).json("GET", "/api/projects/")  # type: ignore[arg-type]
    assert "legacy-token-abc" not in str(caught.value)  # scrubbed even when the server echoes it

    session = _FakeSession([requests.Timeout("slow")] * ls.RETRY_ATTEMPTS)
    with pytest.raises(ls.LabelStudioError, match=r"could not be reached after 4 attempts.*timeout 3 s"):
        ls._Client(conn, session).json("GET", "/api/projects/")  # type: ignore[arg-type]


def test_personal_access_token_is_exchanged_for_a_bearer_access_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ls, "RETRY_BACKOFF_SECONDS", 0.0)
    import base64

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    pat = f"{header}.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2ln"
    conn = ls.LabelStudioConnection("http://ls:8080", pat)
    session = _FakeSession([_FakeResponse(200, {"access": "A1"}), _FakeResponse(401, {}),
                            _FakeResponse(200, {"access": "A2"}), _FakeResponse(200, {"ok": True})])
    assert ls._Client(conn, session).json("GET", "/api/users/") == {"ok": True}  # type: ignore[arg-type]
    refresh = session.calls[0]
    assert refresh[1] == "http://ls:8080/api/token/refresh/" and refresh[2]["json"] == {"refresh": pat}
    assert "Authorization" not in refresh[2]["headers"]
    assert session.calls[1][2]["headers"]["Authorization"] == "Bearer A1"
    assert session.calls[3][2]["headers"]["Authorization"] == "Bearer A2"  # refreshed once after the 401
    assert not ls._is_jwt("0123456789abcdef0123456789abcdef01234567")


def test_task_data_is_json_safe_and_carries_the_display_fields() -> None:
    row = {"event_id": "e9", "partition_date": pd.Timestamp("2026-03-04"), "input_text": None, "ai_output": "refund",
           "user_action": "accepted", "final_output": "refund", "confidence": 0.91234, "double_review": True,
           "inclusion_prob": float("nan"), "stratum": "accepted|high", "reviewed_until": pd.NaT, "n": pd.NA}
    data = ls.task_data(row)
    json.dumps(data, allow_nan=False)  # strict JSON: NaN became null
    assert data["partition_date"] == "2026-03-04" and data["input_text"] == "" and data["confidence_text"] == "0.912"
    assert data["double_review"] is True and "second reviewer" in data["review_note"]
    assert data["inclusion_prob"] is None and data["confidence"] == 0.91234
    assert data["reviewed_until"] is None and data["n"] is None
