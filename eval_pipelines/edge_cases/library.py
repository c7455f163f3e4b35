"""The edge-case library as plain data: merging a day of labeled cases in, and the open → fixed → regressed lifecycle.

An entry is one failure mode seen in production on near-identical inputs: a ``failure_mode`` (the first matching
rule), a representative case (its masked input, the production output and the expected output, to replay), and
counts over the days it occurred. Per-day contributions (how many cases of each entry a day had) are kept apart
from the entries, which is what makes merging incremental and idempotent:

- a new day only adds: matched entries get ``occurrences``, ``days_seen`` and ``last_seen`` moved, never anything
  else (``first_seen`` too, if a late-arriving older day is merged); new clusters become new entries;
- re-merging a day that was merged before first takes out that day's previous contribution (its entries' totals
  become the aggregate over the other days, supplied as a :class:`RerunBasis`), then adds the new one, so counts
  never double;
- the lifecycle columns (``status`` and the run columns) are never touched by a merge; only
  :func:`apply_run_results`, which scored runs call, moves them.

No I/O and no dagster here; :mod:`eval_pipelines.edge_cases.store` persists the frames in the warehouse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from eval_pipelines.edge_cases.dedup import (
    MinHasher,
    cluster_signatures,
    dedup_key,
    fingerprint_hex,
    fingerprints,
    group_hash,
    match_signatures,
    normalise,
)
from eval_pipelines.edge_cases.rules import classify, rule_columns
from eval_pipelines.edge_cases.settings import EdgeCaseConfig
from eval_pipelines.evalsets.design import mix64

OPEN, FIXED, REGRESSED = "open", "fixed", "regressed"
STATUSES: tuple[str, ...] = (OPEN, FIXED, REGRESSED)

# (status, the run passed the entry) -> new status; pairs not listed keep their status.
TRANSITIONS: dict[tuple[str, bool], str] = {(OPEN, True): FIXED, (REGRESSED, True): FIXED, (FIXED, False): REGRESSED}

REPLAY_FIELDS: tuple[str, ...] = ("ai_output", "label", "correctness", "failure_tags", "system", "model_version",
                                  "segment")
"""labeled_cases columns copied from an entry's representative case (``label`` is stored as expected_output)."""

COUNT_COLUMNS: tuple[str, ...] = ("occurrences", "days_seen", "first_seen", "last_seen")
LIFECYCLE_COLUMNS: tuple[str, ...] = ("status", "status_changed_at", "status_run_id", "last_run_id", "last_run_at",
                                      "last_run_passed")
ENTRY_COLUMNS: tuple[str, ...] = (
    "entry_id", "creation_seq", "failure_mode", "status", "occurrences", "days_seen", "first_seen", "last_seen",
    "example_event_ids", "representative_event_id", "input_text", "ai_output", "expected_output", "correctness",
    "failure_tags", "system", "model_version", "segment", "fingerprint", "minhash", "dedup_key", "created_at",
    "created_run_id", "status_changed_at", "status_run_id", "last_run_id", "last_run_at", "last_run_passed",
)
CONTRIBUTION_COLUMNS: tuple[str, ...] = ("entry_id", "occurrences", "first_seen", "last_seen", "example_event_ids")
EVENT_COLUMNS: tuple[str, ...] = ("entry_id", "occurred_at", "run_id", "from_status", "to_status", "reason")

_TIME_COLUMNS = ("first_seen", "last_seen", "created_at", "status_changed_at", "last_run_at")
_INT_COLUMNS = ("creation_seq", "occurrences", "days_seen")


def _utc(values: Any) -> pd.Series:
    """Values as a ``datetime64[us, UTC]`` Series (keeping the index of a Series)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = pd.to_datetime(series, utc=True, format="mixed")
    elif series.dt.tz is None:
        series = series.dt.tz_localize("UTC")
    return series.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def empty_entries() -> pd.DataFrame:
    """A library with no entry, with the column dtypes every function here expects."""
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in ENTRY_COLUMNS})
    return conform_entries(frame)


def conform_entries(entries: pd.DataFrame) -> pd.DataFrame:
    """``entries`` with ENTRY_COLUMNS in order, canonical dtypes, rows in founding order (``creation_seq``)."""
    frame = entries.reindex(columns=list(ENTRY_COLUMNS))
    if len(frame) and not frame["creation_seq"].is_monotonic_increasing:
        frame = frame.sort_values("creation_seq", kind="stable")
    frame = frame.reset_index(drop=True)
    for column in _TIME_COLUMNS:
        frame[column] = _utc(frame[column]) if len(frame) else pd.Series(dtype="datetime64[us, UTC]")
    for column in _INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    frame["last_run_passed"] = frame["last_run_passed"].astype("boolean")
    return frame


def entry_id_for(failure_mode: str, representative_event_id: str) -> str:
    """Stable id of an entry: the failure mode and the event that founded it."""
    return hashlib.sha256(f"{failure_mode}\x1f{representative_event_id}".encode()).hexdigest()[:16]


def required_columns(config: EdgeCaseConfig) -> list[str]:
    """labeled_cases columns a merge reads (so the shell can read only those)."""
    return list(dict.fromkeys(["event_id", "timestamp", config.text_column, *REPLAY_FIELDS,
                               *rule_columns(config.rules)]))


ACCEPTED_BUT_WRONG = "reviewed_accepted_but_wrong"
"""The failure mode of a case a human accepted and an expert reviewer found wrong (a silent error); apart from
the rule-based ``accepted_but_wrong`` (ground truth says so), since the evidence differs."""
REVIEWED_COLUMNS: tuple[str, ...] = ("event_id", "ai_correct", "reviewed_label")
"""The review_labels columns a merge reads."""


def reviewed_mistakes(cases: pd.DataFrame, reviewed: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The cases with their reviewed label where the audit found an accepted suggestion wrong, and that mask.

    An accepted case's implicit label is its own output, so without ground truth no rule can see it fail; the
    reviewers' adjudicated verdict (``review_labels``: ``ai_correct`` False, ``reviewed_label`` not null) can. Such
    a case becomes the failure mode ``reviewed_accepted_but_wrong`` whatever the rules say (its own mode: the
    mistake humans let through), with the reviewed label as its expected output (``label``) and correctness
    ``wrong``. Other reviewed cases are left as the rules see them.
    """
    none = np.zeros(len(cases), dtype=bool)
    if reviewed is None or reviewed.empty or "user_action" not in cases.columns:
        return cases, none
    verdicts = reviewed.loc[(reviewed["ai_correct"].astype("boolean") == False)  # noqa: E712 (nullable)
                            .fillna(False).to_numpy(dtype=bool) & reviewed["reviewed_label"].notna().to_numpy(),
                            ["event_id", "reviewed_label"]]
    label_of = pd.Series(verdicts["reviewed_label"].astype(str).to_numpy(),
                         index=verdicts["event_id"].astype(str).to_numpy())
    found = cases["event_id"].astype(str).map(label_of)
    accepted = (cases["user_action"].astype("object") == "accepted").to_numpy(dtype=bool)
    mask = accepted & found.notna().to_numpy()
    if not mask.any():
        return cases, none
    cases = cases.copy()
    cases["label"] = cases["label"].astype("object").where(~mask, found)
    cases["correctness"] = cases["correctness"].astype("object").where(~mask, "wrong")
    return cases, mask


@dataclass(frozen=True)
class RerunBasis:
    """What a re-merge of an already merged day needs: the entries that day contributed to, and their totals over
    every other day (entries absent from ``others`` occur on no other day)."""

    previous: frozenset[str]
    others: pd.DataFrame  # entry_id, occurrences, days_seen, first_seen, last_seen


def rerun_basis_from_ledger(ledger: pd.DataFrame, day: str) -> RerunBasis | None:
    """The :class:`RerunBasis` of ``day`` from ledger rows; None when the day has no rows (nothing to take out).

    ``ledger``: ``partition_date``, ``entry_id``, ``occurrences``, ``first_seen``, ``last_seen`` — the
    ``edge_case_days`` rows of ``day`` and of the other days of the entries it contributed to (rows of other entries
    are ignored). A row may stand for several days of one entry: it then has a ``days_seen`` column (absent: each row
    is one day) and any ``partition_date`` other than ``day`` (null included). That is how
    :func:`eval_pipelines.edge_cases.store.rerun_basis` calls it, the other days pre-aggregated in SQL so it moves
    one row per entry rather than one per entry and day.
    """
    dates = pd.to_datetime(ledger["partition_date"], errors="coerce").dt.strftime("%Y-%m-%d")
    is_day = (dates == day).fillna(False).to_numpy(dtype=bool)
    if not is_day.any():
        return None
    previous = frozenset(ledger.loc[is_day, "entry_id"].astype(str).tolist())
    rest = ledger.loc[~is_day & ledger["entry_id"].astype(str).isin(previous).to_numpy(dtype=bool)]
    days = rest["days_seen"] if "days_seen" in rest.columns else pd.Series(1, index=rest.index, dtype="int64")
    others = rest.assign(entry_id=rest["entry_id"].astype(str), days_seen=days.astype("int64")).groupby(
        "entry_id", as_index=False).agg(occurrences=("occurrences", "sum"), days_seen=("days_seen", "sum"),
                                        first_seen=("first_seen", "min"), last_seen=("last_seen", "max"))
    return RerunBasis(previous=previous, others=others)


@dataclass(frozen=True)
class DayMerge:
    """The library after merging a day, and what changed."""

    entries: pd.DataFrame  # the whole library, ENTRY_COLUMNS
    contribution: pd.DataFrame  # this day's ledger rows: CONTRIBUTION_COLUMNS
    new_ids: list[str]
    updated_ids: list[str]  # existing entries whose count columns changed
    removed_ids: list[str]  # entries left without any occurrence by a re-merge (never scored)
    resigned_ids: list[str]  # existing entries whose stored signature was recomputed (dedup settings changed)
    events: pd.DataFrame  # EVENT_COLUMNS
    stats: dict[str, Any] = field(default_factory=dict)


def _examples(event_ids: Iterable[str]) -> str:
    return json.dumps(list(event_ids))


def _contribution(failing: pd.DataFrame, max_examples: int) -> pd.DataFrame:
    """Per entry: cases of the day, first and last timestamp, the first ``max_examples`` event ids."""
    if failing.empty:
        return pd.DataFrame({"entry_id": pd.Series(dtype="str"), "occurrences": pd.Series(dtype="int64"),
                             "first_seen": pd.Series(dtype="datetime64[us, UTC]"),
                             "last_seen": pd.Series(dtype="datetime64[us, UTC]"),
                             "example_event_ids": pd.Series(dtype="str")})
    grouped = failing.groupby("entry_id", sort=True)
    counts = grouped.agg(occurrences=("event_id", "size"), first_seen=("timestamp", "min"),
                         last_seen=("timestamp", "max"))
    examples = failing.groupby("entry_id", sort=True).head(max_examples).groupby("entry_id", sort=True)["event_id"]
    counts["example_event_ids"] = examples.agg(_examples)
    return counts.reset_index().astype({"occurrences": "int64"})


def _entry_signatures(entries: pd.DataFrame, hasher: MinHasher, key: str, text_normaliser: Any) -> tuple[
        np.ndarray, np.ndarray]:
    """The entries' signatures: stored ones when computed with the same settings, else recomputed from their input.

    Returns the signature matrix and the boolean mask of recomputed rows.
    """
    m = hasher.num_perm
    signatures = np.zeros((len(entries), m), dtype=np.uint32)
    if not len(entries):
        return signatures, np.zeros(0, dtype=bool)
    stored = entries["minhash"].to_numpy(dtype=object)
    usable = (entries["dedup_key"].to_numpy(dtype=object) == key) & np.array(
        [isinstance(blob, bytes | bytearray | memoryview) and len(blob) == 4 * m for blob in stored], dtype=bool)
    if usable.any():
        signatures[usable] = np.frombuffer(b"".join(bytes(blob) for blob in stored[usable]),
                                           dtype=np.uint32).reshape(-1, m)
    if (~usable).any():
        texts = entries.loc[~usable, "input_text"]
        signatures[~usable] = hasher.signatures(text_normaliser(texts))
    return signatures, ~usable


def merge_day(entries: pd.DataFrame, cases: pd.DataFrame, day: str, config: EdgeCaseConfig, run_id: str | None,
              at: datetime, rerun: RerunBasis | None = None, reviewed: pd.DataFrame | None = None) -> DayMerge:
    """Merge one day of labeled cases into the library.

    ``entries``: the current library (ENTRY_COLUMNS; ``empty_entries()`` to start). ``cases``: that day's
    labeled_cases (at least ``required_columns(config)``). ``rerun``: given when the day was merged before (see
    :class:`RerunBasis`); ``None`` for a day merged for the first time. ``run_id``/``at`` stamp new entries and their
    ``created`` events. ``reviewed``: the day's ``review_labels`` (``REVIEWED_COLUMNS``), when audited: accepted
    cases the reviewers found wrong enter as ``reviewed_accepted_but_wrong`` with their reviewed label
    (:func:`reviewed_mistakes`).

    Steps: rules give each case its failure mode; cases with the same mode and the same normalised text form a unit
    (exact duplicates, one signature); each unit joins the oldest entry of its mode whose representative is similar
    enough (estimated Jaccard >= threshold); unmatched units are clustered among themselves (leader clustering, same
    rule) and each cluster founds a new entry whose representative is its earliest case. Because a unit always
    joins the *oldest* similar entry and entries are kept in founding order (``creation_seq``), merging a day again
    assigns every case exactly as the first time. Returns the new library and the day's contribution.
    """
    dedup = config.dedup
    entries = conform_entries(entries)
    key = dedup_key(dedup)
    keep = required_columns(config)
    missing = [column for column in keep if column not in cases.columns]
    if missing:
        raise KeyError(f"merge_day: the day's cases lack column(s) {missing} (labeled_cases columns and the "
                       "columns the edge_cases rules read)")
    modes = classify(cases, config)
    cases, mistaken = reviewed_mistakes(cases, reviewed)
    if mistaken.any():
        modes = modes.astype("object").where(~mistaken, ACCEPTED_BUT_WRONG)
    failing_mask = modes.notna().to_numpy(dtype=bool)
    failing = cases.loc[failing_mask, keep].assign(failure_mode=modes[failing_mask].to_numpy())
    failing["timestamp"] = _utc(failing["timestamp"])
    failing["event_id"] = failing["event_id"].astype("str")
    failing = failing.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)

    normalised = normalise(failing[config.text_column])
    prints = fingerprints(normalised)
    mode_hash = group_hash(failing["failure_mode"].to_numpy(dtype=object))
    unit_codes, first_rows = _units(prints, mode_hash)
    unit_rows = failing.iloc[first_rows].reset_index(drop=True)
    unit_modes = unit_rows["failure_mode"].to_numpy(dtype=object)
    unit_texts = normalised.take(first_rows)
    unit_prints = prints[first_rows]

    entry_modes = entries["failure_mode"].to_numpy(dtype=object)
    resigned = np.zeros(len(entries), dtype=bool)
    if dedup.method == "minhash":
        hasher = MinHasher.from_config(dedup)
        unit_signatures = hasher.signatures(unit_texts)
        entry_signatures, resigned = _entry_signatures(entries, hasher, key, normalise)
        matches = match_signatures(unit_signatures, group_hash(unit_modes), entry_signatures,
                                   group_hash(entry_modes), dedup.bands, dedup.threshold).index
    else:
        unit_signatures = np.zeros((len(unit_rows), 0), dtype=np.uint32)
        entry_signatures = np.zeros((len(entries), 0), dtype=np.uint32)
        entry_prints = _entry_fingerprints(entries, key)
        lookup: dict[tuple[str, int], int] = {}
        for row, (mode, fp) in enumerate(zip(entry_modes, entry_prints.tolist(), strict=True)):
            lookup.setdefault((mode, int(fp)), row)  # the oldest entry with this text, as for minhash
        matches = np.array([lookup.get((mode, int(fp)), -1) for mode, fp in zip(unit_modes, unit_prints,
                                                                                   strict=True)], dtype=np.int64)

    unit_entry = np.empty(len(unit_rows), dtype=object)
    entry_ids = entries["entry_id"].to_numpy(dtype=object)
    matched = matches >= 0
    unit_entry[matched] = entry_ids[matches[matched]]

    unmatched = np.flatnonzero(~matched)
    if dedup.method == "minhash":
        labels = cluster_signatures(unit_signatures[unmatched], group_hash(unit_modes[unmatched]), dedup.bands,
                                    dedup.threshold)
    else:
        labels = np.arange(len(unmatched), dtype=np.int64)
    founders: list[int] = []  # unit index of each new cluster's representative, in order of appearance
    cluster_ids: list[str] = []
    known = set(entry_ids.tolist())
    seen_clusters: dict[int, str] = {}
    for unit, label in zip(unmatched.tolist(), labels.tolist(), strict=True):
        if label not in seen_clusters:
            row = unit_rows.iloc[unit]
            new_id = entry_id_for(row["failure_mode"], row["event_id"])
            seen_clusters[label] = new_id
            if new_id not in known:  # an entry founded by this very case already exists: it is that entry
                founders.append(unit)
                cluster_ids.append(new_id)
                known.add(new_id)
        unit_entry[unit] = seen_clusters[label]

    failing["entry_id"] = unit_entry[unit_codes] if len(failing) else pd.Series(dtype="object")
    contribution = _contribution(failing, config.max_examples)

    next_seq = int(entries["creation_seq"].max()) + 1 if len(entries) else 0
    new_entries = _new_entries(unit_rows, founders, cluster_ids, contribution, config, unit_prints,
                               unit_signatures, key, run_id, at, next_seq)
    updated, removed, updated_ids = _apply_contribution(entries, contribution, rerun)
    if resigned.any():
        updated.loc[resigned, "minhash"] = [sig.tobytes() for sig in entry_signatures[resigned]]
        updated.loc[resigned, "fingerprint"] = fingerprint_hex(
            fingerprints(normalise(entries.loc[resigned, "input_text"])))
        updated.loc[resigned, "dedup_key"] = key
    library = pd.concat([updated[~updated["entry_id"].isin(removed)], new_entries], ignore_index=True) \
        if len(new_entries) else updated[~updated["entry_id"].isin(removed)].reset_index(drop=True)
    library = conform_entries(library)

    events = [{"entry_id": entry_id, "occurred_at": at, "run_id": run_id, "from_status": None,
               "to_status": OPEN, "reason": f"first seen in production on {day}"} for entry_id in cluster_ids]
    events += [{"entry_id": entry_id, "occurred_at": at, "run_id": run_id, "from_status": OPEN,
                "to_status": "removed", "reason": f"re-merge of {day} left no occurrence"} for entry_id in removed]
    stats = {
        "cases": len(cases), "failing_cases": len(failing), "units": len(unit_rows),
        "units_matched": int(matched.sum()), "new_entries": len(cluster_ids),
        "cases_in_new_entries": int(contribution.loc[contribution["entry_id"].isin(cluster_ids),
                                                     "occurrences"].sum()),
        "by_failure_mode": {str(k): int(v) for k, v in failing["failure_mode"].value_counts().sort_index().items()},
    }
    resigned_ids = entries.loc[resigned, "entry_id"].tolist()
    return DayMerge(entries=library, contribution=contribution, new_ids=list(cluster_ids),
                    updated_ids=[i for i in updated_ids if i not in set(removed)], removed_ids=removed,
                    resigned_ids=resigned_ids, events=pd.DataFrame(events, columns=list(EVENT_COLUMNS)),
                    stats=stats)


def _units(prints: np.ndarray, mode_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit code per case (0.. in order of first appearance) and the first case row of each unit."""
    if not len(prints):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    combined = mix64(prints ^ mode_hash)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()], first[order]


def _entry_fingerprints(entries: pd.DataFrame, key: str) -> np.ndarray:
    """Stored fingerprints when computed with the current settings, else recomputed from the entries' input."""
    if not len(entries):
        return np.empty(0, dtype=np.uint64)
    stored = entries["fingerprint"].astype("str").to_numpy(dtype=object)
    usable = entries["dedup_key"].to_numpy(dtype=object) == key
    values = np.zeros(len(entries), dtype=np.uint64)
    values[usable] = np.array([int(v, 16) for v in stored[usable]], dtype=np.uint64)
    if (~usable).any():
        values[~usable] = fingerprints(normalise(entries.loc[~usable, "input_text"]))
    return values


def _new_entries(unit_rows: pd.DataFrame, founders: list[int], ids: list[str], contribution: pd.DataFrame,
                 config: EdgeCaseConfig, unit_prints: np.ndarray, unit_signatures: np.ndarray, key: str,
                 run_id: str | None, at: datetime, next_seq: int) -> pd.DataFrame:
    if not founders:
        return empty_entries()
    rows = unit_rows.iloc[founders].reset_index(drop=True)
    counts = contribution.set_index("entry_id").loc[ids]
    at_utc = pd.Timestamp(at).tz_convert("UTC") if pd.Timestamp(at).tzinfo else pd.Timestamp(at, tz="UTC")
    frame = pd.DataFrame({
        "entry_id": ids,
        "creation_seq": np.arange(next_seq, next_seq + len(ids), dtype=np.int64),
        "failure_mode": rows["failure_mode"].to_numpy(dtype=object),
        "status": OPEN,
        "occurrences": counts["occurrences"].to_numpy(dtype=np.int64),
        "days_seen": 1,
        "first_seen": counts["first_seen"].to_numpy(),
        "last_seen": counts["last_seen"].to_numpy(),
        "example_event_ids": counts["example_event_ids"].to_numpy(dtype=object),
        "representative_event_id": rows["event_id"].to_numpy(dtype=object),
        "input_text": rows[config.text_column].to_numpy(dtype=object),
        "ai_output": rows["ai_output"].to_numpy(dtype=object),
        "expected_output": rows["label"].to_numpy(dtype=object),
        "correctness": rows["correctness"].to_numpy(dtype=object),
        "failure_tags": rows["failure_tags"].to_numpy(dtype=object),
        "system": rows["system"].to_numpy(dtype=object),
        "model_version": rows["model_version"].to_numpy(dtype=object),
        "segment": rows["segment"].to_numpy(dtype=object),
        "fingerprint": fingerprint_hex(unit_prints[founders]),
        "minhash": [unit_signatures[i].tobytes() if unit_signatures.shape[1] else None for i in founders],
        "dedup_key": key,
        "created_at": at_utc,
        "created_run_id": run_id,
        "status_changed_at": at_utc,
        "status_run_id": run_id,
        "last_run_id": None,
        "last_run_at": pd.NaT,
        "last_run_passed": pd.NA,
    })
    return conform_entries(frame)


def _apply_contribution(entries: pd.DataFrame, contribution: pd.DataFrame,
                        rerun: RerunBasis | None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Entries with this day's contribution applied to their count columns (and a previous one taken out).

    Vectorised over whole columns: the contribution (and, for a re-merge, the other days' totals) is aligned to the
    library by entry id, so 100k entries cost a few column operations, not a per-entry update.
    """
    updated = entries.copy()
    ids = pd.Index(updated["entry_id"])
    occurrences = updated["occurrences"].to_numpy(dtype=np.int64).copy()
    days_seen = updated["days_seen"].to_numpy(dtype=np.int64).copy()
    first_seen = updated["first_seen"].copy()
    last_seen = updated["last_seen"].copy()
    touched = np.zeros(len(updated), dtype=bool)
    if rerun is not None and rerun.previous:
        previous = ids.isin(list(rerun.previous))
        others = rerun.others.set_index("entry_id").reindex(ids)
        occurrences = np.where(previous, others["occurrences"].fillna(0).to_numpy(dtype=np.int64), occurrences)
        days_seen = np.where(previous, others["days_seen"].fillna(0).to_numpy(dtype=np.int64), days_seen)
        base_first = _utc(others["first_seen"]).set_axis(first_seen.index)
        base_last = _utc(others["last_seen"]).set_axis(last_seen.index)
        first_seen = base_first.where(previous, first_seen)
        last_seen = base_last.where(previous, last_seen)
        touched |= previous
    aligned = contribution.set_index("entry_id").reindex(ids)
    present = aligned["occurrences"].notna().to_numpy()
    if present.any():
        occurrences = occurrences + aligned["occurrences"].fillna(0).to_numpy(dtype=np.int64)
        days_seen = days_seen + present.astype(np.int64)
        new_first = _utc(aligned["first_seen"]).set_axis(first_seen.index)
        new_last = _utc(aligned["last_seen"]).set_axis(last_seen.index)
        # NaT compares False: an entry without a first/last seen (emptied by a re-merge) takes the day's.
        first_seen = first_seen.where(~present | (first_seen <= new_first), new_first)
        last_seen = last_seen.where(~present | (last_seen >= new_last), new_last)
        touched |= present
    updated["occurrences"] = occurrences
    updated["days_seen"] = days_seen
    updated["first_seen"] = first_seen
    updated["last_seen"] = last_seen
    removed: list[str] = []
    if rerun is not None:
        empty = touched & (occurrences == 0) & (updated["status"] == OPEN).to_numpy() \
            & updated["last_run_id"].isna().to_numpy()
        removed = updated.loc[empty, "entry_id"].tolist()
    return updated, removed, updated.loc[touched, "entry_id"].tolist()


# ----------------------------------------------------------------------------------------------------------------
# Lifecycle
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LifecycleUpdate:
    """What a scored run did to the library."""

    entries: pd.DataFrame  # the whole library with lifecycle columns updated
    updates: pd.DataFrame  # entry_id + LIFECYCLE_COLUMNS for every entry the run scored
    changes: pd.DataFrame  # entry_id, from_status, to_status: the transitions only
    events: pd.DataFrame  # EVENT_COLUMNS, one per transition
    unknown: list[str]  # entry ids in the results that are not in the library (ignored)


def apply_run_results(library: pd.DataFrame, results: pd.DataFrame, run_id: str, at: datetime) -> LifecycleUpdate:
    """Move entries through open → fixed → regressed after a scored run replayed them.

    ``results``: ``entry_id`` and ``passed`` (bool) per replayed case; an entry replayed on several cases passes
    only if all of them pass. Transitions (``TRANSITIONS``): open + pass → fixed; fixed + fail → regressed;
    regressed + pass → fixed; anything else keeps its status. Every scored entry gets ``last_run_id``,
    ``last_run_at`` and ``last_run_passed``; a transition also sets ``status_changed_at``/``status_run_id`` and
    produces an event (``from_status``, ``to_status``, when and by which run).
    """
    if not {"entry_id", "passed"} <= set(results.columns):
        raise KeyError("results need entry_id and passed columns")
    library = conform_entries(library)
    outcome = results.assign(passed=results["passed"].astype("boolean").fillna(False).astype(bool)) \
        .groupby("entry_id", sort=True)["passed"].all()
    index = pd.Index(library["entry_id"])
    known = outcome.index.isin(index)
    unknown = outcome.index[~known].tolist()
    outcome = outcome[known]
    rows = index.get_indexer(outcome.index)
    before = library["status"].to_numpy(dtype=object)[rows]
    after = np.array([TRANSITIONS.get((status, bool(passed)), status)
                      for status, passed in zip(before, outcome.to_numpy(), strict=True)], dtype=object)
    moved = before != after
    at_utc = pd.Timestamp(at).tz_convert("UTC") if pd.Timestamp(at).tzinfo else pd.Timestamp(at, tz="UTC")
    updated = library.copy()
    updated.loc[rows, "last_run_id"] = run_id
    updated.loc[rows, "last_run_at"] = at_utc
    updated.loc[rows, "last_run_passed"] = outcome.to_numpy(dtype=bool)
    moved_rows = rows[moved]
    updated.loc[moved_rows, "status"] = after[moved]
    updated.loc[moved_rows, "status_changed_at"] = at_utc
    updated.loc[moved_rows, "status_run_id"] = run_id
    updated = conform_entries(updated)
    changes = pd.DataFrame({"entry_id": outcome.index[moved].tolist(), "from_status": before[moved],
                            "to_status": after[moved]})
    events = pd.DataFrame({
        "entry_id": changes["entry_id"], "occurred_at": [at_utc] * len(changes), "run_id": run_id,
        "from_status": changes["from_status"], "to_status": changes["to_status"],
        "reason": ["scored run passed" if to == FIXED else "scored run failed" for to in changes["to_status"]],
    }, columns=list(EVENT_COLUMNS))
    updates = updated.iloc[rows][["entry_id", *LIFECYCLE_COLUMNS]].reset_index(drop=True)
    return LifecycleUpdate(entries=updated, updates=updates, changes=changes, events=events, unknown=unknown)
