"""Dagster resources: small, configured from the one YAML file, secrets through ``EnvVar``.

Local and production differ only in configuration: the same resources point at SQLite and local files by
default, and at PostgreSQL and object storage when the config (or the environment) says so.
"""


import os
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from eval_pipelines.config import CONFIG_ENV_VAR, PROJECT_ROOT, Settings, load_settings
from eval_pipelines.lake import InLake, Lake
from eval_pipelines.warehouse.core import create_warehouse_engine, safe_url

WAREHOUSE_URL_ENV = "EVAL_PIPELINES_WAREHOUSE_URL"


class ProjectConfigResource(dg.ConfigurableResource):
    """The validated project configuration (``eval_pipelines.yaml`` or ``$EVAL_PIPELINES_CONFIG``)."""

    config_path: str | None = None

    def load(self) -> Settings:
        return load_settings(self.config_path)


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse BI reads; pass the URL as ``EnvVar`` when it carries credentials."""

    url: str

    def engine(self) -> sa.Engine:
        return create_warehouse_engine(self.url, PROJECT_ROOT)

    def describe(self) -> str:
        return safe_url(self.url)


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores intermediate frames as ``<root>/<asset>/<partition>.parquet`` (see :mod:`eval_pipelines.lake`)."""

    root: str

    def _lake(self) -> Lake:
        return Lake(self.root)

    @staticmethod
    def _location(context: dg.OutputContext | dg.InputContext) -> tuple[str, str | None]:
        asset = "/".join(context.asset_key.path)
        return asset, context.asset_partition_key if context.has_asset_partitions else None

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | InLake) -> None:
        asset, partition = self._location(context)
        # Published by the asset with its warehouse rows (Lake.publishing): writing again would break old-or-new.
        uri = obj.uri if isinstance(obj, InLake) else self._lake().write(asset, partition, obj)
        context.add_output_metadata({"dagster/uri": dg.MetadataValue.path(uri)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset, partition = self._location(context)
        return self._lake().read(asset, partition)


def lake_root(settings: Settings) -> str:
    lake_dir = settings.storage.lake_dir
    return lake_dir if "://" in lake_dir else str(settings.resolve_path(lake_dir))


def build_resources(settings: Settings, config_path: str | None = None) -> dict[str, Any]:
    """The resources for a config; a warehouse URL from the environment stays an ``EnvVar`` (hidden in the UI)."""
    warehouse_url: Any = dg.EnvVar(WAREHOUSE_URL_ENV) if os.environ.get(WAREHOUSE_URL_ENV) \
        else settings.storage.warehouse_url
    return {
        "project": ProjectConfigResource(config_path=config_path or os.environ.get(CONFIG_ENV_VAR)),
        "warehouse": WarehouseResource(url=warehouse_url),
        "lake_io_manager": LakeIOManager(root=lake_root(settings)),
    }
