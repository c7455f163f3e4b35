"""The daily audit sample: which of the day's cases go to expert review, each with its inclusion probability.

Implicit labels (an accepted suggestion counts as correct) cannot see automation bias: a confidently wrong output
that a human rubber-stamps is "correct" by construction. The audit is a probability sample of *all* the day's
cases with status ok — accepted, edited, overridden, rejected, ignored and unreviewed alike — so that a reviewer's
verdict on it can be projected back to the whole day (:mod:`eval_pipelines.review.estimation`).

The design is stratified simple random sampling without replacement, the same as the eval set's
(:mod:`eval_pipelines.evalsets.design`, whose strata, allocation and selection helpers are reused here):

- **certainty stratum**: cases that must be reviewed whatever the design (a complaint or a compliance flag) are
  taken whole, inclusion probability 1; they come on top of ``daily_size``;
- **sampled strata**: the other cases, cut by ``user_action`` (null written ``unreviewed``) × confidence band ×
  segment by default, and by a risk group that is over-sampled: fast accepts (accepted in under
  ``fast_accept_seconds`` — rubber-stamping), high-confidence accepts and overrides of high-confidence outputs,
  the first that applies winning. ``daily_size`` cases are allocated proportionally to ``N_h × factor_h`` (factor
  1 for cases in no risk group), with at least ``minimum_per_stratum`` per stratum so every stratum has a variance,
  and each stratum's ``n_h`` are its simple random sample: inclusion probability ``n_h / N_h``.
- **or sampling rates** (``rates``, ``review.rates``) instead of ``daily_size``: each stratum takes
  ``clip(round(rate_h × N_h), minimum_per_stratum, N_h)`` cases, ``rate_h`` the largest rate of the keys matching
  one of its label's parts (``review_action=overridden``, ``failure=fast_accept``...) else ``default``; the
  selection and the inclusion probabilities are as above (:func:`rate_for_stratum`).

Randomness: each case's key is a keyed SipHash of its event_id (``sampling_keys``) with a per-day seed derived from
the configured seed and the day, so the draw is deterministic given (seed, day, data), independent of row order,
and different from one day to the next. A share ``double_review_share`` of the sampled tasks (an exact count, the
smallest keys of an independent second hash) is flagged for a second reviewer, for the agreement statistics.

Nothing here imports dagster or touches storage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from eval_pipelines.evalsets.design import (
    FAILURE_DIMENSION,
    NO_FAILURE,
    AllocationResult,
    Design,
    Strata,
    assign_strata,
    draw,
    sampling_keys,
    select_smallest,
    uniform_from_keys,
)
from eval_pipelines.frames import flag_column

CERTAINTY_STRATUM = "certainty"
"""Stratum label of the cases taken whole (complaints, compliance flags)."""

UNREVIEWED = "unreviewed"
"""How a null ``user_action`` (no human in the loop) is written in strata and estimation cells."""

CONFIDENCE_BAND_COLUMN = "confidence_band"
ACTION_COLUMN = "review_action"
"""Derived columns the default strata use: the confidence band and the user action with null as ``unreviewed``."""

NO_RISK_GROUP = NO_FAILURE
"""The risk dimension's value for a case in no risk group (``failure=none``)."""
RISK_GROUPS: tuple[str, ...] = ("fast_accept", "high_confidence_accept", "high_confidence_override")
"""Over-sampled risk groups, in precedence order (a case in several goes to the first)."""

_NULL_BAND = "<null>"

CERTAINTY_TAG_ALIASES = {"complaint": "tag_complaint", "compliance_flag": "tag_compliance"}
"""The labeling tag that carries the same flag, read when the raw contract field is not in the frame."""


@dataclass(frozen=True)
class AuditDesignConfig:
    """The knobs of the audit design (the later ``review:`` config section maps onto this)."""

    daily_size: int = 200
    seed: int = 0
    strata_columns: tuple[str, ...] = (ACTION_COLUMN, CONFIDENCE_BAND_COLUMN, "segment")
    confidence_band_edges: tuple[float, ...] = (0.5, 0.8)  # bands [0, .5), [.5, .8), [.8, 1]
    high_confidence: float = 0.8  # confidence at or above which an output counts as high-confidence
    fast_accept_seconds: float = 5.0
    fast_accept_factor: float = 3.0
    high_confidence_accept_factor: float = 2.0
    high_confidence_override_factor: float = 2.0
    certainty_columns: tuple[str, ...] = ("complaint", "compliance_flag")
    minimum_per_stratum: int = 2
    double_review_share: float = 0.1
    rates: tuple[tuple[str, float], ...] | None = None
    """Per-stratum sampling rates instead of ``daily_size`` (``rate_for_stratum``): ``(key, rate)`` pairs, a key
    being ``default`` or ``<strata column>=<value>`` / ``failure=<risk group or none>``. None: ``daily_size``."""

    def __post_init__(self) -> None:
        if self.daily_size < 1:
            raise ValueError(f"daily_size must be >= 1, got {self.daily_size}")
        if self.rates is not None:
            for problem in rate_key_problems(dict(self.rates), self.strata_columns):
                raise ValueError(problem)
        if not 0.0 <= self.double_review_share <= 1.0:
            raise ValueError(f"double_review_share must be in [0, 1], got {self.double_review_share}")
        if self.minimum_per_stratum < 0:
            raise ValueError(f"minimum_per_stratum must be >= 0, got {self.minimum_per_stratum}")
        for name in ("fast_accept_factor", "high_confidence_accept_factor", "high_confidence_override_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if list(self.confidence_band_edges) != sorted(set(self.confidence_band_edges)):
            raise ValueError(f"confidence_band_edges must be strictly increasing, got {self.confidence_band_edges}")


RISK_DIMENSION = FAILURE_DIMENSION
"""The strata dimension of the risk groups (``failure=<group>``, ``failure=none``), as assign_strata writes it."""
DEFAULT_RATE_KEY = "default"


def rate_key_problems(rates: dict[str, float], strata_columns: Sequence[str]) -> list[str]:
    """What is wrong with ``review.rates`` (each problem names its key and the fix); empty when usable."""
    problems = []
    if DEFAULT_RATE_KEY not in rates:
        problems.append(f"rates: give a {DEFAULT_RATE_KEY!r} rate (for the strata no other key matches)")
    groups = (NO_RISK_GROUP, *RISK_GROUPS)
    for key, rate in rates.items():
        if not isinstance(rate, int | float) or not 0.0 < float(rate) <= 1.0:
            problems.append(f"rates.{key}: the rate must be in (0, 1], got {rate!r}")
        if key == DEFAULT_RATE_KEY:
            continue
        column, equals, value = key.partition("=")
        if not equals or not value:
            problems.append(f"rates.{key}: write the key as {DEFAULT_RATE_KEY!r} or <column>=<value>, e.g. "
                            "'review_action=overridden' or 'failure=fast_accept'")
        elif column == RISK_DIMENSION:
            if value not in groups:
                problems.append(f"rates.{key}: {value!r} is not a risk group; use one of {list(groups)}")
        elif column not in strata_columns:
            problems.append(f"rates.{key}: {column!r} is not a strata column; use one of "
                            f"{[*strata_columns, RISK_DIMENSION]}")
    return problems


def rate_for_stratum(label: str, rates: dict[str, float]) -> float:
    """The sampling rate of a stratum label (``col=value|...|failure=<group>``): the largest rate among the keys
    that match one of its parts, else the ``default`` rate (over-sampling wins when keys overlap)."""
    matched = [rates[part] for part in label.split("|") if part in rates]
    return float(max(matched)) if matched else float(rates[DEFAULT_RATE_KEY])


def _rate_design(strata: Strata, keys: np.ndarray, rates: dict[str, float], minimum: int) -> Design:
    """Each stratum's ``n_h = clip(round(rate_h × N_h), minimum, N_h)`` cases by smallest key (the same
    simple random sample as the allocated design; only how ``n_h`` is chosen differs)."""
    population = np.bincount(strata.codes, minlength=len(strata.labels)).astype(np.int64)
    rate = np.asarray([rate_for_stratum(label, rates) for label in strata.labels], dtype=np.float64)
    sizes = np.minimum(np.maximum(np.round(rate * population).astype(np.int64), minimum), population)
    selected = select_smallest(strata.codes, keys, sizes)
    table = pd.DataFrame({
        "stratum": pd.array(strata.labels, dtype="str"),
        "population": population,
        "factor": strata.factors,
        "rate": rate,
        "sample": sizes,
        "inclusion_prob": sizes / np.maximum(population, 1),
    })
    result = AllocationResult(sizes=sizes, size=int(sizes.sum()), size_raised=False,
                              census=bool((sizes == population).all()))
    return Design(strata=table, selected=selected, allocation=result)


@dataclass(frozen=True)
class AuditSample:
    """The day's audit design.

    ``frame``: phase one, every ok case of the day with ``event_id``, ``stratum``, ``review_action``,
    ``certainty``, ``inclusion_prob`` and ``selected`` — what the estimator needs to know the ``N_g``.
    ``tasks``: the selected cases (the input columns plus ``stratum``, ``inclusion_prob``, ``weight``,
    ``certainty``, ``double_review``), sorted by event_id. ``strata``: one row per stratum with ``population``,
    ``sample``, ``factor`` and ``inclusion_prob`` (the certainty stratum included).
    """

    frame: pd.DataFrame
    tasks: pd.DataFrame
    strata: pd.DataFrame
    day_seed: int
    allocation: AllocationResult | None


def day_seed(seed: int, day: dt.date | str) -> int:
    """A 63-bit seed for one day, a hash of (configured seed, ISO day): reproducible, and unrelated across days."""
    iso = day.isoformat() if isinstance(day, dt.date) else str(pd.Timestamp(day).date())
    return int.from_bytes(hashlib.sha256(f"review/{seed}/{iso}".encode()).digest()[:8], "little") >> 1


def _number(cases: pd.DataFrame, name: str) -> np.ndarray:
    if name not in cases.columns:
        return np.full(len(cases), np.nan)
    return pd.to_numeric(cases[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def review_actions(user_action: pd.Series) -> pd.Series:
    """``user_action`` as a string with null (no human in the loop) as ``unreviewed``."""
    # Text first, then the nulls filled: on Arrow-backed strings both stay in Arrow (no Python objects per row).
    return user_action.astype("str").fillna(UNREVIEWED)


def _strings(codes: np.ndarray, labels: Sequence[str]) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a pandas string array, built in Arrow: a million Python strings cost seconds."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)),
                                                pa.array(list(labels), type=pa.string()))
    return pd.array(dictionary.cast(pa.string()), dtype="str")


def _as_text_column(values: pd.Series) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """A column for a new frame: string arrays as they are (no round trip through Python objects), else numpy."""
    return values.array if isinstance(values.dtype, pd.StringDtype) else values.to_numpy()


def confidence_bands(confidence: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Band label per case, e.g. ``[0.5,0.8)``; the last band is closed (``[0.8,1]``); null confidence ``<null>``."""
    bounds = [0.0, *edges, 1.0]
    names = [f"[{bounds[i]:g},{bounds[i + 1]:g})" for i in range(len(bounds) - 2)] + [f"[{bounds[-2]:g},1]"]
    index = np.clip(np.searchsorted(np.asarray(edges, dtype=np.float64), confidence, side="right"), 0, len(names) - 1)
    labels = np.asarray(names, dtype=object)[index]
    labels[np.isnan(confidence)] = _NULL_BAND
    return labels


def risk_flags(cases: pd.DataFrame, actions: np.ndarray, config: AuditDesignConfig) -> dict[str, np.ndarray]:
    """Membership of each risk group (before precedence): the cases a rubber-stamping reviewer gets wrong."""
    return _risk_flags(cases, np.asarray(actions == "accepted", dtype=bool),
                       np.asarray(actions == "overridden", dtype=bool), config)


def _risk_flags(cases: pd.DataFrame, accepted: np.ndarray, overridden: np.ndarray, config: AuditDesignConfig
                ) -> dict[str, np.ndarray]:
    confidence = _number(cases, "confidence")
    seconds = _number(cases, "decision_seconds")
    high = confidence >= config.high_confidence  # NaN compares False: unknown confidence is not "high"
    return {
        "fast_accept": accepted & (seconds < config.fast_accept_seconds),
        "high_confidence_accept": accepted & high,
        "high_confidence_override": overridden & high,
    }


def draw_audit_sample(cases: pd.DataFrame, day: dt.date | str, config: AuditDesignConfig | None = None
                      ) -> AuditSample:
    """Draw the day's audit sample from ``cases`` (the day's labeled cases; only status ``ok`` ones are eligible).

    Needs ``event_id``, ``status``, the strata columns and the certainty columns (``complaint`` and
    ``compliance_flag`` by default, or labeling's ``tag_complaint`` / ``tag_compliance`` when the raw field is
    absent; null reads as not flagged). ``user_action``, ``confidence`` and ``decision_seconds`` are read as null
    when absent. Strata columns other than the two derived ones (``review_action``, ``confidence_band``) are read
    from ``cases`` as they are.
    """
    config = config or AuditDesignConfig()
    if "event_id" not in cases.columns or "status" not in cases.columns:
        raise KeyError("cases need event_id and status columns")
    # Everything per case stays in numpy codes or Arrow strings: a million Python objects (an object-dtype
    # conversion, a string array built from them) cost more than the whole design (bench/bench_review.py).
    ok_rows = np.flatnonzero((cases["status"] == "ok").to_numpy(dtype=bool, na_value=False))
    # Only the columns the design reads are copied for the whole day; the tasks' other fields are taken at the end
    # for the selected rows alone (a full copy of a wide day per draw dominated the run time).
    certainty_sources = [column if column in cases.columns else CERTAINTY_TAG_ALIASES.get(column, column)
                         for column in config.certainty_columns]
    needed = ["event_id", "user_action", "confidence", "decision_seconds", *certainty_sources,
              *config.strata_columns]
    ok = cases[[c for c in dict.fromkeys(needed) if c in cases.columns]].iloc[ok_rows].reset_index(drop=True)
    _, distinct_ids = pd.factorize(ok["event_id"], use_na_sentinel=False)
    if len(distinct_ids) != len(ok):
        raise ValueError("event_id must be unique among the day's ok cases")
    seed = day_seed(config.seed, day)
    actions = review_actions(ok["user_action"]) if "user_action" in ok.columns \
        else pd.Series(UNREVIEWED, index=ok.index, dtype="str")
    certainty = np.zeros(len(ok), dtype=bool)
    for column in certainty_sources:
        if column not in ok.columns:
            # Silently reading a missing flag as "never" would empty the certainty stratum: refuse instead.
            raise KeyError(f"certainty column {column!r} is not in the cases; available: {list(cases.columns)}")
        certainty |= flag_column(ok, column)

    # Only what the strata need, built in one go (a copy of every column per draw is what made it slow).
    bands = confidence_bands(_number(ok, "confidence"), config.confidence_band_edges)
    derived = {ACTION_COLUMN: actions, CONFIDENCE_BAND_COLUMN: bands}
    columns = {column: derived[column] if column in derived else ok[column]
               for column in config.strata_columns if column in derived or column in ok.columns}
    # assign_strata reads over-sampling groups from tag_<name> columns.
    accepted = (actions == "accepted").to_numpy(dtype=bool)
    overridden = (actions == "overridden").to_numpy(dtype=bool)
    columns.update({f"tag_{group}": flags
                    for group, flags in _risk_flags(ok, accepted, overridden, config).items()})
    work = pd.DataFrame(columns)
    factors = {"fast_accept": config.fast_accept_factor,
               "high_confidence_accept": config.high_confidence_accept_factor,
               "high_confidence_override": config.high_confidence_override_factor}
    oversample = [(group, factors[group]) for group in RISK_GROUPS]

    # Stratum of each case as a code into ``stratum_labels``; the certainty stratum is the last label.
    stratum_labels: list[str] = []
    stratum_codes = np.zeros(len(ok), dtype=np.int64)
    inclusion = np.ones(len(ok), dtype=np.float64)
    selected = certainty.copy()
    sampled_rows = np.flatnonzero(~certainty)
    strata_rows = []
    allocation = None
    if len(sampled_rows):
        frame = work if len(sampled_rows) == len(work) else work.iloc[sampled_rows].reset_index(drop=True)
        strata = assign_strata(frame, config.strata_columns, oversample)
        keys = sampling_keys(ok["event_id"].iloc[sampled_rows].astype(str).reset_index(drop=True), seed,
                             purpose="review")
        design = _rate_design(strata, keys, dict(config.rates), config.minimum_per_stratum) if config.rates \
            else draw(strata, keys, np.zeros(len(frame)), config.daily_size, "proportional",
                      config.minimum_per_stratum)
        allocation = design.allocation
        stratum_labels = [str(label) for label in strata.labels]
        stratum_codes[sampled_rows] = strata.codes
        inclusion[sampled_rows] = design.strata["inclusion_prob"].to_numpy()[strata.codes]
        selected[sampled_rows[design.selected]] = True
        strata_rows.append(design.strata[["stratum", "population", "factor", "sample", "inclusion_prob"]])
    stratum_codes[certainty] = len(stratum_labels)
    stratum_labels.append(CERTAINTY_STRATUM)
    if certainty.any():
        count = int(certainty.sum())
        strata_rows.append(pd.DataFrame({"stratum": [CERTAINTY_STRATUM], "population": [count], "factor": [np.inf],
                                         "sample": [count], "inclusion_prob": [1.0]}))
    strata_table = (pd.concat(strata_rows, ignore_index=True) if strata_rows else
                    pd.DataFrame(columns=["stratum", "population", "factor", "sample", "inclusion_prob"]))
    strata_table["stratum"] = strata_table["stratum"].astype(str)

    phase_one = pd.DataFrame({
        "event_id": _as_text_column(ok["event_id"]),
        "stratum": _strings(stratum_codes, stratum_labels),
        ACTION_COLUMN: actions.array,
        "certainty": certainty,
        "inclusion_prob": inclusion,
        "selected": selected,
    })
    chosen = cases.iloc[ok_rows[selected]].reset_index(drop=True)
    added = pd.DataFrame({
        ACTION_COLUMN: actions[selected].to_numpy(),
        CONFIDENCE_BAND_COLUMN: bands[selected],
        "stratum": np.asarray(stratum_labels, dtype=object)[stratum_codes[selected]].astype(str),
        "inclusion_prob": inclusion[selected],
        "weight": 1.0 / inclusion[selected],
        "certainty": certainty[selected],
        "double_review": _double_review(chosen["event_id"].astype(str), seed, config.double_review_share),
    })
    tasks = pd.concat([chosen.drop(columns=[c for c in added.columns if c in chosen.columns]), added], axis=1)
    tasks = tasks.sort_values("event_id", kind="stable").reset_index(drop=True)
    return AuditSample(frame=phase_one, tasks=tasks, strata=strata_table, day_seed=seed, allocation=allocation)


def _double_review(event_ids: pd.Series, seed: int, share: float) -> np.ndarray:
    """Exactly ``round(share × tasks)`` tasks flagged, those with the smallest independent second key.

    Certainty tasks are eligible too: complaints are where reviewers most need to agree.
    """
    count = round(share * len(event_ids))
    flags = np.zeros(len(event_ids), dtype=bool)
    if count:
        u = uniform_from_keys(sampling_keys(event_ids, seed, purpose="double_review"))
        flags[np.argsort(u, kind="stable")[:count]] = True
    return flags
