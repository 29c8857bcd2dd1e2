"""Assembling the running agent: paper (the default) or live trading on Upbit, one code path after that.

Both take candles from Upbit's quotation API, store every order before sending it, and reconcile the
books with their exchange at start and before every cycle: the paper wallet for paper trading, the
real account for live trading. Live mode also takes the operator's hard limits on buying.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from core.data.sources import CandleSource
from core.service.agent import Agent
from core.service.reconcile import Reconciler
from core.service.settings import Settings
from core.storage.books import fund_paper_account, load_books
from core.storage.journal import Journal, last_candle_times
from core.storage.outbox import enqueue_now
from core.trading.cycle import TradingCycle
from core.trading.events import Event
from core.trading.feeds import LiveFeed
from core.trading.paper import PaperExchange
from core.trading.types import OrderLimits, RiskSettings
from core.upbit.exchange import UpbitExchange
from core.upbit.exchange_api import UpbitExchangeAPI
from core.upbit.quotation import UpbitQuotationClient
from core.upbit.source import UpbitCandleSource

log = logging.getLogger(__name__)


def live_warning(settings: Settings) -> str:
    return (f"LIVE TRADING: real orders with real money on {settings.upbit_api_url}. Limits: "
            f"{settings.max_order_krw:,.0f} KRW per buy order, {settings.max_daily_krw:,.0f} KRW of buys per UTC day. "
            f"/pause stops buying; /sellall sells every position.")


def trading_agent(settings: Settings, db, manager, defaults: RiskSettings = RiskSettings(),
                  slippage: float = 0.0005, source: CandleSource | None = None, now: datetime | None = None) -> Agent:
    """The agent on live Upbit candles (or `source`'s, as of `now`); its books rebuilt from the stored
    fills and reconciled, its markets' histories fetched and models loaded."""
    now = now or datetime.now(timezone.utc)
    if settings.is_live:
        exchange = UpbitExchange(UpbitExchangeAPI(settings.upbit_api_url, settings.upbit_access_key,
                                                  settings.upbit_secret_key))
        portfolio = load_books(db)  # the very first reconciliation records the account's KRW as its funding
    else:
        exchange = PaperExchange(0, slippage)
        funded = fund_paper_account(db, settings.paper_start_krw, now)
        if abs(funded - settings.paper_start_krw) > 0.5:
            log.warning("PAPER_START_KRW is %s but this paper account was funded with %s KRW; its stored books "
                        "are used (a fresh DATABASE_URL starts a new paper account)",
                        f"{settings.paper_start_krw:,}", f"{funded:,.0f}")
        portfolio = load_books(db, exchange)
    source = source or UpbitCandleSource(UpbitQuotationClient(settings.upbit_api_url), settings.candle_interval,
                                         settings.interval_seconds)
    holder: list[Agent] = []
    watched = lambda: holder[0].markets  # noqa: E731 - the agent's markets change by command
    feed = LiveFeed(source, manager, watched, settings.interval_seconds, last_candle_times(db))
    cycle = TradingCycle(feed, exchange, portfolio, lambda: defaults, recorder=Journal(db),
                         limits=OrderLimits(settings.max_order_krw, settings.max_daily_krw),
                         reconciler=Reconciler(db, exchange, watched))
    agent = Agent(mode=settings.mode, markets=settings.markets, interval=settings.candle_interval, cycle=cycle, db=db,
                  defaults=defaults, manager=manager)
    holder.append(agent)
    cycle.reconcile(now)  # orders a crash left open are settled before anything else happens
    for market, error in feed.prime(now).items():  # histories fetched, models loaded: the first cycle is light
        log.warning("%s is not ready to trade yet: %s", market, error)
    cycle.prices.update(feed.closes())  # the latest closes value the books before the first cycle
    if settings.is_live:
        log.warning(live_warning(settings))
        enqueue_now(db, Event("system", live_warning(settings), now))
    return agent
