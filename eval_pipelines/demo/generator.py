"""Demo production logs for a support-ticket triage copilot, so the pipeline has something realistic to chew on.

The copilot reads a ticket and suggests ``"<category>/<priority>"``; an agent then accepts, edits, overrides,
rejects or ignores the suggestion. The generator simulates that loop with the correlations the downstream assets
are meant to find: confidence that is roughly calibrated, agents who are faster on accepts than on overrides and
who sometimes accept wrong suggestions (automation bias), complaints and compliance flags that follow those
accepted mistakes, PII in ticket texts for the masking step, and a story across the days (a model rollout, a
product launch that shifts the input mix, an incident day) for drift and reliability checks to catch.

Why it is built the way it is:

* Deterministic: the same arguments give byte-identical files, so demo runs, docs and tests are reproducible.
  Each day draws from its own RNG, ``SeedSequence(seed).spawn(...)[day_index]``, so a day's rows do not depend on
  how many days are generated (only the scenario, which is placed relative to ``days``, does).
* Fast: every per-row quantity is drawn with vectorised numpy; ticket texts are picked by index from a small
  pre-built pool (templates with slot filling and noise) and joined with pyarrow compute; JSON lines are
  assembled column-wise with pyarrow rather than per row in Python. A million events take a few seconds.
* Canonical: columns carry the canonical names from :mod:`eval_pipelines.ingestion.contract`, so the shipped
  demo config maps them by identity; a manifest records what was written so ingestion can be reconciled.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from eval_pipelines.ingestion.contract import CANONICAL_COLUMNS, STATUSES, USER_ACTIONS

LogFormat = Literal["jsonl", "csv", "parquet"]
LOG_FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
MANIFEST_NAME = "_generator_manifest.json"
MANIFEST_VERSION = 1
NO_USER_ACTION = "none"  # how a null user_action is counted in the manifest

SYSTEM_NAME = "support_triage"
MODEL_VERSIONS: tuple[str, ...] = ("triage-v1", "triage-v2")
SEGMENTS: tuple[str, ...] = ("enterprise", "business", "consumer")
CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web")
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "pt", "ja")  # pt and ja appear with the launch
PRODUCTS: tuple[str, ...] = ("core", "pro", "nova")  # nova is launched mid-way
CATEGORIES: tuple[str, ...] = ("billing", "refund", "technical", "account", "shipping", "other")
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
FEATURE_COLUMNS: tuple[str, ...] = ("channel", "language", "product", "customer_tenure_days")
OUTPUT_COLUMNS: tuple[str, ...] = CANONICAL_COLUMNS + FEATURE_COLUMNS
TRUTH_COLUMN = "true_label"  # only in frames asked for with ``with_truth``; never written to the logs
FAILED_OUTPUT = "none"  # ai_output is required by the contract, so a failed call still says something
TIMEOUT_MS = 30_000.0
_TYPICAL_TEXT_CHARS = 110.0  # latency scales mildly with ticket length around this

# The labels the model and the agents choose from: index = category * len(PRIORITIES) + priority.
LABELS: tuple[str, ...] = tuple(f"{c}/{p}" for c in CATEGORIES for p in PRIORITIES)
_FAILED_LABEL_CODE = len(LABELS)
_ACCEPTED, _EDITED, _OVERRIDDEN, _REJECTED, _IGNORED = range(5)
_NO_ACTION = len(USER_ACTIONS)
_OK, _ERROR, _TIMEOUT = (STATUSES.index(s) for s in ("ok", "error", "timeout"))
_V2 = MODEL_VERSIONS.index("triage-v2")
_NOVA = PRODUCTS.index("nova")
_REFUND = CATEGORIES.index("refund")
_OTHER = CATEGORIES.index("other")
_URGENT = PRIORITIES.index("urgent")
_ENTERPRISE = SEGMENTS.index("enterprise")
_JA = LANGUAGES.index("ja")
_NEW_LANGUAGES = np.array([lang in ("pt", "ja") for lang in LANGUAGES])
_EVENT_BATCH_ROWS = 200_000  # JSON lines are assembled in batches to bound memory and 32-bit string offsets


# --------------------------------------------------------------------------------------------------------------
# Scenario
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayConditions:
    """What is different about one day: how much traffic v2 serves, whether Nova is out, whether it is on fire."""

    v2_share: float = 0.0
    launched: bool = False
    incident: bool = False


BASELINE = DayConditions()


@dataclass(frozen=True)
class ScenarioPlan:
    """The days on which the story's events happen, placed relative to the generated range.

    Relative placement (35 % / 45 % / 55 % / 75 % of the way in) keeps the story intact for any ``days``, so a
    short demo and a long backfill both show a before and an after.
    """

    rollout_start: date  # v2 serves ~30 % of traffic from here
    rollout_ramp: date  # ... and ~50 % from here
    launch_day: date  # product "nova" appears, the category and language mix shifts
    incident_day: date  # one day with latency x4 and ~8 % timeouts

    def conditions_on(self, day: date) -> DayConditions:
        """The conditions in force on ``day``; the incident lasts one day, rollout and launch stay."""
        if day >= self.rollout_ramp:
            v2_share = 0.5
        elif day >= self.rollout_start:
            v2_share = 0.3
        else:
            v2_share = 0.0
        return DayConditions(v2_share=v2_share, launched=day >= self.launch_day, incident=day == self.incident_day)

    def as_dict(self) -> dict[str, str]:
        return {
            "rollout_start": self.rollout_start.isoformat(),
            "rollout_ramp": self.rollout_ramp.isoformat(),
            "launch_day": self.launch_day.isoformat(),
            "incident_day": self.incident_day.isoformat(),
        }

    def events_on(self, day: date) -> tuple[str, ...]:
        """Names of the scenario events that start on ``day`` (for the manifest)."""
        return tuple(name for name, when in self.as_dict().items() if when == day.isoformat())


def plan_scenario(days: int, start_date: date) -> ScenarioPlan | None:
    """Place the scenario in a range of ``days`` days; None below 3 days, where there is no before and after."""
    if days < 3:
        return None

    def at(fraction: float, not_before: int = 1) -> date:
        return start_date + timedelta(days=min(days - 1, max(not_before, int(days * fraction))))

    rollout_index = max(1, int(days * 0.35))
    return ScenarioPlan(
        rollout_start=at(0.35),
        rollout_ramp=at(0.45, not_before=rollout_index + 1),
        launch_day=at(0.55),
        incident_day=at(0.75),
    )


# --------------------------------------------------------------------------------------------------------------
# Ticket text pool
# --------------------------------------------------------------------------------------------------------------

# (template, the text asks for or promises money back). Slots: product, order, amount, date, code, device.
_TEMPLATES: dict[str, dict[str, list[tuple[str, bool]]]] = {
    "en": {
        "billing": [
            ("I was charged twice for my {product} subscription this month ({amount}). Can you check my invoice?",
             False),
            ("The invoice from {date} shows {amount} but our {product} plan should be cheaper than that.", False),
            ("Why did my card get billed {amount} for {product}? I didn't change anything on my plan.", False),
            ("I need a copy of the invoice for order {order}, the VAT number is missing on it.", False),
            ("You charged me {amount} after I cancelled {product}, I want that money back.", True),
        ],
        "refund": [
            ("I want a full refund for order {order}, {product} did not work for us at all.", True),
            ("Your agent promised me a refund of {amount} last week and I still have nothing.", True),
            ("Please cancel {product} and refund the {amount} you charged on {date}.", True),
            ("How long does a refund usually take to show up on my statement? Order {order}.", False),
        ],
        "technical": [
            ("{product} keeps crashing on my {device} when I open the dashboard. Error {code}.", False),
            ("Sync is broken since the last update, {product} shows error {code} on my {device}.", False),
            ("The API returns {code} for every request since {date}. Nothing changed on our side.", False),
            ("Can't export reports in {product}, the export button just spins forever.", False),
            ("After the update {product} is extremely slow on {device}, pages take 20 seconds to load.", False),
        ],
        "account": [
            ("I can't log in to my {product} account, the password reset email never arrives.", False),
            ("Please add two more seats to our {product} workspace and make me an admin.", False),
            ("How do I change the email address on my {product} account?", False),
            ("My account got locked after two-factor login failed on my {device}.", False),
        ],
        "shipping": [
            ("Order {order} still hasn't arrived, tracking says in transit since {date}.", False),
            ("The package for order {order} arrived damaged, the {device} screen is cracked.", False),
            ("Can you change the delivery address for order {order}? We moved offices.", False),
            ("I received the wrong item for order {order}, please send the right one.", False),
        ],
        "other": [
            ("Do you offer a discount for nonprofits on {product}?", False),
            ("Just wanted to say the new {product} dashboard looks great, thanks!", False),
            ("Where can I find your data processing agreement for {product}?", False),
        ],
    },
    "de": {
        "billing": [
            ("Mir wurde für {product} diesen Monat doppelt {amount} abgebucht. Bitte prüfen Sie die Rechnung.",
             False),
            ("Die Rechnung vom {date} über {amount} stimmt nicht mit unserem {product}-Tarif überein.", False),
        ],
        "refund": [
            ("Ich möchte eine volle Rückerstattung für Bestellung {order}, {product} funktioniert nicht.", True),
            ("Ihr Mitarbeiter hat mir eine Erstattung von {amount} zugesagt, bis heute kam nichts.", True),
        ],
        "technical": [
            ("{product} stürzt auf meinem {device} ständig ab, Fehler {code}.", False),
            ("Seit dem Update am {date} zeigt {product} nur noch Fehler {code}.", False),
        ],
        "account": [
            ("Ich komme nicht mehr in mein {product}-Konto, die Mail zum Zurücksetzen kommt nie an.", False),
            ("Bitte zwei weitere Lizenzen für unseren {product}-Arbeitsbereich freischalten.", False),
        ],
        "shipping": [
            ("Bestellung {order} ist immer noch nicht da, laut Sendungsverfolgung seit {date} unterwegs.", False),
            ("Das Paket zu Bestellung {order} kam beschädigt an.", False),
        ],
        "other": [
            ("Gibt es für {product} einen Rabatt für gemeinnützige Vereine?", False),
            ("Wo finde ich Ihren Auftragsverarbeitungsvertrag?", False),
        ],
    },
    "fr": {
        "billing": [
            ("J'ai été débité deux fois de {amount} pour {product} ce mois-ci, pouvez-vous vérifier ?", False),
            ("La facture du {date} indique {amount}, ce n'est pas le tarif de notre offre {product}.", False),
        ],
        "refund": [
            ("Je demande le remboursement intégral de la commande {order}, {product} ne fonctionne pas.", True),
            ("On m'a promis un remboursement de {amount} et je n'ai toujours rien reçu.", True),
        ],
        "technical": [
            ("{product} plante sans arrêt sur mon {device}, erreur {code}.", False),
            ("Depuis la mise à jour du {date}, {product} affiche l'erreur {code}.", False),
        ],
        "account": [
            ("Impossible de me connecter à mon compte {product}, l'e-mail de réinitialisation n'arrive pas.",
             False),
            ("Merci d'ajouter deux utilisateurs à notre espace {product}.", False),
        ],
        "shipping": [
            ("La commande {order} n'est toujours pas arrivée, en transit depuis le {date}.", False),
            ("Le colis de la commande {order} est arrivé abîmé.", False),
        ],
        "other": [
            ("Proposez-vous une remise pour les associations sur {product} ?", False),
            ("Où trouver votre accord de traitement des données ?", False),
        ],
    },
    "es": {
        "billing": [
            ("Me cobraron dos veces {amount} por {product} este mes, ¿pueden revisar la factura?", False),
            ("La factura del {date} dice {amount}, pero nuestro plan de {product} es más barato.", False),
        ],
        "refund": [
            ("Quiero el reembolso completo del pedido {order}, {product} no funciona.", True),
            ("Me prometieron un reembolso de {amount} y todavía no he recibido nada.", True),
        ],
        "technical": [
            ("{product} se cierra solo en mi {device}, error {code}.", False),
            ("Desde la actualización del {date}, {product} muestra el error {code}.", False),
        ],
        "account": [
            ("No puedo entrar en mi cuenta de {product}, nunca llega el correo para restablecer la contraseña.",
             False),
            ("Por favor, añadan dos licencias más a nuestro espacio de {product}.", False),
        ],
        "shipping": [
            ("El pedido {order} todavía no ha llegado, en tránsito desde el {date}.", False),
            ("El paquete del pedido {order} llegó dañado.", False),
        ],
        "other": [
            ("¿Tienen descuento para ONG en {product}?", False),
            ("¿Dónde encuentro su acuerdo de tratamiento de datos?", False),
        ],
    },
    "pt": {
        "billing": [
            ("Fui cobrado duas vezes {amount} pelo {product} este mês, podem verificar a fatura?", False),
            ("A fatura de {date} mostra {amount}, mas o nosso plano {product} é mais barato.", False),
        ],
        "refund": [
            ("Quero o reembolso total do pedido {order}, o {product} não funciona.", True),
            ("Prometeram-me um reembolso de {amount} e ainda não recebi nada.", True),
        ],
        "technical": [
            ("O {product} fecha sozinho no meu {device}, erro {code}.", False),
            ("Desde a atualização de {date}, o {product} mostra o erro {code}.", False),
        ],
        "account": [
            ("Não consigo entrar na minha conta {product}, o e-mail de redefinição nunca chega.", False),
            ("Por favor, adicionem mais dois utilizadores ao nosso espaço {product}.", False),
        ],
        "shipping": [
            ("O pedido {order} ainda não chegou, está em trânsito desde {date}.", False),
            ("A encomenda do pedido {order} chegou danificada.", False),
        ],
        "other": [
            ("Vocês têm desconto para ONGs no {product}?", False),
            ("Onde encontro o vosso acordo de tratamento de dados?", False),
        ],
    },
    "ja": {
        "billing": [
            ("今月{product}の料金{amount}が二重に請求されています。請求書を確認してください。", False),
            ("{date}の請求書が{amount}になっていますが、{product}のプランより高いです。", False),
        ],
        "refund": [
            ("注文{order}の全額返金をお願いします。{product}が使えません。", True),
            ("{amount}の返金を約束されましたが、まだ届いていません。", True),
        ],
        "technical": [
            ("{device}で{product}が何度も落ちます。エラー{code}です。", False),
            ("{date}のアップデート以降、{product}でエラー{code}が出ます。", False),
        ],
        "account": [
            ("{product}のアカウントにログインできません。再設定メールが届きません。", False),
            ("{product}のワークスペースにユーザーを2名追加してください。", False),
        ],
        "shipping": [
            ("注文{order}がまだ届きません。{date}から配送中のままです。", False),
            ("注文{order}の荷物が破損して届きました。", False),
        ],
        "other": [
            ("{product}に非営利団体向けの割引はありますか？", False),
            ("データ処理契約書はどこで確認できますか？", False),
        ],
    },
}

# Words that tell the agent (and the model) how urgent a ticket is; "" means no cue at all.
_PRIORITY_CUES: dict[str, dict[str, list[str]]] = {
    "en": {"low": ["", " No rush.", " Whenever you get a chance."],
           "medium": ["", " Thanks.", " Could you take a look?"],
           "high": [" This is blocking our team.", " Please fix this soon.", " We need this today."],
           "urgent": [" URGENT!!", " This is urgent, production is down.", " ASAP please, we are losing customers!"]},
    "de": {"low": ["", " Keine Eile."], "medium": ["", " Danke."],
           "high": [" Das blockiert unser Team.", " Bitte zeitnah lösen."],
           "urgent": [" DRINGEND!!", " Dringend, bei uns steht alles still."]},
    "fr": {"low": ["", " Rien de pressé."], "medium": ["", " Merci."],
           "high": [" Cela bloque notre équipe.", " Merci de corriger rapidement."],
           "urgent": [" URGENT !!", " Urgent, tout est bloqué chez nous."]},
    "es": {"low": ["", " Sin prisa."], "medium": ["", " Gracias."],
           "high": [" Esto bloquea a nuestro equipo.", " Por favor, arréglenlo pronto."],
           "urgent": [" ¡¡URGENTE!!", " Urgente, todo está parado."]},
    "pt": {"low": ["", " Sem pressa."], "medium": ["", " Obrigado."],
           "high": [" Isto está a bloquear a equipa.", " Por favor, resolvam em breve."],
           "urgent": [" URGENTE!!", " Urgente, está tudo parado."]},
    "ja": {"low": ["", "急ぎではありません。"], "medium": ["", "よろしくお願いします。"],
           "high": ["チームの作業が止まっています。", "早めの対応をお願いします。"],
           "urgent": ["至急！！", "緊急です。本番環境が止まっています。"]},
}

_GREETINGS: dict[str, list[str]] = {
    "en": ["Hi team, ", "Hello, ", "hey ", "Good morning, ", "Hi there! "],
    "de": ["Hallo, ", "Guten Tag, ", "Hi, "], "fr": ["Bonjour, ", "Salut, "], "es": ["Hola, ", "Buenos días, "],
    "pt": ["Olá, ", "Bom dia, "], "ja": ["お世話になっております。"],
}
_SIGN_OFFS: dict[str, list[str]] = {
    "en": [" Thanks, Anna", " Cheers", " Best regards, Tom", " thx"],
    "de": [" Viele Grüße, Jonas", " Danke!"], "fr": [" Cordialement, Claire", " Merci d'avance"],
    "es": [" Saludos, Lucía", " Gracias de antemano"], "pt": [" Cumprimentos, João", " Obrigado desde já"],
    "ja": ["よろしくお願いいたします。"],
}
_PII_LEADS: dict[str, list[str]] = {
    "en": [" You can reach me at {email}.", " Call me back on {phone}.", " The card I used is {card}.",
           " Please send the money to IBAN {iban}.", " My email is {email}, phone {phone}."],
    "de": [" Erreichbar unter {email}.", " Rückruf bitte an {phone}.", " Meine Karte: {card}.",
           " Bitte auf IBAN {iban} überweisen."],
    "fr": [" Vous pouvez me joindre à {email}.", " Rappelez-moi au {phone}.", " Ma carte : {card}.",
           " Merci de virer sur l'IBAN {iban}."],
    "es": [" Mi correo es {email}.", " Llámenme al {phone}.", " La tarjeta que usé es {card}.",
           " Por favor, transfieran al IBAN {iban}."],
    "pt": [" O meu e-mail é {email}.", " Liguem-me para {phone}.", " O cartão que usei é {card}.",
           " Por favor, transfiram para o IBAN {iban}."],
    "ja": ["連絡先は{email}です。", "電話番号は{phone}です。", "使用したカードは{card}です。"],
}
_FIRST_NAMES = ("anna", "tom", "lucia", "jonas", "claire", "joao", "maria", "li", "omar", "sofia", "ken", "yuki")
_LAST_NAMES = ("meyer", "smith", "garcia", "dubois", "silva", "tanaka", "rossi", "novak", "kim", "brown")
_MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "example.org", "firma.de", "empresa.es", "corp.example")
_PHONE_FORMATS = ("+1 ({a}) 555-{w}", "+49 15{b} {w} {y}", "+33 6 {p} {q} {r} {s}", "+34 6{p} {y} {z}",
                  "+55 11 9{w}-{x}", "+81 90-{w}-{x}", "06 {p} {q} {r} {s}")
_IBAN_LAYOUTS = (("DE", 18), ("FR", 23), ("ES", 20), ("NL", 14), ("PT", 21))
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DEVICES = ("iPhone", "Android phone", "Windows laptop", "MacBook", "iPad", "Chromebook")
_PRODUCT_NAMES = {"core": "Core", "pro": "Pro", "nova": "Nova"}
_CURRENCY_FORMATS = {"en": "${:.2f}", "de": "{:.2f} €", "fr": "{:.2f} €", "es": "{:.2f} €", "pt": "R$ {:.2f}",
                     "ja": "{:,.0f}円"}
_BODIES_PER_COMBO = 48  # distinct noisy variants per (category, language, product)
_PII_SNIPPETS_PER_LANGUAGE = 1500


@dataclass(frozen=True)
class _TextPool:
    """Pre-built text fragments; rows pick them by index, so no string is formatted per event."""

    bodies: pa.Array  # index = ((category * n_languages + language) * n_products + product) * per_combo + k
    body_chars: np.ndarray
    body_noisy: np.ndarray  # typos or odd casing: harder for the model
    body_asks_refund: np.ndarray
    cues: pa.Array
    cue_offsets: np.ndarray  # (priority, language) -> first cue
    cue_counts: np.ndarray
    cue_chars: np.ndarray
    pii: pa.Array  # index 0 is "", the fragment of rows without PII
    pii_offsets: np.ndarray  # language -> first snippet
    pii_counts: np.ndarray
    pii_chars: np.ndarray
    sign_offs: pa.Array  # index 0 is "", for rows without a sign-off
    sign_off_offsets: np.ndarray  # language -> first sign-off
    sign_off_counts: np.ndarray
    sign_off_chars: np.ndarray


def _luhn_complete(digits: str) -> str:
    """Append the Luhn check digit, so the card numbers look real to a masker that validates them."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return digits + str((10 - total % 10) % 10)


def _iban(rand: random.Random) -> str:
    """An IBAN with valid check digits (mod 97) and the usual groups of four."""
    country, bban_length = rand.choice(_IBAN_LAYOUTS)
    bban = _digits(rand, bban_length)
    numeric = "".join(str(int(ch, 36)) for ch in bban + country) + "00"
    raw = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _digits(rand: random.Random, count: int) -> str:
    return f"{rand.randrange(10**count):0{count}d}"


def _pii_values(rand: random.Random) -> dict[str, str]:
    first, last = rand.choice(_FIRST_NAMES), rand.choice(_LAST_NAMES)
    separator = rand.choice((".", "_", ""))
    email = f"{first}{separator}{last}{rand.choice(('', str(rand.randint(1, 99))))}@{rand.choice(_MAIL_DOMAINS)}"
    phone = rand.choice(_PHONE_FORMATS).format(
        a=rand.randint(200, 989), b=rand.randint(0, 9), p=_digits(rand, 2), q=_digits(rand, 2), r=_digits(rand, 2),
        s=_digits(rand, 2), y=_digits(rand, 3), z=_digits(rand, 3), w=_digits(rand, 4), x=_digits(rand, 4),
    )
    # 15 digits then the Luhn check digit (cutting after the check digit, as before, broke it for 2-digit prefixes)
    card_digits = _luhn_complete((rand.choice(("4", "51", "52", "37")) + _digits(rand, 14))[:15])
    card_separator = rand.choice((" ", "-", ""))
    card = card_separator.join(card_digits[i:i + 4] for i in range(0, 16, 4))
    return {"email": email, "phone": phone, "card": card, "iban": _iban(rand)}


def _add_typos(text: str, rand: random.Random) -> str:
    """Swap, drop or double one to three letters, the way hurried customers type."""
    chars = list(text)
    for _ in range(rand.randint(1, 3)):
        letters = [i for i, ch in enumerate(chars[:-1]) if ch.isalpha() and chars[i + 1].isalpha()]
        if not letters:
            break
        i = rand.choice(letters)
        operation = rand.randrange(3)
        if operation == 0:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif operation == 1:
            del chars[i]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def _slot_values(rand: random.Random, language: str, product: str) -> dict[str, str]:
    month, day = rand.randint(1, 12), rand.randint(1, 28)
    date_text = {"en": f"{_MONTHS[month - 1]} {day}", "de": f"{day:02d}.{month:02d}.",
                 "ja": f"{month}月{day}日"}.get(language, f"{day:02d}/{month:02d}")
    amount = rand.choice((9.99, 19.0, 29.0, 49.0, 99.0, 149.0, 249.0, 499.0)) * (1 + rand.randint(0, 2))
    if language == "ja":
        amount *= 150
    amount_text = _CURRENCY_FORMATS[language].format(amount)
    if language in ("de", "fr", "es", "pt"):
        amount_text = amount_text.replace(".", ",")
    code = rand.choice((f"E{rand.randint(100, 9999)}", f"HTTP {rand.choice((500, 502, 503, 429, 403))}",
                        "ERR_SYNC_TIMEOUT", "0x80070005"))
    return {"product": _PRODUCT_NAMES[product], "order": f"ORD-{rand.randint(1_000_000, 9_999_999)}",
            "amount": amount_text, "date": date_text, "code": code, "device": rand.choice(_DEVICES)}


def _ticket_body(rand: random.Random, language: str, category: str, product: str) -> tuple[str, bool, bool]:
    """One ticket body with slot filling and noise; returns (text, noisy, asks_refund)."""
    template, asks_refund = rand.choice(_TEMPLATES[language][category])
    text = template.format(**_slot_values(rand, language, product))
    noisy = False
    latin = language != "ja"
    if latin and rand.random() < 0.18:
        text = _add_typos(text, rand)
        noisy = True
    casing = rand.random()
    if latin and casing < 0.08:
        text, noisy = text.lower(), True
    elif latin and casing < 0.11:
        text, noisy = text.upper(), True
    if rand.random() < 0.3:
        text = rand.choice(_GREETINGS[language]) + text
    return text, noisy, asks_refund


@lru_cache(maxsize=4)
def _text_pool(seed: int) -> _TextPool:
    """Build the fragment pool once per seed (about 10k strings, tens of milliseconds)."""
    rand = random.Random(int(np.random.SeedSequence([seed, 0x7E47]).generate_state(1)[0]))
    bodies: list[str] = []
    noisy: list[bool] = []
    asks_refund: list[bool] = []
    for category in CATEGORIES:
        for language in LANGUAGES:
            for product in PRODUCTS:
                for _ in range(_BODIES_PER_COMBO):
                    text, is_noisy, refund = _ticket_body(rand, language, category, product)
                    bodies.append(text)
                    noisy.append(is_noisy)
                    asks_refund.append(refund)

    cues: list[str] = []
    cue_offsets = np.zeros((len(PRIORITIES), len(LANGUAGES)), dtype=np.int64)
    cue_counts = np.zeros_like(cue_offsets)
    for p, priority in enumerate(PRIORITIES):
        for lang, language in enumerate(LANGUAGES):
            options = _PRIORITY_CUES[language][priority]
            cue_offsets[p, lang], cue_counts[p, lang] = len(cues), len(options)
            cues.extend(options)

    pii: list[str] = [""]
    pii_offsets = np.zeros(len(LANGUAGES), dtype=np.int64)
    pii_counts = np.full(len(LANGUAGES), _PII_SNIPPETS_PER_LANGUAGE, dtype=np.int64)
    for lang, language in enumerate(LANGUAGES):
        pii_offsets[lang] = len(pii)
        pii.extend(rand.choice(_PII_LEADS[language]).format(**_pii_values(rand))
                   for _ in range(_PII_SNIPPETS_PER_LANGUAGE))

    sign_offs: list[str] = [""]
    sign_off_offsets = np.zeros(len(LANGUAGES), dtype=np.int64)
    sign_off_counts = np.zeros(len(LANGUAGES), dtype=np.int64)
    for lang, language in enumerate(LANGUAGES):
        sign_off_offsets[lang], sign_off_counts[lang] = len(sign_offs), len(_SIGN_OFFS[language])
        sign_offs.extend(_SIGN_OFFS[language])

    return _TextPool(
        bodies=pa.array(bodies, pa.string()),
        body_chars=np.array([len(t) for t in bodies], dtype=np.int64),
        body_noisy=np.array(noisy),
        body_asks_refund=np.array(asks_refund),
        cues=pa.array(cues, pa.string()),
        cue_offsets=cue_offsets,
        cue_counts=cue_counts,
        cue_chars=np.array([len(t) for t in cues], dtype=np.int64),
        pii=pa.array(pii, pa.string()),
        pii_offsets=pii_offsets,
        pii_counts=pii_counts,
        pii_chars=np.array([len(t) for t in pii], dtype=np.int64),
        sign_offs=pa.array(sign_offs, pa.string()),
        sign_off_offsets=sign_off_offsets,
        sign_off_counts=sign_off_counts,
        sign_off_chars=np.array([len(t) for t in sign_offs], dtype=np.int64),
    )


# --------------------------------------------------------------------------------------------------------------
# One day of events
# --------------------------------------------------------------------------------------------------------------


def _normalised(table: list[list[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(table, dtype=np.float64)
    return array / array.sum(axis=-1, keepdims=True)


# Pre-launch and post-launch mixes. Rows sum to 1 after normalisation.
_SEGMENT_MIX = _normalised([0.15, 0.35, 0.50])
_CHANNEL_BY_SEGMENT = _normalised([[0.50, 0.15, 0.25, 0.10], [0.40, 0.30, 0.10, 0.20], [0.30, 0.40, 0.05, 0.25]])
_LANGUAGE_MIX = {False: _normalised([0.70, 0.12, 0.09, 0.09, 0.0, 0.0]),
                 True: _normalised([0.56, 0.12, 0.09, 0.10, 0.08, 0.05])}
_PRODUCT_MIX = {False: _normalised([0.65, 0.35, 0.0]), True: _normalised([0.48, 0.30, 0.22])}
# Category mix by product (core, pro, nova); after the launch the core/pro mix also leans technical.
_CATEGORY_BY_PRODUCT = {
    False: _normalised([[0.22, 0.12, 0.28, 0.16, 0.14, 0.08], [0.20, 0.10, 0.34, 0.18, 0.10, 0.08],
                        [0.10, 0.05, 0.60, 0.15, 0.05, 0.05]]),
    True: _normalised([[0.20, 0.11, 0.33, 0.15, 0.13, 0.08], [0.18, 0.09, 0.38, 0.17, 0.10, 0.08],
                       [0.10, 0.05, 0.60, 0.15, 0.05, 0.05]]),
}
_PRIORITY_BY_SEGMENT = _normalised([[0.15, 0.35, 0.32, 0.18], [0.25, 0.40, 0.25, 0.10], [0.35, 0.42, 0.18, 0.05]])
# Which wrong category the model picks when it is wrong: the plausible neighbours, not uniform noise.
_CONFUSION = _normalised([
    # billing refund technical account shipping other
    [0.00, 0.45, 0.10, 0.25, 0.05, 0.15],  # billing
    [0.55, 0.00, 0.05, 0.10, 0.20, 0.10],  # refund
    [0.10, 0.03, 0.00, 0.55, 0.07, 0.25],  # technical
    [0.25, 0.05, 0.45, 0.00, 0.05, 0.20],  # account
    [0.10, 0.40, 0.10, 0.10, 0.00, 0.30],  # shipping
    [0.20, 0.10, 0.30, 0.25, 0.15, 0.00],  # other
])
# Agent behaviour: accepted, edited, overridden, rejected, ignored.
_ACTIONS_IF_RIGHT = np.array([0.91, 0.02, 0.00, 0.02, 0.05])
_ACTIONS_IF_PRIORITY_WRONG = np.array([0.22, 0.68, 0.02, 0.03, 0.05])
_ACTIONS_IF_FAILED = np.array([0.00, 0.00, 0.75, 0.25, 0.00])
_DECISION_MEDIAN_S = np.array([8.0, 45.0, 70.0, 30.0, 20.0])
_DECISION_SIGMA = np.array([0.6, 0.55, 0.55, 0.7, 0.9])


def _pick(rng: np.random.Generator, probabilities: np.ndarray, groups: np.ndarray | None = None,
          n: int | None = None) -> np.ndarray:
    """Vectorised categorical draw: one probability row per group (or per row), one code per row."""
    rows = probabilities[groups] if groups is not None else probabilities
    if rows.ndim == 1:
        return rng.choice(rows.shape[0], size=n, p=rows)
    cdf = np.cumsum(rows, axis=1)
    u = rng.random(rows.shape[0]) * cdf[:, -1]
    return np.minimum((u[:, None] >= cdf).sum(axis=1), rows.shape[1] - 1)


@lru_cache(maxsize=1)
def _traffic_curve() -> np.ndarray:
    """Per-minute share of daily traffic (UTC): a European morning peak, an afternoon peak, a quiet night."""
    hours = np.arange(1440) / 60.0
    weights = (0.12 + np.exp(-(((hours - 10.0) / 2.2) ** 2)) + 0.8 * np.exp(-(((hours - 15.5) / 2.5) ** 2))
               + 0.35 * np.exp(-(((hours - 20.5) / 1.8) ** 2)))
    return weights / weights.sum()


@lru_cache(maxsize=1)
def _clock_strings() -> tuple[pa.Array, pa.Array]:
    two_digits = pa.array([f"{i:02d}" for i in range(60)], pa.string())
    three_digits = pa.array([f"{i:03d}" for i in range(1000)], pa.string())
    return two_digits, three_digits


def _timestamps(rng: np.random.Generator, day: date, n: int) -> pa.Array:
    """Sorted ISO-8601 UTC timestamps within ``day`` following the traffic curve, as strings ending in Z."""
    minutes = rng.choice(1440, size=n, p=_traffic_curve())
    ms_of_day = np.sort(minutes * 60_000 + rng.integers(0, 60_000, size=n))
    two_digits, three_digits = _clock_strings()
    hh, mm = pa.array(ms_of_day // 3_600_000), pa.array(ms_of_day // 60_000 % 60)
    ss, ms = pa.array(ms_of_day // 1000 % 60), pa.array(ms_of_day % 1000)
    return pc.binary_join_element_wise(
        f"{day.isoformat()}T", two_digits.take(hh), ":", two_digits.take(mm), ":", two_digits.take(ss), ".",
        three_digits.take(ms), "Z", "",
    )


def _day_rng(seed: int, day_index: int) -> np.random.Generator:
    """The RNG of one day: the ``day_index``-th child of ``SeedSequence(seed)``, independent of the day count."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(day_index,)))


def _id_tag(seed: int) -> str:
    """A short seed-dependent tag, so event ids from differently seeded demo runs never collide."""
    return f"{int(np.random.SeedSequence([seed, 0x1D]).generate_state(1)[0]):08x}"[:6]


def generate_day_table(day: date, n: int, seed: int, day_index: int = 0, conditions: DayConditions = BASELINE,
                       with_truth: bool = False, reply_share: float = 0.0) -> pa.Table:
    """Simulate ``n`` events of one day as a pyarrow table (the fast path; :func:`generate_day_frame` wraps it).

    ``seed`` and ``day_index`` select the day's RNG; ``conditions`` says what the scenario does that day.
    ``with_truth`` adds the simulator's hidden true label (``true_label``) so tests can measure accuracy and
    calibration on every row, not only on the ~10 % with ground truth. ``reply_share``: also draft a reply for that
    share of the day's tickets (the free-text system of :mod:`eval_pipelines.demo.replies`), interleaved in time
    order; the triage events are the same whatever the share (the replies draw from their own RNG stream).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= reply_share <= 1.0:
        raise ValueError(f"reply_share must be in [0, 1], got {reply_share}")
    rng = _day_rng(seed, day_index)
    pool = _text_pool(seed)
    launched = conditions.launched

    # Who writes, about what, in which language.
    segment = _pick(rng, _SEGMENT_MIX, n=n)
    channel = _pick(rng, _CHANNEL_BY_SEGMENT, segment)
    language = _pick(rng, _LANGUAGE_MIX[launched], n=n)
    product = _pick(rng, _PRODUCT_MIX[launched], n=n)
    category = _pick(rng, _CATEGORY_BY_PRODUCT[launched], product)
    priority = _pick(rng, _PRIORITY_BY_SEGMENT, segment)
    tenure = rng.lognormal(np.log(420.0), 0.9, size=n)
    new_to_nova = (product == _NOVA) & (rng.random(n) < 0.5)
    tenure = np.where(new_to_nova, rng.lognormal(np.log(30.0), 0.9, size=n), tenure)
    tenure_days = np.minimum(tenure, 5000).astype(np.int64)

    # The ticket text: body (category, language, product) + priority cue + optional PII + optional sign-off,
    # each picked by index from the pool.
    combo = (category * len(LANGUAGES) + language) * len(PRODUCTS) + product
    body_index = combo * _BODIES_PER_COMBO + rng.integers(0, _BODIES_PER_COMBO, size=n)
    cue_group = (priority, language)
    cue_index = pool.cue_offsets[cue_group] + (rng.random(n) * pool.cue_counts[cue_group]).astype(np.int64)
    has_pii = rng.random(n) < 0.15
    pii_index = np.where(has_pii, pool.pii_offsets[language]
                         + (rng.random(n) * pool.pii_counts[language]).astype(np.int64), 0)
    has_sign_off = rng.random(n) < 0.2
    sign_off_index = np.where(has_sign_off, pool.sign_off_offsets[language]
                              + (rng.random(n) * pool.sign_off_counts[language]).astype(np.int64), 0)
    input_text = pc.binary_join_element_wise(
        pool.bodies.take(pa.array(body_index)), pool.cues.take(pa.array(cue_index)),
        pool.pii.take(pa.array(pii_index)), pool.sign_offs.take(pa.array(sign_off_index)), "")
    text_chars = (pool.body_chars[body_index] + pool.cue_chars[cue_index] + pool.pii_chars[pii_index]
                  + pool.sign_off_chars[sign_off_index])
    noisy = pool.body_noisy[body_index]
    asks_refund = pool.body_asks_refund[body_index] & (category == _REFUND)

    # Which model serves the request and how it fares.
    version = (rng.random(n) < conditions.v2_share).astype(np.int64)
    is_v2 = version == _V2
    non_english = language != 0
    new_language = _NEW_LANGUAGES[language]
    is_nova = product == _NOVA
    mean_confidence = (np.where(is_v2, 0.86, 0.80)
                       - np.where(noisy, np.where(is_v2, 0.07, 0.10), 0.0)
                       - np.where(non_english, np.where(is_v2, 0.04, 0.08), 0.0)
                       - np.where(new_language, 0.08, 0.0)
                       - np.where(is_nova, np.where(is_v2, 0.06, 0.12), 0.0)
                       - np.where(category == _OTHER, 0.10, 0.0))
    mean_confidence = np.clip(mean_confidence, 0.2, 0.95)
    concentration = 12.0
    confidence = rng.beta(mean_confidence * concentration, (1.0 - mean_confidence) * concentration)
    confidence = np.clip(np.round(confidence, 4), 0.0, 1.0)
    # Calibrated on what it was trained on; a little overconfident on the unseen product and languages.
    overconfidence = np.where(is_nova | new_language, 0.05, 0.0)
    category_right = rng.random(n) < np.clip(confidence - overconfidence, 0.0, 1.0)
    wrong_category = _pick(rng, _CONFUSION, category)
    predicted_category = np.where(category_right, category, wrong_category)
    priority_right_rate = np.where(category_right, np.where(is_v2, 0.85, 0.78) - np.where(noisy, 0.05, 0.0), 0.6)
    priority_right = rng.random(n) < priority_right_rate
    step = np.where(rng.random(n) < 0.5, -1, 1)
    step = np.where(priority == 0, 1, np.where(priority == len(PRIORITIES) - 1, -1, step))
    predicted_priority = np.where(priority_right, priority, priority + step)
    true_label = category * len(PRIORITIES) + priority
    predicted_label = predicted_category * len(PRIORITIES) + predicted_priority
    fully_right = category_right & priority_right

    # Reliability: errors fail fast, timeouts hit the client limit; the incident day is slow and flaky.
    error_rate = 0.015 if conditions.incident else 0.01
    timeout_rate = 0.08 if conditions.incident else 0.005
    status_draw = rng.random(n)
    status = np.where(status_draw < error_rate, _ERROR,
                      np.where(status_draw < error_rate + timeout_rate, _TIMEOUT, _OK))
    failed = status != _OK
    latency = (np.where(is_v2, 950.0, 800.0) * (text_chars / _TYPICAL_TEXT_CHARS) ** 0.3
               * rng.lognormal(0.0, 0.35, size=n) * (4.0 if conditions.incident else 1.0))
    latency = np.minimum(latency, TIMEOUT_MS - 1.0)
    latency = np.where(status == _TIMEOUT, TIMEOUT_MS, latency)
    latency = np.where(status == _ERROR, rng.lognormal(np.log(250.0), 0.5, size=n), latency)
    tokens_in = np.where(language == _JA, text_chars * 1.0, text_chars / 4.0)
    # Price per call: a short system prompt plus the ticket in, a label out; v2 is a bigger model.
    cost = (((150.0 + tokens_in) * 6.0e-6 + 20.0 * 4.0e-5) * np.where(is_v2, 1.25, 1.0)
            * rng.lognormal(0.0, 0.05, size=n))
    cost = np.where(status == _ERROR, 0.0, cost)

    # The agent: mostly accepts right answers, overrides wrong ones, sometimes trusts a confident mistake.
    accept_wrong = 0.04 + 0.25 * confidence**2
    if_category_wrong = np.stack([accept_wrong, np.full(n, 0.03), 0.84 - accept_wrong, np.full(n, 0.08),
                                  np.full(n, 0.05)], axis=1)
    action_probabilities = np.where(
        failed[:, None], _ACTIONS_IF_FAILED,
        np.where(fully_right[:, None], _ACTIONS_IF_RIGHT,
                 np.where(category_right[:, None], _ACTIONS_IF_PRIORITY_WRONG, if_category_wrong)))
    action = _pick(rng, action_probabilities)
    unreviewed = ~failed & (rng.random(n) < 0.03)  # auto-routed, no human in the loop
    action = np.where(unreviewed, _NO_ACTION, action)

    edited_priority = np.where(priority == 0, 1, priority - 1)  # an agent "fixing" a right answer
    human_label = np.where(fully_right & (action == _EDITED), category * len(PRIORITIES) + edited_priority,
                           true_label)
    final_label = np.where(action == _ACCEPTED, predicted_label, human_label)
    final_missing = (action == _IGNORED) | (action == _NO_ACTION)

    action_index = np.minimum(action, len(USER_ACTIONS) - 1)
    decision = (_DECISION_MEDIAN_S[action_index] * rng.lognormal(0.0, _DECISION_SIGMA[action_index])
                * np.where(failed, 1.3, np.exp(0.4 * (0.8 - confidence))))
    decision = np.minimum(decision, 3600.0)

    # Consequences: accepted mistakes drive complaints, escalations and compliance issues.
    accepted = action == _ACCEPTED
    wrong_category_accepted = accepted & ~category_right & ~failed
    wrong_priority_accepted = accepted & category_right & ~priority_right & ~failed
    compliance_rate = (0.002 + 0.05 * asks_refund) * np.where(wrong_category_accepted, 5.0, 1.0)
    complaint_rate = (0.012 + 0.16 * wrong_category_accepted + 0.04 * wrong_priority_accepted + 0.05 * failed
                      + 0.03 * (action == _IGNORED))
    escalation_rate = (0.015 + 0.04 * (priority == _URGENT) + 0.2 * wrong_category_accepted
                       + 0.02 * wrong_priority_accepted + 0.03 * failed + 0.02 * (segment == _ENTERPRISE))
    compliance_flag = rng.random(n) < compliance_rate
    complaint = rng.random(n) < complaint_rate
    escalation = rng.random(n) < escalation_rate
    audited = rng.random(n) < 0.08 + 0.4 * (complaint | escalation)

    labels = pa.array((*LABELS, FAILED_OUTPUT), pa.string())
    timestamps = _timestamps(rng, day, n)
    event_ids = pc.binary_join_element_wise(
        f"evt-{day:%Y%m%d}-{_id_tag(seed)}-", pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.string()), 7, "0"), "")

    def vocabulary(values: tuple[str, ...], codes: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
        return pa.array(values, pa.string()).take(pa.array(codes, mask=missing))

    columns: dict[str, pa.Array] = {
        "event_id": event_ids,
        "timestamp": timestamps,
        "system": pa.repeat(pa.scalar(SYSTEM_NAME, pa.string()), n),
        "model_version": vocabulary(MODEL_VERSIONS, version),
        "segment": vocabulary(SEGMENTS, segment),
        "input_text": input_text,
        "ai_output": labels.take(pa.array(np.where(failed, _FAILED_LABEL_CODE, predicted_label))),
        "confidence": pa.array(confidence, mask=failed),
        "latency_ms": pa.array(np.round(latency, 1)),
        "cost_usd": pa.array(np.round(cost, 6)),
        "status": vocabulary(STATUSES, status),
        "user_action": vocabulary(USER_ACTIONS, action_index, action == _NO_ACTION),
        "final_output": labels.take(pa.array(final_label, mask=final_missing)),
        "decision_seconds": pa.array(np.round(decision, 2), mask=action == _NO_ACTION),
        "ground_truth": labels.take(pa.array(true_label, mask=~audited)),
        "compliance_flag": pa.array(compliance_flag),
        "complaint": pa.array(complaint),
        "escalation": pa.array(escalation),
        "channel": vocabulary(CHANNELS, channel),
        "language": vocabulary(LANGUAGES, language),
        "product": vocabulary(PRODUCTS, product),
        "customer_tenure_days": pa.array(tenure_days),
    }
    if with_truth:
        columns[TRUTH_COLUMN] = labels.take(pa.array(true_label))
    replies = round(n * reply_share)
    if not replies:
        return pa.table(columns)
    from eval_pipelines.demo.replies import reply_columns

    reply_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(day_index, 0x5E)))
    tickets = np.sort(reply_rng.choice(n, size=replies, replace=False))
    both = pa.concat_tables([pa.table(columns), pa.table(reply_columns(tickets, columns, category, product,
                                                                     CATEGORIES, PRODUCTS, reply_rng))])
    # A reply shares its ticket's timestamp; a stable sort puts it right after the ticket's triage event.
    return both.take(pc.sort_indices(both, [("timestamp", "ascending")]))


def generate_day_frame(day: date, n: int, seed: int, day_index: int = 0, conditions: DayConditions = BASELINE,
                       with_truth: bool = False, reply_share: float = 0.0) -> pd.DataFrame:
    """One day of events as a pandas frame, for tests and benchmarks that do not want files.

    Same rows as :func:`generate_logs` writes for that day when called with the same ``seed``, ``day_index`` and
    ``conditions`` (see :meth:`ScenarioPlan.conditions_on`).
    """
    return generate_day_table(day, n, seed, day_index, conditions, with_truth, reply_share).to_pandas()


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------


def _json_string_values(column: pa.Array, prefix: str) -> pa.Array:
    """``prefix`` + quoted, escaped JSON string; the rare value needing escapes goes through ``json.dumps``."""
    needs_escape = pc.fill_null(pc.match_substring_regex(column, r'["\\\x00-\x1f]'), False)
    if pc.any(needs_escape).as_py():
        positions = np.flatnonzero(needs_escape.to_numpy(zero_copy_only=False))
        escaped = [json.dumps(value, ensure_ascii=False)[1:-1] for value in column.take(positions).to_pylist()]
        column = pc.replace_with_mask(column, needs_escape, pa.array(escaped, column.type))
    return pc.binary_join_element_wise(prefix + '"', column, '"', "")


def _json_members(column: pa.Array, prefix: str) -> pa.Array:
    """One column as ``prefix`` + JSON value per row: nulls become ``null``, floats always carry a decimal point.

    Low-cardinality strings (labels, vocabularies) are encoded once per distinct value and then gathered, which
    is several times cheaper than escaping every row.
    """
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        encoded = pc.dictionary_encode(column)
        if len(encoded.dictionary) * 8 < len(column):
            return pc.fill_null(_json_string_values(encoded.dictionary, prefix).take(encoded.indices),
                                prefix + "null")
        members = _json_string_values(column, prefix)
    elif pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        members = pc.binary_join_element_wise(prefix, pc.cast(column, pa.string()), "")
    elif pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False)
        finite_or_null = np.isfinite(values) | np.asarray(column.is_null())
        if not finite_or_null.all():
            raise ValueError("NaN or infinite values cannot be written as JSON; use nulls for missing values")
        # pyarrow prints 30000.0 as "30000"; keep it a float for readers that type columns by their first value.
        text = pc.cast(column, pa.string())
        integral = pc.match_substring_regex(text, r"^-?[0-9]+$")
        members = pc.binary_join_element_wise(prefix, text, pc.if_else(integral, ".0", ""), "")
    else:
        raise TypeError(f"no JSON encoding for column type {kind}")
    return pc.fill_null(members, prefix + "null")


def _write_jsonl(table: pa.Table, handle: Any) -> None:
    """Write JSON lines assembled column-wise with pyarrow: several times faster than pandas ``to_json``."""
    prefixes = [("{" if position == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
                for position, name in enumerate(table.column_names)]
    for start in range(0, table.num_rows, _EVENT_BATCH_ROWS):
        batch = table.slice(start, _EVENT_BATCH_ROWS)
        members = [_json_members(column.combine_chunks(), prefix)
                   for prefix, column in zip(prefixes, batch.columns, strict=True)]
        lines = pc.binary_join_element_wise(*members, "}\n", "")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        handle.write(memoryview(lines.buffers()[2])[first:last])


def _write_part(table: pa.Table, path: Path, fmt: str) -> None:
    """Write one part file atomically (temp name, then rename), so a watcher never reads half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    if fmt == "jsonl":
        with open(temporary, "wb") as handle:
            _write_jsonl(table, handle)
    elif fmt == "csv":
        pa_csv.write_csv(table, temporary)
    else:
        pq.write_table(table, temporary)
    os.replace(temporary, path)


def _remove_stale_parts(day_dir: Path) -> None:
    """Drop part files of an earlier run, so a rerun with fewer files per day leaves no extra rows behind."""
    for stale in day_dir.glob("part-[0-9][0-9][0-9]*"):
        if stale.suffix in {f".{ext}" for ext in LOG_FORMATS} and stale.stem[5:].isdigit():
            stale.unlink()


# --------------------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayCounts:
    """What one day's files hold, so ingestion can be reconciled row for row."""

    day: date
    events: int
    user_action: dict[str, int]  # null counted as "none"
    status: dict[str, int]
    model_version: dict[str, int]
    files: dict[str, int]  # path relative to out_dir (forward slashes) -> rows
    scenario_events: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "user_action": self.user_action, "status": self.status,
                "model_version": self.model_version, "files": self.files,
                "scenario_events": list(self.scenario_events)}


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate_logs` wrote; the manifest file is this, serialised."""

    out_dir: Path
    manifest_path: Path
    seed: int
    days: int
    events_per_day: int
    fmt: str
    start_date: date
    files_per_day: int
    scenario: ScenarioPlan | None
    per_day: dict[str, DayCounts] = field(default_factory=dict)  # ISO date -> counts
    reply_share: float = 0.0

    @property
    def total_events(self) -> int:
        return sum(counts.events for counts in self.per_day.values())

    @property
    def files(self) -> dict[str, int]:
        """Every written file (relative path) and its rows."""
        return {path: rows for counts in self.per_day.values() for path, rows in counts.files.items()}

    def manifest(self) -> dict[str, Any]:
        return {
            "generator": __name__,
            "manifest_version": MANIFEST_VERSION,
            "seed": self.seed,
            "params": {"days": self.days, "events_per_day": self.events_per_day, "fmt": self.fmt,
                       "start_date": self.start_date.isoformat(), "files_per_day": self.files_per_day,
                       "system": SYSTEM_NAME,
                       # Only when replies were written, so a triage-only manifest is what it always was.
                       **({"reply_share": self.reply_share, "reply_system": "reply_drafts"} if self.reply_share
                          else {})},
            "scenario": None if self.scenario is None else self.scenario.as_dict(),
            "total_events": self.total_events,
            "days": {day: counts.as_dict() for day, counts in self.per_day.items()},
        }


def _counts(vocabulary: tuple[str, ...], column: pa.ChunkedArray, null_name: str | None = None) -> dict[str, int]:
    """Counts for every vocabulary value (zeros included: "expected none" is worth stating)."""
    counts = dict.fromkeys(vocabulary, 0)
    if null_name is not None:
        counts[null_name] = column.null_count
    for item in pc.value_counts(column.combine_chunks()).to_pylist():
        if item["values"] is not None:
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def generate_logs(out_dir: Path, days: int, events_per_day: int, seed: int, fmt: LogFormat = "jsonl",
                  start_date: date = date(2026, 11, 1), files_per_day: int = 2,
                  truth_dir: Path | None = None, reply_share: float = 0.0) -> GenerationSummary:
    """Write ``days`` daily folders of demo events under ``out_dir`` plus ``_generator_manifest.json``.

    Layout: ``<out_dir>/<YYYY-MM-DD>/part-000.<fmt>`` ... (each day's events, in time order, split into
    ``files_per_day`` contiguous parts). Earlier ``part-NNN`` files in a written day folder are replaced. The same
    arguments always produce byte-identical files.

    ``truth_dir``: also write the simulator's hidden truth, ``<truth_dir>/<YYYY-MM-DD>.parquet`` with
    ``event_id``, ``system`` and ``true_label`` for every event, for the demo reviewers
    (``eval-pipelines demo-review``). It must lie outside ``out_dir``: the truth must never be ingested as logs.
    The logs are the same with or without it.

    ``reply_share``: also write ``reply_drafts`` events (free-text draft replies) for that share of each day's
    tickets (:mod:`eval_pipelines.demo.replies`); a day then holds ``events_per_day`` triage events plus the replies.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if events_per_day < 1:
        raise ValueError(f"events_per_day must be >= 1, got {events_per_day}")
    if files_per_day < 1:
        raise ValueError(f"files_per_day must be >= 1, got {files_per_day}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"fmt must be one of {LOG_FORMATS}, got {fmt!r}")

    out_dir = Path(out_dir)
    if truth_dir is not None:
        truth_dir = Path(truth_dir)
        if truth_dir.resolve().is_relative_to(out_dir.resolve()):
            raise ValueError(f"truth_dir {truth_dir} is inside the landing directory {out_dir}; put it elsewhere "
                             "(e.g. data/demo_truth), the truth must not be ingested")
        truth_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    scenario = plan_scenario(days, start_date)
    per_day: dict[str, DayCounts] = {}
    for day_index in range(days):
        day = start_date + timedelta(days=day_index)
        conditions = scenario.conditions_on(day) if scenario is not None else BASELINE
        table = generate_day_table(day, events_per_day, seed, day_index, conditions, with_truth=truth_dir is not None,
                                   reply_share=reply_share)
        if truth_dir is not None:
            # The truth column is appended after every draw, so the logs are identical without it.
            truth = table.select(["event_id", "system", TRUTH_COLUMN])
            temporary = truth_dir / f".{day.isoformat()}.parquet.tmp"
            pq.write_table(truth, temporary)
            os.replace(temporary, truth_dir / f"{day.isoformat()}.parquet")
            table = table.drop_columns([TRUTH_COLUMN])
        day_dir = out_dir / day.isoformat()
        day_dir.mkdir(exist_ok=True)
        _remove_stale_parts(day_dir)
        files: dict[str, int] = {}
        bounds = np.linspace(0, table.num_rows, files_per_day + 1).round().astype(np.int64)
        for part, (begin, end) in enumerate(itertools.pairwise(bounds)):
            name = f"part-{part:03d}.{fmt}"
            _write_part(table.slice(int(begin), int(end - begin)), day_dir / name, fmt)
            files[f"{day.isoformat()}/{name}"] = int(end - begin)
        per_day[day.isoformat()] = DayCounts(
            day=day,
            events=table.num_rows,
            user_action=_counts(USER_ACTIONS, table["user_action"], NO_USER_ACTION),
            status=_counts(STATUSES, table["status"]),
            model_version=_counts(MODEL_VERSIONS, table["model_version"]),
            files=files,
            scenario_events=scenario.events_on(day) if scenario is not None else (),
        )

    summary = GenerationSummary(
        out_dir=out_dir, manifest_path=out_dir / MANIFEST_NAME, seed=seed, days=days,
        events_per_day=events_per_day, fmt=fmt, start_date=start_date, files_per_day=files_per_day,
        scenario=scenario, per_day=per_day, reply_share=reply_share,
    )
    temporary = out_dir / f".{MANIFEST_NAME}.tmp"
    temporary.write_text(json.dumps(summary.manifest(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, summary.manifest_path)
    return summary
