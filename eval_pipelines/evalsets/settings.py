"""Configuration section for: Eval sets sampled from production (validated as part of eval_pipelines.yaml)."""

from eval_pipelines.settings_base import StrictModel


class EvalSetConfig(StrictModel):
    """Placeholder until the section is designed."""
