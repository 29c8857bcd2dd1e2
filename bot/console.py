"""The console chat: the agent's commands typed on stdin, replies and alerts printed on stdout.

Used when no Telegram token is set. A reader thread only queues lines; commands run on the thread
that runs the cycles, between two cycles, so a command never interleaves with a step.
"""
from __future__ import annotations

import queue
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bot.views import render, when
from core.redaction import redact
from core.service.agent import CONSOLE
from core.service.commands import CommandService
from core.service.reports import ChartData, EquityData
from core.storage.outbox import due, mark_sent

ALERT_LABELS = {"emergency": "EMERGENCY", "exit": "exit", "fill": "fill", "signal": "signal", "error": "error",
                "system": "system", "summary": "summary"}


class ConsoleChat:
    def __init__(self, service: CommandService, out: TextIO = sys.stdout, echo: bool = False):
        self.service = service
        self.out = out
        self.echo = echo  # repeat each command before its reply (useful when stdin is a pipe)
        self.lines: queue.Queue[str] = queue.Queue()
        self.pictures = Path("charts")  # where /chart and /equity write their PNGs

    def listen(self, stream: TextIO = sys.stdin) -> threading.Thread:
        def read() -> None:
            for line in stream:
                if line.strip():
                    self.lines.put(line.strip())

        thread = threading.Thread(target=read, name="console-reader", daemon=True)
        thread.start()
        return thread

    def answer(self, line: str) -> str:
        result = self.service.handle(line, CONSOLE)
        reply = render(result)
        if isinstance(result, (ChartData, EquityData)):
            reply += f"; picture written to {self._save_picture(result)}"
        if self.echo:
            self.print(f"> {line}")
        self.print(reply)
        return reply

    def pump(self) -> int:
        """Answer every command typed since the last call; returns how many."""
        count = 0
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return count
            self.answer(line)
            count += 1

    def flush_alerts(self, now: datetime) -> int:
        """Print due alerts (emergencies first) and mark them sent."""
        db = self.service.agent.db
        printed = 0
        while batch := due(db, now, limit=100):
            for alert in batch:
                self.print(f"[{when(alert.created_at)}] {ALERT_LABELS.get(alert.kind, alert.kind)}: {alert.text}")
                mark_sent(db, alert.id, now)
                printed += 1
        return printed

    def _save_picture(self, result) -> Path:
        from bot.charts import chart_png, equity_png

        self.pictures.mkdir(parents=True, exist_ok=True)
        if isinstance(result, ChartData):
            path, png = self.pictures / f"chart-{result.market}.png", chart_png(result)
        else:
            path, png = self.pictures / "equity.png", equity_png(result)
        path.write_bytes(png)
        return path

    def print(self, text: str) -> None:
        print(redact(text), file=self.out, flush=True)
