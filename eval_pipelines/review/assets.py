"""Dagster side of the review loop: ``review_queue`` (the day's audit sample out) and ``review_labels`` (verdicts in).

The maths and rules live in :mod:`~eval_pipelines.review.design`, :mod:`~.inbox`, :mod:`~.adjudication`,
:mod:`~.agreement` and :mod:`~.estimation`; this module reads the lake, writes the lake partition and the warehouse
tables together (``Lake.publishing``: old-or-new in both), writes the outbox file atomically, talks to Label
Studio when configured, and reports what happened as metadata.
"""


import json
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from eval_pipelines.automation import FOLLOW_UPSTREAM_ANY_DAY
from eval_pipelines.config import Settings
from eval_pipelines.ingestion.pii import truncate_utf8
from eval_pipelines.ingestion.privacy import masker_for
from eval_pipelines.lake import InLake, Lake
from eval_pipelines.metadata import markdown_table
from eval_pipelines.partitions import daily_partitions
from eval_pipelines.resources import ProjectConfigResource, WarehouseResource, lake_root
from eval_pipelines.review.adjudication import adjudicate_reviews, agreement_on_draft, draft_verdict_column
from eval_pipelines.review.design import ACTION_COLUMN, AuditSample, draw_audit_sample
from eval_pipelines.review.estimation import estimate_reviewed
from eval_pipelines.review.inbox import (
    INBOX_FINGERPRINT,
    LABELS_ASSET,
    QUEUE_ASSET,
    VerdictRead,
    annotation_records,
    combine,
    conservation,
    day_vocabulary,
    inbox_fingerprint,
    read_inbox,
    validate_verdicts,
)
from eval_pipelines.review.sensors import review_inbox_sensor
from eval_pipelines.review.tables import quarantined_reviews, review_agreement, review_tasks, reviewed_cases
from eval_pipelines.warehouse.core import PartitionWrite, insert_records, replace_partitions

LABELED_CASES = "labeled_cases"
CONSERVATION_CHECK = "review_files_conserved"

CASE_COLUMNS = ("event_id", "status", "system", "model_version", "segment", "user_action", "confidence",
                "decision_seconds", "ai_output", "final_output", "ground_truth", "input_text", "complaint",
                "compliance_flag", "tag_complaint", "tag_compliance")
LABELS_CASE_COLUMNS = ("event_id", "status", "system", "ai_output", "final_output", "ground_truth")
"""What review_labels reads of labeled_cases: the tasks' outputs and the day's label vocabulary."""
LABELS_QUEUE_COLUMNS = ("event_id", "system", ACTION_COLUMN, "stratum", "certainty", "inclusion_prob", "selected")
"""What review_labels reads of the review_queue lake dataset: adjudication's task columns and the estimator's."""
PHASE_ONE_COLUMNS = ("event_id", "system", "model_version", "segment", "user_action", ACTION_COLUMN, "stratum",
                     "certainty", "inclusion_prob", "selected", "double_review")
TASK_COLUMNS = tuple(c.name for c in review_tasks.columns)
OUTBOX_FIELDS = ("event_id", "partition_date", "system", "model_version", "segment", "input_text", "ai_output",
                 "user_action", "final_output", "confidence", "stratum", "certainty", "double_review")


# ------------------------------------------------------------------------------------------------ shared helpers


def read_day_cases(settings: Settings, lake: Lake, day: str, columns: Sequence[str] | None = None
                   ) -> pd.DataFrame:
    """The columns the review loop needs from one labeled_cases partition (its text is masked at ingestion);
    ``columns``: only these (review_labels reads neither the texts nor the design's columns)."""
    if columns is not None:
        return lake.read_columns(LABELED_CASES, day, [], optional=list(columns)).to_pandas()
    extra = [c for c in settings.review.strata + settings.review.certainty_columns if c not in CASE_COLUMNS]
    return lake.read_columns(LABELED_CASES, day, [], optional=[*CASE_COLUMNS, *extra]).to_pandas()


def _design_inputs(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases as the design reads them: a missing optional column is all null (e.g. no segment in a user's logs)."""
    cases = cases.copy()
    for column in ("system", "model_version", "segment", "user_action", "ai_output", "final_output",
                   "input_text", "confidence"):
        if column not in cases.columns:
            cases[column] = None
    return cases


def _aligned_ok_rows(frame: pd.DataFrame, cases: pd.DataFrame) -> np.ndarray | None:
    """Row positions in ``cases`` of the phase-one rows when they are its ok cases in order (as draw_audit_sample
    makes them, and as the lake gives them back); None otherwise. One vectorised comparison, no hash of a
    million ids."""
    ok_rows = np.flatnonzero((cases["status"] == "ok").to_numpy(dtype=bool, na_value=False))
    if len(ok_rows) != len(frame):
        return None
    expected = cases["event_id"].iloc[ok_rows].astype(str).reset_index(drop=True)
    return ok_rows if bool((expected == frame["event_id"].astype(str).reset_index(drop=True)).all()) else None


def _ok_positions(frame: pd.DataFrame, cases: pd.DataFrame) -> np.ndarray:
    """Row positions in ``cases`` of the phase-one rows (-1 for an event_id it does not have)."""
    rows = _aligned_ok_rows(frame, cases)
    if rows is not None:
        return rows
    return pd.Index(cases["event_id"].astype(str)).get_indexer(frame["event_id"].astype(str))


def selected_tasks(first: pd.DataFrame, cases: pd.DataFrame, day: date) -> pd.DataFrame:
    """The selected rows of phase one with the case's ``ai_output`` and the ``partition_date``: what
    adjudication reads."""
    rows = _aligned_ok_rows(first, cases)
    if rows is None:
        selected = first[first["selected"]].merge(
            cases[["event_id", "ai_output"]].astype({"event_id": str}), on="event_id", how="left")
    else:
        chosen = first["selected"].to_numpy(dtype=bool)
        selected = first[chosen].reset_index(drop=True)
        selected["ai_output"] = cases["ai_output"].iloc[rows[chosen]].reset_index(drop=True)
    selected["partition_date"] = day
    return selected


def _taken(column: pd.Series, rows: np.ndarray) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """``column`` at ``rows`` for a new frame: strings stay Arrow strings, other dtypes go through objects as
    before (the frame then infers the same dtype from them)."""
    values = column.iloc[rows]
    if isinstance(values.dtype, pd.StringDtype):
        return values.array
    return values.astype("object").to_numpy()


def phase_one(sample: AuditSample, cases: pd.DataFrame) -> pd.DataFrame:
    """The review_queue lake dataset: every ok case with its stratum, inclusion probability and selection."""
    frame = sample.frame
    rows = _ok_positions(frame, cases)
    if (rows < 0).any():
        raise KeyError(f"{int((rows < 0).sum())} phase-one event_id(s) are not in the cases")
    double = sample.tasks.loc[sample.tasks["double_review"], "event_id"].astype(str)
    event_ids = frame["event_id"].astype(str)
    out = pd.DataFrame({
        "event_id": event_ids.array if isinstance(event_ids.dtype, pd.StringDtype) else event_ids.to_numpy(),
        "system": _taken(cases["system"], rows),
        "model_version": _taken(cases["model_version"], rows),
        "segment": _taken(cases["segment"], rows),
        "user_action": _taken(cases["user_action"], rows),
        ACTION_COLUMN: frame[ACTION_COLUMN].array if isinstance(frame[ACTION_COLUMN].dtype, pd.StringDtype)
        else frame[ACTION_COLUMN].to_numpy(),
        "stratum": frame["stratum"].array if isinstance(frame["stratum"].dtype, pd.StringDtype)
        else frame["stratum"].to_numpy(),
        "certainty": frame["certainty"].to_numpy(dtype=bool),
        "inclusion_prob": frame["inclusion_prob"].to_numpy(dtype=float),
        "selected": frame["selected"].to_numpy(dtype=bool),
    })
    out["double_review"] = out["event_id"].isin(set(double)).to_numpy()
    return out


def task_rows(sample: AuditSample, day: date, created_at: datetime) -> pd.DataFrame:
    """The review_tasks rows of the day (selected cases only)."""
    tasks = sample.tasks.copy()
    tasks["partition_date"] = day
    tasks["created_at"] = created_at
    tasks["event_id"] = tasks["event_id"].astype(str)
    return tasks[list(TASK_COLUMNS)].reset_index(drop=True)


def _json_values(column: pd.Series) -> list[object]:
    """A column as JSON-ready Python values: numpy scalars as Python ones, NaN / NA / None as None."""
    return [None if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
            else value.item() if isinstance(value, np.generic) else value for value in column.tolist()]


def outbox_lines(tasks: pd.DataFrame) -> bytes:
    """One JSON object per task, in event_id order (a re-run writes the same bytes)."""
    # Column by column rather than a dict per record through pandas: the same values, a fraction of the time.
    values = [[day.isoformat() for day in tasks[key]] if key == "partition_date" else _json_values(tasks[key])
              for key in OUTBOX_FIELDS]
    lines = [json.dumps(dict(zip(OUTBOX_FIELDS, record, strict=True)), ensure_ascii=False, sort_keys=False)
             for record in zip(*values, strict=True)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _stage_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(data)
    return temporary


def _float(value: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(round(float(value), 6) if np.isfinite(value) else float("nan"))


# ------------------------------------------------------------------------------------------------------ the queue


@dg.asset(
    name=QUEUE_ASSET,
    partitions_def=daily_partitions,
    group_name="review",
    kinds={"python", "parquet", "sql"},
    deps=[LABELED_CASES],
    io_manager_key="lake_io_manager",
    pool="warehouse",
    automation_condition=FOLLOW_UPSTREAM_ANY_DAY,
    description=(
        "The day's audit sample for expert review: a stratified probability sample of ALL the day's ok cases "
        "(accepted, ignored and unreviewed included) with over-sampled risky strata and a certainty stratum "
        "(complaints, compliance flags). Lake: phase one, every ok case with its stratum, inclusion probability "
        "and selection. Warehouse: review_tasks (selected cases, PII-masked text). Outbox: "
        "`<review.outbox_dir>/<day>.jsonl`, and Label Studio when review.label_studio is set. docs/review.md."
    ),
)
def review_queue(context: dg.AssetExecutionContext, project: ProjectConfigResource,
                 warehouse: WarehouseResource) -> dg.Output:
    settings = project.load()
    review = settings.review
    day = date.fromisoformat(context.partition_key)
    lake = Lake(lake_root(settings))
    cases = _design_inputs(read_day_cases(settings, lake, context.partition_key))
    sample = draw_audit_sample(cases, day, review.design())
    if not review.enabled:
        # Disabled: the same phase one (so the N_g stay known) with nothing selected and no task sent out.
        frame = sample.frame.assign(selected=False, inclusion_prob=0.0)
        sample = AuditSample(frame, sample.tasks.iloc[0:0], sample.strata.iloc[0:0], sample.day_seed, None)
    first = phase_one(sample, cases)
    tasks = task_rows(sample, day, datetime.now(UTC))
    outbox = settings.resolve_path(review.outbox_dir) / f"{day.isoformat()}.jsonl"
    staged = _stage_file(outbox, outbox_lines(tasks)) if review.enabled else None
    engine = warehouse.engine()
    try:
        with lake.publishing() as publication:
            uri = publication.stage_table(QUEUE_ASSET, context.partition_key, first)

            def publish() -> None:
                publication.publish()
                if staged is not None:
                    os.replace(staged, outbox)  # atomic: a reviewer's tool never reads half a file

            try:
                replace_partitions(engine, [PartitionWrite(review_tasks, {"partition_date": day},
                                                           insert_records(tasks))], before_commit=publish)
            finally:
                if staged is not None and staged.exists():
                    staged.unlink()
    finally:
        engine.dispose()
    exported = _export_label_studio(settings, tasks, cases) if review.enabled else {}

    strata = sample.strata.copy()
    if len(strata):
        strata["inclusion_prob"] = strata["inclusion_prob"].round(4)
    context.log.info(f"{len(tasks)} review task(s) for {day} from {len(first):,} ok cases")
    return dg.Output(InLake(uri, len(first)), metadata={
        "dagster/row_count": len(first),
        "enabled": review.enabled,
        "ok_cases": len(first),
        "tasks": len(tasks),
        "certainty_tasks": int(tasks["certainty"].sum()),
        "double_review_tasks": int(tasks["double_review"].sum()),
        "strata": markdown_table(strata, max_rows=60),
        "outbox": dg.MetadataValue.path(str(outbox)) if review.enabled else dg.MetadataValue.text("disabled"),
        "label_studio": dg.MetadataValue.json(exported) if exported else dg.MetadataValue.text("not configured"),
        "preview": markdown_table(tasks[["event_id", "stratum", "review_action", "ai_output", "final_output",
                                         "input_text"]]),
    })


def _export_label_studio(settings: Settings, tasks: pd.DataFrame, cases: pd.DataFrame) -> dict[str, object]:
    config = settings.review.label_studio
    if config is None:
        return {}
    from eval_pipelines.review import label_studio  # lazy: only a configured server needs the client

    connection = label_studio.connection_from_env(config.url_env, config.token_env, config.timeout_seconds)
    vocabulary = day_vocabulary(cases, settings.review.vocabulary)
    results: dict[str, object] = {}
    for system, group in tasks.groupby(tasks["system"].astype(str), sort=True):
        title = f"{config.project_prefix} {system}"
        results[title] = label_studio.export_tasks(connection, title, vocabulary.get(system, ()),
                                                   group.reset_index(drop=True))
    return results


# ----------------------------------------------------------------------------------------------------- the labels


def _label_studio_reads(settings: Settings, systems: list[str], day: str) -> list[VerdictRead]:
    config = settings.review.label_studio
    if config is None:
        return []
    from eval_pipelines.review import label_studio  # lazy, as in review_queue

    connection = label_studio.connection_from_env(config.url_env, config.token_env, config.timeout_seconds)
    reads = []
    for system in systems:
        title = f"{config.project_prefix} {system}"
        pulled = label_studio.pull_annotations(connection, title)
        if "partition_date" in pulled.columns:
            pulled = pulled[pulled["partition_date"].astype(str) == day]
        reads.append(annotation_records(pulled.reset_index(drop=True), f"label_studio:{title}"))
    return reads


def _masked(settings: Settings, accepted: pd.DataFrame, quarantined: pd.DataFrame
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Comments, reviewer names (Label Studio users are e-mail addresses), quarantined records and reasons (which
    quote values) masked; records cut like ingestion's. Masks are deterministic tokens, so a masked reviewer is
    still one reviewer. Adjudication and agreement ran before, on the names as given."""
    masker = masker_for(settings)
    accepted = accepted.copy()
    quarantined = quarantined.copy()
    if len(accepted):
        accepted["comment"] = [masker.mask_optional(v) if isinstance(v, str) else None for v in accepted["comment"]]
        accepted["reviewer"] = [masker.mask_optional(str(v)) for v in accepted["reviewer"]]
    if len(quarantined):
        for column in ("event_id", "reviewer"):
            quarantined[column] = [masker.mask_optional(v) if isinstance(v, str) else None
                                   for v in quarantined[column]]
        limit = settings.privacy.max_raw_record_bytes
        quarantined["record"] = [truncate_utf8(masker.mask_optional(str(v)) or "", limit)
                                 for v in quarantined["record"]]
        quarantined["reason"] = [masker.mask_optional(str(v)) for v in quarantined["reason"]]
    return accepted, quarantined


def estimate_metadata(first: pd.DataFrame, labels: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """The day's reviewed accuracy and automation-bias rate with their CIs (metadata only; KPIs are elsewhere)."""
    if not first["selected"].any():
        return {}
    found = estimate_reviewed(first, labels[["event_id", "ai_correct"]])
    metadata: dict[str, dg.MetadataValue] = {}
    for estimate in (found.reviewed_accuracy, found.automation_bias_rate, found.override_error_rate):
        metadata[estimate.name] = _float(estimate.estimate)
        metadata[f"{estimate.name}_ci_low"] = _float(estimate.ci_low)
        metadata[f"{estimate.name}_ci_high"] = _float(estimate.ci_high)
        metadata[f"{estimate.name}_population"] = dg.MetadataValue.text(
            f"{estimate.population} (N={estimate.population_size:,}, audited with a verdict "
            f"n={estimate.n_audited:,})" + ("" if estimate.available else f"; not available: {estimate.reason}"))
    return metadata


@dg.asset(
    name=LABELS_ASSET,
    partitions_def=daily_partitions,
    group_name="review",
    kinds={"python", "parquet", "sql"},
    deps=[review_queue],
    io_manager_key="lake_io_manager",
    pool="warehouse",
    automation_condition=FOLLOW_UPSTREAM_ANY_DAY,
    description=(
        "Reviewers' verdicts on the day's audit sample, from `<review.inbox_dir>/<day>/*.jsonl|csv` and Label "
        "Studio when configured; the inbox sensor requests it when files change. Records are validated (unknown "
        "event, label outside the vocabulary, duplicate, unreadable → quarantined_reviews with a reason), "
        "accepted verdicts go to reviewed_cases, agreement (κ, α with CIs) to review_agreement, and the lake "
        "dataset holds one adjudicated row per task (unanswered ones included). docs/review.md."
    ),
    check_specs=[dg.AssetCheckSpec(
        CONSERVATION_CHECK, asset=LABELS_ASSET, blocking=True, partitions_def=daily_partitions,
        description="Per verdict source: records read = accepted + quarantined (nothing lost).")],
)
def review_labels(context: dg.AssetExecutionContext, project: ProjectConfigResource,
                  warehouse: WarehouseResource) -> Iterator[dg.Output | dg.AssetCheckResult]:
    settings = project.load()
    review = settings.review
    day = date.fromisoformat(context.partition_key)
    lake = Lake(lake_root(settings))
    first = lake.read(QUEUE_ASSET, context.partition_key, list(LABELS_QUEUE_COLUMNS))
    cases = _design_inputs(read_day_cases(settings, lake, context.partition_key, LABELS_CASE_COLUMNS))
    selected = selected_tasks(first, cases, day)
    inbox_dir = settings.resolve_path(review.inbox_dir)
    # Taken before reading: a file changing during the read gives a new fingerprint and the sensor runs again.
    fingerprint = inbox_fingerprint(inbox_dir, day)
    systems = sorted(selected["system"].astype(str).unique())
    read = combine([read_inbox(inbox_dir, day), *_label_studio_reads(settings, systems, context.partition_key)])
    vocabulary = day_vocabulary(cases, review.vocabulary)
    # Free-text systems' verdicts are the text the case needed: no vocabulary (docs/review.md), unless configured.
    free_text = [name for name in settings.labeling.text_systems() if name not in review.vocabulary]
    accepted, quarantined = validate_verdicts(read, selected[["event_id", "system"]], vocabulary, free_text)
    balance = conservation(read, accepted, quarantined)
    # A free-text verdict is a reply; it is read as a binary verdict on the draft (issue 18, docs/review.md).
    light_edit = {name: grading.light_edit_at_least
                  for name, grading in settings.labeling.text_systems().items() if name in free_text}
    labels = adjudicate_reviews(selected, accepted, review.adjudication.mode, review.adjudication.senior_reviewer,
                                light_edit)
    agreements = agreement_on_draft(accepted, selected, light_edit, seed=review.seed)
    # Stored beside the reply, so the weekly report's agreement reads the same binary verdict (reporting/model.py).
    accepted = accepted.assign(draft_verdict=draft_verdict_column(selected, accepted, light_edit))
    accepted, quarantined = _masked(settings, accepted, quarantined)

    key = {"partition_date": day}
    reviewed_rows = insert_records(accepted.assign(partition_date=day),
                                   [c.name for c in reviewed_cases.columns])
    quarantine_rows = insert_records(quarantined.assign(partition_date=day),
                                     [c.name for c in quarantined_reviews.columns])
    agreement_rows = [{"partition_date": day, **a.row()} for a in agreements]
    agreement_rows = insert_records(pd.DataFrame(agreement_rows, columns=[c.name for c in review_agreement.columns]))
    engine = warehouse.engine()
    try:
        with lake.publishing() as publication:
            uri = publication.stage_table(LABELS_ASSET, context.partition_key, labels)
            replace_partitions(engine, [PartitionWrite(reviewed_cases, key, reviewed_rows),
                                        PartitionWrite(quarantined_reviews, key, quarantine_rows),
                                        PartitionWrite(review_agreement, key, agreement_rows)],
                               before_commit=publication.publish)
    finally:
        engine.dispose()

    answered = int((labels["adjudication"] != "unanswered").sum())
    per_stratum = labels.assign(answered=labels["adjudication"] != "unanswered").groupby("stratum").agg(
        tasks=("event_id", "size"), answered=("answered", "sum"), disputed=("disputed", "sum")).reset_index()
    disputed = pd.concat([a.disputed.assign(system=a.system) for a in agreements], ignore_index=True) \
        if agreements else pd.DataFrame(columns=["event_id", "labels", "reviewers", "system"])
    masker = masker_for(settings)
    disputed["reviewers"] = [[masker.mask_optional(str(name)) for name in names] for names in disputed["reviewers"]]
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": len(labels),
        "tasks": len(labels),
        "answered": answered,
        "answered_share": _float(answered / len(labels) if len(labels) else float("nan")),
        "verdicts_accepted": len(accepted),
        "quarantined": len(quarantined),
        "disputed_unsettled": int(labels["disputed"].sum()),
        "adjudication": markdown_table(labels["adjudication"].value_counts().rename_axis("adjudication")
                                       .reset_index(name="tasks")),
        "per_stratum": markdown_table(per_stratum, max_rows=60),
        "agreement": markdown_table(pd.DataFrame([a.row() for a in agreements]), max_rows=20),
        "disputed_cases": markdown_table(disputed, max_rows=50),
        "quarantine_reasons": markdown_table(quarantined.assign(reason=quarantined["reason"].str.slice(0, 90))
                                             [["source", "line", "reason"]], max_rows=30),
        INBOX_FINGERPRINT: fingerprint,
        **estimate_metadata(first, labels),
    }
    for agreement in agreements:
        if agreement.kappa is not None:
            metadata[f"kappa[{agreement.system}]"] = _float(agreement.kappa.estimate)
            metadata[f"kappa_ci[{agreement.system}]"] = dg.MetadataValue.text(
                f"[{agreement.kappa.ci_low:.3f}, {agreement.kappa.ci_high:.3f}] on "
                f"{agreement.double_reviewed_cases} case(s)")
    if len(quarantined):
        context.log.warning(f"{len(quarantined)} verdict record(s) quarantined for {day}; see quarantined_reviews")
    yield dg.Output(InLake(uri, len(labels)), metadata=metadata)
    broken = balance[~balance["balanced"]]
    yield dg.AssetCheckResult(
        check_name=CONSERVATION_CHECK, passed=broken.empty,
        description=(f"{len(balance)} source(s): {int(balance['rows_in'].sum())} record(s) = "
                     f"{int(balance['accepted'].sum())} accepted + {int(balance['quarantined'].sum())} quarantined"
                     if broken.empty else f"records lost in {list(broken['source'])}"),
        metadata={"sources": markdown_table(balance, max_rows=50)})


ASSETS = [review_queue, review_labels]
ASSET_CHECKS: list[dg.AssetChecksDefinition] = []  # review_labels' check is declared inline (check_specs)
SENSORS = [review_inbox_sensor]
