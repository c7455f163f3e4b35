"""The Parquet lake: ``<lake_dir>/<asset>/<YYYY-MM-DD>.parquet`` on a local path or any fsspec URL.

Writes go to a temporary name first and are renamed into place, so a reader never sees half a file and a
re-run replaces the partition whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


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
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        final = self.path(asset, partition)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{final}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(temporary, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
        self.fs.mv(temporary, final)
        return self.uri(asset, partition)

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
