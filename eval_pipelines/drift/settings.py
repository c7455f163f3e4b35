"""Configuration section for: Drift reports (validated as part of eval_pipelines.yaml)."""

from eval_pipelines.settings_base import StrictModel


class DriftConfig(StrictModel):
    """Placeholder until the section is designed."""
