"""Near-duplicate edge cases on long free-text outputs (issue 18 item 4): the MinHash path on 2,000-word drafts."""

from __future__ import annotations

import random

import numpy as np

from eval_pipelines.edge_cases.dedup import MinHasher, agreement, cluster_signatures, normalise


def _draft(rng: random.Random, words: int) -> str:
    # Letters only: normalisation folds every digit run to 0, so numbered words would all look alike.
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                  for _ in range(3000)]
    return " ".join(rng.choice(vocabulary) for _ in range(words))


def _shingle_jaccard(a: str, b: str, k: int) -> float:
    left = {a[i:i + k] for i in range(len(a) - k + 1)}
    right = {b[i:i + k] for i in range(len(b) - k + 1)}
    return len(left & right) / len(left | right)


def test_long_near_duplicates_cluster_and_unrelated_long_texts_do_not() -> None:
    rng = random.Random(11)
    base = _draft(rng, 2000)
    words = base.split()
    edited = " ".join([*words[:900], "please", "note", "the", "new", "address", *words[900:1900]])  # a light edit
    unrelated = _draft(rng, 2000)
    texts = normalise([base, edited, unrelated])
    hasher = MinHasher(num_perm=128, shingle_size=5, seed=1)
    signatures = hasher.signatures(texts)
    exact = _shingle_jaccard(texts[0].as_py(), texts[1].as_py(), 5)
    estimated = float(agreement(signatures[0:1], signatures[1:2])[0])
    assert exact > 0.8
    assert abs(estimated - exact) <= 3 * np.sqrt(exact * (1 - exact) / 128) + 1e-9  # MinHash within 3 SE
    assert float(agreement(signatures[0:1], signatures[2:3])[0]) < 0.2
    labels = cluster_signatures(signatures, np.zeros(3, dtype=np.uint64), bands=32, threshold=0.5)
    assert labels[0] == labels[1] != labels[2]
