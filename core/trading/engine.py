"""When do we buy, sell or hold? TradingEngine.decide and its rules, each a small function.

Two decision rules, chosen by the `decision_rule` setting:
- expected_return (the default): buy when the calibrated expected forward return beats the cost of a
  round trip (fees and slippage both ways) plus `entry_margin`; sell when it turns negative, or when a
  position has been held `max_hold_hours` without a new entry signal (the label's horizon);
- threshold (the user guide's): buy when the buy probability beats the sell probability and
  `buy_threshold`, sell symmetrically.
Exit rules (emergency, stop-loss, take-profit, trailing stop, the model's exit) run even while trading
is paused; only opening positions is paused. An emergency sale ignores every other rule.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from core.trading.exchange import ExchangeRules
from core.trading.reasons import Reason
from core.trading.rules import UPBIT_KRW
from core.trading.types import Account, Decision, DecisionKind, Position, RiskSettings
from models.signal import Action, MLSignal


def _sell(market: str, kind: DecisionKind, reason: Reason) -> Decision:
    return Decision(market=market, approved=True, action=Action.SELL, investment_ratio=1.0, reason=reason, kind=kind)


def _reject(market: str, action: str, reason: Reason) -> Decision:
    return Decision(market=market, approved=False, action=Action(action), investment_ratio=0.0, reason=reason)


def emergency_exit(signal: MLSignal, position: Position | None, settings: RiskSettings) -> Decision | None:
    if position is not None and signal.is_emergency(settings.emergency_threshold):
        return _sell(signal.market, DecisionKind.EMERGENCY,
                     Reason("emergency", score=signal.emergency_score, threshold=settings.emergency_threshold))
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
    return _sell(position.market, DecisionKind.EMERGENCY,
                 Reason("price_shock_candle", drop=drop, minutes=seconds // 60)), trigger


def stop_loss_exit(position: Position | None, price_krw: float, settings: RiskSettings) -> Decision | None:
    if position is not None and settings.stop_loss > 0 and position.return_ratio(price_krw) <= -settings.stop_loss:
        return _sell(position.market, DecisionKind.STOP_LOSS,
                     Reason("stop_loss", change=position.return_ratio(price_krw), limit=settings.stop_loss))
    return None


def take_profit_exit(position: Position | None, price_krw: float, settings: RiskSettings) -> Decision | None:
    if position is not None and settings.take_profit > 0 and position.return_ratio(price_krw) >= settings.take_profit:
        return _sell(position.market, DecisionKind.TAKE_PROFIT,
                     Reason("take_profit", change=position.return_ratio(price_krw), limit=settings.take_profit))
    return None


def trailing_stop_exit(position: Position | None, price_krw: float, settings: RiskSettings) -> Decision | None:
    """Sell when the price falls `trailing_stop` below its peak since entry, once the peak is in profit."""
    if position is None or settings.trailing_stop <= 0 or position.peak_price_krw <= position.avg_price_krw:
        return None
    drop = price_krw / position.peak_price_krw - 1.0
    if drop <= -settings.trailing_stop:
        return _sell(position.market, DecisionKind.TRAILING_STOP, Reason("trailing_stop", drop=drop))
    return None


def signal_exit(signal: MLSignal, position: Position | None, settings: RiskSettings) -> Decision | None:
    if position is None or not signal.ok:
        return None
    if settings.decision_rule == "expected_return":
        if signal.expected_return is not None and signal.expected_return < 0:
            return _sell(signal.market, DecisionKind.SIGNAL, Reason("expected_negative", er=signal.expected_return))
        return None
    if signal.action_at(settings.buy_threshold, settings.sell_threshold) == Action.SELL:
        return _sell(signal.market, DecisionKind.SIGNAL,
                     Reason("model_sell", sell=signal.sell_probability, threshold=settings.sell_threshold))
    return None


def entry_bar(settings: RiskSettings, rules: ExchangeRules) -> float:
    """The expected return a trade must beat: a round trip's cost plus the margin."""
    return rules.round_trip_cost + settings.entry_margin


def renewal(signal: MLSignal, position: Position | None, settings: RiskSettings, rules: ExchangeRules) -> Decision | None:
    """A held market with a new entry signal is held for another horizon (expected_return rule)."""
    if (position is None or settings.decision_rule != "expected_return" or not signal.ok
            or signal.expected_return is None or signal.expected_return <= entry_bar(settings, rules)):
        return None
    return Decision(market=signal.market, approved=False, action=Action.BUY, investment_ratio=0.0, renew=True,
                    reason=Reason("renewed", er=signal.expected_return, hours=settings.max_hold_hours))


def time_exit(position: Position | None, settings: RiskSettings, now: datetime) -> Decision | None:
    """Sold once held `max_hold_hours` since the last entry signal (expected_return rule; 0 = off)."""
    if position is None or settings.decision_rule != "expected_return" or settings.max_hold_hours <= 0:
        return None
    since = position.renewed_at or position.opened_at
    if now - since >= timedelta(hours=settings.max_hold_hours):
        return _sell(position.market, DecisionKind.TIME_EXIT, Reason("held_long_enough", hours=settings.max_hold_hours))
    return None


def expected_return_size(signal: MLSignal, settings: RiskSettings, rules: ExchangeRules,
                         volatility: float | None) -> float:
    """Share of equity for a new position (expected_return rule): `max_position_ratio`, or with
    `sizing=kelly` a fraction of Kelly's bet for the edge over costs and the variance of returns over
    the holding period (hourly volatility^2 x hours), never more than `max_position_ratio`."""
    if settings.sizing != "kelly" or not volatility or volatility <= 0:
        return settings.max_position_ratio
    hours = settings.max_hold_hours or 12.0
    edge = signal.expected_return - rules.round_trip_cost
    kelly = edge / (volatility ** 2 * hours)
    return max(0.0, min(settings.max_position_ratio, settings.kelly_fraction * kelly))


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


def buy_guard(signal: MLSignal | str, position: Position | None, account: Account, settings: RiskSettings,
              now: datetime) -> Reason | None:
    """The reason a BUY of the signal's market (or of a market named) may not open now, or None."""
    market = signal if isinstance(signal, str) else signal.market
    if settings.paused:
        return Reason("paused")
    if position is not None:
        return Reason("already_holding", market=market)
    if account.open_positions >= settings.max_positions:
        return Reason("max_positions", open=account.open_positions, limit=settings.max_positions)
    last_sell = account.last_sell_at.get(market)
    if last_sell is not None and now - last_sell < timedelta(hours=settings.cooldown_hours):
        left = timedelta(hours=settings.cooldown_hours) - (now - last_sell)
        return Reason("cooldown", hours_left=left.total_seconds() / 3600)
    if account.consecutive_losses >= settings.max_consecutive_losses:
        last = max(account.last_sell_at.values(), default=None)
        pause = timedelta(hours=settings.loss_pause_hours)
        if last is None or now - last < pause:
            left = pause - (now - last) if last is not None else pause
            return Reason("losing_streak", losses=account.consecutive_losses, limit=settings.max_consecutive_losses,
                          hours_left=left.total_seconds() / 3600)
    if account.day_return <= -settings.daily_loss_limit:
        return Reason("daily_loss", day_return=account.day_return, limit=settings.daily_loss_limit)
    return None


def buy_refusal(market: str, position: Position | None, account: Account, settings: RiskSettings,
                rules: ExchangeRules, now: datetime) -> Reason | None:
    """Why a buy of `market` may not open now (the guards, then cash for a minimum order), or None:
    the one check for the engine's buys and for buys by command."""
    refusal = buy_guard(market, position, account, settings, now)
    if refusal is not None:
        return refusal
    if rules.max_buy_amount_krw(account.cash_krw) < rules.min_order_krw:
        return Reason("no_cash", cash=account.cash_krw, minimum=rules.min_order_krw)
    return None


def manual_buy(market: str, amount_krw: float | None, position: Position | None, account: Account,
               settings: RiskSettings, rules: ExchangeRules, now: datetime, by: str) -> Decision:
    """A buy ordered by command (/buy): the same books check, guards and cash rules as the engine's
    own buys; `amount_krw` None buys a full position (max_position_ratio of equity)."""
    problem = books_problem(account)
    if problem is not None:
        return _reject(market, Action.BUY, Reason("books_not_sane", problem=problem))
    refusal = buy_refusal(market, position, account, settings, rules, now)
    if refusal is not None:
        return _reject(market, Action.BUY, refusal)
    spendable = rules.max_buy_amount_krw(account.cash_krw)
    wanted = amount_krw if amount_krw is not None else settings.max_position_ratio * account.equity_krw
    amount = min(wanted, spendable)
    if amount < rules.min_order_krw:
        return _reject(market, Action.BUY, Reason("under_minimum", amount=amount, minimum=rules.min_order_krw))
    return Decision(market=market, approved=True, action=Action.BUY, investment_ratio=amount / account.equity_krw,
                    reason=Reason("manual_buy", by=by, amount=amount), kind=DecisionKind.MANUAL)


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
               price_krw: float, now: datetime, rules: ExchangeRules = UPBIT_KRW,
               volatility: float | None = None) -> Decision:
        market = signal.market
        if position is not None:  # exit rules, in order of precedence
            decision = (emergency_exit(signal, position, settings) or stop_loss_exit(position, price_krw, settings)
                        or take_profit_exit(position, price_krw, settings)
                        or trailing_stop_exit(position, price_krw, settings) or signal_exit(signal, position, settings)
                        or renewal(signal, position, settings, rules) or time_exit(position, settings, now))
            if decision is not None:
                return decision
        if not signal.ok:
            return _reject(market, Action.HOLD, Reason("no_signal", error=signal.error))
        if settings.decision_rule == "expected_return":
            if signal.expected_return is None:
                return _reject(market, Action.HOLD, Reason("no_expected_return"))
            wanted = signal.expected_return > entry_bar(settings, rules)
            action = Action.BUY if wanted else Action.HOLD
        else:
            action = signal.action_at(settings.buy_threshold, settings.sell_threshold)
        problem = books_problem(account)  # exits above need no cash; nothing opens on broken books
        if problem is not None:
            return _reject(market, action, Reason("books_not_sane", problem=problem))
        if action != Action.BUY:
            if settings.decision_rule == "expected_return":
                return _reject(market, action, Reason("expected_low", er=signal.expected_return,
                                                      needed=entry_bar(settings, rules)))
            return _reject(market, action, Reason("model_hold" if action == Action.HOLD else "sell_nothing_held"))
        refusal = buy_refusal(market, position, account, settings, rules, now)
        if refusal is not None:
            return _reject(market, Action.BUY, refusal)
        spendable = rules.max_buy_amount_krw(account.cash_krw)
        if settings.decision_rule == "expected_return":
            ratio = expected_return_size(signal, settings, rules, volatility)
        else:
            ratio = position_size_ratio(signal, account, settings)
        amount = min(ratio * account.equity_krw, spendable)
        if amount < rules.min_order_krw:
            return _reject(market, Action.BUY, Reason("under_minimum", amount=amount, minimum=rules.min_order_krw))
        if settings.decision_rule == "expected_return":
            reason = Reason("expected_buy", er=signal.expected_return, cost=rules.round_trip_cost,
                            margin=settings.entry_margin, amount=amount)
        else:
            reason = Reason("model_buy", buy=signal.buy_probability, threshold=settings.buy_threshold,
                            confidence=signal.confidence, amount=amount)
        return Decision(market=market, approved=True, action=Action.BUY, investment_ratio=amount / account.equity_krw,
                        reason=reason)
