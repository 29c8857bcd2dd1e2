"""`autotrader run` with a Telegram token: the runtime's jobs on python-telegram-bot's JobQueue
(APScheduler, UTC), commands from Telegram, alerts to the subscribed chats.

Trading does not wait for Telegram: the JobQueue starts first, then the bot connects. While Telegram
cannot be reached the agent trades and stores its alerts; the log says so once, and again every few
minutes, and the alerts go out once it answers. A token Telegram refuses stops the process (the CLI
says so in one line). SIGTERM or Ctrl-C finishes the job in progress, sends what is pending and stops.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timezone

from telegram import Update
from telegram.error import InvalidToken, NetworkError, TimedOut

from bot.dispatcher import AlertDispatcher
from core.i18n import _
from bot.telegram_bot import BotRuntime, build_application, set_menus
from core.runtime.runtime import Job, Runtime
from core.storage.users import subscribers
from core.trading.health import ServiceMonitor

log = logging.getLogger(__name__)

ALERT_POLL_SECONDS = 1.0
CONNECT_BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)  # seconds between attempts to reach Telegram


def _not_invalid_token(record: logging.LogRecord) -> bool:
    """python-telegram-bot logs a refused token with its traceback before raising it; the CLI says it
    in one line instead (bot.cli), so that record is dropped."""
    return not (record.exc_info and isinstance(record.exc_info[1], InvalidToken))


def _not_a_cancelled_job(record: logging.LogRecord) -> bool:
    """At shutdown APScheduler cancels the job callbacks still waiting (python-telegram-bot shields the
    one running, which finishes) and logs each cancellation as an exception with its traceback: an
    expected part of stopping, said in one debug line instead."""
    if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
        log.debug("a job waiting at shutdown was cancelled: %s", record.getMessage())
        return False
    return True


def run_with_telegram(runtime: Runtime):
    """Run until stopped (or, for a replay, until the data ends); returns the replay's figures or None."""
    logging.getLogger("telegram.ext").addFilter(_not_invalid_token)
    for name in ("apscheduler.executors", "apscheduler.executors.default"):  # filters do not reach child loggers
        logging.getLogger(name).addFilter(_not_a_cancelled_job)
    return asyncio.run(_main(runtime))


async def _main(runtime: Runtime):
    monitor = ServiceMonitor("Telegram", "trading goes on and alerts wait in the database until it answers")
    runtime.monitors.append(monitor)
    bot_runtime = BotRuntime(runtime)
    app = build_application(bot_runtime)
    connected = asyncio.Event()
    dispatcher = AlertDispatcher(runtime.db, app.bot, lambda: subscribers(runtime.db, bot_runtime.roles),
                                 monitor=monitor)

    async def deliver(context=None) -> None:
        if not connected.is_set():
            return  # kept in the outbox until Telegram answers
        try:
            await dispatcher.deliver()
        except Exception:
            log.exception("alert delivery round failed; the alerts stay pending")

    runtime.after_job = deliver
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    jobs = runtime.jobs(datetime.now(timezone.utc))
    queue = app.job_queue
    for job in jobs:
        _schedule(queue, runtime, job)
    queue.run_repeating(deliver, interval=ALERT_POLL_SECONDS, first=ALERT_POLL_SECONDS, name="alerts")
    await queue.start()  # trading starts now, whether Telegram answers or not
    starting = asyncio.create_task(runtime.start(runtime.schedule(jobs)))
    streaming = asyncio.create_task(runtime.stream_forever(stop.is_set), name="trade stream")
    replaying = None
    try:
        if not await _connect(app, monitor, stop):
            return None
        connected.set()
        await set_menus(app.bot)
        await app.start()
        await app.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        print(_("Telegram bot connected; commands are answered."), flush=True)
        await starting
        if runtime.replay is not None:
            replaying = asyncio.create_task(runtime.replay_ticks(stopped=stop.is_set))
            replaying.add_done_callback(lambda _: stop.set())
        await stop.wait()
        return replaying.result() if replaying is not None and replaying.done() and not replaying.cancelled() else None
    finally:
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        await _shutdown(app, runtime, queue, deliver, connected)
        if not starting.done():
            await asyncio.gather(starting, return_exceptions=True)


def _schedule(queue, runtime: Runtime, job: Job) -> None:
    async def callback(context) -> None:
        await runtime.run_job(job)

    if job.daily_at is not None:
        queue.run_daily(callback, time=job.daily_at, name=job.name)
    else:
        queue.run_repeating(callback, interval=job.every_seconds, first=job.first_at, name=job.name,
                            job_kwargs={"max_instances": 2, "misfire_grace_time": None})


async def _connect(app, monitor: ServiceMonitor, stop: asyncio.Event) -> bool:
    """Reach Telegram (getMe), trying again and again while it does not answer; False if stopped first.
    A refused token is raised (InvalidToken): there is no point in trying again."""
    attempt = 0
    while not stop.is_set():
        try:
            await app.initialize()
            monitor.ok()
            return True
        except InvalidToken:
            raise
        except (NetworkError, TimedOut) as exc:
            monitor.failed(f"{exc}; trying again")
            wait = CONNECT_BACKOFF[min(attempt, len(CONNECT_BACKOFF) - 1)]
            attempt += 1
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
    return False


async def _shutdown(app, runtime: Runtime, queue, deliver, connected: asyncio.Event) -> None:
    await queue.stop(wait=True)  # the job in progress finishes
    runtime.stop()
    if connected.is_set():
        await deliver()
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
