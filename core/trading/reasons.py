"""Why did the engine decide what it did? Reasons as a code with parameters, readable as English text.

A Reason carries a `code` and `params`, and reads as an English sentence (for logs and the database),
so the bot can say the same thing in each chat's language (bot/messages.py).
"""
from __future__ import annotations

from core.i18n import N_, _

TEMPLATES: dict[str, str] = {  # English message ids (core/i18n.py): str.format templates of the params
    "emergency": N_("emergency sell: score {score:.2f} > {threshold:.2f}"),
    "stop_loss": N_("stop-loss: {change:+.2%} <= -{limit:.2%}"),
    "take_profit": N_("take-profit: {change:+.2%} >= {limit:.2%}"),
    "trailing_stop": N_("trailing stop: {drop:+.2%} from the peak"),
    "model_sell": N_("model SELL: {sell:.2f} > {threshold:.2f}"),
    "price_shock_candle": N_("price shock: fell {drop:.1%} within the candle (guard: -{drop:.1%} in {minutes} min)"),
    "price_shock": N_("price shock: {fall:+.2%} within {minutes} min (limit -{limit:.1%})"),
    "no_signal": N_("no signal: {error}"),
    "books_not_sane": N_("books not sane ({problem}): not trading until reconciliation fixes them"),
    "model_hold": N_("model HOLD"),
    "sell_nothing_held": N_("model SELL but nothing held"),
    "paused": N_("trading is paused: no new positions"),
    "already_holding": N_("already holding {market}"),
    "max_positions": N_("max open positions reached ({open}/{limit})"),
    "cooldown": N_("cooldown after a sale: {hours_left:.1f} h left"),
    "losing_streak": N_("{losses} losing trades in a row (limit {limit}): buying halted for {hours_left:.1f} h more"),
    "daily_loss": N_("daily loss limit: {day_return:+.2%} today (limit -{limit:.2%})"),
    "no_cash": N_("no KRW available: {cash:,.0f} KRW in cash, a buy needs {minimum:,} KRW plus the fee"),
    "under_minimum": N_("order of {amount:,.0f} KRW is under the {minimum:,} KRW minimum order"),
    "model_buy": N_("model BUY: {buy:.2f} > {threshold:.2f}, confidence {confidence:.2f}, {amount:,.0f} KRW"),
    "manual_sale": N_("sold by command from {by}"),
    "manual_buy": N_("bought by command from {by} for {amount:,.0f} KRW"),
    "no_expected_return": N_("this model has no expected-return calibration: retrain it, or /set decision_rule "
                             "threshold"),
    "expected_buy": N_("expected return {er:+.2%} > {cost:.2%} cost + {margin:.2%} margin, {amount:,.0f} KRW"),
    "expected_low": N_("expected return {er:+.2%}, not above the {needed:.2%} a trade needs"),
    "expected_negative": N_("expected return {er:+.2%} < 0"),
    "renewed": N_("still expected {er:+.2%}: held {hours:g} h more"),
    "held_long_enough": N_("held {hours:g} h without a new entry signal"),
    "unsettled": N_("an earlier order is not settled yet; this market waits until the exchange says what became of it"),
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
            self._text = TEMPLATES[self.code].format(**self.params)
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

    def localized(self) -> str:
        """The reason in the current language (core.i18n); str() stays English for logs."""
        return localized_reason(self.to_data(), str(self))


def reason_data(reason) -> dict | None:
    """What the database keeps of a reason beside its text, so it can be rendered in other languages."""
    return reason.to_data() if isinstance(reason, Reason) else None


def localized_reason(data: dict | None, fallback: str) -> str:
    """A stored reason (`reason_data`) in the current language; `fallback` (the stored English text)
    where there is no code, an unknown one, or parameters its template does not take."""
    if not data or data.get("code") not in TEMPLATES:
        return fallback
    try:
        return _(TEMPLATES[data["code"]]).format(**(data.get("params") or {}))
    except (KeyError, ValueError, TypeError, IndexError):
        return fallback
