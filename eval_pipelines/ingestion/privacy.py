"""Masking applied to one ingested day, before its rows reach the lake, the warehouse or Dagster metadata.

What is masked (docs/privacy.md): the configured text fields of every valid row (``privacy.mask_fields``, default
every free-text field of the contract), and for every quarantined row its raw record and its reason (reasons
quote offending values); the raw record is then cut to ``privacy.max_raw_record_bytes``. A file's read error is
masked too (CSV and JSON parsers quote the offending line). The unmasked rows and records are kept only when
``privacy.keep_raw_in_lake`` is set, in their own lake datasets, never in the warehouse.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pandas as pd

from eval_pipelines.config import Settings
from eval_pipelines.ingestion.ingest import IngestResult
from eval_pipelines.ingestion.pii import Masker, mask_frame, truncate_utf8
from eval_pipelines.lake import Lake

RAW_ROWS_DATASET = "production_logs_raw"
RAW_QUARANTINE_DATASET = "quarantined_events_raw"

# A JSON line may spell any character as \uXXXX (json.dumps does by default): "b\u00fccher.de" or full-width
# digits would hide from the detectors, so raw records are read with those escapes decoded before masking.
_JSON_UNICODE_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4})+")


def _decode_unicode_escapes(text: str) -> str:
    if "\\u" not in text:
        return text

    def decode(match: re.Match[str]) -> str:
        units = bytes.fromhex("".join(match.group()[i + 2:i + 6] for i in range(0, len(match.group()), 6)))
        return units.decode("utf-16-be", errors="replace")  # surrogate pairs join; lone halves become U+FFFD

    return _JSON_UNICODE_ESCAPES.sub(decode, text)


def masker_for(settings: Settings) -> Masker:
    """The run's masker: salt from ``$<privacy.salt_env>``, phone regions from the config."""
    return Masker.from_env(settings.privacy.salt_env, settings.privacy.phone_regions)


def mask_ingest_result(result: IngestResult, settings: Settings, masker: Masker) -> tuple[IngestResult, int]:
    """The day with its PII masked (see the module docstring), and the number of masks in the valid rows."""
    valid, masks = mask_frame(result.valid, settings.masked_fields(), masker)
    quarantined = result.quarantined.copy()
    if len(quarantined):
        limit = settings.privacy.max_raw_record_bytes
        decoded = quarantined["raw_record"].astype("str").map(_decode_unicode_escapes, na_action="ignore")
        raw = masker.mask_series(decoded)[0]
        quarantined["raw_record"] = [truncate_utf8(value, limit) for value in raw.fillna("")]
        quarantined["reason"] = masker.mask_series(quarantined["reason"].astype("str"))[0].to_numpy(dtype=object)
    files = tuple(replace(f, error=masker.mask_optional(f.error)) for f in result.files)
    return replace(result, valid=valid, quarantined=quarantined, files=files), masks


def store_raw(lake: Lake, partition: str, result: IngestResult, keep: bool) -> None:
    """Write the unmasked day to the raw lake datasets when ``keep``; else remove a raw partition left earlier.

    Removing matters when the setting is turned off: the raw data of a re-ingested day must not outlive it.
    """
    for dataset, frame in ((RAW_ROWS_DATASET, result.valid), (RAW_QUARANTINE_DATASET, result.quarantined)):
        if keep:
            lake.write(dataset, partition, pd.DataFrame(frame).reset_index(drop=True))
        elif lake.exists(dataset, partition):
            lake.fs.rm(lake.path(dataset, partition))
