"""Settings of the ingestion safeguards (the ``ingestion`` section): limits on hostile input and the volume check."""

from __future__ import annotations

from pydantic import Field, model_validator

from eval_pipelines.settings_base import StrictModel

# json.loads and pandas.json_normalize recurse once (or twice) per level; 200 stays far below Python's default
# recursion limit of 1,000 with room for the frames already on the stack.
MAX_JSON_DEPTH_CEILING = 200


class VolumeCheckConfig(StrictModel):
    trailing_days: int = Field(7, ge=1, le=366, description="Days before the partition the volume is compared with.")
    min_days: int = Field(3, ge=1, le=366, description="Fewer ingested trailing days: the check passes with a note.")
    min_fraction: float = Field(
        0.2, ge=0, le=1,
        description="Blocking failure when the day's valid rows fall below this fraction of the trailing median.")

    @model_validator(mode="after")
    def _enough_days(self) -> VolumeCheckConfig:
        if self.min_days > self.trailing_days:
            raise ValueError(f"min_days ({self.min_days}) must be at most trailing_days ({self.trailing_days})")
        return self


class IngestionConfig(StrictModel):
    max_json_depth: int = Field(
        64, ge=1, le=MAX_JSON_DEPTH_CEILING,
        description="JSON lines nested deeper (objects and arrays) are quarantined before any parser sees them.")
    volume: VolumeCheckConfig = VolumeCheckConfig()
