"""Why did the engine decide what it did? Reasons as a code with parameters, readable as English text.

A Reason carries a `code` and `params`, and reads as an English sentence (for logs and the database),
so the bot can say the same thing in each chat's language (bot/messages.py).
"""
from __future__ import annotations

from typing import Callable

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
    "losing_streak": lambda losses, limit, hours_left: (f"{losses} losing trades in a row (limit {limit}): buying "
                                                        f"halted for {hours_left:.1f} h more"),
    "daily_loss": lambda day_return, limit: f"daily loss limit: {day_return:+.2%} today (limit -{limit:.2%})",
    "no_cash": lambda cash, minimum: f"no KRW available: {cash:,.0f} KRW in cash, a buy needs {minimum:,} KRW plus the fee",
    "under_minimum": lambda amount, minimum: f"order of {amount:,.0f} KRW is under the {minimum:,} KRW minimum order",
    "model_buy": lambda buy, threshold, confidence, amount: (f"model BUY: {buy:.2f} > {threshold:.2f}, confidence "
                                                             f"{confidence:.2f}, {amount:,.0f} KRW"),
    "manual_sale": lambda by: f"sold by command from {by}",
    "manual_buy": lambda by, amount: f"bought by command from {by} for {amount:,.0f} KRW",
    "no_expected_return": lambda: ("this model has no expected-return calibration: retrain it, or /set decision_rule "
                                   "threshold"),
    "expected_buy": lambda er, cost, margin, amount: (f"expected return {er:+.2%} > {cost:.2%} cost + {margin:.2%} "
                                                      f"margin, {amount:,.0f} KRW"),
    "expected_low": lambda er, needed: f"expected return {er:+.2%}, not above the {needed:.2%} a trade needs",
    "expected_negative": lambda er: f"expected return {er:+.2%} < 0",
    "renewed": lambda er, hours: f"still expected {er:+.2%}: held {hours:g} h more",
    "held_long_enough": lambda hours: f"held {hours:g} h without a new entry signal",
    "unsettled": lambda: "an earlier order is not settled yet; this market waits until the exchange says what became of it",
}


class Reason:
    """A decision's reason: its code and parameters, and the English text they make (formatted when
    first read: a simulation decides millions of times and reads few of them). It compares, contains,
    formats and concatenates like that text."""

    __slots__ = ("code", "params", "_text")

    def __init__(self, code: str, **params):
        if code not in TEMPLATES:
            raise ValueError(f"unknown reason {code!r}")
        self.code, self.params, self._text = code, params, None

    def __str__(self) -> str:
        if self._text is None:
            self._text = TEMPLATES[self.code](**self.params)
        return self._text

    def __repr__(self) -> str:
        return f"Reason({self.code!r}: {str(self)!r})"

    def __eq__(self, other) -> bool:
        return str(self) == str(other) if isinstance(other, (str, Reason)) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __contains__(self, text: str) -> bool:
        return text in str(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)

    def startswith(self, prefix) -> bool:
        return str(self).startswith(prefix)

    def to_data(self) -> dict:
        return {"code": self.code, "params": dict(self.params)}


def reason_data(reason) -> dict | None:
    """What the database keeps of a reason beside its text, so it can be rendered in other languages."""
    return reason.to_data() if isinstance(reason, Reason) else None
