"""Near-duplicate detection for the edge-case library: normalised text, MinHash signatures, LSH banding.

Two inputs are near-duplicates when the Jaccard similarity of their sets of character ``k``-shingles, taken on the
normalised text, is at least the threshold (Broder 1997). The similarity is estimated with MinHash: ``m`` hash
functions, the signature of a text being the minimum of each over its shingles, and the share of agreeing
signature positions an unbiased estimate of the Jaccard similarity (standard error ``sqrt(J (1 - J) / m)``).
Candidate pairs come from LSH banding (Indyk & Motwani 1998; Leskovec, Rajaraman & Ullman, *Mining of Massive
Datasets*, ch. 3): the signature is cut into ``b`` bands of ``r`` rows and two texts are candidates when any band
is identical, which happens with probability ``1 - (1 - J^r)^b``; every candidate is then verified against the
threshold, so banding costs recall only far below the threshold.

Normalisation (``normalise``) makes the comparison about content: Unicode NFKC, lower case, every run of digits
becomes ``0`` (order numbers, amounts, dates and error codes are instance data, not the failure), and every run of
anything but letters and digits becomes one space (punctuation, the brackets of PII placeholders, line breaks).
Character shingles rather than word shingles keep languages without spaces (Japanese) and typos working.

Everything is vectorised over numpy / Arrow; no per-shingle Python. A new dependency (datasketch) would bring the
same algorithm with a per-text Python loop, slower for a million cases a day, so the ~100 lines here are kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.edge_cases.settings import DedupConfig
from eval_pipelines.evalsets.design import mix64

NORMALISATION_VERSION = 1
"""Bumped whenever ``normalise`` changes, so stored fingerprints and signatures are recomputed, not compared."""

_FINGERPRINT_KEY = "edge-case-fprint"  # 16 bytes: the SipHash key of fingerprints (fixed, not secret)
_ROLL = np.uint64(0x100000001B3)  # FNV prime: multiplier of the rolling shingle hash
_MAX_BUCKET = 64  # at most this many library entries are compared per LSH bucket (the oldest ones)


def normalise(texts: pd.Series | Sequence[str | None] | pa.Array) -> pa.Array:
    """The comparable form of each text (see the module docstring); null becomes the empty string."""
    array = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(
        pd.Series(texts, dtype="str").to_numpy(dtype=object, na_value=None), type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = pc.cast(array, pa.large_string())
    array = pc.fill_null(array, "")
    array = pc.utf8_normalize(array, form="NFKC")
    array = pc.utf8_lower(array)
    array = pc.replace_substring_regex(array, pattern=r"[0-9]+", replacement="0")
    array = pc.replace_substring_regex(array, pattern=r"[^\p{L}\p{N}]+", replacement=" ")
    return pc.utf8_trim_whitespace(array)


def fingerprints(normalised: pa.Array) -> np.ndarray:
    """A 64-bit fingerprint per normalised text: equal texts, equal fingerprints (collisions ~ n^2 / 2^65)."""
    series = pd.Series(pd.arrays.ArrowStringArray(pa.array(normalised, type=pa.large_string()))
                       if len(normalised) else pd.array([], dtype="str"))
    return pd.util.hash_pandas_object(series, index=False, hash_key=_FINGERPRINT_KEY).to_numpy(dtype=np.uint64)


def fingerprint_hex(values: np.ndarray) -> list[str]:
    return [f"{int(value):016x}" for value in values]


def dedup_key(config: DedupConfig) -> str:
    """Identifies the signature space: signatures with different keys are not comparable."""
    text = f"v{NORMALISATION_VERSION}|{config.method}|{config.num_perm}|{config.shingle_size}|{config.seed}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class MinHasher:
    """MinHash signatures of normalised texts over character ``shingle_size``-grams, ``num_perm`` hash functions.

    Hash functions are multiply-add-shift on a 64-bit mixed shingle hash: ``h_i(x) = (a_i x + b_i) >> 32`` with
    random odd ``a_i`` (Dietzfelbinger et al. 1997), giving 32-bit signature values.
    """

    def __init__(self, num_perm: int = 128, shingle_size: int = 5, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    @classmethod
    def from_config(cls, config: DedupConfig) -> MinHasher:
        return cls(config.num_perm, config.shingle_size, config.seed)

    def shingles(self, normalised: pa.Array | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mixed 64-bit hashes of every shingle, and the start offset of each text's run of shingles.

        A text shorter than ``k`` characters is padded with NULs to one shingle, so it still has a signature.
        """
        k = self.shingle_size
        texts = normalised.to_pylist() if isinstance(normalised, pa.Array | pa.ChunkedArray) else list(normalised)
        texts = [text if len(text) >= k else text.ljust(k, "\0") for text in texts]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        if not len(texts):
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        width = len(points) - k + 1
        rolling = np.zeros(width, dtype=np.uint64)
        for offset in range(k):
            rolling *= _ROLL
            rolling += points[offset: offset + width]
        per_text = lengths - k + 1
        ends = np.cumsum(per_text)
        starts_out = ends - per_text
        text_starts = np.cumsum(lengths) - lengths
        positions = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(text_starts - starts_out, per_text)
        return mix64(rolling[positions]), starts_out

    def signatures(self, normalised: pa.Array | Sequence[str]) -> np.ndarray:
        """``(n, num_perm)`` uint32 signatures."""
        hashes, starts = self.shingles(normalised)
        out = np.empty((len(starts), self.num_perm), dtype=np.uint32)
        if not len(starts):
            return out
        scratch = np.empty_like(hashes)
        for i in range(self.num_perm):
            np.multiply(hashes, self._a[i], out=scratch)
            scratch += self._b[i]
            scratch >>= np.uint64(32)
            out[:, i] = np.minimum.reduceat(scratch, starts)
        return out


def band_keys(signatures: np.ndarray, bands: int, groups: np.ndarray | None = None) -> np.ndarray:
    """``(n, bands)`` uint64 bucket keys: band ``j`` of the signature hashed with ``j`` and the row's group.

    ``groups`` (uint64 per row, e.g. the hashed failure mode) keeps rows of different groups out of each other's
    buckets.
    """
    n, m = signatures.shape
    rows = m // bands
    wide = signatures.astype(np.uint64)
    keys = np.empty((n, bands), dtype=np.uint64)
    salt = np.zeros(n, dtype=np.uint64) if groups is None else np.asarray(groups, dtype=np.uint64)
    for band in range(bands):
        acc = salt ^ np.uint64(band * 0x9E3779B97F4A7C15 % 2**64)
        for column in range(band * rows, (band + 1) * rows):
            acc = mix64(acc ^ wide[:, column])
        keys[:, band] = acc
    return keys


def agreement(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Row-wise share of equal signature positions: the MinHash estimate of the Jaccard similarity."""
    return (left == right).mean(axis=1)


def group_hash(names: Sequence[str] | np.ndarray) -> np.ndarray:
    """A uint64 per name (failure mode), to salt LSH buckets."""
    cache: dict[str, int] = {}
    out = np.empty(len(names), dtype=np.uint64)
    for i, name in enumerate(names):
        if name not in cache:
            cache[name] = int.from_bytes(hashlib.blake2b(str(name).encode(), digest_size=8).digest(), "little")
        out[i] = cache[name]
    return out


@dataclass(frozen=True)
class Matches:
    """For each query row, the matched reference row (-1: none) and the estimated similarity."""

    index: np.ndarray
    similarity: np.ndarray


def match_signatures(query: np.ndarray, query_groups: np.ndarray, reference: np.ndarray,
                     reference_groups: np.ndarray, bands: int, threshold: float) -> Matches:
    """For each query row, the first (oldest) reference row of the same group whose similarity reaches
    ``threshold``, among those sharing an LSH bucket with it; -1 when there is none.

    "Oldest similar", not "most similar": it is what makes a re-merge reproduce the original assignment. A case
    that founded or joined an entry when it was first merged finds that same entry again, because every entry
    created after it is younger (see ``cluster_signatures``).
    """
    index = np.full(len(query), -1, dtype=np.int64)
    best = np.zeros(len(query), dtype=np.float64)
    if not len(query) or not len(reference):
        return Matches(index, best)
    reference_keys = band_keys(reference, bands, reference_groups).ravel()
    query_keys = band_keys(query, bands, query_groups).ravel()
    ref_rows = np.repeat(np.arange(len(reference), dtype=np.int64), bands)
    # Buckets as runs of a sorted key array (a sort-merge join in numpy, no hash table of millions of rows); only
    # the _MAX_BUCKET oldest entries of a bucket are kept, so a huge bucket cannot blow up the candidate pairs.
    order = np.lexsort((ref_rows, reference_keys))
    sorted_keys, sorted_rows = reference_keys[order], ref_rows[order]
    run_start = np.searchsorted(sorted_keys, sorted_keys, side="left")
    kept = (np.arange(len(sorted_keys)) - run_start) < _MAX_BUCKET
    sorted_keys, sorted_rows = sorted_keys[kept], sorted_rows[kept]
    low = np.searchsorted(sorted_keys, query_keys, side="left")
    high = np.searchsorted(sorted_keys, query_keys, side="right")
    counts = high - low
    if not counts.sum():
        return Matches(index, best)
    query_rows = np.repeat(np.repeat(np.arange(len(query), dtype=np.int64), bands), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_codes = np.unique(query_rows * len(reference) + sorted_rows[np.repeat(low, counts) + offsets])
    q, r = pair_codes // len(reference), pair_codes % len(reference)
    similarity = agreement(query[q], reference[r])
    keep = similarity >= threshold
    q, r, similarity = q[keep], r[keep], similarity[keep]
    order = np.lexsort((r, q))
    q, r, similarity = q[order], r[order], similarity[order]
    first = np.ones(len(q), dtype=bool)
    first[1:] = q[1:] != q[:-1]
    index[q[first]] = r[first]
    best[q[first]] = similarity[first]
    return Matches(index, best)


def cluster_signatures(signatures: np.ndarray, groups: np.ndarray, bands: int, threshold: float) -> np.ndarray:
    """Cluster labels (0..k-1, in order of each cluster's first row) of near-duplicate rows within groups.

    Leader clustering in row order (Hartigan 1975, §3.2; rows should come in order of first appearance): a row joins
    the first earlier leader of its group, sharing an LSH bucket with it, whose similarity reaches ``threshold``;
    otherwise it becomes a leader. So every member of a cluster is at least ``threshold``-similar to the cluster's
    representative — the rule the library applies when a later case is matched to an entry — and, unlike single
    linkage, no chain of small steps can join two dissimilar texts. One pass; the only Python-level loop is over
    rows, with dictionary look-ups of their band keys (about 1 s for 50k distinct texts).
    """
    n = len(signatures)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    keys = band_keys(signatures, bands, np.asarray(groups, dtype=np.uint64)).tolist()
    buckets: dict[int, list[int]] = {}
    leaders: list[int] = []
    for row in range(n):
        row_keys = keys[row]
        candidates: set[int] = set()
        for key in row_keys:
            found = buckets.get(key)
            if found is not None:
                candidates.update(found)
        if candidates:
            leader_rows = np.fromiter(sorted(candidates), dtype=np.int64, count=len(candidates))
            similar = np.flatnonzero((signatures[leader_rows] == signatures[row]).mean(axis=1) >= threshold)
            if len(similar):
                labels[row] = labels[leader_rows[similar[0]]]  # the oldest similar leader
                continue
        labels[row] = len(leaders)
        leaders.append(row)
        for key in row_keys:
            buckets.setdefault(key, []).append(row)
    return labels
