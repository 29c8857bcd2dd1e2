import json
from datetime import datetime, timezone

import pytest

from core.trading.backtest import run_backtest
from core.trading.exchange import BelowMinimum, InsufficientFunds
from core.trading.paper import PaperExchange
from core.trading.portfolio import Portfolio
from core.trading.rules import UPBIT_KRW, upbit_krw_tick
from core.trading.types import RiskSettings
from models.manager import MultiCoinModelManager
from tests.conftest import DATA
from tests.test_cli import run_cli

T = datetime(2025, 10, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("price, tick", [(1_500_000, 1000), (700_000, 500), (150_000, 100), (60_000, 50),
                                         (20_000, 10), (7_000, 5), (3_000, 1), (99, 0.1)])
def test_krw_tick_grid(price, tick):
    assert upbit_krw_tick(price) == tick


def test_fee_and_tick_arithmetic_of_a_round_trip():
    ex = PaperExchange(1_000_000, slippage=0.001)
    buy = ex.buy_market("KRW-BTC", 100_000, "a", 164_275_000, T)
    assert buy.price_krw == UPBIT_KRW.round_to_tick(164_275_000 * 1.001, "up") == 164_440_000
    assert buy.fee_krw == pytest.approx(50.0)
    assert ex.cash_krw == pytest.approx(1_000_000 - 100_050)
    sell = ex.sell_market("KRW-BTC", buy.volume, "b", 164_275_000, T)
    assert sell.price_krw == 164_110_000  # 164,110,725 rounded down to the 1,000 tick
    assert sell.fee_krw == pytest.approx(sell.funds_krw * 0.0005)
    assert ex.cash_krw == pytest.approx(1_000_000 - 100_050 + sell.funds_krw - sell.fee_krw)
    assert "KRW-BTC" not in ex.holdings


def test_minimum_order_and_funds_with_fee_headroom():
    ex = PaperExchange(10_000, slippage=0)
    with pytest.raises(BelowMinimum, match="under the 5,000 KRW minimum"):
        ex.buy_market("KRW-XRP", 4_999, "x1", 3_500, T)
    with pytest.raises(InsufficientFunds, match="plus fee"):
        ex.buy_market("KRW-XRP", 10_000, "x2", 3_500, T)  # 10,005 needed with the fee
    fill = ex.buy_market("KRW-XRP", 9_995, "x3", 3_500, T)
    assert ex.cash_krw >= 0 and fill.volume == pytest.approx(9_995 / 3_500)
    with pytest.raises(BelowMinimum):
        ex.sell_market("KRW-XRP", fill.volume / 3, "x4", 3_500, T)
    assert ex.cash_krw >= 0


def test_orders_are_idempotent_on_their_identifier():
    ex = PaperExchange(1_000_000, slippage=0)
    first = ex.buy_market("KRW-ETH", 50_000, "same-id", 5_000_000, T)
    again = ex.buy_market("KRW-ETH", 50_000, "same-id", 5_100_000, T)
    assert again == first and ex.cash_krw == pytest.approx(1_000_000 - 50_025)
    assert ex.order("same-id") == first


def test_portfolio_tracks_trades_and_losing_streaks():
    ex = PaperExchange(1_000_000, slippage=0)
    book = Portfolio(1_000_000, 1_000_000)
    for i, (buy_at, sell_at) in enumerate([(100_000, 99_000), (100_000, 98_000), (100_000, 103_000)]):
        book.apply(ex.buy_market("KRW-SOL", 100_000, f"b{i}", buy_at, T))
        trade = book.apply(ex.sell_market("KRW-SOL", ex.holdings["KRW-SOL"], f"s{i}", sell_at, T))
        if i == 1:
            assert book.account({}).consecutive_losses == 2
    assert trade.return_ratio == pytest.approx(103_000 / 100_000 * 0.9995 / 1.0005 - 1)
    assert book.account({}).consecutive_losses == 0
    assert book.cash_krw == pytest.approx(ex.cash_krw)


@pytest.fixture(scope="module")
def lenient_backtest():
    settings = RiskSettings(entry_margin=0.0025)  # a lower bar than the shipped 0.5%: a few trades in two months
    manager = MultiCoinModelManager(markets=["KRW-BTC", "KRW-ETH"])
    return run_backtest(DATA / "upbit-1h", ["KRW-BTC", "KRW-ETH"], manager, settings=settings)


def test_backtest_trades_and_reports_every_figure(lenient_backtest):
    m = lenient_backtest.metrics
    for key in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "win_rate", "profit_factor",
                "trades", "average_holding_hours", "exposure", "fees_krw"):
        assert key in m and key in lenient_backtest.buy_and_hold_metrics
    assert m["trades"] >= 1 and m["fees_krw"] > 0 and 0 < m["exposure"] < 1
    assert m["end_equity_krw"] == pytest.approx(lenient_backtest.equity.iloc[-1])
    assert lenient_backtest.buy_and_hold_metrics["trades"] == 2


def test_backtest_is_deterministic(lenient_backtest):
    again = run_backtest(DATA / "upbit-1h", ["KRW-BTC", "KRW-ETH"], MultiCoinModelManager(markets=["KRW-BTC", "KRW-ETH"]),
                         settings=RiskSettings(entry_margin=0.0025))
    assert again.decisions() == lenient_backtest.decisions()
    assert again.metrics == lenient_backtest.metrics


def test_a_broken_model_skips_its_market_only(model_copy):
    for weights in model_copy.glob("*/lstm.*"):
        weights.write_bytes(b"broken")
    result = run_backtest(DATA / "upbit-1h", ["KRW-BTC"], MultiCoinModelManager(model_copy, ["KRW-BTC"]))
    errors = [s.error for s in result.steps if s.error]
    assert errors and all("model unavailable" in e for e in errors)
    assert result.metrics["trades"] == 0


def test_backtest_cli_writes_json_and_plot(tmp_path):
    out, plot = tmp_path / "bt.json", tmp_path / "equity.png"
    result = run_cli("backtest", "--markets", "KRW-BTC,KRW-ETH", "--set", "buy_threshold=0.42", "--json", str(out), "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "| Total return |" in result.stdout and "Settings: the built-in defaults except buy_threshold=0.42" in result.stdout
    report = json.loads(out.read_text())
    assert {"open_positions", "settings_changes"} <= set(report) and "total_return" in report["strategy"]
    assert set(report) >= {"strategy", "buy_and_hold", "period"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = run_cli("backtest", "--set", "stop_loss=lots")
    assert bad.returncode == 2 and "stop_loss needs a number" in bad.stderr


def test_a_period_is_simulated_with_the_signals_the_whole_history_gives(btc):
    from core.trading.feeds import PrecomputedFeed

    manager = MultiCoinModelManager(markets=["KRW-BTC"])
    closes = btc.index + (btc.index[1] - btc.index[0])
    first, last = closes[900], closes[960]
    whole = PrecomputedFeed({"KRW-BTC": btc}, manager, 3600)
    period = PrecomputedFeed({"KRW-BTC": btc}, manager, 3600, first, last)
    for now in closes[900:961]:
        assert period.inputs(now.to_pydatetime()) == whole.inputs(now.to_pydatetime())
    assert period.inputs(closes[899].to_pydatetime()) == ({}, {}) and whole.inputs(closes[899].to_pydatetime())[0]
    start = PrecomputedFeed({"KRW-BTC": btc}, manager, 3600, closes[0], closes[200])
    _, errors = start.inputs(closes[10].to_pydatetime())  # too early for a window: said so, not skipped silently
    assert str(errors["KRW-BTC"]) == "warming up: 139 more candles of history needed before its first signal"
    assert start.inputs(closes[148].to_pydatetime())[1]["KRW-BTC"].candles_needed == 1
    assert "KRW-BTC" in start.inputs(closes[149].to_pydatetime())[0]  # the 150th candle ends the first window


def test_backtest_cli_simulates_the_period_asked_for(tmp_path):
    out = tmp_path / "bt.json"
    result = run_cli("backtest", "--start", "2025-10-01", "--end", "2025-10-15T12:00", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["period"] == ["2025-10-01T00:00:00+00:00", "2025-10-15T12:00:00+00:00"] and report["ticks"] == 349
    assert report["buy_and_hold"]["total_return"] is not None  # KRW-SOL has no candle before 10-19: kept in cash
    bad = run_cli("backtest", "--start", "soon")
    assert bad.returncode == 2 and "--start: expected a date" in bad.stderr
