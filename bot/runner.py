"""`autotrader run`: assemble the agent (paper trading on live candles, or a replay) and run it with
Telegram, scheduled by python-telegram-bot's JobQueue (APScheduler), timezone UTC.

The trading job runs a few seconds after every candle close (or every CYCLE_SECONDS); a cycle still
running when the next one fires is skipped with a warning. Alerts leave the outbox every second.
SIGTERM or Ctrl-C finishes the cycle in progress, sends what is pending and stops.
"""
from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime, timezone
from datetime import time as dt_time

from telegram import Update
from telegram.error import InvalidToken

from bot.dispatcher import AlertDispatcher
from bot.telegram_bot import BotRuntime, build_application, menu
from core.service.agent import Agent
from core.service.commands import CommandService
from core.service.replay import Replay
from core.service.settings import Settings
from core.storage.outbox import enqueue_now
from core.trading.events import Event
from core.trading.shock import PriceShockGuard, sell_on_shock
from core.upbit.errors import UpbitError
from core.upbit.quotation import UpbitQuotationClient

log = logging.getLogger(__name__)

CLOSE_DELAY_SECONDS = 5.0  # Upbit needs a moment to close the candle
ALERT_POLL_SECONDS = 1.0
SHOCK_POLL_SECONDS = 30.0  # the price-shock guard reads the tickers of held markets this often


def first_run(now: datetime, interval_seconds: float, delay: float = CLOSE_DELAY_SECONDS) -> datetime:
    """The next candle close after `now`, plus the delay."""
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.floor(epoch / interval_seconds + 1) * interval_seconds + delay, timezone.utc)


def daily_summary_text(service: CommandService) -> str:
    from bot.views import render
    from core.service.reports import daily

    agent = service.agent
    days = render(daily(agent.db, agent.portfolio.trades, agent.portfolio.principal_krw, 2))
    return (f"Daily summary\n{days}\n{render(service.cmd_balance([], None))}\n"
            f"{render(service.cmd_positions([], None))}")


def _not_invalid_token(record: logging.LogRecord) -> bool:
    """python-telegram-bot logs a refused token with its traceback before raising it; the CLI says it
    in one line instead (bot.cli), so that record is dropped."""
    return not (record.exc_info and isinstance(record.exc_info[1], InvalidToken))


def run_with_telegram(settings: Settings, agent: Agent, replay: Replay | None = None, speed: float = 20.0):
    """Run until stopped (or, for a replay, until the data ends); returns the replay's figures or None."""
    logging.getLogger("telegram.ext").addFilter(_not_invalid_token)  # the retry loop logs there
    runtime = BotRuntime(settings, agent, CommandService(agent))
    sim = replay.simulation() if replay is not None else None
    outcome: dict = {}
    holder: dict = {}

    async def deliver(context=None) -> None:
        try:
            await holder["dispatcher"].deliver()
        except Exception:
            log.exception("alert delivery round failed; the alerts stay pending")

    async def cycle_job(context) -> None:
        """The live trading job: one cycle per candle close."""
        if runtime.cycle_running:
            log.warning("the previous cycle is still running: this one is skipped")
            return
        runtime.cycle_running = True
        try:
            async with runtime.lock:
                await asyncio.to_thread(agent.run_cycle, datetime.now(timezone.utc))
                agent.next_cycle_at = context.job.next_t
        except Exception:
            log.exception("trading cycle failed")
            enqueue_now(agent.db, Event("error", "The trading cycle failed; see the log. The next one will run.",
                                        agent.clock()))
        finally:
            runtime.cycle_running = False
        await deliver()

    guard = PriceShockGuard()
    tickers = UpbitQuotationClient(settings.upbit_api_url)

    async def shock_job(context) -> None:
        """Between candle closes: sell a held coin whose price collapses, through the emergency path."""
        held = list(agent.portfolio.positions)
        if not held or runtime.cycle_running or not agent.risk.shock_windows:
            return
        try:
            prices = await asyncio.to_thread(tickers.tickers, held)
        except UpbitError as exc:
            log.warning("price-shock guard could not read tickers: %s", exc)
            return
        async with runtime.lock:
            await asyncio.to_thread(sell_on_shock, agent, guard, prices, datetime.now(timezone.utc))
        await deliver()

    async def summary_job(context) -> None:
        """Once a day: yesterday's result, the account and the open positions."""
        async with runtime.lock:
            text = daily_summary_text(runtime.service)
        enqueue_now(agent.db, Event("summary", text, agent.clock()))
        await deliver()

    async def replay_job(context) -> None:
        """The replay: every candle close in turn, paced, commands served in between; stops at the end."""
        wait = max(0.0, 1.0 / speed) if speed > 0 else 0.0
        while not sim.finished:
            async with runtime.lock:
                await asyncio.to_thread(sim.advance)
            await asyncio.sleep(wait)
        outcome["result"] = result = sim.result()
        m = result.metrics
        enqueue_now(agent.db, Event("summary", f"Replay finished: return {m['total_return']:+.2%}, {m['trades']} "
                                               f"trades, max drawdown {m['max_drawdown']:.2%}", agent.clock()))
        await deliver()
        context.application.stop_running()

    async def post_init(application) -> None:
        holder["dispatcher"] = AlertDispatcher(agent.db, application.bot, runtime.subscribers)
        await application.bot.set_my_commands(menu())
        jobs = application.job_queue
        jobs.run_repeating(deliver, interval=ALERT_POLL_SECONDS, first=ALERT_POLL_SECONDS, name="alerts")
        now = datetime.now(timezone.utc)
        if sim is not None:
            jobs.run_once(replay_job, when=1.0, name="replay")
            when = "replaying " + (f"{speed:g} candles per second" if speed > 0 else "as fast as possible")
        elif settings.cycle_seconds is not None:
            jobs.run_repeating(shock_job, interval=SHOCK_POLL_SECONDS, first=SHOCK_POLL_SECONDS, name="shock")
            jobs.run_repeating(cycle_job, interval=settings.cycle_seconds, first=1.0, name="cycle")
            when = f"a cycle every {settings.cycle_seconds:g} s"
        else:
            first = first_run(now, settings.interval_seconds)
            jobs.run_repeating(shock_job, interval=SHOCK_POLL_SECONDS, first=SHOCK_POLL_SECONDS, name="shock")
            jobs.run_repeating(cycle_job, interval=settings.interval_seconds, first=first, name="cycle")
            agent.next_cycle_at = first
            when = f"first cycle at {first:%Y-%m-%d %H:%M:%S} UTC"
        if sim is None and settings.daily_summary_utc is not None:
            hour, minute = (int(x) for x in settings.daily_summary_utc.split(":"))
            jobs.run_daily(summary_job, time=dt_time(hour, minute, tzinfo=timezone.utc), name="daily summary")
        enqueue_now(agent.db, Event("system", f"autotrader started: {agent.mode} mode, {', '.join(agent.markets)}; "
                                              f"{when}", agent.clock()))

    async def post_stop(application) -> None:
        enqueue_now(agent.db, Event("system", "autotrader stopped", agent.clock()))
        if "dispatcher" in holder:
            await deliver()

    app = build_application(runtime, post_init=post_init, post_stop=post_stop)
    app.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1, close_loop=False)
    return outcome.get("result")

