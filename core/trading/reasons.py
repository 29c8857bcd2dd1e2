"""Why did the engine decide what it did? Reasons as a code with parameters, readable as English text.

A Reason is a `str` (the English sentence, for logs and the database) that also carries its `code`
and `params`, so the bot can say the same thing in each chat's language (bot/messages.py).
"""
from __future__ import annotations

from typing import Callable, Mapping

TEMPLATES: dict[str, Callable[..., str]] = {
    "emergency": lambda score, threshold: f"emergency sell: score {score:.2f} > {threshold:.2f}",
    "stop_loss": lambda change, limit: f"stop-loss: {change:+.2%} <= -{limit:.2%}",
    "take_profit": lambda change, limit: f"take-profit: {change:+.2%} >= {limit:.2%}",
    "trailing_stop": lambda drop: f"trailing stop: {drop:+.2%} from the peak",
    "model_sell": lambda sell, threshold: f"model SELL: {sell:.2f} > {threshold:.2f}",
    "price_shock_candle": lambda drop, minutes: (f"price shock: fell {drop:.1%} within the candle (guard: -{drop:.1%} "
                                                 f"in {minutes} min)"),
    "price_shock": lambda fall, minutes, limit: f"price shock: {fall:+.2%} within {minutes} min (limit -{limit:.1%})",
    "no_signal": lambda error: f"no signal: {error}",
    "books_not_sane": lambda problem: f"books not sane ({problem}): not trading until reconciliation fixes them",
    "model_hold": lambda: "model HOLD",
    "sell_nothing_held": lambda: "model SELL but nothing held",
    "paused": lambda: "trading is paused: no new positions",
    "already_holding": lambda market: f"already holding {market}",
    "max_positions": lambda open, limit: f"max open positions reached ({open}/{limit})",
    "cooldown": lambda hours_left: f"cooldown after a sale: {hours_left:.1f} h left",
    "losing_streak": lambda losses, limit: f"{losses} losing trades in a row (limit {limit}): buying halted",
    "daily_loss": lambda day_return, limit: f"daily loss limit: {day_return:+.2%} today (limit -{limit:.2%})",
    "no_cash": lambda cash, minimum: f"no KRW available: {cash:,.0f} KRW in cash, a buy needs {minimum:,} KRW plus the fee",
    "under_minimum": lambda amount, minimum: f"order of {amount:,.0f} KRW is under the {minimum:,} KRW minimum order",
    "model_buy": lambda buy, threshold, confidence, amount: (f"model BUY: {buy:.2f} > {threshold:.2f}, confidence "
                                                             f"{confidence:.2f}, {amount:,.0f} KRW"),
    "manual_sale": lambda by: f"sold by command from {by}",
    "unsettled": lambda: "an earlier order is not settled yet; this market waits until the exchange says what became of it",
}


class Reason(str):
    """The English text of a decision's reason, with the code and parameters it was made from."""

    code: str
    params: Mapping[str, object]

    def __new__(cls, code: str, **params) -> "Reason":
        text = TEMPLATES[code](**params)
        reason = super().__new__(cls, text)
        reason.code, reason.params = code, dict(params)
        return reason

    def __reduce__(self):
        return (_rebuild, (self.code, dict(self.params)))

    def to_data(self) -> dict:
        return {"code": self.code, "params": dict(self.params)}


def _rebuild(code: str, params: dict) -> Reason:
    return Reason(code, **params)


def reason_data(reason: str | None) -> dict | None:
    """What the database keeps of a reason beside its text, so it can be rendered in other languages."""
    return reason.to_data() if isinstance(reason, Reason) else None
