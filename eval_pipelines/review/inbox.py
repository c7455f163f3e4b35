"""Reviewers' verdicts coming back: reading inbox files, validating every record, and what the sensor watches.

Layout: ``<inbox_dir>/<YYYY-MM-DD>/*.jsonl`` or ``*.csv``, one verdict per line/row with ``event_id``,
``reviewer``, ``label`` (required, non-empty strings) and optional ``comment`` and ``reviewed_at`` (ISO 8601; no
offset means UTC). Validation follows ingestion's rule, nothing lost: every record ends either accepted or
quarantined with a reason, in this order of checks:

1. unreadable: the file cannot be opened or decoded as UTF-8 (the whole file is one record, line 0), a JSONL line
   is not a JSON object, a CSV header lacks a required column, a CSV row has more fields than its header;
2. a required field missing or not a non-empty string, a ``reviewed_at`` that is not a timestamp;
3. unknown ``event_id``: not a task of that day's audit sample (a verdict outside the sample has no inclusion
   probability: it cannot enter the estimates);
4. a label outside the vocabulary of the task's system — not checked for a free-text system
   (``labeling.systems.<name>.output_kind: text`` without a ``review.vocabulary`` entry): there the verdict is
   the reply the case needed, any non-empty text, and a vocabulary built from the day's outputs would refuse every
   correction a reviewer writes;
5. a duplicate: the same reviewer already gave a verdict on the event (the first record wins, in file-name then
   line order; Label Studio annotations after the files).

Blank lines are not records. Nothing here imports dagster or touches the warehouse.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_FIELDS = ("event_id", "reviewer", "label")
OPTIONAL_FIELDS = ("comment", "reviewed_at")
INBOX_SUFFIXES = (".jsonl", ".csv")
RECORD_COLUMNS = ("source", "line", "event_id", "reviewer", "label", "comment", "reviewed_at", "record", "problem")
ACCEPTED_COLUMNS = ("event_id", "reviewer", "system", "label", "comment", "reviewed_at", "source", "line")
QUARANTINE_COLUMNS = ("source", "line", "event_id", "reviewer", "reason", "record")
FINGERPRINT_CHARS = 12
QUEUE_ASSET = "review_queue"
LABELS_ASSET = "review_labels"
INBOX_FINGERPRINT = "inbox_fingerprint"
"""Metadata key of the inbox state a review_labels materialisation read; the inbox sensor compares against it."""


@dataclass(frozen=True)
class VerdictRead:
    """The records of the day's verdict sources (one row per record, ``problem`` set when it could not be parsed)
    and how many records each source held (the left side of the conservation check)."""

    records: pd.DataFrame
    rows_in: dict[str, int]


def inbox_files(inbox_dir: Path, day: date) -> list[Path]:
    """The day's verdict files, sorted by name (hidden and temporary files are skipped)."""
    folder = inbox_dir / day.isoformat()
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir()
                  if path.is_file() and path.suffix.lower() in INBOX_SUFFIXES and not path.name.startswith("."))


def _record(source: str, line: int, values: Mapping[str, object] | None, record: str, problem: str | None
            ) -> dict[str, object]:
    values = values or {}
    return {"source": source, "line": line, **{name: values.get(name) for name in (*REQUIRED_FIELDS,
                                                                                  *OPTIONAL_FIELDS)},
            "record": record, "problem": problem}


def _jsonl_records(source: str, data: bytes) -> list[dict[str, object]]:
    records = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            records.append(_record(source, number, None, raw.decode("utf-8", errors="replace"),
                                   f"line is not UTF-8 text ({error.reason} at byte {error.start})"))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            records.append(_record(source, number, None, text, f"not valid JSON: {error.msg} at column "
                                                               f"{error.colno}"))
            continue
        if not isinstance(value, dict):
            records.append(_record(source, number, None, text,
                                   f"not a JSON object (got {type(value).__name__}); write one object per line"))
            continue
        records.append(_record(source, number, value, text, None))
    return records


def _csv_records(source: str, text: str) -> list[dict[str, object]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    records = []
    for row in reader:
        line = reader.line_num
        fields = [item for value in row.values() for item in (value if isinstance(value, list) else [value])]
        record = ",".join("" if value is None else str(value) for value in fields)
        if missing:
            records.append(_record(source, line, None, record, f"the CSV header lacks column(s) {missing}; it "
                                                               f"must name {list(REQUIRED_FIELDS)}"))
        elif None in row:
            records.append(_record(source, line, None, record,
                                   f"{len(header) + len(row[None])} fields but the header has {len(header)}"))
        else:
            values = {key: (value if value != "" else None) for key, value in row.items()}
            records.append(_record(source, line, values, record, None))
    return records


def read_file(path: Path, source: str) -> list[dict[str, object]]:
    """The records of one verdict file; an unreadable file is a single record (line 0) carrying the reason."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return [_record(source, 0, None, "", f"file cannot be read: {error.strerror or error}")]
    if path.suffix.lower() == ".jsonl":
        return _jsonl_records(source, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return [_record(source, 0, None, data[:200].decode("utf-8", errors="replace"),
                        f"file is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8 CSV")]
    return _csv_records(source, text)


def read_inbox(inbox_dir: Path, day: date) -> VerdictRead:
    """Every record of the day's inbox files; ``source`` is the path relative to ``inbox_dir``."""
    rows: list[dict[str, object]] = []
    rows_in: dict[str, int] = {}
    for path in inbox_files(inbox_dir, day):
        source = path.relative_to(inbox_dir).as_posix()
        found = read_file(path, source)
        rows_in[source] = len(found)
        rows.extend(found)
    return VerdictRead(pd.DataFrame(rows, columns=list(RECORD_COLUMNS)), rows_in)


def annotation_records(annotations: pd.DataFrame, source: str) -> VerdictRead:
    """Pulled Label Studio annotations as records, validated like inbox rows (line = position in the pull)."""
    rows = []
    for number, item in enumerate(annotations.to_dict("records"), start=1):
        shown = {k: v for k, v in item.items() if k in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)}
        rows.append(_record(source, number, item, json.dumps(shown, default=str, ensure_ascii=False), None))
    return VerdictRead(pd.DataFrame(rows, columns=list(RECORD_COLUMNS)), {source: len(rows)})


def combine(reads: Iterable[VerdictRead]) -> VerdictRead:
    reads = list(reads)
    frames = [r.records for r in reads if len(r.records)]
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RECORD_COLUMNS))
    return VerdictRead(records, {source: n for r in reads for source, n in r.rows_in.items()})


def _text(value: object) -> str | None:
    """A non-empty string value, else None (numbers are not accepted: ids and names are text)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _missing_to_none(values: pd.Series) -> list[object]:
    """A record column as Python values, a frame's NaN / NA as None (every field is text or absent)."""
    return [None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value
            for value in values.to_numpy(dtype=object)]


def _parse_stamps(values: list[object]) -> pd.Series:
    """Each string parsed as an ISO 8601 timestamp (UTC; NaT when it is not one), in one vectorised call."""
    texts = pd.Series([value if isinstance(value, str) else None for value in values], dtype="object")
    return pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")


def _field_problem(row: Mapping[str, object], stamp_parsed: bool) -> str | None:
    """The first field problem of one record; ``stamp_parsed``: whether its ``reviewed_at`` is a timestamp."""
    for name in REQUIRED_FIELDS:
        if _text(row[name]) is None:
            value = row[name]
            return f"{name}: missing or empty" if value is None or value == "" else \
                f"{name}: must be a non-empty string, got {type(value).__name__} {value!r}"
    comment = row["comment"]
    if comment is not None and not isinstance(comment, str):
        return f"comment: must be a string, got {type(comment).__name__}"
    stamp = row["reviewed_at"]
    if stamp is not None and (not isinstance(stamp, str) or not stamp_parsed):
        return f"reviewed_at: {stamp!r} is not an ISO 8601 timestamp (e.g. 2026-03-02T14:05:00Z)"
    return None


def validate_verdicts(read: VerdictRead, tasks: pd.DataFrame, vocabulary: Mapping[str, Sequence[str]],
                      free_text: Collection[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the records into accepted verdicts and quarantined records (module docstring for the rules).

    ``tasks``: the day's selected tasks, ``event_id`` and ``system``; ``vocabulary``: system -> allowed labels;
    ``free_text``: systems whose labels are free text (no vocabulary check).
    Returns (accepted with ``ACCEPTED_COLUMNS``, quarantined with ``QUARANTINE_COLUMNS``).
    """
    system_of = dict(zip(tasks["event_id"].astype(str), tasks["system"].astype(str), strict=True))
    allowed = {system: set(labels) for system, labels in vocabulary.items()}
    shown_of: dict[str, str] = {}
    records = read.records
    # Column by column, timestamps parsed in one call: a dict per record and a to_datetime per record cost
    # seconds on a day of 30,000 verdicts. The rules and their order are the module docstring's.
    column = {name: _missing_to_none(records[name]) for name in RECORD_COLUMNS}
    texts = {name: [_text(value) for value in column[name]] for name in REQUIRED_FIELDS}
    parsed = _parse_stamps(column["reviewed_at"])
    stamp_ok = parsed.notna().to_numpy()
    accepted_rows: list[int] = []
    systems: list[str] = []
    quarantined: list[dict[str, object]] = []
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for index in range(len(records)):
        event_id, reviewer, label = (texts[name][index] for name in REQUIRED_FIELDS)
        problem = column["problem"][index]
        reason = problem if isinstance(problem, str) else None
        if reason is None and (event_id is None or reviewer is None or label is None
                               or column["comment"][index] is not None
                               or column["reviewed_at"][index] is not None):
            reason = _field_problem({name: column[name][index] for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)},
                                    bool(stamp_ok[index]))
        if reason is None and event_id not in system_of:
            reason = (f"event_id {event_id!r} is not a review task of this day; verdicts belong in the inbox "
                      "folder of the task's partition_date (see the outbox file)")
        if reason is None and system_of[event_id] not in free_text:
            system = system_of[event_id]
            labels = allowed.get(system, set())
            if label not in labels:
                if system not in shown_of:
                    shown_of[system] = ", ".join(sorted(labels)[:20]) + (" ..." if len(labels) > 20 else "")
                reason = (f"label {label!r} is not in the vocabulary of system {system!r} ({shown_of[system]}); "
                          "use one of them or add it to review.vocabulary")
        if reason is None:
            first = seen.get((event_id, reviewer))
            if first is not None:
                reason = (f"duplicate: reviewer {reviewer!r} already gave a verdict on {event_id!r} in "
                          f"{first[0]} line {first[1]}; the first one is kept (edit it there to change it)")
        if reason is not None:
            quarantined.append({"source": column["source"][index], "line": int(column["line"][index]),
                                "event_id": event_id, "reviewer": reviewer, "reason": str(reason),
                                "record": str(column["record"][index])})
            continue
        seen[(event_id, reviewer)] = (str(column["source"][index]), int(column["line"][index]))
        accepted_rows.append(index)
        systems.append(system_of[event_id])
    parsed_values = parsed.to_numpy(dtype=object)
    stamps = [parsed_values[i] if column["reviewed_at"][i] else pd.NaT for i in accepted_rows]
    accepted_frame = pd.DataFrame({
        "event_id": [texts["event_id"][i] for i in accepted_rows],
        "reviewer": [texts["reviewer"][i] for i in accepted_rows],
        "system": systems,
        "label": [texts["label"][i] for i in accepted_rows],
        "comment": [column["comment"][i] if isinstance(column["comment"][i], str) else None for i in accepted_rows],
        "reviewed_at": stamps,
        "source": [column["source"][i] for i in accepted_rows],
        "line": [int(column["line"][i]) for i in accepted_rows],
    }, columns=list(ACCEPTED_COLUMNS)) if accepted_rows else pd.DataFrame([], columns=list(ACCEPTED_COLUMNS))
    accepted_frame["reviewed_at"] = pd.to_datetime(accepted_frame["reviewed_at"], utc=True)
    return accepted_frame, pd.DataFrame(quarantined, columns=list(QUARANTINE_COLUMNS))


def conservation(read: VerdictRead, accepted: pd.DataFrame, quarantined: pd.DataFrame) -> pd.DataFrame:
    """Per source: records read, accepted, quarantined, and whether they add up (``balanced``)."""
    sources = sorted(read.rows_in)
    frame = pd.DataFrame({
        "source": sources,
        "rows_in": [read.rows_in[s] for s in sources],
        "accepted": [int((accepted["source"] == s).sum()) for s in sources],
        "quarantined": [int((quarantined["source"] == s).sum()) for s in sources],
    })
    frame["balanced"] = frame["rows_in"] == frame["accepted"] + frame["quarantined"]
    return frame


def day_vocabulary(cases: pd.DataFrame, configured: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The labels a reviewer may give per system: ``review.vocabulary`` when it lists the system, else the
    distinct ``ai_output``, ``final_output`` and ``ground_truth`` values of the system's cases that day."""
    columns = [c for c in ("ai_output", "final_output", "ground_truth") if c in cases.columns]
    system_codes, systems = pd.factorize(cases["system"].astype(str))  # a null system is in no system
    found: list[set[str]] = [set() for _ in systems]
    for column in columns:
        # Distinct (system, value) pairs from integer codes: a million values are never turned into objects.
        value_codes, values = pd.factorize(cases[column])
        known = (system_codes >= 0) & (value_codes >= 0)
        width = len(values) + 1
        pairs = np.unique(system_codes[known].astype(np.int64) * width + value_codes[known])
        names = [str(value) for value in values]
        for pair in pairs.tolist():
            found[pair // width].add(names[pair % width])
    vocabulary: dict[str, tuple[str, ...]] = {}
    for index in np.argsort(np.asarray([str(s) for s in systems], dtype=str), kind="stable"):
        system = str(systems[index])
        vocabulary[system] = tuple(configured[system]) if system in configured else \
            tuple(sorted(label for label in found[index] if label))
    return vocabulary


# ------------------------------------------------------------------------------------------- what the sensor sees


def _entries(inbox_dir: Path, folder: str) -> list[tuple[str, int, int]]:
    entries = []
    with os.scandir(inbox_dir / folder) as files:
        for item in files:
            if item.is_file() and Path(item.name).suffix.lower() in INBOX_SUFFIXES and not item.name.startswith("."):
                stat = item.stat()
                entries.append((item.name, stat.st_size, stat.st_mtime_ns))
    return entries


def _fingerprint(entries: list[tuple[str, int, int]]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, size, mtime_ns in sorted(entries):
        digest.update(f"{name}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def inbox_fingerprint(inbox_dir: Path, day: date) -> str:
    """A short hash of the day's verdict files' names, sizes and mtimes; ``""`` when there are none."""
    folder = day.isoformat()
    entries = _entries(inbox_dir, folder) if (inbox_dir / folder).is_dir() else []
    return _fingerprint(entries) if entries else ""


def scan_inbox(inbox_dir: Path) -> dict[str, str]:
    """``{YYYY-MM-DD: fingerprint}`` for every day folder of the inbox holding at least one verdict file."""
    if not inbox_dir.is_dir():
        return {}
    found = {}
    with os.scandir(inbox_dir) as days:
        for entry in days:
            if not entry.is_dir():
                continue
            try:
                day = date.fromisoformat(entry.name)
            except ValueError:
                continue
            if entry.name != day.isoformat():
                continue  # 20260302 parses too, but the layout is YYYY-MM-DD
            entries = _entries(inbox_dir, entry.name)
            if entries:
                found[day.isoformat()] = _fingerprint(entries)
    return found
