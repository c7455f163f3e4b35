"""What is in the landing directory, summarised per day so a sensor can tell what changed.

A day's fingerprint is a short hash of its files' names, sizes and modification times: a new file, a changed
file or a removed file all change it. The sensor keeps only ``{day: fingerprint}`` in its cursor, so the cursor
grows with the number of days, not files, and one ``os.scandir`` pass per day folder keeps a tick fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from eval_pipelines.ingestion.ingest import day_folder_date
from eval_pipelines.ingestion.readers import file_format

FINGERPRINT_CHARS = 12


def _day_entries(landing_dir: Path, folder_name: str, source_format: str) -> list[tuple[str, int, int]]:
    entries: list[tuple[str, int, int]] = []
    with os.scandir(landing_dir / folder_name) as files:
        for item in files:
            if item.is_file() and file_format(Path(item.name), source_format) is not None:
                stat = item.stat()
                entries.append((f"{folder_name}/{item.name}", stat.st_size, stat.st_mtime_ns))
    return entries


def day_fingerprint(landing_dir: Path, day: date, source_format: str = "auto") -> str | None:
    """The fingerprint of one day's files (both folder spellings), or None when the day has none."""
    entries: list[tuple[str, int, int]] = []
    for folder in (day.isoformat(), f"dt={day.isoformat()}"):
        if (landing_dir / folder).is_dir():
            entries += _day_entries(landing_dir, folder, source_format)
    return _fingerprint(entries) if entries else None


def scan_landing(landing_dir: Path, source_format: str = "auto") -> dict[str, str]:
    """``{YYYY-MM-DD: fingerprint}`` for every day folder holding at least one log file."""
    if not landing_dir.is_dir():
        return {}
    entries: dict[str, list[tuple[str, int, int]]] = {}
    with os.scandir(landing_dir) as days:
        for day_entry in days:
            day = day_folder_date(day_entry.name) if day_entry.is_dir() else None
            if day is not None:
                entries.setdefault(day.isoformat(), []).extend(_day_entries(landing_dir, day_entry.name,
                                                                                     source_format))
    return {day: _fingerprint(files) for day, files in entries.items() if files}


def _fingerprint(files: list[tuple[str, int, int]]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, size, mtime_ns in sorted(files):
        digest.update(f"{name}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def changed_days(previous: dict[str, str], current: dict[str, str]) -> list[str]:
    """Days whose fingerprint is new or different, oldest first."""
    return sorted(day for day, fingerprint in current.items() if previous.get(day) != fingerprint)


def encode_cursor(state: dict[str, str], listing: dict[str, Any] | None = None) -> str:
    """``{day: fingerprint}``; with an object-store listing pass in progress, ``{"days": ..., "listing": ...}``."""
    payload: dict[str, Any] = state if listing is None else {"days": state, "listing": listing}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def _cursor_payload(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        return {}  # an unreadable cursor means "seen nothing": every day is re-checked, which is safe
    return state if isinstance(state, dict) else {}


def decode_cursor(cursor: str | None) -> dict[str, str]:
    state = _cursor_payload(cursor)
    if isinstance(state.get("days"), dict):  # a day key is YYYY-MM-DD, never "days"
        state = state["days"]
    return {str(k): str(v) for k, v in state.items()}


def decode_listing(cursor: str | None) -> dict[str, Any] | None:
    """The object-store listing pass a cursor resumes, or None (start a new pass)."""
    listing = _cursor_payload(cursor).get("listing")
    return listing if isinstance(listing, dict) else None
