"""Mask personal data in free text, deterministically, before it reaches the lake, the warehouse or the Dagster UI.

Four kinds are detected, on the NFKC-normalised text (full-width digits ``０３０``, the full-width ``＠`` and
compatibility spaces read as their ASCII forms), and each is replaced in the *original* text by a token
``<KIND_xxxxxxxx>``:

1. ``EMAIL`` — ``EMAIL_PATTERN``: a local part of ASCII atom characters plus Latin, Greek and Cyrillic letters, and a
   domain whose labels may be any Unicode letters (``müller@bücher.de``, ``иван@пример.рф``, ``a@例え.テスト``).
2. ``IBAN``  — ``IBAN_PATTERN``: 2 letters, 2 check digits and the account part (ISO 13616), compact or printed in
   groups of four.
3. ``CARD``  — a run of 13-19 digits, contiguous or in groups separated by one space, dot, dash or slash
   (``4111.1111.1111.1111``, ``3782 822463 10005``) that passes the Luhn check; up to two short digit groups
   printed right after it (expiry, CVV) go with it.
4. ``PHONE`` — every number Google's libphonenumber (the ``phonenumbers`` package) finds with leniency ``VALID``
   when the text is read as written in any of the configured regions (``privacy.phone_regions``, default DE, FR,
   US, GB): ``(030) 1234567``, ``06 12 34 56 78``, ``+44 20 7946 0958``, ``0049 30 1234567``. A number written with
   a leading ``+`` is masked when it is merely *possible* (right length for its country code), so an
   international number with an unassigned area code is still masked.

Where two detections overlap, the earlier kind in that list wins (an IBAN's account part would otherwise read as a
card or a phone number).

Tokens are deterministic: ``xxxxxxxx`` is an HMAC-SHA256 of the kind and the canonical value (lower-cased e-mail,
compact IBAN, card digits, E.164 phone number), keyed with a secret salt (``privacy.salt_env`` names the
environment variable holding it), written in eight letters. The same value gets the same token in every field,
row and day, so equality survives masking: a masked ``ai_output`` equals the masked ``final_output`` exactly when
the raw values were equal (up to a 26^-8 collision chance per pair), and ``+49 30 1234567`` and ``030 1234567``
read in region DE get the same token. Without the salt, a token could be confirmed by hashing guessed numbers;
with the built-in default salt (no environment variable set) that is possible, so production sets one.

Masking is idempotent: tokens hold no digit and no ``@``, so no detector can match inside one; masking masked text
changes nothing and counts zero masks.

Speed: only texts holding an ``@`` (or its full-width forms) or at least ``MIN_DIGITS`` digits can hold PII (an
e-mail needs the ``@``; the shortest valid phone number in the default regions has 7 digits, a card 13, an IBAN
more than 7), and pyarrow finds those texts in native code. Each distinct candidate text is masked once in Python.
libphonenumber's matcher dominates what is left; it is asked for a digit run's next region only while no
phone found so far settles the run (``Masker._run_settled``).

Deliberately *not* masked: numbers libphonenumber does not accept as valid in the configured regions (for example
US numbers with the fictional 555 area code written without ``+1``, or a bare 6-digit run), digit runs that fail
Luhn (a mistyped card number), names and postal addresses. Order numbers, dates, prices, versions, short ids and
IP addresses stay readable.
"""

from __future__ import annotations

import hmac
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

KINDS: tuple[str, ...] = ("EMAIL", "IBAN", "CARD", "PHONE")
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("DE", "FR", "US", "GB")
DEFAULT_SALT_ENV = "EVAL_PIPELINES_PII_SALT"
# Used when the salt variable is unset: tokens stay consistent, but anyone can recompute them (documented).
DEFAULT_SALT = "eval-pipelines-default-pii-salt"
MIN_DIGITS = 7
TOKEN_LETTERS = 8

_LOCAL = "[A-Za-z0-9.!#$%&*+?^_~\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff-]+"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
# ASCII TLD first, so "anna@gmail.comです" ends at "com"; then punycode and Unicode TLDs (".рф", ".テスト").
_TLD = r"(?:[A-Za-z]{2,}|xn--[A-Za-z0-9-]+|[^\W\d_A-Za-z]{2,})"
EMAIL_PATTERN: re.Pattern[str] = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+{_TLD}")

# Printed IBANs are upper case (ISO 13616), optionally in groups of four separated by a space or dash; the account
# part (BBAN) is 11-30 characters (Norway 11 ... Saint Lucia 30). A compact IBAN may also be written in lower case;
# lower-case *grouped* text is not accepted because four-letter words would then read as groups ("ab12 from user").
IBAN_PATTERN: re.Pattern[str] = re.compile(
    r"(?<![A-Za-z0-9])"
    r"(?:[A-Z]{2}[0-9]{2}(?:(?:[ -]?[A-Z0-9]{4}){3,7}(?:[ -]?[A-Z0-9]{1,3})?|(?:[ -]?[A-Z0-9]{4}){2}[ -]?[A-Z0-9]{3})"
    r"|[A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{11,30})"
)

# Digit groups joined by single separators: the candidates the Luhn check looks into.
CARD_CANDIDATE_PATTERN: re.Pattern[str] = re.compile(r"(?<![0-9])[0-9]+(?:[ ./-][0-9]+)*(?![0-9])")
_CARD_MIN_DIGITS, _CARD_MAX_DIGITS = 13, 19
_TRAILING_GROUP_DIGITS = 4  # expiry (MMYY) and CVV groups printed after the number
_TRAILING_GROUPS = 2

# Runs of characters a printed phone number is made of, starting at '+', '(' or a digit and ending at a digit.
PHONE_RUN_PATTERN: re.Pattern[str] = re.compile(r"[+(]?[0-9][0-9 ()./-]*[0-9]")
_PHONE_CONTEXT = 4
_IDENTIFIER_PREFIX = re.compile(r"[A-Za-z][-_#]?$")
_AFTER_FIRST_GROUP = re.compile(r"[+(]?[0-9]+[ ()./-]+(?=[+(]?[0-9])")

_TOKEN = re.compile(rf"<(?:EMAIL|IBAN|CARD|PHONE)_[a-z]{{{TOKEN_LETTERS}}}>")
# pyarrow (RE2) prefilters: a text without these cannot hold any of the four kinds.
_AT_SIGNS = "[@\uff20\ufe6b]"
_DIGIT = r"\p{Nd}"
# Not preceded by a letter, digit or one of [-_#] that itself follows a letter (see _IDENTIFIER_PREFIX).
_PHONE_RUN_RE2 = rf"(?:^|[^A-Za-z0-9_#-]|(?:^|[^A-Za-z])[-_#])[+(]?[0-9](?:[ ()./-]*[0-9]){{{MIN_DIGITS - 1},}}"
_CARD_RUN_RE2 = rf"[0-9](?:[ ./-]?[0-9]){{{_CARD_MIN_DIGITS - 1},}}"
_IBAN_START_RE2 = r"[A-Za-z]{2}[0-9]{2}[ -]?[A-Za-z0-9]{3}"
_ASCII_SHAPES_RE2 = f"{_PHONE_RUN_RE2}|{_CARD_RUN_RE2}|{_IBAN_START_RE2}"


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class Detection:
    start: int  # in the original text
    end: int
    kind: str
    canonical: str  # what the token hashes: equal values, equal tokens


def _normalised(text: str) -> tuple[str, list[int] | None]:
    """NFKC per character, and for each normalised character the index of the original one (None: unchanged).

    Per character rather than for the whole string so that a span found in the normalised text maps back to the
    original exactly; the text outside detections is left as it was sent.
    """
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        # Already NFKC as a whole: then no character changes on its own either (a character whose NFKC differs
        # from it has quick-check "No" and cannot occur in normalised text), so the loop below would return text.
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        normal = char if char.isascii() else unicodedata.normalize("NFKC", char)
        parts.append(normal)
        origin.extend([index] * len(normal))
    normalised = "".join(parts)
    return normalised, (None if normalised == text else origin)


@dataclass(frozen=True)
class Masker:
    """Detects and tokenises PII; one instance per run (it holds the salt and the phone regions)."""

    salt: bytes = DEFAULT_SALT.encode()
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    _cache: dict[str, tuple[str, int]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, salt_env: str = DEFAULT_SALT_ENV,
                 phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Masker:
        """The salt from ``$salt_env`` (the built-in default when unset or empty)."""
        return cls((os.environ.get(salt_env) or DEFAULT_SALT).encode(), tuple(phone_regions))

    @property
    def uses_default_salt(self) -> bool:
        return self.salt == DEFAULT_SALT.encode()

    def token(self, kind: str, canonical: str) -> str:
        digest = hmac.digest(self.salt, f"{kind}:{canonical}".encode(), "sha256")  # one-shot, in C
        number = int.from_bytes(digest[:8], "big")
        letters = []
        for _ in range(TOKEN_LETTERS):
            number, rest = divmod(number, 26)
            letters.append(chr(97 + rest))
        return f"<{kind}_{''.join(letters)}>"

    @cached_property
    def _phonenumbers(self) -> Any:
        import phonenumbers  # 20 ms, paid by the runs that mask, not by the code location

        return phonenumbers

    def detect(self, text: str) -> list[Detection]:
        """Non-overlapping detections in ``text``, in text order (see the module docstring for each kind)."""
        normal, origin = _normalised(text)
        found: list[tuple[int, int, str, str]] = []  # on the normalised text
        for match in EMAIL_PATTERN.finditer(normal):
            found.append((match.start(), match.end(), "EMAIL", match.group().lower()))
        for match in IBAN_PATTERN.finditer(normal):
            found.append((match.start(), match.end(), "IBAN", re.sub("[ -]", "", match.group()).upper()))
        found += self._cards(normal)
        found += self._phones(normal, found)
        chosen: list[tuple[int, int, str, str]] = []
        for candidate in found:  # in KINDS order: an earlier kind wins an overlap
            if all(candidate[1] <= start or candidate[0] >= end for start, end, _, _ in chosen):
                chosen.append(candidate)
        chosen.sort()
        if origin is None:
            return [Detection(*item) for item in chosen]
        return [Detection(origin[start], origin[end - 1] + 1, kind, canonical)
                for start, end, kind, canonical in chosen]

    @staticmethod
    def _cards(text: str) -> list[tuple[int, int, str, str]]:
        found = []
        for match in CARD_CANDIDATE_PATTERN.finditer(text):
            if match.end() - match.start() < _CARD_MIN_DIGITS:
                continue  # fewer characters, so fewer digits, than the shortest card: most candidates end here
            groups = [(m.start() + match.start(), m.end() + match.start(), m.group())
                      for m in re.finditer("[0-9]+", match.group())]
            first = 0
            while first < len(groups):
                digits, best = "", None
                for last in range(first, len(groups)):
                    digits += groups[last][2]
                    if len(digits) > _CARD_MAX_DIGITS:
                        break
                    if len(digits) >= _CARD_MIN_DIGITS and luhn_valid(digits):
                        best = (last, digits)
                if best is None:
                    first += 1
                    continue
                last, digits = best
                tail = last
                while (tail + 1 < len(groups) and tail - last < _TRAILING_GROUPS
                       and len(groups[tail + 1][2]) <= _TRAILING_GROUP_DIGITS):
                    tail += 1
                found.append((groups[first][0], groups[tail][1], "CARD", digits))
                first = tail + 1
        return found

    def _phones(self, text: str, taken: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
        """libphonenumber on each run of phone-like characters with enough digits, not on the whole text.

        The matcher costs about a quarter of a millisecond per region and text; most candidate texts hold one short
        digit run (an order number), so it is run on the runs only, with a few characters of context either side
        (the matcher looks at the character before a number, e.g. to refuse one glued to a word).
        """
        phonenumbers = self._phonenumbers
        e164 = phonenumbers.PhoneNumberFormat.E164
        found: list[tuple[int, int, str, str]] = []
        for run in PHONE_RUN_PATTERN.finditer(text):
            start, end = run.span()
            offset = max(0, start - _PHONE_CONTEXT)
            glued_to_detection = any(s < start and e >= start - 1 for s, e, _, _ in taken)  # a@b.de030 1234567
            if not glued_to_detection and _IDENTIFIER_PREFIX.search(text, max(0, start - 2), start):
                # Glued to a word (ORD-1234567, TK_48213): an identifier. libphonenumber refuses a number glued
                # to a letter itself; one hyphen between does not stop it, and 7-digit order numbers are valid
                # local numbers in some regions. The rest of the run ("ORD-1234567 030 1234567") is still read.
                rest = _AFTER_FIRST_GROUP.match(text, start, end)
                if rest is None:
                    continue
                start = offset = rest.end()  # no context: it would hand the identifier's digits back
            if sum(map(str.isdigit, text[start:end])) < MIN_DIGITS:
                continue
            if any(start >= s and end <= e for s, e, _, _ in taken):
                continue  # wholly inside an e-mail, IBAN or card already found
            offset, window_end = self._context(offset, start, end, taken)
            window = text[offset:window_end]
            if text[start] == "+":
                # An explicit country code: the region is irrelevant, and a possible length is enough.
                passes = [(self.phone_regions[0] if self.phone_regions else "US", phonenumbers.Leniency.POSSIBLE)]
            else:
                passes = [(region, phonenumbers.Leniency.VALID) for region in self.phone_regions]
            run_first = len(found)
            for region, leniency in passes:
                for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=leniency):
                    a, b = match.start + offset, match.end + offset
                    if a < end and b > start:
                        found.append((a, b, "PHONE", phonenumbers.format_number(match.number, e164)))
                if self._run_settled(found, run_first, start, end, taken):
                    break  # the remaining regions' matches could only be dropped as overlaps
        return found

    @staticmethod
    def _context(offset: int, start: int, end: int, taken: list[tuple[int, int, str, str]]) -> tuple[int, int]:
        """The window the matcher reads for the run ``[start, end)``: up to ``_PHONE_CONTEXT`` characters either side
        (from ``offset``), stopping at an e-mail, IBAN or card found next to the run.

        Their characters are spoken for, and reading them made the matcher lose the number: in ``4111…1111x 030
        1234567`` it saw the card's digits and found nothing; in ``0612345678 x 4111…`` it read ``x 4`` as an
        extension, and the match, overlapping the card, was dropped. Either way the phone stayed in clear.
        """
        low, high = offset, end + _PHONE_CONTEXT
        for s, e, _, _ in taken:
            if low < e <= start:
                low = e
            if end <= s < high:
                high = s
        return low, high

    @staticmethod
    def _run_settled(phones: list[tuple[int, int, str, str]], run_first: int, start: int, end: int,
                     taken: list[tuple[int, int, str, str]]) -> bool:
        """Whether a phone found for the run ``[start, end)`` (``phones[run_first:]``) covers all of it and overlaps
        nothing found before it.

        ``detect`` keeps the first of overlapping detections in the order they were found, so such a match is sure
        to be kept, and every match a later region could add for this run overlaps the run, hence the match, and
        would be dropped: the later regions' matchers (the bulk of masking time) need not run.
        """
        for index in range(run_first, len(phones)):
            a, b = phones[index][:2]
            if a <= start and b >= end and not any(a < e and b > s for s, e, _, _ in (*taken, *phones[:index])):
                return True
        return False

    def mask_text(self, text: str) -> tuple[str, int]:
        """``text`` with every detection replaced by its token, and the number of detections."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        detections = self.detect(text)
        if not detections:
            result = (text, 0)
        else:
            pieces, position = [], 0
            for item in detections:
                pieces += [text[position:item.start], self.token(item.kind, item.canonical)]
                position = item.end
            pieces.append(text[position:])
            result = ("".join(pieces), len(detections))
        if len(self._cache) < 200_000:  # demo and real logs repeat texts; the bound keeps memory flat
            self._cache[text] = result
        return result

    def mask_series(self, text: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Mask a column. Returns ``(masked, n_masked)``, aligned with ``text`` (same index).

        - ``masked``: pandas ``str`` dtype (pyarrow storage), same name; nulls stay null; non-strings go through
          ``str``.
        - ``n_masked``: int64, named ``pii_masks``, the detections replaced in each row (0 for nulls).
        """
        masked = text.astype(_TEXT_DTYPE)
        counts = np.zeros(len(masked), dtype=np.int64)
        if len(masked):
            candidates = np.flatnonzero(_candidates(pa.array(masked.array)))
            if len(candidates):
                values = masked.to_numpy(dtype=object, na_value=None)
                replaced = values.copy()
                for position in candidates:
                    replaced[position], counts[position] = self.mask_text(values[position])
                masked = pd.Series(replaced, index=text.index, dtype=_TEXT_DTYPE)
        return (pd.Series(masked.array, index=text.index, name=text.name),
                pd.Series(counts, index=text.index, name="pii_masks"))

    def mask_optional(self, value: str | None) -> str | None:
        return None if value is None else self.mask_text(value)[0]


# pandas' default ``str`` dtype with pyarrow storage.
_TEXT_DTYPE = pd.StringDtype(storage="pyarrow", na_value=np.nan)


def _candidates(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rows that may hold PII, found in native code (RE2); a superset of the rows ``Masker.detect`` finds in.

    An ASCII text is a candidate when it has an at-sign, or a shape one of the detectors starts from: a phone-like
    run of 7+ digits not glued to a word (``_PHONE_RUN_RE2`` mirrors ``PHONE_RUN_PATTERN`` and the identifier
    rule), a card-like run of 13+ digits, or an IBAN start. A non-ASCII text is one when it has an at-sign (any
    width) or 7+ digits of any script, since NFKC may turn its characters into any of those shapes.
    """
    has_at = pc.match_substring_regex(values, _AT_SIGNS)
    ascii_shapes = pc.match_substring_regex(values, _ASCII_SHAPES_RE2)
    many_digits = pc.greater_equal(pc.count_substring_regex(values, _DIGIT), MIN_DIGITS)
    is_ascii = pc.string_is_ascii(values)
    wanted = pc.or_(has_at, pc.if_else(is_ascii, ascii_shapes, many_digits))
    return pc.fill_null(wanted, False).to_numpy(zero_copy_only=False).astype(bool)


def mask_pii(text: pd.Series, masker: Masker | None = None) -> tuple[pd.Series, pd.Series]:
    """``Masker.mask_series`` with ``masker`` (default: the built-in salt and regions)."""
    return (masker or _default_masker()).mask_series(text)


_DEFAULT: list[Masker] = []


def _default_masker() -> Masker:
    if not _DEFAULT:
        _DEFAULT.append(Masker())
    return _DEFAULT[0]


def find_tokens(text: str) -> list[str]:
    """The tokens in a masked text (for tests and audits)."""
    return _TOKEN.findall(text)


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, marker included, on a character boundary."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    marker = f"…[truncated: {len(encoded):,} bytes]"
    keep = max(0, max_bytes - len(marker.encode("utf-8")))
    return encoded[:keep].decode("utf-8", errors="ignore") + marker


def mask_frame(frame: pd.DataFrame, columns: Iterable[str], masker: Masker) -> tuple[pd.DataFrame, int]:
    """``frame`` with the listed columns (those present) masked, and the total masks applied."""
    out = frame.copy()
    total = 0
    for column in columns:
        if column in out.columns:
            out[column], counts = masker.mask_series(out[column])
            total += int(counts.sum())
    return out, total
