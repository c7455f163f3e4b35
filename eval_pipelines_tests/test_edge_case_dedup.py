"""Near-duplicate detection: normalisation, MinHash against exact Jaccard, precision/recall on a labelled fixture."""

from __future__ import annotations

import random
import re
from itertools import combinations

import numpy as np
import pytest

from eval_pipelines.edge_cases.dedup import (
    MinHasher,
    agreement,
    cluster_signatures,
    fingerprints,
    group_hash,
    match_signatures,
    normalise,
)
from eval_pipelines.edge_cases.settings import DedupConfig

# Distinct failures, several deliberately close in topic and wording (two refund tickets, two login tickets, two
# parcel tickets, the same request in three languages): they must stay apart.
BASES = {
    "double_charge": "I was charged twice for my Pro subscription this month ($49.00). Can you check my invoice?",
    "refund_missing": "Your agent promised me a refund of $120.00 last week and I still have nothing.",
    "refund_duration": "How long does a refund usually take to show up on my statement? Order ORD-5531.",
    "login_reset": "I can't log in to my account, the password reset email never arrives.",
    "account_locked": "My account got locked after two-factor login failed on my iPhone.",
    "api_error": "The API returns HTTP 500 for every request since Mar 3. Nothing changed on our side.",
    "crash_dashboard": "The app keeps crashing on my Android phone when I open the dashboard. Error E4012.",
    "parcel_late": "Order ORD-7781 still hasn't arrived, tracking says in transit since 12/10.",
    "parcel_damaged": "The package for order ORD-1200 arrived damaged, the screen is cracked.",
    "export_spin": "Can't export reports, the export button just spins forever.",
    "de_refund": "Ich möchte eine volle Rückerstattung für Bestellung ORD-4411, das Produkt funktioniert nicht.",
    "de_login": "Ich komme nicht mehr in mein Konto, die Mail zum Zurücksetzen kommt nie an.",
    "ja_double": "今月Proの料金4900円が二重に請求されています。請求書を確認してください。",
    "ja_login": "Proのアカウントにログインできません。再設定メールが届きません。",
}


def _variants(text: str, rnd: random.Random) -> list[str]:
    """What real duplicates look like: other numbers, casing, punctuation, a greeting, typos, a masked email."""
    def drop(t: str) -> str:  # a typo: one character missing
        i = rnd.randrange(1, len(t) - 1)
        return t[:i] + t[i + 1:]

    return [
        text,
        "Hi team, " + text + " Thanks, Anna",
        text.upper(),
        re.sub(r"\d", lambda _: str(rnd.randrange(10)), text),
        drop(drop(text)) + " You can reach me at [EMAIL].",
        text.replace(",", "").replace(".", "!!") + " URGENT!!",
    ]


@pytest.fixture(scope="module")
def fixture() -> tuple[list[str], np.ndarray]:
    rnd = random.Random(3)
    texts, truth = [], []
    for label, text in enumerate(BASES.values()):
        variants = _variants(text, rnd)
        texts += variants
        truth += [label] * len(variants)
    return texts, np.array(truth)


def pairwise_precision_recall(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    pairs = list(combinations(range(len(truth)), 2))
    same_pred = np.array([predicted[i] == predicted[j] for i, j in pairs])
    same_true = np.array([truth[i] == truth[j] for i, j in pairs])
    true_positive = (same_pred & same_true).sum()
    return true_positive / max(same_pred.sum(), 1), true_positive / same_true.sum()


def test_dedup_merges_near_duplicates_and_keeps_distinct_failures_apart(fixture):
    texts, truth = fixture
    config = DedupConfig()  # the shipped defaults: Jaccard >= 0.5 on 5-character shingles, 128 hashes, 32 bands
    signatures = MinHasher.from_config(config).signatures(normalise(texts))
    labels = cluster_signatures(signatures, np.zeros(len(texts), dtype=np.uint64), config.bands, config.threshold)
    precision, recall = pairwise_precision_recall(labels, truth)
    print(f"dedup fixture: {len(texts)} texts, {len(BASES)} failures -> {labels.max() + 1} entries; "
          f"pairwise precision {precision:.3f}, recall {recall:.3f}")
    assert precision == 1.0  # no two distinct failures share an entry
    assert recall >= 0.9
    # Each failure's original text founds its own entry.
    originals = np.arange(0, len(texts), 6)
    assert len(set(labels[originals])) == len(BASES)


def test_threshold_trades_recall_for_strictness(fixture):
    texts, truth = fixture
    signatures = MinHasher(128, 5, 1).signatures(normalise(texts))
    groups = np.zeros(len(texts), dtype=np.uint64)
    recalls = [pairwise_precision_recall(cluster_signatures(signatures, groups, 32, t), truth)[1]
               for t in (0.4, 0.6, 0.8, 1.0)]
    assert recalls == sorted(recalls, reverse=True) and recalls[-1] < 0.5


def test_normalisation_removes_instance_noise():
    out = normalise(["Order ORD-7781 arrived, £12.50!", "order ord-1 ARRIVED £0.99", "  Ｐｒｏ\tplan  ", None])
    assert out.to_pylist() == ["order ord 0 arrived 0 0", "order ord 0 arrived 0 0", "pro plan", ""]
    prints = fingerprints(out)
    assert prints[0] == prints[1] != prints[2]


def test_minhash_estimates_jaccard():
    rnd = random.Random(0)
    words = ["refund", "order", "login", "invoice", "crash", "parcel", "account", "error", "payment", "late"]
    texts = [" ".join(rnd.choice(words) for _ in range(rnd.randint(4, 20))) for _ in range(80)]
    hasher = MinHasher(256, 5, 7)
    signatures = hasher.signatures(texts)

    def shingles(text: str) -> set[str]:
        return {text[i:i + 5] for i in range(len(text) - 4)}

    errors = []
    for i, j in combinations(range(40), 2):
        a, b = shingles(texts[i]), shingles(texts[j])
        exact = len(a & b) / len(a | b)
        errors.append(agreement(signatures[i:i + 1], signatures[j:j + 1])[0] - exact)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.01  # unbiased
    assert errors.std() < 1.5 * np.sqrt(0.25 / 256)  # within the binomial bound sqrt(J(1-J)/m)
    assert (agreement(signatures, signatures) == 1.0).all()
    short = hasher.signatures(["ab", "ab", "xy"])  # shorter than a shingle: padded, still comparable
    assert (short[0] == short[1]).all() and not (short[0] == short[2]).all()


def test_matching_prefers_the_most_similar_entry_of_the_same_group():
    hasher = MinHasher(128, 5, 1)
    library = normalise(["the export button just spins forever in reports",
                         "the export button just spins forever in reports",  # a younger duplicate entry
                         "my parcel arrived damaged and the screen is cracked"])
    query = normalise(["the export button just spins forever in the reports page",
                       "my parcel arrived damaged and the screen is cracked",
                       "completely unrelated words about a nonprofit discount"])
    groups_lib = group_hash(["timeout", "timeout", "error"])
    found = match_signatures(hasher.signatures(query), group_hash(["timeout", "timeout", "error"]),
                             hasher.signatures(library), groups_lib, bands=32, threshold=0.5)
    assert found.index.tolist() == [0, -1, -1]  # oldest of the tie; other group; nothing similar
    assert found.similarity[0] >= 0.5
