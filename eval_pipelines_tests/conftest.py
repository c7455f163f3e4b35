"""Shared fixtures: a throw-away project (config, landing dir, lake, SQLite warehouse) per test."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from eval_pipelines.config import Settings, load_settings
from eval_pipelines.resources import build_resources

pytest_plugins = ["eval_pipelines_tests.postgres_server", "eval_pipelines_tests.label_studio_server",
                  "eval_pipelines_tests.s3_server"]


@dataclass
class Project:
    root: Path
    config_path: Path
    settings: Settings

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse_url(self) -> str:
        return self.settings.storage.warehouse_url

    def resources(self) -> dict[str, Any]:
        return build_resources(self.settings, str(self.config_path))


# libyaml when PyYAML has it: hundreds of tests build a project, and the pure-Python parser and emitter took most
# of the ~50 ms each.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@lru_cache(maxsize=1)
def _shipped_config() -> dict[str, Any]:
    """The shipped eval_pipelines.yaml, parsed once per session (callers get a deep copy)."""
    path = Path(__file__).resolve().parent.parent / "eval_pipelines.yaml"
    return yaml.load(path.read_text(), Loader=_YAML_LOADER)


def make_project(root: Path, overrides: dict[str, Any] | None = None) -> Project:
    shipped = copy.deepcopy(_shipped_config())
    config: dict[str, Any] = {**shipped, **(overrides or {})}
    config["storage"] = {"lake_dir": str(root / "lake"), "warehouse_url": f"sqlite:///{root / 'warehouse.db'}"}
    config["source"] = {**shipped["source"], **config.get("source", {}), "landing_dir": str(root / "landing")}
    # The review loop's outbox and inbox stay in the throw-away project too (not the repository's data/).
    config["review"] = {**shipped.get("review", {}), "outbox_dir": str(root / "review" / "outbox"),
                        "inbox_dir": str(root / "review" / "inbox"), **(overrides or {}).get("review", {})}
    config_path = root / "eval_pipelines.yaml"
    config_path.write_text(yaml.dump(config, Dumper=_YAML_DUMPER, sort_keys=False))
    (root / "landing").mkdir(exist_ok=True)
    return Project(root, config_path, load_settings(config_path))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("EVAL_PIPELINES_WAREHOUSE_URL", "EVAL_PIPELINES_LAKE_DIR", "EVAL_PIPELINES_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    return make_project(tmp_path)
