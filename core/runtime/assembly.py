"""How is the running agent put together? One function per question, one Runtime for every mode.

Paper (the default) or live trading on Upbit's candles: books rebuilt from the database, the
exchange (paper wallet or Upbit), the live feed, the cycle with its journal, limits and reconciler,
the agent and its command service. A replay: the same agent on a simulated clock over candle files,
in a database of its own. Both take candles from a CandleSource and reconcile their books with
their exchange at start and before every cycle.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from core.data.sources import CandleSource
from core.runtime.runtime import Runtime
from core.service.agent import Agent
from core.service.commands import CommandService
from core.service.model_versions import Serving, serving_at_start
from core.service.reconcile import Reconciler
from core.service.replay import DEFAULT_REPLAY_DB, open_replay, replay_database
from core.service.retraining import RetrainConfig, Retrainer, default_store
from core.service.serving import ModelServing
from core.service.settings import Settings
from core.storage.books import fund_paper_account, load_books
from core.storage.database import open_database
from core.storage.journal import Journal, last_candle_times
from core.storage.settings_store import load_markets
from core.trading.cycle import TradingCycle
from core.trading.events import EventKind
from core.trading.feeds import LiveFeed
from core.trading.health import ServiceMonitor
from core.trading.paper import PaperExchange
from core.trading.types import OrderLimits, RiskSettings
from core.trading.watchlist import Watchlist
from core.upbit.exchange import UpbitExchange
from core.upbit.exchange_api import UpbitExchangeAPI
from core.upbit.quotation import UpbitQuotationClient
from core.upbit.source import UpbitCandleSource
from models.manager import MultiCoinModelManager

log = logging.getLogger(__name__)

REPLAY_MODEL_STORE = "replay-models"  # a replay's retrained versions, beside its database, recreated each replay


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What `autotrader run` was asked for beyond the settings."""

    markets: tuple[str, ...]
    model_dir: Path
    defaults: RiskSettings = RiskSettings()
    slippage: float = 0.0005
    replay: Path | None = None  # a candle directory: replay it on a simulated clock
    speed: float = 20.0
    replay_db: str | None = None


def live_warning(settings: Settings) -> str:
    return (f"LIVE TRADING: real orders with real money on {settings.upbit_api_url}. Limits: "
            f"{settings.max_order_krw:,.0f} KRW per buy order, {settings.max_daily_krw:,.0f} KRW of buys per UTC day. "
            f"/pause stops buying; /sellall sells every position.")


def account_stream(settings: Settings):
    """Live mode with a trade stream: the account's stream at `<UPBIT_WS_URL>/private`, signed as REST is."""
    if not settings.is_live or settings.upbit_ws_url is None:
        return None
    from core.upbit.auth import authorization
    from core.upbit.stream import TradeStream, private_subscription

    keys = settings.upbit_access_key, settings.upbit_secret_key
    return lambda on_event, on_state: TradeStream(settings.upbit_ws_url.rstrip("/") + "/private", on_event,
                                                  on_state=on_state, request=private_subscription,
                                                  headers=lambda: {"Authorization": authorization(*keys)})


def market_data_monitor() -> ServiceMonitor:
    return ServiceMonitor("Upbit market data", "no new signals until it answers; the bot keeps trying every cycle")


def exchange_for(settings: Settings, db, slippage: float, now: datetime):
    """The exchange and the books as stored: the Upbit account in live mode, the paper wallet otherwise."""
    if settings.is_live:
        exchange = UpbitExchange(UpbitExchangeAPI(settings.upbit_api_url, settings.upbit_access_key,
                                                  settings.upbit_secret_key))
        return exchange, load_books(db)  # the very first reconciliation records the account's KRW as its funding
    exchange = PaperExchange(0, slippage)
    funded = fund_paper_account(db, settings.paper_start_krw, now)
    if abs(funded - settings.paper_start_krw) > 0.5:
        log.warning("PAPER_START_KRW is %s but this paper account was funded with %s KRW; its stored books are used "
                    "(a fresh DATABASE_URL starts a new paper account)", f"{settings.paper_start_krw:,}", f"{funded:,.0f}")
    return exchange, load_books(db, exchange)


def trading_agent(settings: Settings, db, manager, defaults: RiskSettings = RiskSettings(), slippage: float = 0.0005,
                  source: CandleSource | None = None, now: datetime | None = None, prime: bool = True) -> Agent:
    """The agent on live Upbit candles (or `source`'s, as of `now`), its books rebuilt and reconciled;
    with `prime`, its markets' histories fetched and models loaded before it returns."""
    now = now or datetime.now(timezone.utc)
    exchange, portfolio = exchange_for(settings, db, slippage, now)
    if source is None:
        client = UpbitQuotationClient(settings.upbit_api_url, monitor=market_data_monitor())
        source = UpbitCandleSource(client, settings.candle_interval, settings.interval_seconds)
    watchlist = Watchlist(load_markets(db) or settings.markets)  # /markets changes win over MARKETS
    feed = LiveFeed(source, manager, watchlist, settings.interval_seconds, last_candle_times(db))
    cycle = TradingCycle(feed, exchange, portfolio, recorder=Journal(db),
                         limits=OrderLimits(settings.max_order_krw, settings.max_daily_krw),
                         reconciler=Reconciler(db, exchange, watchlist))
    agent = Agent(mode=settings.mode, watchlist=watchlist, interval=settings.candle_interval, cycle=cycle, db=db,
                  defaults=defaults, manager=manager)
    cycle.reconcile(now)  # orders a crash left open are settled before anything else happens
    if prime:
        for market, error in prime_feed(agent, now).items():
            log.warning("%s is not ready to trade yet: %s", market, error)
    return agent


def prime_feed(agent: Agent, now: datetime) -> dict[str, str]:
    """Histories fetched and models loaded, judging nothing: the first cycle is light. The latest
    closes value the books before it. Returns why each market that is not ready is not."""
    problems = agent.cycle.feed.prime(now)
    agent.cycle.prices.update(agent.cycle.feed.closes())
    return problems


def retrain_config(settings: Settings, store: Path, data_dir: Path, api_url: str | None) -> RetrainConfig:
    return RetrainConfig(store=store, data_dir=data_dir, api_url=api_url, history_days=settings.retrain_history_days,
                         recent_days=settings.retrain_recent_days, every_days=settings.retrain_every_days,
                         budget_seconds=settings.retrain_budget_minutes * 60,
                         train={"epochs": settings.retrain_epochs, "samples_per_epoch": settings.retrain_samples,
                                "threads": trainer_threads()},
                         interval=settings.candle_interval, interval_seconds=settings.interval_seconds,
                         start_krw=settings.paper_start_krw)


def trainer_threads() -> int:
    """Every core but one for the trainer: the cycle and the chat keep one to themselves."""
    return max(1, (os.cpu_count() or 2) - 1)


def model_serving(agent: Agent, serving: Serving, config: RetrainConfig) -> ModelServing:
    return ModelServing(agent, serving.version, serving.path, Retrainer(agent.db, config))


def assemble(settings: Settings, options: RunOptions, *, source: CandleSource | None = None) -> Runtime:
    """The Runtime `autotrader run` drives: a replay when `options.replay` is set, else the agent on
    live candles against the paper wallet or the Upbit account. Either serves the model registry's
    serving version (core.service.model_versions) and retrains on RETRAIN_AT."""
    now = datetime.now(timezone.utc)
    if options.replay is not None:
        db = replay_database(options.replay_db)
        try:
            serving = serving_at_start(db, options.model_dir, options.markets, now)
            manager = MultiCoinModelManager(serving.path, options.markets)
            replay = open_replay(options.replay, options.markets, manager, db, interval=settings.candle_interval,
                                 interval_seconds=settings.interval_seconds, start_krw=settings.paper_start_krw,
                                 defaults=options.defaults, slippage=options.slippage)
            store = default_store(options.replay_db or f"sqlite:///{DEFAULT_REPLAY_DB}", REPLAY_MODEL_STORE)
            shutil.rmtree(store, ignore_errors=True)  # like the replay's database: every replay starts afresh
            models = model_serving(replay.agent, serving, retrain_config(settings, store, options.replay, None))
        except Exception:
            db.dispose()
            raise
        return Runtime(settings=settings, service=CommandService(replay.agent), replay=replay, speed=options.speed,
                       models=models)
    db = open_database(settings.database_url)
    try:
        serving = serving_at_start(db, options.model_dir, options.markets, now)
        manager = MultiCoinModelManager(serving.path, options.markets)
        agent = trading_agent(replace(settings, markets=options.markets), db, manager, options.defaults,
                              options.slippage, source, prime=False)
        store = settings.model_store or default_store(settings.database_url, "model-store")
        data_dir = settings.data_dir or default_store(settings.database_url, "data-store")
        models = model_serving(agent, serving, retrain_config(settings, Path(store), Path(data_dir),
                                                              settings.upbit_api_url))
    except Exception:
        db.dispose()
        raise
    client = getattr(agent.cycle.feed.source, "client", None)  # the quotation client: tickers for the shock guard
    monitors = (client.monitor,) if client is not None else ()
    runtime = Runtime(settings=settings, service=CommandService(agent), tickers=client,
                      prime=lambda now: prime_feed(agent, now), monitors=monitors, stream_url=settings.upbit_ws_url,
                      private_stream=account_stream(settings), models=models)
    if serving.note:
        log.error("model registry: %s", serving.note)
        runtime.announce("model_unusable", EventKind.ERROR, note=serving.note)
    if settings.is_live:
        log.warning(live_warning(settings))
        runtime.announce("live_warning", EventKind.SYSTEM, url=settings.upbit_api_url,
                         max_order_krw=settings.max_order_krw, max_daily_krw=settings.max_daily_krw)
    return runtime
