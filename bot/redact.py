"""Secrets never reach a log line: python-telegram-bot and httpx log request URLs, and a Telegram
bot's URL contains its token. A filter on every handler replaces each secret before it is written."""
from __future__ import annotations

import logging
from typing import Iterable


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str | None]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self.secrets:
            text = text.replace(secret, "***")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "***")
        record.msg, record.args = text, None
        return True


def install(secrets: Iterable[str | None]) -> RedactSecrets:
    """Attach the filter to every handler of the root logger (call after logging is configured)."""
    redact = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request, URL included
    return redact
