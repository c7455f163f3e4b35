"""Configuration section for: The edge-case library (validated as part of eval_pipelines.yaml)."""

from eval_pipelines.settings_base import StrictModel


class EdgeCaseConfig(StrictModel):
    """Placeholder until the section is designed."""
