"""Where the landing files are: ``landing_for(settings)`` gives a local directory or an object store behind one
interface, so the sensor and the asset do not care which.

A local path keeps today's code path (``os.scandir`` fingerprints, symlink and containment checks); an fsspec URL
goes through :mod:`eval_pipelines.ingestion.store` (bounded listing calls, ETag/size/mtime fingerprints, reads
streamed from the store).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from eval_pipelines.config import Settings, is_store_url
from eval_pipelines.ingestion import landing as local
from eval_pipelines.ingestion.ingest import (
    IngestResult,
    SkippedPath,
    day_folders,
    day_listing,
    ingest_files,
    ingest_opened,
    landing_root_skips,
)
from eval_pipelines.ingestion.store import ListingProgress, ObjectLanding, day_fingerprints


@dataclass(frozen=True)
class LandingScan:
    """One sensor tick's view: ``days`` (``{day: fingerprint}``) once a listing pass is complete, else None and
    ``progress`` to resume from on the next tick."""

    days: dict[str, str] | None
    progress: dict[str, Any] | None = None
    listed: int = 0


class LocalLanding:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder_label(self, day: date) -> str:
        return str(self.root / day.isoformat())

    def scan(self, source_format: str, progress: object = None) -> LandingScan:
        return LandingScan(local.scan_landing(self.root, source_format))

    def day_fingerprint(self, day: date, source_format: str) -> str | None:
        return local.day_fingerprint(self.root, day, source_format)

    def has_day_folder(self, day: date) -> bool:
        return bool(day_folders(self.root, day))

    def retraction_mark(self, day: date) -> str | None:
        folders = day_folders(self.root, day)
        return str(max(folder.stat().st_mtime_ns for folder in folders)) if folders else None

    def read_day(self, settings: Settings, day: date, partition_keys: Collection[str]) -> IngestResult:
        files, skipped = day_listing(self.root, day, settings.source.format)
        result = ingest_files(files, settings, day, root=self.root)
        return _with_skips(result, [*skipped, *landing_root_skips(self.root, partition_keys)])


class StoreLanding:
    def __init__(self, store: ObjectLanding, max_pages_per_tick: int, tick_budget_seconds: float) -> None:
        self.store = store
        self.max_pages_per_tick = max_pages_per_tick
        self.tick_budget_seconds = tick_budget_seconds

    def folder_label(self, day: date) -> str:
        return self.store.label(f"{day.isoformat()}/")

    def scan(self, source_format: str, progress: object = None) -> LandingScan:
        """Continue the listing pass in ``progress`` for at most ``max_pages_per_tick`` calls and the tick budget."""
        state = ListingProgress.from_json(progress)
        started = time.monotonic()
        slowest = 0.0
        for _ in range(self.max_pages_per_tick):
            before = time.monotonic()
            if self.store.advance(state, source_format, max_pages=1):
                return LandingScan(day_fingerprints(state.folders), None, state.listed)
            now = time.monotonic()
            slowest = max(slowest, now - before)
            # Another call only if it should still end inside the budget (judged by the slowest call so far).
            if now - started + slowest > self.tick_budget_seconds:
                break
        return LandingScan(None, state.to_json(), state.listed)

    def all_days(self, source_format: str) -> dict[str, str]:
        state = ListingProgress()
        while not self.store.advance(state, source_format, max_pages=self.max_pages_per_tick):
            pass
        return day_fingerprints(state.folders)

    def day_fingerprint(self, day: date, source_format: str) -> str | None:
        return self.store.day_fingerprint(day, source_format)

    def has_day_folder(self, day: date) -> bool:
        return bool(self.store.day_objects(day))

    def retraction_mark(self, day: date) -> str | None:
        return self.store.retraction_mark(day)

    def read_day(self, settings: Settings, day: date, partition_keys: Collection[str]) -> IngestResult:
        files, skipped = self.store.day_listing(day, settings.source.format)
        result = ingest_opened([(item.name, item.size) for item in files], self.store.open, settings, day)
        return _with_skips(result, [*skipped, *self.store.root_skips(set(partition_keys))])


Landing = LocalLanding | StoreLanding


def _with_skips(result: IngestResult, skipped: list[SkippedPath]) -> IngestResult:
    return replace(result, skipped=tuple(skipped))


def landing_for(settings: Settings) -> Landing:
    """The landing location of ``source.landing_dir``: a local directory, or an object store for an fsspec URL."""
    location = settings.source.landing_dir
    if not is_store_url(location):
        path = location[len("file://"):] if location.lower().startswith("file://") else location
        return LocalLanding(settings.resolve_path(path))
    listing = settings.source.listing
    return StoreLanding(ObjectLanding(location, settings.source.storage_options, listing.page_size),
                        listing.max_pages_per_tick, listing.tick_budget_seconds)


def landing_days(settings: Settings) -> dict[str, str]:
    """Every landing day with its fingerprint, from a complete listing (the CLI; not bounded to a tick)."""
    landing = landing_for(settings)
    if isinstance(landing, StoreLanding):
        return landing.all_days(settings.source.format)
    days = landing.scan(settings.source.format).days
    return days or {}
