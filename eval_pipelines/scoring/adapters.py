"""Systems under test behind one interface: ``predict(inputs) -> outputs``, one output row per input row.

Every adapter returns the same columns (``OUTPUT_COLUMNS``): ``output`` (str, null when the call failed),
``confidence``, ``latency_ms``, ``cost_usd`` (float, NaN when unknown), ``status`` (``ok`` / ``error`` /
``timeout``, the canonical statuses), ``error`` (the reason, null when ok) and ``attempts``. A failure on one case
is recorded on that case and the run goes on: a scored run of 2,000 cases must not die on one bad response, and
the failures themselves are scored (a failed call is a wrong answer) and gated (``success`` scorer).

- ``logged``: production as logged (``ai_output`` and the logged confidence, latency, cost and status).
- ``python``: an importable function called on batches of cases.
- ``http``: POST ``{"cases": [...]}`` to an endpoint, with a timeout, retries with exponential backoff on
  timeouts, connection errors, 429 and 5xx, and at most ``concurrency`` requests in flight (stdlib only).
- ``predictions``: a file of outputs keyed by event_id, for batch inference done elsewhere.

The inputs a system sees (``replay_inputs``) never include the label or production's output, so a candidate
cannot score well by reading the answer.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import fsspec
import numpy as np
import pandas as pd

from eval_pipelines.scoring.scorers import load_callable
from eval_pipelines.scoring.settings import (
    HttpCandidate,
    LoggedCandidate,
    PredictionsCandidate,
    PythonCandidate,
)
from eval_pipelines.warehouse.core import db_value

OUTPUT_COLUMNS: tuple[str, ...] = ("output", "confidence", "latency_ms", "cost_usd", "status", "error", "attempts")
INPUT_COLUMNS: tuple[str, ...] = ("event_id", "timestamp", "system", "segment", "input_text")
"""Columns of the cases every system sees, plus the configured feature columns (parsed from ``features``)."""

_OPTIONAL_NUMBERS = ("confidence", "latency_ms", "cost_usd")
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class SystemUnderTest(Protocol):
    """Anything that turns a frame of inputs into a frame of ``OUTPUT_COLUMNS``, row for row."""

    name: str

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame: ...


def replay_inputs(cases: pd.DataFrame) -> pd.DataFrame:
    """What a system under test may read of each case: ``INPUT_COLUMNS`` plus the feature columns.

    ``features`` (JSON text in eval_set_cases) is expanded into one column per feature.
    """
    present = [column for column in INPUT_COLUMNS if column in cases.columns]
    inputs = cases[present].reset_index(drop=True).copy()
    if "features" in cases.columns:
        parsed = [json.loads(text) if isinstance(text, str) and text else {} for text in cases["features"]]
        features = pd.DataFrame.from_records(parsed, index=inputs.index) if parsed else pd.DataFrame()
        for column in features.columns:
            if column not in inputs.columns:
                inputs[column] = features[column]
    return inputs


def empty_outputs(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "output": pd.array([None] * n, dtype="str"),
        "confidence": np.full(n, np.nan),
        "latency_ms": np.full(n, np.nan),
        "cost_usd": np.full(n, np.nan),
        "status": pd.array(["ok"] * n, dtype="str"),
        "error": pd.array([None] * n, dtype="str"),
        "attempts": np.ones(n, dtype=np.int64),
    })


def normalise_outputs(result: Any, n: int) -> pd.DataFrame:
    """Coerce what a system returned into ``OUTPUT_COLUMNS`` for ``n`` cases; raises ValueError on a wrong shape.

    Accepted: a DataFrame with ``output`` (and optional columns), a sequence of strings, a sequence of dicts with
    ``output``, or a dict of equally long columns.
    """
    if isinstance(result, pd.DataFrame):
        frame = result.reset_index(drop=True)
    elif isinstance(result, Mapping):
        frame = pd.DataFrame(dict(result))
    elif isinstance(result, pd.Series | np.ndarray | Sequence) and not isinstance(result, str | bytes):
        items = list(result)
        if items and all(isinstance(item, Mapping) for item in items):
            frame = pd.DataFrame.from_records(items)
        else:
            frame = pd.DataFrame({"output": items})
    else:
        raise ValueError(f"unsupported result type {type(result).__name__}: return strings, dicts or a DataFrame")
    if len(frame) != n:
        raise ValueError(f"returned {len(frame)} outputs for {n} cases")
    if "output" not in frame.columns:
        raise ValueError(f"result has no 'output' column (columns: {list(frame.columns)})")
    out = empty_outputs(n)
    output = frame["output"].astype("str")
    out["output"] = output.where(output.notna(), None).astype("str")
    for column in _OPTIONAL_NUMBERS:
        if column in frame.columns:
            out[column] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if "error" in frame.columns:
        error = frame["error"].astype("str")
        out["error"] = error.mask(error == "")
    failed = out["output"].isna() | out["error"].notna()
    if "status" in frame.columns:
        status = frame["status"].astype("str").fillna("ok")
        out["status"] = status.where(status.isin(["ok", "error", "timeout"]), "error")
    out.loc[failed & (out["status"] == "ok"), "status"] = "error"
    out.loc[failed & out["error"].isna(), "error"] = "no output"
    return out


def _failed(n: int, message: str, status: str = "error", latency_ms: float = float("nan"),
            attempts: int = 1) -> pd.DataFrame:
    out = empty_outputs(n)
    out["status"] = status
    out["error"] = message[:500]
    out["latency_ms"] = latency_ms
    out["attempts"] = attempts
    return out


# ----------------------------------------------------------------------------------------------------------------
# logged
# ----------------------------------------------------------------------------------------------------------------


class LoggedSystem:
    """Production as logged: needs ``ai_output`` on the cases, uses logged confidence/latency/cost/status if there."""

    def __init__(self, name: str = "production") -> None:
        self.name = name

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        if "ai_output" not in inputs.columns:
            raise KeyError("the logged adapter needs the cases' ai_output column")
        n = len(inputs)
        out = empty_outputs(n)
        output = inputs["ai_output"].reset_index(drop=True).astype("str")
        out["output"] = output
        for column in _OPTIONAL_NUMBERS:
            if column in inputs.columns:
                out[column] = pd.to_numeric(inputs[column], errors="coerce").to_numpy(dtype=np.float64,
                                                                                      na_value=np.nan)
        if "status" in inputs.columns:
            status = inputs["status"].reset_index(drop=True).astype("str").fillna("ok")
            out["status"] = status
            out["error"] = pd.Series(np.where(status == "ok", None, "logged status " + status), dtype="str")
        missing = out["output"].isna() & (out["status"] == "ok")
        out.loc[missing, "status"] = "error"
        out.loc[missing, "error"] = "no logged output"
        return out


# ----------------------------------------------------------------------------------------------------------------
# python
# ----------------------------------------------------------------------------------------------------------------


class PythonSystem:
    """Calls ``function(batch, **options)`` per batch; wall time per case is the latency unless it reports one.

    An exception or a malformed result fails the cases of that batch only (recorded in ``error``).
    """

    def __init__(self, name: str, function: Callable[..., Any], batch_size: int = 1000,
                 options: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.function = function
        self.batch_size = batch_size
        self.options = dict(options or {})

    @classmethod
    def from_config(cls, config: PythonCandidate) -> PythonSystem:
        return cls(config.name, load_callable(config.target), config.batch_size, config.options)

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs.iloc[start:start + self.batch_size].reset_index(drop=True)
            began = time.perf_counter()
            try:
                result = self.function(batch, **self.options)
                elapsed_ms = (time.perf_counter() - began) * 1000.0
                part = normalise_outputs(result, len(batch))
            except Exception as error:  # a candidate's bug fails its cases, not the run
                elapsed_ms = (time.perf_counter() - began) * 1000.0
                part = _failed(len(batch), f"{type(error).__name__}: {error}", latency_ms=elapsed_ms / len(batch))
            else:
                part["latency_ms"] = part["latency_ms"].fillna(elapsed_ms / max(len(batch), 1))
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else empty_outputs(0)


# ----------------------------------------------------------------------------------------------------------------
# http
# ----------------------------------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    value = db_value(value)
    return value.isoformat() if isinstance(value, date) else value  # datetimes are dates too


def case_records(inputs: pd.DataFrame) -> list[dict[str, Any]]:
    """The inputs as JSON-ready dicts (timestamps in ISO 8601, nulls as None)."""
    columns = list(inputs.columns)
    return [{column: _json_value(value) for column, value in zip(columns, row, strict=True)}
            for row in inputs.itertuples(index=False, name=None)]


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """Replace each ``${NAME}`` by the environment variable NAME; a variable that is not set is an error."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"environment variable {name} is not set (referenced as ${{{name}}} in the config)")
        return os.environ[name]

    return _ENV_REFERENCE.sub(lookup, value)


class _Retryable(Exception):
    def __init__(self, message: str, status: str = "error") -> None:
        super().__init__(message)
        self.status = status


class _Final(Exception):
    def __init__(self, message: str, status: str = "error") -> None:
        super().__init__(message)
        self.status = status


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, TimeoutError | socket.timeout):
        return True
    reason = getattr(error, "reason", None)
    return isinstance(reason, TimeoutError | socket.timeout)


@dataclass
class HttpStats:
    """Counters of one ``predict`` call, for the run's metadata."""

    requests: int = 0
    retries: int = 0
    max_in_flight: int = 0


class HttpSystem:
    """POSTs ``{"cases": [case, ...]}`` and expects ``{"outputs": [...]}`` (or a bare list) of the same length.

    Each output is a string or an object with ``output`` and optionally ``confidence``, ``latency_ms``,
    ``cost_usd``, ``error``. ``latency_ms`` defaults to the wall time of the successful (or last) attempt.
    """

    def __init__(self, name: str, url: str, timeout_seconds: float = 10.0, max_retries: int = 2,
                 backoff_seconds: float = 0.5, concurrency: int = 4, batch_size: int = 1,
                 headers: Mapping[str, str] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        self.sleep = sleep
        self.stats = HttpStats()
        self._lock = threading.Lock()
        self._in_flight = 0
        # A local endpoint never goes through an environment proxy (HTTP_PROXY without NO_PROXY would capture it).
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) \
            if host in ("localhost", "127.0.0.1", "::1") else urllib.request.build_opener()

    @classmethod
    def from_config(cls, config: HttpCandidate) -> HttpSystem:
        """The adapter of a config; ``${NAME}`` in the URL and header values is read from the environment, so a
        token never has to be written in the config file."""
        return cls(config.name, expand_env(config.url), config.timeout_seconds, config.max_retries,
                   config.backoff_seconds, config.concurrency, config.batch_size,
                   {key: expand_env(value) for key, value in config.headers.items()})

    def _post_once(self, body: bytes, n: int) -> pd.DataFrame:
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        opener = self._opener
        with self._lock:
            self._in_flight += 1
            self.stats.requests += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        try:
            with opener.open(request, timeout=self.timeout_seconds) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:200].decode("utf-8", "replace") if error.fp else ""
            message = f"HTTP {error.code}: {detail or error.reason}"
            raise (_Retryable if error.code in _RETRY_STATUSES else _Final)(message) from None
        except Exception as error:  # timeouts, refused connections, resets
            if _is_timeout(error):
                raise _Retryable(f"timeout after {self.timeout_seconds:g} s", "timeout") from None
            raise _Retryable(f"connection error: {error}") from None
        finally:
            with self._lock:
                self._in_flight -= 1
        try:
            parsed = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _Final(f"malformed JSON response: {error.msg if hasattr(error, 'msg') else error}") from None
        outputs = parsed.get("outputs") if isinstance(parsed, dict) else parsed
        if not isinstance(outputs, list):
            raise _Final("response has no 'outputs' list")
        try:
            return normalise_outputs(outputs, n)
        except ValueError as error:
            raise _Final(f"bad response: {error}") from None

    def _call(self, batch: list[dict[str, Any]]) -> pd.DataFrame:
        body = json.dumps({"cases": batch}, ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            began = time.perf_counter()
            try:
                out = self._post_once(body, len(batch))
            except (_Retryable, _Final) as error:
                elapsed_ms = (time.perf_counter() - began) * 1000.0
                if isinstance(error, _Retryable) and attempt < self.max_retries:
                    with self._lock:
                        self.stats.retries += 1
                    self.sleep(self.backoff_seconds * 2**attempt)
                    attempt += 1
                    continue
                return _failed(len(batch), str(error), error.status, elapsed_ms, attempt + 1)
            elapsed_ms = (time.perf_counter() - began) * 1000.0
            out["latency_ms"] = out["latency_ms"].fillna(elapsed_ms)
            out["attempts"] = attempt + 1
            return out

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        self.stats = HttpStats()
        records = case_records(inputs)
        batches = [records[i:i + self.batch_size] for i in range(0, len(records), self.batch_size)]
        if not batches:
            return empty_outputs(0)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"http-{self.name}") as pool:
            parts = list(pool.map(self._call, batches))
        return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------------------------------------------
# predictions
# ----------------------------------------------------------------------------------------------------------------


def read_predictions(path: str, id_column: str = "event_id", output_column: str = "output") -> pd.DataFrame:
    """A predictions file (Parquet, CSV, JSON lines) as ``event_id, output, [confidence, latency_ms, cost_usd]``."""
    lower = path.lower()
    with fsspec.open(path, "rb") as handle:
        if lower.endswith(".parquet"):
            frame = pd.read_parquet(handle)
        elif lower.endswith(".csv"):
            frame = pd.read_csv(handle, dtype={id_column: "str", output_column: "str"})
        elif lower.endswith((".jsonl", ".ndjson", ".json")):
            frame = pd.read_json(handle, lines=not lower.endswith(".json"), dtype={id_column: "str"})
        else:
            raise ValueError(f"{path}: unknown predictions format; use .parquet, .csv or .jsonl")
    missing = [c for c in (id_column, output_column) if c not in frame.columns]
    if missing:
        raise KeyError(f"{path}: predictions file lacks column(s) {missing}")
    keep = [id_column, output_column, *[c for c in (*_OPTIONAL_NUMBERS, "error") if c in frame.columns]]
    frame = frame[keep].rename(columns={id_column: "event_id", output_column: "output"})
    frame["event_id"] = frame["event_id"].astype("str")
    return frame.drop_duplicates("event_id", keep="last")


class PredictionsSystem:
    """Looks each case up by event_id; a case with no prediction is an error ("no prediction")."""

    def __init__(self, name: str, predictions: pd.DataFrame) -> None:
        self.name = name
        self.predictions = predictions.set_index("event_id")

    @classmethod
    def from_config(cls, config: PredictionsCandidate, resolve: Callable[[str], str]) -> PredictionsSystem:
        return cls(config.name, read_predictions(resolve(config.path), config.id_column, config.output_column))

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        ids = inputs["event_id"].astype("str").to_numpy(dtype=object)
        hit = self.predictions.index.get_indexer(ids) >= 0
        frame = self.predictions.reindex(ids).reset_index(drop=True)
        out = normalise_outputs(frame.assign(output=frame["output"].where(hit, None)), len(inputs))
        out.loc[~hit, "error"] = "no prediction for event_id"
        out.loc[~hit, "status"] = "error"
        return out


# ----------------------------------------------------------------------------------------------------------------
# factory
# ----------------------------------------------------------------------------------------------------------------


def build_system(config: LoggedCandidate | PythonCandidate | HttpCandidate | PredictionsCandidate,
                 resolve_path: Callable[[str], Path | str] = str) -> SystemUnderTest:
    """The adapter a candidate's config describes; ``resolve_path`` makes relative prediction paths absolute."""
    if isinstance(config, LoggedCandidate):
        return LoggedSystem(config.name)
    if isinstance(config, PythonCandidate):
        return PythonSystem.from_config(config)
    if isinstance(config, HttpCandidate):
        return HttpSystem.from_config(config)

    def resolve(path: str) -> str:
        return path if "://" in path else str(resolve_path(path))

    return PredictionsSystem.from_config(config, resolve)
