"""Dagster side of alerting: no assets (alerts read what other assets wrote), one sensor (:mod:`.sensors`)."""

import dagster as dg

from eval_pipelines.alerts.sensors import SENSORS

ASSETS: list[dg.AssetsDefinition] = []
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []

__all__ = ["ASSETS", "ASSET_CHECKS", "SENSORS"]
