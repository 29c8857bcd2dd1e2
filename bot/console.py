"""The console front-end: the runtime's commands typed on stdin, replies and alerts printed on stdout.

Used when no Telegram token is set, on live candles or a replay. A reader thread only queues lines;
commands and jobs run through the runtime (one at a time, under its lock), so a command never
interleaves with a cycle, and commands are answered while the agent starts up. SIGTERM or Ctrl-C
stops it between two steps: the step in progress finishes first.
"""
from __future__ import annotations

import asyncio
import signal
import sys
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from bot.messages import event_text, label, mode, schedule_text
from bot.schedule import schedule_jobs
from bot.views import render
from core.display import clock, krw, when
from core.i18n import _, language
from core.redaction import redact
from core.runtime.runtime import Runtime
from core.service.registry import CONSOLE, CONSOLE_CHAT, Caller
from core.service.reports import ChartData, EquityData
from core.storage.outbox import due, mark_sent
from core.storage.users import chat_language

ALERT_SECONDS = 0.2


class ConsoleChat:
    """Printing for the console: replies (pictures written to charts/) and due alerts."""

    def __init__(self, service, out: TextIO = sys.stdout, echo: bool = False):
        self.service = service
        self.out = out
        self.echo = echo  # repeat each command before its reply (useful when stdin is a pipe)
        self.pictures = Path("charts")  # where /chart and /equity write their PNGs

    def caller(self) -> Caller:
        """The console's caller, in the language it chose with /language (BOT_LANGUAGE until then)."""
        return replace(CONSOLE, language=self.language())

    def language(self) -> str | None:
        return chat_language(self.service.agent.db, CONSOLE_CHAT)

    def answer(self, line: str) -> str:
        """Run one command now (no runtime: tests and tools) and print its reply."""
        caller = self.caller()
        return self.show(line, self.service.handle(line, caller), caller)

    def show(self, line: str, result, caller: Caller = CONSOLE) -> str:
        with language(caller.language):
            reply = render(result)
            if isinstance(result, (ChartData, EquityData)):
                reply += _("; picture written to {path}").format(path=self._save_picture(result))
        if self.echo:
            self.print(f"> {line}")
        self.print(reply)
        return reply

    def flush_alerts(self, now: datetime) -> int:
        """Print due alerts (emergencies first), in the console's language, and mark them sent."""
        db = self.service.agent.db
        printed = 0
        batch = due(db, now, limit=100)
        if not batch:  # the usual case, five times a second: no language to look up
            return 0
        with language(self.language()):
            while batch:
                for alert in batch:
                    self.print(f"[{when(alert.created_at)}] {label(alert.kind)}: {event_text(alert)}")
                    mark_sent(db, alert.id, now)
                    printed += 1
                batch = due(db, now, limit=100)
        return printed

    def _save_picture(self, result) -> Path:
        from bot.charts import (  # matplotlib only when a picture is drawn
            chart_png,
            equity_png,
        )

        self.pictures.mkdir(parents=True, exist_ok=True)
        if isinstance(result, ChartData):
            path, png = self.pictures / f"chart-{result.market}.png", chart_png(result)
        else:
            path, png = self.pictures / "equity.png", equity_png(result)
        path.write_bytes(png)
        return path

    def print(self, text: str) -> None:
        print(redact(text), file=self.out, flush=True)


def run_console(runtime: Runtime, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout):
    """Run until stopped, or for a replay until the data ends; returns the replay's figures or None."""
    return asyncio.run(_main(runtime, stdin, out))


async def _main(runtime: Runtime, stdin: TextIO, out: TextIO):
    chat = ConsoleChat(runtime.service, out, echo=not stdin.isatty())
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read, args=(stdin, loop, lines), name="console-reader", daemon=True).start()

    async def flush() -> None:
        chat.flush_alerts(datetime.now(timezone.utc))

    runtime.after_job = flush
    now = datetime.now(timezone.utc)
    jobs = runtime.jobs(now)
    with language(chat.language()):
        _banner(runtime, chat, jobs)
    tasks = [asyncio.create_task(_commands(runtime, chat, lines)), asyncio.create_task(_alerts(chat, stop))]
    active: set[asyncio.Task] = set()
    tasks += schedule_jobs(runtime, jobs, active)
    tasks.append(asyncio.create_task(runtime.stream_forever(stop.is_set), name="trade stream"))
    result = None
    try:
        await runtime.start(runtime.schedule(jobs))
        if runtime.replay is None:
            with language(chat.language()):
                chat.print(_("Ready: start-up done; next cycle at {time}.").format(
                    time=clock(runtime.agent.next_cycle_at)))
        if runtime.replay is not None:
            result = await runtime.replay_ticks(_day_lines(runtime, chat), stopped=stop.is_set)
            await asyncio.sleep(0.05)  # commands already typed are answered before the summary
            await lines.join()
        else:
            await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*active, return_exceptions=True)  # the step in progress finishes
        runtime.stop()
        chat.flush_alerts(datetime.now(timezone.utc))
    return result


def _banner(runtime: Runtime, chat: ConsoleChat, jobs) -> None:
    if runtime.replay is None:
        chat.print(_("autotrader: {mode} trading {markets} on {url} candles; {schedule}. Type /help; Ctrl-C "
                     "stops.").format(mode=mode(runtime.agent.mode), markets=", ".join(runtime.agent.markets),
                                      url=runtime.settings.upbit_api_url, schedule=schedule_text(runtime.schedule(jobs))))
        return
    replay = runtime.replay
    first, last = replay.ticks[0].to_pydatetime(), replay.ticks[-1].to_pydatetime()
    pace = _("as fast as possible") if runtime.speed <= 0 else \
        _("{speed:g} candles per second").format(speed=runtime.speed)
    chat.print(_("Replaying {markets} from {path}: {first} .. {last}, {n} candle closes, {pace}; paper wallet "
                 "{wallet}.").format(markets=", ".join(runtime.agent.markets), path=replay.data_dir, first=when(first),
                                     last=when(last), n=len(replay.ticks), pace=pace, wallet=krw(replay.start_krw)))
    chat.print(_("Type /help for commands. Alerts appear as they happen; a summary follows the last candle."))


def _day_lines(runtime: Runtime, chat: ConsoleChat):
    day: list = [None]

    async def after_tick(i: int, now: datetime) -> None:
        chat.flush_alerts(now)
        if day[0] is None:
            day[0] = now.date()
        elif now.date() != day[0]:  # one status line per simulated day
            day[0] = now.date()
            agent = runtime.agent
            with language(chat.language()):
                text = _("{time}  equity {equity}  open positions {n}").format(
                    time=when(now), equity=krw(agent.portfolio.equity(agent.prices)), n=len(agent.portfolio.positions))
                chat.print(text + (_("  (paused)") if agent.risk.paused else ""))

    return after_tick


async def _commands(runtime: Runtime, chat: ConsoleChat, lines: asyncio.Queue) -> None:
    while True:
        line = await lines.get()
        try:
            if line is not None:
                caller = chat.caller()
                chat.show(line, await runtime.command(line, caller), caller)
        finally:
            lines.task_done()


async def _alerts(chat: ConsoleChat, stop: asyncio.Event) -> None:
    while not stop.is_set():
        chat.flush_alerts(datetime.now(timezone.utc))
        await asyncio.sleep(ALERT_SECONDS)


def _read(stream: TextIO, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue) -> None:
    try:
        for line in stream:
            if line.strip():
                loop.call_soon_threadsafe(lines.put_nowait, line.strip())
    except (OSError, ValueError):  # stdin closed under us
        pass
