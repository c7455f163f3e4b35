"""The canonical event contract: one row per AI recommendation.

Everything downstream (labels, drift, KPIs, eval sets) reads these columns, so this module is the single
source of truth for their names, types, ranges and vocabularies. The row-level validator and the Great
Expectations suite are both generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldKind(StrEnum):
    STRING = "string"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    required: bool
    description: str
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    # Free text that may hold PII; masked in labeled_cases before anything leaves it.
    free_text: bool = False
    # Identifiers and categories become warehouse keys (VARCHAR); longer values are quarantined, not truncated.
    max_chars: int | None = None
    # A key or vocabulary with few distinct values (system, segment, status...), unlike ids and free text.
    low_cardinality: bool = False


IDENTIFIER_MAX_CHARS = 256


USER_ACTIONS = ("accepted", "edited", "overridden", "rejected", "ignored")
STATUSES = ("ok", "error", "timeout")

CANONICAL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("event_id", FieldKind.STRING, True, "Unique id of the recommendation event.",
              max_chars=IDENTIFIER_MAX_CHARS),
    FieldSpec("timestamp", FieldKind.TIMESTAMP, True, "When the AI produced the output (UTC)."),
    FieldSpec("system", FieldKind.STRING, True, "Which AI system / use case.",
              max_chars=IDENTIFIER_MAX_CHARS, low_cardinality=True),
    FieldSpec("model_version", FieldKind.STRING, True, "Version that produced the output.",
              max_chars=IDENTIFIER_MAX_CHARS, low_cardinality=True),
    FieldSpec("segment", FieldKind.STRING, True, "Business segment (tier, region, queue...).",
              max_chars=IDENTIFIER_MAX_CHARS, low_cardinality=True),
    FieldSpec("input_text", FieldKind.STRING, False, "The request text.", free_text=True),
    FieldSpec("ai_output", FieldKind.STRING, True, "The recommendation."),
    FieldSpec("confidence", FieldKind.FLOAT, False, "The system's confidence.", minimum=0.0, maximum=1.0),
    FieldSpec("latency_ms", FieldKind.FLOAT, True, "Time to produce the output, milliseconds.", minimum=0.0),
    FieldSpec("cost_usd", FieldKind.FLOAT, True, "Inference cost of the output, US dollars.", minimum=0.0),
    FieldSpec("status", FieldKind.STRING, True, "Reliability outcome.", allowed=STATUSES, low_cardinality=True),
    FieldSpec("user_action", FieldKind.STRING, False, "What the human did; null when no human was in the loop.",
              allowed=USER_ACTIONS, low_cardinality=True),
    FieldSpec("final_output", FieldKind.STRING, False, "What was finally decided (the implicit label)."),
    FieldSpec("decision_seconds", FieldKind.FLOAT, False, "How long the human took to decide, seconds.",
              minimum=0.0),
    FieldSpec("ground_truth", FieldKind.STRING, False, "A later, authoritative outcome, when one exists."),
    FieldSpec("compliance_flag", FieldKind.BOOL, False, "A compliance issue was raised on the case."),
    FieldSpec("complaint", FieldKind.BOOL, False, "The customer complained about the outcome."),
    FieldSpec("escalation", FieldKind.BOOL, False, "The case was escalated."),
)

FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in CANONICAL_FIELDS}
CANONICAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in CANONICAL_FIELDS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in CANONICAL_FIELDS if f.required)
# Text a person wrote or a model generated (not an identifier nor a vocabulary): may hold personal data, so
# ingestion masks these by default (privacy.mask_fields). input_text, ai_output, final_output, ground_truth.
PII_TEXT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in CANONICAL_FIELDS
    if f.kind is FieldKind.STRING and f.max_chars is None and f.allowed is None)
