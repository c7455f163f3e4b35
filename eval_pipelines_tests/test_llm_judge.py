"""The LLM judge against a real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol.

The server's verdict is derived deterministically from its input (pass when the output equals the reference), and
it can be told to answer slowly, fail with 503 first, or reply with text that is not the asked-for JSON.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from eval_pipelines.scoring.judge import (
    JudgeCache,
    JudgeSettings,
    judge_agreement,
    judge_cases,
    parse_verdict,
    settings_from_env,
)


class ChatServer:
    """Behaviour per output text: 'slow…' sleeps past the timeout, 'flaky…' fails with 503 the first time,
    'garbled…' answers prose; anything else gets a verdict."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.authorization: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.flaky_seen: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.authorization.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                counted = [True]

                def leave() -> None:
                    # Before the response is written: the client cannot send its next request before reading
                    # this one's answer, so the count never runs ahead of the client's real concurrency.
                    if counted[0]:
                        counted[0] = False
                        with server.lock:
                            server.in_flight -= 1

                try:
                    case = json.loads(body["messages"][1]["content"])
                    output = case["output"]
                    time.sleep(0.05)
                    if output.startswith("slow"):
                        time.sleep(1.0)
                    if output.startswith("flaky") and output not in server.flaky_seen:
                        server.flaky_seen.add(output)
                        leave()
                        self.send_response(503)
                        self.end_headers()
                        return
                    if output.startswith("garbled"):
                        content = "I think this looks fine to me!"
                    else:
                        verdict = "pass" if output == case.get("reference") else "fail"
                        content = "```json\n" + json.dumps({"verdict": verdict, "reason": f"{verdict}: compared"}) \
                            + "\n```"
                    payload = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant", "content": content}}]})
                    leave()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                finally:
                    leave()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/chat/completions"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


def _settings(server: ChatServer, **options) -> JudgeSettings:
    return JudgeSettings(url=server.url, model="judge-small", rubric="Is the reply correct and polite?",
                         api_key="sk-test", timeout_seconds=0.5, max_retries=1, backoff_seconds=0.01, **options)


def test_verdicts_reasons_and_the_cache(chat_server, tmp_path) -> None:
    inputs = [f"ticket {i}" for i in range(12)]
    references = [f"answer {i}" for i in range(12)]
    outputs = [f"answer {i}" if i % 3 else f"wrong {i}" for i in range(12)]
    outputs[5] = None  # the system under test failed: a fail, the judge is not asked
    cache = JudgeCache(tmp_path / "judge.jsonl")
    result = judge_cases(inputs, outputs, references, _settings(chat_server, concurrency=3), cache)
    expected = [0.0 if (i % 3 == 0 or i == 5) else 1.0 for i in range(12)]
    assert result.verdicts.tolist() == expected
    assert result.reasons[1] == "pass: compared" and result.reasons[5].startswith("no output")
    assert result.requests == 11 and len(chat_server.requests) == 11
    assert 1 < chat_server.max_in_flight <= 3  # bounded concurrency, and actually concurrent
    assert set(chat_server.authorization) == {"Bearer sk-test"}
    assert chat_server.requests[0]["temperature"] == 0 and chat_server.requests[0]["model"] == "judge-small"
    assert "Is the reply correct and polite?" in chat_server.requests[0]["messages"][0]["content"]

    again = judge_cases(inputs, outputs, references, _settings(chat_server, concurrency=3),
                        JudgeCache(tmp_path / "judge.jsonl"))  # a new process reading the file
    assert again.verdicts.tolist() == expected
    assert again.requests == 0 and again.cache_hits == 11 and len(chat_server.requests) == 11

    changed = JudgeSettings(**{**_settings(chat_server).__dict__, "rubric": "Stricter rubric"})
    judge_cases(inputs[:2], outputs[:2], references[:2], changed, JudgeCache(tmp_path / "judge.jsonl"))
    assert len(chat_server.requests) == 13  # a changed rubric asks again


def test_timeouts_503_and_malformed_replies(chat_server, tmp_path) -> None:
    outputs = ["slow answer", "flaky answer", "garbled answer", "answer"]
    references = ["slow answer", "flaky answer", "garbled answer", "answer"]
    sleeps: list[float] = []
    cache = JudgeCache(tmp_path / "judge.jsonl")
    result = judge_cases(["q"] * 4, outputs, references, _settings(chat_server), cache, sleep=sleeps.append)
    assert np.isnan(result.verdicts[0]) and "timed out after 0.5 s" in result.errors[0]
    assert result.verdicts[1] == 1.0 and result.errors[1] is None  # retried after the 503
    assert np.isnan(result.verdicts[2]) and "not JSON" in result.errors[2] and "after 2 attempt(s)" in result.errors[2]
    assert result.verdicts[3] == 1.0
    assert sleeps == [0.01, 0.01, 0.01]  # one backoff per retried case
    assert len(cache.entries) == 2  # failures are not cached: the next run asks again


def test_parse_verdict_and_settings_from_env(monkeypatch) -> None:
    assert parse_verdict('{"verdict": "PASS", "reason": "ok"}') == (1.0, "ok")
    assert parse_verdict('Sure:\n```json\n{"verdict": "fail"}\n```') == (0.0, None)
    with pytest.raises(ValueError, match="no verdict"):
        parse_verdict('{"verdict": "maybe"}')
    monkeypatch.delenv("JUDGE_URL", raising=False)
    with pytest.raises(KeyError, match="JUDGE_URL is not set"):
        settings_from_env("JUDGE_URL", "m", "r")
    monkeypatch.setenv("JUDGE_URL", "http://127.0.0.1:9/v1/chat/completions")
    monkeypatch.setenv("JUDGE_KEY", "sk-secret")
    settings = settings_from_env("JUDGE_URL", "m", "r", api_key_env="JUDGE_KEY")
    assert settings.api_key == "sk-secret" and "sk-secret" not in repr(settings)


def test_agreement_with_reviewers_is_cohens_kappa_on_the_cases_both_judged() -> None:
    rng = np.random.default_rng(4)
    human = (rng.random(300) < 0.7).astype(float)
    judge = np.where(rng.random(300) < 0.85, human, 1 - human)
    human[:20] = np.nan  # not reviewed
    judge[280:] = np.nan  # not judged
    agreement = judge_agreement(judge, human)
    both = ~np.isnan(judge) & ~np.isnan(human)
    assert agreement.n_units == int(both.sum()) == 260
    assert agreement.estimate == pytest.approx(cohen_kappa_score(judge[both], human[both]))
    assert agreement.ci_low < agreement.estimate < agreement.ci_high


def test_the_llm_judge_scorer_in_a_scored_frame(chat_server, tmp_path, monkeypatch) -> None:
    import pandas as pd

    from eval_pipelines.config import ConfigError, parse_settings
    from eval_pipelines.scoring.scorers import score_frame, traits
    from eval_pipelines.scoring.settings import ScorerConfig

    monkeypatch.setenv("EVAL_PIPELINES_JUDGE_URL", chat_server.url)
    config = ScorerConfig(name="judge", kind="llm_judge", rubric="Correct?", model="m",
                          url_env="EVAL_PIPELINES_JUDGE_URL", cache_dir=str(tmp_path), timeout_seconds=2)
    assert traits(config).binary and traits(config).higher_is_better
    frame = pd.DataFrame({"input_text": ["a", "b", "c"], "output": ["x", "y", None], "label": ["x", "z", "w"],
                          "status": ["ok", "ok", "error"]})
    assert score_frame(frame, [config])["judge"].tolist() == [1.0, 0.0, 0.0]
    assert (tmp_path / "judge.jsonl").exists()
    with pytest.raises(ConfigError, match="kind llm_judge needs rubric"):
        parse_settings({"scoring": {"scorers": [{"name": "j", "kind": "llm_judge", "model": "m",
                                                  "url_env": "X"}]}})
