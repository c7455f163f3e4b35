"""The Parquet lake: ``<lake_dir>/<asset>/<YYYY-MM-DD>.parquet`` on a local path or any fsspec URL.

Writes go to a temporary name first and are renamed into place, so a reader never sees half a file and a
re-run replaces the partition whole.

An asset that writes both the lake and the warehouse publishes them together through :meth:`Lake.publishing`:
the files are staged under temporary names, the warehouse transaction runs, the staged files are renamed into
place just before it commits, and any failure puts the old files back, so both stores show the old state or
both the new one (docs/ingestion.md#lake-and-warehouse-together).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem


class Lake:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root)

    def path(self, asset: str, partition: str | None = None) -> str:
        name = f"{partition}.parquet" if partition else "data.parquet"
        return f"{self._base}/{asset}/{name}"

    def uri(self, asset: str, partition: str | None = None) -> str:
        path = self.path(asset, partition)
        return path if "://" not in self.root else f"{self.root.split('://')[0]}://{path}"

    def exists(self, asset: str, partition: str | None = None) -> bool:
        return self.fs.exists(self.path(asset, partition))

    def write(self, asset: str, partition: str | None, frame: pd.DataFrame | pa.Table) -> str:
        final = self.path(asset, partition)
        temporary = self._stage_table(final, frame)
        self.rename(temporary, final)
        return self.uri(asset, partition)

    def _stage_table(self, final: str, frame: pd.DataFrame | pa.Table) -> str:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        return self._stage(final, lambda handle: pq.write_table(table, handle, compression="zstd"))

    def _stage(self, final: str, write: Callable[[Any], object]) -> str:
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{final}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open(temporary, "wb") as handle:
                write(handle)
        except BaseException:
            self._remove(temporary)
            raise
        return temporary

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` over ``target``: atomic on a local disk (``os.replace``); a copy on object stores."""
        if isinstance(self.fs, LocalFileSystem):
            os.replace(source, target)
        else:
            self.fs.mv(source, target)

    def _remove(self, path: str) -> None:
        if self.fs.exists(path):
            self.fs.rm(path)

    @contextmanager
    def publishing(self) -> Iterator[Publication]:
        """Stage files, commit the warehouse, then swap: old-or-new in both stores.

        Inside the block, stage the outputs (:meth:`Publication.stage_table`, :meth:`Publication.stage_bytes`)
        and run the warehouse transaction with ``before_commit=publication.publish`` (``replace_partitions`` and
        the store functions take it), so the files are renamed into place inside the transaction, after every
        statement succeeded and just before COMMIT. If the block raises (a failed statement, a failed rename, a
        failed COMMIT), the files already swapped are put back and the staged ones removed: the transaction
        rolled back too, so both stores are as before. If the block ends without publishing, it publishes then.
        """
        publication = Publication(self)
        try:
            yield publication
        except BaseException:
            publication.roll_back()
            raise
        publication.publish()
        publication.finish()

    def read_columns(self, asset: str, partition: str | None, columns: Sequence[str],
                     optional: Sequence[str] = (), dictionary: Sequence[str] = ()) -> pa.Table:
        """Only ``columns`` (each required) and those of ``optional`` the file has, from one partition's file.

        ``dictionary`` columns are read dictionary-encoded (pandas categoricals): less memory and faster grouping
        for low-cardinality text. A missing file or a missing required column is an error naming the file.
        """
        path = self.path(asset, partition)
        if not self.fs.exists(path):
            raise FileNotFoundError(
                f"{self.uri(asset, partition)} does not exist: materialise {asset} for partition {partition} first")
        with self.fs.open(path, "rb") as handle:
            footer = pq.read_metadata(handle)
            present = set(footer.schema.to_arrow_schema().names)
            missing = [column for column in columns if column not in present]
            if missing:
                raise KeyError(f"{self.uri(asset, partition)} has no column(s) {missing}")
            wanted = [*columns, *(c for c in optional if c in present and c not in columns)]
            # pyarrow refuses a dictionary column the file does not have, so only present ones are asked for.
            encoded = [c for c in dictionary if c in wanted]
            return pq.ParquetFile(handle, metadata=footer, read_dictionary=encoded or None).read(columns=wanted)

    def read(self, asset: str, partition: str | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        path = self.path(asset, partition)
        if not self.fs.exists(path):
            raise FileNotFoundError(
                f"{self.uri(asset, partition)} does not exist: materialise {asset} for partition {partition} first"
            )
        with self.fs.open(path, "rb") as handle:
            return pq.read_table(handle, columns=columns).to_pandas()


@dataclass(frozen=True)
class InLake:
    """An output an asset already published to the lake (with :meth:`Lake.publishing`): the IO manager only
    records where it is, and writes nothing."""

    uri: str
    rows: int


@dataclass
class _Staged:
    temporary: str
    final: str
    backup: str | None = None  # where the previous file waits while the new one is in place
    swapped: bool = False


@dataclass
class Publication:
    """Files staged for one lake-and-warehouse write (see :meth:`Lake.publishing`)."""

    lake: Lake
    staged: list[_Staged] = field(default_factory=list)

    def stage_table(self, asset: str, partition: str | None, frame: pd.DataFrame | pa.Table) -> str:
        final = self.lake.path(asset, partition)
        self.staged.append(_Staged(self.lake._stage_table(final, frame), final))
        return self.lake.uri(asset, partition)

    def stage_bytes(self, final: str, data: bytes) -> None:
        """Stage a file at the lake path ``final`` (e.g. an HTML report)."""
        self.staged.append(_Staged(self.lake._stage(final, lambda handle: handle.write(data)), final))

    def publish(self) -> None:
        """Move every staged file into place, keeping each previous file aside until :meth:`finish`."""
        for item in self.staged:
            if item.swapped:
                continue
            if self.lake.fs.exists(item.final):
                item.backup = f"{item.final}.{uuid.uuid4().hex}.old"
                self.lake.rename(item.final, item.backup)
            item.swapped = True  # from here on a roll-back must restore (or remove) the final file
            self.lake.rename(item.temporary, item.final)

    def roll_back(self) -> None:
        """Undo :meth:`publish`: previous files back in place (or the new ones removed), staged files removed."""
        for item in reversed(self.staged):
            if item.swapped:
                if item.backup is not None and self.lake.fs.exists(item.backup):
                    self.lake.rename(item.backup, item.final)
                elif item.backup is None and not self.lake.fs.exists(item.temporary):
                    self.lake._remove(item.final)  # the partition did not exist before
            self.lake._remove(item.temporary)

    def finish(self) -> None:
        for item in self.staged:
            if item.backup is not None:
                self.lake._remove(item.backup)
