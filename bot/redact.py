"""Secrets never reach a log line or stderr: python-telegram-bot and httpx log request URLs (a bot's
URL contains its token) and put the token in their exception texts. A filter on every log handler,
and hooks for uncaught exceptions, pass each text through core.redaction before it is written."""
from __future__ import annotations

import logging
import sys
import threading
import traceback
from typing import Iterable

from core.redaction import redact, register


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str | None] = ()):
        super().__init__()
        register(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redacted_traceback(exc_type, exc, tb) -> str:
    return redact("".join(traceback.format_exception(exc_type, exc, tb)))


def install(secrets: Iterable[str | None]) -> RedactSecrets:
    """Register the secrets, filter every handler of the root logger (call after logging is
    configured) and redact what an uncaught exception in any thread would print."""
    filter_ = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(filter_)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request, URL included
    sys.excepthook = lambda t, e, tb: sys.stderr.write(redacted_traceback(t, e, tb))
    threading.excepthook = lambda a: sys.stderr.write(
        f"Exception in thread {a.thread.name if a.thread else '?'}:\n" + redacted_traceback(a.exc_type, a.exc_value,
                                                                                       a.exc_traceback))
    return filter_
