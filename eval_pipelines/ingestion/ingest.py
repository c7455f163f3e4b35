"""One partition day of production logs: read every file, conform, deduplicate, account for every row.

The conservation rule is enforced here and nowhere else: for each file and for the day,
``rows_read == rows_valid + rows_quarantined + rows_duplicate + rows_conflicting``. A file that cannot be read at
all is reported as failed with its reason and contributes no rows; the other files still land.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import pandas as pd

from eval_pipelines.config import Settings
from eval_pipelines.ingestion.conform import SOURCE_FILE_COLUMN, SOURCE_LINE_COLUMN, Conformed, conform, day_window
from eval_pipelines.ingestion.readers import (
    LINE_COLUMN,
    OTLP_SUFFIXES,
    SUPPORTED_SUFFIXES,
    ReadResult,
    file_format,
    read_log_file,
)

QUARANTINE_COLUMNS = ("source_file", "line_number", "record_index", "reason", "field", "raw_record")
_DAY_DIR = re.compile(r"^(?:dt=)?(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class FileReport:
    source_file: str
    file_format: str
    size_bytes: int
    status: str  # "ok", "failed" (unreadable) or "refused" (a link out of the landing directory: never read)
    error: str | None
    rows_read: int
    rows_valid: int
    rows_quarantined: int
    rows_duplicate: int
    rows_conflicting: int = 0
    rows_filtered: int = 0  # OTLP spans source.span_filter left out: not events, so outside rows_read
    rows_joined: int = 0  # OTLP feedback records joined to a span of the day (source.feedback): outside rows_read


@dataclass(frozen=True)
class SkippedPath:
    """A path in the landing directory that no partition reads, and why (reported, never silently ignored)."""

    path: str  # relative to the landing directory
    reason: str


CONFLICT_COLUMNS = ("event_id", "kept_file", "kept_line", "dropped_file", "dropped_line")


@dataclass(frozen=True)
class IngestResult:
    day: date
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    files: tuple[FileReport, ...]
    # One row per dropped row whose content differs from the kept row of its event_id (CONFLICT_COLUMNS).
    conflicts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(CONFLICT_COLUMNS)))
    # Landing paths no partition reads (the day's folders and the landing directory's top level).
    skipped: tuple[SkippedPath, ...] = ()

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_valid(self) -> int:
        return len(self.valid)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)

    @property
    def rows_duplicate(self) -> int:
        return sum(f.rows_duplicate for f in self.files)

    @property
    def rows_conflicting(self) -> int:
        return sum(f.rows_conflicting for f in self.files)

    @property
    def rows_filtered(self) -> int:
        return sum(f.rows_filtered for f in self.files)

    @property
    def rows_joined(self) -> int:
        return sum(f.rows_joined for f in self.files)

    @property
    def files_failed(self) -> int:
        """Files whose rows are unknown: unreadable ones and refused ones (never opened)."""
        return sum(f.status != "ok" for f in self.files)

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def batch_record(self) -> dict[str, object]:
        """The day's row of ``ingestion_batches``."""
        return {
            "partition_date": self.day,
            "files_read": len(self.files) - self.files_failed,
            "files_failed": self.files_failed,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_quarantined,
            "rows_duplicate": self.rows_duplicate,
            "rows_conflicting": self.rows_conflicting,
            "rows_filtered": self.rows_filtered,
            "rows_joined": self.rows_joined,
            "quarantine_rate": self.quarantine_rate,
        }

    def file_records(self) -> list[dict[str, object]]:
        return [{"partition_date": self.day, **asdict(f)} for f in self.files]


def day_folder_date(name: str) -> date | None:
    """The partition date a landing folder stands for (``YYYY-MM-DD`` or ``dt=YYYY-MM-DD``), else None."""
    match = _DAY_DIR.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def day_folders(landing_dir: Path, day: date) -> list[Path]:
    """The day's folders that exist, in both spellings (``YYYY-MM-DD`` and ``dt=YYYY-MM-DD``)."""
    return [folder for folder in (landing_dir / day.isoformat(), landing_dir / f"dt={day.isoformat()}")
            if folder.is_dir()]


def day_listing(landing_dir: Path, day: date, source_format: str = "auto") -> tuple[list[Path], list[SkippedPath]]:
    """Every log file of a day in a stable order, and every other entry of its folders with the reason it is skipped.

    Links are listed whether or not they resolve: ``ingest_files`` refuses those leading out, with a reason.
    """
    files: list[Path] = []
    skipped: list[SkippedPath] = []
    for folder in day_folders(landing_dir, day):
        for entry in sorted(folder.iterdir()):
            name = str(entry.relative_to(landing_dir))
            if entry.is_dir() and not entry.is_symlink():
                skipped.append(SkippedPath(name, "subfolder: only files directly in a day folder are read"))
            elif file_format(entry, source_format) is None:
                expected = OTLP_SUFFIXES if source_format == "otlp_json" else SUPPORTED_SUFFIXES
                skipped.append(SkippedPath(name, f"unsupported file type for source.format {source_format}; "
                                                 "expected one of " + ", ".join(expected)))
            elif entry.is_file() or entry.is_symlink():
                files.append(entry)
            else:
                skipped.append(SkippedPath(name, "not a regular file"))
    return sorted(files), skipped


def landing_files(landing_dir: Path, day: date, source_format: str = "auto") -> list[Path]:
    """Every log file of a day, in a stable order, from both folder spellings."""
    return day_listing(landing_dir, day, source_format)[0]


def landing_root_skips(landing_dir: Path, partition_keys: Collection[str]) -> list[SkippedPath]:
    """Entries of the landing directory itself that no partition reads: non-date names, days outside the partitions."""
    if not landing_dir.is_dir():
        return []
    skipped: list[SkippedPath] = []
    for entry in sorted(landing_dir.iterdir()):
        day = day_folder_date(entry.name) if entry.is_dir() else None
        if not entry.is_dir():
            skipped.append(SkippedPath(entry.name, "a file at the top of the landing directory; files go in a "
                                                   "day folder YYYY-MM-DD/"))
        elif day is None:
            skipped.append(SkippedPath(entry.name, "folder name is not a day (YYYY-MM-DD or dt=YYYY-MM-DD)"))
        elif day.isoformat() not in partition_keys:
            skipped.append(SkippedPath(entry.name, "day outside the daily partitions (partitions.start_date .. "
                                                   "today)"))
    return skipped


def outside_landing(path: Path, root: Path) -> str | None:
    """Why ``path`` must not be read as a landing file of ``root``, or None when it may.

    A symbolic link (of the file or of a folder on its way) that leads out of the landing directory is refused:
    following ``landing/2026-02-02/x.csv -> /etc/shadow`` would copy the target, line by line, into
    ``quarantined_events.raw_record``. Links that stay inside the landing directory are followed.
    """
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # a dangling link or a loop
        return f"refused: cannot resolve the path ({type(error).__name__}); a broken or looping link?"
    if not real.is_relative_to(root.resolve()):
        return "refused: a symbolic link to a path outside the landing directory; not read"
    if not real.is_file():
        return "refused: not a regular file"
    return None


def ingest_files(paths: list[Path], settings: Settings, day: date, root: Path | None = None) -> IngestResult:
    """Ingest the given files as partition ``day``; ``root`` makes the recorded source paths relative.

    With ``root``, every path is resolved and read only if it stays inside ``root`` (see :func:`outside_landing`);
    a refused path is recorded with status ``refused`` and never opened. With ``source.feedback``, the day's files
    are all read before any is conformed: a feedback record may sit in another file than its span
    (:func:`join_feedback`).
    """
    selection = settings.source.feedback_spec()

    def read_each() -> Iterator[tuple[str, int, ReadResult | FileReport]]:
        for path in paths:
            name = str(path.relative_to(root)) if root is not None else path.name
            if root is not None:
                refusal = outside_landing(path, root)
                if refusal is not None:
                    yield name, 0, FileReport(name, file_format(path, settings.source.format) or "unknown", 0,
                                              "refused", refusal, 0, 0, 0, 0)
                    continue
                path = path.resolve()  # read the checked target, not the link: it could be re-pointed meanwhile
            result = read_log_file(path, settings.source.csv_delimiter, settings.ingestion.max_json_depth,
                                   settings.source.format, settings.source.span_filter_spec(), selection)
            yield name, path.stat().st_size if path.exists() else 0, result

    return _ingest_read(read_each(), settings, day)


def ingest_opened(files: Sequence[tuple[str, int]], open_file: Callable[[str], IO[bytes]], settings: Settings,
                  day: date) -> IngestResult:
    """Ingest files of an object store as partition ``day``: ``(name, size)`` each, read through ``open_file``.

    The same accounting as :func:`ingest_files`: ``name`` is what ``source_file`` records (relative to the landing
    prefix), so a day gives the same rows from a store as from a disk. There are no links to refuse in a store.
    """
    selection = settings.source.feedback_spec()

    def read_each() -> Iterator[tuple[str, int, ReadResult | FileReport]]:
        for name, size in files:
            yield name, size, read_log_file(PurePosixPath(name), settings.source.csv_delimiter,
                                            settings.ingestion.max_json_depth, settings.source.format,
                                            settings.source.span_filter_spec(), selection,
                                            open_file=lambda name=name: open_file(name))

    return _ingest_read(read_each(), settings, day)


def _ingest_read(files: Iterable[tuple[str, int, ReadResult | FileReport]], settings: Settings,
                 day: date) -> IngestResult:
    """The day's accounting over its files as read (``(name, size, result)``; a refused file is its report)."""
    selection = settings.source.feedback_spec()
    reports: list[FileReport | None] = []
    conformed_parts: list[Conformed] = []
    quarantine_parts: list[pd.DataFrame] = []
    waiting: list[tuple[int, str, int, ReadResult]] = []  # read, conformed once the day's feedback is known
    for name, size, result in files:
        if isinstance(result, FileReport):
            reports.append(result)
        elif result.error is not None:
            reports.append(FileReport(name, result.file_format, size, "failed", result.error, 0, 0, 0, 0))
        elif selection:
            waiting.append((len(reports), name, size, result))
            reports.append(None)
        else:
            reports.append(_conform_file(name, size, result, settings, day, conformed_parts, quarantine_parts))
    if waiting:
        joined = join_feedback([(name, result) for _, name, _, result in waiting])
        for (slot, name, size, result), (unmatched, matched) in zip(waiting, joined, strict=True):
            reports[slot] = _conform_file(name, size, result, settings, day, conformed_parts, quarantine_parts,
                                          unmatched, matched)
    return _deduplicate(day, conformed_parts, quarantine_parts, [r for r in reports if r is not None], settings)


def _conform_file(name: str, size: int, result: ReadResult, settings: Settings, day: date,
                  conformed_parts: list[Conformed], quarantine_parts: list[pd.DataFrame],
                  unmatched: pd.DataFrame | None = None, joined: int = 0) -> FileReport:
    """Conform one read file, collect its valid rows and quarantine, and report it (before deduplication)."""
    conformed = conform(result.rows, settings, day, name)
    rejected = pd.DataFrame(
        [(name, r.line_number, 0, r.reason, None, r.raw_record) for r in result.rejected],
        columns=list(QUARANTINE_COLUMNS),
    )
    unmatched = unmatched if unmatched is not None else rejected.iloc[:0]
    quarantine_parts += [rejected, unmatched, conformed.quarantined]
    conformed_parts.append(conformed)
    quarantined = len(rejected) + len(unmatched) + len(conformed.quarantined)
    return FileReport(name, result.file_format, size, "ok", None, result.rows_read + len(unmatched),
                      conformed.valid_count, quarantined, 0, rows_filtered=result.rows_filtered,
                      rows_joined=joined)


def join_feedback(files: list[tuple[str, ReadResult]]) -> list[tuple[pd.DataFrame, int]]:
    """Join the day's separately recorded feedback to its spans, in place; per file: its unjoined records, joined.

    A feedback record (an OTLP log-record event or a span annotation named in ``source.feedback``) joins the span
    of the day with its span id, whichever of the day's files holds either. Of several records of one name about
    one span, the latest (its time; then the later file and line) gives the values; its values take precedence
    over an event of the same name carried on the span itself, path by path (feedback arrives after the call).
    Every joined record is counted in its file's ``rows_joined``, superseded ones included. A record that names no
    span of the day (or cannot be read) is returned for quarantine, with the reason, and counted as read.
    """
    span_ids: set[str] = set()
    for _, result in files:
        if result.rows is not None and "span.span_id" in result.rows.columns:
            span_ids.update(result.rows["span.span_id"].dropna())
    latest: dict[tuple[str, str, str], tuple[tuple[int, int], dict]] = {}
    outcome: list[tuple[list[tuple], int]] = []
    order = 0
    for name, result in files:
        rejected: list[tuple] = []
        joined = 0
        for line_number, record in result.feedback:
            order += 1
            if record.problem is not None or record.span_id not in span_ids:
                reason = record.problem or (
                    f"{record.kind} {record.name!r} for span {record.span_id}: no span with this id passed "
                    "source.span_filter in this day's files (feedback is joined within its day's folder)")
                raw = json.dumps({"span_id": record.span_id, **record.values}, default=str, ensure_ascii=False)
                rejected.append((name, line_number, record.position, reason, None, raw))
                continue
            joined += 1
            key = (record.kind, record.name, record.span_id)
            rank = (record.time if record.time is not None else -1, order)
            if key not in latest or rank > latest[key][0]:
                latest[key] = (rank, record.values)
        outcome.append((rejected, joined))
    by_span: dict[str, dict] = {}
    for (_, _, span_id), (_, values) in latest.items():
        by_span.setdefault(span_id, {}).update(values)
    if by_span:
        wide = pd.DataFrame.from_dict(by_span, orient="index")
        for _, result in files:
            rows = result.rows
            if rows is None or not len(rows) or "span.span_id" not in rows.columns:
                continue
            aligned = wide.reindex(rows["span.span_id"].to_numpy())
            for column in aligned.columns:
                new = aligned[column].to_numpy(dtype=object)
                if column in rows.columns:
                    new = np.where(pd.isna(new), rows[column].to_numpy(dtype=object), new)
                rows[column] = new
    return [(pd.DataFrame(rejected, columns=list(QUARANTINE_COLUMNS)), joined) for rejected, joined in outcome]


def ingest_frame(frame: pd.DataFrame, settings: Settings, day: date, source_name: str) -> IngestResult:
    """Ingest rows that came from a query rather than a file (the SQL source); rows are numbered from 1."""
    raw = frame.reset_index(drop=True).copy()
    raw[LINE_COLUMN] = range(1, len(raw) + 1)
    conformed = conform(raw, settings, day, source_name)
    report = FileReport(source_name, "sql", 0, "ok", None, len(raw), conformed.valid_count,
                        len(conformed.quarantined), 0)
    return _deduplicate(day, [conformed], [conformed.quarantined], [report], settings)


def _deduplicate(day: date, conformed: list[Conformed], quarantine_parts: list[pd.DataFrame],
                 reports: list[FileReport], settings: Settings) -> IngestResult:
    """Keep one row per event_id across the day's files, chosen by content alone (see :func:`choose_survivors`)."""
    if conformed:
        # Concatenating Arrow-backed frames appends chunks rather than copying text; rows are filtered once, below.
        rows = pd.concat([part.rows for part in conformed], ignore_index=True)
        keep = ~np.concatenate([part.rejected for part in conformed])
    else:
        rows = conform(pd.DataFrame({LINE_COLUMN: pd.Series([], dtype="int64")}), settings, day, "").rows
        keep = np.ones(0, dtype=bool)
    kept = np.flatnonzero(keep)
    # Only rows whose id repeats are compared: on a clean day this is one vectorised pass and nothing else.
    repeated = kept[rows["event_id"].iloc[kept].duplicated(keep=False).to_numpy()]
    dropped, conflicting, conflicts = choose_survivors(rows, repeated)
    keep[dropped] = False
    duplicates_per_file = rows[SOURCE_FILE_COLUMN].iloc[dropped[~conflicting]].value_counts().to_dict()
    conflicts_per_file = rows[SOURCE_FILE_COLUMN].iloc[dropped[conflicting]].value_counts().to_dict()
    reports = [
        FileReport(**{**asdict(r),
                      "rows_valid": r.rows_valid - duplicates_per_file.get(r.source_file, 0)
                      - conflicts_per_file.get(r.source_file, 0),
                      "rows_duplicate": duplicates_per_file.get(r.source_file, 0),
                      "rows_conflicting": conflicts_per_file.get(r.source_file, 0)})
        for r in reports
    ]
    quarantine_parts = [q for q in quarantine_parts if len(q)]
    quarantined = (pd.concat(quarantine_parts, ignore_index=True) if quarantine_parts
                   else pd.DataFrame(columns=list(QUARANTINE_COLUMNS)))
    quarantined["line_number"] = quarantined["line_number"].astype("int64")
    quarantined["record_index"] = quarantined["record_index"].astype("int64")
    quarantined = quarantined.sort_values(["source_file", "line_number", "record_index"], kind="stable",
                                          ignore_index=True)
    valid = rows if keep.all() else rows.loc[keep]
    return IngestResult(day, valid.reset_index(drop=True), quarantined, tuple(reports), conflicts)


def choose_survivors(rows: pd.DataFrame, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Which of the valid rows sharing an event_id to keep, independent of file names and line order.

    ``candidates`` are the positions (in ``rows``) of valid rows whose event_id occurs more than once. Per
    event_id the kept row is the one with the most non-null fields (a later export usually adds the human's
    decision or the ground truth), then the latest timestamp, then the smallest content hash, so the choice is
    a function of the rows' content alone. A dropped row whose content (every canonical field and feature;
    the source file and line are not content) equals the kept row's is an exact duplicate; one that differs is
    a conflict, counted apart and listed. Returns the dropped positions, whether each is a conflict, and the
    conflicts as ``CONFLICT_COLUMNS``.
    """
    if not len(candidates):
        return candidates, np.zeros(0, dtype=bool), pd.DataFrame(columns=list(CONFLICT_COLUMNS))
    group = rows.iloc[candidates]
    content = group.drop(columns=[SOURCE_FILE_COLUMN, SOURCE_LINE_COLUMN])
    ranked = pd.DataFrame({
        "event_id": group["event_id"].to_numpy(dtype=object),
        "filled": content.notna().sum(axis=1).to_numpy(),
        "timestamp": group["timestamp"].to_numpy(),
        "digest": pd.util.hash_pandas_object(content, index=False).to_numpy(),
        "position": candidates,
    }).sort_values(["event_id", "filled", "timestamp", "digest"], ascending=[True, False, False, True],
                   kind="stable", ignore_index=True)
    first = ~ranked["event_id"].duplicated().to_numpy()
    survivor = np.flatnonzero(first)[np.cumsum(first) - 1]  # each row's group's first (kept) row
    dropped = ~first
    conflicting = (ranked["digest"].to_numpy() != ranked["digest"].to_numpy()[survivor])[dropped]
    kept_positions = ranked["position"].to_numpy()[survivor][dropped][conflicting]
    dropped_positions = ranked["position"].to_numpy()[dropped]
    conflict_positions = dropped_positions[conflicting]
    conflicts = pd.DataFrame({
        "event_id": rows["event_id"].iloc[conflict_positions].to_numpy(dtype=object),
        "kept_file": rows[SOURCE_FILE_COLUMN].iloc[kept_positions].to_numpy(dtype=object),
        "kept_line": rows[SOURCE_LINE_COLUMN].iloc[kept_positions].to_numpy(),
        "dropped_file": rows[SOURCE_FILE_COLUMN].iloc[conflict_positions].to_numpy(dtype=object),
        "dropped_line": rows[SOURCE_LINE_COLUMN].iloc[conflict_positions].to_numpy(),
    })
    return dropped_positions, conflicting, conflicts


@dataclass(frozen=True)
class CrossDayDuplicates:
    """Events of a day that also landed, valid, in a neighbouring day's partition."""

    event_ids: dict[date, list[str]]  # per neighbour compared: the shared ids, sorted
    not_ingested: tuple[date, ...]  # neighbours without a partition yet: their own run makes the comparison

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.event_ids.values())


def cross_day_duplicates(day: date, valid: pd.DataFrame, neighbours: Mapping[date, pd.DataFrame | None],
                         tolerance_minutes: float) -> CrossDayDuplicates:
    """The day's ``event_id``s found again in the partitions of the days before and after it.

    Deduplication is per day so that a day's rows never depend on the order its neighbours were ingested. A row
    passes only inside its day's window widened by the timestamp tolerance, so the same event can be valid in two
    partitions only if its timestamp lies within the tolerance of the midnight between two neighbouring days: only
    those rows are compared, on both sides. ``neighbours`` maps each neighbouring day to its ``event_id`` and
    ``timestamp`` columns, or to None when it has not been ingested. Whichever of two days is ingested second sees
    the other, so every pair is compared once both exist.
    """
    found: dict[date, list[str]] = {}
    not_ingested: list[date] = []
    for neighbour, frame in sorted(neighbours.items()):
        if frame is None:
            not_ingested.append(neighbour)
            continue
        midnight, _ = day_window(max(day, neighbour), 0)
        slack = timedelta(minutes=tolerance_minutes)
        ours, theirs = (rows.loc[(rows["timestamp"] >= midnight - slack) & (rows["timestamp"] < midnight + slack),
                                 "event_id"] for rows in (valid, frame))
        found[neighbour] = sorted(set(ours) & set(theirs))
    return CrossDayDuplicates(found, tuple(not_ingested))
