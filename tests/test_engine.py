from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from core.trading.engine import TradingEngine, buy_guard, position_size_ratio
from core.trading.types import Account, Position, RiskSettings
from models.signal import MLSignal

NOW = datetime(2025, 10, 1, 12, tzinfo=timezone.utc)
ENGINE = TradingEngine()


def R(**changes) -> RiskSettings:
    """These tests are of the user guide's threshold rule (tests/test_decisions.py: the expected-return rule)."""
    return RiskSettings(**{"decision_rule": "threshold", **changes})


def sig(sell, hold, buy, market="KRW-BTC"):
    return MLSignal.from_probabilities(market, [sell, hold, buy])


def account(cash=1_000_000.0, positions=None, equity=None, day_start=None, losses=0, avg=0.0, last_sell=None):
    positions = positions or {}
    equity = equity if equity is not None else cash + sum(p.cost_krw for p in positions.values())
    return Account(cash, 1_000_000.0, positions, equity, day_start or equity, losses, avg, last_sell or {})


def pos(avg=100_000.0, peak=None, market="KRW-BTC", volume=1.0):
    return Position(market, volume, avg, NOW - timedelta(hours=5), peak or avg)


BUY = sig(0.1, 0.2, 0.7)  # confidence 0.5
HOLD = sig(0.3, 0.4, 0.3)


def test_buy_is_sized_by_confidence_and_capped():
    d = ENGINE.decide(BUY, None, account(), R(), 100_000, NOW)
    assert d.approved and d.action == "BUY" and d.investment_ratio == pytest.approx(0.3)
    weak = sig(0.19, 0.25, 0.56)  # confidence 0.31
    assert ENGINE.decide(weak, None, account(), R(), 100_000, NOW).investment_ratio == pytest.approx(0.3 * 0.31 / 0.5)


def test_sizing_shrinks_after_losses():
    settings = R()
    assert position_size_ratio(BUY, account(losses=2), settings) == pytest.approx(0.15)
    assert position_size_ratio(BUY, account(avg=-0.02), settings) == pytest.approx(0.3 * 0.8)


def test_hold_and_thresholds():
    assert ENGINE.decide(HOLD, None, account(), R(), 100_000, NOW).reason == "model HOLD"
    lenient = R(buy_threshold=0.25)
    assert ENGINE.decide(sig(0.2, 0.5, 0.3), None, account(), lenient, 100_000, NOW).approved


@pytest.mark.parametrize(
    "acct, settings, reason",
    [
        (account(), R(paused=True), "trading is paused"),
        (account(positions={m: pos(market=m) for m in ("KRW-ETH", "KRW-XRP", "KRW-SOL")}), R(), "max open positions reached (3/3)"),
        (account(last_sell={"KRW-BTC": NOW - timedelta(hours=2)}), R(), "cooldown after a sale: 4.0 h left"),
        (account(losses=3, last_sell={"KRW-ETH": NOW - timedelta(hours=2)}), R(), "3 losing trades in a row"),
        (account(equity=940_000, day_start=1_000_000), R(), "daily loss limit: -6.00% today"),
    ],
)
def test_buy_guards_reject_with_a_reason(acct, settings, reason):
    d = ENGINE.decide(BUY, None, acct, settings, 100_000, NOW)
    assert not d.approved and d.action == "BUY" and reason in d.reason
    assert buy_guard(BUY, None, acct, settings, NOW) is not None


def test_cooldown_expires():
    acct = account(last_sell={"KRW-BTC": NOW - timedelta(hours=7)})
    assert ENGINE.decide(BUY, None, acct, R(), 100_000, NOW).approved


def test_already_holding_and_minimum_order():
    assert "already holding" in ENGINE.decide(BUY, pos(), account(), R(), 100_000, NOW).reason
    small = account(cash=100_000.0)
    d = ENGINE.decide(BUY, None, small, R(max_position_ratio=0.04), 100_000, NOW)
    assert not d.approved and d.reason == "order of 4,000 KRW is under the 5,000 KRW minimum order"


@pytest.mark.parametrize("cash", [4_000.0, 0.0, 5_001.0])
def test_no_spendable_cash_is_refused_by_name_never_a_negative_order(cash):
    held = {"KRW-ETH": pos(market="KRW-ETH", avg=500_000.0)}
    d = ENGINE.decide(BUY, None, account(cash=cash, positions=held), R(max_position_ratio=1.0), 100_000, NOW)
    assert not d.approved and d.investment_ratio == 0
    assert d.reason == f"no KRW available: {cash:,.0f} KRW in cash, a buy needs 5,000 KRW plus the fee"


@pytest.mark.parametrize("acct, problem", [
    (account(cash=-114_930.0, equity=885_070.0), "cash is -114,930 KRW"),
    (account(cash=0.0, equity=0.0), "equity is 0 KRW"),
    (account(day_start=-5.0), "the day started from -5 KRW"),
])
def test_broken_books_open_nothing_but_exits_still_run(acct, problem):
    from core.trading.engine import books_problem

    assert books_problem(acct) == problem
    d = ENGINE.decide(BUY, None, acct, R(), 100_000, NOW)
    assert not d.approved and d.reason == f"books not sane ({problem}): not trading until reconciliation fixes them"
    falling = ENGINE.decide(HOLD, pos(avg=100_000.0), acct, R(), 90_000, NOW)  # -10%: the stop-loss
    assert falling.approved and falling.kind == "stop_loss"
    assert books_problem(account()) is None


def test_buy_keeps_headroom_for_the_fee():
    acct = account(cash=10_000.0, equity=10_000.0)
    d = ENGINE.decide(BUY, None, acct, R(max_position_ratio=1.0), 100_000, NOW)
    assert d.approved and d.investment_ratio * 10_000 <= 10_000 / 1.0005


@pytest.mark.parametrize(
    "price, peak, kind",
    [
        (96_900, None, "stop_loss"),
        (106_100, None, "take_profit"),
        (101_800, 105_000, "trailing_stop"),
    ],
)
def test_exits(price, peak, kind):
    d = ENGINE.decide(HOLD, pos(peak=peak), account(), R(), price, NOW)
    assert d.approved and d.action == "SELL" and d.investment_ratio == 1.0 and d.kind == kind


def test_no_trailing_stop_before_the_peak_is_in_profit():
    assert not ENGINE.decide(HOLD, pos(peak=100_000), account(), R(), 98_000, NOW).approved


def test_model_sell_exits_a_position_and_is_refused_without_one():
    s = sig(0.6, 0.3, 0.1)
    d = ENGINE.decide(s, pos(), account(), R(), 100_000, NOW)
    assert d.approved and d.kind == "signal" and d.action == "SELL"
    assert ENGINE.decide(s, None, account(), R(), 100_000, NOW).reason == "model SELL but nothing held"


def test_emergency_sell_overrides_everything_even_when_paused():
    panic = sig(0.95, 0.04, 0.01)  # emergency score 0.86
    settings = R(paused=True, sell_threshold=0.99, stop_loss=0, take_profit=0, trailing_stop=0)
    d = ENGINE.decide(panic, pos(), account(), settings, 100_000, NOW)
    assert d.approved and d.kind == "emergency" and d.investment_ratio == 1.0 and "0.86 > 0.70" in d.reason
    assert ENGINE.decide(panic, pos(), account(), replace(settings, emergency_threshold=0.9), 100_000, NOW).kind != "emergency"


def test_pause_still_allows_exits_but_no_entries():
    paused = R(paused=True)
    assert ENGINE.decide(HOLD, pos(), account(), paused, 96_000, NOW).kind == "stop_loss"
    assert not ENGINE.decide(BUY, None, account(), paused, 100_000, NOW).approved


def test_failed_signal_never_opens_but_stops_still_work():
    failed = MLSignal.failed("KRW-BTC", "model missing")
    assert "no signal: model missing" in ENGINE.decide(failed, None, account(), R(), 100_000, NOW).reason
    assert ENGINE.decide(failed, pos(), account(), R(), 96_000, NOW).kind == "stop_loss"


def test_risk_settings_from_user_text():
    s = RiskSettings().with_value("stop_loss", "0.05").with_value("max_positions", "4")
    assert s.stop_loss == 0.05 and s.max_positions == 4
    with pytest.raises(ValueError, match="must be between 0 and 1"):
        RiskSettings().with_value("buy_threshold", "1.5")
    with pytest.raises(ValueError, match="needs a number"):
        RiskSettings().with_value("stop_loss", "abc")
    with pytest.raises(ValueError, match="whole number"):
        RiskSettings().with_value("max_positions", "2.5")
    with pytest.raises(ValueError, match="unknown parameter"):
        RiskSettings().with_value("paused", "1")


def test_a_losing_streak_pauses_buying_for_a_while_not_for_ever():
    recent = account(losses=3, last_sell={"KRW-ETH": NOW - timedelta(hours=2)})
    d = ENGINE.decide(BUY, None, recent, R(), 100_000, NOW)
    assert not d.approved and d.reason == "3 losing trades in a row (limit 3): buying halted for 22.0 h more"
    later = account(losses=3, last_sell={"KRW-ETH": NOW - timedelta(hours=25)})
    assert ENGINE.decide(BUY, None, later, R(), 100_000, NOW).approved  # the pause is over: one more try
    assert ENGINE.decide(BUY, None, later, R(loss_pause_hours=48), 100_000, NOW).reason.startswith("3 losing")
