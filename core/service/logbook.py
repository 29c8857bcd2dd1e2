"""What `/logs` shows: the process's recent log lines (warnings and worse, or everything with -v),
kept in memory, each passed through core.redaction before it is kept."""
from __future__ import annotations

import logging
import threading
from collections import deque

from core.i18n import N_, _
from core.redaction import redact
from core.service.registry import Arg, Role, UsageError, command
from core.service.replies import LogsView

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RecentLog(logging.Handler):
    def __init__(self, size: int = 1000):
        super().__init__()
        self.lines: deque[str] = deque(maxlen=size)
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(self.format(record))
        except Exception:  # a log line must never break the code that logs it
            return
        with self._guard:
            self.lines.append(text)

    def last(self, n: int) -> tuple[str, ...]:
        with self._guard:
            return tuple(list(self.lines)[-n:])


RECENT = RecentLog()


def lines(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 200:
        raise UsageError(_("expected a number of lines from 1 to 200, got {text!r}").format(text=text[:64]))
    return int(text)


@command("logs", N_("/logs [n]"), N_("the last n log lines (default 20), secrets masked"), role=Role.ADMIN,
         args=(Arg("n", lines, optional=True),))
def logs(ctx, n: int = 20):
    return LogsView(RECENT.last(n))
