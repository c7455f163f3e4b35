"""LLM-as-judge: a rubric sent to any OpenAI-compatible chat-completions endpoint, one verdict and reason per case.

The judge reads the case's input, the output under test and (when there is one) the reference answer, and must
reply with a JSON object ``{"verdict": "pass" | "fail", "reason": "..."}`` as the message content (a fenced
```json block is accepted). Verdicts become 1.0 / 0.0; a case the judge could not judge (timeouts and 5xx after
the retries, a reply that is not such an object) is NaN — unscored, with the error kept — never a guess. A failed
call of the system under test (null output) fails without asking the judge.

Every verdict is cached by (model, rubric, input, output, reference) in an append-only JSON-lines file, so a
re-run of the same cases costs nothing and a changed rubric or model asks again. Requests: at most
``concurrency`` in flight, ``timeout_seconds`` each, retries with exponential backoff on timeouts, connection
errors, 429 and 5xx, and on malformed replies (models are not deterministic); the API key comes from the
environment (``api_key_env``) and is sent as a bearer token, never logged.

A judge is trusted only as far as it agrees with people: :func:`judge_agreement` is Cohen's κ (with its CI) between
the judge's verdicts and the reviewers' on the cases both judged. Nothing here imports dagster.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval_pipelines.review.agreement import Agreement, cohens_kappa
from eval_pipelines.scoring.adapters import _RETRY_STATUSES, _is_timeout

_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
REPLY_FORMAT = ('Reply with only a JSON object {"verdict": "pass" or "fail", "reason": "<one sentence>"}: '
                '"pass" when the output satisfies the rubric, "fail" otherwise.')


@dataclass(frozen=True)
class JudgeSettings:
    url: str  # the chat-completions endpoint, e.g. http://127.0.0.1:8000/v1/chat/completions
    model: str
    rubric: str
    api_key: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 2
    backoff_seconds: float = 0.5
    concurrency: int = 4

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"JudgeSettings(url={self.url!r}, model={self.model!r}, api_key={'***' if self.api_key else None})"


@dataclass
class JudgeResult:
    verdicts: np.ndarray  # 1.0 pass, 0.0 fail, NaN not judged
    reasons: list[str | None]
    errors: list[str | None]
    requests: int = 0
    cache_hits: int = 0
    max_in_flight: int = 0


@dataclass
class _Counters:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def settings_from_env(url_env: str, model: str, rubric: str, api_key_env: str | None = None,
                      **options: Any) -> JudgeSettings:
    """The judge's settings with the endpoint and key read from the environment (clear error when unset)."""
    url = os.environ.get(url_env)
    if not url:
        raise KeyError(f"environment variable {url_env} is not set: it must hold the judge's chat-completions URL "
                       "(e.g. https://api.openai.com/v1/chat/completions or a local vLLM/Ollama endpoint)")
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise KeyError(f"environment variable {api_key_env} (the judge's API key) is not set")
    return JudgeSettings(url=url, model=model, rubric=rubric, api_key=key, **options)


def cache_key(settings: JudgeSettings, case_input: str | None, output: str, reference: str | None) -> str:
    text = json.dumps([settings.model, settings.rubric, case_input, output, reference], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class JudgeCache:
    """Verdicts by cache key in an append-only JSON-lines file; a line torn by a crash is ignored on load."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, tuple[float, str | None]] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    self.entries[record["key"]] = (float(record["verdict"]), record.get("reason"))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue

    def add(self, new: dict[str, tuple[float, str | None]]) -> None:
        self.entries.update(new)
        if self.path is None or not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for key, (verdict, reason) in new.items():
                handle.write(json.dumps({"key": key, "verdict": verdict, "reason": reason}, ensure_ascii=False)
                             + "\n")


def parse_verdict(content: str) -> tuple[float, str | None]:
    """``(1.0 | 0.0, reason)`` from a judge's reply; ValueError when it is not the asked-for object."""
    text = content.strip()
    fenced = _FENCED.search(text)
    if fenced:
        text = fenced.group(1)
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"the judge's reply is not JSON: {content[:80]!r}") from None
    verdict = reply.get("verdict") if isinstance(reply, dict) else None
    if not isinstance(verdict, str) or verdict.strip().lower() not in ("pass", "fail"):
        raise ValueError(f"the judge's reply has no verdict 'pass' or 'fail': {content[:80]!r}")
    reason = reply.get("reason")
    return (1.0 if verdict.strip().lower() == "pass" else 0.0), (str(reason) if reason is not None else None)


def _messages(settings: JudgeSettings, case_input: str | None, output: str, reference: str | None) -> list[dict]:
    case = {"input": case_input, "output": output}
    if reference is not None:
        case["reference"] = reference
    return [{"role": "system", "content": f"{settings.rubric}\n\n{REPLY_FORMAT}"},
            {"role": "user", "content": json.dumps(case, ensure_ascii=False)}]


def _ask(settings: JudgeSettings, opener: urllib.request.OpenerDirector, counters: _Counters,
         case_input: str | None, output: str, reference: str | None,
         sleep: Callable[[float], None]) -> tuple[float, str | None, str | None]:
    body = json.dumps({"model": settings.model, "temperature": 0,
                       "messages": _messages(settings, case_input, output, reference)}).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    last_error = "not asked"
    for attempt in range(settings.max_retries + 1):
        if attempt:
            sleep(settings.backoff_seconds * 2 ** (attempt - 1))
        request = urllib.request.Request(settings.url, data=body, headers=headers, method="POST")
        with counters.lock:
            counters.requests += 1
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        try:
            with opener.open(request, timeout=settings.timeout_seconds) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code} from the judge"
            if error.code in _RETRY_STATUSES:
                continue
            return float("nan"), None, last_error
        except Exception as error:  # timeouts, refused connections, resets
            last_error = (f"the judge timed out after {settings.timeout_seconds:g} s" if _is_timeout(error)
                          else f"connection error: {type(error).__name__}")
            continue
        finally:
            with counters.lock:
                counters.in_flight -= 1
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
            verdict, reason = parse_verdict(content)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as error:
            last_error = f"malformed chat-completions response ({type(error).__name__})"
            continue
        except ValueError as error:
            last_error = str(error)
            continue
        return verdict, reason, None
    return float("nan"), None, f"{last_error} (after {settings.max_retries + 1} attempt(s))"


def judge_cases(inputs: Sequence[str | None], outputs: Sequence[str | None], references: Sequence[str | None],
                settings: JudgeSettings, cache: JudgeCache | None = None,
                sleep: Callable[[float], None] = time.sleep) -> JudgeResult:
    """The judge's verdict on each (input, output, reference); cached verdicts are not asked again."""
    if not len(inputs) == len(outputs) == len(references):
        raise ValueError("judge_cases needs inputs, outputs and references of equal length")
    cache = cache or JudgeCache(None)
    n = len(outputs)
    verdicts = np.full(n, np.nan)
    reasons: list[str | None] = [None] * n
    errors: list[str | None] = [None] * n
    pending: list[tuple[int, str]] = []
    hits = 0
    for i, output in enumerate(outputs):
        if output is None:
            verdicts[i], reasons[i] = 0.0, "no output (the call failed)"
            continue
        key = cache_key(settings, inputs[i], output, references[i])
        if key in cache.entries:
            verdicts[i], reasons[i] = cache.entries[key]
            hits += 1
        else:
            pending.append((i, key))
    host = (urllib.parse.urlsplit(settings.url).hostname or "").lower()
    opener = (urllib.request.build_opener(urllib.request.ProxyHandler({}))
              if host in ("localhost", "127.0.0.1", "::1") else urllib.request.build_opener())
    counters = _Counters()

    def ask(item: tuple[int, str]) -> tuple[int, str, tuple[float, str | None, str | None]]:
        i, key = item
        return i, key, _ask(settings, opener, counters, inputs[i], outputs[i], references[i], sleep)

    fresh: dict[str, tuple[float, str | None]] = {}
    if pending:
        with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="llm-judge") as pool:
            for i, key, (verdict, reason, error) in pool.map(ask, pending):
                verdicts[i], reasons[i], errors[i] = verdict, reason, error
                if error is None:
                    fresh[key] = (verdict, reason)
    cache.add(fresh)
    return JudgeResult(verdicts, reasons, errors, counters.requests, hits, counters.max_in_flight)


def judge_agreement(judge_verdicts: np.ndarray, human_verdicts: np.ndarray, confidence: float = 0.95) -> Agreement:
    """Cohen's κ between the judge (1/0, NaN unjudged) and the reviewers (1/0, NaN unreviewed) on the cases both
    have; :func:`eval_pipelines.review.agreement.cohens_kappa` (checked against scikit-learn in its tests)."""
    judge = np.asarray(judge_verdicts, dtype=np.float64)
    human = np.asarray(human_verdicts, dtype=np.float64)
    both = ~np.isnan(judge) & ~np.isnan(human)
    labels = np.where(judge[both] == 1.0, "pass", "fail"), np.where(human[both] == 1.0, "pass", "fail")
    return cohens_kappa(labels[0].astype(object), labels[1].astype(object), confidence)
