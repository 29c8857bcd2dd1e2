"""What do users hear about? Events as data: a kind users can switch on or off, a priority, a name
and parameters. The bot renders them (bot/messages.py), in each chat's language, when they are sent.

Events go into the outbox table in the same transaction as the step that caused them, so an alert
is sent if and only if its step was stored. Emergency sells carry the highest priority and are
delivered first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Mapping

from core.trading.reasons import reason_data
from core.trading.types import Action, DecisionKind, Fill, Side, StepResult


class EventKind(StrEnum):
    """Alert kinds users can switch on or off one by one."""

    EMERGENCY = "emergency"
    ACCOUNT = "account"
    EXIT = "exit"
    FILL = "fill"
    SIGNAL = "signal"
    ERROR = "error"
    SYSTEM = "system"
    SUMMARY = "summary"


KINDS = tuple(k.value for k in EventKind)
PRIORITY = {EventKind.EMERGENCY: 100, EventKind.ACCOUNT: 60, EventKind.ERROR: 50, EventKind.EXIT: 40,
            EventKind.FILL: 30, EventKind.SYSTEM: 20, EventKind.SIGNAL: 10, EventKind.SUMMARY: 0}
# Reconciliation notices (a balance adopted from the exchange, an order settled after a fault) go
# to admins only: they are about the account, and only admins can act on them.
ADMIN_ONLY_KINDS = (EventKind.ACCOUNT,)


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: EventKind
    name: str  # what happened, e.g. "bought"; bot/messages.py has the words for each name
    at: datetime
    market: str | None = None
    params: Mapping[str, object] = field(default_factory=dict)  # numbers and short texts, stored as JSON

    @property
    def priority(self) -> int:
        return PRIORITY[EventKind(self.kind)]


def event(kind: EventKind, name: str, at: datetime, market: str | None = None, **params) -> Event:
    return Event(kind=kind, name=name, at=at, market=market, params=params)


def fill_params(fill: Fill) -> dict:
    return {"side": str(fill.side), "volume": fill.volume, "price_krw": fill.price_krw, "funds_krw": fill.funds_krw,
            "fee_krw": fill.fee_krw}


def _worth_telling(decision) -> bool:
    """BUY and SELL signals, except those that could never trade: a SELL with nothing held, or a BUY
    for a coin already held (announced once, when bought, not every hour after)."""
    if decision.kind != DecisionKind.SIGNAL or decision.action not in (Action.BUY, Action.SELL):
        return False
    if decision.approved:
        return True
    return decision.action == Action.BUY and getattr(decision.reason, "code", "") not in ("already_holding", "renewed")


def _reason(text) -> dict:
    return {"reason": str(text), "reason_data": reason_data(text)}


def step_events(result: StepResult) -> list[Event]:
    """Events for one step of the cycle: signals, fills, exits, emergencies, warm-ups, errors."""
    events: list[Event] = []
    at, market = result.at, result.market
    signal, decision, fill, trade = result.signal, result.decision, result.fill, result.trade
    if signal is not None and signal.ok and decision is not None and _worth_telling(decision):
        events.append(event(EventKind.SIGNAL, "signal", at, market, action=str(decision.action),
                            buy=signal.buy_probability, hold=signal.hold_probability, sell=signal.sell_probability,
                            confidence=signal.confidence, traded=fill is not None, **_reason(decision.reason)))
    if fill is not None:
        params = fill_params(fill)
        if trade is not None:
            params.update(return_ratio=trade.return_ratio, pnl_krw=trade.proceeds_krw - trade.cost_krw)
        if decision.kind == DecisionKind.EMERGENCY:
            events.append(event(EventKind.EMERGENCY, "emergency_sold", at, market, **params, **_reason(decision.reason)))
        elif fill.side == Side.ASK and decision.kind in (DecisionKind.STOP_LOSS, DecisionKind.TAKE_PROFIT,
                                                         DecisionKind.TRAILING_STOP, DecisionKind.TIME_EXIT,
                                                         DecisionKind.MANUAL):
            events.append(event(EventKind.EXIT, "exit_sold", at, market, exit=str(decision.kind), **params,
                                **_reason(decision.reason)))
        else:
            events.append(event(EventKind.FILL, "bought" if fill.side == Side.BID else "sold", at, market, **params))
    if result.warming_up is not None:
        events.append(event(EventKind.SYSTEM, "warming_up", at, market, candles_needed=result.warming_up.candles_needed))
    if result.error is not None and not result.source_down:  # the cycle tells an outage once (market_data_down)
        if decision is not None and decision.approved and decision.kind == DecisionKind.EMERGENCY:
            events.append(event(EventKind.EMERGENCY, "emergency_failed", at, market, error=result.error))
        elif decision is not None and decision.approved:
            events.append(event(EventKind.ERROR, "order_failed", at, market, action=str(decision.action),
                                error=result.error))
        else:
            events.append(event(EventKind.ERROR, "skipped", at, market, error=result.error))
    return events
