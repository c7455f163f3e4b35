"""The imperfections real logs have, added to a generated landing directory so the demo tells those stories too.

* :func:`add_flawed_rows`: one day gets an extra file with a few rows ingestion must quarantine (not JSON, a
  confidence outside [0, 1], no event_id) and a few exact re-sends of rows already in the day (deduplicated on
  event_id). The day's quarantine rate stays far under ``quality.max_quarantine_rate``, so the day passes and the
  quarantine table and the ingestion_batches counts show them.
* :func:`write_late_file`: a file that lands in an old day's folder after that day was ingested (a late upload).
  ``make demo`` writes it after ``materialize``; the landing sensor of ``make dev`` sees the day changed and runs
  the day's chain again, so the day shows two materialisations and its KPIs, drift and scores follow.

Kept apart from generator.py on purpose: the generator's output is exact (its manifest reconciles with ingestion
row for row, tests rely on that); these files are extras on top, deterministic for a seed too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from eval_pipelines.demo.generator import _write_part, generate_day_table

FLAWED_FILE = "extra-000.jsonl"
LATE_FILE = "late-000.jsonl"
_LATE_SEED_OFFSET = 1_000_003  # a different seed: the late rows' event ids never collide with the day's own


@dataclass(frozen=True)
class Flaws:
    day: str
    path: Path
    quarantined: int
    duplicates: int


def add_flawed_rows(landing_dir: Path, day: date, duplicates: int = 4) -> Flaws:
    """Write ``<day>/extra-000.jsonl``: three rows ingestion quarantines and ``duplicates`` re-sent rows.

    The day must have been generated as JSON lines (``part-000.jsonl``), whose first rows are re-sent.
    """
    day_dir = Path(landing_dir) / day.isoformat()
    source = day_dir / "part-000.jsonl"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: flawed rows are added to a day generated as jsonl (--format jsonl)")
    with open(source, encoding="utf-8") as handle:
        first = [next(handle) for _ in range(duplicates + 2)]
    resent = first[:duplicates]
    out_of_range = json.loads(first[duplicates])
    out_of_range["event_id"] = f"{out_of_range['event_id']}-bad-confidence"
    out_of_range["confidence"] = 1.7  # outside [0, 1]: quarantined with its reason
    no_id = json.loads(first[duplicates + 1])
    no_id.pop("event_id")  # a required field missing
    lines = [*resent, json.dumps(out_of_range) + "\n", json.dumps(no_id) + "\n",
             '{"event_id": "truncated-upload", "timestamp": \n']  # a line cut off mid-write: not JSON
    path = day_dir / FLAWED_FILE
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(lines), encoding="utf-8")
    temporary.replace(path)
    return Flaws(day.isoformat(), path, quarantined=3, duplicates=duplicates)


def write_late_file(landing_dir: Path, day: date, events: int, seed: int, reply_share: float = 0.0) -> Path:
    """Write ``<day>/late-000.jsonl`` with ``events`` new events of ``day`` (distinct event ids), plus reply drafts
    for ``reply_share`` of them (:func:`generate_day_table`)."""
    if events < 1:
        raise ValueError(f"events must be >= 1, got {events}")
    day_dir = Path(landing_dir) / day.isoformat()
    day_dir.mkdir(parents=True, exist_ok=True)
    path = day_dir / LATE_FILE
    _write_part(generate_day_table(day, events, seed + _LATE_SEED_OFFSET, reply_share=reply_share), path, "jsonl")
    return path
