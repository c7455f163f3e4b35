"""The one configuration file, validated at load.

A wrong key or value fails here, before any asset runs, with the file, the dotted path of the bad key and what
is allowed. Secrets and URLs can be overridden from the environment (see ``ENV_OVERRIDES``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from eval_pipelines.alerts.settings import AlertsConfig
from eval_pipelines.drift.settings import DriftConfig
from eval_pipelines.edge_cases.settings import EdgeCaseConfig
from eval_pipelines.estimation.settings import EstimationConfig
from eval_pipelines.evalsets.settings import EvalSetConfig
from eval_pipelines.ingestion.contract import CANONICAL_COLUMNS, FIELDS_BY_NAME, PII_TEXT_FIELDS, FieldKind
from eval_pipelines.ingestion.otlp import FeedbackSelection, SpanFilter
from eval_pipelines.ingestion.settings import IngestionConfig
from eval_pipelines.kpis.settings import ImpactConfig
from eval_pipelines.labeling.labels import LABEL_COLUMNS, TextGrading
from eval_pipelines.review.settings import DERIVED_STRATA_COLUMNS, ReviewConfig
from eval_pipelines.scoring.settings import ScoringConfig
from eval_pipelines.settings_base import StrictModel
from eval_pipelines.url_secrets import find_credentials, is_secret_param, looks_like_url, mask_url, url_credentials

CONFIG_ENV_VAR = "EVAL_PIPELINES_CONFIG"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "eval_pipelines.yaml"

# Environment variables that win over the file: URLs and anything that may carry credentials.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "EVAL_PIPELINES_WAREHOUSE_URL": ("storage", "warehouse_url"),
    "EVAL_PIPELINES_LAKE_DIR": ("storage", "lake_dir"),
    "EVAL_PIPELINES_LANDING_DIR": ("source", "landing_dir"),
    "EVAL_PIPELINES_SOURCE_URL": ("source", "sql", "url"),
    # `make demo` / `make dev` set it to the first generated day, so the demo's partitions start with its data.
    "EVAL_PIPELINES_PARTITIONS_START": ("partitions", "start_date"),
}


# Columns the pipeline adds to every case (ingestion's provenance, labeling's labels and tags).
DERIVED_COLUMNS: tuple[str, ...] = ("source_file", "source_line", *LABEL_COLUMNS)


def labeled_case_columns(settings: Settings) -> tuple[str, ...]:
    """The columns of a labeled_cases partition under ``settings``."""
    return (*CANONICAL_COLUMNS, *settings.features.numeric, *settings.features.categorical, *DERIVED_COLUMNS)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file, the key path and the fix."""


_Strict = StrictModel


class StorageConfig(_Strict):
    lake_dir: str = Field("data/lake", description="Directory (or fsspec URL) of the Parquet lake.")
    warehouse_url: str = Field(
        "sqlite:///data/warehouse.db", description="SQLAlchemy URL of the warehouse BI reads."
    )


class SqlSourceConfig(_Strict):
    url: str = Field(description="SQLAlchemy URL of the database holding the log table.")
    table: str = Field(description="Table (optionally schema.table) holding one row per event.")
    timestamp_column: str = Field(description="Source column used for the [D, D+1) day window.")


TimestampFormat = Annotated[
    str,
    Field(
        description="iso8601 (offsets allowed), epoch_s, epoch_ms, or a strftime pattern such as %d/%m/%Y %H:%M"
    ),
]


class SpanFilterConfig(_Strict):
    """Which OTLP spans are events (all conditions hold); the others are counted as filtered, not read."""

    names: list[str] = Field(default_factory=list, description="span names kept (empty: any)")
    kinds: list[Literal["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]] = Field(
        default_factory=list, description="span kinds kept (empty: any)")
    attributes: dict[str, str | int | float | bool | list[str | int | float | bool]] = Field(
        default_factory=dict, description="attribute key -> value or values kept, e.g. "
                                          "{openinference.span.kind: LLM}")
    require_attributes: list[str] = Field(default_factory=list, description="attribute keys that must be set")


class StoreListingConfig(_Strict):
    """How the landing sensor lists an object store: bounded calls, a pass spread over ticks when it is large."""

    page_size: int = Field(1000, ge=1, le=1000, description="Keys per listing call (S3 returns at most 1,000).")
    max_pages_per_tick: int = Field(
        20, ge=1, description="Listing calls per sensor tick at most; a larger bucket is listed over several ticks.")
    tick_budget_seconds: float = Field(
        0.5, gt=0, description="A tick starts no listing call that would end after this long (judged by its "
                               "slowest call so far); the pass resumes next tick.")


class FeedbackConfig(_Strict):
    """Feedback recorded apart from its span, joined to the span by span id (docs/ingestion.md#feedback)."""

    events: list[str] = Field(default_factory=list, description="event names of OTLP log records joined to their "
                                                                "span, e.g. [gen_ai.evaluation.result]; mapped as "
                                                                "event.<name>.<attribute key>")
    annotations: list[str] = Field(default_factory=list, description="names of Phoenix/OpenInference span "
                                                                     "annotations joined to their span; mapped as "
                                                                     "annotation.<name>.label|score|explanation")


class SourceConfig(_Strict):
    kind: Literal["landing", "sql"] = "landing"
    landing_dir: str = Field("data/landing", description="<landing_dir>/<YYYY-MM-DD>/*.{jsonl,jsonl.gz,csv,parquet}; "
                                                         "a local path or an fsspec URL (s3://bucket/prefix, gs://, "
                                                         "az://)")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options of an object-store landing_dir (e.g. client_kwargs: {endpoint_url: ...}); "
                    "never credentials: the store reads those from its own environment variables.")
    listing: StoreListingConfig = StoreListingConfig()
    sql: SqlSourceConfig | None = None
    timestamp_tolerance_minutes: float = Field(
        60.0, ge=0, description="How far outside its day a timestamp may be before the row is quarantined."
    )
    max_text_chars: int = Field(
        100_000, gt=0, description="Longer free-text values (input_text, outputs) are quarantined."
    )
    csv_delimiter: str = Field(",", min_length=1, max_length=1)
    format: Literal["auto", "otlp_json"] = Field(
        "auto", description="auto: by file suffix (JSONL, CSV, Parquet); otlp_json: OpenTelemetry trace lines "
                            "(the Collector's file exporter), one row per span passing span_filter.")
    span_filter: SpanFilterConfig | None = None
    feedback: FeedbackConfig | None = None

    @model_validator(mode="after")
    def _filter_needs_otlp(self) -> SourceConfig:
        for key, value in (("span_filter", self.span_filter), ("feedback", self.feedback)):
            if value is not None and self.format != "otlp_json":
                raise ValueError(f"source.{key} applies to source.format: otlp_json only; remove it or set the "
                                 "format")
        return self

    def feedback_spec(self) -> FeedbackSelection:
        """Which separately recorded feedback the reader keeps (empty: none, every such record is filtered)."""
        if self.feedback is None:
            return FeedbackSelection()
        return FeedbackSelection(events=tuple(self.feedback.events), annotations=tuple(self.feedback.annotations))

    def span_filter_spec(self) -> SpanFilter | None:
        """The reader's span filter (None: every span of an OTLP file is an event)."""
        if self.span_filter is None:
            return None
        config = self.span_filter
        return SpanFilter(names=tuple(config.names), kinds=tuple(config.kinds),
                          attributes={key: (tuple(str(v) for v in value) if isinstance(value, list) else
                                            (str(value),)) for key, value in config.attributes.items()},
                          require_attributes=tuple(config.require_attributes))

    @model_validator(mode="after")
    def _storage_options_need_a_url(self) -> SourceConfig:
        if self.storage_options and not is_store_url(self.landing_dir):
            raise ValueError(f"source.storage_options applies to an object-store landing_dir (s3://, gs://, az://, "
                             f"...), but landing_dir is the local path {self.landing_dir!r}; remove storage_options "
                             "or give landing_dir as a URL")
        return self

    @model_validator(mode="after")
    def _sql_needs_settings(self) -> SourceConfig:
        if self.kind == "sql" and self.sql is None:
            raise ValueError("source.kind is 'sql' but source.sql (url, table, timestamp_column) is missing")
        return self


class MappingConfig(_Strict):
    """How a foreign log format reaches the canonical event, by configuration alone."""

    columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical field or feature -> source column or dotted path into nested JSON (a.b.c).",
    )
    constants: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> constant value when the source has no column."
    )
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="canonical field -> {source value: canonical value}; for user_action, status and booleans.",
    )
    scale: dict[str, float] = Field(
        default_factory=dict, description="canonical numeric field -> factor (latency in seconds: 1000)."
    )
    timestamp_format: TimestampFormat = "iso8601"

    @field_validator("scale")
    @classmethod
    def _scale_numeric(cls, value: dict[str, float]) -> dict[str, float]:
        for name, factor in value.items():
            spec = FIELDS_BY_NAME.get(name)
            if spec is not None and spec.kind is not FieldKind.FLOAT:
                raise ValueError(f"{name!r} is not numeric; scale applies to numeric fields only")
            if factor <= 0:
                raise ValueError(f"scale factor for {name!r} must be > 0, got {factor}")
        return value

    @field_validator("timestamp_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("iso8601", "epoch_s", "epoch_ms") and "%" not in value:
            raise ValueError("must be iso8601, epoch_s, epoch_ms or a strftime pattern containing '%'")
        return value


class FeaturesConfig(_Strict):
    numeric: list[str] = Field(default_factory=list, description="Numeric columns monitored for drift.")
    categorical: list[str] = Field(default_factory=list, description="Categorical columns monitored for drift.")

    @model_validator(mode="after")
    def _no_clash(self) -> FeaturesConfig:
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"features listed as both numeric and categorical: {sorted(both)}")
        clash = (set(self.numeric) | set(self.categorical)) & set(CANONICAL_COLUMNS)
        if clash:
            raise ValueError(f"features must not reuse canonical field names: {sorted(clash)}")
        return self


class QualityConfig(_Strict):
    max_quarantine_rate: float = Field(0.05, ge=0, le=1, description="Check fails above this share of rows.")


class SystemOutputConfig(_Strict):
    output_kind: Literal["label", "text"] = Field(
        "label", description="label: outputs compared exactly; text: free text, edits graded by their size.")
    light_edit_at_least: float = Field(0.9, ge=0, le=1, description="text: edit similarity of a light edit "
                                                                      "(the draft counts as correct)")
    heavy_edit_at_least: float = Field(0.5, ge=0, le=1, description="text: below this an edit is a rewrite "
                                                                      "(wrong); between the two: partly_wrong")

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> SystemOutputConfig:
        if self.heavy_edit_at_least > self.light_edit_at_least:
            raise ValueError(f"heavy_edit_at_least ({self.heavy_edit_at_least}) must not exceed "
                             f"light_edit_at_least ({self.light_edit_at_least})")
        return self


class LabelingConfig(_Strict):
    low_confidence_below: float = Field(0.5, ge=0, le=1)
    slow_decision_seconds: float = Field(120.0, gt=0)
    systems: dict[str, SystemOutputConfig] = Field(
        default_factory=dict, description="per system: its output kind (systems not listed: label)")

    def text_systems(self) -> dict[str, TextGrading]:
        """The systems with free-text outputs and how their edits are graded."""
        return {name: TextGrading(c.light_edit_at_least, c.heavy_edit_at_least)
                for name, c in self.systems.items() if c.output_kind == "text"}


class PartitionsConfig(_Strict):
    start_date: date = Field(date(2026, 1, 1), description="First day of the daily partitions (UTC).")


class PrivacyConfig(_Strict):
    """What ingestion masks before anything is stored (docs/privacy.md)."""

    mask_fields: list[str] | None = Field(
        None, description="Text fields whose PII is masked; default (null): every free-text field of the contract "
                          f"({', '.join(PII_TEXT_FIELDS)}). Canonical text fields or categorical features.")
    phone_regions: list[str] = Field(
        default_factory=lambda: ["DE", "FR", "US", "GB"],
        description="Regions (ISO 3166 alpha-2) whose national phone formats are recognised.")
    salt_env: str = Field("EVAL_PIPELINES_PII_SALT", min_length=1,
                          description="Environment variable holding the secret salt of the mask tokens.")
    keep_raw_in_lake: bool = Field(
        False, description="Also keep the unmasked rows and quarantined records in the lake datasets "
                           "production_logs_raw and quarantined_events_raw (never in the warehouse).")
    max_raw_record_bytes: int = Field(4096, ge=256, description="Quarantined raw records are cut to this size.")

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        import phonenumbers

        unknown = [region for region in value if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown region code(s) {unknown}; use ISO 3166 alpha-2 codes such as DE, FR, US, GB")
        if not value:
            raise ValueError("list at least one region")
        return value


class Settings(_Strict):
    storage: StorageConfig = StorageConfig()
    source: SourceConfig = SourceConfig()
    mapping: MappingConfig = MappingConfig()
    features: FeaturesConfig = FeaturesConfig()
    quality: QualityConfig = QualityConfig()
    ingestion: IngestionConfig = IngestionConfig()
    labeling: LabelingConfig = LabelingConfig()
    partitions: PartitionsConfig = PartitionsConfig()
    eval_set: EvalSetConfig = EvalSetConfig()
    edge_cases: EdgeCaseConfig = EdgeCaseConfig()
    drift: DriftConfig = DriftConfig()
    impact: ImpactConfig = ImpactConfig()
    scoring: ScoringConfig = ScoringConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    estimation: EstimationConfig = EstimationConfig()
    review: ReviewConfig = ReviewConfig()
    alerts: AlertsConfig = AlertsConfig()

    @model_validator(mode="after")
    def _masked_fields_are_text(self) -> Settings:
        allowed = [f.name for f in FIELDS_BY_NAME.values() if f.kind is FieldKind.STRING] + self.features.categorical
        for name in self.privacy.mask_fields or ():
            if name not in allowed:
                raise ValueError(f"privacy.mask_fields.{name}: not a text field; allowed: {allowed}")
        return self

    def masked_fields(self) -> tuple[str, ...]:
        """The fields ingestion masks: ``privacy.mask_fields``, or every free-text field of the contract."""
        fields = self.privacy.mask_fields
        return PII_TEXT_FIELDS if fields is None else tuple(fields)

    @model_validator(mode="after")
    def _mapping_targets_known(self) -> Settings:
        known = set(CANONICAL_COLUMNS) | set(self.features.numeric) | set(self.features.categorical)
        for section in ("columns", "constants", "value_maps", "scale"):
            for target in getattr(self.mapping, section):
                if target not in known:
                    raise ValueError(
                        f"mapping.{section}.{target}: unknown target field; allowed: canonical fields "
                        f"{list(CANONICAL_COLUMNS)} or a configured feature"
                    )
        return self

    @model_validator(mode="after")
    def _features_not_derived(self) -> Settings:
        # The pipeline writes these columns itself; a feature of the same name would be silently overwritten.
        for kind in ("numeric", "categorical"):
            for index, name in enumerate(getattr(self.features, kind)):
                if name in DERIVED_COLUMNS:
                    raise ValueError(
                        f"features.{kind}.{index}: {name!r} is a column the pipeline derives "
                        f"({', '.join(DERIVED_COLUMNS)}) and would overwrite; name the feature otherwise and read "
                        f"it from that source column: mapping.columns: {{source_{name}: {name}}}")
        return self

    @model_validator(mode="after")
    def _value_maps_reach_canonical_values(self) -> Settings:
        for target, value_map in self.mapping.value_maps.items():
            spec = FIELDS_BY_NAME.get(target)
            if spec is None:
                continue
            allowed = spec.allowed if spec.allowed else (("true", "false") if spec.kind is FieldKind.BOOL else None)
            if allowed is None:
                continue
            for source_value, canonical in value_map.items():
                value = canonical.lower() if spec.kind is FieldKind.BOOL else canonical
                if value not in allowed:
                    raise ValueError(f"mapping.value_maps.{target}.{source_value}: {canonical!r} is not a value of "
                                     f"{target}; allowed: {list(allowed)}")
        return self

    @model_validator(mode="after")
    def _columns_exist_in_labeled_cases(self) -> Settings:
        # Strata and rule columns name labeled_cases columns: canonical fields, features and derived columns.
        columns = set(labeled_case_columns(self))
        hint = "allowed: canonical fields, configured features or derived columns"
        for index, name in enumerate(self.eval_set.strata):
            if name not in columns:
                raise ValueError(f"eval_set.strata.{index}: {name!r} is not a labeled_cases column; {hint}")
        for rule_index, rule in enumerate(self.edge_cases.rules):
            for index, condition in enumerate(rule.where):
                if condition.column not in columns:
                    raise ValueError(f"edge_cases.rules.{rule_index}.where.{index}.column: {condition.column!r} is "
                                     f"not a labeled_cases column; {hint}")
        for index, name in enumerate(self.estimation.ground_truth_cells):
            if name not in columns:
                raise ValueError(f"estimation.ground_truth_cells.{index}: {name!r} is not a labeled_cases column; "
                                 f"{hint}")
        if self.edge_cases.text_column not in columns:
            raise ValueError(f"edge_cases.text_column: {self.edge_cases.text_column!r} is not a labeled_cases "
                             f"column; {hint}")
        return self

    @model_validator(mode="after")
    def _review_columns_exist(self) -> Settings:
        # The audit design reads these from labeled_cases; a typo would otherwise fail only at run time.
        columns = set(labeled_case_columns(self))
        for index, name in enumerate(self.review.strata):
            if name not in columns and name not in DERIVED_STRATA_COLUMNS:
                raise ValueError(f"review.strata.{index}: {name!r} is not a labeled_cases column; allowed: "
                                 f"{list(DERIVED_STRATA_COLUMNS)}, canonical fields, features or derived columns")
        for index, name in enumerate(self.review.certainty_columns):
            if name not in columns:
                raise ValueError(f"review.certainty_columns.{index}: {name!r} is not a labeled_cases column; "
                                 "allowed: a boolean canonical field (complaint, compliance_flag, escalation), a "
                                 "flag feature or a tag_* column")
        return self

    def source_column(self, field: str) -> str:
        """Source column (or dotted path) read for a canonical field or feature."""
        return self.mapping.columns.get(field, field)

    def resolve_path(self, path: str) -> Path:
        """Relative paths in the config are relative to the project root, not the working directory."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate


def _apply_env_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    for env_name, key_path in ENV_OVERRIDES.items():
        value = os.environ.get(env_name)
        if not value:
            continue
        node = raw
        for key in key_path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else node
        node[key_path[-1]] = value
    return raw


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration ({error.error_count()} problem(s)):"]
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<top level>"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against the config reference in README.md"
        elif item["type"] == "literal_error" and "expected" in item.get("ctx", {}):
            message = f"must be one of {item['ctx']['expected']}, got {item['input']!r}"
        lines.append(f"  - {path}: {message}")
    return "\n".join(lines)


# Where a credential found in the file should live instead. The warehouse and SQL-source URLs may carry a password
# when they come from the environment (the resources keep them as EnvVar, hidden in the UI); the lake and landing
# locations never may, since their paths are recorded as metadata: object stores take credentials from their own
# environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*).
_CREDENTIAL_FIX: dict[tuple[str, ...], str] = {
    ("storage", "warehouse_url"): "set the full URL in the environment variable EVAL_PIPELINES_WAREHOUSE_URL",
    ("source", "sql", "url"): "set the full URL in the environment variable EVAL_PIPELINES_SOURCE_URL",
    ("storage", "lake_dir"): "give the object store its credentials through its own environment variables "
                             "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...)",
    ("source", "landing_dir"): "give the object store its credentials through its own environment variables "
                               "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...)",
}
_DEFAULT_FIX = "write it as a ${NAME} placeholder and set the environment variable NAME"
# Keys that must not carry credentials even from the environment (see above).
_NO_CREDENTIALS_EVEN_FROM_ENV = (("storage", "lake_dir"), ("source", "landing_dir"))


def _reject_credentials(raw: dict[str, Any], source: str, where: str) -> None:
    """Refuse any credential in a URL anywhere in ``raw``, naming the key path, what was found and the fix.

    The value is shown masked: the message goes to terminals, CI logs and the Dagster UI.
    """
    problems = []
    for dotted, masked, what in find_credentials(raw):
        fix = _CREDENTIAL_FIX.get(tuple(dotted.split(".")), _DEFAULT_FIX)
        problems.append(f"  - {dotted}: {masked}: {what}; remove it from the {where} and {fix}")
    if problems:
        raise ConfigError(f"{source}: credentials in the {where} are refused ({len(problems)}):\n"
                          + "\n".join(problems))


def is_store_url(location: str) -> bool:
    """Whether a landing or lake location is an object-store URL (``file://`` and plain paths are local)."""
    return looks_like_url(location) and not location.lower().startswith("file://")


# Option names that hold a credential in some fsspec store without a "secret" word in them (adlfs).
_STORE_CREDENTIAL_OPTIONS = frozenset({"connection_string", "account_key", "sas_token", "client_secret"})
_STORE_CREDENTIAL_FIX = ("remove it and give the store its credentials through its own environment variables: "
                         "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or AWS_PROFILE) for s3://, "
                         "GOOGLE_APPLICATION_CREDENTIALS for gs://, AZURE_STORAGE_ACCOUNT_NAME with "
                         "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN for az://")


def _storage_option_credentials(options: Any, path: tuple[str, ...]) -> Iterator[str]:
    if isinstance(options, dict):
        for key, value in options.items():
            key_path = (*path, str(key))
            if is_secret_param(str(key)) or str(key).lower() in _STORE_CREDENTIAL_OPTIONS:
                yield ".".join(key_path)
            else:
                yield from _storage_option_credentials(value, key_path)
    elif isinstance(options, list):
        for index, value in enumerate(options):
            yield from _storage_option_credentials(value, (*path, str(index)))


def _reject_storage_credentials(raw: dict[str, Any], source: str) -> None:
    """Refuse credential-looking keys in ``source.storage_options`` (their values are never shown)."""
    section = raw.get("source")
    options = section.get("storage_options") if isinstance(section, dict) else None
    found = list(_storage_option_credentials(options, ("source", "storage_options")))
    if found:
        raise ConfigError(f"{source}: credentials in source.storage_options are refused ({len(found)}):\n"
                          + "\n".join(f"  - {key_path}: a credential; {_STORE_CREDENTIAL_FIX}" for key_path in found))


def _reject_credentials_from_env(raw: dict[str, Any], source: str) -> None:
    for key_path in _NO_CREDENTIALS_EVEN_FROM_ENV:
        node: Any = raw
        for key in key_path:
            node = node.get(key) if isinstance(node, dict) else None
        env_name = next(name for name, path in ENV_OVERRIDES.items() if path == key_path)
        if isinstance(node, str) and url_credentials(node):
            raise ConfigError(f"{source}: {'.'.join(key_path)} (from {env_name}): {mask_url(node)}: "
                              f"{'; '.join(url_credentials(node))}; this location is recorded in run metadata, "
                              f"so {_CREDENTIAL_FIX[key_path]}")


def parse_settings(raw: dict[str, Any] | None, source: str = "<config>") -> Settings:
    """Validate an already-parsed mapping; ``source`` names it in error messages."""
    _reject_credentials(dict(raw or {}), source, "config file")
    _reject_storage_credentials(dict(raw or {}), source)
    raw = _apply_env_overrides(dict(raw or {}))
    _reject_credentials_from_env(raw, source)
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


# libyaml's C parser when PyYAML was built with it: every Dagster step loads the config, and the pure-Python
# parser took ~30 ms of each load (most of load_settings); the constructors stay the Python SafeConstructor's.
_SafeLoaderBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ConfigLoader(_SafeLoaderBase):  # type: ignore[misc, valid-type]
    """SafeLoader whose impossible dates (2026-02-30) are YAML errors with a line, not a raw ValueError."""

    def construct_yaml_timestamp(self, node: yaml.Node):  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date: {error} (write YYYY-MM-DD)", node.start_mark
            ) from None


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _ConfigLoader.construct_yaml_timestamp)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load the config from ``path``, else ``$EVAL_PIPELINES_CONFIG``, else the shipped demo config."""
    config_path = Path(path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)
    if not config_path.is_file():
        raise ConfigError(
            f"{config_path}: config file not found; set {CONFIG_ENV_VAR} to an existing YAML file"
        )
    overrides = tuple((name, os.environ.get(name) or "") for name in ENV_OVERRIDES)
    # A copy per load: the models are frozen but their lists and dicts are not, so a caller that appended to one
    # would otherwise change every later load in the process (0.5 ms against the ~13 ms of a parse).
    return _parsed_settings(str(config_path), config_path.read_text(encoding="utf-8"), overrides).model_copy(
        deep=True)


@functools.lru_cache(maxsize=16)
def _parsed_settings(source: str, text: str, overrides: tuple[tuple[str, str], ...]) -> Settings:
    """The validated settings of one config text under one set of environment overrides.

    Every asset step loads the config (ProjectConfigResource.load); parsing and validating it took ~0.1 s, a tenth
    of a light step. Keyed by the file's text and the override variables, so an edited file or a changed variable
    is read afresh. :func:`load_settings` hands out a deep copy of it, never the cached object.
    """
    del overrides  # part of the cache key; parse_settings reads the variables themselves
    try:
        raw = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    return parse_settings(raw, source)
