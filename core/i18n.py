"""In which language does a text reach its reader? gettext catalogs, Korean and English, chosen per chat.

The English sentence in the code is the message id; `core/locale/<lang>/LC_MESSAGES/autotrader.po`
holds its translation and the compiled `.mo` beside it ships in the package (Babel extracts and
compiles them; nothing is built at run time: docs/translating.md). Which language `_()` answers in
is a context variable: a front-end sets it for one command or one alert (`with language("ko"):`),
and `BOT_LANGUAGE` gives the default. Logs and the database stay English: the engine's reasons and
events are stored as codes with parameters, rendered in the reader's language when shown.
"""
from __future__ import annotations

import gettext
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Iterator

LANGUAGES = ("ko", "en")
DOMAIN = "autotrader"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str | None] = ContextVar("language", default=None)
_default = ["ko"]


def check_language(text: str) -> str:
    """'KO' -> 'ko'; ValueError naming the choices for anything else."""
    code = (text or "").strip().lower()
    if code not in LANGUAGES:
        raise ValueError(f"expected one of {', '.join(LANGUAGES)}, got {text!r}")
    return code


def set_default_language(code: str) -> None:
    _default[0] = check_language(code)


def default_language() -> str:
    return _default[0]


def current_language() -> str:
    return _current.get() or _default[0]


@contextmanager
def language(code: str | None) -> Iterator[str]:
    """Texts made inside this block are in `code` (None: the default language)."""
    token = _current.set(check_language(code) if code else None)
    try:
        yield current_language()
    finally:
        _current.reset(token)


@lru_cache(maxsize=None)
def catalog(code: str) -> gettext.NullTranslations:
    """The compiled catalog of `code`; a missing file is an error (the catalogs ship in the package),
    except for English, whose message ids are the English text."""
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[code])
    except OSError:
        if code == "en":
            return gettext.NullTranslations()
        raise


def _(message: str) -> str:
    """`message` in the current language."""
    return catalog(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalog(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a text for the catalogs where it is declared; `_()` translates it where it is shown."""
    return message
