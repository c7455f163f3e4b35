"""Round trip through a real Label Studio: export review tasks, annotate as two reviewers would, pull the verdicts.

The server (eval_pipelines_tests/label_studio_server.py) is installed and started by the ``label_studio`` fixture;
under CI it fails instead of skipping. Reviewers work through the label stream (``GET /api/projects/<id>/next``,
what the "Label All Tasks" button serves) and submit annotations with their own tokens, so the test also shows
that Label Studio serves a double-review task to a second reviewer and a single-review task to only one.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
import requests

from eval_pipelines.review import label_studio as ls
from eval_pipelines_tests.label_studio_server import ADMIN, REVIEWERS, LabelStudioServer

pytestmark = pytest.mark.e2e

VOCABULARY = ["billing", "technical", "account & access", "other <misc>"]
DAY = "2026-03-03"
# event -> (double review, reviewer one's verdict (None: skips it), reviewer two's verdict if served)
PLAN = {
    "ev-1": (False, "billing", None),
    "ev-2": (True, "technical", "technical"),
    "ev-3": (True, "account & access", "billing"),  # a disagreement the adjudication will see
    "ev-4": (False, None, "other <misc>"),  # reviewer one skips it: it stays open for reviewer two
    "ev-5": (False, "technical", None),
}


def review_tasks() -> pd.DataFrame:
    """The review_tasks frame as the review pipeline builds it (one system's selected tasks)."""
    ids = list(PLAN)
    return pd.DataFrame({
        "event_id": ids,
        "partition_date": pd.to_datetime([DAY] * len(ids)).date,
        "system": "support_triage", "model_version": "v3", "segment": ["smb", "ent", "smb", "ent", "smb"],
        "user_action": ["accepted", "accepted", "overridden", None, "edited"],
        "review_action": ["accepted", "accepted", "overridden", "unreviewed", "edited"],
        "ai_output": ["billing", "technical", "technical", "billing", "account & access"],
        "final_output": ["billing", "technical", "account & access", None, "technical"],
        "confidence": [0.93, 0.71, 0.88, None, 0.42],
        "input_text": ["my card was charged twice", "app crashes on start <b>", "cannot log in as [EMAIL]",
                       "hello?", "refund & password reset"],
        "stratum": ["accepted|high", "accepted|mid", "overridden|high", "unreviewed", "edited|low"],
        "inclusion_prob": [0.1, 0.05, 0.5, 1.0, 0.2], "certainty": [False, False, False, True, False],
        "double_review": [PLAN[i][0] for i in ids],
        "created_at": pd.Timestamp("2026-03-04T01:00:00Z"),
    })


def _label_stream(server: LabelStudioServer, project_id: int, email: str, verdicts: dict[str, str | None]
                  ) -> list[str]:
    """Work through the project's label stream as ``email``: label what ``verdicts`` says, skip on None."""
    headers = {"Authorization": f"Token {server.tokens[email]}"}
    served = []
    for _ in range(20):  # bounded: more than the project's tasks
        response = requests.get(f"{server.url}/api/projects/{project_id}/next", headers=headers, timeout=30)
        if response.status_code == 404:  # "no more tasks for you"
            break
        assert response.status_code == 200, response.text[:300]
        task = response.json()
        event_id = task["data"]["event_id"]
        assert event_id not in served, f"{email} was served {event_id} twice"
        served.append(event_id)
        verdict = verdicts[event_id]
        result = [] if verdict is None else [
            {"from_name": "label", "to_name": "input_text", "type": "choices", "value": {"choices": [verdict]}},
            {"from_name": "comment", "to_name": "input_text", "type": "textarea",
             "value": {"text": [f"{email.split('@')[0]} on {event_id}"]}}]
        posted = requests.post(f"{server.url}/api/tasks/{task['id']}/annotations/", headers=headers, timeout=30,
                               json={"result": result, "was_cancelled": verdict is None})
        assert posted.status_code == 201, posted.text[:300]
    return served


def test_label_studio_round_trip(label_studio: LabelStudioServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ls, "PAGE_SIZE", 2)  # five tasks over three pages: the paging really runs
    conn = ls.LabelStudioConnection(label_studio.url, label_studio.admin_token, timeout_seconds=30)
    title = "eval_pipelines support_triage"
    tasks = review_tasks()
    started = pd.Timestamp.now(tz="UTC")

    first = ls.export_tasks(conn, title, VOCABULARY, tasks)
    assert first["created"] == 5 and first["already_present"] == 0
    again = ls.export_tasks(conn, title, VOCABULARY, tasks)
    assert again == {"created": 0, "already_present": 5, "project_id": first["project_id"]}
    project_id = first["project_id"]
    assert ls.ensure_project(conn, title, VOCABULARY) == project_id  # found by title, not created twice

    admin = {"Authorization": f"Token {label_studio.admin_token}"}
    project = requests.get(f"{label_studio.url}/api/projects/{project_id}/", headers=admin, timeout=30).json()
    assert ls.config_choices(project["label_config"]) == VOCABULARY
    listed = requests.get(f"{label_studio.url}/api/tasks/", headers=admin, timeout=30,
                          params={"project": project_id, "page_size": 100}).json()["tasks"]
    assert sorted(t["data"]["event_id"] for t in listed) == list(PLAN)
    assert {t["data"]["event_id"]: t["overlap"] for t in listed} == {e: 2 if p[0] else 1 for e, p in PLAN.items()}

    grown = ls.export_tasks(conn, title, [*VOCABULARY, "security"], tasks.iloc[:2])  # a new output appeared
    assert grown["created"] == 0 and grown["already_present"] == 2
    project = requests.get(f"{label_studio.url}/api/projects/{project_id}/", headers=admin, timeout=30).json()
    assert ls.config_choices(project["label_config"]) == [*VOCABULARY, "security"]

    one, two = REVIEWERS
    served_one = _label_stream(label_studio, project_id, one, {e: p[1] for e, p in PLAN.items()})
    served_two = _label_stream(label_studio, project_id, two, {e: p[2] for e, p in PLAN.items()})
    assert sorted(served_one) == list(PLAN)
    # the second reviewer gets the double-review tasks and the one the first skipped, nothing else
    assert sorted(served_two) == ["ev-2", "ev-3", "ev-4"]

    # pulled with a personal access token (JWT refresh -> Bearer access), the other token kind
    pat = ls.LabelStudioConnection(label_studio.url, label_studio.personal_access_token(ADMIN))
    pulled = ls.pull_annotations(pat, title)
    assert list(pulled.columns) == ls.ANNOTATION_COLUMNS
    expected = sorted([(e, one, p[1]) for e, p in PLAN.items() if p[1] is not None]
                      + [(e, two, p[2]) for e, p in PLAN.items() if p[2] is not None])
    assert sorted(pulled[["event_id", "reviewer", "label"]].itertuples(index=False, name=None)) == expected
    assert len(pulled) == 7  # 4 of reviewer one (one skip left out) + 3 of reviewer two
    per_event = pulled.groupby("event_id")["reviewer"].nunique().to_dict()
    assert per_event == {"ev-1": 1, "ev-2": 2, "ev-3": 2, "ev-4": 1, "ev-5": 1}  # double review: two reviewers
    assert set(pulled["partition_date"]) == {DAY} and set(pulled["source"]) == {"label_studio"}
    assert pulled["reviewed_at"].str.endswith("Z").all()
    assert pd.to_datetime(pulled["reviewed_at"], utc=True, format="ISO8601").between(started - pd.Timedelta(minutes=1),
                                         pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=1)).all()
    assert pulled.loc[pulled["event_id"] == "ev-3", "comment"].tolist() == ["reviewer.one on ev-3",
                                                                           "reviewer.two on ev-3"]
    time.sleep(0.01)
    pd.testing.assert_frame_equal(ls.pull_annotations(conn, title), pulled)  # a re-pull reads the same
    assert ls.pull_annotations(conn, "no such project").empty
    # a re-export after reviewing still creates nothing and keeps the annotations
    assert ls.export_tasks(conn, title, VOCABULARY, tasks)["created"] == 0
    assert len(ls.pull_annotations(conn, title)) == 7


def test_label_studio_errors_name_the_url_and_status(label_studio: LabelStudioServer) -> None:
    wrong = ls.LabelStudioConnection(label_studio.url, "0" * 40, timeout_seconds=10)
    with pytest.raises(ls.LabelStudioError, match=r"127\.0\.0\.1.*HTTP 401.*token was refused"):
        ls.ensure_project(wrong, "eval_pipelines x", VOCABULARY)
