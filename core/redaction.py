"""Could this text leak a secret? One redaction for every text that leaves the process or is stored.

The secrets of the running process (the Telegram bot token, the Upbit keys, the database password)
are registered once at start-up. Every path by which a text reaches a person or a disk passes it
through `redact`: log records and their tracebacks, the CLI's error line and any uncaught traceback
on stderr, alerts and audit details written to the database, replies in the console and on
Telegram. Libraries put secrets in their own exception texts (python-telegram-bot names the token it
was refused), so redaction is applied where texts leave, not where they are made.
"""
from __future__ import annotations

import threading
from typing import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter strings would mask ordinary words

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register(secrets: Iterable[str | None]) -> None:
    """Add secrets to mask from now on (None and short strings are ignored)."""
    global _secrets
    with _lock:
        known = set(_secrets) | {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        _secrets = tuple(sorted(known, key=len, reverse=True))  # the longest first: no partial masks


def forget_all() -> None:
    """Tests only: start again with no secrets."""
    global _secrets
    with _lock:
        _secrets = ()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    if not isinstance(text, str):
        text = str(text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def hint(secret: str | None) -> str:
    """What may be shown of a secret so a person can tell which one it is: its last 4 characters."""
    if not secret:
        return "not set"
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"


def database_password(url: str | None) -> str | None:
    """The password in an SQLAlchemy URL, if any (it is a secret like the others)."""
    if not url:
        return None
    from urllib.parse import unquote, urlsplit  # SQLAlchemy's URL form; no need to import SQLAlchemy for it

    try:
        password = urlsplit(url).password
    except ValueError:  # an unparsable URL is reported elsewhere; it has no password to find
        return None
    return unquote(password) if password else None
