"""Two real candidate triage systems for the demo, of different quality, called through the ``python`` adapter.

Both read only the (PII-masked) ticket text and answer ``"<category>/<priority>"`` like the production copilot
of :mod:`eval_pipelines.demo.generator`:

- ``keyword_triage``: multilingual keyword rules for the six categories and the priority cues of all six
  languages, a confidence that says whether a rule fired. On demo data it is right on ~75-80 % of eval-set
  cases, better than the logged production system, and it should pass the demo gate.
- ``naive_triage``: a handful of English keywords and a fixed "medium" priority unless the text shouts "urgent".
  Blind to five of the six languages and to most priority cues, it should fail the gate.

They are plain vectorised functions over a DataFrame (Arrow regex kernels, no per-row Python), so the benchmark
can push 100k cases through them in well under a second.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Checked in this order: the first category with a hit wins (refund before billing and shipping, whose words
# refund tickets also use; "other" before technical, whose "dashboard" the praise ticket mentions).
_CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("refund", ("refund", "rückerstattung", "erstattung", "rembours", "reembolso", "返金")),
    ("other", ("discount", "nonprofit", "data processing", "looks great", "rabatt", "gemeinnützig",
               "auftragsverarbeitung", "remise", "associations", "traitement des données", "descuento", " ong",
               "tratamiento de datos", "desconto", "ongs", "tratamento de dados", "割引", "非営利", "データ処理")),
    ("shipping", ("arrived", "tracking", "in transit", "package", "delivery", "wrong item", "bestellung",
                  "sendungsverfolgung", "paket", "commande", "colis", "pedido", "paquete", "encomenda", "注文",
                  "配送", "荷物")),
    ("billing", ("charged", "invoice", "billed", "vat number", "abgebucht", "rechnung", "débité", "facture",
                 "cobraron", "factura", "cobrado", "fatura", "請求")),
    ("account", ("log in", "password", "seats", "admin", "email address", "account", "two-factor", "konto",
                 "lizenzen", "compte", "utilisateurs", "cuenta", "licencias", "conta ", "utilizadores", "アカウント",
                 "ユーザー")),
    ("technical", ("crash", "error", "sync", "api ", "export", "slow", "update", "stürzt", "fehler", "plante",
                   "erreur", "se cierra", "fecha sozinho", "erro ", "落ちます", "エラー")),
)
_FALLBACK_CATEGORY = "technical"  # the most frequent category

_PRIORITY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("urgent", ("urgent", "asap", "production is down", "dringend", "steht alles still", "tout est bloqué",
                "urgente", "todo está parado", "está tudo parado", "至急", "緊急")),
    ("high", ("blocking our team", "fix this soon", "need this today", "blockiert", "zeitnah", "bloque notre",
              "corriger rapidement", "bloquea a nuestro", "arréglenlo pronto", "bloquear a equipa",
              "resolvam em breve", "止まっています", "早めの対応")),
    ("low", ("no rush", "whenever you get a chance", "keine eile", "rien de pressé", "sin prisa", "sem pressa",
             "急ぎではありません")),
)
_DEFAULT_PRIORITY = "medium"  # the most frequent priority, and what an empty cue most often means


def _pattern(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(word) for word in words)


def _first_match(text: pd.Series, rules: tuple[tuple[str, tuple[str, ...]], ...], default: str) -> tuple[
        np.ndarray, np.ndarray]:
    """The name of the first rule with a keyword in the text (``default`` when none) and whether one fired."""
    chosen = np.full(len(text), default, dtype=object)
    fired = np.zeros(len(text), dtype=bool)
    for name, words in rules:
        hit = text.str.contains(_pattern(words), regex=True).fillna(False).to_numpy(dtype=bool) & ~fired
        chosen[hit] = name
        fired |= hit
    return chosen, fired


def _lower_text(cases: pd.DataFrame) -> pd.Series:
    return cases["input_text"].astype("str").fillna("").str.lower()


def keyword_triage(cases: pd.DataFrame) -> pd.DataFrame:
    """Multilingual keyword triage: ``output``, a rule-based ``confidence`` and a nominal ``cost_usd``."""
    text = _lower_text(cases)
    category, category_fired = _first_match(text, _CATEGORY_RULES, _FALLBACK_CATEGORY)
    priority, priority_fired = _first_match(text, _PRIORITY_RULES, _DEFAULT_PRIORITY)
    confidence = np.where(category_fired, 0.92, 0.35) * np.where(priority_fired, 0.97, 0.72)
    return pd.DataFrame({
        "output": pd.array(category.astype(str) + "/" + priority.astype(str), dtype="str"),
        "confidence": np.round(confidence, 4),
        "cost_usd": np.full(len(cases), 0.00002),
    })


_NAIVE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("billing", ("invoice", "charged")),
    ("refund", ("refund",)),
    ("shipping", ("order", "package")),
    ("account", ("password", "log in")),
)


def naive_triage(cases: pd.DataFrame) -> pd.DataFrame:
    """English-only keywords (billing before refund, so refund tickets that mention a charge go astray) and a
    fixed priority unless the ticket says "urgent"; a flat, over-confident confidence."""
    text = _lower_text(cases)
    category, _ = _first_match(text, _NAIVE_CATEGORIES, _FALLBACK_CATEGORY)
    priority = np.where(text.str.contains("urgent").fillna(False).to_numpy(dtype=bool), "urgent", "medium")
    return pd.DataFrame({
        "output": pd.array(category.astype(str) + "/" + priority.astype(str), dtype="str"),
        "confidence": np.full(len(cases), 0.9),
        "cost_usd": np.full(len(cases), 0.00001),
    })


# The demo's two candidates as config entries (eval_pipelines.yaml lists the same two under scoring.candidates):
# a ScoringConfig has no candidates by default, so tests and benches that replay the demo name them from here.
DEMO_CANDIDATES = [
    {"name": "keyword_rules", "adapter": "python", "target": "eval_pipelines.demo.candidates:keyword_triage",
     "description": "Multilingual keyword rules for category and priority (demo: should pass).", "gate": "default",
     "systems": ["support_triage"]},
    {"name": "naive_rules", "adapter": "python", "target": "eval_pipelines.demo.candidates:naive_triage",
     "description": "English-only keywords, fixed priority (demo: should fail the gate).", "gate": "default",
     "systems": ["support_triage"]},
]
TEXT_CANDIDATE = {"name": "template_replies", "adapter": "python",
                  "target": "eval_pipelines.demo.candidates:template_replies", "gate": "replies",
                  "systems": ["reply_drafts"],
                  "description": "Approved reply templates chosen by the keyword rules (the text system's candidate)."}
"""The reply system's candidate as eval_pipelines.yaml lists it (its gate context ``replies`` is in that file)."""


def template_replies(cases: pd.DataFrame) -> pd.DataFrame:
    """A reply candidate for the free-text ``reply_drafts`` system: the keyword rules' category picks the approved
    reply template of :mod:`eval_pipelines.demo.replies` (greeting, what we understood, the right next step,
    sign-off) for the ticket's product. Right topic whenever the rules are; never the agent's own phrasing."""
    from eval_pipelines.demo.replies import GREETINGS, PRODUCT_NAMES, SIGN_OFFS, TOPICS

    category, fired = _first_match(_lower_text(cases), _CATEGORY_RULES, _FALLBACK_CATEGORY)
    products = (cases["product"].astype("str").fillna("core") if "product" in cases.columns
                else pd.Series("core", index=cases.index))
    replies = [f"{GREETINGS[0]} {TOPICS[c][0].format(product=PRODUCT_NAMES.get(p, p))} "
               f"{TOPICS[c][1].format(product=PRODUCT_NAMES.get(p, p))} {SIGN_OFFS[0]}"
               for c, p in zip(category, products, strict=True)]
    return pd.DataFrame({
        "output": pd.array(replies, dtype="str"),
        "confidence": np.where(fired, 0.85, 0.4),
        "cost_usd": np.full(len(cases), 0.00005),
    })
