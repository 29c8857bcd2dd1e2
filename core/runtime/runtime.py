"""What runs, and when? The Runtime: one agent, its command service and its jobs, in every mode.

Paper or live, on live candles or a replay, with the console or Telegram: the assembly
(core.runtime.assembly) builds one Runtime, and a front-end (bot/) schedules its jobs and feeds it
commands. The jobs are the cycle on every candle close (or every CYCLE_SECONDS), the price-shock
guard between closes, the daily summary and, in a replay, the simulated clock's ticks. A job and a
command never run at once: both take the runtime's lock; a job still running when its next run is
due is skipped with a warning; a job that fails raises an error alert and the next one runs.
"""
from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Awaitable, Callable

from core.service import reports
from core.service.commands import CommandService, Context
from core.service.queries import balance, positions
from core.service.registry import CONSOLE, Caller
from core.service.replay import Replay
from core.service.serving import ModelServing
from core.service.settings import Settings
from core.storage.outbox import enqueue_now
from core.trading.backtest import BacktestResult
from core.trading.events import EventKind, event
from core.trading.health import ServiceHealth, ServiceMonitor
from core.trading.shock import PriceShockGuard, sell_on_shock
from core.upbit.stream import TradeStream

log = logging.getLogger(__name__)

CLOSE_DELAY_SECONDS = 5.0  # Upbit needs a moment to close the candle
SHOCK_POLL_SECONDS = 30.0  # the price-shock guard reads the tickers of held markets this often
MODEL_WATCH_SECONDS = 10.0  # a finished trainer, or a version promoted elsewhere, is picked up this often


@dataclass(frozen=True, kw_only=True)
class Job:
    """A piece of work the front-end schedules: every `every_seconds` from `first_at`, or daily at
    `daily_at` (UTC). `run(now)` is plain blocking code; it runs in a worker thread under the lock."""

    name: str
    run: Callable[[datetime], object]
    every_seconds: float | None = None
    first_at: datetime | None = None
    daily_at: time | None = None
    when_idle: bool = False  # skipped (not queued) while a cycle or command holds the lock: it comes round again


def first_close(now: datetime, interval_seconds: float, delay: float = CLOSE_DELAY_SECONDS) -> datetime:
    """The next candle close after `now`, plus the delay."""
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.floor(epoch / interval_seconds + 1) * interval_seconds + delay, timezone.utc)


class Runtime:
    def __init__(self, *, settings: Settings, service: CommandService, tickers=None, replay: Replay | None = None,
                 speed: float = 20.0, prime: Callable[[datetime], dict[str, str]] = lambda now: {},
                 monitors: tuple[ServiceMonitor, ...] = (), stream_url: str | None = None,
                 private_stream: Callable[..., TradeStream] | None = None, models: ModelServing | None = None):
        self.settings = settings
        self.service = service
        self.agent = service.agent
        self.db = self.agent.db
        self.replay = replay
        self.speed = speed
        self.monitors = list(monitors)  # market data first; a front-end adds its own (Telegram)
        self._tickers = tickers  # core.upbit.quotation.UpbitQuotationClient: prices for the shock guard
        self._prime = prime
        self._guard = PriceShockGuard()
        self._streams_down: set[str] = set()  # the streams whose outage was announced
        self.stream = None if stream_url is None or replay is not None else \
            TradeStream(stream_url, self._on_trade, on_state=self._stream_state)
        # live mode: the account's own stream (core.upbit.stream), made with this runtime's handler
        self.private = private_stream(self._on_account, self._account_state) \
            if private_stream is not None and replay is None else None
        self._reconciling: asyncio.Task | None = None
        self._again = False
        self._running: set[str] = set()
        self._lock: asyncio.Lock | None = None
        self.ready: asyncio.Event | None = None
        self.after_job: Callable[[], Awaitable[None]] | None = None  # the front-end delivers alerts then
        service.health = self.health
        self.models = models  # the registry's serving version, retraining and switches
        service.models = models

    # -- what the front-ends see -----------------------------------------------------------------
    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:  # made inside the running loop
            self._lock = asyncio.Lock()
        return self._lock

    def health(self) -> tuple[ServiceHealth, ...]:
        return tuple(m.health() for m in self.monitors)

    def jobs(self, now: datetime) -> list[Job]:
        """The schedule of a live run (a replay has its own clock: `replay_ticks`)."""
        if self.replay is not None:
            return []
        s = self.settings
        if s.cycle_seconds is not None:
            cycle = Job(name="cycle", run=self._cycle, every_seconds=s.cycle_seconds, first_at=now + timedelta(seconds=1))
        else:
            cycle = Job(name="cycle", run=self._cycle, every_seconds=s.interval_seconds,
                        first_at=first_close(now, s.interval_seconds))
        self.agent.next_cycle_at = cycle.first_at
        jobs = [cycle, Job(name="price-shock guard", run=self._shock, every_seconds=SHOCK_POLL_SECONDS,
                           first_at=now + timedelta(seconds=SHOCK_POLL_SECONDS))]
        if s.daily_summary_utc is not None:
            hour, minute = (int(x) for x in s.daily_summary_utc.split(":"))
            jobs.append(Job(name="daily summary", run=self._summary, daily_at=time(hour, minute, tzinfo=timezone.utc)))
        if self.models is not None:
            jobs.append(Job(name="model watch", run=self.models.watch, every_seconds=MODEL_WATCH_SECONDS,
                            first_at=now + timedelta(seconds=MODEL_WATCH_SECONDS), when_idle=True))
            if s.retrain_at_utc is not None:
                jobs.append(Job(name="retraining", run=self.models.scheduled, daily_at=s.retrain_at_utc))
        return jobs

    def schedule(self, jobs: list[Job]) -> dict:
        """When the cycles run, as data the front-ends put in words (bot/messages.py)."""
        if self.replay is not None:
            return {"replay_speed": self.speed}
        if self.settings.cycle_seconds is not None:
            return {"every_seconds": self.settings.cycle_seconds}
        cycle = next(j for j in jobs if j.name == "cycle")
        return {"first_cycle_at": cycle.first_at.isoformat()}

    # -- start, jobs, commands, stop ---------------------------------------------------------------
    async def start(self, schedule: dict) -> None:
        """Announce the start, then fetch histories and load models in a worker thread: commands are
        answered meanwhile, and jobs wait for it (`ready`)."""
        self.ready = asyncio.Event()
        self.announce("started", EventKind.SYSTEM, mode=self.agent.mode, markets=list(self.agent.markets),
                      **schedule)
        try:
            problems = await asyncio.to_thread(self._prime, datetime.now(timezone.utc))
        except Exception:
            log.exception("start-up could not fetch the markets' histories; the cycles will try again")
            problems = {}
        outage = any(m.down for m in self.monitors)  # already said once, by the monitor
        for market, problem in problems.items():
            log.log(logging.INFO if outage else logging.WARNING, "%s is not ready to trade yet: %s", market, problem)
        self.ready.set()

    async def run_job(self, job: Job) -> None:
        if self.ready is not None and not self.ready.is_set():
            log.info("%s skipped: start-up is still fetching the markets' histories", job.name)
            return
        if job.name in self._running:
            log.warning("the previous %s is still running: this one is skipped", job.name)
            return
        if job.when_idle and self.lock.locked():
            log.debug("%s skipped: the agent is busy; it runs again in %s s", job.name, job.every_seconds)
            return
        self._running.add(job.name)
        try:
            async with self.lock:
                await asyncio.to_thread(job.run, datetime.now(timezone.utc))
        except Exception:
            log.exception("%s failed", job.name)
            self.announce("job_failed", EventKind.ERROR, job=job.name)
        finally:
            self._running.discard(job.name)
        if self.after_job is not None:
            await self.after_job()

    async def command(self, text: str, caller: Caller, confirmed: bool = True):
        async with self.lock:
            return await asyncio.to_thread(self.service.handle, text, caller, confirmed)

    async def confirm(self, key: str, caller: Caller):
        async with self.lock:
            return await asyncio.to_thread(self.service.confirm, key, caller)

    def announce(self, name: str, kind: EventKind = EventKind.SYSTEM, **params) -> None:
        try:
            enqueue_now(self.db, event(kind, name, self.agent.clock(), **params))
        except Exception:
            log.exception("could not store the %s alert", name)

    def stop(self) -> None:
        if self.models is not None:
            self.models.stop()  # a training in progress ends with the bot; the serving model stays
        self.announce("stopped")

    def close(self) -> None:
        """Release the database (after `stop`, once no job runs any more)."""
        self.db.dispose()

    async def replay_ticks(self, after_tick: Callable[[int, datetime], Awaitable[None]] | None = None,
                           stopped: Callable[[], bool] = lambda: False) -> BacktestResult | None:
        """The replay's simulated clock: every candle close in turn, paced to `speed` per second,
        commands served between ticks; the figures at the end (None when stopped before it)."""
        sim = self.replay.simulation()
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = sim.ticks[0].to_pydatetime()
        self.announce("replay_started", markets=list(self.agent.markets), first=first.isoformat(),
                      last=sim.ticks[-1].to_pydatetime().isoformat(), ticks=len(sim.ticks))
        retrain = ReplaySchedule(self.settings, first) if self.models is not None else None
        while not sim.finished:
            if stopped():
                return None
            async with self.lock:
                now = await asyncio.to_thread(sim.advance)
            if retrain is not None and retrain.due(now):
                await self._replay_retrain(now, stopped)
            if after_tick is not None:
                await after_tick(sim.done - 1, now)
            delay = started + sim.done / self.speed - loop.time() if self.speed > 0 else 0.0
            await asyncio.sleep(max(0.0, delay))
        result = sim.result()
        m = result.metrics
        self.announce("replay_finished", EventKind.SUMMARY, total_return=m["total_return"], trades=m["trades"],
                      max_drawdown=m["max_drawdown"])
        return result

    async def _replay_retrain(self, now: datetime, stopped: Callable[[], bool]) -> None:
        """A retraining on the simulated clock, on the candles closed by `now`: the clock waits for the
        trainer (a real one takes a minute, less than a candle); commands are answered meanwhile."""
        async with self.lock:
            await asyncio.to_thread(self.models.scheduled, now)
        retrainer = self.models.retrainer
        while retrainer.running is not None and not stopped() and not retrainer.overdue():
            if retrainer.running.process.poll() is not None:
                break
            await asyncio.sleep(0.2)
        async with self.lock:
            await asyncio.to_thread(self.models.watch, now)
        if self.after_job is not None:
            await self.after_job()

    # -- the jobs' work (blocking code, in a worker thread, under the lock) -------------------------
    def _cycle(self, now: datetime) -> None:
        self.agent.run_cycle(now)
        step = self.settings.cycle_seconds or self.settings.interval_seconds
        if self.agent.next_cycle_at is not None:
            while self.agent.next_cycle_at <= now:
                self.agent.next_cycle_at += timedelta(seconds=step)

    def _shock(self, now: datetime) -> None:
        """The REST fallback of the guard: ticker prices every 30 s, while the trade stream is not live."""
        held = list(self.agent.portfolio.positions)
        if not held or not self.agent.risk.shock_windows or self._tickers is None:
            return
        if self.stream is not None and self.stream.up:
            return
        try:
            prices = self._tickers.tickers(held)
        except Exception as exc:  # the market-data monitor tells people once; the next poll tries again
            log.debug("price-shock guard could not read tickers: %s", exc)
            return
        sell_on_shock(self.agent, self._guard, prices, now)

    # -- Upbit's trade stream: every trade of a held coin judged as it arrives ------------------------
    async def stream_forever(self, stopped: Callable[[], bool], refresh_seconds: float = 1.0) -> None:
        """Run the trade stream, subscribed to the held and watched markets (again whenever they
        change), until `stopped()`; the front-ends start it beside the jobs (not in a replay)."""
        if self.stream is None and self.private is None:
            return
        runners = [asyncio.create_task(s.run(), name=name) for s, name in
                   ((self.stream, "trade stream"), (self.private, "account stream")) if s is not None]
        try:
            while not stopped() and not all(r.done() for r in runners):
                if self.stream is not None:
                    await self.stream.set_markets(set(self.agent.markets) | set(self.agent.portfolio.positions))
                await asyncio.sleep(refresh_seconds)
        finally:
            for stream in (self.stream, self.private):
                if stream is not None:
                    stream.stop()
            for runner in runners:
                runner.cancel()
            await asyncio.gather(*runners, *([self._reconciling] if self._reconciling else []),
                                 return_exceptions=True)

    async def _on_account(self, event) -> None:
        """An order or balance of the account changed: reconcile now (REST look-ups decide, as before
        every cycle, so an event never books anything twice); a burst of events is one reconciliation."""
        if self._reconciling is not None and not self._reconciling.done():
            self._again = True
            return
        self._reconciling = asyncio.create_task(self._reconcile_soon(), name="reconcile on an account event")

    async def _reconcile_soon(self, settle_seconds: float = 0.2) -> None:
        while True:
            self._again = False
            await asyncio.sleep(settle_seconds)
            try:
                async with self.lock:  # never beside a cycle, which settles its own orders
                    await asyncio.to_thread(self.agent.cycle.reconcile, datetime.now(timezone.utc))
            except Exception:
                log.exception("reconciliation after an account event failed; the next cycle reconciles again")
            if self.after_job is not None:
                await self.after_job()
            if not self._again:
                return

    async def _on_trade(self, trade) -> None:
        agent = self.agent
        if trade.market not in agent.portfolio.positions or not agent.risk.shock_windows:
            return
        reason = self._guard.observe(trade.market, trade.price_krw, trade.at, agent.risk)
        if reason is None:
            return
        async with self.lock:  # never in the middle of a cycle or a command
            await asyncio.to_thread(self._shock_sell, trade.market, trade.price_krw, reason)
        if self.after_job is not None:
            await self.after_job()

    def _shock_sell(self, market: str, price: float, reason) -> None:
        if market in self.agent.portfolio.positions:  # a cycle may have sold it meanwhile
            self.agent.cycle.shock_sell(market, price, datetime.now(timezone.utc), reason)
        self._guard.forget(market)

    def _account_state(self, up: bool, why: str) -> None:
        """The account stream: down means fills wait for the next cycle's reconciliation, as before it."""
        self._outage("account_stream", up, why, "orders and balances are reconciled before each cycle")

    def _stream_state(self, up: bool, why: str) -> None:
        """The trade stream: down means the REST guard reads prices every SHOCK_POLL_SECONDS."""
        self._outage("price_stream", up, why, f"the price-shock guard polls REST prices every {SHOCK_POLL_SECONDS:g} s",
                     poll_seconds=SHOCK_POLL_SECONDS)

    def _outage(self, stream: str, up: bool, why: str, meanwhile: str, **params) -> None:
        """Admins hear once when a stream goes down (`<stream>_down`) and once when it is back."""
        down = stream in self._streams_down
        if up:
            if down:
                self.announce(f"{stream}_back", EventKind.SYSTEM)
            self._streams_down.discard(stream)
            return
        log.warning("Upbit's %s is down (%s); %s until it is back", stream.replace("_", " "), why, meanwhile)
        if not down:
            self.announce(f"{stream}_down", EventKind.ERROR, error=why, **params)
        self._streams_down.add(stream)

    def _summary(self, now: datetime) -> None:
        self.announce("daily_summary", EventKind.SUMMARY, **summary_params(self.service))


class ReplaySchedule:
    """RETRAIN_AT on a replay's simulated clock: due at the first candle close at or after each
    RETRAIN_AT, every RETRAIN_EVERY_DAYS days."""

    def __init__(self, settings: Settings, first: datetime):
        self.at = settings.retrain_at_utc
        self.every = timedelta(days=settings.retrain_every_days)
        self.next = None
        if self.at is not None:
            candidate = datetime.combine(first.date(), self.at)
            self.next = candidate if candidate >= first else candidate + timedelta(days=1)

    def due(self, now: datetime) -> bool:
        if self.next is None or now < self.next:
            return False
        while self.next <= now:
            self.next += self.every
        return True


def summary_params(service: CommandService) -> dict:
    """The daily summary as data: the last two days, the balance and the open positions."""
    agent = service.agent
    days = reports.daily(agent.db, agent.portfolio.trades, agent.portfolio.principal_krw, 2).rows
    money = balance(Context(agent, CONSOLE, service))
    return {
        "days": [{"day": r.day.isoformat(), "equity_krw": r.equity_krw, "change_krw": r.change_krw,
                  "change_ratio": r.change_ratio, "trades": r.trades, "realised_krw": r.realised_krw} for r in days],
        "cash_krw": money.cash_krw, "positions_krw": money.positions_krw, "equity_krw": money.equity_krw,
        "principal_krw": money.principal_krw, "fees_krw": money.fees_krw,
        "positions": [{"market": p.market, "volume": p.volume, "avg_price_krw": p.avg_price_krw,
                       "price_krw": p.price_krw, "value_krw": p.value_krw, "pnl_krw": p.pnl_krw, "pnl_ratio": p.pnl_ratio}
                      for p in positions(agent)],
    }

