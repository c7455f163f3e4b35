"""Credentials inside URL-like settings: find them (to refuse them in the config file) and mask them (in messages).

A URL carries a secret in two places: the password of its user info (``s3://key:secret@bucket``,
``postgresql://user:pw@host/db``) and query parameters named like one (``?password=``, ``?token=``, an S3 or
Azure signature ``?X-Amz-Signature=`` / ``?sig=``). Plain functions, no Dagster: config.py and the warehouse use
them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"

# A query parameter is secret when one of its name's words is one of these (``X-Amz-Signature``: "signature";
# ``AWSAccessKeyId`` does not hold a secret by itself, but "key" words are refused anyway: cheap to move).
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "sig",
                           "signature", "credential", "credentials", "authorization", "sas"})
# Named like secrets but hold file paths or modes (libpq's client certificate options).
_NOT_SECRET = frozenset({"sslkey", "sslcert", "sslrootcert", "sslcrl", "sslmode"})
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)  # camelCase -> camel Case
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


# Unambiguous anywhere in a name (``sslpassword``, ``accesstoken``, ``client_secret``).
_SECRET_PARTS = ("password", "passwd", "secret", "token", "signature", "credential")


def is_secret_param(name: str) -> bool:
    lowered = name.lower()
    if lowered in _NOT_SECRET:
        return False
    return (lowered in _SECRET_WORDS or any(part in lowered for part in _SECRET_PARTS)
            or any(word in _SECRET_WORDS for word in _words(name)))


def looks_like_url(value: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", value.strip()))


def _literal(value: str) -> bool:
    """True when a value is written out; ``${NAME}`` placeholders are read from the environment at run time."""
    return bool(value) and not _PLACEHOLDER.fullmatch(value)


def url_credentials(value: str) -> list[str]:
    """What in ``value`` is a credential: "the password in the URL's user info", "query parameter 'token'"."""
    if not looks_like_url(value):
        return []
    try:
        parts = urlsplit(value.strip())
        password = parts.password
    except ValueError:
        return []
    found = []
    if password and _literal(password):
        found.append("a password in the URL's user info (user:password@)")
    for name, param in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_param(name) and _literal(param):
            found.append(f"query parameter {name!r}")
    return found


def mask_url(value: str) -> str:
    """``value`` with the user-info password and every secret-named query value replaced by ``***``."""
    if not looks_like_url(value):
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = "&".join(
        f"{quote(name, safe='')}={MASK if is_secret_param(name) else quote(param, safe='/:,')}"
        for name, param in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def find_credentials(raw: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, str]]:
    """Every (dotted key path, masked value, what) of a credential in a URL anywhere in a parsed config."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            yield from find_credentials(value, (*path, str(key)))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            yield from find_credentials(value, (*path, str(index)))
    elif isinstance(raw, str):
        for what in url_credentials(raw):
            yield ".".join(path), mask_url(raw), what
