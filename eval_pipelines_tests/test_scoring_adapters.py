"""System-under-test adapters; the http one against a real HTTP server on 127.0.0.1 started here."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.scoring.adapters import (
    OUTPUT_COLUMNS,
    HttpSystem,
    LoggedSystem,
    PredictionsSystem,
    PythonSystem,
    build_system,
    case_records,
    normalise_outputs,
    read_predictions,
    replay_inputs,
)
from eval_pipelines.scoring.settings import PredictionsCandidate, PythonCandidate


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping on a timed-out request must not block shutdown

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0


class _Handler(BaseHTTPRequestHandler):
    """Answers each case by what its input_text asks for: ok:<x>, slow, fail, flaky, malformed, hang, bad."""

    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass

    def _leave(self) -> None:
        """Ends this request's time in flight, once. Called before the response is written: the client cannot
        reuse its slot before it has read the response, so the server's count never runs ahead of the client's
        (decrementing after the write let the client's next request arrive first, and the count read 4 of 3)."""
        if self.counted:
            self.counted = False
            with self.server.lock:
                self.server.in_flight -= 1

    def _send(self, status: int, body: bytes) -> None:
        self._leave()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def do_POST(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        self.counted = True
        try:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            case = payload["cases"][0]
            command = case["input_text"]
            with self.server.lock:
                self.server.attempts[case["event_id"]] += 1
                attempt = self.server.attempts[case["event_id"]]
            if command == "slow":
                time.sleep(0.25)
                self._send(200, json.dumps({"outputs": [{"output": "slow/ok", "confidence": 0.5}]}).encode())
            elif command == "fail":
                self._send(500, b'{"error": "boom"}')
            elif command == "flaky" and attempt == 1:
                self._send(503, b"busy")
            elif command == "malformed":
                self._send(200, b'{"outputs": [ {"output": ')
            elif command == "hang":
                # The client gives up at its timeout and the server cannot see the moment it does, so a hanging
                # request is not counted at all: counting it until some guess of that moment raced the client's
                # retry under load. Every request that is counted holds its client slot for its whole count.
                self._leave()
                time.sleep(1.2)
                self._send(200, json.dumps({"outputs": ["too late"]}).encode())
            elif command == "bad":
                self._send(400, b"bad request")
            else:
                label = command.split(":", 1)[-1]
                self._send(200, json.dumps({"outputs": [{"output": label, "cost_usd": 0.001,
                                                         "echo_segment": case.get("segment")}]}).encode())
        finally:
            self._leave()


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _inputs(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(len(texts))], "input_text": texts,
                         "segment": "consumer", "timestamp": pd.Timestamp("2026-10-01T10:00:00Z")})


def test_http_adapter_records_each_failure_per_case(server):
    texts = ["ok:billing/high", "slow", "fail", "flaky", "malformed", "hang", "bad", "ok:refund/low", "slow",
             "slow", "slow", "ok:x"]
    system = HttpSystem("remote", f"http://127.0.0.1:{server.server_port}/predict", timeout_seconds=0.5,
                        max_retries=2, backoff_seconds=0.01, concurrency=3)
    began = time.perf_counter()
    out = system.predict(_inputs(texts))
    elapsed = time.perf_counter() - began
    assert list(out.columns) == list(OUTPUT_COLUMNS) and len(out) == len(texts)
    by_text = dict(zip(texts, out.to_dict("records"), strict=False))

    assert by_text["ok:billing/high"]["status"] == "ok" and by_text["ok:billing/high"]["output"] == "billing/high"
    assert by_text["ok:billing/high"]["cost_usd"] == 0.001
    slow = out[np.array(texts) == "slow"]
    assert (slow["status"] == "ok").all() and (slow["latency_ms"] >= 240).all() and (slow["confidence"] == 0.5).all()
    assert by_text["fail"]["status"] == "error" and "HTTP 500" in by_text["fail"]["error"]
    assert by_text["fail"]["attempts"] == 3 and pd.isna(by_text["fail"]["output"])  # retried, then recorded
    assert by_text["flaky"]["status"] == "ok" and by_text["flaky"]["attempts"] == 2  # a retry that worked
    assert by_text["malformed"]["status"] == "error" and "malformed JSON" in by_text["malformed"]["error"]
    assert by_text["malformed"]["attempts"] == 1  # a broken response is not retried
    assert by_text["hang"]["status"] == "timeout" and by_text["hang"]["attempts"] == 3
    assert 450 <= by_text["hang"]["latency_ms"] < 1200
    assert by_text["bad"]["status"] == "error" and by_text["bad"]["attempts"] == 1 and "400" in by_text["bad"]["error"]
    assert 2 <= server.max_in_flight <= 3 and system.stats.max_in_flight <= 3  # bounded, and concurrent
    assert system.stats.retries == 2 + 1 + 2  # fail, flaky, hang
    assert elapsed < 6.0


def test_http_adapter_keeps_exactly_its_concurrency_busy(server):
    system = HttpSystem("remote", f"http://127.0.0.1:{server.server_port}/predict", timeout_seconds=5.0,
                        max_retries=0, concurrency=3)
    began = time.perf_counter()
    out = system.predict(_inputs(["slow"] * 9))
    elapsed = time.perf_counter() - began
    assert (out["status"] == "ok").all()
    assert server.max_in_flight == 3 and system.stats.max_in_flight == 3
    assert elapsed >= 3 * 0.25  # nine quarter-second requests three at a time take at least three rounds


def test_http_adapter_batches_and_a_dead_endpoint(server):
    # A refused connection: every case errors, the run still returns a row per case.
    dead = HttpSystem("dead", "http://127.0.0.1:9/none", timeout_seconds=0.3, max_retries=1, backoff_seconds=0.0)
    out = dead.predict(_inputs(["ok:a", "ok:b"]))
    assert (out["status"] == "error").all() and out["error"].str.contains("connection error").all()
    assert (out["attempts"] == 2).all()


def test_python_adapter_isolates_a_failing_batch():
    calls: list[int] = []

    def flaky(batch: pd.DataFrame, suffix: str = "") -> list[str]:
        calls.append(len(batch))
        if "boom" in set(batch["input_text"]):
            raise RuntimeError("model crashed")
        return [text.upper() + suffix for text in batch["input_text"]]

    system = PythonSystem("py", flaky, batch_size=2, options={"suffix": "!"})
    out = system.predict(_inputs(["a", "b", "boom", "c", "d"]))
    assert calls == [2, 2, 1]
    assert out["output"].tolist()[:2] == ["A!", "B!"] and out["output"].tolist()[4] == "D!"
    assert (out["status"].tolist()) == ["ok", "ok", "error", "error", "ok"]
    assert out.loc[2, "error"] == "RuntimeError: model crashed"
    assert out["latency_ms"].notna().all()


def test_python_adapter_from_config_runs_the_demo_candidate():
    system = build_system(PythonCandidate(name="k", adapter="python",
                                          target="eval_pipelines.demo.candidates:keyword_triage"))
    out = system.predict(_inputs(["I was charged twice for my Pro subscription. URGENT!!",
                                  "Order ORD-1 still hasn't arrived, tracking says in transit. No rush."]))
    assert out["output"].tolist() == ["billing/urgent", "shipping/low"]
    assert out["confidence"].between(0, 1).all() and (out["cost_usd"] > 0).all()


def test_normalise_outputs_shapes():
    assert normalise_outputs(["a", None], 2)["status"].tolist() == ["ok", "error"]
    records = normalise_outputs([{"output": "a", "confidence": 0.3}, {"output": "b", "error": "quota"}], 2)
    assert records["confidence"].iloc[0] == 0.3 and records["status"].tolist() == ["ok", "error"]
    columns = normalise_outputs({"output": ["x"], "latency_ms": [12]}, 1)
    assert columns["latency_ms"].iloc[0] == 12.0
    with pytest.raises(ValueError, match="2 outputs for 3 cases"):
        normalise_outputs(["a", "b"], 3)
    with pytest.raises(ValueError, match="no 'output'"):
        normalise_outputs(pd.DataFrame({"answer": ["a"]}), 1)


def test_predictions_file_adapter(tmp_path: Path):
    path = tmp_path / "preds.csv"
    pd.DataFrame({"id": ["e0", "e2", "e2"], "prediction": ["a", "old", "c"], "confidence": [0.9, 0.1, 0.7]}) \
        .to_csv(path, index=False)
    config = PredictionsCandidate(name="batch", adapter="predictions", path="preds.csv", id_column="id",
                                  output_column="prediction")
    system = build_system(config, lambda relative: tmp_path / relative)
    assert isinstance(system, PredictionsSystem)
    out = system.predict(_inputs(["x", "y", "z"]))
    assert out["output"].tolist()[0] == "a" and out["output"].tolist()[2] == "c"  # last duplicate wins
    assert out.loc[1, "status"] == "error" and out.loc[1, "error"] == "no prediction for event_id"
    assert out.loc[2, "confidence"] == 0.7
    jsonl = tmp_path / "preds.jsonl"
    jsonl.write_text('{"event_id": "e1", "output": "b"}\n')
    assert read_predictions(str(jsonl))["output"].tolist() == ["b"]


def test_logged_adapter_and_replay_inputs_hide_the_answer():
    cases = pd.DataFrame({"event_id": ["e0", "e1"], "input_text": ["t0", "t1"], "label": ["a", "b"],
                          "ai_output": ["a", "none"], "status": ["ok", "timeout"], "latency_ms": [800.0, 30000.0],
                          "features": ['{"channel": "chat", "customer_tenure_days": 12}', "{}"]})
    out = LoggedSystem().predict(cases)
    assert out["output"].tolist() == ["a", "none"] and out["status"].tolist() == ["ok", "timeout"]
    assert out["latency_ms"].tolist() == [800.0, 30000.0]
    inputs = replay_inputs(cases)
    assert "label" not in inputs and "ai_output" not in inputs
    assert inputs.loc[0, "channel"] == "chat" and inputs.loc[0, "customer_tenure_days"] == 12


def test_http_config_reads_secrets_from_the_environment(monkeypatch):
    from eval_pipelines.scoring.settings import HttpCandidate

    config = HttpCandidate(name="remote", adapter="http", url="http://${TRIAGE_HOST}/predict",
                           headers={"Authorization": "Bearer ${TRIAGE_TOKEN}"})
    monkeypatch.setenv("TRIAGE_HOST", "127.0.0.1:8080")
    monkeypatch.setenv("TRIAGE_TOKEN", "s3cret")
    system = build_system(config)
    assert isinstance(system, HttpSystem)
    assert system.url == "http://127.0.0.1:8080/predict" and system.headers["Authorization"] == "Bearer s3cret"
    monkeypatch.delenv("TRIAGE_TOKEN")
    with pytest.raises(KeyError, match="TRIAGE_TOKEN"):
        build_system(config)


def test_case_records_are_json_ready():
    from datetime import date

    frame = pd.DataFrame({"event_id": ["a", "b"],
                          "timestamp": pd.to_datetime(["2026-11-20T10:00:00Z", None], utc=True),
                          "tenure": [np.int64(3), np.int64(4)], "score": [0.5, np.nan],
                          "day": [date(2026, 11, 20), None]})
    records = case_records(frame)
    assert records == [
        {"event_id": "a", "timestamp": "2026-11-20T10:00:00+00:00", "tenure": 3, "score": 0.5, "day": "2026-11-20"},
        {"event_id": "b", "timestamp": None, "tenure": 4, "score": None, "day": None},
    ]
    assert json.loads(json.dumps(records)) == records
