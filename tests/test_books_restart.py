"""Issue 21: the agent as `autotrader run` assembles it, paper and live (against the local fake Upbit),
trades real candles, stops and starts again: cash and the trading day's start are the same before and
after the restart, the same in both modes, and nothing is announced as a deposit."""
from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from core.data.candles import load_candle_csv
from core.data.sources import MemorySource
from core.runtime.assembly import trading_agent
from core.service.settings import load_settings
from core.storage.database import open_database
from core.storage.schema import signals
from core.trading.types import RiskSettings
from models.manager import MultiCoinModelManager
from tests.alerts import alert_texts
from tests.conftest import DATA
from tests.fakes.upbit_exchange import FakeExchangeBook
from tests.fakes.upbit_server import FakeUpbit

EAGER = RiskSettings(decision_rule="threshold", buy_threshold=0.05, sell_threshold=0.05, cooldown_hours=0,
                     max_consecutive_losses=1000,
                     stop_loss=0.004, take_profit=0.004)
START_KRW = 1_000_000


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv")


class Clock:
    """The simulated hour: the candle source and the fake exchange's prices follow it."""

    def __init__(self, candles: pd.DataFrame, start: int):
        self.candles, self.i = candles, start

    @property
    def now(self):
        return (self.candles.index[self.i] + pd.Timedelta(hours=1)).to_pydatetime()

    def price(self, market: str) -> float:
        return float(self.candles["close"].iloc[self.i])


def books_of(agent) -> dict:
    account = agent.portfolio.account(agent.prices)
    return {"cash": account.cash_krw, "day": agent.portfolio.day, "day_start": account.day_start_equity_krw,
            "positions": {m: p.volume for m, p in agent.portfolio.positions.items()}}


def run_and_restart(mode: str, db_url: str, candles: pd.DataFrame, server_url: str | None = None, book=None) -> dict:
    clock = Clock(candles, 323)  # the day 2025-09-11 (UTC) begins with the first cycle; the restart is mid-day
    env = {"AUTOTRADER_MODE": mode, "MARKETS": "KRW-BTC", "DATABASE_URL": db_url,
           "PAPER_START_KRW": str(START_KRW), "DAILY_SUMMARY_UTC": "off"}
    if mode == "live":
        env.update({"UPBIT_ACCESS_KEY": book.access_key, "UPBIT_SECRET_KEY": book.secret_key,
                    "UPBIT_API_URL": server_url, "MAX_ORDER_KRW": "300000", "MAX_DAILY_KRW": "100000000"})
        book.price_of = clock.price
    settings = load_settings(env, env_file=None)
    source = MemorySource({"KRW-BTC": candles}, 3600)
    manager = MultiCoinModelManager(markets=["KRW-BTC"])
    db = open_database(db_url)
    try:
        agent = trading_agent(settings, db, manager, EAGER, slippage=0.0, source=source, now=clock.now)
        fills = 0
        for _ in range(8):
            clock.i += 1
            fills += sum(r.fill is not None for r in agent.run_cycle(clock.now))
        before = books_of(agent)
        restarted = trading_agent(settings, db, manager, EAGER, slippage=0.0, source=source, now=clock.now)
        after = books_of(restarted)
        account_krw = book.krw if book is not None else restarted.cycle.exchange.cash_krw
        clock.i += 1
        restarted.run_cycle(clock.now)
        with db.connect() as conn:
            texts = alert_texts(db)
            reasons = [r[0] or "" for r in conn.execute(select(signals.c.decision_reason))]
        return {"before": before, "after": after, "fills": fills, "texts": texts, "reasons": reasons,
                "account_krw": account_krw}
    finally:
        db.dispose()


def test_paper_and_live_books_survive_a_restart_alike(db_url, candles, tmp_path):
    paper = run_and_restart("paper", db_url, candles)
    book = FakeExchangeBook(lambda market: 0.0, krw=START_KRW)
    with FakeUpbit({}, exchange=book) as server:
        live = run_and_restart("live", f"sqlite:///{tmp_path / 'live.db'}", candles, server.url, book)
    for run in (paper, live):
        assert run["fills"] >= 2, "the eager settings should have traded"
        assert run["after"]["cash"] == pytest.approx(run["before"]["cash"], abs=1.0)
        assert run["after"]["day"] == run["before"]["day"] == "2025-09-11"
        assert run["after"]["day_start"] == pytest.approx(run["before"]["day_start"], abs=1.0)
        assert run["after"]["positions"] == pytest.approx(run["before"]["positions"])
        assert run["after"]["cash"] == pytest.approx(run["account_krw"], abs=1.0)
        assert not any("deposit" in t or "withdrawal" in t for t in run["texts"])
        assert not any("books not sane" in r or "daily loss" in r or "no KRW available" in r for r in run["reasons"])
    assert live["before"]["cash"] == pytest.approx(paper["before"]["cash"], abs=1.0)
    assert live["before"]["day_start"] == pytest.approx(paper["before"]["day_start"], abs=1.0)
    assert live["after"]["cash"] == pytest.approx(paper["after"]["cash"], abs=1.0)
