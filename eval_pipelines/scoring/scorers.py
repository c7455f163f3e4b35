"""Scorers: one number per case, from the replayed frame (label, output, confidence, latency_ms, cost_usd, status).

A scorer returns a float64 array aligned with the frame; NaN means "this case cannot be scored by this scorer"
(no label, no confidence, no latency), and such cases are left out of that scorer's means, never counted as
zero. A system that failed on a case (``status`` error/timeout, null output) is *wrong* on it for the match
scorers: a release must not look better by failing on its hard cases.

*Known errors* (an edit, override or rejection without a final output: labeled, null ``label``) arrive as the frame
columns ``known_wrong_output`` / ``known_wrong_normalised`` (:func:`known_wrong_columns`). The match scorers score 0
an output equal to the known-wrong one (exactly; after normalisation only where the decision was replaced) or a
failed call, and leave every other output on such a case unscored: its right answer is unknown.

Kinds (``ScorerConfig.kind``):

- ``exact_match`` (binary): output == label after stripping surrounding whitespace.
- ``normalised_match`` (binary): equal after Unicode NFKC, lower case, punctuation to spaces, whitespace collapsed.
- ``label_set_f1`` (continuous in [0, 1]): output and label as sets of parts split on ``separator``;
  F1 = 2|A ∩ B| / (|A| + |B|). For the demo's ``category/priority`` a right category with a wrong priority is 0.5.
- ``edit_similarity``, ``token_f1``, ``rouge_l`` (continuous in [0, 1], for free-text outputs): normalised
  Levenshtein similarity, bag-of-words F1 and ROUGE-L F1 of output against label (:mod:`eval_pipelines.textsim`);
  a failed call (null output) scores 0, and on a known error an output equal to the known-wrong one scores 0
  while any other output is left unscored (its right answer is unknown).
- ``numeric_tolerance`` (binary): |output - label| <= abs_tol + rel_tol * |label|; NaN when the label is not a
  number, 0 when the output is not.
- ``brier`` (lower is better): (confidence - correct)^2, correct from the ``correct_by`` scorer (Brier 1950).
- ``ece`` (lower is better): per-case contributions whose mean is the expected calibration error with ``bins``
  equal-width bins (Naeini et al. 2015): case i in bin b scores sign(conf̄_b - acc_b) * (conf_i - correct_i), so
  mean_i = Σ_b (n_b / n) |conf̄_b - acc_b| exactly. Bins and signs are fixed on the whole frame, so the mean over
  a slice is that slice's signed gap against the global bins, not a re-binned ECE. When the frame carries design
  weights (a ``weight`` column, eval-set cases) the bins are weighted — conf̄_b, acc_b and the bin shares are
  weighted means — so the *weighted* mean of the contributions, i.e. the projected estimate, is production's ECE
  (see :func:`ece_contributions`). A scored run scores each case set (eval set, edge cases) on its own frame, so
  the bins of one never mix the cases of the other.
- ``latency_slo`` (binary): latency_ms <= slo_ms. ``latency`` (lower is better): latency_ms itself, for quantiles.
- ``cost`` (lower is better): cost_usd itself. ``success`` (binary): status == "ok".
- ``custom``: ``package.module:function(frame) -> sequence of floats``, declared ``binary`` / ``higher_is_better``.
- ``llm_judge`` (binary): an OpenAI-compatible chat model judges each output against the ``rubric`` (and the label,
  when there is one) — :mod:`eval_pipelines.scoring.judge`; NaN where it could not judge, cached by
  (model, rubric, input, output, label) under ``cache_dir``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines import textsim
from eval_pipelines.scoring.settings import ScorerConfig

KNOWN_WRONG_OUTPUT = "known_wrong_output"
"""Frame column: an output known to be wrong on a case without a label (production's, on a known error), else null."""
KNOWN_WRONG_NORMALISED = "known_wrong_normalised"
"""Frame column: the known-wrong output is wrong after normalisation too (the human replaced the decision)."""

ScoreFunction = Callable[[pd.DataFrame, ScorerConfig, Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ScorerTraits:
    binary: bool
    higher_is_better: bool


_TRAITS: dict[str, ScorerTraits] = {
    "exact_match": ScorerTraits(True, True),
    "normalised_match": ScorerTraits(True, True),
    "label_set_f1": ScorerTraits(False, True),
    "edit_similarity": ScorerTraits(False, True),
    "token_f1": ScorerTraits(False, True),
    "rouge_l": ScorerTraits(False, True),
    "numeric_tolerance": ScorerTraits(True, True),
    "brier": ScorerTraits(False, False),
    "ece": ScorerTraits(False, False),
    "latency_slo": ScorerTraits(True, True),
    "latency": ScorerTraits(False, False),
    "cost": ScorerTraits(False, False),
    "success": ScorerTraits(True, True),
    "llm_judge": ScorerTraits(True, True),
}


def traits(config: ScorerConfig) -> ScorerTraits:
    """Whether the scorer is binary (paired McNemar) and which direction is better (wins, regressions)."""
    if config.kind == "custom":
        return ScorerTraits(bool(config.binary), True if config.higher_is_better is None else config.higher_is_better)
    return _TRAITS[config.kind]


def load_callable(target: str) -> Callable[..., object]:
    """Import ``package.module:function``; the error says what was not found, for a config typo."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(f"cannot import module {module_name!r} of {target!r}: {error}") from error
    function = getattr(module, attribute, None)
    if not callable(function):
        raise AttributeError(f"{target!r}: module {module_name!r} has no callable {attribute!r}")
    return function


# ----------------------------------------------------------------------------------------------------------------
# Text helpers (vectorised in Arrow)
# ----------------------------------------------------------------------------------------------------------------


def _arrow_text(values: pd.Series) -> pa.Array:
    array = pa.array(values.astype("str").to_numpy(dtype=object, na_value=None), type=pa.large_string())
    return pc.utf8_trim_whitespace(array)


def normalise_text(values: pd.Series) -> pa.Array:
    """NFKC, lower case, runs of anything but letters and digits to one space, trimmed; null stays null."""
    array = _arrow_text(values)
    array = pc.utf8_normalize(array, form="NFKC")
    array = pc.utf8_lower(array)
    array = pc.replace_substring_regex(array, pattern=r"[^\p{L}\p{N}]+", replacement=" ")
    return pc.utf8_trim_whitespace(array)


def _match(output: pa.Array, label: pa.Array) -> np.ndarray:
    """1.0 where equal, 0.0 where different or the output is null, NaN where the label is null."""
    equal = pc.fill_null(pc.equal(output, label), False).to_numpy(zero_copy_only=False).astype(np.float64)
    return np.where(label.is_null().to_numpy(zero_copy_only=False), np.nan, equal)


def _equal(left: pa.Array, right: pa.Array) -> np.ndarray:
    """Element-wise equality as bool; a null on either side is not equal."""
    return pc.fill_null(pc.equal(left, right), False).to_numpy(zero_copy_only=False).astype(bool)


def known_wrong_columns(label: pd.Series, ai_output: pd.Series, ai_correct: pd.Series,
                        correctness: pd.Series) -> dict[str, np.ndarray]:
    """``KNOWN_WRONG_OUTPUT`` and ``KNOWN_WRONG_NORMALISED`` of cases from labeled_cases columns.

    A *known error* is a case labeled_cases counts as an AI error without a correct answer: ``label`` null and
    ``ai_correct`` False (an edit, override or rejection that recorded no final output). Its production output is
    then known to be wrong: exactly (an unrecorded edit may only have fixed the case or spacing), and also after
    normalisation when ``correctness`` is ``"wrong"`` (the human replaced the decision: override or rejection).
    """
    correct = ai_correct.astype("boolean")
    known = (label.isna() & correct.eq(False).fillna(False)).to_numpy(dtype=bool)
    output = ai_output.astype("str").to_numpy(dtype=object, na_value=None)
    replaced = (correctness.astype("str") == "wrong").fillna(False).to_numpy(dtype=bool)
    return {
        KNOWN_WRONG_OUTPUT: np.where(known, output, None),
        KNOWN_WRONG_NORMALISED: known & replaced,
    }


def _known_wrong(frame: pd.DataFrame, output: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Rows of an unlabeled case whose ``output`` is its known-wrong one: (exactly, after normalisation).

    "Exactly" is equality after stripping whitespace, or after normalisation where the known error is a replaced
    decision (``KNOWN_WRONG_NORMALISED``); "after normalisation" holds only for replaced decisions. A null output
    (failed call) on a known error is wrong under both. Rows without a ``KNOWN_WRONG_OUTPUT`` (or frames without
    the column) are never known wrong.
    """
    none = np.zeros(len(frame), dtype=bool)
    if KNOWN_WRONG_OUTPUT not in frame.columns:
        return none, none
    unlabeled = frame["label"].isna().to_numpy(dtype=bool)
    known = pd.Series(frame[KNOWN_WRONG_OUTPUT].to_numpy(dtype=object), index=frame.index)
    replaced = frame[KNOWN_WRONG_NORMALISED].astype("boolean").fillna(False).to_numpy(dtype=bool) \
        if KNOWN_WRONG_NORMALISED in frame.columns else none
    # A failed call (null output) on a known error is wrong as on any labeled case: the case has a right answer,
    # only we do not know it, and no answer is not it (a release must not gain by failing on its hard cases).
    failed = output.isna().to_numpy(dtype=bool) & known.notna().to_numpy(dtype=bool)
    same_text = _equal(_arrow_text(output), _arrow_text(known)) | failed
    same_normalised = (_equal(normalise_text(output), normalise_text(known)) & replaced) | failed
    return unlabeled & (same_text | same_normalised), unlabeled & same_normalised


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


# ----------------------------------------------------------------------------------------------------------------
# The built-in scorers
# ----------------------------------------------------------------------------------------------------------------


def exact_match(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    scores = _match(_arrow_text(frame["output"]), _arrow_text(frame["label"]))
    wrong, _ = _known_wrong(frame, frame["output"])
    return np.where(wrong, 0.0, scores)


def normalised_match(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    scores = _match(normalise_text(frame["output"]), normalise_text(frame["label"]))
    _, wrong = _known_wrong(frame, frame["output"])
    return np.where(wrong, 0.0, scores)


def _parts(value: object, separator: str) -> frozenset[str]:
    return frozenset(part.strip() for part in str(value).split(separator) if part.strip())


def label_set_f1(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    labels = frame["label"].astype("str").to_numpy(dtype=object, na_value=None)
    outputs = frame["output"].astype("str").to_numpy(dtype=object, na_value=None)
    separator = config.separator
    cache: dict[object, frozenset[str]] = {}

    def parts(value: object) -> frozenset[str]:
        found = cache.get(value)
        if found is None:
            found = cache[value] = _parts(value, separator)
        return found

    out = np.empty(len(frame), dtype=np.float64)
    for i, (label, output) in enumerate(zip(labels, outputs, strict=True)):
        if label is None:
            out[i] = np.nan
            continue
        if output is None:
            out[i] = 0.0
            continue
        expected, got = parts(label), parts(output)
        total = len(expected) + len(got)
        out[i] = 2.0 * len(expected & got) / total if total else 1.0
    return out


def _text_scorer(metric: Callable[[Sequence[str | None], Sequence[str | None]], np.ndarray]) -> ScoreFunction:
    """A free-text scorer: ``metric(output, label)`` where both exist, 0 for a failed call on a labeled case
    or a known-wrong output, NaN where the right answer is unknown."""

    def score(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
        outputs = frame["output"].astype("str").to_numpy(dtype=object, na_value=None)
        labels = frame["label"].astype("str").to_numpy(dtype=object, na_value=None)
        values = metric(list(outputs), list(labels))
        labeled = np.fromiter((label is not None for label in labels), dtype=bool, count=len(labels))
        failed = np.fromiter((output is None for output in outputs), dtype=bool, count=len(outputs))
        wrong, _ = _known_wrong(frame, frame["output"])
        return np.where(wrong | (labeled & failed), 0.0, values)

    return score


def numeric_tolerance(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    label = _numbers(frame, "label")
    output = _numbers(frame, "output")
    with np.errstate(invalid="ignore"):
        within = np.abs(output - label) <= config.abs_tol + config.rel_tol * np.abs(label)
    return np.where(np.isnan(label), np.nan, within.astype(np.float64))


def brier(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    confidence = _numbers(frame, "confidence")
    correct = scored[config.correct_by]
    return (confidence - correct) ** 2  # NaN when either is missing


def ece_contributions(confidence: np.ndarray, correct: np.ndarray, bins: int,
                      weights: np.ndarray | None = None) -> np.ndarray:
    """Per-case terms whose (weighted) mean over the valid cases is the expected calibration error.

    Bin b is [b/B, (b+1)/B), the last one closed at 1. NaN where confidence or correctness is missing. With
    ``weights`` (w_i > 0) a bin's sign is that of its weighted gap Σ_b w_i (conf_i - correct_i), so
    Σ_i w_i c_i / Σ_i w_i = Σ_b (W_b / W) |conf̄ʷ_b - accʷ_b|, the weighted ECE; without, every w_i = 1.
    """
    valid = ~(np.isnan(confidence) | np.isnan(correct))
    out = np.full(len(confidence), np.nan)
    if not valid.any():
        return out
    conf = np.clip(confidence[valid], 0.0, 1.0)
    right = correct[valid]
    weight = np.ones(len(conf)) if weights is None else np.asarray(weights, dtype=np.float64)[valid]
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    gap = np.bincount(index, weights=weight * (conf - right), minlength=bins)
    sign = np.sign(gap)
    out[valid] = sign[index] * (conf - right)
    return out


def design_weights(frame: pd.DataFrame, valid: np.ndarray) -> np.ndarray | None:
    """The frame's design weights for a frame-level statistic over its ``valid`` rows, or None when unweighted.

    Within each ``stratum`` the weights of the valid rows are rescaled to the stratum's total, so that the weighted
    mean over the valid rows is the stratified (ratio) estimator the summaries use: a case without a confidence
    leaves its stratum's share of production to the other cases of the stratum. Rows with and without a weight
    in one frame are an error: eval-set and edge cases must be scored separately.
    """
    if "weight" not in frame.columns:
        return None
    weight = pd.to_numeric(frame["weight"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = ~np.isnan(weight)
    if not finite.any():
        return None
    if not finite.all():
        raise ValueError("some cases have a design weight and others not: score the eval set and the edge cases "
                         "as separate frames")
    if (weight <= 0).any():
        raise ValueError("design weights must be positive")
    if "stratum" not in frame.columns:
        return weight
    codes, _ = pd.factorize(frame["stratum"].astype("str"), use_na_sentinel=False)
    totals = np.bincount(codes, weights=weight)
    kept = np.bincount(codes, weights=np.where(valid, weight, 0.0), minlength=len(totals))
    scale = np.divide(totals, kept, out=np.zeros_like(totals), where=kept > 0)
    return weight * scale[codes]


def ece(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    confidence = _numbers(frame, "confidence")
    correct = scored[config.correct_by]
    valid = ~(np.isnan(confidence) | np.isnan(correct))
    return ece_contributions(confidence, correct, config.bins, design_weights(frame, valid))


def latency_slo(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    latency = _numbers(frame, "latency_ms")
    return np.where(np.isnan(latency), np.nan, (latency <= config.slo_ms).astype(np.float64))


def latency(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    return _numbers(frame, "latency_ms")


def cost(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    return _numbers(frame, "cost_usd")


def success(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    return (frame["status"].astype("str") == "ok").to_numpy(dtype=np.float64, na_value=0.0)


def custom(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    assert config.function is not None
    values = np.asarray(load_callable(config.function)(frame), dtype=np.float64)
    if values.shape != (len(frame),):
        raise ValueError(f"custom scorer {config.name!r} ({config.function}) returned shape {values.shape}, "
                         f"expected ({len(frame)},): one score per case")
    return values


def llm_judge(frame: pd.DataFrame, config: ScorerConfig, scored: Mapping[str, np.ndarray]) -> np.ndarray:
    from pathlib import Path

    from eval_pipelines.config import PROJECT_ROOT
    from eval_pipelines.scoring.judge import JudgeCache, judge_cases, settings_from_env

    settings = settings_from_env(config.url_env or "", config.model or "", config.rubric or "", config.api_key_env,
                                 timeout_seconds=config.timeout_seconds, max_retries=config.max_retries,
                                 concurrency=config.concurrency)
    directory = Path(config.cache_dir)
    cache = JudgeCache((directory if directory.is_absolute() else PROJECT_ROOT / directory) / f"{config.name}.jsonl")

    def texts(column: str) -> list[str | None]:
        if column not in frame.columns:
            return [None] * len(frame)
        return list(frame[column].astype("str").to_numpy(dtype=object, na_value=None))

    return judge_cases(texts("input_text"), texts("output"), texts("label"), settings, cache).verdicts


SCORERS: dict[str, ScoreFunction] = {
    "exact_match": exact_match,
    "normalised_match": normalised_match,
    "label_set_f1": label_set_f1,
    "edit_similarity": _text_scorer(textsim.edit_similarity),
    "token_f1": _text_scorer(textsim.token_f1),
    "rouge_l": _text_scorer(textsim.rouge_l),
    "numeric_tolerance": numeric_tolerance,
    "brier": brier,
    "ece": ece,
    "latency_slo": latency_slo,
    "latency": latency,
    "cost": cost,
    "success": success,
    "custom": custom,
    "llm_judge": llm_judge,
}


def _order(configs: Sequence[ScorerConfig]) -> list[ScorerConfig]:
    """Scorers that others read (``correct_by``) first; otherwise the configured order."""
    needed = {c.correct_by for c in configs if c.kind in ("brier", "ece")}
    return sorted(configs, key=lambda c: 0 if c.name in needed else 1)


def score_frame(frame: pd.DataFrame, configs: Sequence[ScorerConfig]) -> dict[str, np.ndarray]:
    """Every configured scorer on ``frame``: name -> float64 array aligned with the frame's rows.

    ``frame`` needs ``label`` and ``output``; confidence, latency_ms, cost_usd and status are used when present.
    """
    if "status" not in frame.columns:
        frame = frame.assign(status=np.where(frame["output"].isna(), "error", "ok"))
    scored: dict[str, np.ndarray] = {}
    for config in _order(configs):
        values = SCORERS[config.kind](frame, config, scored)
        scored[config.name] = np.asarray(values, dtype=np.float64)
    return {config.name: scored[config.name] for config in configs}
