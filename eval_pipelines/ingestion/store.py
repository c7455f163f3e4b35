"""A landing directory in an object store (``s3://bucket/prefix``, ``gs://``, ``az://``, any fsspec URL).

Objects are listed with bounded calls: on S3 (s3fs) each call is one ``ListObjectsV2`` page of at most
``page_size`` keys, resumed with ``StartAfter`` (a plain key, so the sensor can keep it in its cursor between
ticks). Other fsspec stores are listed through fsspec's own ``find``, which pages inside one call.

A folder's fingerprint is a hash chain over its log objects in key order (name, size, ETag, last-modified), so a
listing cut into pages, even pages of different ticks, gives the same fingerprint as one listing of the folder.
Readers stream each object from the store (``open``); nothing is copied to a local disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath
from typing import IO, Any

import fsspec

from eval_pipelines.ingestion.ingest import SkippedPath, day_folder_date
from eval_pipelines.ingestion.readers import OTLP_SUFFIXES, SUPPORTED_SUFFIXES, file_format

FINGERPRINT_CHARS = 12
_CHAIN_CHARS = 32
S3_MAX_KEYS = 1000  # ListObjectsV2 never returns more keys per call


@dataclass(frozen=True)
class StoreObject:
    """One object under the landing prefix; ``name`` is its key relative to the prefix (``2026-11-01/a.jsonl``)."""

    name: str
    size: int
    etag: str
    modified: str

    def entry(self) -> bytes:
        return f"{self.name}\0{self.size}\0{self.etag}\0{self.modified}\n".encode()


@dataclass
class ListingProgress:
    """A pass over the whole prefix, possibly spread over several ticks (kept in the sensor's cursor)."""

    after: str | None = None  # the last key listed; the next page starts after it
    folders: dict[str, str] = field(default_factory=dict)  # day folder -> hash chain of its log objects so far
    listed: int = 0  # objects listed in this pass so far

    def to_json(self) -> dict[str, Any]:
        return {"after": self.after, "folders": self.folders, "listed": self.listed}

    @classmethod
    def from_json(cls, state: object) -> ListingProgress:
        if not isinstance(state, dict):
            return cls()
        after, folders, listed = state.get("after"), state.get("folders"), state.get("listed")
        return cls(after if isinstance(after, str) else None,
                   {str(k): str(v) for k, v in folders.items()} if isinstance(folders, dict) else {},
                   listed if isinstance(listed, int) else 0)


def chain(state: str, entry: bytes) -> str:
    return hashlib.blake2b(state.encode() + entry, digest_size=16).hexdigest()[:_CHAIN_CHARS]


def day_fingerprints(folders: dict[str, str]) -> dict[str, str]:
    """``{YYYY-MM-DD: fingerprint}`` from the folder chains (both spellings of a day combine)."""
    by_day: dict[str, list[tuple[str, str]]] = {}
    for folder, state in folders.items():
        day = day_folder_date(folder)
        if day is not None:
            by_day.setdefault(day.isoformat(), []).append((folder, state))
    result = {}
    for day, parts in by_day.items():
        digest = hashlib.blake2b(digest_size=16)
        for folder, state in sorted(parts):
            digest.update(f"{folder}\0{state}\n".encode())
        result[day] = digest.hexdigest()[:FINGERPRINT_CHARS]
    return result


def _info_text(info: dict[str, Any], *names: str) -> str:
    return next((str(info[name]) for name in names if info.get(name) not in (None, "")), "")


class ObjectLanding:
    """The landing layout under one fsspec URL: listing pages, day folders, fingerprints, streaming opens."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, page_size: int = S3_MAX_KEYS):
        options = {"use_listings_cache": False, **(storage_options or {})}  # a sensor must see new objects
        self.url = url.rstrip("/")
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as error:
            raise ImportError(f"source.landing_dir {self.url}: {error}; for S3 install the s3 extra "
                              "(pip install 'eval_pipelines[s3]'), for gs:// gcsfs, for az:// adlfs") from None
        self.root = root.rstrip("/")
        self.page_size = max(1, min(page_size, S3_MAX_KEYS))
        self._s3 = type(self.fs).__name__ == "S3FileSystem"

    def label(self, name: str = "") -> str:
        return f"{self.url}/{name}" if name else self.url

    # -- listing ---------------------------------------------------------------------------------------------
    def list_page(self, prefix: str = "", after: str | None = None) -> tuple[list[StoreObject], str | None]:
        """One bounded listing call: objects under ``prefix`` (relative) after the key ``after``, and where the
        next page starts (None: the listing is complete)."""
        if not self._s3:
            objects = [item for item in self._find(prefix) if after is None or item.name > after]
            return objects, None
        bucket, key_prefix = self._bucket_and_key(prefix)
        arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": key_prefix, "MaxKeys": self.page_size}
        if after is not None:
            arguments["StartAfter"] = self._key(after)
        try:
            response = self.fs.call_s3("list_objects_v2", **arguments)
        except OSError as error:  # s3fs turns S3's errors (NoSuchBucket, AccessDenied, ...) into OSErrors
            raise OSError(f"listing {self.label(prefix)} failed: {type(error).__name__}: {error}; check the bucket "
                          "and prefix of source.landing_dir, source.storage_options (client_kwargs.endpoint_url) and "
                          "the store's credentials in its environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                          "AWS_PROFILE or the pod's IAM role)") from error
        strip = len(self._key(""))
        objects = [StoreObject(item["Key"][strip:], int(item.get("Size", 0)), str(item.get("ETag", "")),
                               str(item.get("LastModified", ""))) for item in response.get("Contents", [])]
        more = bool(response.get("IsTruncated")) and bool(objects)
        return objects, (objects[-1].name if more else None)

    def list_all(self, prefix: str = "") -> Iterator[StoreObject]:
        """Every object under ``prefix``, page by page (bounded calls; for a run, not a sensor tick)."""
        after = None
        while True:
            objects, after = self.list_page(prefix, after)
            yield from objects
            if after is None:
                return

    def _find(self, prefix: str) -> list[StoreObject]:
        base = f"{self.root}/{prefix}".rstrip("/")
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base, detail=True, withdirs=False)
        strip = len(self.root) + 1
        return sorted((StoreObject(path[strip:], int(info.get("size") or 0),
                                   _info_text(info, "ETag", "etag", "md5Hash", "content_md5"),
                                   _info_text(info, "LastModified", "last_modified", "updated", "mtime", "created"))
                       for path, info in found.items()), key=lambda item: item.name)

    def _key(self, name: str) -> str:
        return self._bucket_and_key(name)[1]

    def _bucket_and_key(self, name: str) -> tuple[str, str]:
        bucket, _, key = f"{self.root}/{name}".partition("/")
        return bucket, key

    # -- the layout ------------------------------------------------------------------------------------------
    def advance(self, progress: ListingProgress, source_format: str, max_pages: int) -> bool:
        """List up to ``max_pages`` pages of the pass in ``progress``; True when the pass reached the end."""
        for _ in range(max_pages):
            objects, after = self.list_page("", progress.after)
            for item in objects:
                folder = log_folder(item.name, source_format)
                if folder is not None:
                    progress.folders[folder] = chain(progress.folders.get(folder, ""), item.entry())
            progress.listed += len(objects)
            progress.after = after
            if after is None:
                return True
        return False

    def day_fingerprint(self, day: date, source_format: str) -> str | None:
        folders: dict[str, str] = {}
        for folder in day_folder_names(day):
            for item in self.list_all(f"{folder}/"):
                if log_folder(item.name, source_format) == folder:
                    folders[folder] = chain(folders.get(folder, ""), item.entry())
        return day_fingerprints(folders).get(day.isoformat())

    def day_objects(self, day: date) -> dict[str, list[StoreObject]]:
        """Every object under the day's folders (both spellings), by folder; a folder marker counts."""
        found = {}
        for folder in day_folder_names(day):
            objects = list(self.list_all(f"{folder}/"))
            if objects:
                found[folder] = objects
        return found

    def day_listing(self, day: date, source_format: str) -> tuple[list[StoreObject], list[SkippedPath]]:
        """The day's log objects (directly in a day folder) and every other object with why it is skipped."""
        files: list[StoreObject] = []
        skipped: list[SkippedPath] = []
        subfolders: set[str] = set()
        for folder, objects in self.day_objects(day).items():
            for item in objects:
                name = item.name[len(folder) + 1:]
                if not name:
                    continue  # the folder's own marker object ("2026-11-01/")
                if "/" in name:
                    subfolders.add(f"{folder}/{name.split('/', 1)[0]}")
                elif file_format_of(name, source_format) is None:
                    expected = OTLP_SUFFIXES if source_format == "otlp_json" else SUPPORTED_SUFFIXES
                    skipped.append(SkippedPath(item.name, f"unsupported file type for source.format "
                                                          f"{source_format}; expected one of " + ", ".join(expected)))
                else:
                    files.append(item)
        skipped += [SkippedPath(name, "subfolder: only files directly in a day folder are read")
                    for name in sorted(subfolders)]
        return (sorted(files, key=lambda item: tuple(item.name.split("/", 1))),
                sorted(skipped, key=lambda item: item.path))

    def retraction_mark(self, day: date) -> str | None:
        """A value that changes each time the day's folders are emptied again, or None when they are gone."""
        objects = [item for folder in day_folder_names(day)
                   for item in self.list_page(f"{folder}/")[0]]
        return chain("", b"".join(item.entry() for item in objects)) if objects else None

    def root_skips(self, partition_keys: set[str] | frozenset[str]) -> list[SkippedPath]:
        """Top-level entries no partition reads (as ``landing_root_skips`` on disk)."""
        skipped: dict[str, SkippedPath] = {}
        for item in self.list_all(""):
            top, slash, _ = item.name.partition("/")
            if top in skipped:
                continue
            day = day_folder_date(top) if slash else None
            if not slash:
                skipped[top] = SkippedPath(top, "a file at the top of the landing directory; files go in a day "
                                                "folder YYYY-MM-DD/")
            elif day is None:
                skipped[top] = SkippedPath(top, "folder name is not a day (YYYY-MM-DD or dt=YYYY-MM-DD)")
            elif day.isoformat() not in partition_keys:
                skipped[top] = SkippedPath(top, "day outside the daily partitions (partitions.start_date .. today)")
        return [skipped[name] for name in sorted(skipped)]

    def open(self, name: str) -> IO[bytes]:
        """A streaming read of one object (ranged GETs on S3), never a copy on local disk."""
        return self.fs.open(f"{self.root}/{name}", "rb")


def day_folder_names(day: date) -> tuple[str, str]:
    return day.isoformat(), f"dt={day.isoformat()}"


def file_format_of(name: str, source_format: str) -> str | None:
    return file_format(PurePosixPath(name), source_format)


def log_folder(name: str, source_format: str) -> str | None:
    """The day folder of a log object directly inside one (``2026-11-01/a.jsonl`` -> ``2026-11-01``), else None."""
    folder, slash, rest = name.partition("/")
    if not slash or not rest or "/" in rest or day_folder_date(folder) is None:
        return None
    return folder if file_format_of(rest, source_format) is not None else None
