"""When do we buy, sell or hold? TradingEngine.decide and its rules, each a small function.

Exit rules (emergency, stop-loss, take-profit, trailing stop, model SELL) run even while trading is
paused; only opening positions is paused. An emergency sale ignores every other rule.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from core.trading.exchange import ExchangeRules
from core.trading.rules import UPBIT_KRW
from core.trading.types import Account, Decision, Position, RiskSettings
from models.signal import MLSignal


def _sell(market: str, kind: str, reason: str) -> Decision:
    return Decision(market, True, "SELL", 1.0, reason, kind)


def _reject(market: str, action: str, reason: str) -> Decision:
    return Decision(market, False, action, 0.0, reason)


def emergency_exit(signal: MLSignal, position: Position | None, settings: RiskSettings) -> Decision | None:
    if position is not None and signal.is_emergency(settings.emergency_threshold):
        return _sell(signal.market, "emergency",
                     f"emergency sell: score {signal.emergency_score:.2f} > {settings.emergency_threshold:.2f}")
    return None


def candle_shock_exit(position: Position | None, open_krw: float | None, low_krw: float | None,
                      settings: RiskSettings) -> tuple[Decision, float] | None:
    """The price-shock guard judged on a closed candle (backtest and replay): a fall from its open to
    its low beyond the guard's widest enabled threshold sells at that threshold's price. Candles are
    too coarse to tell a 1-minute fall from a slow one, so only the largest fall counts."""
    if position is None or open_krw is None or low_krw is None or not settings.shock_windows:
        return None
    seconds, drop = settings.shock_windows[-1]
    trigger = open_krw * (1.0 - drop)
    if low_krw > trigger:
        return None
    return (_sell(position.market, "emergency",
                  f"price shock: fell {drop:.1%} within the candle (guard: -{drop:.1%} in {seconds // 60} min)"), trigger)


def stop_loss_exit(position: Position | None, price_krw: float, settings: RiskSettings) -> Decision | None:
    if position is not None and settings.stop_loss > 0 and position.return_ratio(price_krw) <= -settings.stop_loss:
        return _sell(position.market, "stop_loss",
                     f"stop-loss: {position.return_ratio(price_krw):+.2%} <= -{settings.stop_loss:.2%}")
    return None


def take_profit_exit(position: Position | None, price_krw: float, settings: RiskSettings) -> Decision | None:
    if position is not None and settings.take_profit > 0 and position.return_ratio(price_krw) >= settings.take_profit:
        return _sell(position.market, "take_profit",
                     f"take-profit: {position.return_ratio(price_krw):+.2%} >= {settings.take_profit:.2%}")
    return None


def trailing_stop_exit(position: Position | None, price_krw: float, settings: RiskSettings) -> Decision | None:
    """Sell when the price falls `trailing_stop` below its peak since entry, once the peak is in profit."""
    if position is None or settings.trailing_stop <= 0 or position.peak_price_krw <= position.avg_price_krw:
        return None
    drop = price_krw / position.peak_price_krw - 1.0
    if drop <= -settings.trailing_stop:
        return _sell(position.market, "trailing_stop", f"trailing stop: {drop:+.2%} from the peak")
    return None


def signal_exit(signal: MLSignal, position: Position | None, settings: RiskSettings) -> Decision | None:
    if position is not None and signal.action_at(settings.buy_threshold, settings.sell_threshold) == "SELL":
        return _sell(signal.market, "signal", f"model SELL: {signal.sell_probability:.2f} > {settings.sell_threshold:.2f}")
    return None


CASH_TOLERANCE_KRW = 1.0


def books_problem(account: Account) -> str | None:
    """What makes the books unfit to decide on, or None: cash below zero, no equity, no day start."""
    if account.cash_krw < -CASH_TOLERANCE_KRW:
        return f"cash is {account.cash_krw:,.0f} KRW"
    if account.equity_krw <= 0:
        return f"equity is {account.equity_krw:,.0f} KRW"
    if account.day_start_equity_krw <= 0:
        return f"the day started from {account.day_start_equity_krw:,.0f} KRW"
    return None


def buy_guard(signal: MLSignal, position: Position | None, account: Account, settings: RiskSettings,
              now: datetime) -> str | None:
    """The reason a BUY may not open now, or None."""
    if settings.paused:
        return "trading is paused: no new positions"
    if position is not None:
        return f"already holding {signal.market}"
    if account.open_positions >= settings.max_positions:
        return f"max open positions reached ({account.open_positions}/{settings.max_positions})"
    last_sell = account.last_sell_at.get(signal.market)
    if last_sell is not None and now - last_sell < timedelta(hours=settings.cooldown_hours):
        left = timedelta(hours=settings.cooldown_hours) - (now - last_sell)
        return f"cooldown after a sale: {left.total_seconds() / 3600:.1f} h left"
    if account.consecutive_losses >= settings.max_consecutive_losses:
        return f"{account.consecutive_losses} losing trades in a row (limit {settings.max_consecutive_losses}): buying halted"
    if account.day_return <= -settings.daily_loss_limit:
        return f"daily loss limit: {account.day_return:+.2%} today (limit -{settings.daily_loss_limit:.2%})"
    return None


def position_size_ratio(signal: MLSignal, account: Account, settings: RiskSettings) -> float:
    """Share of equity for a new position: grows with confidence, shrinks after losses.

    Full size (`max_position_ratio`) at confidence 0.5 or more; a quarter of it at the lowest.
    Halved after two consecutive losses, and reduced by a negative average trade return.
    """
    scale = min(1.0, max(0.25, signal.confidence / 0.5))
    if account.consecutive_losses >= 2:
        scale *= 0.5
    if account.average_return < 0:
        scale *= max(0.5, 1.0 + account.average_return * 10)
    return settings.max_position_ratio * scale


class TradingEngine:
    def decide(self, signal: MLSignal, position: Position | None, account: Account, settings: RiskSettings,
               price_krw: float, now: datetime, rules: ExchangeRules = UPBIT_KRW) -> Decision:
        market = signal.market
        if position is not None:  # exit rules, in order of precedence
            decision = (emergency_exit(signal, position, settings) or stop_loss_exit(position, price_krw, settings)
                        or take_profit_exit(position, price_krw, settings)
                        or trailing_stop_exit(position, price_krw, settings) or signal_exit(signal, position, settings))
            if decision is not None:
                return decision
        if not signal.ok:
            return _reject(market, "HOLD", f"no signal: {signal.error}")
        action = signal.action_at(settings.buy_threshold, settings.sell_threshold)
        problem = books_problem(account)  # exits above need no cash; nothing opens on broken books
        if problem is not None:
            return _reject(market, action, f"books not sane ({problem}): not trading until reconciliation fixes them")
        if action != "BUY":
            return _reject(market, action, "model HOLD" if action == "HOLD" else "model SELL but nothing held")
        refusal = buy_guard(signal, position, account, settings, now)
        if refusal is not None:
            return _reject(market, "BUY", refusal)
        spendable = rules.max_buy_amount_krw(account.cash_krw)
        if spendable < rules.min_order_krw:
            return _reject(market, "BUY", f"no KRW available: {account.cash_krw:,.0f} KRW in cash, a buy needs "
                                          f"{rules.min_order_krw:,} KRW plus the fee")
        ratio = position_size_ratio(signal, account, settings)
        amount = min(ratio * account.equity_krw, spendable)
        if amount < rules.min_order_krw:
            return _reject(market, "BUY", f"order of {amount:,.0f} KRW is under the {rules.min_order_krw:,} KRW "
                                          f"minimum order")
        return Decision(market, True, "BUY", amount / account.equity_krw,
                        f"model BUY: {signal.buy_probability:.2f} > {settings.buy_threshold:.2f}, "
                        f"confidence {signal.confidence:.2f}, {amount:,.0f} KRW")
