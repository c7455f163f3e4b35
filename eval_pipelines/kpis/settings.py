"""Configuration section for: Business KPIs and the impact model (validated as part of eval_pipelines.yaml)."""

from eval_pipelines.settings_base import StrictModel


class ImpactConfig(StrictModel):
    """Placeholder until the section is designed."""
