"""What do users hear about? Events from the trading cycle, as plain text with a kind and a priority.

Events go into the outbox table in the same transaction as the step that caused them, so an alert
is sent if and only if its step was stored. Emergency sells carry the highest priority and are
delivered first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Alert kinds users can switch on or off one by one.
KINDS = ("emergency", "account", "exit", "fill", "signal", "error", "system", "summary")
PRIORITY = {"emergency": 100, "account": 60, "error": 50, "exit": 40, "fill": 30, "system": 20, "signal": 10,
            "summary": 0}
# Reconciliation notices (a balance adopted from the exchange, an order settled after a fault) go
# to admins only: they are about the account, and only admins can act on them.
ADMIN_ONLY_KINDS = ("account",)

EXIT_TITLES = {"stop_loss": "Stop-loss", "take_profit": "Take-profit", "trailing_stop": "Trailing stop",
               "manual": "Manual sale"}


@dataclass(frozen=True)
class Event:
    kind: str
    text: str
    at: datetime
    market: str | None = None

    @property
    def priority(self) -> int:
        return PRIORITY[self.kind]


def _krw(value: float) -> str:
    return f"{value:,.0f} KRW"


def _volume(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".")


def _worth_telling(decision) -> bool:
    """BUY and SELL signals, except those that could never trade: a SELL with nothing held, or a BUY
    for a coin already held (announced once, when bought, not every hour after)."""
    if decision.kind != "signal" or decision.action not in ("BUY", "SELL"):
        return False
    if decision.approved:
        return True
    return decision.action == "BUY" and not decision.reason.startswith("already holding")


def step_events(result) -> list[Event]:
    """Events for one StepResult (core.trading.cycle): signals, fills, exits, emergencies, errors."""
    events: list[Event] = []
    at, market = result.at, result.market
    signal, decision, fill, trade = result.signal, result.decision, result.fill, result.trade
    if signal is not None and signal.ok and decision is not None and _worth_telling(decision):
        outcome = "traded" if fill is not None else f"not traded: {decision.reason}"
        events.append(Event("signal", f"{market} {decision.action} signal: buy {signal.buy_probability:.2f} / "
                                      f"hold {signal.hold_probability:.2f} / sell {signal.sell_probability:.2f}, "
                                      f"confidence {signal.confidence:.2f}; {outcome}", at, market))
    if fill is not None:
        if fill.side == "bid":
            text = (f"Bought {_volume(fill.volume)} {market} at {_krw(fill.price_krw)}: "
                    f"{_krw(fill.funds_krw)} + {_krw(fill.fee_krw)} fee")
        else:
            pnl = f", P/L {trade.return_ratio:+.2%} ({trade.proceeds_krw - trade.cost_krw:+,.0f} KRW)" if trade else ""
            text = f"Sold {_volume(fill.volume)} {market} at {_krw(fill.price_krw)}: {_krw(fill.funds_krw - fill.fee_krw)} after fee{pnl}"
        if decision.kind == "emergency":
            events.append(Event("emergency", f"EMERGENCY SELL {market}: {decision.reason}. {text}", at, market))
        elif decision.kind in EXIT_TITLES:
            events.append(Event("exit", f"{EXIT_TITLES[decision.kind]} {market}: {decision.reason}. {text}", at, market))
        else:
            events.append(Event("fill", text, at, market))
    if result.warming_up is not None:
        events.append(Event("system", f"{market} is {result.warming_up}", at, market))
    if result.error is not None:
        if decision is not None and decision.approved and decision.kind == "emergency":
            events.append(Event("emergency", f"EMERGENCY SELL {market} FAILED: {result.error}", at, market))
        else:
            what = f"{decision.action} order failed" if decision is not None and decision.approved else "skipped"
            events.append(Event("error", f"{market} {what}: {result.error}", at, market))
    return events
